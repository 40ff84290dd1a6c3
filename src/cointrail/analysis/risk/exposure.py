"""Exposure: which categories of counterparties an address's (or cluster's) money came from and
went to, within N hops, direct and indirect, each figure explained by the paths behind it.

Incoming exposure is a backward haircut trace (`cointrail.analysis.tracing.trace`) from every
output the address received; outgoing is a forward haircut trace from them, not counting the
outputs that are still unspent (they went nowhere yet). The trace stops at the first address
whose tag (active list versions; with a clustering, also its cluster mates) has *any* category,
mixing services included, and at sanctioned addresses. Each endpoint of the trace is credited to
its category: the attribution categories (``exchange``, ``mixing_service``, ``sanctioned``,
…) and the chain ones where the trace ended untagged (``coinbase``, ``unspent``, ``fee``,
``hop_limit``, ``coinjoin``, ``window``, ``min_value``).

An endpoint at hop 0 or 1 (a counterparty of the address's own transactions) is *direct*; one
further away is *indirect*. Shares are integer satoshi and fractions of the direction's total
(the sum of all its endpoints, so the fractions sum to 1); value the address sent to itself is
counted once (the trace's ``absorbed``) and is not part of the total. Each category lists its
largest endpoints with the path of outputs that leads from the address to them (following the
largest flow at each step).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cointrail.analysis.tracing import (
    BACKWARD,
    FORWARD,
    SERVICE_CATEGORIES,
    Endpoint,
    TaintModel,
    Trace,
    TraceParams,
    parse_start,
    trace,
)
from cointrail.errors import InputError
from cointrail.store.duck import ChainStore

DEFAULT_EXPOSURE_HOPS = 6
DEFAULT_TOP = 5
IN, OUT, BOTH = "in", "out", "both"
CHAIN_CATEGORIES: frozenset[str] = frozenset({
    "coinbase", "unspent", "fee", "hop_limit", "coinjoin", "window", "min_value",
})
"""Where a trace ends without attribution; every other category comes from tags or sanctions."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """Incoming and/or outgoing exposure of one address or cluster."""

    subject: str
    hops: int
    incoming: dict[str, Any] | None
    outgoing: dict[str, Any] | None
    record: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "hops": self.hops, "incoming": self.incoming,
                "outgoing": self.outgoing, "record": self.record}


def tag_categories(store: ChainStore, attribution_root: Path | None = None) -> frozenset[str]:
    """Every category an active tag of `store`'s chain has (empty without attribution)."""
    from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore

    root = store.path.parent if attribution_root is None else attribution_root
    if not (root / ATTRIBUTION_DB).exists():
        return frozenset()
    with AttributionStore(root, read_only=True) as attr:
        rows = attr.query(
            "SELECT DISTINCT t.category FROM tags t JOIN list_versions v USING (version_id)"
            " WHERE t.chain = ? AND t.network = ? AND v.active AND t.category IS NOT NULL",
            [store.spec.chain, store.spec.network])
    return frozenset(str(r[0]) for r in rows)


def exposure(
    store: ChainStore,
    subject: str,
    *,
    direction: str = BOTH,
    hops: int = DEFAULT_EXPOSURE_HOPS,
    top: int = DEFAULT_TOP,
    attribution_root: Path | str | None = None,
) -> Exposure:
    """Exposure of `subject` (an address or ``cluster:ID``) within `hops` hops."""
    if direction not in (IN, OUT, BOTH):
        raise InputError(f"--direction {direction!r}: use in, out or both")
    if hops < 1:
        raise InputError(f"--hops {hops}: give 1 or more")
    if parse_start(subject).kind not in ("address", "cluster"):
        raise InputError(f"{subject}: exposure is for an address or cluster:ID")
    root = None if attribution_root is None else Path(attribution_root)
    params = TraceParams(model=TaintModel.HAIRCUT, hops=hops,
                         stop_categories=SERVICE_CATEGORIES | tag_categories(store, root))
    incoming = outgoing = None
    records: dict[str, Any] = {}
    if direction in (IN, BOTH):
        back = trace(store, subject, BACKWARD, params, attribution_root=root)
        incoming, records["incoming"] = _summarise(back, top), back.record
    if direction in (OUT, BOTH):
        fwd = trace(store, subject, FORWARD, params, attribution_root=root)
        outgoing, records["outgoing"] = _summarise(fwd, top), fwd.record
    return Exposure(subject.strip(), hops, incoming, outgoing, records)


def _summarise(result: Trace, top: int) -> dict[str, Any]:
    nodes = {(n.txid, n.vout): n for n in result.nodes}
    forward = result.direction == FORWARD
    # money-flow edges, indexed for walking from an endpoint back to the subject
    toward: dict[tuple[str, int], list[tuple[int, tuple[str, int]]]] = defaultdict(list)
    fee_src: dict[str, list[tuple[int, tuple[str, int]]]] = defaultdict(list)
    for edge in result.edges:
        src = (edge.from_txid, edge.from_vout)
        if edge.to_vout is None:
            fee_src[edge.txid].append((edge.amount, src))
        elif forward:
            toward[(edge.txid, edge.to_vout)].append((edge.amount, src))
        else:
            toward[src].append((edge.amount, (edge.txid, edge.to_vout)))

    def walk(key: tuple[str, int]) -> list[tuple[str, int]]:
        path = [key]
        while key in nodes and not nodes[key].seed and toward.get(key):
            key = max(toward[key], key=lambda s: (s[0], s[1]))[1]
            path.append(key)
        return path[::-1]  # from the subject's output outwards

    def hop_and_path(e: Endpoint) -> tuple[int, list[tuple[str, int]]]:
        if e.vout is None:  # a fee: one hop past the output that paid it
            srcs = fee_src.get(e.txid) or []
            if not srcs:
                return 1, []
            src = max(srcs)[1]
            return nodes[src].hop + 1 if src in nodes else 1, walk(src)
        key = (e.txid, e.vout)
        return (nodes[key].hop if key in nodes else 0), walk(key)

    counted = [e for e in result.endpoints
               if not (forward and e.category == "unspent" and e.vout is not None
                       and (e.txid, e.vout) in nodes and nodes[(e.txid, e.vout)].seed)]
    total = sum(e.amount for e in counted)
    groups: dict[str, dict[str, Any]] = {}
    for e in counted:
        hop, path = hop_and_path(e)
        g = groups.setdefault(e.category, {
            "kind": "chain" if e.category in CHAIN_CATEGORIES else "attribution",
            "amount_sat": 0, "direct_sat": 0, "indirect_sat": 0, "endpoints": []})
        g["amount_sat"] += e.amount
        g["direct_sat" if hop <= 1 else "indirect_sat"] += e.amount
        g["endpoints"].append({
            "txid": e.txid, "vout": e.vout, "address": e.address, "label": e.label,
            "via": e.via, "amount_sat": e.amount, "hop": hop, "direct": hop <= 1,
            "path": [{"txid": t, "vout": v,
                      "address": nodes[(t, v)].address if (t, v) in nodes else None,
                      "hop": nodes[(t, v)].hop if (t, v) in nodes else None}
                     for t, v in path],
        })
    for g in groups.values():
        for key in ("amount", "direct", "indirect"):
            g[f"{key}_share"] = g[f"{key}_sat"] / total if total else 0.0
        eps = sorted(g["endpoints"], key=lambda x: (-x["amount_sat"], x["txid"], x["vout"] or 0))
        g["endpoint_count"] = len(eps)
        g["endpoints"] = eps[:top]
    order = sorted(groups, key=lambda c: (groups[c]["kind"] != "attribution",
                                          -groups[c]["amount_sat"], c))
    return {
        "direction": "in" if not forward else "out",
        "total_sat": total,
        "absorbed_sat": result.absorbed,
        "categories": {c: groups[c] for c in order},
    }
