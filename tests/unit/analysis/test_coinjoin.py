"""CoinJoin detectors on synthetic rounds of realistic shape, on ordinary payments that must never
match, and on the real mainnet blocks 0–438 (which hold no CoinJoin)."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cointrail import get_chain
from cointrail.analysis.clustering.heuristics import MultiInput, Tx0Outputs, TxContext
from cointrail.analysis.patterns import (
    CoinJoinDetector,
    CoinJoinKind,
    EqualOutputMix,
    JoinMarket,
    Stonewall,
    Wasabi1,
    Wasabi2,
    Whirlpool,
    WhirlpoolTx0,
    wabisabi_denominations,
)
from cointrail.analysis.txview import InputView, OutputView, TxView, iter_tx_views
from cointrail.chain.utxo.script import ScriptType
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles

P2WPKH = ScriptType.WITNESS_V0_KEYHASH
P2TR = ScriptType.WITNESS_V1_TAPROOT
P2PKH = ScriptType.PUBKEYHASH
P2SH = ScriptType.SCRIPTHASH
NULLDATA = ScriptType.NULLDATA
RBF = 0xFFFFFFFD
TX_ID = 5_000_000  # the synthetic transaction's id; reused addresses were first paid earlier
COIN = 100_000_000


class Wallets:
    """Hands out address ids and builds inputs and outputs of one synthetic transaction."""

    def __init__(self) -> None:
        self.next_addr = 1_000

    def addr(self) -> int:
        self.next_addr += 1
        return self.next_addr

    def inp(self, value: int, st: ScriptType = P2WPKH, addr: int | None = None) -> InputView:
        return InputView(self.addr() if addr is None else addr, value, st, RBF)

    def outputs(
        self, specs: Sequence[tuple[int, ScriptType, bool]]
    ) -> tuple[OutputView, ...]:
        """Outputs from (value, script type, fresh) specs; reused addresses were paid at tx 7."""
        return tuple(
            OutputView(n, self.addr(), value, st, TX_ID if fresh else 7)
            for n, (value, st, fresh) in enumerate(specs)
        )


def make_tx(
    inputs: Sequence[InputView], outputs: Sequence[OutputView], *, coinbase: bool = False
) -> TxView:
    return TxView(TX_ID, 800_000, 2, 799_999, tuple(inputs), tuple(outputs), coinbase)


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` random positive amounts."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


# --- realistic rounds -------------------------------------------------------------------------


def whirlpool_round(denomination: int = 5_000_000, size: int = 5) -> TxView:
    """Whirlpool 0.05 BTC mix: two remixers, three new entrants carrying the mining fee."""
    w = Wallets()
    inputs = [w.inp(denomination) for _ in range(2)]
    inputs += [w.inp(denomination + fee) for fee in (1_250, 3_400, 7_800)[: size - 2]]
    inputs += [w.inp(denomination + 2_000) for _ in range(size - 5)]
    return make_tx(inputs, w.outputs([(denomination, P2WPKH, True)] * size))


def wasabi2_round(seed: int = 2) -> TxView:
    """A WabiSabi round: 100 inputs, 150 outputs — 120 at standard denominations, 29 change,
    one coordinator fee to a reused address."""
    rng = random.Random(seed)
    w = Wallets()
    denoms = [
        5_000_000, 10_000_000, 2_000_000, 1_000_000, 8_388_608, 4_194_304, 1_594_323,
        3_188_646, 20_000_000, 16_777_216, 531_441, 50_000_000,
    ]
    standard = wabisabi_denominations()
    specs = [(rng.choice(denoms), rng.choice((P2WPKH, P2TR)), True) for _ in range(120)]
    while len(specs) < 149:
        value = rng.randrange(5_000, 3_000_000)
        if value not in standard:
            specs.append((value, rng.choice((P2WPKH, P2TR)), True))
    rng.shuffle(specs)
    specs.append((1_234_567, P2WPKH, False))  # coordinator fee, reused address
    outputs = w.outputs(specs)
    total = sum(o.value for o in outputs) + 150_000
    inputs = [w.inp(v, rng.choice((P2WPKH, P2TR))) for v in split(total, 100, rng)]
    return make_tx(inputs, outputs)


def wasabi1_round(seed: int = 1) -> TxView:
    """A Wasabi 1.1 round: base 0.0999 BTC, 40 base outputs, two mixing levels, change, and a
    coordinator fee to the coordinator's reused address; P2WPKH throughout."""
    rng = random.Random(seed)
    w = Wallets()
    base = 9_994_502
    specs = [(base, P2WPKH, True)] * 40 + [(2 * base, P2WPKH, True)] * 6
    specs += [(4 * base, P2WPKH, True)] * 3
    specs += [(rng.randrange(10_000, 9_000_000), P2WPKH, True) for _ in range(38)]
    rng.shuffle(specs)
    specs.append((1_802_345, P2WPKH, False))
    outputs = w.outputs(specs)
    total = sum(o.value for o in outputs) + 90_000
    return make_tx([w.inp(v) for v in split(total, 60, rng)], outputs)


def joinmarket_round(changes: int = 3, nested: ScriptType = P2WPKH) -> TxView:
    """JoinMarket: a taker and three makers, 4 equal outputs of 0.12345678 BTC and `changes`
    change outputs; the taker brings two inputs, makers one to three. One maker may use
    `nested` script type (a JoinMarket round never mixes types)."""
    w = Wallets()
    d = 12_345_678
    inputs = [w.inp(8_000_000), w.inp(6_000_000), w.inp(20_000_000, nested)]
    inputs += [w.inp(9_000_000), w.inp(4_000_000), w.inp(15_555_555)]
    change = [(7_654_321, nested, True), (1_233_987, P2WPKH, True), (3_209_876, P2WPKH, True),
              (1_642_001, P2WPKH, True)][:changes]
    outputs = w.outputs([(d, P2WPKH, True)] * 4 + change)
    return make_tx(inputs, outputs)


def exchange_batch(seed: int = 3, *, reused_share: float = 0.5, n_out: int = 200) -> TxView:
    """An exchange's batched withdrawal: 60 hot-wallet inputs, `n_out` withdrawals of different
    amounts with a few coincidental equal ones (three of 0.01 BTC, two of 0.05 BTC), change."""
    rng = random.Random(seed)
    w = Wallets()
    values = [1_000_000] * 3 + [5_000_000] * 2
    while len(values) < n_out:
        value = rng.randrange(20_000, 50_000_000)
        if value not in values:
            values.append(value)
    specs = [(v, P2WPKH, rng.random() >= reused_share) for v in values]
    specs.append((rng.randrange(10 * COIN, 50 * COIN), P2WPKH, True))
    outputs = w.outputs(specs)
    total = sum(o.value for o in outputs) + 400_000
    return make_tx([w.inp(v) for v in split(total, 60, rng)], outputs)


def round_withdrawals_batch() -> TxView:
    """A segwit exchange batch where users withdrew round amounts: 40 outputs at 0.01, 0.02,
    0.05 and 0.1 BTC (all standard WabiSabi denominations) among 160 others, fresh addresses."""
    rng = random.Random(4)
    w = Wallets()
    values = [1_000_000, 2_000_000, 5_000_000, 10_000_000] * 10
    values += [rng.randrange(20_000, 50_000_000) for _ in range(160)]
    outputs = w.outputs([(v, P2WPKH, True) for v in values])
    total = sum(values) + 500_000
    return make_tx([w.inp(v) for v in split(total, 80, rng)], outputs)


def payroll() -> TxView:
    """One payer pays 30 different amounts from three coins of one address."""
    w = Wallets()
    payer = w.addr()
    outputs = w.outputs([(100_000 + 7_919 * k, P2PKH, k % 2 == 0) for k in range(30)])
    total = sum(o.value for o in outputs) + 30_000
    return make_tx([w.inp(total // 3 + 1, P2PKH, payer) for _ in range(3)], outputs)


def airdrop() -> TxView:
    """One payer sends 50 equal amounts to fresh addresses from one address."""
    w = Wallets()
    payer = w.addr()
    outputs = w.outputs([(50_000, P2WPKH, True)] * 50 + [(3_141_592, P2WPKH, True)])
    return make_tx([w.inp(3_000_000, addr=payer), w.inp(3_000_000, addr=payer)], outputs)


def tx0(denomination: int = 1_000_000, fee: int = 50_000, premix: int = 7) -> TxView:
    w = Wallets()
    outputs = w.outputs(
        [(denomination + 1_337, P2WPKH, True)] * premix
        + [(fee, P2WPKH, False), (0, NULLDATA, True), (2_345_678, P2WPKH, True)]
    )
    outputs = tuple(
        OutputView(o.n, None, 0, NULLDATA, None) if o.script_type is NULLDATA else o
        for o in outputs
    )
    return make_tx([w.inp(10_000_000), w.inp(1_000_000)], outputs)


def stonewall(*, x2: bool = False, three_outputs: bool = False, amount: int = 2_345_678,
              fee: int = 2_960) -> TxView:
    """A Stonewall: two sets of coins (the second a collaborator's in an X2) each pay one of two
    equal outputs and get their change, in BIP 69 order. With `three_outputs` the second set's
    change was dust and went to the fee."""
    w = Wallets()
    first = [w.inp(1_500_000), w.inp(1_700_000)]
    second = [w.inp(4_000_000)] if x2 else [w.inp(2_600_000), w.inp(1_000_000)]
    c1 = sum(i.value for i in first) - amount - fee // 2
    c2 = sum(i.value for i in second) - amount - (fee - fee // 2)
    values = [amount, amount, c1] + ([] if three_outputs else [c2])
    if three_outputs:  # the second set pays the amount and the fee, nothing comes back
        second = [w.inp(amount + fee - fee // 2 + 1_500)]
    outputs = w.outputs([(v, P2WPKH, True) for v in sorted(values)])
    return make_tx(sorted(first + second, key=lambda i: i.value), outputs)


def two_equal_withdrawals(second_coin: int) -> TxView:
    """An exchange batch: two equal withdrawals, a third one and change, from two coins."""
    w = Wallets()
    outputs = w.outputs([(5_000_000, P2WPKH, True), (5_000_000, P2WPKH, True),
                         (1_234_567, P2WPKH, True), (7_654_321, P2WPKH, True)])
    total = sum(o.value for o in outputs) + 5_000
    return make_tx([w.inp(total - second_coin), w.inp(second_coin)], outputs)


ORDINARY = {
    "exchange batch": exchange_batch(),
    "exchange batch, fresh outputs": exchange_batch(reused_share=0.0),
    "exchange batch, small": exchange_batch(5, reused_share=0.0, n_out=12),
    "round withdrawals": round_withdrawals_batch(),
    "payroll": payroll(),
    "airdrop": airdrop(),
    "two equal withdrawals": two_equal_withdrawals(11_000_000),
}


# --- the rounds are found ---------------------------------------------------------------------


def test_whirlpool_round() -> None:
    match = Whirlpool().detect(whirlpool_round())
    assert match is not None
    assert match.kind is CoinJoinKind.WHIRLPOOL and match.multi_party
    assert (match.detector, match.version) == ("whirlpool", "1")
    assert match.evidence == {
        "denomination": 5_000_000, "equal_outputs": 5, "remixers": 2, "new_entrants": 3
    }
    assert CoinJoinDetector().detect(whirlpool_round()) == match


@pytest.mark.parametrize("denomination", [100_000, 1_000_000, 5_000_000, 50_000_000])
def test_whirlpool_every_pool(denomination: int) -> None:
    assert Whirlpool().detect(whirlpool_round(denomination)) is not None


def test_whirlpool_rejects_near_misses() -> None:
    tx = whirlpool_round()
    too_rich = InputView(tx.inputs[0].addr_id, 5_200_000, P2WPKH, RBF)
    assert Whirlpool().detect(make_tx((too_rich, *tx.inputs[1:]), tx.outputs)) is None
    odd = (*tx.outputs[:4], OutputView(4, 99, 4_999_000, P2WPKH, TX_ID))
    assert Whirlpool().detect(make_tx(tx.inputs, odd)) is None
    reused = (*tx.outputs[:4], OutputView(4, 99, 5_000_000, P2WPKH, 7))
    assert Whirlpool().detect(make_tx(tx.inputs, reused)) is None
    not_a_pool = whirlpool_round(2_000_000)
    assert Whirlpool().detect(not_a_pool) is None


def test_whirlpool_surge_cycles_need_opt_in() -> None:
    surge = whirlpool_round(size=7)
    assert Whirlpool().detect(surge) is None
    assert Whirlpool(sizes=frozenset({5, 6, 7, 8})).detect(surge) is not None


def test_wasabi2_round() -> None:
    tx = wasabi2_round()
    match = Wasabi2().detect(tx)
    assert match is not None and match.kind is CoinJoinKind.WASABI_2
    denominations = match.evidence["denominations"]
    assert isinstance(denominations, tuple) and len(denominations) >= 3
    assert match.evidence["denominated_outputs"] == 120
    assert match.evidence["coordinator_output"] == 149
    assert CoinJoinDetector().detect(tx) == match


def test_wasabi2_needs_many_inputs_and_segwit() -> None:
    tx = wasabi2_round()
    assert Wasabi2().detect(make_tx(tx.inputs[:49], tx.outputs)) is None
    legacy = (InputView(1, 10 * COIN, P2PKH, RBF), *tx.inputs[1:])
    assert Wasabi2().detect(make_tx(legacy, tx.outputs)) is None
    assert Wasabi2(min_inputs=40).detect(make_tx(tx.inputs[:49], tx.outputs)) is not None


def test_wabisabi_denominations_are_the_published_series() -> None:
    d = wabisabi_denominations()
    assert {5_000, 6_561, 8_192, 13_122, 10_000, 20_000, 50_000, 100_000_000} <= d
    assert {4_096, 7_000, 12_345_678} & d == set()
    assert min(d) == 5_000 and max(d) <= 21_000_000 * COIN


def test_wasabi1_round() -> None:
    tx = wasabi1_round()
    match = Wasabi1().detect(tx)
    assert match is not None and match.kind is CoinJoinKind.WASABI_1
    assert match.evidence["denomination"] == 9_994_502
    assert match.evidence["equal_outputs"] == 40
    assert match.evidence["levels"] == (9_994_502, 2 * 9_994_502, 4 * 9_994_502)
    assert match.evidence["coordinator_output"] == 87
    assert CoinJoinDetector().detect(tx) == match


def test_wasabi1_is_bech32_only() -> None:
    tx = wasabi1_round()
    legacy = tuple(
        OutputView(o.n, o.addr_id, o.value, P2PKH, o.address_first_tx_id) for o in tx.outputs
    )
    assert Wasabi1().detect(make_tx(tx.inputs, legacy)) is None


def test_joinmarket_round() -> None:
    for changes in (3, 4):  # the taker swept (n - 1 change outputs) or kept change (n)
        match = JoinMarket().detect(joinmarket_round(changes))
        assert match is not None and match.kind is CoinJoinKind.JOINMARKET
        assert match.evidence["denomination"] == 12_345_678
        assert match.evidence["equal_outputs"] == 4
    assert CoinJoinDetector().detect(joinmarket_round()) is not None


def test_joinmarket_shape_is_strict() -> None:
    assert JoinMarket().detect(joinmarket_round(2)) is None  # too few change outputs
    tx = joinmarket_round()
    one_payer = tuple(InputView(42, i.value, i.script_type, RBF) for i in tx.inputs)
    assert JoinMarket().detect(make_tx(one_payer, tx.outputs)) is None
    reused = (OutputView(0, 77, 12_345_678, P2WPKH, 7), *tx.outputs[1:])
    assert JoinMarket().detect(make_tx(tx.inputs, reused)) is None
    round_change = (*tx.outputs[:4], OutputView(4, 78, 7_600_000, P2WPKH, TX_ID), *tx.outputs[5:])
    assert JoinMarket().detect(make_tx(tx.inputs, round_change)) is None
    mixed_types = joinmarket_round(nested=P2SH)
    assert JoinMarket().detect(mixed_types) is None
    assert JoinMarket(single_script_type=False).detect(mixed_types) is not None


def test_equal_output_mix() -> None:
    detector = EqualOutputMix()
    assert detector.detect(whirlpool_round()) is not None
    assert detector.detect(joinmarket_round()) is None  # four equal outputs: under k = 5
    assert EqualOutputMix(min_equal_outputs=4).detect(joinmarket_round()) is not None


def test_whirlpool_tx0_is_not_multi_party() -> None:
    match = WhirlpoolTx0().detect(tx0())
    assert match is not None and match.kind is CoinJoinKind.WHIRLPOOL_TX0
    assert not match.multi_party
    assert match.evidence["premix_outputs"] == 7
    assert match.evidence["coordinator_output"] == 7
    assert WhirlpoolTx0().detect(tx0(fee=10_000)) is None  # fee far below the pool's


def test_tx0_outputs_links_the_premix_outputs_and_the_change_to_the_tx0s_owner() -> None:
    """The detector's own match is the context: every output but the coordinator's and the
    OP_RETURN is linked to the first input address; nothing without a Tx0 verdict."""
    tx = tx0()
    anchor = tx.inputs[0].addr_id
    assert anchor is not None
    ctx = TxContext.of(tx, CoinJoinDetector())
    assert ctx.coinjoin is not None and ctx.coinjoin.kind is CoinJoinKind.WHIRLPOOL_TX0
    links = Tx0Outputs().links(tx, ctx)
    premix = [o.addr_id for o in tx.outputs[:7]]
    change = tx.outputs[9].addr_id
    assert [(link.a, link.b, link.tx_id, link.heuristic) for link in links] == [
        (anchor, b, tx.tx_id, "tx0_outputs") for b in [*premix, change]]
    assert tx.outputs[7].addr_id not in {link.b for link in links}  # the coordinator's fee
    assert [link.b for link in Tx0Outputs(change=False).links(tx, ctx)] == premix
    assert Tx0Outputs().links(tx, TxContext()) == []  # no CoinJoin detection: no Tx0 known
    mix = TxContext.of(whirlpool_round(), CoinJoinDetector())
    assert mix.coinjoin is not None and Tx0Outputs().links(whirlpool_round(), mix) == []
    assert Tx0Outputs().links(exchange_batch(), TxContext.of(exchange_batch(),
                                                              CoinJoinDetector())) == []


@pytest.mark.parametrize("x2", [False, True])
@pytest.mark.parametrize("three_outputs", [False, True])
def test_stonewall_solo_and_x2_look_alike(x2: bool, three_outputs: bool) -> None:
    tx = stonewall(x2=x2, three_outputs=three_outputs)
    match = CoinJoinDetector().detect(tx)
    assert match is not None and match.kind is CoinJoinKind.STONEWALL and match.multi_party
    assert match.detector == "stonewall"
    assert match.evidence["amount"] == 2_345_678
    assert match.evidence["outputs"] == (3 if three_outputs else 4)
    # each set pays exactly half of the (even) fee, as Samourai's wallet builds it; with a
    # change dropped as dust its set paid more
    assert match.evidence["fee_halves"] is (not three_outputs)
    assert [m.kind for m in CoinJoinDetector().detect_all(tx)] == [CoinJoinKind.STONEWALL]


def test_stonewall_from_two_equal_sets_has_two_equal_changes() -> None:
    # two sets of equal size and an even fee give equal changes: two pairs of equal outputs,
    # either of which may be the payment
    w = Wallets()
    outputs = w.outputs([(10_277_364, P2WPKH, True)] * 2 + [(39_724_610, P2WPKH, True)] * 2)
    inputs = [w.inp(50_003_284), w.inp(50_003_284)]
    match = Stonewall().detect(make_tx(inputs, outputs))
    assert match is not None and match.evidence["amount"] == 39_724_610
    assert match.evidence["first_set_covers"] == 39_724_610 + 10_277_364
    inputs = [w.inp(25_000_000), w.inp(25_000_000)]
    outputs = w.outputs([(12_000_000, P2WPKH, True)] * 2 + [(12_999_000, P2WPKH, True)])
    assert Stonewall().detect(make_tx(inputs, outputs)) is not None  # one pair, one change
    # two pairs whose inputs do not split: no match
    lopsided = [w.inp(70_000_000), w.inp(30_006_568)]
    assert Stonewall().detect(make_tx(lopsided, w.outputs(
        [(10_277_364, P2WPKH, True)] * 2 + [(39_724_610, P2WPKH, True)] * 2))) is None


def test_stonewall_inputs_must_split_into_the_two_payments() -> None:
    # the same outputs, but no set of inputs pays one equal output and one change within the fee
    tx = stonewall()
    moved = (InputView(tx.inputs[0].addr_id, tx.inputs[0].value + 300_000, P2WPKH, RBF),
             InputView(tx.inputs[1].addr_id, tx.inputs[1].value - 300_000, P2WPKH, RBF),
             *tx.inputs[2:])
    assert Stonewall().detect(tx) is not None
    assert Stonewall().detect(make_tx(moved, tx.outputs)) is None
    # a batch with two equal withdrawals matches only when its coins happen to split so
    assert Stonewall().detect(two_equal_withdrawals(11_000_000)) is None
    batch = Stonewall().detect(two_equal_withdrawals(5_000_000 + 1_234_567 + 1_000))
    assert batch is not None and batch.evidence["fee_halves"] is False  # 1,000 of 5,000


def test_stonewall_rejects_near_misses() -> None:
    tx = stonewall()
    w = Wallets()
    one_address = tuple(InputView(77, i.value, P2WPKH, RBF) for i in tx.inputs)
    assert Stonewall().detect(make_tx(one_address, tx.outputs)) is None
    amount = tx.outputs[3].value  # BIP 69: the changes come first, then the equal pair
    three_equal = (OutputView(0, w.addr(), amount, P2WPKH, TX_ID), *tx.outputs[1:])
    assert Stonewall().detect(make_tx(tx.inputs, three_equal)) is None
    op_return = (*tx.outputs, OutputView(4, None, 0, NULLDATA, None))
    assert Stonewall().detect(make_tx(tx.inputs, op_return)) is None
    back = tuple(dataclasses.replace(o, addr_id=tx.inputs[0].addr_id) if o.n == 3 else o
                 for o in tx.outputs)
    assert Stonewall().detect(make_tx(tx.inputs, back)) is None  # pays an input's address
    assert Stonewall().detect(make_tx(tx.inputs[:1], tx.outputs)) is None  # one input
    small = stonewall(amount=9_000)
    assert Stonewall().detect(small) is None
    assert Stonewall(min_value=5_000).detect(small) is not None
    assert Stonewall(max_inputs=3).detect(tx) is None
    assert Stonewall(max_subset_sums=2).detect(tx) is None  # gives up rather than guess


def test_multi_input_skips_a_stonewall_unless_told_it_is_solo() -> None:
    tx = stonewall()
    ctx = TxContext.of(tx, CoinJoinDetector())
    assert ctx.multi_party
    assert MultiInput().links(tx, ctx) == []
    assert len(MultiInput(stonewall_one_owner=True).links(tx, ctx)) == 3
    mix = TxContext.of(whirlpool_round(), CoinJoinDetector())
    assert MultiInput(stonewall_one_owner=True).links(whirlpool_round(), mix) == []


def test_composite_enables_a_subset() -> None:
    only_jm = CoinJoinDetector.enabled(CoinJoinKind.JOINMARKET)
    assert [d.name for d in only_jm.detectors] == ["joinmarket"]
    assert only_jm.detect(whirlpool_round()) is None
    kinds = {m.kind for m in CoinJoinDetector().detect_all(whirlpool_round())}
    assert kinds == {CoinJoinKind.WHIRLPOOL, CoinJoinKind.EQUAL_OUTPUT}


def test_composite_describes_itself_for_run_records() -> None:
    described = CoinJoinDetector().describe()
    assert json.loads(json.dumps(described)) == described
    params = described["params"]
    assert isinstance(params, dict)
    assert [d["name"] for d in params["detectors"]] == [
        "whirlpool", "wasabi2", "wasabi1", "joinmarket", "equal_output", "whirlpool_tx0",
        "stonewall",
    ]
    assert Wasabi2().params()["min_inputs"] == 50


# --- ordinary payments never match ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_ordinary_payments_never_match(name: str) -> None:
    assert CoinJoinDetector().detect_all(ORDINARY[name]) == []


@pytest.mark.parametrize("seed", range(20))
def test_exchange_batches_never_match(seed: int) -> None:
    for reused in (0.0, 0.5):
        for n_out in (8, 30, 200):
            tx = exchange_batch(seed, reused_share=reused, n_out=n_out)
            assert CoinJoinDetector().detect_all(tx) == []


def test_coinbase_never_matches() -> None:
    tx = whirlpool_round()
    assert CoinJoinDetector().detect_all(make_tx((), tx.outputs, coinbase=True)) == []


values = st.integers(min_value=0, max_value=21_000_000 * COIN)
script_types = st.sampled_from([P2WPKH, P2TR, P2PKH, P2SH])


@st.composite
def tx_views(draw: st.DrawFn, max_outputs: int, one_payer: bool = False) -> TxView:
    n_in = draw(st.integers(1, 80))
    pool = draw(st.lists(values.filter(lambda v: v > 0), min_size=1, max_size=4))
    addr = st.just(1) if one_payer else st.integers(1, 10_000)
    inputs = [
        InputView(draw(addr), draw(st.sampled_from(pool)), draw(script_types), RBF)
        for _ in range(n_in)
    ]
    n_out = draw(st.integers(0, max_outputs))
    outputs = [
        OutputView(
            n, draw(st.integers(10_001, 20_000)), draw(st.sampled_from(pool) | values),
            draw(script_types), draw(st.sampled_from([TX_ID, 7])),
        )
        for n in range(n_out)
    ]
    return make_tx(inputs, outputs)


@given(tx_views(max_outputs=2))
def test_never_flags_fewer_than_three_outputs(tx: TxView) -> None:
    assert CoinJoinDetector().detect_all(tx) == []


@settings(max_examples=200)
@given(tx_views(max_outputs=60, one_payer=True))
def test_one_payer_is_never_a_multi_party_coinjoin(tx: TxView) -> None:
    assert all(not m.multi_party for m in CoinJoinDetector().detect_all(tx))


# --- real data --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def early_mainnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    store = Store(tmp_path_factory.mktemp("store")).chain(get_chain("bitcoin", "mainnet"))
    ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
    yield store
    store.close()


def test_no_coinjoin_in_early_mainnet(early_mainnet: ChainStore) -> None:
    views = list(iter_tx_views(early_mainnet.con, 0, 10**12))
    assert len(views) == 446
    detector = CoinJoinDetector()
    assert [m for v in views for m in detector.detect_all(v)] == []
