"""The custody log: ``custody.jsonl``, append-only and hash-chained (ADR 0004).

Invariants kept here:

- an entry is appended only under an exclusive ``fcntl.flock`` on the log file, after the
  previous line has been read back, so two processes appending at once still form one chain;
- each line is written whole with one ``write`` and ``fsync``-ed before the call returns;
- a log whose last line is torn (a crash mid-append) is never extended and never silently
  trimmed: appends fail until ``repair`` moves the torn bytes to a quarantine file and logs
  that on the chain.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cointrail.cases.canonical import ZERO_HASH, canonical_bytes, normalised, sha256_hex
from cointrail.cases.models import CustodyEntry, Head
from cointrail.errors import StoreError

LOG_NAME = "custody.jsonl"
ENTRY_FIELDS = ("seq", "at", "who", "role", "action", "what", "parameters", "result_sha256",
                "tool_version", "prev_hash")


def utc_now() -> str:
    """Now in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(doc: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of every field of `doc` except ``hash``."""
    return sha256_hex(canonical_bytes({k: v for k, v in doc.items() if k != "hash"}))


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line of the log file as stored: `number` counts from 1; `terminated` is False for
    a last line without its newline (a torn write)."""

    number: int
    data: bytes
    terminated: bool

    def parse(self) -> dict[str, Any] | None:
        """The JSON object on this line, or None when it is not one."""
        try:
            doc = json.loads(self.data)
        except (UnicodeDecodeError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None


def read_lines(path: Path) -> list[RawLine]:
    """Every line of the log file (none when it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    parts = data.split(b"\n")
    lines = [RawLine(i + 1, p, True) for i, p in enumerate(parts[:-1])]
    if parts[-1]:
        lines.append(RawLine(len(parts), parts[-1], False))
    return lines


def _last_line(fd: int) -> bytes:
    """The last line of the open file, without its newline (read backwards in chunks)."""
    end = os.fstat(fd).st_size
    buf = b""
    while end > 0:
        start = max(0, end - 65536)
        buf = os.pread(fd, end - start, start) + buf
        end = start
        body = buf[:-1] if buf.endswith(b"\n") else buf
        if b"\n" in body:
            return body.rsplit(b"\n", 1)[1]
    return buf[:-1] if buf.endswith(b"\n") else buf


class Appender:
    """Appends entries while the log is locked; obtained from `CustodyLog.locked`."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self._path = path
        self.head = self._read_head()

    def _read_head(self) -> Head:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return Head(0, ZERO_HASH)
        if os.pread(self._fd, 1, size - 1) != b"\n":
            raise StoreError(
                f"the custody log {self._path} ends with a torn line (an interrupted write); "
                "nothing can be added until `cointrail case repair` quarantines it"
            )
        doc = RawLine(0, _last_line(self._fd), True).parse()
        if doc is None or not isinstance(doc.get("seq"), int) or not isinstance(
                doc.get("hash"), str):
            raise StoreError(f"the last line of the custody log {self._path} is not a custody "
                             "entry; run `cointrail case verify` and report it")
        return Head(doc["seq"], doc["hash"])

    def append(self, *, who: str, role: str, action: str, what: str,
               parameters: Mapping[str, Any] | None, result_sha256: str | None,
               tool_version: str, at: str | None = None) -> CustodyEntry:
        doc: dict[str, Any] = normalised({
            "seq": self.head.seq + 1, "at": at or utc_now(), "who": who, "role": role,
            "action": action, "what": what, "parameters": dict(parameters or {}),
            "result_sha256": result_sha256, "tool_version": tool_version,
            "prev_hash": self.head.hash,
        })
        doc["hash"] = entry_hash(doc)
        line = canonical_bytes(doc) + b"\n"
        written = os.write(self._fd, line)
        if written != len(line):
            raise StoreError(f"short write to the custody log {self._path} ({written} of "
                             f"{len(line)} bytes); the disk may be full. Run "
                             "`cointrail case verify` then `cointrail case repair`")
        os.fsync(self._fd)
        entry = CustodyEntry.from_dict(doc)
        self.head = Head(entry.seq, entry.hash)
        return entry


class CustodyLog:
    """The custody log file of one case folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOG_NAME

    @contextmanager
    def locked(self) -> Iterator[Appender]:
        """Hold the log's exclusive lock; yields an Appender positioned after the last entry."""
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield Appender(fd, self.path)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def entries(self) -> list[CustodyEntry]:
        """Every entry, in file order; StoreError on a line that is not an entry (run verify)."""
        out = []
        for line in read_lines(self.path):
            doc = line.parse()
            if doc is None or not line.terminated:
                raise StoreError(
                    f"line {line.number} of the custody log {self.path} is "
                    f"{'torn' if not line.terminated else 'not a custody entry'}; run "
                    "`cointrail case verify` (and `cointrail case repair` for a torn line)")
            try:
                out.append(CustodyEntry.from_dict(doc))
            except (KeyError, TypeError) as exc:
                raise StoreError(f"line {line.number} of the custody log {self.path} lacks "
                                 f"field {exc}; run `cointrail case verify`") from exc
        return out

    def quarantine_torn_tail(self, quarantine: Path) -> bytes | None:
        """Under the lock, move a torn last line (bytes after the last newline) to
        `quarantine` and cut it from the log; returns the bytes moved (None: nothing torn)."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                data = os.pread(fd, size, 0)
                cut = data.rfind(b"\n") + 1
                if cut == size:
                    return None
                torn = data[cut:]
                quarantine.parent.mkdir(parents=True, exist_ok=True)
                with quarantine.open("xb") as q:
                    q.write(torn)
                    q.flush()
                    os.fsync(q.fileno())
                os.ftruncate(fd, cut)
                os.fsync(fd)
                return torn
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
