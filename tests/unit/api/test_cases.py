"""Case routes through the API: open a case, note, attach, keep a trace as a finding, read and
verify the custody log (API reads logged there too), write the report and download it; a key
restricted to another case is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastapi.testclient import TestClient

from cointrail.auth import Role
from cointrail.auth.keys import create_key
from cointrail.cases import CaseStore
from tests.unit.api.conftest import BLOCK_9_COINBASE, CASE, HAL, Keys, auth


def test_case_workflow(client: TestClient, keys: Keys, store_root: Path) -> None:
    h = auth(keys.analyst)
    ref = CASE["reference"]
    made = client.post("/api/v1/cases", json=CASE, headers=h)
    assert made.status_code == 201, made.text
    assert made.json()["reference"] == ref
    again = client.post("/api/v1/cases", json=CASE, headers=h)
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    bad = client.post("/api/v1/cases", json=CASE | {"reference": "CT-X-1", "offence": "NOPE"},
                      headers=h)
    assert bad.status_code == 400 and bad.json()["error"] == "ValidationError"

    assert client.post(f"/api/v1/cases/{ref}/notes", json={"text": "started"},
                       headers=h).status_code == 201
    assert client.post(f"/api/v1/cases/{ref}/attachments", json={"address": HAL},
                       headers=h).status_code == 201
    wrong = client.post(f"/api/v1/cases/{ref}/attachments",
                        json={"address": "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"}, headers=h)
    assert wrong.status_code == 400 and wrong.json()["error"] == "AddressError"
    traced = client.post(f"/api/v1/cases/{ref}/traces",
                         json={"start": f"{BLOCK_9_COINBASE}:0", "model": "fifo", "hops": 1},
                         headers=h)
    assert traced.status_code == 201, traced.text
    finding = traced.json()["finding"]
    assert finding["id"] == "F0001"

    snapshot = client.get(f"/api/v1/cases/{ref}", headers=h).json()
    assert [n["text"] for n in snapshot["notes"]] == ["started"]
    assert snapshot["attachments"]["addresses"][0]["address"] == HAL
    assert snapshot["findings"][0]["result_sha256"] == finding["sha256"]

    custody = client.get(f"/api/v1/cases/{ref}/custody", headers=h).json()["entries"]
    actions = [e["action"] for e in custody]
    assert actions[:6] == ["case.open", "case.note", "attach.address", "query.trace",
                           "finding.record", "query.api"]  # the snapshot read, logged
    assert all(e["who"] == "test-analyst" for e in custody)
    verified = client.get(f"/api/v1/cases/{ref}/custody/verify",
                          headers=auth(keys.auditor)).json()
    assert verified["ok"] is True

    report = client.post(f"/api/v1/cases/{ref}/report", headers=h)
    assert report.status_code == 201, report.text
    pdf = next(f for f in report.json()["files"] if f["path"].endswith("report.pdf"))
    got = client.get(f"/api/v1/cases/{ref}/files", params={"path": pdf["path"]}, headers=h)
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert hashlib.sha256(got.content).hexdigest() == pdf["sha256"] == got.headers[
        "x-content-sha256"]
    sneaky = client.get(f"/api/v1/cases/{ref}/files", params={"path": "../../auth.sqlite"},
                        headers=h)
    assert sneaky.status_code == 404

    exported = client.post(f"/api/v1/cases/{ref}/exports", headers=h, json={
        "to": "FIU Partner", "legal_basis": "UNCC art 40(4)", "formats": ["stix", "csv", "xlsx"]})
    assert exported.status_code == 201, exported.text
    files = {f["path"].rsplit("/", 1)[-1]: f for f in exported.json()["files"]}
    assert {"manifest.json", "stix-bundle.json", "identifiers.csv"} <= set(files)
    assert "misp-event.json" not in files  # only the formats asked for
    xlsx = next(f for name, f in files.items() if name.endswith(".xlsx"))
    sheet = client.get(f"/api/v1/cases/{ref}/files", params={"path": xlsx["path"]}, headers=h)
    assert sheet.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert sheet.content.startswith(b"PK")  # an Office Open XML package
    manifest = client.get(f"/api/v1/cases/{ref}/files",
                          params={"path": files["manifest.json"]["path"]}, headers=h)
    assert hashlib.sha256(manifest.content).hexdigest() == files["manifest.json"]["sha256"]
    listed = json.loads(manifest.content)
    assert listed["custody_head"]["seq"] >= 1
    transfers = client.get(f"/api/v1/cases/{ref}", headers=h).json()["transfers"]
    assert transfers[-1]["to"] == "FIU Partner"
    assert transfers[-1]["legal_basis"] == "UNCC art 40(4)"
    for bad in ({"formats": ["pdf"]}, {"goaml_profile": "../../etc/passwd"}):
        refused = client.post(f"/api/v1/cases/{ref}/exports", headers=h, json={
            "to": "FIU Partner", "legal_basis": "UNCC art 40(4)"} | bad)
        assert 400 <= refused.status_code < 500, refused.text
    assert CaseStore.for_store(store_root).open(ref, _analyst()).verify().ok


def _analyst():  # type: ignore[no-untyped-def]
    from cointrail.auth import Principal

    return Principal("checker", Role.ANALYST)


def test_case_restricted_key(client: TestClient, keys: Keys, store_root: Path) -> None:
    ref = "CT-2026-0043"
    assert client.post("/api/v1/cases", json=CASE | {"reference": ref},
                       headers=auth(keys.analyst)).status_code == 201
    other = create_key(store_root, "elsewhere", "analyst", ["CT-2026-9999"]).secret
    r = client.get(f"/api/v1/cases/{ref}", headers=auth(other))
    assert r.status_code == 403 and r.json()["error"] == "PermissionDeniedError"
    listed = client.get("/api/v1/cases", headers=auth(other)).json()["cases"]
    assert ref not in [c["reference"] for c in listed]
    mine = create_key(store_root, "here", "analyst", [ref]).secret
    assert client.get(f"/api/v1/cases/{ref}", headers=auth(mine)).status_code == 200
    assert client.get("/api/v1/cases/CT-NONE-0001", headers=auth(keys.analyst)).status_code \
        == 404
