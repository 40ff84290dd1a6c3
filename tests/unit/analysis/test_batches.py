"""The batch-change heuristic (`BatchChange`), transaction by transaction on small scripted
chains: which output of a batch is its change, when the link is made and dated, and each
condition that keeps it from linking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from cointrail.analysis.clustering.batches import BatchChange, BatchEvidence
from cointrail.analysis.clustering.heuristics import ClusterLink, TxContext
from cointrail.analysis.patterns import CoinJoinKind, CoinJoinMatch
from cointrail.analysis.txview import InputView, OutputView, TxView
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError

P2WPKH = ScriptType.WITNESS_V0_KEYHASH
P2PKH = ScriptType.PUBKEYHASH
NULLDATA = ScriptType.NULLDATA
RBF, FINAL = 0xFFFFFFFD, 0xFFFFFFFF
COIN = 100_000_000
JOIN = CoinJoinMatch(CoinJoinKind.WASABI_2, "test", "1", {}, True)

# the service's addresses; its payees
HOT, CHANGE_1, CHANGE_2 = 1, 2, 3
PAYEES = list(range(10, 40))


@dataclass
class Chain:
    """Feeds scripted transactions to one heuristic in chain order. A coin is
    (tx_id, address, value, script type); `pay` lists (address, value) outputs."""

    heuristic: BatchChange = field(default_factory=BatchChange)
    height: int = 0
    links: list[tuple[int, int, int]] = field(default_factory=list)  # (tx_id, a, b)
    evidence: list[BatchEvidence] = field(default_factory=list)
    first_seen: dict[int, int] = field(default_factory=dict)
    coins: dict[int, tuple[int, int, int, ScriptType]] = field(default_factory=dict)
    next_id: int = 0

    def block(self, blocks: int = 1) -> None:
        self.height += blocks

    def tx(self, spends: Sequence[int], pays: Sequence[tuple[int, int]], *,
           sequence: int = RBF, version: int = 2, script: ScriptType = P2WPKH,
           coinjoin: bool = False, op_return: bool = False, multi_owner: bool = False) -> int:
        """`spends`: addresses whose coin (the last paid to each) this spends; `multi_owner`:
        the run declares it multi-owner."""
        tx_id = self.next_id
        self.next_id += 1
        inputs = []
        for addr in spends:
            prev, _, value, kind = self.coins[addr]
            inputs.append(InputView(addr, value, kind, sequence, prev))
        outputs = []
        for n, (addr, value) in enumerate(pays):
            self.first_seen.setdefault(addr, tx_id)
            outputs.append(OutputView(n, addr, value, script, self.first_seen[addr]))
            self.coins[addr] = (tx_id, addr, value, script)
        if op_return:
            outputs.append(OutputView(len(outputs), None, 0, NULLDATA, None))
        view = TxView(tx_id, self.height, version, 0, tuple(inputs), tuple(outputs),
                      not spends)
        made = self.heuristic.links(view, TxContext(JOIN if coinjoin else None, multi_owner))
        assert all(isinstance(x, ClusterLink) and x.tx_id == tx_id for x in made)
        assert len(self.heuristic.evidence) == len(made)
        self.links += [(x.tx_id, x.a, x.b) for x in made]
        self.evidence += self.heuristic.evidence
        return tx_id

    def fund(self, addr: int, value: int = 100 * COIN) -> int:
        return self.tx([], [(addr, value)])


def payees(start: int, n: int, value: int = COIN) -> list[tuple[int, int]]:
    return [(PAYEES[start + k], value + k) for k in range(n)]


def first_batch(chain: Chain) -> int:
    """The service pays three payees from its hot wallet, 95 coins coming back as change."""
    chain.fund(HOT)
    chain.block()
    return chain.tx([HOT], [*payees(0, 3), (CHANGE_1, 95 * COIN)])


def test_the_next_batch_spending_the_largest_output_alone_links_it_to_the_batch() -> None:
    chain = Chain()
    b1 = first_batch(chain)
    chain.block()
    b2 = chain.tx([CHANGE_1], [*payees(3, 4), (CHANGE_2, 90 * COIN)])
    assert chain.links == [(b2, HOT, CHANGE_1)]  # dated at the batch that spent the change
    (e,) = chain.evidence
    assert (e.batch_tx, e.tx_id, e.a, e.b, e.value) == (b1, b2, HOT, CHANGE_1, 95 * COIN)
    assert (e.outputs, e.spender_outputs) == (4, 5)
    assert e.fingerprint == (2, "rbf", "witness_v0_keyhash")
    chain.block()
    b3 = chain.tx([CHANGE_2], [*payees(7, 3), (40, 85 * COIN)])
    assert chain.links[-1] == (b3, CHANGE_1, CHANGE_2)  # the chain of batches goes on


@pytest.mark.parametrize("declared", ["batch", "spender"])
def test_a_batch_or_spender_declared_multi_owner_links_nothing(declared: str) -> None:
    """An analyst's multi-owner declaration: the declared transaction is nobody's batch, nor
    one wallet's spend of the batch's change."""
    chain = Chain()
    chain.fund(HOT)
    chain.tx([HOT], [(PAYEES[0], 2 * COIN), (PAYEES[1], COIN), (CHANGE_1, 95 * COIN)],
             multi_owner=declared == "batch")
    chain.block()
    chain.tx([CHANGE_1], [*payees(3, 4), (CHANGE_2, 90 * COIN)],
             multi_owner=declared == "spender")
    assert chain.links == []


def test_the_change_is_not_linked_before_it_is_spent_nor_when_spent_otherwise() -> None:
    chain = Chain()
    first_batch(chain)
    assert chain.links == []  # the batch alone says nothing
    chain.block()
    chain.tx([CHANGE_1], [(50, 60 * COIN), (51, 35 * COIN)])  # a payment, not a batch
    assert chain.links == []
    chain = Chain()
    first_batch(chain)
    chain.fund(52)
    chain.tx([CHANGE_1, 52], payees(3, 4))  # not its only input
    assert chain.links == []


@pytest.mark.parametrize("change", [COIN + 1, 95 * COIN], ids=["smaller", "tied"])
def test_an_output_that_is_not_strictly_the_largest_is_not_linked(change: int) -> None:
    chain = Chain()
    chain.fund(HOT)
    outputs = [(PAYEES[0], 95 * COIN), (PAYEES[1], COIN), (PAYEES[2], 2 * COIN)]
    chain.tx([HOT], [*outputs, (CHANGE_1, change)])
    chain.block()
    chain.tx([CHANGE_1], payees(3, 4, value=COIN // 10))
    assert chain.links == []


def test_a_reused_change_address_is_not_linked() -> None:
    chain = Chain()
    chain.fund(CHANGE_1, COIN)  # paid before the batch
    chain.fund(HOT)
    chain.tx([HOT], [*payees(0, 3), (CHANGE_1, 95 * COIN)])
    chain.tx([CHANGE_1], payees(3, 4))
    assert chain.links == []


@pytest.mark.parametrize("style", [{"sequence": FINAL}, {"version": 1}],
                         ids=["sequence", "version"])
def test_a_spender_with_another_fingerprint_is_not_the_same_wallet(
        style: dict[str, int]) -> None:
    chain = Chain()
    first_batch(chain)
    chain.tx([CHANGE_1], payees(3, 4), **style)
    assert chain.links == []


def test_a_spender_of_another_input_script_type_is_not_the_same_wallet() -> None:
    chain = Chain()
    chain.fund(HOT)  # a P2WPKH coin
    chain.tx([HOT], [*payees(0, 3), (CHANGE_1, 95 * COIN)], script=P2PKH)
    chain.tx([CHANGE_1], payees(3, 4))  # spends P2PKH: another wallet's style
    assert chain.links == []


def test_the_lock_time_is_not_part_of_the_fingerprint() -> None:
    chain = Chain()
    b1 = first_batch(chain)
    chain.block(5)
    view = TxView(chain.next_id, chain.height, 2, chain.height - 1,
                  (InputView(CHANGE_1, 95 * COIN, P2WPKH, RBF, b1),),
                  tuple(OutputView(n, a, v, P2WPKH, chain.next_id)
                        for n, (a, v) in enumerate(payees(3, 4))), False)
    links = chain.heuristic.links(view, TxContext(None))
    assert [(x.a, x.b) for x in links] == [(HOT, CHANGE_1)]


def test_a_contested_batch_links_nothing() -> None:
    """Another output spent alone by a batch of the same wallet first: either may be the
    change, so the largest is not linked when it is spent the same way later."""
    chain = Chain()
    chain.fund(HOT)
    chain.tx([HOT], [(PAYEES[0], 2 * COIN), (PAYEES[1], COIN), (CHANGE_1, 95 * COIN)])
    chain.block()
    chain.tx([PAYEES[0]], payees(5, 3, value=COIN // 10))  # same fingerprint: a contest
    chain.block()
    chain.tx([CHANGE_1], payees(10, 4))
    assert chain.links == []


def test_a_spender_of_another_wallet_does_not_contest() -> None:
    chain = Chain()
    chain.fund(HOT)
    chain.tx([HOT], [(PAYEES[0], 2 * COIN), (PAYEES[1], COIN), (CHANGE_1, 95 * COIN)])
    chain.tx([PAYEES[0]], payees(5, 3, value=COIN // 10), sequence=FINAL)  # another wallet
    b3 = chain.tx([CHANGE_1], payees(10, 4))
    assert chain.links == [(b3, HOT, CHANGE_1)]


def test_batches_are_at_least_min_outputs_without_op_return() -> None:
    chain = Chain()
    chain.fund(HOT)
    chain.tx([HOT], [(PAYEES[0], COIN), (CHANGE_1, 95 * COIN)], op_return=True)
    chain.tx([CHANGE_1], payees(3, 4))
    assert chain.links == []  # two outputs and an OP_RETURN: not a batch
    chain = Chain(BatchChange(min_outputs=5))
    first_batch(chain)  # four outputs
    chain.tx([CHANGE_1], payees(3, 5))
    assert chain.links == []


def test_coinjoins_are_neither_batches_nor_spenders() -> None:
    chain = Chain()
    chain.fund(HOT)
    chain.tx([HOT], [*payees(0, 3), (CHANGE_1, 95 * COIN)], coinjoin=True)
    chain.tx([CHANGE_1], payees(3, 4))
    assert chain.links == []
    chain = Chain()
    first_batch(chain)
    chain.tx([CHANGE_1], payees(3, 4), coinjoin=True)
    assert chain.links == []


def test_a_change_spent_after_max_blocks_is_not_linked() -> None:
    chain = Chain(BatchChange(max_blocks=10))
    first_batch(chain)
    chain.block(11)
    chain.tx([CHANGE_1], payees(3, 4))
    assert chain.links == []
    chain = Chain(BatchChange(max_blocks=10))
    first_batch(chain)
    chain.block(10)
    chain.tx([CHANGE_1], payees(3, 4))
    assert len(chain.links) == 1


def test_transactions_must_come_in_chain_order_and_parameters_are_checked() -> None:
    chain = Chain()
    first_batch(chain)
    chain.next_id = 0
    with pytest.raises(InputError, match="chain order"):
        chain.fund(99)
    with pytest.raises(InputError, match="min_outputs >= 3"):
        BatchChange(min_outputs=2)
    assert BatchChange().replay_from(2000) == 2000 + 1 - 1008
    assert BatchChange().replay_from(5) == 0
