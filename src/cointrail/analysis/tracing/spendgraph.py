"""Memory-mappable column arrays of the spend graph (CSR), built from the store.

The arrays live next to the store's DuckDB file, in ``<chain>-<network>.spendgraph/``, one
``.npy`` file per column plus ``meta.json`` holding the key: the store tip (height and block
hash) the arrays were built at. A graph whose key differs from the store's tip is stale and is
rebuilt. Loading maps the files read-only (``np.load(mmap_mode="r")``), so a trace touches only
the pages of the transactions it walks.

Columns (``tx_id`` is dense, so it indexes the per-transaction arrays directly):

- per transaction: ``out_start``/``in_start`` (N + 1 offsets: the transaction's output rows are
  ``out_start[t]:out_start[t + 1]``, likewise inputs), ``height``, ``fee`` (0 for coinbase),
  ``coinbase``;
- per output row (ordered by ``tx_id, n``): ``out_n``, ``out_value``, ``out_addr`` (-1: no
  address), ``spent_tx`` (spending tx_id, -1 unspent), ``spent_in`` (its input index, -1);
- per input row (ordered by ``tx_id, n``): ``in_prev`` (the global output row it spends);
- lookups for the ends of a trace: ``txid_key`` (the first 8 bytes of each txid, internal
  order, as uint64, sorted) with ``txid_order`` (the tx_id of each key), so a txid is found by
  binary search instead of a scan; ``addr_id`` (sorted) with ``addr_off``/``addr_text``, the
  UTF-8 address texts: the text of ``addr_id[i]`` is ``addr_text[addr_off[i]:addr_off[i + 1]]``.

An input's value and address are those of the output it spends (``out_value[in_prev]``), and
an output row's transaction is ``searchsorted(out_start, row, "right") - 1``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cointrail.store.duck import ChainStore, Tip

FORMAT = 3
SUFFIX = ".spendgraph"
META = "meta.json"
COLUMNS = ("out_start", "in_start", "height", "fee", "coinbase", "out_n", "out_value",
           "out_addr", "spent_tx", "spent_in", "in_prev", "txid_key", "txid_order",
           "addr_id", "addr_off", "addr_text")

Array = npt.NDArray[Any]


def graph_dir(store: ChainStore) -> Path:
    """``<store dir>/<chain>-<network>.spendgraph``."""
    return store.path.with_suffix(SUFFIX)


def tip_key(tip: Tip) -> dict[str, Any]:
    return {"format": FORMAT, "tip_height": tip.height, "tip_hash": tip.hash[::-1].hex()}


@dataclass(frozen=True, slots=True)
class SpendGraph:
    """The CSR arrays of one store at one tip (see the module docstring)."""

    key: dict[str, Any]
    out_start: Array
    in_start: Array
    height: Array
    fee: Array
    coinbase: Array
    out_n: Array
    out_value: Array
    out_addr: Array
    spent_tx: Array
    spent_in: Array
    in_prev: Array
    txid_key: Array
    txid_order: Array
    addr_id: Array
    addr_off: Array
    addr_text: Array

    def find_txid(self, txid: bytes) -> list[int]:
        """tx_ids whose txid (internal order) starts like `txid`: candidates to confirm."""
        key = np.frombuffer(txid[:8], np.uint64)[0]
        lo = np.searchsorted(self.txid_key, key, side="left")
        hi = np.searchsorted(self.txid_key, key, side="right")
        return sorted(int(t) for t in self.txid_order[int(lo):int(hi)])

    def texts(self, addr_ids: list[int]) -> dict[int, str]:
        """Address texts by addr_id (ids the store does not hold are left out)."""
        if not addr_ids or not len(self.addr_id):
            return {}
        want = np.asarray(addr_ids, np.int64)
        pos = np.minimum(np.searchsorted(self.addr_id, want), len(self.addr_id) - 1)
        hit = np.asarray(self.addr_id[pos]) == want
        out: dict[int, str] = {}
        for a, i in zip(want[hit].tolist(), pos[hit].tolist(), strict=True):
            lo, hi = int(self.addr_off[i]), int(self.addr_off[i + 1])
            out[a] = bytes(self.addr_text[lo:hi]).decode()
        return out

    @property
    def tx_count(self) -> int:
        return len(self.height)

    def nbytes(self) -> int:
        return sum(int(getattr(self, c).nbytes) for c in COLUMNS)

    def rows(self, keys: list[tuple[int, int]]) -> Array:
        """Global output rows of (tx_id, n) keys; -1 where there is no such output."""
        if not keys:
            return np.empty(0, np.int64)
        tx = np.fromiter((k[0] for k in keys), np.int64, len(keys))
        n = np.fromiter((k[1] for k in keys), np.int64, len(keys))
        ok = (tx >= 0) & (tx < self.tx_count)
        txc = np.where(ok, tx, 0)
        start, end = self.out_start[txc], self.out_start[txc + 1]
        row = start + n
        ok &= (n >= 0) & (row < end)
        row = np.where(ok, row, 0)
        hit = ok & (self.out_n[row] == n)
        out = np.where(hit, row, -1)
        for i in np.flatnonzero(ok & ~hit).tolist():  # outputs with gaps in n: search
            lo, hi = int(start[i]), int(end[i])
            found = np.flatnonzero(np.asarray(self.out_n[lo:hi]) == n[i])
            out[i] = lo + int(found[0]) if found.size else -1
        return out

    def tx_of_rows(self, rows: Array) -> Array:
        return np.searchsorted(self.out_start, rows, side="right") - 1


def _sorted_by(tx: Array, n: Array) -> Array | None:
    """The permutation sorting rows by (tx, n), or None when they already are."""
    if len(tx) < 2:
        return None
    dtx = np.diff(tx)
    if np.all((dtx > 0) | ((dtx == 0) & (np.diff(n) > 0))):
        return None
    return np.lexsort((n, tx))


def build_arrays(store: ChainStore, tip: Tip) -> dict[str, Array]:
    """All columns from the store in one pass over txs, outputs and inputs (vectorised)."""
    con = store.con
    t = con.execute("SELECT tx_id, height, is_coinbase, coalesce(fee, 0) AS fee FROM txs"
                    " ORDER BY tx_id").fetchnumpy()
    tx_id = np.asarray(t["tx_id"], np.int64)
    n_tx = len(tx_id)
    if n_tx and not (tx_id[0] == 0 and tx_id[-1] == n_tx - 1):
        raise ValueError("tx_id is not dense")
    o = con.execute("SELECT tx_id, n, value, coalesce(addr_id, -1) AS addr_id"
                    " FROM outputs").fetchnumpy()
    out_tx: Array = np.asarray(o["tx_id"], np.int64)
    out_n: Array = np.asarray(o["n"], np.int32)
    out_value: Array = np.asarray(o["value"], np.int64)
    out_addr: Array = np.asarray(o["addr_id"], np.int64)
    del o
    perm = _sorted_by(out_tx, out_n)
    if perm is not None:
        out_tx, out_n, out_value, out_addr = (a[perm] for a in (out_tx, out_n, out_value,
                                                                  out_addr))
    i = con.execute("SELECT tx_id, n, prev_tx_id, prev_n FROM inputs").fetchnumpy()
    in_tx: Array = np.asarray(i["tx_id"], np.int64)
    in_n: Array = np.asarray(i["n"], np.int32)
    prev_tx: Array = np.asarray(i["prev_tx_id"], np.int64)
    prev_n: Array = np.asarray(i["prev_n"], np.int64)
    del i
    perm = _sorted_by(in_tx, in_n)
    if perm is not None:
        in_tx, in_n, prev_tx, prev_n = (a[perm] for a in (in_tx, in_n, prev_tx, prev_n))
    bins = np.arange(n_tx + 1, dtype=np.int64)
    out_start = np.searchsorted(out_tx, bins).astype(np.int64)
    in_start = np.searchsorted(in_tx, bins).astype(np.int64)
    # the output row each input spends: dense n is a gather, otherwise a composite search
    if bool(np.all(out_n == np.arange(len(out_n)) - out_start[out_tx])):
        in_prev = out_start[prev_tx] + prev_n
        ok = prev_n < (out_start[prev_tx + 1] - out_start[prev_tx])
    else:
        composite = (out_tx << 24) | out_n.astype(np.int64)
        want = (prev_tx << 24) | prev_n
        in_prev = np.minimum(np.searchsorted(composite, want), max(len(composite) - 1, 0))
        ok = composite[in_prev] == want if len(composite) else np.zeros(len(want), bool)
    if not bool(np.all(ok)):
        raise ValueError("an input spends an output the store does not hold")
    txid_key, txid_order = _txid_index(con)
    addr_id, addr_off, addr_text = _address_texts(con)
    spent_tx = np.full(len(out_n), -1, np.int64)
    spent_in = np.full(len(out_n), -1, np.int32)
    spent_tx[in_prev] = in_tx
    spent_in[in_prev] = in_n
    return {
        "out_start": out_start, "in_start": in_start,
        "height": np.asarray(t["height"], np.int32), "fee": np.asarray(t["fee"], np.int64),
        "coinbase": np.asarray(t["is_coinbase"], np.bool_), "out_n": out_n,
        "out_value": out_value, "out_addr": out_addr, "spent_tx": spent_tx,
        "spent_in": spent_in, "in_prev": in_prev.astype(np.int64),
        "txid_key": txid_key, "txid_order": txid_order, "addr_id": addr_id, "addr_off": addr_off,
        "addr_text": addr_text,
    }


def _txid_index(con: Any) -> tuple[Array, Array]:
    table = con.execute("SELECT tx_id, txid FROM txs").arrow()
    if not isinstance(table, pa.Table):
        table = table.read_all()
    tx_id = np.asarray(table.column("tx_id").to_numpy(), np.int64)
    hashes = table.column("txid").combine_chunks().cast(pa.large_binary())
    offsets = np.frombuffer(hashes.buffers()[1], np.int64)[hashes.offset:][: len(hashes) + 1]
    data = np.frombuffer(hashes.buffers()[2], np.uint8)
    if len(hashes) and not bool(np.all(np.diff(offsets) == 32)):
        raise ValueError("a txid is not 32 bytes")
    start = offsets[:-1]
    prefix = data[start[:, None] + np.arange(8)].copy().view(np.uint64).ravel()
    order = np.argsort(prefix, kind="stable")
    return prefix[order], tx_id[order]


def _address_texts(con: Any) -> tuple[Array, Array, Array]:
    table = con.execute("SELECT addr_id, text FROM addresses ORDER BY addr_id").arrow()
    if not isinstance(table, pa.Table):
        table = table.read_all()
    ids = np.asarray(table.column("addr_id").to_numpy(), np.int64)
    if len(ids) == 0:
        return ids, np.zeros(1, np.int64), np.empty(0, np.uint8)
    texts = table.column("text").combine_chunks().cast(pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], np.int64)[texts.offset:][: len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], np.uint8)
    off = offsets - offsets[0]
    return ids, off.astype(np.int64), data[int(offsets[0]):int(offsets[-1])].copy()


def build(store: ChainStore, tip: Tip, where: Path | None = None) -> Path:
    """Write the arrays for `tip` to `where` (default `graph_dir`), replacing what is there."""
    final = graph_dir(store) if where is None else where
    t0 = time.perf_counter()
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)  # first, so an unwritable store directory fails fast
    try:
        arrays = build_arrays(store, tip)
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr)
        meta = tip_key(tip) | {"tx_count": len(arrays["height"]),
                               "output_count": len(arrays["out_n"]),
                               "input_count": len(arrays["in_prev"]),
                               "build_seconds": round(time.perf_counter() - t0, 3)}
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
        if final.exists():
            old = final.with_name(f"{final.name}.old-{os.getpid()}")
            final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load(where: Path) -> SpendGraph:
    meta = json.loads((where / META).read_text())
    key = {k: meta[k] for k in ("format", "tip_height", "tip_hash")}
    cols = {c: np.load(where / f"{c}.npy", mmap_mode="r") for c in COLUMNS}
    return SpendGraph(key, **cols)


def _current(where: Path, key: dict[str, Any]) -> bool:
    try:
        meta = json.loads((where / META).read_text())
    except (OSError, ValueError):
        return False
    return all(meta.get(k) == v for k, v in key.items())


_CACHE: dict[str, SpendGraph] = {}


def spend_graph(store: ChainStore, *, build_missing: bool = True) -> SpendGraph | None:
    """The spend graph at the store's current tip: loaded (cached per process), or built
    when missing or stale; None when the store is empty or it cannot be built or written."""
    tip = store.tip()
    if tip is None:
        return None
    key = tip_key(tip)
    where = graph_dir(store)
    cached = _CACHE.get(str(where))
    if cached is not None and cached.key == key:
        return cached
    try:
        if not _current(where, key):
            if not build_missing:
                return None
            build(store, tip, where)
        graph = load(where)
    except (OSError, ValueError):
        return None
    if graph.key != key:
        return None
    _CACHE[str(where)] = graph
    return graph
