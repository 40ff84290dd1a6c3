"""FATF red-flag rules over a chain store (LEGAL.md section 4.2, the rows marked A).

Each rule is a frozen dataclass: a `name`, a `version` and its parameters as fields.
``rule.evaluate(store, subject)`` returns `RuleHit` records that carry the evidence (txids,
heights, amounts), the rule version and the parameters, so a hit can be re-checked by hand.
A subject is an address or a cluster (`resolve_subject`); the peel-chain rule also scans the
whole store (``subject=None``).

One indicator alone proves nothing (FATF): the hits are leads for an analyst, each with the
transactions that made it fire.

Rules (see each class for the exact definition):

- ``peel_chain``: >= k one-input-address, two-output transactions in a row where a small output
  peels off and the remainder is spent by the next one within a few blocks.
- ``pass_through``: value received from outside the subject and sent out again (>= x %)
  within N blocks (or seconds of block time).
- ``fan_in``: >= n distinct unrelated sources (different clusters when a clustering exists)
  pay the subject, then one transaction spends their coins together.
- ``dormancy_burst``: no activity for >= D blocks, then >= m transactions within W blocks.
- ``structuring``: >= m payments within a window, each in [T(1 - eps), T), in satoshi or in
  fiat at the block's UTC date from a user-supplied daily price table.
- ``mixer_exposure``: value received from (backward) or sent to (forward) addresses tagged as
  mixers, or through CoinJoin-labelled transactions, within N hops (a haircut trace).
"""

from __future__ import annotations

import csv
import hashlib
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from cointrail.errors import InputError, NotFoundError
from cointrail.store.duck import ChainStore

_CLUSTER = re.compile(r"^cluster:(\d+)$")
COIN = 100_000_000


# --- subjects and hits ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What a rule looks at: one address (``address``) or all members of a cluster
    (``cluster``), as store address ids."""

    kind: str
    text: str
    addr_ids: frozenset[int]


def resolve_subject(store: ChainStore, text: str) -> Subject:
    """An address or ``cluster:ID`` (a merged-away id is followed to its current cluster)."""
    from cointrail.chain.utxo.address import parse_address

    text = text.strip()
    if not text:
        raise InputError("the subject is empty; give an address or cluster:ID")
    if m := _CLUSTER.match(text):
        from cointrail.analysis.clustering.engine import cluster_view

        view = cluster_view(store)
        cid = int(m.group(1))
        current = view.of(cid)
        members = view.members(cid if current is None else current)
        if members.size == 0:
            raise NotFoundError(f"no cluster {cid} in the {store.spec.key} clustering")
        return Subject("cluster", text, frozenset(int(a) for a in members))
    parsed = parse_address(text, store.spec).text
    found = store.query("SELECT addr_id FROM addresses WHERE text = ?", [parsed])
    if not found:
        raise NotFoundError(f"{parsed} has never appeared on the {store.spec.key} chain")
    return Subject("address", parsed, frozenset({int(found[0][0])}))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One transaction behind a hit: its role in the pattern and the amount that matters."""

    txid: str
    height: int
    amount: int  # satoshi
    role: str
    fiat: str | None = None  # the amount in fiat (structuring in fiat), as a decimal string


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    version: int
    params: dict[str, Any]
    subject: str | None  # None for a whole-store scan
    evidence: tuple[Evidence, ...]
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "version": self.version, "params": self.params,
            "subject": self.subject, "explanation": self.explanation,
            "evidence": [
                {k: v for k, v in asdict(e).items() if v is not None or k != "fiat"}
                for e in self.evidence
            ],
        }


class Rule(Protocol):
    name: ClassVar[str]
    version: ClassVar[int]

    def params(self) -> dict[str, Any]: ...

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]: ...


def _params(rule: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(rule):  # type: ignore[arg-type]
        value = getattr(rule, f.name)
        if isinstance(value, PriceTable):
            value = value.describe()
        elif isinstance(value, frozenset):
            value = sorted(value)
        out[f.name] = value
    return out


def _need(subject: Subject | None, rule: str) -> Subject:
    if subject is None:
        raise InputError(f"the {rule} rule needs a subject (an address or cluster:ID)")
    return subject


def _hit(rule: Any, subject: Subject | None, evidence: Iterable[Evidence],
         explanation: str) -> RuleHit:
    return RuleHit(rule.name, rule.version, rule.params(),
                   None if subject is None else subject.text,
                   tuple(sorted(evidence, key=lambda e: (e.height, e.role, e.txid))), explanation)


# --- store reads (set-based: a handful of queries per rule and subject) -----------------------


def _with(store: ChainStore, name: str, table: pa.Table, sql: str,
          params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    store.con.register(name, table)
    try:
        return store.query(sql, params)
    finally:
        store.con.unregister(name)


def _ids_table(ids: Iterable[int], column: str = "addr_id") -> pa.Table:
    return pa.table({column: pa.array(sorted(set(ids)), pa.int64())})


def _hex(txid: Any) -> str:
    return bytes(txid)[::-1].hex()


@dataclass(frozen=True, slots=True)
class _Coin:
    tx_id: int
    n: int
    value: int
    addr_id: int
    height: int
    txid: str
    external: bool  # the paying transaction spends nothing of the subject
    spent_by: int | None


@dataclass(frozen=True, slots=True)
class _Tx:
    tx_id: int
    txid: str
    height: int
    time: int
    in_subject: int  # value of the subject's coins spent
    out_subject: int  # value paid to the subject
    out_total: int
    input_count: int


class _Activity:
    """The subject's coins and every transaction that pays or spends it."""

    def __init__(self, store: ChainStore, subject: Subject) -> None:
        members = _ids_table(subject.addr_ids)
        store.con.register("_risk_members", members)
        try:
            coins = store.query(
                "SELECT o.tx_id, o.n, o.value, o.addr_id, t.height, t.txid,"
                " NOT EXISTS (SELECT 1 FROM inputs i WHERE i.tx_id = o.tx_id AND i.addr_id IN"
                "   (SELECT addr_id FROM _risk_members)),"
                " (SELECT min(i.tx_id) FROM inputs i WHERE i.prev_tx_id = o.tx_id"
                "   AND i.prev_n = o.n)"
                " FROM outputs o JOIN txs t USING (tx_id)"
                " WHERE o.addr_id IN (SELECT addr_id FROM _risk_members) ORDER BY o.tx_id, o.n")
            txs = store.query(
                "WITH ids AS ("
                "  SELECT tx_id FROM outputs WHERE addr_id IN (SELECT addr_id FROM _risk_members)"
                "  UNION SELECT tx_id FROM inputs"
                "  WHERE addr_id IN (SELECT addr_id FROM _risk_members))"
                " SELECT t.tx_id, t.txid, t.height, b.time,"
                " coalesce((SELECT sum(i.value) FROM inputs i WHERE i.tx_id = t.tx_id AND"
                "   i.addr_id IN (SELECT addr_id FROM _risk_members)), 0)::BIGINT,"
                " coalesce((SELECT sum(o.value) FROM outputs o WHERE o.tx_id = t.tx_id AND"
                "   o.addr_id IN (SELECT addr_id FROM _risk_members)), 0)::BIGINT,"
                " t.output_value, t.input_count"
                " FROM txs t JOIN ids USING (tx_id) JOIN blocks b ON b.height = t.height"
                " ORDER BY t.tx_id")
        finally:
            store.con.unregister("_risk_members")
        self.coins = [
            _Coin(int(t), int(n), int(v), int(a), int(h), _hex(x), bool(ext),
                  None if s is None else int(s))
            for t, n, v, a, h, x, ext, s in coins
        ]
        self.txs = {
            int(t): _Tx(int(t), _hex(x), int(h), int(tm), int(i), int(o), int(ov), int(ic))
            for t, x, h, tm, i, o, ov, ic in txs
        }


# --- peel chains ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeelChain:
    """>= `min_hops` transactions in a row, each spending coins of one address into exactly two
    outputs, the smaller at most `max_peel_share` of the total; the larger (the remainder) is
    spent by the next such transaction at most `max_gap_blocks` later.

    The default gap is two blocks: laundering peel chains are scripted and hop at machine speed
    (Kappos et al. 2022), while a wallet paying bills from its change is structurally the same
    chain at human speed. With a six-block gap the rule fired on two ordinary users of the
    regtest scenario (four and five payments in a row, gaps of up to five blocks); with two it
    fires on the operator only. Known false positives: wallets paying >= `min_hops` bills from
    one coin in consecutive blocks (payouts scripts, batch-less services). Known false
    negatives: chains that wait longer between hops, or peel into more than two outputs."""

    name: ClassVar[str] = "peel_chain"
    version: ClassVar[int] = 1
    min_hops: int = 4
    max_peel_share: float = 0.2
    max_gap_blocks: int = 2

    def params(self) -> dict[str, Any]:
        return _params(self)

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        rows = store.query(
            "WITH one AS ("
            "  SELECT tx_id FROM inputs GROUP BY tx_id"
            "  HAVING count(DISTINCT addr_id) = 1 AND count(addr_id) = count(*)),"
            " two AS ("
            "  SELECT tx_id, arg_max(n, value) AS big_n, max(value) AS big, min(value) AS small,"
            "   arg_min(addr_id, value) AS small_addr, arg_max(addr_id, value) AS big_addr"
            "  FROM outputs GROUP BY tx_id HAVING count(*) = 2),"
            " cand AS ("
            "  SELECT t.tx_id, t.txid, t.height, w.big_n, w.big, w.small, w.small_addr,"
            "   w.big_addr FROM txs t JOIN one USING (tx_id) JOIN two w USING (tx_id)"
            "  WHERE w.small <= ? * (w.small + w.big) AND w.small < w.big)"
            " SELECT c.tx_id, c.txid, c.height, c.big, c.small, c.small_addr, c.big_addr,"
            "  (SELECT i.addr_id FROM inputs i WHERE i.tx_id = c.tx_id LIMIT 1),"
            "  (SELECT min(i.tx_id) FROM inputs i WHERE i.prev_tx_id = c.tx_id"
            "    AND i.prev_n = c.big_n)"
            " FROM cand c ORDER BY c.tx_id", [self.max_peel_share])
        cand = {int(r[0]): r for r in rows}
        nxt: dict[int, int] = {}
        for tx_id, r in cand.items():
            follower = r[8]
            if follower is not None and int(follower) in cand:
                gap = int(cand[int(follower)][2]) - int(r[2])
                if gap <= self.max_gap_blocks:
                    nxt[tx_id] = int(follower)
        has_prev = set(nxt.values())
        hits = []
        for head in sorted(cand):
            if head in has_prev:
                continue
            chain = [head]
            while chain[-1] in nxt:
                chain.append(nxt[chain[-1]])
            if len(chain) < self.min_hops:
                continue
            addrs: set[int] = set()
            for t in chain:
                addrs.update(int(a) for a in cand[t][5:8] if a is not None)
            if subject is not None and not addrs & subject.addr_ids:
                continue
            evidence = [Evidence(_hex(cand[t][1]), int(cand[t][2]), int(cand[t][4]), "peel")
                        for t in chain]
            first, last = cand[chain[0]], cand[chain[-1]]
            hits.append(_hit(self, subject, evidence, (
                f"peel chain of {len(chain)} transactions from height {int(first[2])} to "
                f"{int(last[2])}: each peels a small output (total "
                f"{sum(int(cand[t][4]) for t in chain)} sat) and passes the remainder on; "
                f"{int(last[3])} sat remain at the end")))
        return hits


# --- rapid pass-through -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassThrough:
    """A coin paid to the subject from outside (a transaction spending none of its coins) of at
    least `min_value` sat, of which >= `min_out_share` moves *fully out* of the subject within
    `max_blocks` blocks (and, if set, `max_seconds` of block time).

    A spending transaction moves its coins fully out when it keeps nothing back: every output
    that carries an address pays an address outside the subject that is either the
    transaction's only output (the whole coin moved on) or was used before that transaction (a
    known address: change goes to a fresh one). Such a spend counts with the coin's value times
    the share of the outputs' value that leaves (the whole coin, fee included). A spend that
    returns change, pays the subject, or pays a fresh address beside another output (which may
    be the subject's own change) keeps something back and does not count.

    Version 4 counts only spends that keep nothing back. Version 3 counted the outputs known to
    leave of *any* spend, so every ordinary payment with a small change output read as 90 %+
    out: users spending their own earlier change, salary or exchange withdrawals on one large
    payment fired on 55 of 272 ordinary-user clusters of the regtest scenario (v4: none);
    versions 1 and 2 also counted every fresh-address output as leaving. Known false
    positives: sweeps of a whole balance to one address (the owner's own fresh address, or an
    exchange deposit) soon after receiving it. Known false negatives: relays that keep a
    remainder or split into several fresh addresses (the peel-chain rule covers the first)."""

    name: ClassVar[str] = "pass_through"
    version: ClassVar[int] = 4
    min_out_share: float = 0.9
    max_blocks: int = 288
    max_seconds: int | None = None
    min_value: int = 0

    def params(self) -> dict[str, Any]:
        return _params(self)

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        subject = _need(subject, self.name)
        act = _Activity(store, subject)
        by_tx: dict[int, list[_Coin]] = defaultdict(list)
        for coin in act.coins:
            if coin.external and coin.value >= self.min_value:
                by_tx[coin.tx_id].append(coin)
        spenders = {c.spent_by for coins in by_tx.values() for c in coins
                    if c.spent_by is not None and c.spent_by in act.txs}
        leaving_by_tx = self._leaving(store, spenders, subject)
        hits = []
        for tx_id, coins in sorted(by_tx.items()):
            inflow = act.txs[tx_id]
            received = sum(c.value for c in coins)
            out = 0
            evidence = [Evidence(inflow.txid, inflow.height, received, "in")]
            for coin in coins:
                spender = act.txs.get(coin.spent_by) if coin.spent_by is not None else None
                if spender is None or not self._within(inflow, spender):
                    continue
                leaving = leaving_by_tx.get(spender.tx_id, 0)
                share = coin.value * leaving // spender.out_total if spender.out_total else 0
                if share:
                    out += share
                    evidence.append(Evidence(spender.txid, spender.height, share, "out"))
            if received and out >= self.min_out_share * received:
                last = max(e.height for e in evidence)
                hits.append(_hit(self, subject, evidence, (
                    f"received {received} sat at height {inflow.height} and sent {out} sat "
                    f"({100 * out / received:.1f} %) fully out again by height {last}")))
        return hits

    @staticmethod
    def _leaving(store: ChainStore, spenders: Iterable[int], subject: Subject) -> dict[int, int]:
        """Per spending transaction: the value it moves fully out of the subject (0 when it
        keeps anything back)."""
        ids = sorted(spenders)
        if not ids:
            return {}
        rows = _with(
            store, "_risk_spenders", _ids_table(ids, "tx_id"),
            "SELECT o.tx_id, o.value, o.addr_id, a.first_tx_id,"
            " count(o.addr_id) OVER (PARTITION BY o.tx_id)"
            " FROM outputs o JOIN _risk_spenders USING (tx_id)"
            " LEFT JOIN addresses a USING (addr_id) ORDER BY o.tx_id, o.n")
        leaving: dict[int, int] = dict.fromkeys(ids, 0)
        kept: set[int] = set()
        for row_tx, value, addr_id, first_tx, addressed in rows:
            tx_id = int(row_tx)
            if addr_id is None:
                continue  # OP_RETURN and other address-less outputs: neither kept nor sent
            sole = int(addressed) == 1
            known = first_tx is not None and int(first_tx) < tx_id
            if int(addr_id) in subject.addr_ids or not (sole or known):
                kept.add(tx_id)
            else:
                leaving[tx_id] += int(value)
        return {t: (0 if t in kept else v) for t, v in leaving.items()}

    def _within(self, inflow: _Tx, spender: _Tx) -> bool:
        if spender.height - inflow.height > self.max_blocks:
            return False
        return self.max_seconds is None or spender.time - inflow.time <= self.max_seconds


# --- fan-in then consolidation ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FanIn:
    """>= `min_sources` distinct sources pay the subject (a source is the paying transaction's
    first input address, or its cluster when the store holds a clustering), and one
    transaction then spends coins from >= `min_sources` of them together, at most
    `max_blocks` after the first of those payments."""

    name: ClassVar[str] = "fan_in"
    version: ClassVar[int] = 1
    min_sources: int = 5
    max_blocks: int = 4032
    use_clusters: bool = True

    def params(self) -> dict[str, Any]:
        return _params(self)

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        subject = _need(subject, self.name)
        act = _Activity(store, subject)
        external = [c for c in act.coins if c.external]
        if not external:
            return []
        rows = _with(store, "_risk_pay", _ids_table((c.tx_id for c in external), "tx_id"),
                     "SELECT tx_id, arg_min(addr_id, n) FROM inputs"
                     " WHERE tx_id IN (SELECT tx_id FROM _risk_pay) GROUP BY tx_id")
        payer = {int(t): None if a is None else int(a) for t, a in rows}
        ids = _cluster_ids(store) if self.use_clusters else None
        basis = "address" if ids is None else "cluster"

        def source(coin: _Coin) -> str | None:
            a = payer.get(coin.tx_id)
            if a is None:
                return None  # coinbase or unknown address: not a counted source
            if ids is not None and 0 <= a < len(ids):
                return f"cluster:{int(ids[a])}"
            return f"addr:{a}"

        by_spender: dict[int, list[_Coin]] = defaultdict(list)
        for coin in external:
            if coin.spent_by is not None:
                by_spender[coin.spent_by].append(coin)
        hits = []
        for spend_id, spent in sorted(by_spender.items()):
            spender = act.txs[spend_id]
            counted = [c for c in spent if spender.height - c.height <= self.max_blocks
                       and source(c) is not None]
            sources = {source(c) for c in counted}
            if len(sources) < self.min_sources:
                continue
            first = min(c.height for c in counted)
            evidence = [Evidence(c.txid, c.height, c.value, "fan_in") for c in counted]
            total = sum(c.value for c in counted)
            evidence.append(Evidence(spender.txid, spender.height, total, "consolidation"))
            values = sorted(c.value for c in counted)
            hits.append(_hit(self, subject, evidence, (
                f"{len(sources)} distinct sources (by {basis}) paid {len(counted)} coins "
                f"(median {values[len(values) // 2]} sat) from height {first}, consolidated "
                f"together at height {spender.height} ({total} sat)")))
        return hits


def _cluster_ids(store: ChainStore) -> Any:
    from cointrail.analysis.clustering.engine import cluster_view

    try:
        return cluster_view(store).ids
    except NotFoundError:
        return None


# --- dormancy then burst ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DormancyBurst:
    """After earlier activity, no transaction paying or spending the subject for
    >= `min_dormant_blocks`, then >= `min_burst_txs` such transactions within
    `burst_window_blocks` (counted from the first after the gap)."""

    name: ClassVar[str] = "dormancy_burst"
    version: ClassVar[int] = 1
    min_dormant_blocks: int = 52_560
    min_burst_txs: int = 5
    burst_window_blocks: int = 144

    def params(self) -> dict[str, Any]:
        return _params(self)

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        subject = _need(subject, self.name)
        txs = sorted(_Activity(store, subject).txs.values(), key=lambda t: t.tx_id)
        hits = []
        for i in range(1, len(txs)):
            gap = txs[i].height - txs[i - 1].height
            if gap < self.min_dormant_blocks:
                continue
            end = txs[i].height + self.burst_window_blocks
            burst = [t for t in txs[i:] if t.height <= end]
            if len(burst) < self.min_burst_txs:
                continue
            before = txs[i - 1]
            evidence = [Evidence(before.txid, before.height,
                                 before.in_subject + before.out_subject, "last_before_gap")]
            evidence += [Evidence(t.txid, t.height, t.in_subject + t.out_subject, "burst")
                         for t in burst]
            hits.append(_hit(self, subject, evidence, (
                f"dormant for {gap} blocks (heights {before.height} to {txs[i].height}), then "
                f"{len(burst)} transactions within {burst[-1].height - txs[i].height + 1} "
                f"blocks")))
        return hits


# --- structuring ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Daily prices of one coin in a fiat currency: a CSV with the columns ``date`` (YYYY-MM-DD)
    and ``price``. A block's value is taken at its UTC date, or the last earlier date listed."""

    days: tuple[str, ...]
    prices: tuple[Decimal, ...]
    source: str = ""
    sha256: str = ""
    currency: str = ""

    @classmethod
    def from_csv(cls, path: Path | str, currency: str = "") -> PriceTable:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the price table {path}: {exc.strerror}") from None
        rows: dict[str, Decimal] = {}
        reader = csv.DictReader(data.decode("utf-8-sig").splitlines())
        if not reader.fieldnames or not {"date", "price"} <= set(reader.fieldnames):
            raise InputError(f"the price table {path} needs the columns date and price")
        for line, row in enumerate(reader, start=2):
            try:
                day = date.fromisoformat(row["date"].strip()).isoformat()
                price = Decimal(row["price"].strip())
            except (ValueError, InvalidOperation, AttributeError):
                raise InputError(f"{path} line {line}: expected YYYY-MM-DD and a number") \
                    from None
            if price <= 0:
                raise InputError(f"{path} line {line}: the price must be positive")
            rows[day] = price
        if not rows:
            raise InputError(f"the price table {path} has no rows")
        days = tuple(sorted(rows))
        return cls(days, tuple(rows[d] for d in days), path.name,
                   hashlib.sha256(data).hexdigest(), currency)

    def price_at(self, day: str) -> Decimal | None:
        i = bisect_right(self.days, day)
        return self.prices[i - 1] if i else None

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "currency": self.currency,
                "first": self.days[0], "last": self.days[-1], "rows": len(self.days)}


@dataclass(frozen=True, slots=True)
class Structuring:
    """>= `min_count` payments within `window_blocks`, each in [threshold(1 - eps), threshold):
    in satoshi, or, with a `prices` table, in fiat at the block's UTC date. Payments are the
    outputs to non-subject addresses of transactions spending the subject's coins
    (``direction="sent"``), or the coins paid to it from outside (``"received"``)."""

    name: ClassVar[str] = "structuring"
    version: ClassVar[int] = 1
    threshold: int | str = 100_000_000  # sat, or a fiat amount (decimal string) with `prices`
    eps: float = 0.2
    min_count: int = 3
    window_blocks: int = 1008
    direction: str = "sent"
    prices: PriceTable | None = field(default=None)

    def __post_init__(self) -> None:
        if self.direction not in ("sent", "received"):
            raise InputError(f"structuring direction {self.direction!r}: use sent or received")
        if not 0 < self.eps < 1:
            raise InputError(f"structuring eps {self.eps}: give a number between 0 and 1")

    def params(self) -> dict[str, Any]:
        return _params(self) | {"unit": "sat" if self.prices is None else "fiat"}

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        subject = _need(subject, self.name)
        act = _Activity(store, subject)
        payments = self._payments(store, subject, act)
        limit = Decimal(str(self.threshold))
        low = limit * (1 - Decimal(str(self.eps)))
        fits: list[tuple[_Tx, int, Decimal | None]] = []
        for tx, value in payments:
            amount: Decimal = Decimal(value)
            fiat = None
            if self.prices is not None:
                day = datetime.fromtimestamp(tx.time, UTC).date().isoformat()
                price = self.prices.price_at(day)
                if price is None:
                    continue
                fiat = (Decimal(value) * price / COIN).quantize(Decimal("0.01"))
                amount = fiat
            if low <= amount < limit:
                fits.append((tx, value, fiat))
        hits = []
        i = 0
        while i < len(fits):
            j = i
            while j + 1 < len(fits) and fits[j + 1][0].height - fits[i][0].height \
                    <= self.window_blocks:
                j += 1
            group = fits[i:j + 1]
            if len(group) >= self.min_count:
                unit = "sat" if self.prices is None else f"fiat {self.prices.currency}".strip()
                evidence = [Evidence(t.txid, t.height, v, "payment",
                                     None if f is None else str(f)) for t, v, f in group]
                hits.append(_hit(self, subject, evidence, (
                    f"{len(group)} payments {self.direction} between heights "
                    f"{group[0][0].height} and {group[-1][0].height}, each in "
                    f"[{low.normalize()}, {limit.normalize()}) {unit}, just under the "
                    "threshold")))
                i = j + 1
            else:
                i += 1
        return hits

    def _payments(self, store: ChainStore, subject: Subject,
                  act: _Activity) -> list[tuple[_Tx, int]]:
        if self.direction == "received":
            return [(act.txs[c.tx_id], c.value) for c in act.coins if c.external]
        spending = [t for t in act.txs.values() if t.in_subject]
        if not spending:
            return []
        rows = _with(store, "_risk_spend", _ids_table((t.tx_id for t in spending), "tx_id"),
                     "SELECT tx_id, value, addr_id FROM outputs"
                     " WHERE tx_id IN (SELECT tx_id FROM _risk_spend) ORDER BY tx_id, n")
        return [(act.txs[int(t)], int(v)) for t, v, a in rows
                if a is None or int(a) not in subject.addr_ids]


# --- mixer exposure ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MixerExposure:
    """Value received from (``backward``) or sent to (``forward``) addresses tagged with a
    mixer category, or through CoinJoin-labelled transactions, within `hops` transactions: a
    haircut trace from the subject's coins (`cointrail.analysis.tracing`) that stops at
    mixers, CoinJoins and services. Fires when the exposed amount is >= `min_share` of the
    traced amount (and above zero)."""

    name: ClassVar[str] = "mixer_exposure"
    version: ClassVar[int] = 1
    hops: int = 3
    categories: frozenset[str] = frozenset({"mixer", "mixing_service"})
    directions: tuple[str, ...] = ("backward", "forward")
    min_share: float = 0.0

    def params(self) -> dict[str, Any]:
        return _params(self)

    def evaluate(self, store: ChainStore, subject: Subject | None) -> list[RuleHit]:
        from cointrail.analysis.tracing import SERVICE_CATEGORIES, TraceParams, trace
        from cointrail.analysis.tracing.engine import Start

        subject = _need(subject, self.name)
        start = (Start("cluster", subject.text, cluster_id=int(subject.text.split(":")[1]))
                 if subject.kind == "cluster" else Start("address", subject.text))
        params = TraceParams(hops=self.hops, stop_categories=SERVICE_CATEGORIES | self.categories,
                             coinjoin="stop")
        hits = []
        for direction in self.directions:
            result = trace(store, start, direction, params)
            hop: dict[tuple[str, int | None], int] = {(n.txid, n.vout): n.hop
                                                      for n in result.nodes}
            exposed = [e for e in result.endpoints
                       if e.category in self.categories or e.category == "coinjoin"]
            amount = sum(e.amount for e in exposed)
            if not amount or amount < self.min_share * result.seed_amount:
                continue
            evidence = [Evidence(e.txid, e.height, e.amount, f"{e.category}@hop"
                                 f"{hop.get((e.txid, e.vout), 0)}") for e in exposed]
            labels = sorted({e.label for e in exposed if e.label})
            way = "received from" if direction == "backward" else "sent to"
            share = 100 * amount / result.seed_amount if result.seed_amount else 0.0
            hits.append(_hit(self, subject, evidence, (
                f"{amount} sat ({share:.1f} % of {result.seed_amount} sat traced, haircut) "
                f"{way} mixers or CoinJoins within {self.hops} hops"
                + (f" ({', '.join(labels)})" if labels else ""))))
        return hits


# --- the registry -----------------------------------------------------------------------------

RULE_TYPES: dict[str, type[Any]] = {
    r.name: r for r in (PeelChain, PassThrough, FanIn, DormancyBurst, Structuring, MixerExposure)
}
RULE_NAMES: tuple[str, ...] = tuple(RULE_TYPES)


def default_rules(names: Sequence[str] | None = None, *,
                  structuring: Structuring | None = None) -> list[Any]:
    """Rule instances with their default parameters (`structuring` replaces that one)."""
    chosen = list(RULE_NAMES) if not names else [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in RULE_TYPES]
    if unknown:
        raise InputError(f"unknown rule(s) {', '.join(unknown)}; use {', '.join(RULE_NAMES)}")
    return [structuring if n == Structuring.name and structuring is not None
            else RULE_TYPES[n]() for n in chosen]


def evaluate(store: ChainStore, subject: Subject | str | None,
             rules: Sequence[Any] | None = None) -> list[RuleHit]:
    """Run `rules` (default: all, default parameters) on `subject`; ``None`` scans the whole
    store and runs only the rules that can (peel chains)."""
    if isinstance(subject, str):
        subject = resolve_subject(store, subject)
    chosen = default_rules() if rules is None else list(rules)
    if subject is None:
        chosen = [r for r in chosen if r.name == PeelChain.name]
    hits: list[RuleHit] = []
    for rule in chosen:
        hits += rule.evaluate(store, subject)
    return hits
