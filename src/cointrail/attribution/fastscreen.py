"""Screening one address, or a few, from memory: the answer of `screen`, without its fixed cost.

`screening.screen` is set-based: three joins plus the cluster roll-up, about 12 DuckDB
statements whatever the number of addresses, ~35 ms for one address. A point query is no way
out: a DuckDB statement costs 0.3-0.5 ms even on a tiny table, and the read-only databases
have no index on address text, so each lookup scans the column (524 k tags; the chain's
addresses), and `screen` would still need about ten of them. Measured: opening a store and one
point query on a 446-row table take 0.9 ms; this index answers one address in 0.9 ms
*including* the Arrow result and `to_dicts()`, with the real 519 k tags (built in 1.7 s, 185 MB
of arrays, bench/results/api_load.md). So a server process keeps a `ScreeningIndex`, a
snapshot of what screening reads:

- tag hits (the rows `screen` returns, Arrow), sanctions entries with their list versions and
  each address's first listing date; the list versions in force at a date are computed from
  the few OFAC versions exactly as `screen` does (per list name and scope; latest publication
  on or before the date, then the highest version id) and cached per date;
- per clustered chain store: the cluster id array of the clustering (memory-mapped, as
  `cluster_view` gives it), cluster sizes, the tags of every tagged cluster with their `via`
  address, and the actor conflicts; a hash index of the chain's address texts gives an
  address's `addr_id`, and every hash hit is confirmed against the address text (kept in
  memory up to `TEXTS_LIMIT` addresses, else read back from the chain store), so a hash
  collision can never give a wrong cluster.

Keys are Python string hashes in sorted NumPy arrays (8 bytes per row, plus Arrow for the
rows themselves), not dicts of strings: with the real 524 k tags the index takes about
the size of the tag rows (see `ScreeningIndex.memory`).

Never stale: the index is keyed by a stamp, the (size, mtime, ctime, inode) of the attribution
database, every chain database and their write-ahead logs. Any commit (tags or sanctions
import, sync, a clustering run) changes one of them, and the next call rebuilds. The stamp is
taken *before* the databases are read, so the snapshot is never older than its stamp. Where a
chain store cannot be opened (a writer holds it), the call falls back to `screen`, which
reports that store as unused, exactly as before.

`screen_fast` answers like `screen`: the same `ScreenResult`, with the same rows and types, in
`screen`'s order. Direct tag hits, which `screen` leaves unordered, come ordered by input and
tag id. The REST API uses it for up to `FAST_LIMIT` addresses; larger batches take the
set-based path.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from cointrail.analysis.clustering.engine import ClusterView
from cointrail.attribution.clusters import (
    _EMPTY_CLUSTERS,
    TAG_FIELDS,
    _addr_clusters,
    _clustered_stores,
    _open_view,
    _tagged_addresses,
)
from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore
from cointrail.attribution.screening import (
    SANCTION_HIT_FIELDS,
    TAG_HIT_FIELDS,
    ScreenResult,
    normalise,
    parse_as_of,
    screen,
)
from cointrail.chain.spec import ChainSpec, all_chains
from cointrail.errors import StoreError
from cointrail.store.defaults import db_name
from cointrail.store.duck import Store

#: The REST API screens up to this many addresses from the index; more take `screen`.
FAST_LIMIT = 100
#: Chains with at most this many clustered addresses keep their texts in memory (~45 bytes
#: each) to confirm a hash hit; larger ones confirm it with one query on the chain store.
TEXTS_LIMIT = 5_000_000

Stamp = tuple[tuple[str, int, int, int, int], ...]
_EMPTY_ROWS = np.zeros(0, dtype=np.int64)


class IndexUnavailableError(StoreError):
    """A chain store could not be opened: the caller screens set-based instead."""


@functools.cache
def _database_files() -> tuple[str, ...]:
    names = [ATTRIBUTION_DB] + [db_name(s) for s in all_chains()]
    return tuple(f for name in names for f in (name, name + ".wal"))


def store_stamp(root: Path) -> Stamp:
    """(name, size, mtime, ctime, inode) of the databases screening reads, and their WALs."""
    out = []
    folder = str(root)
    for file in _database_files():
        try:
            st = os.stat(os.path.join(folder, file))
        except FileNotFoundError:
            continue
        out.append((file, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


class _Rows:
    """Rows of an Arrow table found by the exact text of one key column (hash, then check)."""

    def __init__(self, table: pa.Table, key: str) -> None:
        self.table = table.combine_chunks()
        column = self.table.column(key)
        self._keys = column.chunk(0) if column.num_chunks else pa.array([], pa.string())
        hashes = np.fromiter((hash(k) for k in self._keys.to_pylist()), dtype=np.int64,
                             count=len(self._keys))
        self._order = np.argsort(hashes, kind="stable")  # equal hashes keep row order
        self._hashes = hashes[self._order]

    def find(self, text: str) -> list[int]:
        """Row numbers whose key is `text`, ascending."""
        h = hash(text)
        lo = int(np.searchsorted(self._hashes, h, "left"))
        hi = int(np.searchsorted(self._hashes, h, "right"))
        return [int(r) for r in self._order[lo:hi] if self._keys[int(r)].as_py() == text]

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes + self._order.nbytes + self._hashes.nbytes)


@dataclass(frozen=True, slots=True)
class _ListVersion:
    version_id: int
    name: str
    scope: str  # scope up to its first '@', as `screen` partitions it
    published: str | None


class _ChainSide:
    """One clustered chain store: clusters, cluster tags, conflicts, address -> addr_id."""

    def __init__(self, root: Path, spec: ChainSpec, view: ClusterView, tags: pa.Table,
                 conflicts: pa.Table, hashes: np.ndarray, addr_ids: np.ndarray,
                 texts: pa.Array | None) -> None:
        self.root, self.spec, self.height = root, spec, view.height
        self.ids = np.asarray(view.ids)
        self.sizes = np.bincount(self.ids).astype(np.int32) if len(self.ids) else _EMPTY_ROWS
        self.tags = tags.combine_chunks()  # chain, network, cluster_id, via, tag fields
        self._tag_cluster = self.tags.column("cluster_id").to_numpy()
        self._tag_via = self.tags.column("via").to_pylist()
        self.conflicts = conflicts.combine_chunks()  # chain, network, cluster_id, actor, ...
        self._conflict_cluster = self.conflicts.column("cluster_id").to_numpy()
        self._order = np.argsort(hashes, kind="stable")  # row numbers by hash
        self._hashes = hashes[self._order]
        self._addr_ids = addr_ids  # by row
        self._texts = texts  # by row; None above TEXTS_LIMIT addresses

    def cluster_of(self, texts: list[str]) -> list[int | None]:
        """The cluster id of each address text (None: not on this chain or not clustered)."""
        candidates: list[tuple[int, int]] = []  # (input, row) whose hashes match
        for i, text in enumerate(texts):
            h = hash(text)
            lo = int(np.searchsorted(self._hashes, h, "left"))
            hi = int(np.searchsorted(self._hashes, h, "right"))
            candidates += [(i, int(r)) for r in self._order[lo:hi]]
        out: list[int | None] = [None] * len(texts)
        if not candidates:
            return out
        if self._texts is not None:
            stored = {r: self._texts[r].as_py() for _, r in candidates}
        else:  # too many addresses to keep their texts: read the candidate rows back
            wanted = sorted({int(self._addr_ids[r]) for _, r in candidates})
            try:
                with Store(self.root).chain(self.spec, read_only=True) as chain_store:
                    by_id = {int(a): str(t) for a, t in chain_store.query(
                        "SELECT addr_id, text FROM addresses "
                        "WHERE addr_id IN (SELECT unnest(?))", [wanted])}
            except (StoreError, duckdb.Error) as exc:
                raise IndexUnavailableError(str(exc)) from exc
            stored = {r: by_id.get(int(self._addr_ids[r])) for _, r in candidates}
        for i, row in candidates:
            if stored[row] == texts[i]:  # the hash hit is this very address
                out[i] = int(self.ids[self._addr_ids[row]])
        return out

    def tag_rows(self, cluster_id: int, address: str) -> list[int]:
        lo = int(np.searchsorted(self._tag_cluster, cluster_id, "left"))
        hi = int(np.searchsorted(self._tag_cluster, cluster_id, "right"))
        return [r for r in range(lo, hi) if self._tag_via[r] != address]

    def conflict_rows(self, cluster_id: int) -> range:
        lo = int(np.searchsorted(self._conflict_cluster, cluster_id, "left"))
        hi = int(np.searchsorted(self._conflict_cluster, cluster_id, "right"))
        return range(lo, hi)

    @property
    def nbytes(self) -> int:
        return int(self.sizes.nbytes + self.tags.nbytes + self.conflicts.nbytes
                   + self._hashes.nbytes + self._order.nbytes + self._addr_ids.nbytes
                   + (self._texts.nbytes if self._texts is not None else 0))


def _with_pos(table: pa.Table, rows: list[int], pos: list[int]) -> pa.Table:
    return table.take(pa.array(rows, pa.int64())).add_column(0, "pos", pa.array(pos, pa.int64()))


class ScreeningIndex:
    """What screening reads, in memory, as of `stamp` (build with `ScreeningIndex.build`)."""

    def __init__(self, root: Path, stamp: Stamp, tags: _Rows, sanctions: _Rows,
                 first_listed: dict[str, str | None], versions: list[_ListVersion],
                 chains: list[_ChainSide], sources: list[dict[str, Any]],
                 unavailable: list[tuple[int, ChainSpec]]) -> None:
        self.root, self.stamp = root, stamp
        self.tags, self.sanctions, self.first_listed = tags, sanctions, first_listed
        self.versions, self.chains, self.sources = versions, chains, sources
        self.unavailable = unavailable  # (position in sources, chain) held by a writer
        self._in_force: dict[str | None, frozenset[int]] = {}

    @classmethod
    def build(cls, root: Path, stamp: Stamp) -> ScreeningIndex:
        """Read the attribution database and every clustered chain store of `root`."""
        with AttributionStore(root, read_only=True) as attr:
            con = attr.con
            tags = _Rows(con.execute(
                f"SELECT {TAG_HIT_FIELDS} FROM tags t "
                "JOIN list_versions v ON v.version_id = t.version_id "
                "ORDER BY t.address, t.tag_id").to_arrow_table(), "address")
            sanctions = _Rows(con.execute(
                f"SELECT {SANCTION_HIT_FIELDS} FROM sanctions_entries e "
                "JOIN list_versions v ON v.version_id = e.version_id "
                "ORDER BY e.address, e.version_id, e.rowid").to_arrow_table(), "address")
            first_listed = {str(a): (None if p is None else str(p)) for a, p in con.execute(
                "SELECT e.address, min(v.published) FROM sanctions_entries e "
                "JOIN list_versions v USING (version_id) GROUP BY e.address").fetchall()}
            versions = [
                _ListVersion(int(vid), str(name), str(scope).split("@", 1)[0],
                             None if published is None else str(published))
                for vid, name, scope, published in con.execute(
                    "SELECT version_id, name, scope, published FROM list_versions "
                    "WHERE kind LIKE 'ofac-%'").fetchall()]
            sources: list[dict[str, Any]] = []
            chains: list[_ChainSide] = []
            unavailable: list[tuple[int, ChainSpec]] = []
            for spec in _clustered_stores(root):
                held = len(sources)
                side = _build_chain(attr, spec, sources)
                if side is not None:
                    chains.append(side)
                elif len(sources) > held:  # held by a writer: reported unused, as `screen` does
                    unavailable.append((held, spec))
        return cls(root, stamp, tags, sanctions, first_listed, versions, chains, sources,
                   unavailable)

    def current(self, stamp: Stamp) -> bool:
        """Whether the index still answers for the databases as `stamp` shows them.

        A chain store that a writer held at build time must still be held: it is tried again
        (a failed open is quick), and the reason it gives is the one reported."""
        if stamp != self.stamp:
            return False
        for at, spec in self.unavailable:
            try:
                Store(self.root).chain(spec, read_only=True).close()
            except (StoreError, duckdb.Error) as exc:
                self.sources[at] = {"chain": spec.chain, "network": spec.network,
                                    "used": False, "reason": str(exc)}
                continue
            return False  # free again: rebuild with it
        return True

    def in_force(self, day: str | None) -> frozenset[int]:
        """Version ids of the OFAC lists in force at `day` (None: now), as `screen` computes."""
        cached = self._in_force.get(day)
        if cached is not None:
            return cached
        best: dict[tuple[str, str], _ListVersion] = {}
        for v in self.versions:
            if day is not None and (v.published is None or v.published > day):
                continue
            held = best.get((v.name, v.scope))
            if held is None or _rank(v) > _rank(held):
                best[(v.name, v.scope)] = v
        found = frozenset(v.version_id for v in best.values())
        if len(self._in_force) > 4096:
            self._in_force.clear()
        self._in_force[day] = found
        return found

    @property
    def memory(self) -> int:
        """Bytes held by the index's arrays and tables (Python dicts of sanctions aside)."""
        return self.tags.nbytes + self.sanctions.nbytes + sum(c.nbytes for c in self.chains)

    def screen(self, addresses: Sequence[str] | pa.Array, *, as_of: str | date | None = None,
               clusters: bool = True) -> ScreenResult:
        """The `screen` answer for `addresses`, from memory."""
        day = parse_as_of(as_of)
        raw = (addresses if isinstance(addresses, pa.Array)
               else pa.array(list(addresses), pa.string()))
        texts: list[str | None] = normalise(raw).to_pylist()
        then_v, now_v = self.in_force(day), self.in_force(None)
        tag_rows: list[int] = []
        tag_pos: list[int] = []
        hit_rows: list[int] = []
        hit_pos: list[int] = []
        flags_then: list[bool] = []
        flags_now: list[bool] = []
        sanctioned_then: list[bool] = []
        sanctioned_now: list[bool] = []
        first: list[str | None] = []
        version_col = self.sanctions.table.column("version_id")
        for pos, text in enumerate(texts):
            rows = [] if text is None else self.tags.find(text)
            tag_rows += rows
            tag_pos += [pos] * len(rows)
            any_then = any_now = False
            for row in [] if text is None else self.sanctions.find(text):
                vid = version_col[row].as_py()
                t, n = vid in then_v, vid in now_v
                if t or n:
                    hit_rows.append(row)
                    hit_pos.append(pos)
                    flags_then.append(t)
                    flags_now.append(n)
                    any_then, any_now = any_then or t, any_now or n
            sanctioned_then.append(any_then)
            sanctioned_now.append(any_now)
            first.append(None if text is None else self.first_listed.get(text))
        table = pa.table({
            "pos": pa.array(range(len(texts)), pa.int64()),
            "input": raw,
            "address": pa.array(texts, pa.string()),
            "sanctioned": pa.array(sanctioned_then if day else sanctioned_now, pa.bool_()),
            "sanctioned_now": pa.array(sanctioned_now, pa.bool_()),
            "first_listed": pa.array(first, pa.string()),
        })
        tags = _with_pos(self.tags.table, tag_rows, tag_pos)
        hits = (_with_pos(self.sanctions.table, hit_rows, hit_pos)
                .append_column("in_force_then", pa.array(flags_then, pa.bool_()))
                .append_column("in_force_now", pa.array(flags_now, pa.bool_())))
        if not clusters:
            return ScreenResult(table, tags, hits, day)
        return self._roll_up(table, tags, hits, day, texts)

    def _roll_up(self, table: pa.Table, tags: pa.Table, hits: pa.Table, day: str | None,
                 texts: list[str | None]) -> ScreenResult:
        """The cluster part, as `clusters.screen_clusters` gives it (chain by chain)."""
        cluster_parts: list[pa.Table] = []
        tag_parts: list[pa.Table] = []
        conflict_parts: list[pa.Table] = []
        for side in self.chains:
            known = [(pos, t) for pos, t in enumerate(texts) if t is not None]
            ids = side.cluster_of([t for _, t in known])
            screened = [(pos, text, cid) for (pos, text), cid in zip(known, ids, strict=True)
                        if cid is not None]
            if not screened:
                continue
            n = len(screened)
            cluster_parts.append(pa.table({
                "pos": pa.array([p for p, _, _ in screened], pa.int64()),
                "chain": pa.array([side.spec.chain] * n, pa.string()),
                "network": pa.array([side.spec.network] * n, pa.string()),
                "cluster_id": pa.array([c for _, _, c in screened], pa.int64()),
                "size": pa.array([int(side.sizes[c]) for _, _, c in screened], pa.int64()),
                "as_of_height": pa.array([side.height] * n, pa.int64()),
            }, schema=_EMPTY_CLUSTERS))
            rows: list[int] = []
            pos_of: list[int] = []
            conflict_rows: list[int] = []
            conflict_pos: list[int] = []
            for pos, text, cid in screened:
                found = side.tag_rows(cid, text)
                rows += found
                pos_of += [pos] * len(found)
                conflicts = side.conflict_rows(cid)
                conflict_rows += conflicts
                conflict_pos += [pos] * len(conflicts)
            tag_parts.append(_with_pos(side.tags, rows, pos_of))
            conflict_parts.append(_with_pos(side.conflicts, conflict_rows, conflict_pos))
        empty = pa.table({"pos": pa.array([], pa.int64())})
        return ScreenResult(
            table, tags, hits, day,
            pa.concat_tables(cluster_parts) if cluster_parts else _EMPTY_CLUSTERS.empty_table(),
            pa.concat_tables(tag_parts) if tag_parts else empty,
            pa.concat_tables(conflict_parts) if conflict_parts else empty,
            [dict(s) for s in self.sources],
        )


def _rank(v: _ListVersion) -> tuple[bool, str, int]:
    """ORDER BY published DESC NULLS LAST, version_id DESC: the greatest rank wins."""
    return (v.published is not None, v.published or "", v.version_id)


def _build_chain(attr: AttributionStore, spec: ChainSpec,
                 sources: list[dict[str, Any]]) -> _ChainSide | None:
    opened = _open_view(attr.root, spec, sources)
    if opened is None:
        return None  # no clustering on this chain, or held by a writer (see sources)
    chain_store, view = opened
    try:
        tagged = _tagged_addresses(attr, spec)
        mapped = _addr_clusters(chain_store, view, pa.table(
            {"address": tagged.column("address").cast(pa.string())}))
        keep_texts = len(view.ids) <= TEXTS_LIMIT
        hashes: list[int] = []
        addr_ids: list[np.ndarray] = []
        text_chunks: list[pa.Array] = []
        reader = chain_store.con.execute(
            "SELECT addr_id, text FROM addresses WHERE addr_id < ?", [len(view.ids)]
        ).to_arrow_reader(1 << 16)
        for batch in reader:
            hashes += [hash(t) for t in batch.column(1).to_pylist()]
            addr_ids.append(batch.column(0).to_numpy(zero_copy_only=False))
            if keep_texts:
                text_chunks.append(batch.column(1))
    finally:
        chain_store.close()
    con = attr.con
    con.register("_mapped", mapped)
    try:
        params = [spec.chain, spec.network]
        tags = con.execute(f"""
            SELECT t.chain, t.network, m.cluster_id, t.address AS via, {TAG_FIELDS}
            FROM _mapped m
            JOIN tags t ON t.address = m.address AND t.chain = ? AND t.network = ?
            JOIN list_versions v ON v.version_id = t.version_id
            ORDER BY m.cluster_id, t.tag_id
        """, params).to_arrow_table()
        conflicts = con.execute("""
            WITH actors AS (
                SELECT m.cluster_id, t.actor, list(DISTINCT t.address) AS addresses
                FROM _mapped m
                JOIN tags t ON t.address = m.address AND t.chain = ? AND t.network = ?
                WHERE t.actor IS NOT NULL
                GROUP BY m.cluster_id, t.actor
            )
            SELECT ? AS chain, ? AS network, cluster_id, actor,
                   list_sort(addresses) AS addresses
            FROM actors
            WHERE cluster_id IN (SELECT cluster_id FROM actors GROUP BY cluster_id
                                 HAVING count(*) > 1)
            ORDER BY cluster_id, actor
        """, params + params).to_arrow_table()
    finally:
        con.unregister("_mapped")
    ids = np.concatenate(addr_ids).astype(np.int64) if addr_ids else _EMPTY_ROWS
    texts = (pa.concat_arrays(text_chunks) if text_chunks else pa.array([], pa.string())
             ) if keep_texts else None
    return _ChainSide(attr.root, spec, view, tags, conflicts,
                      np.asarray(hashes, dtype=np.int64), ids, texts)


_INDEXES: dict[Path, ScreeningIndex] = {}
_BUILD = threading.Lock()


def screening_index(root: Path | str) -> ScreeningIndex:
    """The process's index of the store `root`, rebuilt first when its databases changed."""
    path = Path(root)
    index = ready_index(path)
    if index is not None:
        return index
    with _BUILD:
        stamp = store_stamp(path)  # before reading: the snapshot is never older than this
        index = _INDEXES.get(path)
        if index is not None and index.current(stamp):
            return index
        _INDEXES.pop(path, None)  # never answer from a stale index, nor hold two
        index = ScreeningIndex.build(path, stamp)
        _INDEXES[path] = index
        return index


def ready_index(root: Path | str) -> ScreeningIndex | None:
    """The process's index of `root` if it is built and current (a few `stat` calls, no
    building), else None: lets a server answer from memory without blocking on a rebuild."""
    path = Path(root)
    index = _INDEXES.get(path)
    if index is not None and index.current(store_stamp(path)):
        return index
    return None


def screen_fast(root: Path | str, addresses: Sequence[str] | pa.Array, *,
                as_of: str | date | None = None, clusters: bool = True) -> ScreenResult:
    """`screen` for the store `root`, answered from the process's `ScreeningIndex`.

    Raises what `screen` raises: NotFoundError without attribution data, InputError for a
    bad `as_of`. Where a chain store is held by a writer, screens set-based instead.
    """
    day = parse_as_of(as_of)
    try:
        return screening_index(root).screen(addresses, as_of=day, clusters=clusters)
    except IndexUnavailableError:
        with AttributionStore(root, read_only=True) as store:
            return screen(store, addresses, as_of=day, clusters=clusters)
