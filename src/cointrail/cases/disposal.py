"""Disposal of a case when its retention period has run out: deletion or archival, with the
authority that orders it, recorded in a register that outlives the case.

Data protection asks for retention timers that end in deletion or archival (UNCC art 36,
Second Additional Protocol art 14, and for EU agencies Directive 2016/680 art 5; LEGAL.md §2
row 20 and §6 item 8, "disposition: return, destruction or retention, with authority").
`cointrail case retention` lists the cases that are due; `dispose` carries the decision out:

- only a principal with the ``approve`` capability may dispose of a case, and only a case
  whose retention has run out (``--early`` with the authority that orders it otherwise: a court
  order, a data-subject erasure decision);
- the case's custody log must verify first: disposal would destroy the evidence of a problem;
- ``archive`` writes the whole case folder and a manifest (every file with its SHA-256) into one
  zip in a directory the agency chooses, reads the zip back and checks every member against
  the manifest before anything is deleted;
- the register ``<store>/cases/.disposals/custody.jsonl`` (append-only, hash-chained, the same
  format and locking as a case's custody log) gets one entry per disposal: the case, the
  action, who, role, when, the authority, the case's last custody head, the manifest's SHA-256
  and the archive's path and SHA-256. It keeps no personal data of the case beyond its
  reference;
- then the case folder is renamed out of the way (one atomic step: the case is gone for every
  command) and removed. Running the same command again after a crash finishes the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cointrail.auth import Principal, require
from cointrail.cases.canonical import ZERO_HASH
from cointrail.cases.case import Case, CaseStore, _tool_version, retention_due
from cointrail.cases.custody import CustodyLog, entry_hash, read_lines
from cointrail.cases.models import CustodyEntry
from cointrail.cases.verify import CASE_FILE
from cointrail.errors import InputError, Problem, StoreError, ValidationError

REGISTER = ".disposals"
ACTIONS = ("delete", "archive")
MANIFEST = "disposal-manifest.json"


@dataclass(frozen=True, slots=True)
class RegisterReport:
    """The register's entries and whether its chain holds (`problems` empty)."""

    entries: list[CustodyEntry]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems,
                "disposals": [e.to_dict() for e in self.entries]}


def register_folder(store: CaseStore) -> Path:
    return store.root / REGISTER


def due_on(case: Case) -> date:
    due: date = retention_due(case.meta())[1]
    return due


def _manifest(folder: Path) -> dict[str, Any]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files.append({"path": path.relative_to(folder).as_posix(), "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
    return {"files": files, "total_bytes": sum(f["size"] for f in files)}


def _write_archive(folder: Path, target: Path, manifest_bytes: bytes,
                   manifest: dict[str, Any]) -> str:
    """Write the zip, read it back, check every member; returns the zip's SHA-256."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(MANIFEST, manifest_bytes)
        for f in manifest["files"]:
            z.write(folder / f["path"], f"{folder.name}/{f['path']}")
    with zipfile.ZipFile(tmp) as z:
        bad = z.testzip()
        if bad is not None:
            raise StoreError(f"the archive {tmp} is damaged at {bad}; nothing was deleted")
        for f in manifest["files"]:
            got = hashlib.sha256(z.read(f"{folder.name}/{f['path']}")).hexdigest()
            if got != f["sha256"]:
                raise StoreError(f"the archive {tmp} holds {f['path']} with SHA-256 {got}, "
                                 f"not {f['sha256']}; nothing was deleted")
        if z.read(MANIFEST) != manifest_bytes:
            raise StoreError(f"the archive {tmp} holds a different manifest; nothing was "
                             "deleted")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(target)
    return hashlib.sha256(target.read_bytes()).hexdigest()


def _remove(folder: Path) -> None:
    """Rename the case folder out of the case namespace (atomic), then delete it."""
    doomed = folder.with_name(f".{folder.name}.disposed-{os.getpid()}")
    folder.replace(doomed)
    shutil.rmtree(doomed)


def _finish_interrupted(store: CaseStore) -> None:
    """Folders renamed for deletion by a run that crashed: remove them."""
    if store.root.is_dir():
        for path in store.root.iterdir():
            if path.name.startswith(".") and ".disposed-" in path.name and path.is_dir():
                shutil.rmtree(path)


def _already_registered(store: CaseStore, reference: str) -> CustodyEntry | None:
    for entry in read_register(store).entries:
        if entry.parameters.get("reference") == reference:
            return entry
    return None


def dispose(store: CaseStore, reference: str, principal: Principal, *, action: str,
            authority: str, today: date, archive_dir: Path | None = None,
            early: bool = False) -> dict[str, Any]:
    """Delete or archive case `reference` (see the module docstring); returns the register
    entry as a dict."""
    require(principal, "approve", f"dispose of case {reference}")
    problems = []
    if action not in ACTIONS:
        problems.append(Problem("action", None, f"{action!r} must be one of "
                                f"{', '.join(ACTIONS)}"))
    if not authority or not authority.strip():
        problems.append(Problem("authority", None, "missing: name the decision or rule that "
                                "orders the disposal (e.g. the retention rule and its article)"))
    if action == "archive" and archive_dir is None:
        problems.append(Problem("archive_dir", None, "missing: archival needs --to DIR"))
    if problems:
        raise ValidationError(f"case {reference} not disposed of (nothing was changed)", problems)
    _finish_interrupted(store)
    folder = store.folder(reference)
    previous = _already_registered(store, folder.name)
    if previous is not None and (folder / CASE_FILE).is_file():
        _remove(folder)  # registered by a run that stopped before deleting: finish it
        return previous.to_dict()
    if previous is not None:
        raise InputError(f"case {folder.name} was already disposed of "
                         f"({previous.action}, {previous.at}, by {previous.who}); see "
                         "`cointrail case disposals`")
    case = store.open(reference, principal)
    meta = case.meta()
    due = due_on(case)
    if due > today and not early:
        raise InputError(
            f"case {meta.reference} is not due for disposal until {due.isoformat()} "
            f"({meta.retention_days} days from {(meta.closed_at or meta.opened_at)[:10]}); "
            "pass --early only with the authority that orders an earlier disposal")
    report = case.verify()
    if not report.ok:
        raise StoreError(
            f"the custody log of case {meta.reference} does not verify ({len(report.problems)} "
            "problem(s)); resolve them with `cointrail case verify` and `cointrail case "
            "repair` first: disposal would destroy the evidence of the problem")
    manifest = _manifest(case.folder)
    manifest.update({"reference": meta.reference, "custody_head": meta.head.to_dict(),
                     "action": action, "authority": authority.strip()})
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    archive: dict[str, str] | None = None
    if action == "archive":
        assert archive_dir is not None
        archive_dir.mkdir(parents=True, exist_ok=True)
        target = archive_dir / f"{meta.reference}-archive-{today.isoformat()}.zip"
        if target.exists():
            raise InputError(f"{target} already exists; choose another --to directory")
        archive = {"path": str(target.resolve()),
                   "sha256": _write_archive(case.folder, target, manifest_bytes, manifest)}
    parameters = {
        "reference": meta.reference, "authority": authority.strip(), "early": early,
        "due_on": due.isoformat(), "today": today.isoformat(), "status": str(meta.status),
        "custody_head": meta.head.to_dict(), "files": len(manifest["files"]),
        "bytes": manifest["total_bytes"], "manifest_sha256": manifest_sha, "archive": archive,
    }
    register = register_folder(store)
    register.mkdir(parents=True, exist_ok=True)
    with CustodyLog(register).locked() as w:
        entry = w.append(
            who=principal.name, role=str(principal.role), action=f"case.{action}",
            what=f"{'archived and deleted' if archive else 'deleted'} case {meta.reference}",
            parameters=parameters, result_sha256=manifest_sha, tool_version=_tool_version())
    _remove(case.folder)
    return entry.to_dict()


def read_register(store: CaseStore) -> RegisterReport:
    """The disposal register with its chain checked (sequence, previous hash, own hash)."""
    path = register_folder(store) / "custody.jsonl"
    if not path.exists():
        return RegisterReport([], [])
    entries: list[CustodyEntry] = []
    problems: list[str] = []
    prev = ZERO_HASH
    for line in read_lines(path):
        doc = line.parse()
        if doc is None or not line.terminated:
            problems.append(f"line {line.number} is not a whole register entry")
            continue
        try:
            entry = CustodyEntry.from_dict(doc)
        except (KeyError, TypeError):
            problems.append(f"line {line.number} lacks register fields")
            continue
        if entry.seq != len(entries) + 1:
            problems.append(f"line {line.number}: seq {entry.seq}, expected {len(entries) + 1}")
        if entry.prev_hash != prev:
            problems.append(f"line {line.number}: does not link to the entry before it")
        if entry_hash(doc) != entry.hash:
            problems.append(f"line {line.number}: its content does not match its hash "
                            "(edited)")
        prev = entry.hash
        entries.append(entry)
    return RegisterReport(entries, problems)


def disposed(store: CaseStore, reference: str) -> CustodyEntry | None:
    """The register entry of a disposed case, or None."""
    try:
        name = store.folder(reference).name
    except InputError:
        return None
    return _already_registered(store, name)
