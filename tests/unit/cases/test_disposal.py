"""Disposal of cases at the end of retention: who may, when, archive first, the register."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.auth import Principal, Role
from cointrail.cases import Case, CaseStore
from cointrail.cases.disposal import dispose, read_register, register_folder
from cointrail.errors import (
    InputError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    ValidationError,
)
from cointrail.interfaces.cli.main import app
from tests.unit.cases.test_case import ANA, create

CARL = Principal("carl", Role.APPROVER)
RULE = "retention rule 4.2 (LED art 5); file review of 2036-01-10"


@pytest.fixture
def store(tmp_path: Path) -> CaseStore:
    return CaseStore(tmp_path / "cases")


def _case(store: CaseStore, reference: str, days: int = 30) -> tuple[Case, date]:
    case = create(store, reference, retention_days=days)
    case.note("interview notes")
    case.add_artefact("attachments/statement.txt", b"victim statement\n")
    return case, date.fromisoformat(case.meta().opened_at[:10]) + timedelta(days=days)


def test_who_and_when(store: CaseStore) -> None:
    case, due = _case(store, "CT-D1")
    with pytest.raises(PermissionDeniedError):
        dispose(store, "CT-D1", ANA, action="delete", authority=RULE, today=due)
    with pytest.raises(ValidationError) as info:
        dispose(store, "CT-D1", CARL, action="shred", authority=" ", today=due)
    assert {p.source for p in info.value.problems} == {"action", "authority"}
    with pytest.raises(ValidationError, match="not disposed"):
        dispose(store, "CT-D1", CARL, action="archive", authority=RULE, today=due)
    with pytest.raises(InputError, match=f"not due for disposal until {due.isoformat()}"):
        dispose(store, "CT-D1", CARL, action="delete", authority=RULE,
                today=due - timedelta(days=1))
    assert case.folder.is_dir() and read_register(store).entries == []
    entry = dispose(store, "CT-D1", CARL, action="delete", authority="court order 12 Js 1/36",
                    today=due - timedelta(days=1), early=True)
    assert entry["parameters"]["early"] is True
    assert not case.folder.exists()


def test_delete_leaves_a_register_entry_and_nothing_else(store: CaseStore) -> None:
    case, due = _case(store, "CT-D2")
    head = case.meta().head
    files = sorted(p for p in case.folder.rglob("*") if p.is_file())
    entry = dispose(store, "CT-D2", CARL, action="delete", authority=RULE, today=due)
    assert not case.folder.exists()
    assert store.references() == []
    assert [p.name for p in store.root.iterdir()] == [register_folder(store).name]
    p = entry["parameters"]
    assert (entry["action"], entry["who"], entry["role"]) == ("case.delete", "carl", "approver")
    assert p["custody_head"] == head.to_dict() and p["files"] == len(files)
    assert p["authority"] == RULE and p["archive"] is None and p["due_on"] == due.isoformat()
    report = read_register(store)
    assert report.ok and [e.hash for e in report.entries] == [entry["hash"]]
    with pytest.raises(NotFoundError, match=r"was disposed of \(case\.delete\)"):
        store.open("CT-D2", CARL)
    with pytest.raises(InputError, match="already disposed of"):
        dispose(store, "CT-D2", CARL, action="delete", authority=RULE, today=due)


def test_archive_is_verified_before_deletion(store: CaseStore, tmp_path: Path) -> None:
    case, due = _case(store, "CT-D3")
    originals = {p.relative_to(case.folder).as_posix(): p.read_bytes()
                 for p in case.folder.rglob("*") if p.is_file()}
    entry = dispose(store, "CT-D3", CARL, action="archive", authority=RULE, today=due,
                    archive_dir=tmp_path / "archive")
    archive = entry["parameters"]["archive"]
    zpath = Path(archive["path"])
    assert zpath.name == f"CT-D3-archive-{due.isoformat()}.zip"
    assert hashlib.sha256(zpath.read_bytes()).hexdigest() == archive["sha256"]
    with zipfile.ZipFile(zpath) as z:
        manifest_bytes = z.read("disposal-manifest.json")
        manifest = json.loads(manifest_bytes)
        kept = {n.removeprefix("CT-D3/"): z.read(n) for n in z.namelist()
                if n.startswith("CT-D3/")}
    assert kept == originals  # every file of the case, byte for byte
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {
        k: hashlib.sha256(v).hexdigest() for k, v in originals.items()}
    assert entry["result_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
    assert not case.folder.exists()


def test_a_tampered_case_is_not_disposed_of(store: CaseStore) -> None:
    case, due = _case(store, "CT-D4")
    (case.folder / "attachments" / "statement.txt").write_bytes(b"edited\n")
    with pytest.raises(StoreError, match="does not verify"):
        dispose(store, "CT-D4", CARL, action="delete", authority=RULE, today=due)
    assert case.folder.is_dir() and read_register(store).entries == []


def test_a_run_that_stopped_after_registering_is_finished(store: CaseStore,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    from cointrail.cases import disposal

    case, due = _case(store, "CT-D5")

    def crash(folder: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(disposal, "_remove", crash)
    with pytest.raises(KeyboardInterrupt):
        dispose(store, "CT-D5", CARL, action="delete", authority=RULE, today=due)
    assert case.folder.is_dir() and len(read_register(store).entries) == 1
    monkeypatch.undo()
    again = dispose(store, "CT-D5", CARL, action="delete", authority=RULE, today=due)
    assert again == read_register(store).entries[0].to_dict()  # one entry, not two
    assert not case.folder.exists()


def test_an_edited_register_is_reported(store: CaseStore) -> None:
    for ref in ("CT-D6", "CT-D7"):
        _, due = _case(store, ref)
        dispose(store, ref, CARL, action="delete", authority=RULE, today=due)
    log = register_folder(store) / "custody.jsonl"
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    first["parameters"]["authority"] = "nobody"
    log.write_text(json.dumps(first) + "\n" + lines[1] + "\n")
    report = read_register(store)
    assert not report.ok
    assert any("line 1" in p and "edited" in p for p in report.problems)


def test_cli_dispose_and_register(tmp_path: Path) -> None:
    from cointrail.auth.keys import create_key

    env = {"COINTRAIL_STORE": None, "COINTRAIL_API_KEY": None, "COINTRAIL_USER": "ana"}
    store = CaseStore(tmp_path / "cases")
    _, due = _case(store, "CT-D8")
    approver = create_key(tmp_path, "Carl Chief", "approver").secret
    runner = CliRunner()
    base = ["--store", str(tmp_path), "case"]
    listed = runner.invoke(app, [*base, "retention", "--today", due.isoformat()], env=env)
    assert listed.exit_code == 0 and listed.stdout.startswith("CT-D8: due ")
    assert "cointrail case dispose REF --action delete|archive" in listed.stdout
    denied = runner.invoke(app, [*base, "dispose", "CT-D8", "--action", "delete",
                                 "--authority", RULE, "--today", due.isoformat()], env=env)
    assert denied.exit_code == 3  # the local analyst may not
    done = runner.invoke(app, [*base, "dispose", "CT-D8", "--action", "archive", "--to",
                               str(tmp_path / "arch"), "--authority", RULE, "--today",
                               due.isoformat(), "--json"],
                         env={**env, "COINTRAIL_API_KEY": approver})
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["who"] == "Carl Chief"
    listing = runner.invoke(app, [*base, "disposals"], env=env)
    assert listing.exit_code == 0
    assert "CT-D8: case.archive by Carl Chief (approver)" in listing.stdout
    assert "register chain: verified" in listing.stdout
    gone = runner.invoke(app, [*base, "show", "CT-D8"], env=env)
    assert gone.exit_code != 0 and "was disposed of" in gone.output
