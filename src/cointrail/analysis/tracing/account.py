"""Tracing over accounts (Ethereum): poison, haircut and FIFO over the ``transfers`` table,
one asset at a time (ether, or one token contract).

An account pools what it receives, so the walk keeps, per account, a *ledger* of lots: every
incoming transfer (in chain order, ``transfer_id``) adds a lot; every outgoing transfer
consumes lots — **fifo** the oldest first, **haircut** every lot in proportion to what is left
of it (largest remainder), **poison** as haircut for the bookkeeping, but any taint in the
account taints the whole outgoing amount. Where an account spends more than its lots hold (ether
from the genesis allocation, a balance from before the first transfer), an *opening* lot covers
the difference: untainted forward, an ``origin`` endpoint backward.

Forward, taint rides on the lots (FIFO keeps exact spans inside each lot, haircut an amount);
an outgoing transfer carries the taint of the lot parts it consumed to the recipient's ledger.
Backward, the amount asked of an outgoing transfer is traced to the lot parts that paid it, i.e.
to the incoming transfers, and on to their senders. The walk repeats until nothing changes
(accounts can pay each other in cycles); ``--hops`` bounds the number of transfers from the
start. Gas is an outgoing transfer too: taint paid as fee is an endpoint (``fee``).

Results use the UTXO `Trace` shape: a node is a tainted transfer (``txid`` its transaction,
``vout`` its ``transfer_id`` in this store), an edge is a tainted outgoing transfer, linked to
the transfer that first brought taint into the paying account. Endpoints: ``unspent`` (still
held), ``fee``, ``hop_limit``, ``min_value``, a stop category (``exchange``, ``sanctioned``
...), and backward ``origin`` (balance before the first transfer) and ``coinbase`` (newly
created: block rewards, withdrawals, token mints — a token transfer from the zero address).
For haircut and FIFO the endpoints sum to the seed amount.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from cointrail.analysis.tracing.models import Spans, TaintModel, largest_remainder, span_total
from cointrail.analysis.tracing.result import Endpoint, Trace, TraceEdge, TraceNode
from cointrail.analysis.tracing.stops import Stop, StopList, load_stops
from cointrail.errors import InputError, NotFoundError
from cointrail.store.duck import ChainStore

_TX = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
FEE_KIND, REWARD_KINDS = 3, (4, 5)
OPENING = -1  # lot id of the balance from before the first transfer


@dataclass(frozen=True, slots=True)
class _Row:
    transfer_id: int
    tx_id: int | None
    height: int
    kind: int
    src: int | None
    dst: int | None
    amount: int


@dataclass(slots=True)
class _Lot:
    lot_id: int  # transfer_id of the incoming transfer, or OPENING
    amount: int
    used: int = 0  # consumed from the front
    taint: int = 0  # haircut/poison: tainted amount left; fifo: spans (below)
    spans: Spans = ()


@dataclass(frozen=True, slots=True)
class _Piece:
    lot_id: int
    start: int  # offset in the lot
    length: int


@dataclass
class _State:
    taint: dict[int, int] = field(default_factory=dict)  # transfer_id -> tainted amount
    spans: dict[int, Spans] = field(default_factory=dict)  # fifo: transfer_id -> spans
    hop: dict[int, int] = field(default_factory=dict)  # transfer_id -> hop
    entry: dict[int, int] = field(default_factory=dict)  # addr_id -> first tainted transfer


def parse_account_start(store: ChainStore, text: str) -> tuple[str, str, int]:
    """(kind, canonical text, asset_id) of START: ``0xADDRESS`` or a tx hash, optionally
    followed by ``@ASSET`` (a token contract or its symbol; default: ether, or the one asset a
    transaction moved)."""
    from cointrail.chain.account.address import parse_eth_address

    body, _, asset = text.strip().partition("@")
    if _TX.match(body):
        kind, canonical = "tx", "0x" + body.lower().removeprefix("0x")
    else:
        kind, canonical = "address", parse_eth_address(body)
    return kind, canonical, _asset_id(store, asset, kind, canonical)


def _asset_id(store: ChainStore, asset: str, kind: str, canonical: str) -> int:
    if asset:
        rows = store.query("SELECT asset_id FROM assets WHERE lower(symbol) = lower(?)"
                           " OR contract = ?", [asset, _hex_or_empty(asset)])
        if len(rows) != 1:
            raise InputError(f"asset {asset!r} is {'ambiguous' if rows else 'unknown'} in the "
                             f"{store.spec.key} store; name a token contract (0x…)")
        return int(rows[0][0])
    if kind == "tx":
        assets = store.query(
            "SELECT DISTINCT t.asset_id FROM transfers t JOIN txs x USING (tx_id)"
            " WHERE x.txid = ? AND t.kind <> ?", [bytes.fromhex(canonical[2:])[::-1], FEE_KIND])
        if len(assets) == 1:
            return int(assets[0][0])
    return 0


def _hex_or_empty(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        return b""


class _Ledgers:
    """The transfers of one asset touching a set of accounts, read once per new account."""

    def __init__(self, store: ChainStore, asset_id: int) -> None:
        self.store = store
        self.asset_id = asset_id
        self.rows: dict[int, list[_Row]] = {}

    def load(self, addr_ids: set[int]) -> None:
        new = sorted(addr_ids - set(self.rows))
        if not new:
            return
        self.store.con.register("_acct", pa.table({"a": pa.array(new, pa.int64())}))
        try:
            got = self.store.query(
                "SELECT transfer_id, tx_id, height, kind, from_addr_id, to_addr_id,"
                " (CASE WHEN amount_exact IS NULL THEN amount::VARCHAR ELSE amount_exact END)"
                " FROM transfers WHERE asset_id = ? AND (from_addr_id IN (SELECT a FROM _acct)"
                " OR to_addr_id IN (SELECT a FROM _acct)) ORDER BY transfer_id",
                [self.asset_id])
        finally:
            self.store.con.unregister("_acct")
        for a in new:
            self.rows[a] = []
        for t, tx, h, k, s, d, amt in got:
            row = _Row(int(t), None if tx is None else int(tx), int(h), int(k),
                       None if s is None else int(s), None if d is None else int(d), int(amt))
            for who in {row.src, row.dst}:
                if who is not None and who in self.rows and row.src != row.dst:
                    self.rows[who].append(row)


def _consume(model: TaintModel, lots: list[_Lot], amount: int) -> list[_Piece]:
    """Take `amount` from the lots (fifo: oldest first; else in proportion to what is left);
    an opening lot at the front covers any shortfall."""
    left = sum(lot.amount - lot.used for lot in lots)
    if amount > left:
        lots.insert(0, _Lot(OPENING, amount - left))
    live = [lot for lot in lots if lot.amount > lot.used]
    if model is TaintModel.FIFO:
        takes, need = [], amount
        for lot in live:
            take = min(need, lot.amount - lot.used)
            takes.append(take)
            need -= take
        takes += [0] * (len(live) - len(takes))
    else:
        takes = largest_remainder(amount, [lot.amount - lot.used for lot in live])
    pieces = []
    for lot, take in zip(live, takes, strict=True):
        if take:
            pieces.append(_Piece(lot.lot_id, lot.used, take))
    return pieces


def _clip(spans: Spans, start: int, end: int, shift: int) -> list[tuple[int, int]]:
    return [(max(a, start) - start + shift, min(b, end) - start + shift)
            for a, b in spans if b > start and a < end]


class _Walk:
    def __init__(self, store: ChainStore, asset_id: int, model: TaintModel, hops: int,
                 min_value: int, stops: StopList) -> None:
        self.ledgers = _Ledgers(store, asset_id)
        self.model, self.hops, self.min_value, self.stops = model, hops, min_value, stops
        self.state = _State()
        self.ends: dict[tuple[str, int, int | None], int] = defaultdict(int)
        self.stop_at: dict[int, Stop] = {}
        self.seed_rows: list[_Row] = []
        self.halted: set[int] = set()  # tainted transfers not followed (fee, min_value)
        self.parent: dict[int, int] = {}  # backward: lot transfer -> outgoing it paid

    # -- forward ------------------------------------------------------------------------------

    def forward(self, seeds: list[_Row]) -> None:
        st = self.state
        self.seed_rows = list(seeds)
        for row in seeds:
            st.taint[row.transfer_id] = row.amount
            st.spans[row.transfer_id] = ((0, row.amount),)
            st.hop[row.transfer_id] = 0
        changed = True
        while changed:
            changed = False
            rows = [r for a in self.ledgers.rows.values() for r in a] + self.seed_rows
            holders = {r.dst for r in rows if r.dst is not None and st.taint.get(r.transfer_id)
                       and r.transfer_id not in self.halted}
            self.stop_at |= self.stops.lookup(holders - set(self.stop_at))
            self.ledgers.load(holders)
            for account in sorted(holders):
                changed |= self._simulate_forward(account)
        self._forward_endpoints()

    def _simulate_forward(self, account: int) -> bool:
        st, model = self.state, self.model
        if account in self.stop_at:
            return False
        changed = False
        order: list[_Lot] = []
        seen_hop: int | None = None  # poison: the account is tainted from its first taint on
        for row in self.ledgers.rows[account]:
            if row.dst == account:
                taint = 0 if row.transfer_id in self.halted else st.taint.get(row.transfer_id, 0)
                order.append(_Lot(row.transfer_id, row.amount, taint=taint,
                                  spans=st.spans.get(row.transfer_id, ()) if taint else ()))
                if taint:
                    st.entry.setdefault(account, row.transfer_id)
                    hop = st.hop[row.transfer_id]
                    seen_hop = hop if seen_hop is None else min(seen_hop, hop)
                continue
            pieces = _consume(model, order, row.amount)
            lots = {lot.lot_id: lot for lot in order}
            hops = [st.hop[p.lot_id] for p in pieces if lots[p.lot_id].taint
                    or lots[p.lot_id].spans]
            out_taint, spans, at = 0, [], 0
            for p in pieces:
                lot = lots[p.lot_id]
                if model is TaintModel.FIFO:
                    spans += _clip(lot.spans, p.start, p.start + p.length, at)
                elif lot.taint:
                    remaining = lot.amount - lot.used
                    share = (lot.taint if p.length == remaining
                             else lot.taint * p.length // remaining)
                    lot.taint -= share
                    out_taint += share
                lot.used += p.length
                at += p.length
            out_spans: Spans = ()
            if model is TaintModel.FIFO:
                out_spans = tuple(spans)
                out_taint = span_total(out_spans)
            elif model is TaintModel.POISON:
                out_taint = row.amount if seen_hop is not None else 0
                hops = [] if seen_hop is None else [seen_hop]
            if not out_taint or not hops or min(hops) + 1 > self.hops:
                continue  # untainted, or beyond the hop bound: the taint stays (hop_limit)
            if st.taint.get(row.transfer_id, 0) != out_taint:
                st.taint[row.transfer_id] = out_taint
                st.spans[row.transfer_id] = out_spans
                st.hop[row.transfer_id] = min(hops) + 1
                if row.kind == FEE_KIND or row.dst is None or out_taint < self.min_value:
                    self.halted.add(row.transfer_id)
                changed = True
        return changed

    def _forward_endpoints(self) -> None:
        """Where the taint ended: per account what it kept, plus fees, stops, limits."""
        st = self.state
        for account, rows in self.ledgers.rows.items():
            incoming = sum(st.taint.get(r.transfer_id, 0) for r in rows if r.dst == account
                           and r.transfer_id not in self.halted)
            if not incoming:
                continue
            stop = self.stop_at.get(account)
            if stop is not None:
                self.ends[(stop.category, account, None)] += incoming
                continue
            outgoing = 0
            for r in rows:
                t = st.taint.get(r.transfer_id, 0) if r.src == account else 0
                outgoing += t
                if t and r.transfer_id in self.halted:
                    reason = "fee" if r.kind == FEE_KIND or r.dst is None else "min_value"
                    self.ends[(reason, account, r.transfer_id)] += t
            kept = incoming - outgoing
            if kept > 0:
                hop = min(st.hop[r.transfer_id] for r in rows if r.dst == account
                          and st.taint.get(r.transfer_id))
                reason = "hop_limit" if hop >= self.hops and self._spends_later(account) \
                    else "unspent"
                self.ends[(reason, account, None)] += kept

    def _spends_later(self, account: int) -> bool:
        entry = self.state.entry.get(account, -1)
        return any(r.src == account and r.transfer_id > entry
                   for r in self.ledgers.rows[account])


def _seed_rows(store: ChainStore, kind: str, text: str, asset_id: int,
               direction: str) -> list[_Row]:
    if kind == "tx":
        rows = store.query(
            "SELECT t.transfer_id, t.tx_id, t.height, t.kind, t.from_addr_id, t.to_addr_id,"
            " coalesce(t.amount_exact, t.amount::VARCHAR) FROM transfers t JOIN txs x USING"
            " (tx_id) WHERE x.txid = ? AND t.asset_id = ? AND t.kind <> ?"
            " ORDER BY t.transfer_id", [bytes.fromhex(text[2:])[::-1], asset_id, FEE_KIND])
        if not rows:
            raise NotFoundError(f"no transfer of asset {asset_id} in transaction {text} in the "
                                f"{store.spec.key} store")
    else:
        found = store.query("SELECT addr_id FROM addresses WHERE text = ?", [text])
        if not found:
            raise NotFoundError(f"{text} has never appeared on the chain held by the "
                                f"{store.spec.key} store")
        column = "to_addr_id" if direction == "forward" else "from_addr_id"
        rows = store.query(
            "SELECT transfer_id, tx_id, height, kind, from_addr_id, to_addr_id,"
            " coalesce(amount_exact, amount::VARCHAR) FROM transfers"
            f" WHERE {column} = ? AND asset_id = ? AND from_addr_id IS DISTINCT FROM to_addr_id"
            " ORDER BY transfer_id", [int(found[0][0]), asset_id])
        if not rows:
            way = "incoming" if direction == "forward" else "outgoing"
            raise NotFoundError(f"{text} has no {way} transfer of asset {asset_id}")
    return [_Row(int(t), None if tx is None else int(tx), int(h), int(k),
                 None if s is None else int(s), None if d is None else int(d), int(a))
            for t, tx, h, k, s, d, a in rows]


def trace_account(
    store: ChainStore,
    start: str,
    direction: str,
    model: TaintModel,
    hops: int,
    min_value: int = 0,
    *,
    stop_categories: frozenset[str] | None = None,
    stop_sanctioned: bool = True,
    attribution_root: Path | str | None = None,
    record: dict[str, Any] | None = None,
) -> Trace:
    """Trace one asset forward (where it went) or backward (where it came from)."""
    from cointrail.analysis.tracing.stops import SERVICE_CATEGORIES

    kind, text, asset_id = parse_account_start(store, start)
    seeds = _seed_rows(store, kind, text, asset_id, direction)
    root = None if attribution_root is None else Path(attribution_root)
    stops = load_stops(store, SERVICE_CATEGORIES if stop_categories is None else stop_categories,
                       sanctioned=stop_sanctioned, clusters=False, attribution_root=root)
    walk = _Walk(store, asset_id, model, hops, min_value, stops)
    if direction == "forward":
        walk.forward(seeds)
    else:
        _backward(walk, seeds)
    return _result(store, walk, seeds, direction, model, text, asset_id,
                   {**(record or {}), **stops.record})


# -- backward ---------------------------------------------------------------------------------

def _backward(walk: _Walk, seeds: list[_Row]) -> None:
    """Demands on outgoing transfers are traced to the lot parts (incoming transfers) that
    paid them, and on to those transfers' senders."""
    st, model = walk.state, walk.model
    for row in seeds:
        st.taint[row.transfer_id] = row.amount
        st.spans[row.transfer_id] = ((0, row.amount),)
        st.hop[row.transfer_id] = 0
    rows_by_id = {r.transfer_id: r for r in seeds}
    zero = walk.ledgers.store.query("SELECT addr_id FROM addresses WHERE text = ?",
                                    ["0x" + "0" * 40])
    minter = int(zero[0][0]) if zero and walk.ledgers.asset_id != 0 else None
    changed = True
    while changed:
        changed = False
        payers = {src for t in st.taint if t in rows_by_id
                  and (src := rows_by_id[t].src) is not None}
        walk.stop_at |= walk.stops.lookup(payers - {r.src for r in seeds if r.src is not None})
        walk.ledgers.load(payers)
        for account in sorted(payers):
            if account in walk.stop_at:
                continue
            asked: dict[int, int] = defaultdict(int)  # incoming transfer -> amount asked
            hops: dict[int, int] = {}
            lots: list[_Lot] = []
            for row in walk.ledgers.rows[account]:
                rows_by_id.setdefault(row.transfer_id, row)
                if row.dst == account:
                    lots.append(_Lot(row.transfer_id, row.amount))
                    continue
                pieces = _consume(model, lots, row.amount)
                demand = st.taint.get(row.transfer_id, 0)
                hop = st.hop.get(row.transfer_id)
                if not demand or hop is None:
                    for p in pieces:
                        _use(lots, p)
                    continue
                if model is TaintModel.POISON:
                    shares = [p.length for p in pieces]
                elif model is TaintModel.HAIRCUT:
                    shares = largest_remainder(demand, [p.length for p in pieces])
                else:
                    shares, at = [], 0
                    for p in pieces:
                        shares.append(span_total(tuple(_clip(
                            st.spans[row.transfer_id], at, at + p.length, 0))))
                        at += p.length
                for p, share in zip(pieces, shares, strict=True):
                    _use(lots, p)
                    if share:
                        asked[p.lot_id] += share
                        hops[p.lot_id] = min(hops.get(p.lot_id, hop + 1), hop + 1)
                        walk.parent.setdefault(p.lot_id, row.transfer_id)
            for lot_id, amount in asked.items():
                if lot_id == OPENING:
                    key = ("origin", account, None)
                    if walk.ends.get(key) != amount:
                        walk.ends[key] = amount
                    continue
                lot_row = rows_by_id[lot_id]
                if lot_row.kind in REWARD_KINDS or lot_row.src is None or (
                        lot_row.src == minter):  # created: reward, withdrawal, token mint
                    walk.ends[("coinbase", account, lot_id)] = amount
                    continue
                if hops[lot_id] > walk.hops or amount < walk.min_value:
                    reason = "hop_limit" if hops[lot_id] > walk.hops else "min_value"
                    walk.ends[(reason, account, lot_id)] = amount
                    continue
                if st.taint.get(lot_id) != amount:
                    st.taint[lot_id] = amount
                    st.spans[lot_id] = ((0, amount),)
                    st.hop[lot_id] = hops[lot_id]
                    changed = True
    # what the walk stopped at: stops (by the payer's tag), transfers below min_value
    for tid, amount in list(st.taint.items()):
        row = rows_by_id[tid]
        if row.src in walk.stop_at:
            stop = walk.stop_at[row.src]
            walk.ends[(stop.category, row.src, tid)] = amount


def _use(lots: list[_Lot], piece: _Piece) -> None:
    for lot in lots:
        if lot.lot_id == piece.lot_id:
            lot.used += piece.length
            return


# -- result -----------------------------------------------------------------------------------

def _result(store: ChainStore, walk: _Walk, seeds: Sequence[_Row], direction: str,
            model: TaintModel, start: str, asset_id: int, record: dict[str, Any]) -> Trace:
    st = walk.state
    rows = {r.transfer_id: r for a in walk.ledgers.rows.values() for r in a}
    rows |= {r.transfer_id: r for r in seeds}
    tx_ids = {r.tx_id for r in rows.values() if r.tx_id is not None}
    addr_ids = {a for r in rows.values() for a in (r.src, r.dst) if a is not None}
    addr_ids |= {a for (_, a, _) in walk.ends}
    txids = _lookup(store, "SELECT tx_id, txid FROM txs WHERE tx_id IN", tx_ids)
    texts = _lookup(store, "SELECT addr_id, text FROM addresses WHERE addr_id IN", addr_ids)

    def txid(row: _Row) -> str:
        return "" if row.tx_id is None else "0x" + bytes(txids[row.tx_id])[::-1].hex()

    def text(addr_id: int | None) -> str | None:
        return None if addr_id is None else str(texts.get(addr_id))

    seed_ids = {r.transfer_id for r in seeds}
    tainted = sorted((t for t, a in st.taint.items() if a), key=lambda t: (st.hop[t], t))
    nodes = tuple(
        TraceNode(txid(rows[t]), t, text(rows[t].dst if direction == "forward" else rows[t].src),
                  rows[t].amount, st.taint[t], rows[t].height, st.hop[t], t in seed_ids)
        for t in tainted)
    edges = []
    for t in tainted:
        row = rows[t]
        if direction == "forward":
            if t in seed_ids or row.src is None or row.src not in st.entry:
                continue
            came = rows[st.entry[row.src]]
            edges.append(TraceEdge(txid(came), came.transfer_id, txid(row), t, st.taint[t],
                                   row.height))
        elif t in walk.parent:
            paid = rows[walk.parent[t]]
            edges.append(TraceEdge(txid(row), t, txid(paid), paid.transfer_id, st.taint[t],
                                   paid.height))
    ends = []
    for (category, account, tid), amount in sorted(walk.ends.items(),
                                                   key=lambda e: (e[0][0], e[0][1], e[0][2] or 0)):
        if not amount:
            continue
        at = rows.get(tid) if tid is not None else None
        label = walk.stop_at[account].label if account in walk.stop_at else None
        ends.append(Endpoint(category, txid(at) if at else "", tid, text(account), amount,
                             at.height if at else -1, label))
    seed_amount = sum(st.taint[r.transfer_id] for r in seeds)
    assets = store.query("SELECT contract, symbol, decimals FROM assets WHERE asset_id = ?",
                         [asset_id])
    contract, symbol, decimals = assets[0] if assets else (None, None, None)
    record = {**record, "asset": {
        "asset_id": asset_id, "contract": None if contract is None else "0x" + bytes(
            contract).hex(), "symbol": symbol, "decimals": decimals}}
    if direction == "forward":
        record["swaps"] = _swaps(store, [rows[t] for t in tainted if t not in walk.halted],
                                 st.taint, asset_id, txid)
    return Trace(direction, model.value, start, seed_amount, nodes, tuple(edges), tuple(ends),
                 (), 0, record)


def _swaps(store: ChainStore, tainted: Sequence[_Row], taint: dict[int, int], asset_id: int,
           txid: Any) -> list[dict[str, Any]]:
    """Tainted transfers into a contract that paid the sender another asset in the same
    transaction (a swap): where the trace continues in that asset (``TXID@TOKEN``)."""
    out: list[dict[str, Any]] = []
    for row in tainted:
        if row.tx_id is None or row.src is None or row.dst is None:
            continue
        back = store.query(
            "SELECT t.asset_id, a.contract, a.symbol, coalesce(t.amount_exact,"
            " t.amount::VARCHAR) FROM transfers t JOIN assets a USING (asset_id)"
            " WHERE t.tx_id = ? AND t.from_addr_id = ? AND t.to_addr_id = ? AND t.asset_id <> ?"
            " AND t.kind <> ?", [row.tx_id, row.dst, row.src, asset_id, FEE_KIND])
        for other, contract, symbol, amount in back:
            token = "ether" if contract is None else "0x" + bytes(contract).hex()
            out.append({
                "txid": txid(row), "transfer_id": row.transfer_id,
                "amount_in": row.amount, "tainted_in": taint[row.transfer_id],
                "asset_out": {"asset_id": int(other), "contract": token, "symbol": symbol},
                "amount_out": int(amount),
                "continue_with": f"{txid(row)}@{token if contract is not None else 'ETH'}",
            })
    return out


def _lookup(store: ChainStore, sql: str, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    store.con.register("_ids", pa.table({"i": pa.array(sorted(ids), pa.int64())}))
    try:
        return {int(k): v for k, v in store.query(f"{sql} (SELECT i FROM _ids)")}
    finally:
        store.con.unregister("_ids")


# -- paths ------------------------------------------------------------------------------------

def find_account_paths(store: ChainStore, source: str, target: str, *, hops: int = 6,
                       k: int = 3) -> Any:
    """The `k` shortest transfer paths between two accounts (``0xADDR[@ASSET]``; the asset of
    `source` is used, default ether), for ``cointrail path`` on account chains.

    An edge U → V sums the transfers of the asset from U to V (fees excluded); paths are
    searched like the UTXO flow paths (`paths._yen`: fewest hops, then larger bottleneck)."""
    from itertools import pairwise

    from cointrail import __version__
    from cointrail.analysis.tracing.paths import EdgeTx, FlowPath, PathEdge, Paths, _yen

    if hops < 1 or k < 1:
        raise InputError(f"--hops {hops} / --k {k}: give 1 or more")
    kind_a, a, asset_id = parse_account_start(store, source)
    kind_b, b, _ = parse_account_start(store, target.partition("@")[0])
    if "tx" in (kind_a, kind_b):
        raise InputError("path runs between addresses; give two 0x… addresses")
    ids = dict(store.query("SELECT text, addr_id FROM addresses WHERE text IN (?, ?)", [a, b]))
    for text in (a, b):
        if text not in ids:
            raise NotFoundError(f"{text} has never appeared on the chain held by the "
                                f"{store.spec.key} store")
    src, dst = int(ids[a]), int(ids[b])
    if src == dst:
        raise InputError(f"{source} and {target} are the same address")
    edges: dict[tuple[int, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    heights: dict[int, tuple[int, bytes]] = {}
    front, seen = {src}, {src}
    for _ in range(hops):
        store.con.register("_front", pa.table({"a": pa.array(sorted(front), pa.int64())}))
        try:
            rows = store.query(
                "SELECT t.from_addr_id, t.to_addr_id, t.tx_id, t.height, x.txid,"
                " coalesce(t.amount_exact, t.amount::VARCHAR) FROM transfers t"
                " JOIN txs x USING (tx_id) WHERE t.asset_id = ? AND t.kind <> ?"
                " AND t.from_addr_id IN (SELECT a FROM _front) AND t.to_addr_id IS NOT NULL"
                " AND t.to_addr_id <> t.from_addr_id", [asset_id, FEE_KIND])
        finally:
            store.con.unregister("_front")
        for u, v, tx, h, txid, amt in rows:
            edges[(int(u), int(v))][int(tx)] += int(amt)
            heights[int(tx)] = (int(h), bytes(txid))
        front = {int(v) for _, v, *_ in rows} - seen
        seen |= front
        if not front:
            break
    adj: dict[int, list[int]] = defaultdict(list)
    amount: dict[tuple[int, int], int] = {}
    for (u, v), per_tx in sorted(edges.items()):
        adj[u].append(v)
        amount[(u, v)] = sum(per_tx.values())
    found = _yen(adj, amount, src, dst, hops, k)
    texts = _lookup(store, "SELECT addr_id, text FROM addresses WHERE addr_id IN",
                    {n for p in found for n in p})
    paths = []
    for p in found:
        steps = []
        for u, v in pairwise(p):
            per_tx = edges[(u, v)]
            items = sorted((heights[t][0], "0x" + heights[t][1][::-1].hex(), amt)
                           for t, amt in per_tx.items())
            steps.append(PathEdge(str(texts[u]), str(texts[v]), sum(per_tx.values()),
                                  tuple(EdgeTx(txid, h, amt) for h, txid, amt in items)))
        paths.append(FlowPath(tuple(str(texts[n]) for n in p), tuple(steps)))
    tip = store.tip()
    record = {
        "chain": store.spec.chain, "network": store.spec.network,
        "tip_height": None if tip is None else tip.height,
        "tip_hash": None if tip is None else tip.hash[::-1].hex(),
        "asset_id": asset_id, "edge_amount": "sum of the asset's transfers from U to V",
        "parameters": {"hops": hops, "k": k, "level": "address"},
        "cointrail_version": __version__,
    }
    return Paths(a, b, "address", hops, k, tuple(paths), len(edges), record)
