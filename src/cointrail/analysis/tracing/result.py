"""The result of a trace: tainted outputs (nodes), flows between them (edges), endpoints by
category, and the record that lets the same trace be run again with the same answer.

Edges always point the way the money moved (spent outpoint → transaction → created output),
for backward traces too. An edge whose ``to_vout`` is None is the part that went to the fee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceNode:
    """One tainted output: ``txid:vout`` created at `height`, reached after `hop` transactions."""

    txid: str  # RPC hex
    vout: int
    address: str | None
    value: int  # the output's value, satoshi
    amount: int  # its tainted part, satoshi
    height: int
    hop: int
    seed: bool = False


@dataclass(frozen=True, slots=True)
class TraceEdge:
    """`amount` of taint moved from ``from_txid:from_vout`` through `txid` to its `to_vout`."""

    from_txid: str
    from_vout: int
    txid: str
    to_vout: int | None  # None: the fee
    amount: int
    height: int  # of `txid`
    coinjoin: bool = False


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Taint that stopped at an output (or a fee): where, how much and why (`category`)."""

    category: str
    txid: str
    vout: int | None
    address: str | None
    amount: int
    height: int
    label: str | None = None  # the tag's label, or the sanctioned party
    via: str | None = None  # the tagged address when the stop came from its cluster


@dataclass(frozen=True, slots=True)
class Trace:
    """A forward or backward trace; `to_dict` gives the JSON document the CLI prints."""

    direction: str
    model: str
    start: str
    seed_amount: int
    nodes: tuple[TraceNode, ...]
    edges: tuple[TraceEdge, ...]
    endpoints: tuple[Endpoint, ...]
    coinjoins: tuple[str, ...]  # txids of CoinJoins met (stopped at or passed through)
    absorbed: int  # taint that re-converged on an already tainted output (counted once)
    record: dict[str, Any] = field(default_factory=dict)

    def endpoint_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for e in self.endpoints:
            totals[e.category] = totals.get(e.category, 0) + e.amount
        return dict(sorted(totals.items()))

    def to_dict(self) -> dict[str, Any]:
        by_category: dict[str, dict[str, Any]] = {}
        for e in self.endpoints:
            group = by_category.setdefault(e.category, {"amount_sat": 0, "outputs": []})
            group["amount_sat"] += e.amount
            group["outputs"].append({
                "txid": e.txid, "vout": e.vout, "address": e.address, "amount_sat": e.amount,
                "height": e.height, "label": e.label, "via": e.via,
            })
        return {
            "direction": self.direction,
            "model": self.model,
            "start": self.start,
            "seed_amount_sat": self.seed_amount,
            "absorbed_sat": self.absorbed,
            "nodes": [
                {"txid": n.txid, "vout": n.vout, "address": n.address, "value_sat": n.value,
                 "amount_sat": n.amount, "height": n.height, "hop": n.hop, "seed": n.seed}
                for n in self.nodes
            ],
            "edges": [
                {"from_txid": e.from_txid, "from_vout": e.from_vout, "txid": e.txid,
                 "to_vout": e.to_vout, "amount_sat": e.amount, "height": e.height,
                 "coinjoin": e.coinjoin}
                for e in self.edges
            ],
            "endpoints": dict(sorted(by_category.items())),
            "unspent": by_category.get("unspent", {"amount_sat": 0, "outputs": []}),
            "coinjoins": list(self.coinjoins),
            "record": self.record,
        }
