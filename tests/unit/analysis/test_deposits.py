"""The deposit-address heuristic on UTXO chains (`DepositAddresses`), transaction by
transaction on small scripted chains: what makes a hot wallet and a deposit address, which
payments link their senders, when each link is dated, and what is not linked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from cointrail.analysis.clustering.deposits import DepositAddresses, DepositEvidence
from cointrail.analysis.clustering.heuristics import ClusterLink, TxContext
from cointrail.analysis.patterns import CoinJoinKind, CoinJoinMatch
from cointrail.analysis.txview import InputView, OutputView, TxView
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError

P2WPKH = ScriptType.WITNESS_V0_KEYHASH
NULLDATA = ScriptType.NULLDATA
SEQ = 0xFFFFFFFD
COIN = 100_000_000
JOIN = CoinJoinMatch(CoinJoinKind.WASABI_2, "test", "1", {}, True)

# addresses: the exchange's hot wallet and deposit addresses, customers, a merchant
HOT, DEP_ALICE, DEP_BOB, DEP_MERCHANT = 100, 50, 51, 52
ALICE_1, ALICE_2, ALICE_3, BOB, CAROL = 1, 2, 3, 4, 5
INVOICE_1, INVOICE_2, INVOICE_3, INVOICE_4 = 60, 61, 62, 63
WITHDRAWN, HOT_CHANGE = 70, 101


@dataclass
class Chain:
    """Feeds scripted transactions to one heuristic in chain order; a coin is (tx_id, addr)."""

    heuristic: DepositAddresses = field(
        default_factory=lambda: DepositAddresses(min_forwarders=2))
    height: int = 0
    views: list[TxView] = field(default_factory=list)
    links: list[tuple[int, int, int]] = field(default_factory=list)  # (tx_id, a, b)
    evidence: list[DepositEvidence] = field(default_factory=list)
    first_seen: dict[int, int] = field(default_factory=dict)  # address -> first tx paying it

    def block(self, blocks: int = 1) -> None:
        self.height += blocks

    def tx(self, spends: Sequence[tuple[int, int]], pays: Sequence[int], *,
           coinjoin: bool = False, op_return: bool = False, multi_owner: bool = False) -> int:
        tx_id = len(self.views)
        inputs = tuple(InputView(addr, COIN, P2WPKH, SEQ, prev) for prev, addr in spends)
        for a in pays:
            self.first_seen.setdefault(a, tx_id)
        outputs = [OutputView(n, a, COIN, P2WPKH, self.first_seen[a]) for n, a in enumerate(pays)]
        if op_return:
            outputs.append(OutputView(len(outputs), None, 0, NULLDATA, None))
        view = TxView(tx_id, self.height, 2, 0, inputs, tuple(outputs), not spends)
        self.views.append(view)
        made = self.heuristic.links(view, TxContext(JOIN if coinjoin else None, multi_owner))
        assert all(isinstance(x, ClusterLink) and x.tx_id == tx_id for x in made)
        self.links += [(x.tx_id, x.a, x.b) for x in made]
        self.evidence += self.heuristic.evidence
        assert len(self.heuristic.evidence) == len(made)
        return tx_id

    def fund(self, *addrs: int) -> dict[int, int]:
        """A coinbase paying each address once: addr -> the tx holding its coin."""
        return {a: self.tx([], [a]) for a in addrs}

    def pairs(self) -> set[frozenset[int]]:
        return {frozenset((a, b)) for _, a, b in self.links}


def exchange_with_two_customers(chain: Chain) -> dict[str, int]:
    """Alice pays her deposit address twice from unrelated addresses, Bob his once; the
    exchange sweeps each deposit address to its hot wallet in a transaction of its own."""
    coins = chain.fund(ALICE_1, ALICE_2, BOB)
    chain.block()
    pay_a1 = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE])
    pay_a2 = chain.tx([(coins[ALICE_2], ALICE_2)], [DEP_ALICE])
    pay_b = chain.tx([(coins[BOB], BOB)], [DEP_BOB])
    chain.block()
    sweep_a = chain.tx([(pay_a1, DEP_ALICE), (pay_a2, DEP_ALICE)], [HOT])
    chain.block()
    sweep_b = chain.tx([(pay_b, DEP_BOB)], [HOT])
    chain.block()
    # the hot wallet pays a withdrawal with change: it keeps coins, so it is no deposit address
    withdrawal = chain.tx([(sweep_a, HOT)], [WITHDRAWN, HOT_CHANGE])
    return {"pay_a1": pay_a1, "pay_a2": pay_a2, "pay_b": pay_b, "sweep_a": sweep_a,
            "sweep_b": sweep_b, "withdrawal": withdrawal}


def test_customers_payments_link_once_the_hot_wallet_is_known() -> None:
    chain = Chain()
    txs = exchange_with_two_customers(chain)
    # nothing before the withdrawal: until the hot wallet spends, it could be a deposit
    # address itself (swept on later), so nothing is decided
    assert all(tx_id == txs["withdrawal"] for tx_id, _, _ in chain.links)
    assert chain.pairs() == {frozenset((ALICE_1, ALICE_2)), frozenset((HOT, DEP_ALICE)),
                             frozenset((HOT, DEP_BOB))}
    assert chain.heuristic.is_hot(HOT)
    assert chain.heuristic.deposit_of(DEP_ALICE) == HOT
    same = next(e for e in chain.evidence if e.kind == "same_depositor")
    assert (same.a, same.b, same.deposit, same.hot) == (ALICE_1, ALICE_2, DEP_ALICE, HOT)
    assert same.payments == (txs["pay_a1"], txs["pay_a2"])
    assert same.forward_tx == txs["sweep_a"]
    assert same.hot_since_tx == txs["withdrawal"]
    # a later payment links at its own transaction, to the previous payer, and its change
    # (the other of two outputs, first paid there) to the payer
    coin = chain.fund(ALICE_3)[ALICE_3]
    chain.block()
    later = chain.tx([(coin, ALICE_3)], [DEP_ALICE, CAROL])
    assert (later, ALICE_2, ALICE_3) in chain.links
    assert (later, ALICE_3, CAROL) in chain.links
    same, change = chain.evidence[-2:]
    assert same.payments == (txs["pay_a2"], later)
    assert (change.kind, change.a, change.b, change.payments) == (
        "payment_change", ALICE_3, CAROL, (later,))


def test_one_sweep_transaction_makes_no_hot_wallet() -> None:
    """Two deposit addresses swept together are two forwarders but one sweep: a user emptying
    two addresses into a payment looks the same, so nothing is decided yet."""
    chain = Chain()
    coins = chain.fund(ALICE_1, BOB)
    pay_a = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE])
    pay_b = chain.tx([(coins[BOB], BOB)], [DEP_BOB])
    chain.tx([(pay_a, DEP_ALICE), (pay_b, DEP_BOB)], [HOT])
    assert chain.links == []
    assert not chain.heuristic.is_hot(HOT)


def test_merchant_cash_outs_link_the_merchant_not_the_exchange() -> None:
    """A merchant sweeps its invoices to its deposit address at the exchange; the exchange
    sweeps that deposit address to its hot wallet. The deposit address forwards everything, so
    it is no hot wallet: the invoices are not deposit addresses and the merchant does not join
    the exchange; the merchant's cash-outs link each other; customers paying invoices do not."""
    chain = Chain()
    txs = exchange_with_two_customers(chain)
    coins = chain.fund(ALICE_3, CAROL)
    chain.block()
    inv_1 = chain.tx([(coins[ALICE_3], ALICE_3)], [INVOICE_1])
    inv_2 = chain.tx([(coins[CAROL], CAROL)], [INVOICE_2])
    chain.block()
    cash_1 = chain.tx([(inv_1, INVOICE_1), (inv_2, INVOICE_2)], [DEP_MERCHANT])
    chain.block()
    chain.tx([(cash_1, DEP_MERCHANT)], [HOT])  # the exchange sweeps the merchant's deposit
    assert chain.heuristic.deposit_of(DEP_MERCHANT) == HOT
    assert not chain.heuristic.is_hot(DEP_MERCHANT)
    coins = chain.fund(BOB + 100, BOB + 101)
    chain.block()
    inv_3 = chain.tx([(coins[BOB + 100], BOB + 100)], [INVOICE_3])
    inv_4 = chain.tx([(coins[BOB + 101], BOB + 101)], [INVOICE_4])
    chain.block()
    cash_2 = chain.tx([(inv_3, INVOICE_3), (inv_4, INVOICE_4)], [DEP_MERCHANT])
    assert (cash_2, INVOICE_1, INVOICE_3) in chain.links
    merchant = {INVOICE_1, INVOICE_2, INVOICE_3, INVOICE_4}
    for pair in chain.pairs():
        assert not (pair & merchant and pair & {HOT, DEP_MERCHANT}), pair
        assert not pair & {CAROL, BOB + 100, BOB + 101}, pair
    assert txs  # the exchange's own links are there as before
    assert frozenset((HOT, DEP_MERCHANT)) in chain.pairs()


@pytest.mark.parametrize("kind", ["coinjoin", "declared multi-owner"])
def test_slow_forwards_and_coinjoins_are_not_forwards(kind: str) -> None:
    chain = Chain(DepositAddresses(min_forwarders=2, max_blocks=10))
    coins = chain.fund(ALICE_1, BOB, CAROL)
    chain.block()
    pay_a = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE])
    pay_b = chain.tx([(coins[BOB], BOB)], [DEP_BOB])
    chain.block(11)  # Alice's deposit waits 11 blocks: not a sweep of a deposit address
    chain.tx([(pay_a, DEP_ALICE)], [HOT])
    chain.tx([(pay_b, DEP_BOB), (coins[CAROL], CAROL)], [HOT], coinjoin=kind == "coinjoin",
             multi_owner=kind != "coinjoin")
    assert chain.links == []
    assert chain.heuristic.deposit_of(DEP_ALICE) is None
    assert chain.heuristic.deposit_of(DEP_BOB) is None


def test_coinjoin_payments_top_ups_and_op_return_are_handled() -> None:
    chain = Chain()
    exchange_with_two_customers(chain)
    before = list(chain.links)
    coins = chain.fund(ALICE_3, CAROL)
    chain.block()
    # a CoinJoin paying Alice's deposit address: its inputs are not one payer
    chain.tx([(coins[ALICE_3], ALICE_3), (coins[CAROL], CAROL)], [DEP_ALICE, CAROL + 1],
             coinjoin=True)
    # the hot wallet paying a deposit address (a refund, a top-up): no depositor
    hot_coin = chain.tx([(coins[ALICE_3], HOT)], [DEP_BOB, HOT + 1])
    assert chain.links == before
    # a sweep with an OP_RETURN beside its one output is still a sweep
    coin = chain.fund(CAROL + 2)[CAROL + 2]
    pay = chain.tx([(coin, CAROL + 2)], [CAROL + 3])
    chain.tx([(pay, CAROL + 3)], [HOT], op_return=True)
    assert chain.heuristic.deposit_of(CAROL + 3) == HOT
    assert hot_coin > 0


def test_a_sender_paying_many_deposit_addresses_is_a_hub() -> None:
    chain = Chain(DepositAddresses(min_forwarders=2, max_deposits_per_sender=1))
    exchange_with_two_customers(chain)
    coins = chain.fund(ALICE_3)
    chain.block()
    # Bob (already a depositor of his own address) pays Alice's deposit address too: above
    # one deposit address he is a hub, and links nobody through it
    bob_coin = chain.fund(BOB)[BOB]
    chain.tx([(bob_coin, BOB)], [DEP_ALICE])
    assert frozenset((ALICE_2, BOB)) not in chain.pairs()
    chain.tx([(coins[ALICE_3], ALICE_3)], [DEP_ALICE])
    assert frozenset((ALICE_2, ALICE_3)) in chain.pairs()


def test_a_deposit_address_that_spends_otherwise_keeps_its_links_and_makes_no_more() -> None:
    chain = Chain()
    exchange_with_two_customers(chain)
    made = set(chain.pairs())
    coins = chain.fund(ALICE_3, CAROL)
    chain.block()
    pay = chain.tx([(coins[CAROL], CAROL)], [DEP_ALICE])
    # Alice's deposit address pays two outputs: no longer a forwarder
    chain.tx([(pay, DEP_ALICE)], [BOB + 50, BOB + 51])
    assert chain.heuristic.deposit_of(DEP_ALICE) is None
    chain.tx([(coins[ALICE_3], ALICE_3)], [DEP_ALICE])
    assert made <= chain.pairs()
    assert frozenset((ALICE_2, ALICE_3)) not in chain.pairs()


def test_a_receiver_of_sweeps_that_forwards_them_on_is_no_hot_wallet() -> None:
    """Sweeps to an address that forwards them on within the window (a second-level deposit
    address, a relay) make no hot wallet, and their senders no deposit addresses; one that has
    paid out is a hot wallet for good, whatever it does later."""
    chain = Chain()
    txs = exchange_with_two_customers(chain)
    relay = 200
    coins = chain.fund(CAROL, CAROL + 1)
    chain.block()
    first = chain.tx([(coins[CAROL], CAROL)], [relay])
    chain.block()
    second = chain.tx([(coins[CAROL + 1], CAROL + 1)], [relay])
    chain.block()
    chain.tx([(first, relay), (second, relay)], [HOT])
    assert not chain.heuristic.is_hot(relay)
    assert chain.heuristic.deposit_of(CAROL) is None
    assert chain.heuristic.deposit_of(relay) == HOT
    chain.block()
    chain.tx([(txs["withdrawal"], HOT)], [HOT + 7])  # the hot wallet forwards once
    assert chain.heuristic.is_hot(HOT)


def test_refuses_a_gap_in_the_chain() -> None:
    heuristic = DepositAddresses()
    view = TxView(3, 0, 2, 0, (), (OutputView(0, 1, COIN, P2WPKH, 3),), True)
    with pytest.raises(InputError, match="expected tx 0, got 3"):
        heuristic.links(view, TxContext())


def test_parameters_are_checked_and_recorded() -> None:
    with pytest.raises(InputError, match="min_forwarders"):
        DepositAddresses(min_forwarders=0)
    described = DepositAddresses(max_blocks=72).describe()
    assert described == {"name": "deposit_address", "version": "1", "params": {
        "min_forwarders": 3, "max_blocks": 72, "link_hot": True, "link_change": True,
        "max_deposits_per_sender": 10}}


def test_without_link_hot_only_depositors_link() -> None:
    chain = Chain(DepositAddresses(min_forwarders=2, link_hot=False, link_change=False))
    exchange_with_two_customers(chain)
    assert chain.pairs() == {frozenset((ALICE_1, ALICE_2))}


def test_a_hot_wallet_that_never_spends_is_one_after_the_sweep_window() -> None:
    """A receiver of sweeps that never spends could be a deposit address waiting for its own
    sweep: it is taken for a hot wallet only once `max_blocks` have passed since the first
    sweep to it, and the links are dated at the first transaction after that."""
    chain = Chain(DepositAddresses(min_forwarders=2, max_blocks=5))
    coins = chain.fund(ALICE_1, BOB)
    chain.block()
    pay_a = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE])
    pay_b = chain.tx([(coins[BOB], BOB)], [DEP_BOB])
    chain.block()
    chain.tx([(pay_a, DEP_ALICE)], [HOT])  # first sweep to HOT at height 2
    chain.tx([(pay_b, DEP_BOB)], [HOT])
    chain.block(5)
    chain.fund(CAROL)  # height 7: 2 + 5, still inside the window
    assert chain.links == []
    chain.block()
    (first_after,) = chain.fund(CAROL + 1).values()  # height 8: the window has passed
    assert chain.pairs() == {frozenset((HOT, DEP_ALICE)), frozenset((HOT, DEP_BOB))}
    assert {tx_id for tx_id, _, _ in chain.links} == {first_after}


def test_a_deposit_address_paid_changeless_twice_by_its_customer_is_no_hot_wallet() -> None:
    """Alice empties two of her addresses into her deposit address with one-output payments:
    to the heuristic that is two forwarders in two sweeps, like a hot wallet's. The exchange
    sweeps the deposit address within the window, so it never becomes one, and Alice's
    addresses do not join the exchange."""
    chain = Chain()
    coins = chain.fund(ALICE_1, ALICE_2)
    chain.block()
    pay_1 = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE])
    chain.block()
    pay_2 = chain.tx([(coins[ALICE_2], ALICE_2)], [DEP_ALICE])
    chain.block(3)
    chain.tx([(pay_1, DEP_ALICE), (pay_2, DEP_ALICE)], [HOT])
    chain.block(200)
    chain.fund(CAROL)
    assert not chain.heuristic.is_hot(DEP_ALICE)
    assert all(not {ALICE_1, ALICE_2} & pair or pair == frozenset((ALICE_1, ALICE_2))
               for pair in chain.pairs())


def test_payment_change_only_for_two_outputs_and_a_fresh_other_output() -> None:
    """The change of a payment to a deposit address: linked once the deposit address is known
    (dated then), only in a two-output payment whose other output is first paid there."""
    chain = Chain()
    coins = chain.fund(ALICE_1, ALICE_2, ALICE_3, CAROL)
    chain.block()
    # before the deposit address is known: waits, and is linked when it becomes one
    early = chain.tx([(coins[ALICE_1], ALICE_1)], [DEP_ALICE, ALICE_1 + 10])
    three = chain.tx([(coins[ALICE_2], ALICE_2)], [DEP_ALICE, ALICE_2 + 10, ALICE_2 + 11])
    reused = chain.tx([(coins[ALICE_3], ALICE_3)], [DEP_ALICE, CAROL])  # CAROL seen before
    txs = exchange_with_two_customers(chain)
    pairs = {(t, frozenset((a, b))) for t, a, b in chain.links}
    assert (txs["withdrawal"], frozenset((ALICE_1, ALICE_1 + 10))) in pairs
    changes = [e for e in chain.evidence if e.kind == "payment_change"]
    assert [(e.a, e.b, e.payments) for e in changes] == [(ALICE_1, ALICE_1 + 10, (early,))]
    assert three and reused
