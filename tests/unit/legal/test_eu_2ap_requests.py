"""The EU e-Evidence certificates (EPOC, EPOC-PR; Regulation (EU) 2023/1543) and the Second
Additional Protocol Art 7 order, drafted on the real case of conftest (DE case, addressee
Binance Malta Operations Ltd in MT): their sections and identifiers in the letter, the EU-scope
and penalty rules read from the templates, every missing field at once, and the deadlines and
reminders after approval."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from markupsafe import escape

from cointrail.cases.case import Case
from cointrail.errors import ValidationError
from cointrail.legal.contacts import parse_contacts
from cointrail.legal.drafting import draft_request
from cointrail.legal.template import (
    EU_MEMBER_STATES,
    KINDS,
    load_templates,
    parse_template,
)
from cointrail.legal.workflow import approve, due
from tests.unit.legal.conftest import BEA, USER_FIELDS, as_principal

PDFTOTEXT = Path("/usr/bin/pdftotext")
NEW_KINDS = ("epoc", "epoc-pr", "2ap-art7")

COMMON = {k: v for k, v in USER_FIELDS.items() if k not in ("necessity", "data_relation")}
EPOC_FIELDS = COMMON | {
    "issuing_authority_type": "public prosecutor",
    "validation": "Issued by a public prosecutor for subscriber data: no validation needed.",
    "enforcing_notified": "no",
    "data_details": "KYC records and registration and log-in IP addresses of the holders.",
    "dual_criminality": "Money laundering is an offence in MT.",
    "delay_conditions": "Informing the user would jeopardise the investigation; 6 months.",
    "data_categories": "subscriber,user_identification",
}
EPOC_PR_FIELDS = COMMON | {
    "issuing_authority_type": "public prosecutor",
    "validation": "Issued by a public prosecutor: no validation needed.",
    "subsequent_request": "An EPOC for the subscriber and traffic data.",
    "data_details": "All records of the accounts credited with the deposits listed.",
    "dual_criminality": "Money laundering is an offence in MT.",
    "delay_conditions": "Informing the user would jeopardise the investigation; 6 months.",
}
ART7_FIELDS = COMMON | {
    "protocol_in_force": "CETS 224 chart of signatures checked 2026-05-30: in force, no "
                         "Art 7 reservation.",
    "subscriber_info_sought": "Name, address and account period of the account holders.",
    "dual_criminality": "Money laundering is an offence in MT.",
    "return_days": "20",
}
FIELDS = {"epoc": EPOC_FIELDS, "epoc-pr": EPOC_PR_FIELDS, "2ap-art7": ART7_FIELDS}

ROW_1 = {("§2 row 1", i) for i in ("legal_basis", "authorising_authority", "offence",
                                   "max_penalty", "proportionality", "scope_and_duration",
                                   "dual_criminality")}
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "epoc": ROW_1 | {("§3.4", x) for x in ("A", "B", "C", "D", "E", "F", "G", "H", "I", "J",
                                            "K", "L(a)")},
    "epoc-pr": ROW_1 | {("§3.4", x) for x in ("A", "B", "C", "D", "F", "G", "H", "I", "J")},
    "2ap-art7": ROW_1 | {("§3.2 Art 7", x) for x in (
        "issuing_authority_and_date", "issued_under_protocol", "service_provider", "offences",
        "seeking_authority", "subscriber_information")} | {
        ("§3.2 Art 7 supplementary", x) for x in (
            "domestic_legal_grounds", "provisions_and_penalties", "return_contact",
            "time_frame_and_manner", "preservation_sought", "special_instructions",
            "simultaneous_notification", "other_information")},
}
#: Fields LEGAL.md §3.2 qualifies itself ("if different", "if applicable", "any other", "whether
#: preservation was already sought"): optional by design.
OPTIONAL_BY_LAW = {"seeking_authority", "simultaneous_notification", "special_instructions",
                   "other_information", "preserved_refs", "preservation_other"}

SECTIONS = {
    "epoc": ["Section A: Issuing / validating authority", "Section B: Addressee",
             "Section C: Deadlines", "Section D: Relation to earlier orders",
             "Section E: Notification information", "Section F: Data to be produced",
             "Section G: Underlying conditions", "Section H: Information to the user",
             "Section I: Details of the issuing authority", "Section J: Validating authority",
             "Section K: Enforcing authority", "Section L: Transfer of the data",
             "European Production Order Certificate (EPOC)", "within 10 days",
             "Maximum penalty: 5 years", "Issuing state: DE"],
    "epoc-pr": ["Section A: Issuing / validating authority", "Section B: Addressee",
                "Section C: Preservation period", "Section D: Relation to earlier orders",
                "Section F: Data to be preserved", "Section G: Underlying conditions",
                "Section H: Information to the user",
                "Section I: Details of the issuing authority",
                "Section J: Validating authority",
                "European Preservation Order Certificate (EPOC-PR)", "after 60 days",
                "extends it by 30 days"],
    "2ap-art7": ["1. Issuing authority, date and legal basis", "2. Service provider",
                 "3. Subscriber information sought", "4. Offences",
                 "5. Time frame and manner of disclosure; return contact",
                 "6. Preservation already sought",
                 "issued under Article 7 of the Second Additional Protocol",
                 "within 20 days of receipt"],
}


def _pdf_text(path: Path, tmp_path: Path) -> str:
    out = tmp_path / f"{path.parent.name}.txt"
    subprocess.run([str(PDFTOTEXT), str(path), str(out)], check=True)
    return " ".join(out.read_text().split())


def _messages(err: pytest.ExceptionInfo[ValidationError], source: str) -> list[str]:
    return [p.message for p in err.value.problems if p.source == source]


def _written(case: Case) -> list[Path]:
    folder = case.folder / "requests"
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_templates_declare_their_lists(kind: str) -> None:
    t = load_templates()[kind]
    assert t.kind == kind and t.id == kind and t.version and t.sha256
    assert EXPECTED[kind] <= {(r.list, r.item) for r in t.requirements}
    for r in t.requirements:
        for name in r.fields:
            spec = t.field(name)
            assert (spec.is_required(domestic=False) or spec.required_if is not None
                    or name in OPTIONAL_BY_LAW), (kind, name)
    assert "Request No. {{ case.reference }}" in t.subject
    assert t.applies is not None and t.applies.scope == "international"
    if kind != "2ap-art7":  # the EU certificates: member states bound by the Regulation
        assert t.applies.requesting == t.applies.requested == EU_MEMBER_STATES - {"DK"}
    assert kind in KINDS


def test_every_kind_has_its_lists_checked() -> None:
    """Each kind's LEGAL.md lists are checked here or in test_templates_contacts_cli."""
    from tests.unit.legal.test_templates_contacts_cli import EXPECTED as OLDER

    assert set(KINDS) == set(OLDER) | set(EXPECTED)


def test_cli_help_names_every_kind() -> None:
    from cointrail.interfaces.cli.request_cmds import KIND_HELP

    assert all(k in KIND_HELP for k in KINDS)


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_letter_sections_identifiers_and_deadlines(make_case: Callable[..., Case],
                                                   store_root: Path, tmp_path: Path,
                                                   kind: str) -> None:
    case = make_case()
    doc = draft_request(case, kind, "F0001", "Binance", FIELDS[kind], store_root=store_root)
    assert doc["kind"] == kind and doc["domestic"] is False
    folder = case.folder / "requests" / doc["id"]
    html = (folder / "letter.html").read_text()
    if not PDFTOTEXT.exists():
        pytest.skip("pdftotext is not installed at /usr/bin/pdftotext")
    text = _pdf_text(folder / "letter.pdf", tmp_path)
    for expected in SECTIONS[kind] + ["Binance Malta Operations Ltd",
                                      f"Request No. {case.reference}/{doc['id']}"]:
        assert expected in text, (kind, expected)
    assert len(doc["identifiers"]) == 2
    if kind == "2ap-art7":  # the officer's check of the Protocol's status is kept, not sent
        assert doc["fields"]["protocol_in_force"].startswith("CETS 224 chart")
        assert "CETS 224 chart" not in text
    for row in doc["identifiers"]:
        assert f"address: {row['address']}" in text and f"txid: {row['txid']}" in text
    chosen = doc["fields"]["data_categories"]
    assert chosen
    for c in load_templates()[kind].categories:
        assert (str(escape(c.label)) in html) == (c.id in chosen), (kind, c.id)
    # deadlines start at approval
    approved = approve(as_principal(case, BEA), doc["id"], store_root=store_root,
                       today=date(2026, 9, 1))
    d = approved["deadlines"]
    if kind == "epoc":
        assert (d["period_days"], d["expires"], d["period_hours"]) == (10, "2026-09-11", None)
        assert [(r["id"], r["due"]) for r in d["reminders"]] == [("answer_due", "2026-09-11")]
        assert [x.reminder for x in due([approved], date(2026, 9, 11))] == [
            "answer_due", "expires"]
    elif kind == "epoc-pr":
        assert (d["period_days"], d["expires"]) == (60, "2026-10-31")
        assert [(r["id"], r["due"]) for r in d["reminders"]] == [
            ("production_due", "2026-10-01"), ("extend_or_confirm", "2026-10-21")]
        reminder = next(r for r in d["reminders"] if r["id"] == "extend_or_confirm")
        assert "30 days" in reminder["text"] and "request for production" in reminder["text"]
        assert [x.reminder for x in due([approved], date(2026, 10, 20))] == ["production_due"]
    else:
        assert (d["period_days"], d["expires"]) == (20, "2026-09-21")
        assert [(r["id"], r["due"]) for r in d["reminders"]] == [
            ("answer_due", "2026-09-21"), ("art8_option", "2026-10-16")]
    assert case.verify().ok


def test_epoc_emergency_eight_hours_and_earlier_epoc_pr(make_case: Callable[..., Case],
                                                        store_root: Path) -> None:
    case = make_case()
    pr = draft_request(case, "epoc-pr", "F0001", "Binance", EPOC_PR_FIELDS,
                       store_root=store_root)
    doc = draft_request(case, "epoc", "F0001", "Binance", EPOC_FIELDS | {
        "emergency": "yes", "case_without_validation": "yes",
        "emergency_grounds": "Imminent threat to the life of a hostage."},
        store_root=store_root)
    assert pr["id"] == "R0001" and doc["id"] == "R0002"
    assert doc["fields"]["preserved_refs"].startswith("R0001 (epoc-pr, draft")
    assert doc["subject"].endswith("– EMERGENCY")
    html = (case.folder / "requests" / "R0002" / "letter.html").read_text()
    assert "at the latest within 8 hours of receipt" in html
    assert "within 10 days" not in html
    assert "Preservation already requested in this case: R0001 (epoc-pr" in html
    assert "Imminent threat to the life of a hostage." in html
    approved = approve(as_principal(case, BEA), "R0002", store_root=store_root,
                       today=date(2026, 9, 1))
    d = approved["deadlines"]
    assert (d["period_days"], d["period_hours"]) == (None, 8)
    assert d["urgent"]["field"] == "emergency" and "8 hours" in d["urgent"]["text"]
    began = datetime.fromisoformat(d["urgent"]["started_at"])
    ends = datetime.fromisoformat(d["expires_at"])
    assert began.date() == date(2026, 9, 1)
    assert ends - began == timedelta(hours=8)
    assert d["expires"] == ends.date().isoformat()
    assert [r["id"] for r in d["reminders"]] == ["answer_due"]
    assert d["reminders"][0]["due"] == d["expires"]


def test_missing_fields_listed_at_once(make_case: Callable[..., Case],
                                       store_root: Path) -> None:
    case = make_case()
    given = {k: COMMON[k] for k in ("officer_name", "authorising_authority")}
    with pytest.raises(ValidationError) as err:
        draft_request(case, "epoc", "F0001", "Binance", given | {
            "emergency": "yes", "enforcing_notified": "yes"}, store_root=store_root)
    named = {p.source for p in err.value.problems}
    assert {"field officer_rank_id", "field proportionality", "field issuing_authority_type",
            "field validation", "field data_details", "field dual_criminality",
            "field emergency_grounds", "field enforcing_authority",
            "field delay_conditions"} <= named
    assert "field officer_name" not in named and "applies" not in named
    assert any("needed because Emergency case" in m
               for m in _messages(err, "field emergency_grounds"))
    with pytest.raises(ValidationError) as err:
        draft_request(case, "2ap-art7", "F0001", "Binance", given | {"return_days": "0"},
                      store_root=store_root)
    named = {p.source for p in err.value.problems}
    assert {"field protocol_in_force", "field subscriber_info_sought",
            "field dual_criminality", "field return_days", "field proportionality"} <= named
    assert "field seeking_authority" not in named  # "if different": optional
    assert any("below the minimum 1" in m for m in _messages(err, "field return_days"))
    assert _written(case) == []


@pytest.mark.parametrize(("jurisdiction", "kind", "why"), [
    ("US", "epoc", "the requesting state (the case's jurisdiction) is US"),
    ("DK", "epoc-pr", "the requesting state (the case's jurisdiction) is DK"),
    ("MT", "epoc", "the addressee is established in MT, the requesting state itself"),
    ("MT", "2ap-art7", "the addressee is established in MT, the requesting state itself"),
])
def test_outside_scope_is_refused(make_case: Callable[..., Case], store_root: Path,
                                  jurisdiction: str, kind: str, why: str) -> None:
    case = make_case(jurisdiction=jurisdiction)
    with pytest.raises(ValidationError) as err:
        draft_request(case, kind, "F0001", "Binance", FIELDS[kind], store_root=store_root)
    [message] = _messages(err, "applies")
    assert why in message
    assert len(err.value.problems) == 1  # nothing else is wrong
    if kind == "2ap-art7":
        assert "use production" in message
    else:
        assert "all but Denmark" in message
        for instead in ("preservation", "production" if kind == "epoc" else "mla"):
            assert instead in message
    assert _written(case) == []


def test_addressee_outside_the_regulation(make_case: Callable[..., Case],
                                          store_root: Path) -> None:
    """A DE case, the exchange's legal entity in Denmark or Switzerland: no EPOC; the Art 7
    order to a non-EU Party is fine."""
    case = make_case()
    for country in ("DK", "CH"):
        contacts = parse_contacts(f"""version: 1
entities:
  - name: Binance Example {country}
    country: {country}
    address: 1 Example Street
    actors: [binance]
    le_email: le@binance.invalid
""", "contacts.yaml")
        for kind in ("epoc", "epoc-pr"):
            with pytest.raises(ValidationError) as err:
                draft_request(case, kind, "F0001", "Binance", FIELDS[kind],
                              store_root=store_root, contacts=contacts)
            [message] = _messages(err, "applies")
            assert f"the addressee's country is {country}" in message
    doc = draft_request(case, "2ap-art7", "F0001", "Binance", ART7_FIELDS,
                        store_root=store_root, contacts=contacts)
    assert doc["addressee"]["legal_entity"]["country"] == "CH"


def test_traffic_and_content_need_three_years(make_case: Callable[..., Case],
                                              store_root: Path) -> None:
    case = make_case()
    case.update(offence={"code": "UNCC-17", "max_penalty_years": 2})
    wanted = EPOC_FIELDS | {"data_categories": "subscriber,traffic,content"}
    with pytest.raises(ValidationError) as err:
        draft_request(case, "epoc", "F0001", "Binance", wanted, store_root=store_root)
    messages = _messages(err, "field data_categories")
    assert len(messages) == 2 and len(err.value.problems) == 2
    assert messages[0].startswith("data category 'traffic' (Traffic data")
    assert messages[1].startswith("data category 'content' (Content data")
    for m in messages:
        assert "at least 3 years" in m and "UNCC-17 carries 2 year(s)" in m
        assert "data_categories=subscriber,user_identification" in m and "epoc-pr" in m
    assert _written(case) == []
    # subscriber and identification data: any offence; preservation: every category
    doc = draft_request(case, "epoc", "F0001", "Binance", EPOC_FIELDS, store_root=store_root)
    assert doc["fields"]["data_categories"] == ["subscriber", "user_identification"]
    assert doc["fields"]["max_penalty_years"] == 2
    pr = draft_request(case, "epoc-pr", "F0001", "Binance", EPOC_PR_FIELDS | {
        "data_categories": "subscriber,traffic,content"}, store_root=store_root)
    assert pr["fields"]["data_categories"] == ["subscriber", "traffic", "content"]
    # an offence the Regulation lists regardless (attacks against information systems)
    case.update(offence={"code": "BUDAPEST-2", "max_penalty_years": 2})
    listed = draft_request(case, "epoc", "F0001", "Binance", wanted, store_root=store_root)
    assert listed["fields"]["offence_code"] == "BUDAPEST-2"


def test_penalty_threshold_boundary() -> None:
    rule = load_templates()["epoc"].penalty_threshold
    assert rule is not None
    labels: dict[str, str] = {}
    assert rule.problems(["traffic"], 3, "UNCC-17", labels) == []
    assert len(rule.problems(["traffic", "subscriber"], 2, "UNCC-17", labels)) == 1
    assert rule.problems(["content"], 1, "uncc-14", labels) == []
    assert rule.problems(["subscriber", "user_identification"], 0, "UNCC-17", labels) == []


def _art7_source() -> str:
    return resources.files("cointrail.legal").joinpath("templates", "2ap-art7.yaml").read_text()


def test_scope_rule_is_read_from_the_template(make_case: Callable[..., Case],
                                              store_root: Path, tmp_path: Path) -> None:
    """The agency narrows the Art 7 order to France in its own copy of the template: drafting
    to the MT entity is refused with the agency's wording, with no code naming the kind."""
    src = _art7_source()
    assert "applies:\n  scope: international\n" in src
    narrowed = src.replace(
        "applies:\n  scope: international\n",
        "applies:\n  scope: international\n  requested: [FR]\n").replace(
        "rule: to a service provider in the territory of another Party to the Protocol",
        "rule: to service providers in France (agency agreement)").replace(
        'version: "1.0.0"', 'version: "1.0.0-agency"')
    case = make_case()
    folder = store_root / "legal-templates"
    folder.mkdir()
    try:
        (folder / "2ap-art7.yaml").write_text(narrowed)
        with pytest.raises(ValidationError) as err:
            draft_request(case, "2ap-art7", "F0001", "Binance", ART7_FIELDS,
                          store_root=store_root)
    finally:
        (folder / "2ap-art7.yaml").unlink(missing_ok=True)
        folder.rmdir()
    [message] = _messages(err, "applies")
    assert "the addressee's country is MT" in message
    assert "to service providers in France (agency agreement)" in message
    (tmp_path / "legal-templates").mkdir()
    (tmp_path / "legal-templates" / "2ap-art7.yaml").write_text(narrowed)
    t = load_templates(tmp_path)["2ap-art7"]
    assert t.version == "1.0.0-agency"
    assert t.applies is not None and t.applies.requested == frozenset({"FR"})
    assert t.applies.problems("T", "DE", "FR") == []


def test_rule_problems_listed_with_lines() -> None:
    bad = b"""id: x
version: "1"
kind: epoc
title: X
legal_basis: L
applies:
  requesting: {group: asia}
  requested: {group: eu, except: [US]}
  scope: everywhere
fields:
  - {name: rush, label: Rush, source: user, type: text}
  - {name: note, label: Note, source: user, required_if: rush}
data_categories:
  - {id: a, label: A}
penalty_threshold:
  min_years: 3
  categories: [a, b]
  offences_regardless: [NOPE-1]
deadlines:
  urgent: {field: rush, period_hours: 0}
subject: s
body: b
"""
    with pytest.raises(ValidationError) as err:
        parse_template(bad, "bad.yaml", None)
    text = " | ".join(str(p) for p in err.value.problems)
    for expected in ("group 'asia'", "except names US", "scope 'everywhere'",
                     "applies.rule is missing", "required_if 'rush' is not a yes/no field",
                     "category 'b' is not among", "offence 'NOPE-1' is not in the offence",
                     "urgent.field 'rush' is not a yes/no", "period_hours must be"):
        assert expected in text, expected
    assert all(p.line is not None for p in err.value.problems)


def test_cli_approve_prints_the_hour_deadline(make_case: Callable[..., Case], store_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from cointrail.auth.keys import create_key
    from cointrail.interfaces.cli.request_cmds import request_app

    case = make_case()
    draft_request(case, "epoc", "F0001", "Binance", EPOC_FIELDS | {
        "emergency": "yes", "case_without_validation": "yes",
        "emergency_grounds": "Imminent threat to the life of a hostage."},
        store_root=store_root)
    app = typer.Typer()
    app.add_typer(request_app, name="request")
    monkeypatch.setenv("COINTRAIL_STORE", str(store_root))
    monkeypatch.setenv("COINTRAIL_API_KEY", create_key(store_root, "Bea Approver",
                                                       "approver").secret)
    result = CliRunner().invoke(app, ["request", "approve", case.reference, "R0001"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "period ends" in x)
    assert line.endswith("(8 hours: emergency is yes)")
    assert "T" in line.split("period ends ")[1]  # a time, not only a date
