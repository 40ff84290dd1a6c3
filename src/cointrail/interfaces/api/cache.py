"""Answers of the read routes, kept in memory while the database files they came from are
unchanged.

Invariant: an entry is served only when the stamp of its files (inode, size and modification
time of each database file and of its write-ahead log, taken *before* the answer was computed)
equals their stamp now. Every write to a DuckDB store (sync, rollback, clustering, a tags
import) changes the file or its ``.wal``, so the next request after a write computes the
answer again; nothing is ever served from an older store. A file modified in the last
`SETTLE_NS` is not trusted to have a distinct stamp yet (file times are coarse: two writes in
one clock tick can leave the same stamp, as git's "racily clean" index entries), so answers
read from it are not kept. Only successful answers are kept;
errors are computed every time. The cache is per process (per uvicorn worker) and bounded by
the bytes of the bodies it holds, least recently used first out.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path

#: (inode, size, mtime in ns) of one file, or None when it does not exist.
FileStamp = tuple[int, int, int] | None
Stamp = tuple[FileStamp, ...]

#: Bodies held by default: 64 MiB.
DEFAULT_CACHE_BYTES = 64 << 20
#: A file written this recently may be written again under the same stamp: 2 s.
SETTLE_NS = 2_000_000_000


def file_stamp(path: Path) -> FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def files_stamp(paths: Iterable[Path]) -> Stamp:
    return tuple(file_stamp(p) for p in paths)


def store_stamp(databases: Iterable[Path]) -> Stamp:
    """The stamp of DuckDB files: each file and its write-ahead log (``<file>.wal``)."""
    out: list[FileStamp] = []
    for path in databases:
        out.append(file_stamp(path))
        out.append(file_stamp(path.with_name(path.name + ".wal")))
    return tuple(out)


def is_settled(stamp: Stamp, now_ns: int | None = None) -> bool:
    """True when no file of `stamp` was modified within `SETTLE_NS` of `now_ns`."""
    now = time.time_ns() if now_ns is None else now_ns
    return all(f is None or now - f[2] >= SETTLE_NS for f in stamp)


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    bytes: int


class ResponseCache:
    """JSON bodies by (route, parameters), each with the stamp it was computed under;
    thread-safe. `max_bytes` 0 keeps nothing."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Stamp, bytes]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, stamp: Stamp) -> bytes | None:
        """The body kept for `key` if it was computed under `stamp`, else None."""
        with self._lock:
            held = self._entries.get(key)
            if held is None or held[0] != stamp:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return held[1]

    def put(self, key: Hashable, stamp: Stamp, body: bytes) -> None:
        """Keep `body` for `key`, computed under `stamp` (taken before computing it), unless
        a file of `stamp` was modified too recently to trust its stamp."""
        if len(body) > self.max_bytes or not is_settled(stamp):
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[key] = (stamp, body)
            self._bytes += len(body)
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._bytes)
