"""Cases: `CaseStore` creates, opens and lists case folders; `Case` is the one writer of a
case folder (ADR 0004).

Invariant: every change to the folder is a custody entry, appended under the log's lock, and
``case.json``'s ``head`` is rewritten under the same lock right after, so a reader sees a head
that is at most one interrupted write behind. Notes, attachments and transfers live only on
the log; `snapshot` folds them from it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

from cointrail.auth import Principal, require
from cointrail.cases import offences
from cointrail.cases.canonical import canonical_bytes, normalised, sha256_hex
from cointrail.cases.custody import Appender, CustodyLog, utc_now
from cointrail.cases.models import (
    Artefact,
    Authority,
    CaseMeta,
    CaseStatus,
    CustodyEntry,
    Finding,
    Head,
    OffenceRef,
    Tlp,
    check_reference,
    validation_problems,
)
from cointrail.cases.verify import CASE_FILE, VerifyReport, verify_folder
from cointrail.errors import InputError, NotFoundError, StoreError, ValidationError

FINDING_KINDS = ("trace", "path", "exposure", "screening", "cluster", "explain", "flags")
#: Actions whose entries record a file; `artefacts` in the snapshot lists them (not findings).
FINDING_ACTION = "finding.record"
_ACTION = re.compile(r"^[a-z]+(\.[a-z_]+)+$")
#: Fields `Case.update` may change (reference, opened_* and head never change).
UPDATABLE = ("title", "offence", "jurisdiction", "authority", "investigators", "facts",
             "legal_basis", "purpose", "retention_days", "tlp", "status")


def _tool_version() -> str:
    from cointrail import __version__

    return f"cointrail {__version__}"


def _check_relpath(relpath: str) -> str:
    path = PurePosixPath(relpath)
    if (not relpath or path.is_absolute() or ".." in path.parts or "\\" in relpath
            or path.parts[0] in (CASE_FILE, "custody.jsonl", "findings")
            or str(path) != relpath):
        raise InputError(f"artefact path {relpath!r} must be a plain relative path inside the "
                         "case folder (e.g. artefacts/report.pdf), not case.json, "
                         "custody.jsonl or findings/")
    return relpath


class Case:
    """One open case, acting for `principal`. Obtain it from `CaseStore.open` or `create`."""

    def __init__(self, folder: Path, principal: Principal) -> None:
        self.folder = folder
        self.principal = principal
        self.custody = CustodyLog(folder)

    # -- reading -------------------------------------------------------------------------------

    @property
    def reference(self) -> str:
        return self.meta().reference

    def meta(self) -> CaseMeta:
        try:
            return CaseMeta.from_dict(json.loads((self.folder / CASE_FILE).read_bytes()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{self.folder / CASE_FILE} is unreadable ({exc!r}); run "
                             "`cointrail case verify`") from exc

    def entries(self) -> list[CustodyEntry]:
        return self.custody.entries()

    def head(self) -> Head:
        return self.meta().head

    def findings(self) -> list[Finding]:
        out = []
        for e in self.entries():
            if e.action == FINDING_ACTION:
                p = e.parameters
                out.append(Finding(p["id"], p["kind"], e.at, e.who, p["request"], p["record"],
                                   str(e.result_sha256), p["file"]["path"], e.seq))
        return out

    def finding(self, finding_id: str) -> Finding:
        for f in self.findings():
            if f.id == finding_id.upper():
                return f
        raise NotFoundError(f"case {self.folder.name} has no finding {finding_id}; "
                            "`cointrail case show` lists them")

    def read_finding(self, finding: Finding) -> bytes:
        return (self.folder / finding.path).read_bytes()

    def artefacts(self) -> list[Artefact]:
        """Files recorded on the log (the latest entry per path), findings excluded."""
        latest: dict[str, Artefact] = {}
        for e in self.entries():
            file = e.parameters.get("file")
            if e.action == FINDING_ACTION or not isinstance(file, dict):
                continue
            latest[file["path"]] = Artefact(file["path"], str(e.result_sha256),
                                            int(file["size"]), e.action, e.at, e.who, e.seq)
        return list(latest.values())

    def verify(self) -> VerifyReport:
        return verify_folder(self.folder)

    def snapshot(self) -> dict[str, Any]:
        """The one plain dict reports, exports and requests read (ADR 0004)."""
        meta = self.meta()
        entries = self.entries()
        notes, addresses, clusters, transfers = [], [], [], []
        for e in entries:
            p = e.parameters
            if e.action == "case.note":
                notes.append({"at": e.at, "who": e.who, "text": p["text"], "seq": e.seq})
            elif e.action == "attach.address":
                addresses.append({"chain": p["chain"], "network": p["network"],
                                  "address": p["address"], "note": p.get("note", ""),
                                  "added_at": e.at, "added_by": e.who})
            elif e.action == "attach.cluster":
                clusters.append({"chain": p["chain"], "network": p["network"],
                                 "cluster_id": p["cluster_id"], "note": p.get("note", ""),
                                 "added_at": e.at, "added_by": e.who})
            elif e.action == "transfer.register":
                transfers.append({"at": e.at, "what": p["what"], "to": p["to"],
                                  "legal_basis": p["legal_basis"],
                                  "conditions": p["conditions"], "by": p["by"],
                                  "registered_by": e.who, "seq": e.seq})
        findings = []
        for f in self.findings():
            doc = f.to_dict()
            doc["result"] = json.loads(self.read_finding(f))
            findings.append(doc)
        requests = []
        for path in sorted((self.folder / "requests").glob("*/request.json")):
            requests.append(json.loads(path.read_bytes()))
        return {
            "case": meta.to_dict(), "notes": notes,
            "attachments": {"addresses": addresses, "clusters": clusters},
            "findings": findings, "artefacts": [a.to_dict() for a in self.artefacts()],
            "custody": [e.to_dict() for e in entries],
            "custody_head": (Head(entries[-1].seq, entries[-1].hash) if entries
                             else meta.head).to_dict(),
            "transfers": transfers, "requests": requests,
        }

    # -- writing -------------------------------------------------------------------------------

    def _append(self, w: Appender, action: str, what: str, parameters: Mapping[str, Any] | None,
                result_sha256: str | None, meta: CaseMeta | None = None) -> CustodyEntry:
        if not _ACTION.fullmatch(action):
            raise InputError(f"custody action {action!r} must be a dotted lower-case name "
                             "such as query.trace")
        entry = w.append(who=self.principal.name, role=str(self.principal.role),
                         action=action, what=what, parameters=parameters,
                         result_sha256=result_sha256, tool_version=_tool_version())
        self._write_meta(replace(meta or self.meta(), head=Head(entry.seq, entry.hash)))
        return entry

    def _write_meta(self, meta: CaseMeta) -> None:
        data = json.dumps(meta.to_dict(), indent=2, ensure_ascii=False).encode() + b"\n"
        tmp = self.folder / f".case.json.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.folder / CASE_FILE)

    def _check_head(self, w: Appender) -> None:
        recorded = self.meta().head
        if recorded != w.head:
            raise StoreError(
                f"case {self.folder.name}: the custody log ends at seq {w.head.seq} but "
                f"case.json records seq {recorded.seq}; run `cointrail case verify` (and "
                "`cointrail case repair` after an interrupted write) before adding to it")

    def _writable(self, action: str) -> None:
        require(self.principal, "investigate", f"write to case {self.folder.name} ({action})")

    def log(self, action: str, what: str, *, parameters: Mapping[str, Any] | None = None,
            result_sha256: str | None = None) -> CustodyEntry:
        """Append one custody entry (who, role and time from the principal and the clock)."""
        self._writable(action)
        with self.custody.locked() as w:
            self._check_head(w)
            return self._append(w, action, what, parameters, result_sha256)

    def add_artefact(self, relpath: str, data: bytes, *, action: str = "artefact.write",
                     what: str | None = None, parameters: Mapping[str, Any] | None = None,
                     replace_existing: bool = False) -> Artefact:
        """Write `data` to `relpath` inside the case folder and log its SHA-256 and size.

        A file is never overwritten unless `replace_existing` (e.g. a request.json whose status
        changed); the earlier version's hash stays on the log."""
        self._writable(action)
        rel = _check_relpath(relpath)
        target = self.folder / rel
        digest = sha256_hex(data)
        params = dict(parameters or {}) | {"file": {"path": rel, "size": len(data)}}
        with self.custody.locked() as w:
            self._check_head(w)
            if target.exists() and not replace_existing:
                raise InputError(f"{rel} already exists in case {self.folder.name}; choose "
                                 "another name (files are never overwritten silently)")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(target)
            entry = self._append(w, action, what or f"wrote {rel}", params, digest)
        return Artefact(rel, digest, len(data), action, entry.at, entry.who, entry.seq)

    def record_finding(self, kind: str, request: Mapping[str, Any], result: bytes | Any, *,
                       record: Mapping[str, Any] | None = None,
                       what: str | None = None) -> Finding:
        """Keep a query result as evidence: its raw bytes in ``findings/F0001.json`` and a
        ``finding.record`` entry with the request that re-runs it. `result` is the raw result
        bytes, or a JSON value written as canonical JSON."""
        if kind not in FINDING_KINDS:
            raise InputError(f"finding kind {kind!r}: use one of {', '.join(FINDING_KINDS)}")
        self._writable(FINDING_ACTION)
        data = result if isinstance(result, bytes) else canonical_bytes(result)
        digest = sha256_hex(data)
        findings = self.folder / "findings"
        findings.mkdir(exist_ok=True)
        with self.custody.locked() as w:
            self._check_head(w)
            number = 1 + sum(1 for _ in findings.glob("F*.json"))
            while True:
                fid = f"F{number:04d}"
                try:
                    with (findings / f"{fid}.json").open("xb") as f:
                        f.write(data)
                        f.flush()
                        os.fsync(f.fileno())
                    break
                except FileExistsError:
                    number += 1
            rel = f"findings/{fid}.json"
            params = {"id": fid, "kind": kind, "request": normalised(dict(request)),
                      "record": normalised(dict(record or {})),
                      "file": {"path": rel, "size": len(data)}}
            entry = self._append(w, FINDING_ACTION, what or f"recorded {kind} finding {fid}",
                                 params, digest)
        return Finding(fid, kind, entry.at, entry.who, params["request"], params["record"],
                       digest, rel, entry.seq)

    def record_query(self, action_kind: str, finding_kind: str, request: Mapping[str, Any],
                     result: Any, *, record: Mapping[str, Any] | None = None,
                     what: str = "") -> Finding:
        """A query made in the case: a ``query.<action_kind>`` entry with its parameters and
        the result's SHA-256, then the result kept as a finding."""
        data = canonical_bytes(result)
        self.log(f"query.{action_kind}", what or f"{action_kind} query",
                 parameters=dict(request), result_sha256=sha256_hex(data))
        return self.record_finding(finding_kind, request, data, record=record, what=what or None)

    def note(self, text: str) -> CustodyEntry:
        if not text.strip():
            raise InputError("the note is empty; give its text")
        return self.log("case.note", "note", parameters={"text": text})

    def attach_address(self, address: str, *, chain: str | None = None,
                       network: str | None = None, note: str = "") -> CustodyEntry:
        """Attach an address, validated for `chain`/`network` (default: the case's)."""
        from cointrail.chain.spec import Family, get_chain

        meta = self.meta()
        spec = get_chain(chain or meta.chain, network or meta.network)
        text = address.strip()
        if spec.family is Family.UTXO:
            from cointrail.chain.utxo.address import parse_address

            parse_address(text, spec)
        attached = [e.parameters for e in self.entries() if e.action == "attach.address"]
        if any(p["address"] == text and p["chain"] == spec.chain and p["network"] == spec.network
               for p in attached):
            raise InputError(f"{text} is already attached to case {meta.reference}")
        return self.log("attach.address", f"attached address {text}", parameters={
            "chain": spec.chain, "network": spec.network, "address": text, "note": note})

    def attach_cluster(self, cluster_id: int, *, chain: str | None = None,
                       network: str | None = None, note: str = "") -> CustodyEntry:
        from cointrail.chain.spec import get_chain

        meta = self.meta()
        spec = get_chain(chain or meta.chain, network or meta.network)
        if cluster_id < 0:
            raise InputError(f"cluster id {cluster_id} must be 0 or more")
        return self.log("attach.cluster", f"attached cluster {cluster_id}", parameters={
            "chain": spec.chain, "network": spec.network, "cluster_id": cluster_id,
            "note": note})

    def update(self, **changes: Any) -> CustodyEntry:
        """Change metadata fields (`UPDATABLE`); logs ``case.update`` with old and new values.
        `offence` takes a taxonomy code or a dict with ``code``, ``national_law``,
        ``max_penalty_years``; `authority` a dict of Authority fields."""
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise InputError(f"cannot change {', '.join(unknown)}; changeable fields: "
                             f"{', '.join(UPDATABLE)}")
        self._writable("case.update")
        with self.custody.locked() as w:
            self._check_head(w)
            meta = self.meta()
            new = _apply_changes(meta, changes)
            old_doc, new_doc = meta.to_dict(), new.to_dict()
            changed = {k: new_doc[k] for k in new_doc if k != "head" and new_doc[k] != old_doc[k]}
            if not changed:
                raise InputError("nothing to change: the values given are the case's already")
            before = {k: old_doc[k] for k in changed}
            return self._append(w, "case.update", f"changed {', '.join(sorted(changed))}",
                                {"set": changed, "previous": before}, None, new)

    def register_transfer(self, by: str, what: str, to: str, legal_basis: str,
                          conditions: str) -> CustodyEntry:
        """Record a transfer of case data (UNCC art 36): what went to whom, on which legal
        basis, under which conditions, authorised `by` whom."""
        fields = {"by": by, "what": what, "to": to, "legal_basis": legal_basis,
                  "conditions": conditions}
        missing = [k for k, v in fields.items() if not v or not v.strip()]
        if missing:
            from cointrail.errors import Problem

            raise ValidationError("transfer not registered", [
                Problem(k, None, "missing") for k in missing])
        return self.log("transfer.register", f"transfer of {what} to {to}", parameters=fields)

    def repair(self) -> list[CustodyEntry]:
        """Repair what an interrupted write leaves, never dropping a byte silently:

        - a torn last line is moved to ``quarantine/torn-<seq>-<sha8>.bin`` and a
          ``case.repair`` entry records that file and its SHA-256;
        - a head in case.json one or more entries behind an intact chain is advanced, with a
          ``case.repair`` entry naming the entries it took in.

        Any other problem is left for a person to judge (StoreError lists them)."""
        from cointrail.cases.verify import ProblemKind

        self._writable("case.repair")
        report = self.verify()
        fixable = {ProblemKind.TORN, ProblemKind.BEYOND_HEAD}
        other = [p for p in report.problems if p.kind not in fixable]
        if other:
            raise StoreError(f"case {self.folder.name} has problems repair does not fix: "
                             + "; ".join(str(p) for p in other[:5])
                             + "; keep the folder as it is and report it")
        done: list[CustodyEntry] = []
        kinds = report.kinds()
        torn: bytes | None = None
        rel = ""
        if ProblemKind.TORN in kinds:
            raw = self.custody.path.read_bytes()
            data = raw[raw.rfind(b"\n") + 1:]
            seq = (report.head_log.seq if report.head_log else 0) + 1
            rel = f"quarantine/torn-{seq}-{sha256_hex(data)[:8]}.bin"
            torn = self.custody.quarantine_torn_tail(self.folder / rel)
        if ProblemKind.BEYOND_HEAD in kinds:
            with self.custody.locked() as w:
                old = self.meta().head
                done.append(self._append(
                    w, "case.repair", f"recorded seq {old.seq + 1}-{w.head.seq} in case.json "
                    "after an interrupted write", {"head_before": old.to_dict(),
                                                   "head_after": w.head.to_dict()}, None))
        if torn is not None:
            done.append(self.log(
                "case.repair", f"quarantined a torn last line ({len(torn)} bytes) to {rel}",
                parameters={"file": {"path": rel, "size": len(torn)},
                            "reason": "interrupted write: last line without newline"},
                result_sha256=sha256_hex(torn)))
        return done


def _apply_changes(meta: CaseMeta, changes: Mapping[str, Any]) -> CaseMeta:
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "offence":
            spec = value if isinstance(value, Mapping) else {"code": value}
            off = offences.get(str(spec.get("code", meta.offence.code)))
            values["offence"] = OffenceRef(
                off.code, off.instrument, off.article, off.title, off.speech_or_content,
                str(spec.get("national_law", meta.offence.national_law)),
                spec.get("max_penalty_years", meta.offence.max_penalty_years),
                offences.version())
        elif key == "authority":
            values["authority"] = replace(meta.authority, **dict(value))
        elif key == "investigators":
            values["investigators"] = tuple(value)
        elif key == "tlp":
            values["tlp"] = Tlp(str(value).lower())
        elif key == "status":
            status = CaseStatus(str(value).lower())
            values["status"] = status
            values["closed_at"] = utc_now() if status is CaseStatus.CLOSED else None
        elif key == "jurisdiction":
            values["jurisdiction"] = str(value).strip().upper()
        else:
            values[key] = value
    flat = {"reference": meta.reference, "title": values.get("title", meta.title),
            "offence": (values.get("offence") or meta.offence).code,
            "jurisdiction": values.get("jurisdiction", meta.jurisdiction),
            "authority.name": (values.get("authority") or meta.authority).name,
            "authority.email": (values.get("authority") or meta.authority).email,
            "investigators": list(values.get("investigators", meta.investigators)),
            "facts": values.get("facts", meta.facts),
            "legal_basis": values.get("legal_basis", meta.legal_basis),
            "purpose": values.get("purpose", meta.purpose),
            "retention_days": values.get("retention_days", meta.retention_days),
            "max_penalty_years": (values.get("offence") or meta.offence).max_penalty_years}
    problems = validation_problems(flat)
    if problems:
        raise ValidationError("case not changed", problems)
    return replace(meta, **values)


def retention_due(meta: CaseMeta) -> tuple[Any, Any]:
    """(counted from, due on) of a case's retention period, as `datetime.date`s: counted from
    ``closed_at`` when the case is closed, else from ``opened_at``."""
    from datetime import date, timedelta

    since = date.fromisoformat((meta.closed_at or meta.opened_at)[:10])
    return since, since + timedelta(days=meta.retention_days)


class CaseStore:
    """The case folders under `root` (``<store>/cases``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def for_store(cls, store: Path | str) -> CaseStore:
        return cls(Path(store) / "cases")

    def folder(self, reference: str) -> Path:
        return self.root / check_reference(reference)

    def references(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CASE_FILE).is_file())

    def list_cases(self) -> list[CaseMeta]:
        return [CaseMeta.from_dict(json.loads((self.root / r / CASE_FILE).read_bytes()))
                for r in self.references()]

    def open(self, reference: str, principal: Principal) -> Case:
        folder = self.folder(reference)
        if not (folder / CASE_FILE).is_file():
            from cointrail.cases.disposal import disposed

            gone = disposed(self, folder.name)
            if gone is not None:
                raise NotFoundError(
                    f"case {folder.name} was disposed of ({gone.action}) on {gone.at[:10]} by "
                    f"{gone.who} under {gone.parameters.get('authority')!r}; see `cointrail "
                    "case disposals`")
            known = ", ".join(self.references()[:10]) or "none yet"
            raise NotFoundError(f"no case {folder.name} in {self.root} (cases: {known}); "
                                "open one with `cointrail case new`")
        if not principal.may_open_case(folder.name):
            from cointrail.errors import PermissionDeniedError

            raise PermissionDeniedError(f"{principal.name} may not open case {folder.name}")
        return Case(folder, principal)

    def create(self, principal: Principal, *, reference: str, title: str, offence: str,
               jurisdiction: str, authority: Mapping[str, str], investigators: list[str],
               facts: str, legal_basis: str, purpose: str, retention_days: int | None,
               tlp: str = "amber", national_law: str = "", max_penalty_years: int | None = None,
               chain: str = "bitcoin", network: str = "mainnet") -> Case:
        """Open a new case; every missing or wrong field is listed at once (ValidationError)."""
        flat: dict[str, Any] = {
            "reference": reference, "title": title, "offence": offence,
            "jurisdiction": jurisdiction, "authority.name": authority.get("name", ""),
            "authority.email": authority.get("email", ""), "investigators": investigators,
            "facts": facts, "legal_basis": legal_basis, "purpose": purpose,
            "retention_days": retention_days, "tlp": tlp,
            "max_penalty_years": max_penalty_years}
        problems = validation_problems(flat)
        if problems:
            raise ValidationError("case not opened", problems)
        require(principal, "investigate", "open a case")
        from cointrail.chain.spec import get_chain

        spec = get_chain(chain, network)
        off = offences.get(offence)
        ref = check_reference(reference)
        assert retention_days is not None
        meta = CaseMeta(
            reference=ref, title=title.strip(),
            offence=OffenceRef(off.code, off.instrument, off.article, off.title,
                               off.speech_or_content, national_law.strip(), max_penalty_years,
                               offences.version()),
            jurisdiction=jurisdiction.strip().upper(),
            authority=Authority(**{k: str(v).strip() for k, v in authority.items()}),
            investigators=tuple(i.strip() for i in investigators),
            facts=facts.strip(), legal_basis=legal_basis.strip(), purpose=purpose.strip(),
            retention_days=retention_days, tlp=Tlp(tlp.strip().lower()), opened_at=utc_now(),
            opened_by=principal.name, chain=spec.chain, network=spec.network)
        folder = self.root / ref
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            raise InputError(f"case {ref} already exists in {self.root}; choose another "
                             "reference or open it") from None
        case = Case(folder, principal)
        case._write_meta(meta)
        with case.custody.locked() as w:
            body = {k: v for k, v in meta.to_dict().items() if k != "head"}
            case._append(w, "case.open", f"opened case {ref}", {"case": body}, None)
        return case

    def due_for_deletion(self, today: Any) -> list[dict[str, Any]]:
        """Cases whose retention period has run out by `today` (a `datetime.date`)."""
        from datetime import date

        day: date = today
        out = []
        for meta in self.list_cases():
            since, due = retention_due(meta)
            if due <= day:
                out.append({"reference": meta.reference, "purpose": meta.purpose,
                            "status": str(meta.status), "counted_from": since.isoformat(),
                            "retention_days": meta.retention_days, "due_on": due.isoformat(),
                            "overdue_days": (day - due).days})
        return out
