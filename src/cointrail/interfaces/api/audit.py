"""The API audit log: ``<store>/audit.jsonl``, one JSON object per request, hash-chained.

Each entry holds who (key id, name, role), when (UTC), the route and its parameters, the HTTP
status and the SHA-256 of the response body, plus ``prev_hash`` and ``hash`` — the SHA-256 of
the canonical JSON of every other field, as in the case custody log (ADR 0004). Editing,
deleting, inserting or reordering an entry breaks the chain, which `verify_audit` reports.

Appends are serialised by a thread lock and an exclusive ``flock`` on the file, so two server
processes on one store still write one chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cointrail.errors import StoreError

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of every field but ``hash``."""
    return hashlib.sha256(canonical_json({k: v for k, v in entry.items() if k != "hash"}))\
        .hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _last_line(fd: int) -> bytes | None:
    """The last non-empty line of an open file, read backwards in blocks."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    block, end, tail = 8192, size, b""
    while end > 0:
        start = max(0, end - block)
        tail = os.pread(fd, end - start, start) + tail
        end = start
        stripped = tail.rstrip(b"\n")
        cut = stripped.rfind(b"\n")
        if cut >= 0:
            return stripped[cut + 1:]
    stripped = tail.rstrip(b"\n")
    return stripped or None


class AuditLog:
    """Appends request entries to one audit file (see the module docstring)."""

    def __init__(self, store_root: Path) -> None:
        self.path = Path(store_root) / AUDIT_FILE
        self._lock = threading.Lock()

    def append(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Append one entry made of `fields` plus ``seq``, ``prev_hash`` and ``hash``."""
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            except OSError as exc:
                raise StoreError(f"cannot open the audit log {self.path}: {exc.strerror}") \
                    from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = _last_line(fd)
                if last is None:
                    seq, prev = 1, GENESIS
                else:
                    try:
                        head = json.loads(last)
                        seq, prev = int(head["seq"]) + 1, str(head["hash"])
                    except (ValueError, KeyError, TypeError) as exc:
                        raise StoreError(
                            f"the last line of the audit log {self.path} is not an entry; "
                            "run the audit verification and restore the file from a copy"
                        ) from exc
                entry = {"seq": seq, **fields, "prev_hash": prev}
                entry["hash"] = entry_hash(entry)
                os.write(fd, canonical_json(entry) + b"\n")
                return entry
            finally:
                os.close(fd)  # releases the flock


def iter_entries(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, entry or None when unreadable, raw text) for each line of an audit file."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                doc = json.loads(text)
            except ValueError:
                yield number, None, text
                continue
            yield number, doc if isinstance(doc, dict) else None, text


def verify_audit(path: Path) -> dict[str, Any]:
    """Recompute every hash and link.

    Returns ``{"entries", "ok", "head", "problems": [{"line", "problem"}]}``.
    """
    problems: list[dict[str, Any]] = []
    prev, expected_seq, count, head = GENESIS, 1, 0, None
    for line, entry, _ in iter_entries(path):
        count += 1
        if entry is None:
            problems.append({"line": line, "problem": "not a JSON object"})
            continue
        if entry.get("hash") != entry_hash(entry):
            problems.append({"line": line, "problem": "hash does not match the entry: edited"})
        if entry.get("prev_hash") != prev:
            problems.append({"line": line, "problem": "prev_hash does not link to the entry "
                                                      "before: deleted, inserted or reordered"})
        if entry.get("seq") != expected_seq:
            problems.append({"line": line, "problem": f"seq {entry.get('seq')} where "
                                                      f"{expected_seq} was expected"})
        prev = str(entry.get("hash"))
        expected_seq = int(entry["seq"]) + 1 if isinstance(entry.get("seq"), int) else \
            expected_seq + 1
        head = {"seq": entry.get("seq"), "hash": entry.get("hash")}
    return {"path": str(path), "entries": count, "ok": not problems, "head": head,
            "problems": problems}


def read_entries(path: Path, *, offset: int = 0, limit: int = 100,
                 key_id: str | None = None) -> dict[str, Any]:
    """A page of entries, newest first, optionally of one key."""
    rows = [e for _, e, _ in iter_entries(path) if e is not None
            and (key_id is None or e.get("key_id") == key_id)]
    rows.reverse()
    return {"total": len(rows), "offset": offset, "limit": limit,
            "entries": rows[offset:offset + limit]}
