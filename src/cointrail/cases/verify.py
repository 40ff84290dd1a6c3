"""``case verify``: recompute every custody hash and link, the head kept in ``case.json``,
the metadata folded from the log, and the SHA-256 of every file the log names.

Each problem names its kind and the entry (seq) or file it concerns. The chain is rebuilt by
following ``prev_hash`` links from the start (not by trusting line order or ``seq``), so an
entry no link reaches is inserted, a link to a hash no entry has is a deletion (or a rewrite
when ``seq`` runs on), and a linked entry found above its predecessor is reordered.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any

from cointrail.cases.canonical import ZERO_HASH, differing_paths, sha256_hex
from cointrail.cases.custody import ENTRY_FIELDS, LOG_NAME, entry_hash, read_lines
from cointrail.cases.models import Head

CASE_FILE = "case.json"


class ProblemKind(StrEnum):
    EDITED = "edited"  # an entry's content no longer matches its hash, or it was rewritten
    DELETED = "deleted"  # entries missing from the chain
    INSERTED = "inserted"  # an entry no link of the chain reaches
    REORDERED = "reordered"  # a chained entry stands above its predecessor in the file
    TRUNCATED = "truncated"  # the log ends before the head recorded in case.json
    BEYOND_HEAD = "beyond_head"  # entries after the recorded head (interrupted write or forged)
    HEAD_MISMATCH = "head_mismatch"  # the recorded head's hash is not the log's entry at its seq
    TORN = "torn"  # the last line is incomplete (a crash mid-append)
    UNREADABLE = "unreadable"  # a line that is not a custody entry
    ARTEFACT_MODIFIED = "artefact_modified"
    ARTEFACT_MISSING = "artefact_missing"
    UNLOGGED_FILE = "unlogged_file"  # a file in the case folder that no entry records
    CASE_JSON = "case_json"  # case.json disagrees with the metadata the log records


@dataclass(frozen=True, slots=True)
class CustodyProblem:
    kind: ProblemKind
    message: str
    seq: int | None = None
    line: int | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "seq": self.seq, "line": self.line, "path": self.path,
                "message": self.message}

    def __str__(self) -> str:
        where = [f"seq {self.seq}" if self.seq is not None else "",
                 f"line {self.line}" if self.line is not None else "", self.path or ""]
        label = ", ".join(w for w in where if w)
        return f"{self.kind}{f' ({label})' if label else ''}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify_folder`: `ok` when `problems` is empty."""

    reference: str
    entries: int
    head_log: Head | None
    head_recorded: Head | None
    files_checked: int
    problems: tuple[CustodyProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[ProblemKind]:
        return {p.kind for p in self.problems}

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference, "ok": self.ok, "entries": self.entries,
            "head_log": None if self.head_log is None else self.head_log.to_dict(),
            "head_recorded": None if self.head_recorded is None else self.head_recorded.to_dict(),
            "files_checked": self.files_checked,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass(slots=True)
class _Entry:
    line: int
    doc: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.doc["seq"])

    @property
    def hash(self) -> str:
        return str(self.doc["hash"])

    @property
    def prev(self) -> str:
        return str(self.doc["prev_hash"])


def _well_formed(doc: dict[str, Any] | None) -> bool:
    return (doc is not None and all(k in doc for k in (*ENTRY_FIELDS, "hash"))
            and isinstance(doc["seq"], int) and not isinstance(doc["seq"], bool)
            and isinstance(doc["hash"], str) and isinstance(doc["prev_hash"], str)
            and isinstance(doc["parameters"], dict))


def verify_folder(folder: Path) -> VerifyReport:
    """Verify the case in `folder`: custody chain, head, metadata and every logged file."""
    problems: list[CustodyProblem] = []
    recorded, meta = _read_case_json(folder, problems)
    entries: list[_Entry] = []
    for raw in read_lines(folder / LOG_NAME):
        doc = raw.parse()
        if not raw.terminated:
            problems.append(CustodyProblem(
                ProblemKind.TORN, f"the last line is incomplete ({len(raw.data)} bytes, no "
                "newline): an interrupted write; `cointrail case repair` quarantines it",
                seq=doc.get("seq") if doc and isinstance(doc.get("seq"), int) else None,
                line=raw.number))
            continue
        if not _well_formed(doc):
            problems.append(CustodyProblem(ProblemKind.UNREADABLE, "the line is not a custody "
                                           "entry (not JSON, or fields missing)",
                                           line=raw.number))
            continue
        assert doc is not None
        entries.append(_Entry(raw.number, doc))
    edited: set[int] = set()
    for e in entries:
        if entry_hash(e.doc) != e.hash:
            edited.add(e.line)
            problems.append(CustodyProblem(
                ProblemKind.EDITED, "the entry's content was changed after it was written "
                "(its hash does not match)", seq=e.seq, line=e.line))
    chain = _rebuild_chain(entries, recorded, problems)
    in_chain = {e.line for e in chain}
    for e in entries:
        if e.line not in in_chain:
            problems.append(CustodyProblem(
                ProblemKind.INSERTED, "the entry is not part of the hash chain: no entry "
                "links to it", seq=e.seq, line=e.line))
    for before, after in pairwise(chain):
        if after.line < before.line:
            problems.append(CustodyProblem(
                ProblemKind.REORDERED, f"the entry stands on line {after.line}, above seq "
                f"{before.seq} (line {before.line}) which comes before it in the chain",
                seq=after.seq, line=after.line))
    head_log = Head(chain[-1].seq, chain[-1].hash) if chain else None
    _check_head(chain, recorded, problems)
    files = _check_files(folder, chain, problems)
    if meta is not None:
        _check_meta(meta, chain, problems)
    order = {k: i for i, k in enumerate(ProblemKind)}
    problems.sort(key=lambda p: (p.seq if p.seq is not None else 1 << 62, order[p.kind]))
    reference = str(meta.get("reference", folder.name)) if meta else folder.name
    return VerifyReport(reference, len(entries), head_log, recorded, files, tuple(problems))


def _read_case_json(folder: Path, problems: list[CustodyProblem]
                    ) -> tuple[Head | None, dict[str, Any] | None]:
    try:
        meta = json.loads((folder / CASE_FILE).read_bytes())
        head = meta["head"]
        return Head(int(head["seq"]), str(head["hash"])), meta
    except FileNotFoundError:
        problems.append(CustodyProblem(ProblemKind.CASE_JSON, "case.json is missing",
                                       path=CASE_FILE))
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(CustodyProblem(ProblemKind.CASE_JSON, f"case.json is unreadable "
                                       f"({exc!r})", path=CASE_FILE))
    return None, None


def _rebuild_chain(entries: list[_Entry], recorded: Head | None,
                   problems: list[CustodyProblem]) -> list[_Entry]:
    by_prev: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        by_prev[e.prev].append(e)
    hashes = {e.hash for e in entries}
    chain: list[_Entry] = []
    seen: set[int] = set()
    current = ZERO_HASH
    while True:
        candidates = [e for e in by_prev.get(current, []) if e.line not in seen]
        if candidates:
            last_seq = chain[-1].seq if chain else 0
            pick = max(candidates, key=lambda e: (
                e.seq == last_seq + 1, bool(by_prev.get(e.hash)),
                recorded is not None and e.hash == recorded.hash, -e.line))
            if pick.seq != last_seq + 1 and entry_hash(pick.doc) == pick.hash:
                problems.append(CustodyProblem(
                    ProblemKind.EDITED, f"the entry follows seq {last_seq} in the chain but "
                    f"is numbered {pick.seq}: it was rewritten", seq=pick.seq, line=pick.line))
        else:
            orphans = [e for e in entries if e.line not in seen and e.prev not in hashes
                       and e.prev != ZERO_HASH]
            if not orphans and chain:
                break
            if not orphans:
                orphans = [e for e in entries if e.line not in seen]  # no genesis at all
                if not orphans:
                    break
            pick = min(orphans, key=lambda e: (e.seq, e.line))
            last_seq = chain[-1].seq if chain else 0
            if pick.seq > last_seq + 1:
                gone = (f"seq {last_seq + 1}" if pick.seq == last_seq + 2
                        else f"seq {last_seq + 1}–{pick.seq - 1}")
                problems.append(CustodyProblem(
                    ProblemKind.DELETED, f"{gone} deleted: seq {pick.seq} links to an entry "
                    "the log no longer holds", seq=last_seq + 1, line=pick.line))
            else:
                problems.append(CustodyProblem(
                    ProblemKind.EDITED, f"the entry was rewritten or replaced: seq {pick.seq} "
                    "links to a hash no entry has", seq=max(last_seq, 1), line=pick.line))
        chain.append(pick)
        seen.add(pick.line)
        current = pick.hash
    return chain


def _check_head(chain: list[_Entry], recorded: Head | None,
                problems: list[CustodyProblem]) -> None:
    if recorded is None:
        return
    last = chain[-1].seq if chain else 0
    if recorded.seq > last:
        problems.append(CustodyProblem(
            ProblemKind.TRUNCATED, f"case.json records head seq {recorded.seq} but the chain "
            f"ends at seq {last}: entries were cut from the end of the log",
            seq=last + 1))
        return
    at = next((e for e in chain if e.seq == recorded.seq), None)
    if recorded.seq == 0 and not chain:
        return
    if at is None or at.hash != recorded.hash:
        problems.append(CustodyProblem(
            ProblemKind.HEAD_MISMATCH, f"the hash recorded in case.json for seq {recorded.seq} "
            "is not the log's: the log was rewritten from there on, or case.json was edited",
            seq=recorded.seq))
    if last > recorded.seq:
        problems.append(CustodyProblem(
            ProblemKind.BEYOND_HEAD, f"seq {recorded.seq + 1}–{last} come after the head "
            "recorded in case.json: an interrupted write (`cointrail case repair` records "
            "them) or entries added outside cointrail", seq=recorded.seq + 1))


def _check_files(folder: Path, chain: list[_Entry], problems: list[CustodyProblem]) -> int:
    expected: dict[str, tuple[str | None, int]] = {}
    for e in chain:
        file = e.doc["parameters"].get("file")
        if isinstance(file, dict) and isinstance(file.get("path"), str):
            expected[file["path"]] = (e.doc.get("result_sha256"), e.seq)
    root = folder.resolve()
    for rel, (sha, seq) in sorted(expected.items()):
        path = (folder / rel).resolve()
        if not path.is_relative_to(root) or rel.startswith("/"):
            problems.append(CustodyProblem(ProblemKind.EDITED, f"the entry names a file "
                                           f"outside the case folder: {rel!r}", seq=seq))
            continue
        try:
            digest = sha256_hex(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):
            problems.append(CustodyProblem(ProblemKind.ARTEFACT_MISSING, "the file recorded "
                                           "by this entry is missing", seq=seq, path=rel))
            continue
        if digest != sha:
            problems.append(CustodyProblem(
                ProblemKind.ARTEFACT_MODIFIED, f"the file's SHA-256 is {digest}, the log "
                f"recorded {sha}", seq=seq, path=rel))
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if (not path.is_file() or rel in expected or rel in (CASE_FILE, LOG_NAME)
                or rel.startswith(".case.json.")):
            continue
        problems.append(CustodyProblem(ProblemKind.UNLOGGED_FILE, "a file in the case folder "
                                       "that no custody entry records", path=rel))
    return len(expected)


def _check_meta(meta: dict[str, Any], chain: list[_Entry],
                problems: list[CustodyProblem]) -> None:
    folded: dict[str, Any] | None = None
    for e in chain:
        params = e.doc["parameters"]
        if e.doc["action"] == "case.open" and isinstance(params.get("case"), dict):
            folded = dict(params["case"])
        elif e.doc["action"] == "case.update" and folded is not None and isinstance(
                params.get("set"), dict):
            folded.update(params["set"])
    if folded is None:
        problems.append(CustodyProblem(ProblemKind.CASE_JSON, "no case.open entry records "
                                       "the case metadata", path=CASE_FILE))
        return
    stored = {k: v for k, v in meta.items() if k != "head"}
    diffs = differing_paths(folded, stored)
    if diffs:
        problems.append(CustodyProblem(
            ProblemKind.CASE_JSON, "case.json differs from the metadata the log records at "
            + ", ".join(d.removeprefix("$.") for d in diffs[:10]), path=CASE_FILE))
