"""Forward and backward tracing over the output-level spend graph.

The traversal goes hop by hop: the outputs tainted at hop *h* (the frontier) are joined with
the store in a few set-based queries (who spends them, or which transaction made them; those
transactions' inputs and outputs), each transaction splits its tainted sources by the taint
model (`models`), and the outputs reached form hop *h + 1*. The spend graph is acyclic at the
output level, so a trace ends; address reuse (A pays B pays A) shows up as new outputs of the
same address, never as a loop. An output never holds more taint than its value: taint that
re-converges on an already tainted output (e.g. a start address paying itself) is counted
once and reported as ``absorbed``.

Where taint stops, it is an endpoint with a category: ``unspent``, ``fee``, ``coinbase``
(backward: newly mined), ``hop_limit``, ``min_value``, ``window``, ``coinjoin`` (with
``--coinjoin stop``), ``sanctioned``, or the service category of the address or its cluster
(``exchange``, ...; `stops`). For haircut and FIFO the endpoints plus ``absorbed`` sum exactly
to the seed amount.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cointrail.analysis.tracing.models import (
    Taint,
    TaintModel,
    allocate,
    span_total,
    subtract_spans,
    union_spans,
)
from cointrail.analysis.tracing.result import Endpoint, Trace, TraceEdge, TraceNode
from cointrail.analysis.tracing.spendgraph import SpendGraph, spend_graph
from cointrail.analysis.tracing.stops import SERVICE_CATEGORIES, Stop, StopList, load_stops
from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.hashes import Txid
from cointrail.errors import InputError, NotFoundError
from cointrail.store.duck import ChainStore

FORWARD, BACKWARD = "forward", "backward"
COINJOIN_STOP, COINJOIN_THROUGH = "stop", "through"
DEFAULT_HOPS = 10

_OUTPOINT = re.compile(r"^([0-9a-fA-F]{64}):(\d+)$")
_TXID = re.compile(r"^[0-9a-fA-F]{64}$")
_CLUSTER = re.compile(r"^cluster:(\d+)$")

Key = tuple[int, int]  # (tx_id, n) of an output


@dataclass(frozen=True, slots=True)
class Start:
    """What a trace starts from: ``address``, ``tx`` (txid), ``outpoint`` (txid:n) or
    ``cluster`` (``cluster:ID``)."""

    kind: str
    text: str
    txid: Txid | None = None
    vout: int | None = None
    cluster_id: int | None = None


def parse_start(text: str) -> Start:
    """Classify START; addresses are checked against the chain when the trace resolves them."""
    text = text.strip()
    if m := _OUTPOINT.match(text):
        return Start("outpoint", text.lower(), Txid.from_rpc_hex(m.group(1)), int(m.group(2)))
    if _TXID.match(text):
        return Start("tx", text.lower(), Txid.from_rpc_hex(text))
    if m := _CLUSTER.match(text):
        return Start("cluster", text, cluster_id=int(m.group(1)))
    if not text:
        raise InputError("START is empty; give an address, a txid, txid:n or cluster:ID")
    return Start("address", text)


@dataclass(frozen=True, slots=True)
class TraceParams:
    """Model and limits. `since`/`until` bound the heights of the transactions traversed
    (a date means the first block on or after it / the last block before the next day, UTC)."""

    model: TaintModel = TaintModel.HAIRCUT
    hops: int = DEFAULT_HOPS
    min_value: int = 0
    since: int | date | None = None
    until: int | date | None = None
    stop_categories: frozenset[str] = field(default=SERVICE_CATEGORIES)
    stop_sanctioned: bool = True
    coinjoin: str = COINJOIN_STOP
    clusters: bool = True

    def __post_init__(self) -> None:
        if self.hops < 0:
            raise InputError(f"--hops {self.hops} is negative; give 0 or more")
        if self.min_value < 0:
            raise InputError(f"--min-value {self.min_value} is negative; give 0 or more sat")
        if self.coinjoin not in (COINJOIN_STOP, COINJOIN_THROUGH):
            raise InputError(f"--coinjoin {self.coinjoin!r}: use stop or through")

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model.value, "hops": self.hops, "min_value_sat": self.min_value,
            "since": _iso(self.since), "until": _iso(self.until),
            "stop_categories": sorted(self.stop_categories),
            "stop_sanctioned": self.stop_sanctioned, "coinjoin": self.coinjoin,
            "clusters": self.clusters,
        }


def _iso(value: int | date | None) -> int | str | None:
    return value.isoformat() if isinstance(value, date) else value


class _Tx(NamedTuple):
    txid: bytes
    height: int
    coinbase: bool
    fee: int
    coinjoin: bool


class _In(NamedTuple):
    n: int
    prev: Key
    value: int
    addr_id: int | None


class _Out(NamedTuple):
    n: int
    value: int
    addr_id: int | None


@dataclass(slots=True)
class _Node:
    value: int
    addr_id: int | None
    hop: int
    taint: Taint
    seed: bool = False
    stopped: dict[str, int] = field(default_factory=dict)
    stop: Stop | None = None


class _Graph:
    """Set-based reads of the spend graph; each call is one query over a registered set."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store

    def _with(self, name: str, table: pa.Table, sql: str) -> list[tuple[Any, ...]]:
        self.store.con.register(name, table)
        try:
            return self.store.query(sql)
        finally:
            self.store.con.unregister(name)

    def spenders(self, keys: Sequence[Key]) -> dict[Key, int]:
        table = pa.table({"tx_id": pa.array([k[0] for k in keys], pa.int64()),
                          "n": pa.array([k[1] for k in keys], pa.int32())})
        low = min(k[0] for k in keys)
        rows = self._with("_trace_front", table, (
            "SELECT i.prev_tx_id, i.prev_n, i.tx_id FROM inputs i JOIN _trace_front f"
            f" ON i.prev_tx_id = f.tx_id AND i.prev_n = f.n WHERE i.tx_id > {int(low)}"))
        return {(int(a), int(b)): int(t) for a, b, t in rows}

    def _ids(self, tx_ids: Sequence[int]) -> pa.Table:
        return pa.table({"tx_id": pa.array(sorted(set(tx_ids)), pa.int64())})

    def txs(self, tx_ids: Sequence[int], *, txids: bool = True) -> dict[int, _Tx]:
        """Transactions by tx_id; `txids=False` lets a graph leave ``txid`` empty."""
        rows = self._with("_trace_txs", self._ids(tx_ids), (
            "SELECT t.tx_id, t.txid, t.height, t.is_coinbase, coalesce(t.fee, 0),"
            " EXISTS (SELECT 1 FROM tx_labels l WHERE l.tx_id = t.tx_id"
            " AND l.label = 'coinjoin')"
            " FROM txs t WHERE t.tx_id IN (SELECT tx_id FROM _trace_txs)"))
        return {int(i): _Tx(bytes(h), int(ht), bool(cb), int(fee), bool(cj))
                for i, h, ht, cb, fee, cj in rows}

    def inputs(self, tx_ids: Sequence[int]) -> dict[int, list[_In]]:
        rows = self._with("_trace_txs", self._ids(tx_ids), (
            "SELECT tx_id, n, prev_tx_id, prev_n, value, addr_id FROM inputs"
            " WHERE tx_id IN (SELECT tx_id FROM _trace_txs) ORDER BY tx_id, n"))
        out: dict[int, list[_In]] = defaultdict(list)
        for t, n, pt, pn, v, a in rows:
            out[int(t)].append(_In(int(n), (int(pt), int(pn)), int(v),
                                   None if a is None else int(a)))
        return out

    def outputs(self, tx_ids: Sequence[int]) -> dict[int, list[_Out]]:
        rows = self._with("_trace_txs", self._ids(tx_ids), (
            "SELECT tx_id, n, value, addr_id FROM outputs"
            " WHERE tx_id IN (SELECT tx_id FROM _trace_txs) ORDER BY tx_id, n"))
        out: dict[int, list[_Out]] = defaultdict(list)
        for t, n, v, a in rows:
            out[int(t)].append(_Out(int(n), int(v), None if a is None else int(a)))
        return out

    def texts(self, addr_ids: Sequence[int]) -> dict[int, str]:
        if not addr_ids:
            return {}
        table = pa.table({"addr_id": pa.array(sorted(set(addr_ids)), pa.int64())})
        rows = self._with("_trace_addrs", table, (
            "SELECT addr_id, text FROM addresses"
            " WHERE addr_id IN (SELECT addr_id FROM _trace_addrs)"))
        return {int(a): str(t) for a, t in rows}


class _CsrGraph(_Graph):
    """The same reads as `_Graph`, answered from the memory-mapped spend graph (`spendgraph`);
    only CoinJoin labels, txids and address texts still come from the store."""

    def __init__(self, store: ChainStore, csr: SpendGraph) -> None:
        super().__init__(store)
        self.csr = csr
        self.labelled: npt.NDArray[np.int64] | None = None

    def spenders(self, keys: Sequence[Key]) -> dict[Key, int]:
        rows = self.csr.rows(list(keys))
        spent = np.where(rows >= 0, self.csr.spent_tx[np.maximum(rows, 0)], -1).tolist()
        return {k: t for k, t in zip(keys, spent, strict=True) if t >= 0}

    def _coinjoins(self, ids: list[int]) -> set[int]:
        if self.labelled is None:  # once per trace: the tx_ids labelled CoinJoin
            got = self.store.con.execute(
                "SELECT DISTINCT tx_id FROM tx_labels WHERE label = 'coinjoin'").fetchnumpy()
            self.labelled = np.sort(np.asarray(got["tx_id"], np.int64))
        if not len(self.labelled):
            return set()
        arr = np.asarray(ids, np.int64)
        return {int(t) for t in arr[np.isin(arr, self.labelled)].tolist()}

    def texts(self, addr_ids: Sequence[int]) -> dict[int, str]:
        return self.csr.texts(sorted(set(addr_ids)))

    def txs(self, tx_ids: Sequence[int], *, txids: bool = True) -> dict[int, _Tx]:
        ids = sorted(set(tx_ids))
        if not ids:
            return {}
        arr = np.asarray(ids, np.int64)
        heights = self.csr.height[arr].tolist()
        coinbase = self.csr.coinbase[arr].tolist()
        fees = self.csr.fee[arr].tolist()
        coinjoins = self._coinjoins(ids)
        hashes: dict[int, bytes] = {}
        if txids:
            listed = ", ".join(str(int(i)) for i in ids)  # constants: zone maps prune
            hashes = {int(i): bytes(h) for i, h in self.store.query(
                f"SELECT tx_id, txid FROM txs WHERE tx_id BETWEEN {ids[0]} AND {ids[-1]}"
                f" AND tx_id IN ({listed})")}
        return {i: _Tx(hashes.get(i, b""), int(h), bool(cb), int(f), i in coinjoins)
                for i, h, cb, f in zip(ids, heights, coinbase, fees, strict=True)}

    def _ranges(self, starts: npt.NDArray[np.int64], ids: list[int]) -> tuple[
            npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(row, owner position) of every row of the transactions `ids` in `starts`."""
        arr = np.asarray(ids, np.int64)
        lo, hi = starts[arr], starts[arr + 1]
        counts = hi - lo
        owner = np.repeat(np.arange(len(ids), dtype=np.int64), counts)
        first = np.cumsum(counts) - counts
        rows = np.repeat(lo, counts) + (np.arange(int(counts.sum()), dtype=np.int64)
                                        - np.repeat(first, counts))
        return rows, owner

    def inputs(self, tx_ids: Sequence[int]) -> dict[int, list[_In]]:
        ids = sorted(set(tx_ids))
        out: dict[int, list[_In]] = defaultdict(list)
        if not ids:
            return out
        csr = self.csr
        rows, owner = self._ranges(csr.in_start, ids)
        prev = np.asarray(csr.in_prev[rows], np.int64)
        cols = (owner.tolist(), csr.tx_of_rows(prev).tolist(), csr.out_n[prev].tolist(),
                csr.out_value[prev].tolist(), csr.out_addr[prev].tolist())
        pos = 0
        last = -1
        for o, pt, pn, v, a in zip(*cols, strict=True):
            pos = pos + 1 if o == last else 0
            last = o
            out[ids[o]].append(_In(pos, (pt, pn), v, None if a < 0 else a))
        return out

    def outputs(self, tx_ids: Sequence[int]) -> dict[int, list[_Out]]:
        ids = sorted(set(tx_ids))
        out: dict[int, list[_Out]] = defaultdict(list)
        if not ids:
            return out
        csr = self.csr
        rows, owner = self._ranges(csr.out_start, ids)
        for o, n, v, a in zip(owner.tolist(), csr.out_n[rows].tolist(),
                              csr.out_value[rows].tolist(), csr.out_addr[rows].tolist(),
                              strict=True):
            out[ids[o]].append(_Out(n, v, None if a < 0 else a))
        return out


def _height_bound(store: ChainStore, value: int | date | None, upper: bool) -> int | None:
    if value is None or isinstance(value, int):
        return value
    day = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if upper:
        row = store.query("SELECT coalesce(max(height), -1) FROM blocks WHERE time < ?",
                          [int((day + timedelta(days=1)).timestamp())])
    else:
        row = store.query("SELECT coalesce(min(height), 2147483647) FROM blocks WHERE time >= ?",
                          [int(day.timestamp())])
    return int(row[0][0])


def _find_tx(store: ChainStore, txid: bytes, csr: SpendGraph | None) -> list[tuple[Any, ...]]:
    """[(tx_id or None,)] of `txid`: by the spend graph's txid index when there is one."""
    if csr is None:
        return store.query("SELECT max(tx_id) FROM txs WHERE txid = ?", [txid])
    candidates = csr.find_txid(txid)
    if not candidates:
        return [(None,)]
    listed = ", ".join(str(t) for t in candidates)
    return store.query(f"SELECT max(tx_id) FROM txs WHERE tx_id IN ({listed}) AND txid = ?",
                       [txid])


def _seeds(store: ChainStore, start: Start,
           csr: SpendGraph | None = None) -> list[tuple[int, int, int, int | None]]:
    """(tx_id, n, value, addr_id) of the outputs a trace starts from."""
    where = f"the {store.spec.key} store"
    if start.kind in ("tx", "outpoint"):
        assert start.txid is not None
        found = _find_tx(store, bytes(start.txid), csr)
        if not found or found[0][0] is None:
            raise NotFoundError(f"no transaction {start.txid.rpc_hex} in {where}")
        tx_id = int(found[0][0])
        if start.kind == "tx":
            rows = store.query("SELECT tx_id, n, value, addr_id FROM outputs WHERE tx_id = ?"
                               " ORDER BY n", [tx_id])
        else:
            rows = store.query("SELECT tx_id, n, value, addr_id FROM outputs"
                               " WHERE tx_id = ? AND n = ?", [tx_id, start.vout])
            if not rows:
                raise NotFoundError(f"transaction {start.txid.rpc_hex} has no output "
                                    f"{start.vout}")
    elif start.kind == "address":
        text = parse_address(start.text, store.spec).text
        found = store.query("SELECT addr_id FROM addresses WHERE text = ?", [text])
        if not found:
            raise NotFoundError(f"{text} has never appeared on the chain held by {where}")
        rows = store.query("SELECT tx_id, n, value, addr_id FROM outputs WHERE addr_id = ?"
                           " ORDER BY tx_id, n", [int(found[0][0])])
    else:
        from cointrail.analysis.clustering.engine import cluster_view

        assert start.cluster_id is not None
        view = cluster_view(store)
        current = view.of(start.cluster_id)
        members = view.members(start.cluster_id if current is None else current)
        if members.size == 0:
            raise NotFoundError(f"no cluster {start.cluster_id} in the {store.spec.key} "
                                "clustering")
        store.con.register("_trace_members",
                           pa.table({"addr_id": pa.array(members, pa.int64())}))
        try:
            rows = store.query("SELECT tx_id, n, value, addr_id FROM outputs WHERE addr_id IN"
                               " (SELECT addr_id FROM _trace_members) ORDER BY tx_id, n")
        finally:
            store.con.unregister("_trace_members")
    return [(int(t), int(n), int(v), None if a is None else int(a)) for t, n, v, a in rows]


class _Tracer:
    def __init__(self, store: ChainStore, params: TraceParams, stops: StopList,
                 direction: str, csr: SpendGraph | None = None) -> None:
        self.graph = _Graph(store) if csr is None else _CsrGraph(store, csr)
        self.params = params
        self.model = params.model
        self.stops = stops
        self.direction = direction
        self.since = _height_bound(store, params.since, upper=False)
        self.until = _height_bound(store, params.until, upper=True)
        self.nodes: dict[Key, _Node] = {}
        self.edges: dict[tuple[Key, int, int | None], int] = defaultdict(int)
        self.fees: dict[int, int] = defaultdict(int)
        self.coinjoins: set[int] = set()
        self.absorbed = 0

    # -- taint bookkeeping ------------------------------------------------------------------

    def _full(self, value: int) -> Taint:
        return Taint(value, ((0, value),) if self.model is TaintModel.FIFO and value else ())

    def _merge(self, a: Taint | None, b: Taint) -> Taint:
        if a is None:
            return b
        if self.model is TaintModel.FIFO:
            spans = union_spans(a.spans, b.spans)
            return Taint(span_total(spans), spans)
        return Taint(a.amount + b.amount)

    def _absorb(self, node: _Node, delta: Taint) -> Taint:
        """Add `delta` to `node` (never beyond its value); returns the part that was new."""
        old = node.taint
        if self.model is TaintModel.POISON:
            node.taint = self._full(node.value)
            new = Taint(node.value - old.amount)
        elif self.model is TaintModel.FIFO:
            fresh = subtract_spans(delta.spans, old.spans)
            spans = union_spans(old.spans, fresh)
            node.taint = Taint(span_total(spans), spans)
            new = Taint(span_total(fresh), fresh)
        else:
            total = min(node.value, old.amount + delta.amount)
            node.taint = Taint(total)
            new = Taint(total - old.amount)
        if self.model is not TaintModel.POISON:
            self.absorbed += delta.amount - new.amount
        return new

    def _stop(self, key: Key, reason: str, amount: int) -> None:
        if amount:
            stopped = self.nodes[key].stopped
            stopped[reason] = stopped.get(reason, 0) + amount

    def _in_window(self, height: int) -> bool:
        return ((self.since is None or height >= self.since)
                and (self.until is None or height <= self.until))

    def _reach(self, pending: dict[Key, Taint], key: Key, delta: Taint, value: int,
               addr_id: int | None, hop: int) -> None:
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = _Node(value, addr_id, hop, Taint(0))
        new = self._absorb(node, delta)
        if new.amount:
            pending[key] = self._merge(pending.get(key), new)

    def _next_frontier(self, pending: dict[Key, Taint]) -> dict[Key, Taint]:
        hits = self.stops.lookup({n.addr_id for k in pending
                                  if (n := self.nodes[k]).addr_id is not None})
        frontier: dict[Key, Taint] = {}
        for key, delta in pending.items():
            node = self.nodes[key]
            stop = hits.get(node.addr_id) if node.addr_id is not None else None
            if stop is not None:
                node.stop = stop
                self._stop(key, stop.category, delta.amount)
            elif delta.amount < self.params.min_value:
                self._stop(key, "min_value", delta.amount)
            else:
                frontier[key] = delta
        return frontier

    # -- the walk ----------------------------------------------------------------------------

    def run(self, seeds: Sequence[tuple[int, int, int, int | None]]) -> None:
        frontier: dict[Key, Taint] = {}
        for tx_id, n, value, addr_id in seeds:
            if value <= 0:
                continue
            full = self._full(value)
            self.nodes[(tx_id, n)] = _Node(value, addr_id, 0, full, seed=True)
            if value < self.params.min_value:
                self._stop((tx_id, n), "min_value", value)
            else:
                frontier[(tx_id, n)] = full
        hop = 0
        step = self._forward if self.direction == FORWARD else self._backward
        while frontier:
            frontier = step(frontier, hop)
            hop += 1

    def _forward(self, frontier: dict[Key, Taint], hop: int) -> dict[Key, Taint]:
        spent = self.graph.spenders(list(frontier))
        live: dict[int, list[Key]] = defaultdict(list)
        for key, delta in frontier.items():
            if key not in spent:
                self._stop(key, "unspent", delta.amount)
            elif hop >= self.params.hops:
                self._stop(key, "hop_limit", delta.amount)
            else:
                live[spent[key]].append(key)
        if not live:
            return {}
        txs = self.graph.txs(list(live), txids=False)
        ins, outs = self.graph.inputs(list(live)), self.graph.outputs(list(live))
        pending: dict[Key, Taint] = {}
        for tx_id in sorted(live):
            tx = txs[tx_id]
            if not self._enter(tx_id, tx, live[tx_id], frontier):
                continue
            inputs, outputs = ins[tx_id], outs[tx_id]
            targets = [o.value for o in outputs] + ([tx.fee] if tx.fee > 0 else [])
            sent = allocate(self.model, [frontier.get(i.prev) for i in inputs],
                            [i.value for i in inputs], targets)
            for inp, shares in zip(inputs, sent, strict=True):
                for k, taint in shares:
                    if k == len(outputs):  # the fee
                        self.edges[(inp.prev, tx_id, None)] += taint.amount
                        # poison taints the whole fee from every input: count it once
                        self.fees[tx_id] = min(self.fees[tx_id] + taint.amount, tx.fee)
                        continue
                    out = outputs[k]
                    self.edges[(inp.prev, tx_id, out.n)] += taint.amount
                    self._reach(pending, (tx_id, out.n), taint, out.value, out.addr_id, hop + 1)
        return self._next_frontier(pending)

    def _backward(self, frontier: dict[Key, Taint], hop: int) -> dict[Key, Taint]:
        by_tx: dict[int, list[Key]] = defaultdict(list)
        for key in frontier:
            by_tx[key[0]].append(key)
        txs = self.graph.txs(list(by_tx), txids=False)
        live: dict[int, list[Key]] = {}
        for tx_id, keys in by_tx.items():
            reason = ("coinbase" if txs[tx_id].coinbase
                      else "hop_limit" if hop >= self.params.hops else None)
            if reason is None:
                live[tx_id] = keys
            else:
                for key in keys:
                    self._stop(key, reason, frontier[key].amount)
        if not live:
            return {}
        ins, outs = self.graph.inputs(list(live)), self.graph.outputs(list(live))
        pending: dict[Key, Taint] = {}
        for tx_id in sorted(live):
            tx = txs[tx_id]
            if not self._enter(tx_id, tx, live[tx_id], frontier):
                continue
            inputs, outputs = ins[tx_id], outs[tx_id]
            sent = allocate(self.model, [frontier.get((tx_id, o.n)) for o in outputs],
                            [o.value for o in outputs], [i.value for i in inputs])
            for out, shares in zip(outputs, sent, strict=True):
                for k, taint in shares:
                    inp = inputs[k]
                    self.edges[(inp.prev, tx_id, out.n)] += taint.amount
                    self._reach(pending, inp.prev, taint, inp.value, inp.addr_id, hop + 1)
        return self._next_frontier(pending)

    def _enter(self, tx_id: int, tx: _Tx, keys: list[Key], frontier: dict[Key, Taint]) -> bool:
        """Whether the walk goes through `tx`; if not, its tainted outputs become endpoints."""
        reason = None
        if not self._in_window(tx.height):
            reason = "window"
        elif tx.coinjoin:
            self.coinjoins.add(tx_id)
            if self.params.coinjoin == COINJOIN_STOP:
                reason = "coinjoin"
        if reason is None:
            return True
        for key in keys:
            self._stop(key, reason, frontier[key].amount)
        return False


def trace(
    store: ChainStore,
    start: str | Start,
    direction: str = FORWARD,
    params: TraceParams | None = None,
    *,
    attribution_root: Path | str | None = None,
    spendgraph: bool = True,
) -> Trace:
    """Trace the funds of `start` forward (where they went) or backward (where they came from).

    `attribution_root` is the folder holding ``attribution.duckdb`` (default: the store's).
    The walk reads the memory-mapped spend graph beside the store (built or rebuilt for the
    store's tip when missing or stale); with `spendgraph` false, or when it cannot be built,
    it runs set-based queries on the store instead (same result).
    """
    from cointrail import __version__

    if direction not in (FORWARD, BACKWARD):
        raise InputError(f"direction {direction!r}: use forward or backward")
    params = params or TraceParams()
    if store.spec.is_account_model:  # transfers between accounts, per asset (issue 9)
        from cointrail.analysis.tracing.account import trace_account

        tip = store.tip()
        return trace_account(
            store, start if isinstance(start, str) else start.text, direction, params.model,
            params.hops, params.min_value, stop_categories=params.stop_categories,
            stop_sanctioned=params.stop_sanctioned, attribution_root=attribution_root,
            record={"chain": store.spec.chain, "network": store.spec.network,
                    "tip_height": None if tip is None else tip.height,
                    "tip_hash": None if tip is None else tip.hash[::-1].hex(),
                    "direction": direction, "start": str(start if isinstance(start, str)
                                                         else start.text),
                    "parameters": params.describe(), "cointrail_version": __version__})
    begin = parse_start(start) if isinstance(start, str) else start
    csr = spend_graph(store) if spendgraph else None
    seeds = _seeds(store, begin, csr)
    root = None if attribution_root is None else Path(attribution_root)
    stops = load_stops(store, params.stop_categories, sanctioned=params.stop_sanctioned,
                       clusters=params.clusters, attribution_root=root)
    tracer = _Tracer(store, params, stops, direction, csr)
    tracer.run(seeds)
    tip = store.tip()
    record = {
        "chain": store.spec.chain, "network": store.spec.network,
        "tip_height": None if tip is None else tip.height,
        "tip_hash": None if tip is None else tip.hash[::-1].hex(),
        **stops.record,
        "spend_graph": None if csr is None else dict(csr.key),
        "direction": direction, "start": begin.text, "start_kind": begin.kind,
        "parameters": params.describe() | {"since_height": tracer.since,
                                           "until_height": tracer.until},
        "cointrail_version": __version__,
    }
    return _result(tracer, begin, direction, record)


def _result(tracer: _Tracer, start: Start, direction: str, record: dict[str, Any]) -> Trace:
    graph = tracer.graph
    tx_ids = {k[0] for k in tracer.nodes} | {t for (_, t, _) in tracer.edges}
    tx_ids |= {k[0] for (k, _, _) in tracer.edges} | tracer.coinjoins
    txs = graph.txs(sorted(tx_ids)) if tx_ids else {}
    texts = graph.texts([n.addr_id for n in tracer.nodes.values() if n.addr_id is not None])

    def txid(tx_id: int) -> str:
        return txs[tx_id].txid[::-1].hex()

    def text(addr_id: int | None) -> str | None:
        return None if addr_id is None else texts.get(addr_id)

    order = sorted(tracer.nodes, key=lambda k: (tracer.nodes[k].hop, k))
    nodes = tuple(
        TraceNode(txid(k[0]), k[1], text(n.addr_id), n.value, n.taint.amount,
                  txs[k[0]].height, n.hop, n.seed)
        for k in order if (n := tracer.nodes[k]).taint.amount
    )
    edges = tuple(
        TraceEdge(txid(src[0]), src[1], txid(tx_id), vout, amount, txs[tx_id].height,
                  tx_id in tracer.coinjoins)
        for (src, tx_id, vout), amount in sorted(
            tracer.edges.items(), key=lambda e: (e[0][1], e[0][0], e[0][2] is None,
                                                 e[0][2] or 0))
        if amount
    )
    ends: list[Endpoint] = []
    for k in sorted(tracer.nodes):
        n = tracer.nodes[k]
        for reason, amount in sorted(n.stopped.items()):
            stop = n.stop if n.stop is not None and reason == n.stop.category else None
            ends.append(Endpoint(reason, txid(k[0]), k[1], text(n.addr_id), amount,
                                 txs[k[0]].height, stop.label if stop else None,
                                 stop.via if stop else None))
    for tx_id, amount in sorted(tracer.fees.items()):
        ends.append(Endpoint("fee", txid(tx_id), None, None, amount, txs[tx_id].height))
    ends.sort(key=lambda e: e.category)
    seed_amount = sum(n.value for n in tracer.nodes.values() if n.seed)
    return Trace(direction, tracer.model.value, start.text, seed_amount, nodes, edges,
                 tuple(ends), tuple(txid(t) for t in sorted(tracer.coinjoins)),
                 tracer.absorbed, record)
