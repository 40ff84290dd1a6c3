"""Drafting, holding, approval and outputs of legal requests on a real case (bundled mainnet
blocks, the real GraphSense ActorPack, own tags for the deposits)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cointrail.cases.case import Case
from cointrail.errors import PermissionDeniedError, ValidationError
from cointrail.legal.drafting import RequestHeldError, draft_request, record_check
from cointrail.legal.identifiers import read_csv
from cointrail.legal.workflow import approve, due, load_request, set_status
from tests.unit.legal.conftest import ANA, BEA, CARL, USER_FIELDS, as_principal

PDFTOTEXT = Path("/usr/bin/pdftotext")


def _files(case: Case) -> list[str]:
    folder = case.folder / "requests"
    return sorted(str(p.relative_to(case.folder)) for p in folder.rglob("*")) \
        if folder.exists() else []


def test_every_missing_field_listed_and_nothing_written(make_case: Callable[..., Case],
                                                        store_root: Path) -> None:
    case = make_case()
    head = case.head()
    with pytest.raises(ValidationError) as err:
        draft_request(case, "preservation", "F0001", "Binance",
                      {"officer_name": "Det. Ana Example", "period_days": "30",
                       "colour": "blue"}, store_root=store_root)
    named = {p.source for p in err.value.problems}
    assert {"field officer_rank_id", "field authorising_authority", "field proportionality",
            "field necessity", "field data_relation", "field period_days",
            "field colour"} <= named
    assert "field officer_name" not in named
    assert any("below the minimum 60" in p.message for p in err.value.problems)
    assert _files(case) == []
    assert case.head() == head  # nothing logged either


def test_preservation_outputs(make_case: Callable[..., Case], store_root: Path,
                              tmp_path: Path) -> None:
    case = make_case()
    doc = draft_request(case, "preservation", "F0001", "binance", USER_FIELDS,
                        store_root=store_root)
    assert doc["id"] == "R0001" and doc["status"] == "draft"
    assert doc["template"]["id"] == "preservation" and doc["template"]["version"]
    assert doc["domestic"] is False  # DE case, MT entity
    assert doc["addressee"]["legal_entity"]["name"] == "Binance Malta Operations Ltd"
    assert doc["addressee"]["actor"]["id"] == "binance"
    assert "MT" in doc["addressee"]["actor"]["jurisdictions"]
    heights = sorted(r["height"] for r in doc["identifiers"])
    assert heights == [182, 183]
    assert all(r["amount_base_units"] == 100_000_000 for r in doc["identifiers"])
    assert doc["date_range"]["start"].startswith("2009-01-1")
    assert doc["subject"].startswith(f"Request No. {case.reference}/R0001 – ")
    assert doc["custody_head_at_drafting"]["seq"] == 2  # case.open, finding.record
    stored = load_request(case, "R0001")
    assert stored == json.loads(json.dumps(doc))
    folder = case.folder / "requests" / "R0001"
    assert {p.name for p in folder.iterdir()} == {
        "request.json", "letter.html", "letter.pdf", "letter.docx", "identifiers.csv",
        "identifiers.xlsx"}
    actions = [e.action for e in case.entries()]
    assert actions.count("request.draft") == 6
    assert case.verify().ok
    # identifiers CSV round trip
    rows = read_csv((folder / "identifiers.csv").read_bytes())
    assert [r.to_dict() for r in rows] == doc["identifiers"]
    # xlsx holds the same addresses as text
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    ws = load_workbook(folder / "identifiers.xlsx").active
    assert ws is not None
    cells = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert [c[3] for c in cells] == [r.address for r in rows]
    # the editable copy: the same letter, read back with python-docx
    letter = docx_text(folder / "letter.docx")
    assert letter.startswith("DRAFT - NOT APPROVED")
    assert "Binance Malta Operations Ltd" in letter
    assert f"Subject: {doc['subject']}" in letter
    for r in rows:
        assert f"address: {r.address}" in letter
        assert f"txid: {r.txid}" in letter
    assert docx_headings(folder / "letter.docx")[0] == f"Subject: {doc['subject']}"
    # PDF text
    if not PDFTOTEXT.exists():
        pytest.skip("pdftotext is not installed at /usr/bin/pdftotext")
    out = tmp_path / "letter.txt"
    subprocess.run([str(PDFTOTEXT), str(folder / "letter.pdf"), str(out)],
                   check=True)
    text = " ".join(out.read_text().split())
    assert "Binance Malta Operations Ltd" in text
    assert f"Request No. {case.reference}/R0001" in text
    assert "DRAFT - NOT APPROVED" in text
    for r in rows:
        assert f"address: {r.address}" in text
        assert f"txid: {r.txid}" in text


def docx_paragraphs(path: Path) -> list[Any]:
    """Every paragraph of a .docx in reading order, table cells included."""
    from docx import Document

    document = Document(str(path))
    paragraphs = list(document.paragraphs)
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                paragraphs.extend(cell.paragraphs)
    return paragraphs


def docx_text(path: Path) -> str:
    return " ".join(" ".join(p.text for p in docx_paragraphs(path)).split())


def docx_headings(path: Path) -> list[str]:
    return [p.text for p in docx_paragraphs(path) if p.style.name.startswith("Heading")]


def test_speech_or_content_offence_is_held(make_case: Callable[..., Case],
                                           store_root: Path) -> None:
    case = make_case(offence="RU-DRAFT-EXTREMISM")
    with pytest.raises(RequestHeldError, match="speech or content"):
        draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                      store_root=store_root)
    assert _files(case) == []
    with pytest.raises(PermissionDeniedError):  # an analyst may not clear it
        record_check(case, "MT", "cleared", "analyst's own view is not enough here")
    checker = as_principal(case, BEA)
    record_check(checker, "MT", "refused", "Not an offence in MT; art 10 ECHR concerns.")
    with pytest.raises(RequestHeldError, match="refused"):
        draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                      store_root=store_root)
    record_check(checker, "FR", "cleared", "Cleared for another state only: FR law covers it.")
    with pytest.raises(RequestHeldError):
        draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                      store_root=store_root)
    check = record_check(checker, "MT", "cleared",
                         "Dual criminality met under MT Criminal Code; necessary and "
                         "proportionate, no human-rights concern for this financial trace.")
    assert check.checked_by == "bea"
    doc = draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                        store_root=store_root)
    assert doc["status"] == "draft"
    assert [e.action for e in case.entries()].count("request.check") == 3


def test_four_eyes_approval_and_deadlines(make_case: Callable[..., Case],
                                          store_root: Path) -> None:
    case = make_case(principal=BEA)  # drafted by an approver
    draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                  store_root=store_root)
    with pytest.raises(PermissionDeniedError, match="four-eyes"):
        approve(case, "R0001", store_root=store_root)
    with pytest.raises(PermissionDeniedError):
        approve(as_principal(case, ANA), "R0001", store_root=store_root)
    assert load_request(case, "R0001")["status"] == "draft"
    doc = approve(as_principal(case, CARL), "R0001", store_root=store_root,
                  today=date(2026, 3, 1))
    assert (doc["status"], doc["approved_by"]) == ("approved", "carl")
    d = doc["deadlines"]
    assert (d["start"], d["period_days"], d["expires"]) == ("2026-03-01", 90, "2026-05-30")
    assert [(r["id"], r["due"]) for r in d["reminders"]] == [
        ("mla_due", "2026-04-15"), ("expiry", "2026-05-20")]
    assert due([doc], date(2026, 4, 14)) == []
    assert [x.reminder for x in due([doc], date(2026, 4, 15))] == ["mla_due"]
    assert [x.reminder for x in due([doc], date(2026, 5, 30))] == [
        "mla_due", "expiry", "expires"]
    approved_letter = docx_text(case.folder / "requests" / "R0001" / "letter.docx")
    assert "DRAFT" not in approved_letter
    assert "Approved by carl" in approved_letter and "drafted by bea" in approved_letter
    assert doc["files"]["letter.docx"]["sha256"] == hashlib.sha256(
        (case.folder / "requests" / "R0001" / "letter.docx").read_bytes()).hexdigest()
    assert case.verify().ok
    with pytest.raises(ValueError):  # approved twice
        approve(as_principal(case, CARL), "R0001", store_root=store_root)
    submitted = set_status(case, "R0001", "submitted", "sent via 24/7 network by hand")
    assert [x.reminder for x in due([submitted], date(2026, 4, 20))] == ["mla_due"]
    answered = set_status(case, "R0001", "answered", "data preserved, ref MT-123")
    assert due([answered], date(2027, 1, 1)) == []
    with pytest.raises(ValueError):
        set_status(case, "R0001", "submitted")
    assert case.verify().ok


def test_domestic_preservation_reminds_at_day_75(make_case: Callable[..., Case],
                                                 store_root: Path) -> None:
    case = make_case(jurisdiction="MT")
    doc = draft_request(case, "preservation", "F0001", "Binance", USER_FIELDS,
                        store_root=store_root)
    assert doc["domestic"] is True
    assert "Article 16" in doc["legal_basis_text"]
    approved = approve(as_principal(case, BEA), "R0001", store_root=store_root,
                       today=date(2026, 1, 1))
    assert [(r["id"], r["due"]) for r in approved["deadlines"]["reminders"]] == [
        ("renew", "2026-03-17")]


@pytest.mark.parametrize(("kind", "extra", "reminder"), [
    ("production", {"legal_process": "court order", "timeline": "Jan 2009 deposits",
                    "dual_criminality": "Money laundering is an offence in MT."}, "answer_due"),
    ("freeze", {"dual_criminality": "Money laundering is an offence in MT.",
                "freeze_days": "45"}, "freeze_expiry"),
    ("mla", {"conducting_authority": "Public Prosecutor Berlin, investigating prosecutor",
             "proceeding_nature": "Criminal investigation into money laundering.",
             "assistance_sought": "Production of the KYC data of the account holders.",
             "persons_concerned": "Unknown account holder(s) of the deposits.",
             "evidence_purpose": "Identify the account holder for prosecution.",
             "dual_criminality": "Money laundering is an offence in MT."}, "mla_follow_up"),
    ("emergency", {"emergency_nature": "Credible threat to kill a hostage within 48 hours.",
                   "persons_at_risk": "One adult hostage.",
                   "data_needed": "Current login IPs of the account holder.",
                   "why_not_normal_process": "MLA takes months; the threat is imminent."},
     "emergency_chase"),
])
def test_every_kind_drafts_and_approves(make_case: Callable[..., Case], store_root: Path,
                                        kind: str, extra: dict[str, str],
                                        reminder: str) -> None:
    case = make_case()
    common = {k: v for k, v in USER_FIELDS.items() if k not in ("necessity", "data_relation")}
    doc = draft_request(case, kind, "F0001", "Binance", common | extra,
                        store_root=store_root)
    assert doc["kind"] == kind and doc["template"]["id"] == kind
    approved = approve(as_principal(case, BEA), doc["id"], store_root=store_root,
                       today=date(2026, 6, 1))
    assert reminder in [r["id"] for r in approved["deadlines"]["reminders"]]
    if kind == "freeze":
        assert approved["deadlines"]["expires"] == "2026-07-16"
    if kind == "mla":
        assert approved["fields"]["central_authority"].startswith("Office of the Attorney")
        assert approved["fields"]["hash_list"]


def test_unknown_service_names_those_reached(make_case: Callable[..., Case],
                                             store_root: Path) -> None:
    from cointrail.errors import NotFoundError

    case = make_case()
    with pytest.raises(NotFoundError, match=r"Binance \(exchange\)"):
        draft_request(case, "preservation", "F0001", "Kraken", USER_FIELDS,
                      store_root=store_root)
