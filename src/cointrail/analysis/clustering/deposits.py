"""Deposit addresses on UTXO chains: the coins paid to one exchange deposit address come from
one customer, and the deposit address belongs to the exchange that sweeps it.

Heuristic (after F. Victor, "Address clustering heuristics for Ethereum", Financial
Cryptography and Data Security 2020, §4.1, carried over to UTXO chains): an exchange gives each
customer a deposit address and sweeps what arrives there to its hot wallet. On a UTXO chain a
*sweep* is a transaction with one output (OP_RETURN left aside) that is not a CoinJoin; an
address D *forwards* to H when a sweep spends D's coins, each received at most `max_blocks`
before, to H (H not D). Then, in chain order and from what is known at that point only:

- D is a *forwarder of H* while every spend of D so far was a forward to H;
- H is a *hot wallet* once at least `min_forwarders` addresses have forwarded to it in at
  least `min_forwarders` transactions and H has shown that it is not a forwarder itself: it
  has spent otherwise (a withdrawal batch, a payment with change; for good), or `max_blocks`
  have passed since the first sweep to it without H spending. Until then H may be a deposit
  address waiting for its own sweep: a customer who empties several addresses into a deposit
  address with one-output payments, or a merchant sweeping invoices to its deposit address at
  an exchange, makes that deposit address look like a hot wallet until the exchange sweeps it
  on. An address that forwards is no hot wallet, however many addresses forwarded to it;
- D is a *deposit address of H* while it is a forwarder of H and H is a hot wallet.

Links (all dated at the transaction that completed their evidence):

- *same depositor*: the senders (first input address) of two transactions paying the same
  deposit address, one after the other — the customer's addresses across payments that share no
  input; multi-input joins each payment's inputs already;
- *deposit to hot wallet* (`link_hot`): D with H — the sweeper spends D's coins, so the
  exchange holds both keys;
- *payment change* (`link_change`): in a payment to a deposit address with two outputs
  (OP_RETURN aside), the other output, when first paid there, is the payer's change — the
  classic "payments go to services" reading (Meiklejohn et al. 2013) with the service
  recognised by its behaviour, not by a tag.

Payments that are CoinJoins, that come from the deposit address itself, from its hot wallet, or
from any hot wallet or deposit address (an exchange paying its own or another customer's
deposit address) are not counted; nor are senders that have paid more than
`max_deposits_per_sender` deposit addresses (a service paying many customers: a hub).

Known false positives (Victor §6; and in practice):

- a deposit address paid by someone other than its owner (a friend, a customer of the owner,
  another service's payout) links unrelated people;
- an exchange that gives one deposit address to several customers merges those customers;
- a user who empties receive addresses with one-output payments, in `min_forwarders`
  transactions or more, to one reused address of someone else that then pays with change or
  keeps the coins (a merchant's static address, a friend's address) makes that address look
  like a hot wallet: with `link_hot` the user's addresses join its owner, and people who paid
  one of the user's addresses twice are linked;
- a decision rests on what was known at the time: a deposit address that later spends
  otherwise, or a hot wallet that later forwards, keeps the links made before (they stay
  dated, so `--as-of` replays them exactly).

State lives in the heuristic: it must see every transaction from genesis in chain order (the
engine replays the chain before a run that does not start at genesis). Memory grows with the
addresses that ever received a payment (pending senders per address); meant for regional or
case-sized chains, and for whole chains on a machine sized for it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cointrail.analysis.clustering.heuristics import ClusterLink, Heuristic, TxContext
from cointrail.analysis.txview import Freshness, TxView
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError

#: a forwarder whose spends were not all forwards to one address
_MIXED = -1

CITATION = ("F. Victor, Address clustering heuristics for Ethereum, Financial Cryptography and "
            "Data Security 2020, section 4.1 (deposit addresses), carried over to UTXO chains")


@dataclass(frozen=True, slots=True)
class DepositEvidence:
    """Why a link was made: the deposit address, its hot wallet, the transactions (store tx
    ids) — the two payments of a same-depositor link, the deposit's first forward, and the
    transaction that made the hot wallet one."""

    kind: str  # "same_depositor", "deposit_to_hot" or "payment_change"
    tx_id: int  # the transaction the link is dated at
    a: int
    b: int
    deposit: int
    hot: int
    forward_tx: int
    hot_since_tx: int
    payments: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tx_id": self.tx_id, "a": self.a, "b": self.b,
                "deposit": self.deposit, "hot_wallet": self.hot, "forward_tx": self.forward_tx,
                "hot_since_tx": self.hot_since_tx, "payments": list(self.payments)}


@dataclass(eq=False)
class DepositAddresses(Heuristic):
    """Deposit addresses and their hot wallets (UTXO chains); see the module docstring."""

    name: ClassVar[str] = "deposit_address"
    version: ClassVar[str] = "1"

    min_forwarders: int = 3
    max_blocks: int = 144
    link_hot: bool = True
    link_change: bool = True
    max_deposits_per_sender: int = 10

    # state (not parameters): rebuilt by feeding every transaction from genesis
    _forwards_to: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _first_forward: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _forwarders: dict[int, set[int]] = field(
        default_factory=lambda: defaultdict(set), init=False, repr=False)
    _sweeps: dict[int, set[int]] = field(
        default_factory=lambda: defaultdict(set), init=False, repr=False)
    _hot_since: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _pending: dict[int, list[tuple[int, int, int | None]]] = field(
        default_factory=lambda: defaultdict(list), init=False, repr=False)
    _last: dict[int, tuple[int, int]] = field(default_factory=dict, init=False, repr=False)
    _hot_linked: set[int] = field(default_factory=set, init=False, repr=False)
    #: the deposit addresses each sender paid (a hub when above max_deposits_per_sender)
    _paid: dict[int, set[int]] = field(
        default_factory=lambda: defaultdict(set), init=False, repr=False)
    _first_swept_to: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _due: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _waiting: list[tuple[int, int]] = field(default_factory=list, init=False, repr=False)
    _height: int = field(default=0, init=False, repr=False)
    _block_heights: list[int] = field(default_factory=list, init=False, repr=False)
    _block_first_tx: list[int] = field(default_factory=list, init=False, repr=False)
    _next_tx: int = field(default=0, init=False, repr=False)
    evidence: list[DepositEvidence] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_forwarders < 1 or self.max_blocks < 0 or self.max_deposits_per_sender < 1:
            raise InputError(
                "deposit_address needs min_forwarders >= 1, max_blocks >= 0 and "
                f"max_deposits_per_sender >= 1, not {self.min_forwarders}, {self.max_blocks} "
                f"and {self.max_deposits_per_sender}")

    def params(self) -> dict[str, object]:
        return {"min_forwarders": self.min_forwarders, "max_blocks": self.max_blocks,
                "link_hot": self.link_hot, "link_change": self.link_change,
                "max_deposits_per_sender": self.max_deposits_per_sender}

    @property
    def next_tx_id(self) -> int:
        """The tx id the heuristic expects next (it has seen every one before)."""
        return self._next_tx

    # -- queries on the state -----------------------------------------------------------------

    def is_hot(self, addr: int) -> bool:
        return addr in self._hot_since

    def deposit_of(self, addr: int) -> int | None:
        """The hot wallet `addr` is a deposit address of now, or None."""
        hot = self._forwards_to.get(addr)
        return hot if hot is not None and hot != _MIXED and hot in self._hot_since else None

    # -- feeding transactions ----------------------------------------------------------------

    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        """The links `tx` completes. Transactions must come in chain order, every one from
        genesis (tx id 0): the heuristic refuses a gap, which would make its state wrong."""
        if tx.tx_id != self._next_tx:
            raise InputError(
                f"deposit_address must see every transaction in chain order: expected tx "
                f"{self._next_tx}, got {tx.tx_id} (replay the chain from genesis first)")
        self._next_tx = tx.tx_id + 1
        if not self._block_heights or self._block_heights[-1] != tx.height:
            self._block_heights.append(tx.height)
            self._block_first_tx.append(tx.tx_id)
        self.evidence = []
        self._height = tx.height
        out: list[ClusterLink] = []
        multi_party = ctx.multi_party
        spends = not tx.is_coinbase and bool(tx.inputs)
        touched = self._spends(tx, multi_party) if spends else set()
        while self._waiting and self._waiting[0][0] < tx.height:  # waited long enough
            touched.add(heapq.heappop(self._waiting)[1])
        for addr in sorted(touched):
            self._recheck_hot(addr, tx.tx_id, out)
        if spends and not multi_party:
            self._payments(tx, out)
        return out

    def _height_of(self, tx_id: int) -> int:
        k = bisect_right(self._block_first_tx, tx_id) - 1
        return self._block_heights[k] if k >= 0 else 0

    def _spends(self, tx: TxView, multi_party: bool) -> set[int]:
        """Update the forwarders with `tx`'s spends; the addresses whose hot-wallet standing
        may have changed (the sweep's receiver, and every spender)."""
        paid = [o for o in tx.outputs if o.script_type is not ScriptType.NULLDATA]
        target = paid[0].addr_id if len(paid) == 1 and not multi_party else None
        oldest: dict[int, int] = {}
        for i in tx.inputs:
            if i.addr_id is None:
                continue
            received = self._height_of(i.prev_tx_id) if i.prev_tx_id >= 0 else -1
            oldest[i.addr_id] = min(oldest.get(i.addr_id, received), received)
        touched: set[int] = set()
        for addr, received in oldest.items():
            prompt = received >= 0 and tx.height - received <= self.max_blocks
            before = self._forwards_to.get(addr)
            if target is not None and target != addr and prompt and before in (None, target):
                self._forwards_to[addr] = target
                self._first_forward.setdefault(addr, tx.tx_id)
                self._forwarders[target].add(addr)
                self._sweeps[target].add(tx.tx_id)
                self._first_swept_to.setdefault(target, tx.height)
            else:
                self._forwards_to[addr] = _MIXED
            touched.add(addr)
        if target is not None:
            touched.add(target)
        return touched

    def _recheck_hot(self, addr: int, tx_id: int, out: list[ClusterLink]) -> None:
        """Re-decide whether `addr` is a hot wallet; when it becomes one, its forwarders become
        deposit addresses now. A spender that was a deposit address may be one now as well."""
        forwards = self._forwards_to.get(addr)
        enough = (len(self._forwarders.get(addr, ())) >= self.min_forwarders
                  and len(self._sweeps.get(addr, ())) >= self.min_forwarders)
        if enough and forwards is None and addr not in self._due:
            # it may be a deposit address not swept yet: wait as long as a sweep may take
            self._due[addr] = self._first_swept_to[addr] + self.max_blocks
            heapq.heappush(self._waiting, (self._due[addr], addr))
        hot = enough and (forwards == _MIXED or (
            forwards is None and self._height > self._due.get(addr, self._height)))
        if hot and addr not in self._hot_since:
            self._hot_since[addr] = tx_id
            for deposit in sorted(self._forwarders[addr]):
                self._settle(deposit, tx_id, out)
        elif not hot:
            self._hot_since.pop(addr, None)
        if forwards is not None and forwards != _MIXED:
            self._settle(addr, tx_id, out)

    def _payments(self, tx: TxView, out: list[ClusterLink]) -> None:
        sender = tx.first_input_addr_id
        if sender is None:
            return
        exchange = any(self.is_hot(a) or self.deposit_of(a) is not None
                       for a in tx.input_addr_ids)
        paid = [o for o in tx.outputs if o.script_type is not ScriptType.NULLDATA]
        for o in tx.outputs:
            d = o.addr_id
            if d is None or d in tx.input_addr_ids or exchange:
                continue
            change = None
            if self.link_change and len(paid) == 2:
                other = paid[1] if paid[0] is o else paid[0]
                if (other.addr_id is not None and other.addr_id != d
                        and tx.freshness(other) is Freshness.FRESH):
                    change = other.addr_id
            self._pending[d].append((sender, tx.tx_id, change))
            self._settle(d, tx.tx_id, out)

    def _settle(self, deposit: int, tx_id: int, out: list[ClusterLink]) -> None:
        """If `deposit` is a deposit address now, link its senders waiting so far (each to the
        one before) and, with `link_hot`, the deposit address to its hot wallet."""
        hot = self.deposit_of(deposit)
        if hot is None:
            return
        forward, since = self._first_forward[deposit], self._hot_since[hot]
        pending = self._pending.pop(deposit, [])
        last = self._last.get(deposit)
        for sender, paid_in, change in pending:
            paid = self._paid[sender]
            paid.add(deposit)
            if len(paid) > self.max_deposits_per_sender:
                continue  # a hub: a service paying many deposit addresses
            if last is not None and last[0] != sender:
                out.append(ClusterLink(last[0], sender, tx_id, self.name))
                self.evidence.append(DepositEvidence(
                    "same_depositor", tx_id, last[0], sender, deposit, hot, forward, since,
                    (last[1], paid_in)))
            if change is not None and change != sender and self.deposit_of(change) is None \
                    and not self.is_hot(change):
                out.append(ClusterLink(sender, change, tx_id, self.name))
                self.evidence.append(DepositEvidence(
                    "payment_change", tx_id, sender, change, deposit, hot, forward, since,
                    (paid_in,)))
            last = (sender, paid_in)
        if last is not None:
            self._last[deposit] = last
        if self.link_hot and deposit not in self._hot_linked:
            self._hot_linked.add(deposit)
            out.append(ClusterLink(hot, deposit, tx_id, self.name))
            self.evidence.append(DepositEvidence(
                "deposit_to_hot", tx_id, hot, deposit, deposit, hot, forward, since))


__all__ = ["CITATION", "DepositAddresses", "DepositEvidence"]
