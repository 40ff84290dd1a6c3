"""The k shortest fund-flow paths between two addresses or clusters, within a hop bound.

The paths run over the *flow graph* derived from the output-level spend graph: a node is an
address (or, when either end is ``cluster:ID``, a cluster of the current clustering), and there
is an edge U → V for every transaction that spends an output of U and pays an output of V.
An edge's amount in one transaction is the haircut share of U's inputs that lands on V's
outputs: each input's value is split across the outputs and the fee in proportion to their
values (largest-remainder rounding, `models.largest_remainder`), and the shares from U's
inputs to V's outputs are summed. Several transactions between the same pair make one edge
listing each txid with its amount; the edge's amount is their sum. Change back to the payer
(U → U, or a cluster paying itself) is no edge.

Search: a bounded bidirectional BFS collects the edges that can lie on a path of at most
`hops` edges (forward from FROM for ``ceil(hops / 2)`` levels, backward from TO for
``floor(hops / 2)``; every edge of such a path is in one of the two balls), then Yen's
algorithm lists `k` shortest simple paths in that subgraph (fewest hops first; paths of equal
length are listed by larger bottleneck, the smallest edge amount on the path). A path is a
path of the aggregated graph: the flag ``time_ordered`` says whether one of its transactions
per edge can be picked at non-decreasing heights, i.e. whether the same money can have taken
it.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

import numpy as np
import pyarrow as pa

from cointrail.analysis.tracing.engine import Start, _Graph, parse_start
from cointrail.analysis.tracing.models import largest_remainder
from cointrail.chain.utxo.address import parse_address
from cointrail.errors import InputError, NotFoundError
from cointrail.store.duck import ChainStore

DEFAULT_PATH_HOPS = 6
DEFAULT_K = 3
ADDRESS, CLUSTER = "address", "cluster"

Node = int  # an addr_id, or a cluster id at the cluster level


@dataclass(frozen=True, slots=True)
class EdgeTx:
    """One transaction on an edge: its txid, height and the amount it moved U → V."""

    txid: str
    height: int
    amount: int


@dataclass(frozen=True, slots=True)
class PathEdge:
    source: str
    target: str
    amount: int
    txs: tuple[EdgeTx, ...]


@dataclass(frozen=True, slots=True)
class FlowPath:
    nodes: tuple[str, ...]
    edges: tuple[PathEdge, ...]

    @property
    def hops(self) -> int:
        return len(self.edges)

    @property
    def bottleneck(self) -> int:
        return min(e.amount for e in self.edges)

    @property
    def time_ordered(self) -> bool:
        at = -1
        for edge in self.edges:
            later = [t.height for t in edge.txs if t.height >= at]
            if not later:
                return False
            at = min(later)
        return True


@dataclass(frozen=True, slots=True)
class Paths:
    """The answer of `find_paths`; `to_dict` is the JSON document the CLI prints."""

    source: str
    target: str
    level: str
    hops: int
    k: int
    paths: tuple[FlowPath, ...]
    explored_edges: int
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.paths)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.source, "to": self.target, "level": self.level, "hops": self.hops,
            "k": self.k, "found": self.found,
            "message": None if self.found else
            f"no path from {self.source} to {self.target} within {self.hops} hops",
            "paths": [
                {"hops": p.hops, "bottleneck_sat": p.bottleneck,
                 "time_ordered": p.time_ordered, "nodes": list(p.nodes),
                 "edges": [
                     {"from": e.source, "to": e.target, "amount_sat": e.amount,
                      "txs": [{"txid": t.txid, "height": t.height, "amount_sat": t.amount}
                              for t in e.txs]}
                     for e in p.edges]}
                for p in self.paths
            ],
            "explored_edges": self.explored_edges,
            "record": self.record,
        }


class _FlowGraph:
    """The flow graph read lazily from the store: edges out of / into sets of nodes."""

    def __init__(self, store: ChainStore, level: str) -> None:
        self.graph = _Graph(store)
        self.store = store
        self.level = level
        self.ids: np.ndarray | None = None
        self.height: int | None = None
        if level == CLUSTER:
            from cointrail.analysis.clustering.engine import cluster_view

            view = cluster_view(store)
            self.ids, self.height = np.asarray(view.ids), view.height
        # (u, v) -> {tx_id: amount}
        self.edges: dict[tuple[Node, Node], dict[int, int]] = defaultdict(dict)
        self.done: set[int] = set()

    def node(self, addr_id: int | None) -> Node | None:
        if addr_id is None:
            return None
        if self.ids is None:
            return addr_id
        # addresses first seen after the clustering are their own cluster, kept apart
        return int(self.ids[addr_id]) if addr_id < len(self.ids) else -1 - addr_id

    def addresses(self, nodes: Iterable[Node]) -> list[int]:
        if self.ids is None:
            return sorted(set(nodes))
        wanted = set(nodes)
        out = [int(a) for a in np.flatnonzero(np.isin(self.ids, sorted(wanted)))]
        return sorted(out + [-1 - n for n in wanted if n < 0])

    def owned_outputs(self, nodes: Iterable[Node]) -> list[tuple[int, int]]:
        addrs = self.addresses(nodes)
        if not addrs:
            return []
        table = pa.table({"addr_id": pa.array(addrs, pa.int64())})
        rows = self.graph._with("_paths_addrs", table, (
            "SELECT tx_id, n FROM outputs WHERE addr_id IN (SELECT addr_id FROM _paths_addrs)"))
        return [(int(t), int(n)) for t, n in rows]

    def load(self, tx_ids: Iterable[int]) -> None:
        """Add the edges of transactions not read yet."""
        todo = sorted(set(tx_ids) - self.done)
        if not todo:
            return
        self.done.update(todo)
        txs, ins, outs = self.graph.txs(todo), self.graph.inputs(todo), self.graph.outputs(todo)
        for tx_id in todo:
            inputs, outputs = ins.get(tx_id, []), outs.get(tx_id, [])
            if not inputs or not outputs:
                continue
            fee = txs[tx_id].fee
            targets = [o.value for o in outputs] + ([fee] if fee > 0 else [])
            for inp in inputs:
                u = self.node(inp.addr_id)
                if u is None or inp.value == 0:
                    continue
                shares = largest_remainder(inp.value, targets)
                for out, share in zip(outputs, shares, strict=False):
                    v = self.node(out.addr_id)
                    if v is None or v == u or share == 0:
                        continue
                    per_tx = self.edges[(u, v)]
                    per_tx[tx_id] = per_tx.get(tx_id, 0) + share

    def expand_forward(self, nodes: Sequence[Node]) -> None:
        spent = self.graph.spenders(self.owned_outputs(nodes)) if nodes else {}
        self.load(spent.values())

    def expand_backward(self, nodes: Sequence[Node]) -> None:
        self.load(t for t, _ in self.owned_outputs(nodes))


def _bfs(adj: dict[Node, list[Node]], src: Node, dst: Node, hops: int,
         banned_nodes: set[Node], banned_edges: set[tuple[Node, Node]]) -> list[Node] | None:
    """A shortest path src → dst of at most `hops` edges (neighbours in sorted order)."""
    if src in banned_nodes:
        return None
    parent: dict[Node, Node] = {src: src}
    level = [src]
    for _ in range(hops):
        nxt: list[Node] = []
        for u in level:
            for v in adj.get(u, ()):
                if v in parent or v in banned_nodes or (u, v) in banned_edges:
                    continue
                parent[v] = u
                if v == dst:
                    path = [v]
                    while path[-1] != src:
                        path.append(parent[path[-1]])
                    return path[::-1]
                nxt.append(v)
        level = nxt
        if not level:
            break
    return None


def _yen(adj: dict[Node, list[Node]], amount: dict[tuple[Node, Node], int], src: Node,
         dst: Node, hops: int, k: int) -> list[list[Node]]:
    """Yen's k shortest simple paths (by hop count), each of at most `hops` edges."""

    def rank(path: list[Node]) -> tuple[int, int, list[Node]]:
        return (len(path), -min(amount[(a, b)] for a, b in pairwise(path)),
                path)

    first = _bfs(adj, src, dst, hops, set(), set())
    if first is None:
        return []
    found = [first]
    candidates: list[tuple[int, int, list[Node]]] = []
    seen = {tuple(first)}
    while len(found) < k:
        last = found[-1]
        for i in range(len(last) - 1):
            root = last[:i + 1]
            banned_edges = {(p[i], p[i + 1]) for p in found if p[:i + 1] == root}
            spur = _bfs(adj, root[-1], dst, hops - i, set(root[:-1]), banned_edges)
            if spur is None:
                continue
            path = root[:-1] + spur
            if tuple(path) not in seen:
                seen.add(tuple(path))
                heapq.heappush(candidates, rank(path))
        if not candidates:
            break
        found.append(heapq.heappop(candidates)[2])
    return sorted(found, key=rank)


def _resolve(store: ChainStore, flow: _FlowGraph, start: Start) -> Node:
    if start.kind == CLUSTER:
        assert start.cluster_id is not None and flow.ids is not None
        if start.cluster_id < 0 or not np.any(flow.ids == start.cluster_id):
            raise NotFoundError(f"no cluster {start.cluster_id} in the {store.spec.key} "
                                "clustering")
        return start.cluster_id
    if start.kind != "address":
        raise InputError(f"{start.text}: paths run between addresses or clusters (cluster:ID),"
                         " not transactions or outpoints")
    text = parse_address(start.text, store.spec).text
    found = store.query("SELECT addr_id FROM addresses WHERE text = ?", [text])
    if not found:
        raise NotFoundError(f"{text} has never appeared on the {store.spec.key} chain")
    node = flow.node(int(found[0][0]))
    assert node is not None
    return node


def find_paths(store: ChainStore, source: str, target: str, *, hops: int = DEFAULT_PATH_HOPS,
               k: int = DEFAULT_K) -> Paths:
    """The `k` shortest fund-flow paths from `source` to `target` (addresses or
    ``cluster:ID``) of at most `hops` edges; ``found`` is false when there is none."""
    from cointrail import __version__

    if store.spec.is_account_model:
        from cointrail.analysis.tracing.account import find_account_paths

        return cast(Paths, find_account_paths(store, source, target, hops=hops, k=k))
    if hops < 1:
        raise InputError(f"--hops {hops}: give 1 or more")
    if k < 1:
        raise InputError(f"--k {k}: give 1 or more")
    a, b = parse_start(source), parse_start(target)
    level = CLUSTER if CLUSTER in (a.kind, b.kind) else ADDRESS
    flow = _FlowGraph(store, level)
    src, dst = _resolve(store, flow, a), _resolve(store, flow, b)
    if src == dst:
        raise InputError(f"{source} and {target} are the same {level}")
    # bidirectional bounded BFS: every edge of a path of <= hops edges is collected
    fwd_seen, front = {src}, [src]
    for _ in range((hops + 1) // 2):
        flow.expand_forward(front)
        at = set(front)
        front = sorted({v for (u, v) in flow.edges if u in at} - fwd_seen)
        fwd_seen.update(front)
        if not front:
            break
    back_seen, back = {dst}, [dst]
    for _ in range(hops // 2):
        flow.expand_backward(back)
        at = set(back)
        back = sorted({u for (u, v) in flow.edges if v in at} - back_seen)
        back_seen.update(back)
        if not back:
            break
    adj: dict[Node, list[Node]] = defaultdict(list)
    amount: dict[tuple[Node, Node], int] = {}
    for (u, v), per_tx in sorted(flow.edges.items()):
        adj[u].append(v)
        amount[(u, v)] = sum(per_tx.values())
    found = _yen(adj, amount, src, dst, hops, k)
    paths = _build(store, flow, found, a, b, src, dst)
    tip = store.tip()
    record = {
        "chain": store.spec.chain, "network": store.spec.network,
        "tip_height": None if tip is None else tip.height,
        "tip_hash": None if tip is None else tip.hash[::-1].hex(),
        "clustering": None if flow.height is None else {
            "height": flow.height, "config_hash": store.state().get("cluster_config_hash")},
        "edge_amount": "haircut share of the payer's inputs on the payee's outputs",
        "parameters": {"hops": hops, "k": k, "level": level},
        "cointrail_version": __version__,
    }
    return Paths(a.text, b.text, level, hops, k, tuple(paths), len(flow.edges), record)


def _build(store: ChainStore, flow: _FlowGraph, found: list[list[Node]], a: Start, b: Start,
           src: Node, dst: Node) -> list[FlowPath]:
    pairs = {(u, v) for p in found for u, v in pairwise(p)}
    tx_ids = sorted({t for pair in pairs for t in flow.edges[pair]})
    txs = flow.graph.txs(tx_ids) if tx_ids else {}
    nodes = {n for p in found for n in p}
    texts = flow.graph.texts([n for n in nodes if n >= 0]) if level_is_address(flow) else {}

    def name(n: Node) -> str:
        if n == src:
            return a.text
        if n == dst:
            return b.text
        if level_is_address(flow):
            return texts.get(n, f"addr_id:{n}")
        return f"cluster:{n}" if n >= 0 else f"unclustered:{-1 - n}"

    out = []
    for p in found:
        edges = []
        for u, v in pairwise(p):
            per_tx = flow.edges[(u, v)]
            items = sorted((txs[t].height, txs[t].txid[::-1].hex(), amt)
                           for t, amt in per_tx.items())
            edges.append(PathEdge(name(u), name(v), sum(per_tx.values()),
                                  tuple(EdgeTx(txid, h, amt) for h, txid, amt in items)))
        out.append(FlowPath(tuple(name(n) for n in p), tuple(edges)))
    return out


def level_is_address(flow: _FlowGraph) -> bool:
    return flow.level == ADDRESS
