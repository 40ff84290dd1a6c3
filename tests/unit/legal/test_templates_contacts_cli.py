"""Templates are data (each declares the LEGAL.md fields of its kind), the contact directory
is checked all at once, and the request CLI end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cointrail.cases.case import Case
from cointrail.errors import ValidationError
from cointrail.legal.contacts import parse_contacts
from cointrail.legal.template import KINDS, load_templates, parse_template
from tests.unit.legal.conftest import USER_FIELDS

#: The LEGAL.md list items each kind must answer, by (list, item): §2 row 1 for every kind,
#: §3.1 items 1-6 (preservation), §3.7 A-E (production), §2 row 8 and §3.7 F (freeze),
#: §3.3 (a)-(f) (MLA), §2 row 14 (emergency).
ROW_1 = {("§2 row 1", i) for i in ("legal_basis", "authorising_authority", "offence",
                                   "max_penalty", "proportionality", "scope_and_duration",
                                   "dual_criminality")}
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "preservation": ROW_1 | {("§3.1", str(i)) for i in range(1, 7)},
    "production": ROW_1 | {("§3.7", x) for x in "ABCDE"},
    "freeze": ROW_1 | {("§3.7", "F")} | {("§2 row 8", x) for x in (
        "identifiers_amounts", "trace_summary", "legal_basis", "duration", "notification")},
    "mla": ROW_1 | {("§3.3", x) for x in "abcdef"},
    "emergency": ROW_1 | {("§2 row 14", x) for x in (
        "emergency_nature", "persons_at_risk", "data_needed", "why_not_normal_process")},
}
assert set(EXPECTED) <= set(KINDS)


# epoc, epoc-pr and 2ap-art7 are checked the same way in test_eu_2ap_requests.py
@pytest.mark.parametrize("kind", tuple(EXPECTED))
def test_template_declares_legal_fields(kind: str) -> None:
    t = load_templates()[kind]
    assert t.kind == kind and t.version and t.sha256
    declared = {(r.list, r.item) for r in t.requirements}
    assert EXPECTED[kind] <= declared
    for r in t.requirements:
        assert r.fields, (r.list, r.item)
        for name in r.fields:
            spec = t.field(name)
            # required at least for international requests (domestic-only would be a gap)
            assert spec.is_required(domestic=False) or (spec.required == "false" and \
                name == "preserved_refs"), (kind, name)
    assert "Request No. {{ case.reference }}" in t.subject
    assert t.categories


def test_template_problems_listed_at_once() -> None:
    bad = b"""id: x
version: "1"
kind: parcel
fields:
  - {name: a, source: somewhere, required: maybe}
  - {name: b, label: B, source: case}
requirements:
  - {list: L, item: "1", fields: [nope]}
subject: "{{ broken"
body: ok
"""
    with pytest.raises(ValidationError) as err:
        parse_template(bad, "bad.yaml", None)
    text = " | ".join(str(p) for p in err.value.problems)
    for expected in ("title", "legal_basis", "kind 'parcel'", "source 'somewhere'",
                     "required 'maybe'", "needs 'from'", "no field 'nope'", "subject"):
        assert expected in text
    assert all(p.line is not None for p in err.value.problems)


def test_agency_override_wins(tmp_path: Path) -> None:
    from importlib import resources

    src = resources.files("cointrail.legal").joinpath("templates", "freeze.yaml").read_text()
    (tmp_path / "legal-templates").mkdir()
    (tmp_path / "legal-templates" / "freeze.yaml").write_text(
        src.replace('version: "1.0.0"', 'version: "1.0.1-agency"'))
    assert load_templates(tmp_path)["freeze"].version == "1.0.1-agency"
    assert load_templates()["freeze"].version == "1.0.0"


def test_contacts_every_problem_with_line() -> None:
    text = """version: 1
entities:
  - name: Good Exchange Ltd
    country: MT
    address: Valletta
    actors: [good]
    le_email: le@good.invalid
  - name: No Country Ltd
    address: Somewhere
    labels: [X]
    le_portal: https://x.invalid
  - name: Bad Ltd
    country: XX
    address: A
    le_email: not-an-email
    colour: red
states:
  - country: MT
  - country: ZZ
    poc_247: someone
"""
    with pytest.raises(ValidationError) as err:
        parse_contacts(text, "dir.yaml")
    got = [(p.line, p.message) for p in err.value.problems]
    assert (8, "No Country Ltd: 'country' is required") in got
    lines = {line for line, _ in got}
    assert {8, 12, 18, 19} <= lines
    messages = " | ".join(m for _, m in got)
    for expected in ("'XX' is not an ISO", "give 'actors'", "not an e-mail", "'colour'",
                     "state MT: give", "'ZZ'"):
        assert expected in messages


def _cli(monkeypatch: pytest.MonkeyPatch, store: Path, user: str, role_key: str | None = None
         ) -> Callable[..., object]:
    from cointrail.interfaces.cli.request_cmds import request_app

    app = typer.Typer()
    app.add_typer(request_app, name="request")
    runner = CliRunner()

    def run(*args: str) -> object:
        monkeypatch.setenv("COINTRAIL_STORE", str(store))
        monkeypatch.setenv("COINTRAIL_USER", user)
        monkeypatch.delenv("COINTRAIL_API_KEY", raising=False)
        return runner.invoke(app, ["request", *args])

    return run


def test_cli_draft_list_show(make_case: Callable[..., Case], store_root: Path,
                             contacts_file: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case()
    run = _cli(monkeypatch, store_root, "ana")
    imported: object = run("contacts", "import", str(contacts_file))
    assert imported.exit_code == 0, imported.output  # type: ignore[attr-defined]
    missing: object = run("draft", case.reference, "--kind", "preservation", "--finding",
                          "F0001", "--exchange", "Binance")
    assert missing.exit_code == 2  # type: ignore[attr-defined]
    assert "officer_name" in missing.output and "proportionality" in missing.output  # type: ignore[attr-defined]
    fields = tmp_path / "fields.yaml"
    fields.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in USER_FIELDS.items()))
    ok: object = run("draft", case.reference, "--kind", "preservation", "--finding", "F0001",
                     "--exchange", "binance", "--fields-file", str(fields),
                     "--field", "period_days=120")
    assert ok.exit_code == 0, ok.output  # type: ignore[attr-defined]
    assert "R0001" in ok.output  # type: ignore[attr-defined]
    refused: object = run("approve", case.reference, "R0001")
    assert refused.exit_code == 3  # type: ignore[attr-defined]
    shown: object = run("show", case.reference, "R0001")
    doc = json.loads(shown.stdout)  # type: ignore[attr-defined]
    assert doc["fields"]["period_days"] == 120 and doc["status"] == "draft"
    listed: object = run("list", case.reference)
    assert "preservation" in listed.stdout and "Binance Malta" in listed.stdout  # type: ignore[attr-defined]
    nothing: object = run("list", case.reference, "--due", "--today", "2030-01-01")
    assert "nothing due" in nothing.stdout  # type: ignore[attr-defined]
