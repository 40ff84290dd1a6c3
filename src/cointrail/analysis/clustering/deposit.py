"""Deposit-address reuse on Ethereum: users who pay the same exchange deposit address are one
entity.

Heuristic (F. Victor, "Address clustering heuristics for Ethereum", Financial Cryptography
and Data Security 2020, §4.1): an exchange gives each customer a deposit address and sweeps
what arrives there to its hot wallet. A *deposit address* D is recognised by its forwards: D
receives an amount of an asset and, within `max_blocks`, sends that amount on — ether less at
most `max_fee_wei` for the gas of the sweep (Victor: a_max = 0.01 ETH, t_max = 3,200 blocks),
tokens exactly — to a hot wallet H: one the caller names (exchange tags; Victor starts from
labelled exchange addresses too), or, when none is named, any address receiving such forwards
from at least `min_deposit_addresses` addresses. Every
address that sent to the same deposit address is then clustered together; the hot wallet's own
payments to D (gas top-ups) and zero-value transfers are not deposits.

Known false positives (Victor §6; and seen in practice):

- a deposit address paid by someone else than its owner (a friend, a customer of the owner,
  a payout of another service) links unrelated people — the scripted test measures one such
  gift;
- services that pay many users' deposit addresses (bridges, payroll, other exchanges'
  withdrawals) link those users to the service and to each other through it: senders that
  paid several deposit addresses of different users are listed as ``hubs`` and not linked
  (`max_deposit_addresses_per_sender`);
- address-poisoning spam (zero-value or dust token transfers from look-alike addresses) —
  zero amounts are dropped, dust is not (no threshold is universal);
- an exchange that gives one deposit address to several customers (rare on Ethereum, usual
  with memo/tag chains) merges those customers.

Amounts are integers; every link keeps its evidence (the deposit address, the transactions).
A link is dated by the transaction that completed its evidence (the later of the two deposits
and the deposit address's first sweep), so `cointrail cluster` can store it in chain order
(engine.py, account branch) and `--as-of` replays only what was known by then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from cointrail.analysis.clustering.unionfind import UnionFind
from cointrail.store.duck import ChainStore

HEURISTIC = "deposit_reuse"
VERSION = 1
FEE_KIND = 3
_MAX_HEIGHT = 2**31 - 1


@dataclass(frozen=True, slots=True)
class DepositParams:
    max_blocks: int = 3200
    max_fee_wei: int = 10**16
    min_deposit_addresses: int = 2
    max_deposit_addresses_per_sender: int = 10  # above: a service paying many (a hub)

    def to_dict(self) -> dict[str, int]:
        return {"max_blocks": self.max_blocks, "max_fee_wei": self.max_fee_wei,
                "min_deposit_addresses": self.min_deposit_addresses,
                "max_deposit_addresses_per_sender": self.max_deposit_addresses_per_sender}


@dataclass(frozen=True, slots=True)
class DepositAddress:
    """A recognised deposit address, its hot wallet, its senders and the forwards matched."""

    address: str
    hot_wallet: str
    senders: tuple[str, ...]
    forwards: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """One transaction of a link's evidence: its height and tx_id (store ids)."""

    height: int
    tx_id: int


@dataclass(frozen=True, slots=True)
class DepositLink:
    """`a` and `b` both paid `deposit_address`, which forwards to `hot_wallet`.

    `deposit_a`/`deposit_b`: each one's first payment to it; `sweep`: its first forward to the
    hot wallet; `completed_by`: the latest of the three (when the link became known)."""

    a: str
    b: str
    deposit_address: str
    hot_wallet: str = ""
    deposit_a: Evidence | None = None
    deposit_b: Evidence | None = None
    sweep: Evidence | None = None

    @property
    def completed_by(self) -> Evidence | None:
        known = [e for e in (self.deposit_a, self.deposit_b, self.sweep) if e is not None]
        return max(known, key=lambda e: (e.height, e.tx_id)) if known else None


@dataclass
class DepositClustering:
    """The result: deposit addresses, links, clusters (address → cluster representative)."""

    params: DepositParams
    deposits: list[DepositAddress] = field(default_factory=list)
    links: list[DepositLink] = field(default_factory=list)
    clusters: list[frozenset[str]] = field(default_factory=list)
    hubs: list[str] = field(default_factory=list)

    def cluster_of(self, address: str) -> frozenset[str] | None:
        for c in self.clusters:
            if address in c:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "heuristic": HEURISTIC, "version": VERSION,
            "parameters": self.params.to_dict(),
            "deposit_addresses": [
                {"address": d.address, "hot_wallet": d.hot_wallet, "senders": list(d.senders),
                 "forwards": d.forwards} for d in self.deposits],
            "links": [{"a": x.a, "b": x.b, "deposit_address": x.deposit_address}
                      for x in self.links],
            "clusters": [sorted(c) for c in self.clusters],
            "hubs": self.hubs,
        }


def _forwards(
    store: ChainStore, params: DepositParams, up_to: int | None
) -> tuple[list[tuple[int, int, int]], dict[tuple[int, int], Evidence]]:
    """(deposit addr_id, hot addr_id, matched forwards) for every candidate pair, and each
    pair's first matched forward.

    A forward is an outgoing transfer of D that passes on what D received (same asset) since
    its previous outgoing transfer and within `max_blocks` — a sweep may gather several
    deposits — less at most `max_fee_wei` for ether, exactly for tokens. What the receiver
    itself paid D (gas top-ups by the exchange) is not counted as received. Plain Python over
    the transfers in chain order (one pass); fine up to tens of millions of transfers."""
    rows = store.query(
        "SELECT height, tx_id, from_addr_id, to_addr_id, asset_id, amount::VARCHAR"
        " FROM transfers WHERE kind <> ? AND amount > 0 AND from_addr_id IS NOT NULL"
        " AND to_addr_id IS NOT NULL AND from_addr_id <> to_addr_id AND height <= ?"
        " ORDER BY transfer_id",
        [FEE_KIND, _MAX_HEIGHT if up_to is None else up_to])
    pending: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    found: dict[tuple[int, int], int] = defaultdict(int)
    first: dict[tuple[int, int], Evidence] = {}
    for height, tx_id, src, dst, asset, text in rows:
        amount = int(text)
        key = (int(src), int(asset))
        came = pending.pop(key, [])
        received = sum(a for h, who, a in came
                       if who != dst and height - h <= params.max_blocks)
        tolerance = params.max_fee_wei if asset == 0 else 0
        if came and tx_id is not None and 0 <= received - amount <= tolerance:
            found[(int(src), int(dst))] += 1
            first.setdefault((int(src), int(dst)), Evidence(int(height), int(tx_id)))
        pending[(int(dst), int(asset))].append((int(height), int(src), amount))
    return [(d, h, n) for (d, h), n in sorted(found.items())], first


def cluster_deposit_reuse(
    store: ChainStore,
    params: DepositParams | None = None,
    *,
    hot_wallets: Iterable[str] = (),
    up_to_height: int | None = None,
) -> DepositClustering:
    """Find deposit addresses and link the addresses that paid the same one, from the
    transfers up to `up_to_height` (default: all). Each deposit address's users are linked in
    the order of their first deposit, each to the previous one."""
    params = params or DepositParams()
    texts = {int(i): str(t) for i, t in store.query("SELECT addr_id, text FROM addresses")}
    ids = {t: i for i, t in texts.items()}
    named = {ids[h] for h in hot_wallets if h in ids}
    pairs, first_forward = _forwards(store, params, up_to_height)
    by_hot: dict[int, set[int]] = defaultdict(set)
    for deposit, hot, _ in pairs:
        by_hot[hot].add(deposit)
    # named hot wallets (exchange tags) are the hot wallets; without names, any address that
    # receives forwards from enough addresses is taken for one (contracts such as a swap
    # receive forwards too: naming the exchange is the reliable way, as in Victor 2020)
    hots = named if named else {h for h, ds in by_hot.items()
                                if len(ds) >= params.min_deposit_addresses}
    deposit_of: dict[int, tuple[int, int]] = {}
    for deposit, hot, n in pairs:
        if hot in hots and deposit not in hots:
            best = deposit_of.get(deposit)
            if best is None or n > best[1]:
                deposit_of[deposit] = (hot, n)
    senders, first_deposit = _senders(store, sorted(deposit_of), up_to_height)
    result = DepositClustering(params)
    per_sender: dict[int, set[int]] = defaultdict(set)
    for deposit, who in senders.items():
        for s in who:
            per_sender[s].add(deposit)
    hubs = {s for s, ds in per_sender.items()
            if len(ds) > params.max_deposit_addresses_per_sender}
    result.hubs = sorted(texts[h] for h in hubs)
    pairs_a: list[int] = []
    pairs_b: list[int] = []
    for deposit in sorted(deposit_of):
        hot, n = deposit_of[deposit]
        users = sorted((s for s in senders.get(deposit, ()) if s not in hots and s not in hubs
                        and s not in deposit_of),
                       key=lambda s: (first_deposit[(deposit, s)].tx_id, s))
        result.deposits.append(DepositAddress(texts[deposit], texts[hot],
                                              tuple(texts[u] for u in users), n))
        for a, b in pairwise(users):
            pairs_a.append(a)
            pairs_b.append(b)
            result.links.append(DepositLink(
                texts[a], texts[b], texts[deposit], texts[hot], first_deposit[(deposit, a)],
                first_deposit[(deposit, b)], first_forward.get((deposit, hot))))
    uf = UnionFind(max(texts, default=-1) + 1)
    uf.union_batch(pairs_a, pairs_b, record_merges=False)
    groups: dict[int, set[str]] = defaultdict(set)
    for link in result.links:
        for t in (link.a, link.b):
            groups[uf.find(ids[t])].add(t)
    result.clusters = sorted((frozenset(g) for g in groups.values()), key=sorted)
    return result


def _senders(
    store: ChainStore, deposits: Sequence[int], up_to: int | None
) -> tuple[dict[int, set[int]], dict[tuple[int, int], Evidence]]:
    """Who paid each deposit address, and each (deposit, sender)'s first payment."""
    if not deposits:
        return {}, {}
    import pyarrow as pa

    store.con.register("_deposits", pa.table({"d": pa.array(deposits, pa.int64())}))
    try:
        rows = store.query(
            "SELECT to_addr_id, from_addr_id, min(height), min(tx_id) FROM transfers"
            " WHERE kind <> ? AND amount > 0 AND from_addr_id IS NOT NULL"
            " AND tx_id IS NOT NULL AND height <= ?"
            " AND to_addr_id IN (SELECT d FROM _deposits) GROUP BY ALL",
            [FEE_KIND, _MAX_HEIGHT if up_to is None else up_to])
    finally:
        store.con.unregister("_deposits")
    out: dict[int, set[int]] = defaultdict(set)
    first: dict[tuple[int, int], Evidence] = {}
    for d, s, height, tx_id in rows:
        out[int(d)].add(int(s))
        first[(int(d), int(s))] = Evidence(int(height), int(tx_id))
    return out, first
