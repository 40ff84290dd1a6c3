"""Case metadata, offences, retention, the transfer register, attachments and the snapshot
shape of ADR 0004."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from cointrail.auth import Principal, Role
from cointrail.cases import Case, CaseStore, offences
from cointrail.errors import (
    AddressError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

ANA = Principal("ana", Role.ANALYST)
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"


def create(store: CaseStore, reference: str = "CT-2026-0001", **over: object) -> Case:
    fields: dict[str, object] = dict(
        reference=reference, title="Ransom payments", offence="UNCC-17", jurisdiction="de",
        authority={"name": "LKA", "poc_247": "+49 30 0000"}, investigators=["ana", "ben"],
        facts="facts", legal_basis="§ 100 StPO", purpose="criminal investigation",
        retention_days=365, national_law="§ 261 StGB", max_penalty_years=5)
    fields.update(over)
    return store.create(ANA, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> CaseStore:
    return CaseStore(tmp_path / "cases")


def test_missing_metadata_fields_are_listed_at_once(store: CaseStore) -> None:
    with pytest.raises(ValidationError) as info:
        store.create(ANA, reference="", title="", offence="", jurisdiction="Germany",
                     authority={"name": "", "email": "not-an-email"}, investigators=[],
                     facts="", legal_basis="", purpose="", retention_days=None, tlp="pink")
    named = {p.source for p in info.value.problems}
    assert named == {"reference", "title", "offence", "jurisdiction", "authority.name",
                     "authority.email", "investigators", "facts", "legal_basis", "purpose",
                     "retention_days", "tlp"}
    assert not store.root.exists() or not any(store.root.iterdir())


def test_unknown_offence_and_bad_reference_are_problems(store: CaseStore) -> None:
    with pytest.raises(ValidationError) as info:
        create(store, reference="../etc", offence="UNCC-99")
    assert {p.source for p in info.value.problems} == {"reference", "offence"}


def test_case_json_holds_the_adr_fields(store: CaseStore) -> None:
    case = create(store)
    doc = json.loads((case.folder / "case.json").read_text())
    assert doc["reference"] == "CT-2026-0001"
    assert doc["jurisdiction"] == "DE"
    assert doc["offence"]["code"] == "UNCC-17"
    assert doc["offence"]["national_law"] == "§ 261 StGB"
    assert doc["offence"]["max_penalty_years"] == 5
    assert doc["offence"]["speech_or_content"] is False
    assert doc["authority"]["poc_247"] == "+49 30 0000"
    assert doc["tlp"] == "amber" and doc["status"] == "open"
    assert doc["head"]["seq"] == 1
    assert doc["opened_at"].endswith("Z")
    with pytest.raises(InputError, match="already exists"):
        create(store)
    assert [m.reference for m in store.list_cases()] == ["CT-2026-0001"]


def test_offences_load_and_flag_speech_or_content() -> None:
    codes = {o.code for o in offences.all()}
    assert {f"UNCC-{n}" for n in range(7, 18)} <= codes
    assert {f"BUDAPEST-{n}" for n in range(2, 12)} <= codes
    flagged = {o.code for o in offences.all() if o.speech_or_content}
    assert "RU-DRAFT-EXTREMISM" in flagged and "RU-DRAFT-NAZISM" in flagged
    assert all(c.startswith("RU-DRAFT-") for c in flagged)
    assert offences.get("uncc-17").title == "Laundering of proceeds of crime"
    assert offences.is_serious_crime(4) is True and offences.is_serious_crime(3) is False
    with pytest.raises(InputError, match="UNCC-17"):
        offences.get("UNCC-99")


def test_a_speech_offence_case_carries_the_flag(store: CaseStore) -> None:
    case = create(store, offence="RU-DRAFT-EXTREMISM")
    assert case.meta().offence.speech_or_content is True


def test_retention_report(store: CaseStore) -> None:
    short = create(store, "CT-SHORT", retention_days=30)
    create(store, "CT-LONG", retention_days=3650)
    opened = date.fromisoformat(short.meta().opened_at[:10])
    assert store.due_for_deletion(opened) == []
    later = date.fromordinal(opened.toordinal() + 45)
    [due] = store.due_for_deletion(later)
    assert due["reference"] == "CT-SHORT"
    assert due["overdue_days"] == 15
    assert due["purpose"] == "criminal investigation"


def test_transfer_register(store: CaseStore) -> None:
    case = create(store)
    case.register_transfer("chief inspector", "trace report F0001", "Politie NL (JIT)",
                           "UNCC art 40; JIT agreement 2026/3", "no onward transfer")
    with pytest.raises(ValidationError) as info:
        case.register_transfer("ana", "export", "", "", "none")
    assert {p.source for p in info.value.problems} == {"to", "legal_basis"}
    [t] = case.snapshot()["transfers"]
    assert (t["what"], t["to"], t["legal_basis"], t["conditions"], t["by"]) == (
        "trace report F0001", "Politie NL (JIT)", "UNCC art 40; JIT agreement 2026/3",
        "no onward transfer", "chief inspector")
    assert case.entries()[-1].action == "transfer.register"


def test_addresses_are_checked_for_the_case_chain(store: CaseStore) -> None:
    case = create(store)
    case.attach_address(HAL, note="recipient")
    with pytest.raises(AddressError):
        case.attach_address(HAL[:-1] + "x")
    with pytest.raises(AddressError, match="litecoin"):
        case.attach_address(HAL, chain="litecoin")
    with pytest.raises(InputError, match="already attached"):
        case.attach_address(HAL)
    case.attach_cluster(42, note="exchange hot wallet")
    att = case.snapshot()["attachments"]
    assert [(a["chain"], a["address"], a["note"], a["added_by"]) for a in att["addresses"]] == [
        ("bitcoin", HAL, "recipient", "ana")]
    assert [c["cluster_id"] for c in att["clusters"]] == [42]


def test_snapshot_shape(store: CaseStore) -> None:
    case = create(store)
    case.note("seen on the forum")
    f = case.record_finding("trace", {"start": "abc"}, b'{"endpoints":{}}',
                            record={"tip_height": 1})
    art = case.add_artefact("artefacts/report.pdf", b"%PDF-1.7 fake")
    snap = case.snapshot()
    assert set(snap) == {"case", "notes", "attachments", "findings", "artefacts", "custody",
                         "custody_head", "transfers", "requests"}
    assert snap["notes"][0]["text"] == "seen on the forum"
    [finding] = snap["findings"]
    assert finding["id"] == f.id == "F0001"
    assert finding["result"] == {"endpoints": {}}
    assert finding["path"] == "findings/F0001.json"
    assert finding["record"] == {"tip_height": 1}
    assert [a["path"] for a in snap["artefacts"]] == ["artefacts/report.pdf"]
    assert snap["artefacts"][0]["sha256"] == art.sha256
    assert snap["custody_head"] == {"seq": 4, "hash": snap["custody"][-1]["hash"]}
    assert snap["custody_head"] == snap["case"]["head"]
    json.dumps(snap)  # plain JSON


def test_artefacts_stay_inside_and_are_never_overwritten(store: CaseStore) -> None:
    case = create(store)
    for bad in ("../x", "/etc/passwd", "case.json", "findings/F0001.json", "a/../../b"):
        with pytest.raises(InputError):
            case.add_artefact(bad, b"x")
    case.add_artefact("requests/R0001/request.json", b"{}")
    with pytest.raises(InputError, match="already exists"):
        case.add_artefact("requests/R0001/request.json", b'{"status":"approved"}')
    case.add_artefact("requests/R0001/request.json", b'{"status":"approved"}',
                      action="request.status", replace_existing=True)
    assert case.snapshot()["requests"] == [{"status": "approved"}]
    assert case.verify().ok


def test_roles_and_case_access(store: CaseStore) -> None:
    create(store)
    auditor = store.open("CT-2026-0001", Principal("aud", Role.AUDITOR))
    assert auditor.verify().ok
    with pytest.raises(PermissionDeniedError):
        auditor.note("auditors change nothing")
    with pytest.raises(PermissionDeniedError):
        store.open("CT-2026-0001", Principal("x", Role.ANALYST, cases=frozenset({"CT-OTHER"})))
    with pytest.raises(NotFoundError):
        store.open("CT-NOPE", ANA)
