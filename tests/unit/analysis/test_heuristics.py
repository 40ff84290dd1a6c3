"""Clustering heuristics: common-input ownership, each change heuristic's positive and negative
cases, the combining policies, and the real self-change of block 170."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cointrail import get_chain
from cointrail.analysis.clustering.heuristics import (
    AddressTypeMatch,
    ChangeLinker,
    ChangePolicy,
    ClusterLink,
    MultiInput,
    OneTimeChange,
    OptimalChange,
    RoundPaymentAmount,
    SelfChange,
    TxContext,
    WalletFingerprint,
    describe_run,
    iter_links,
)
from cointrail.analysis.patterns import CoinJoinDetector, CoinJoinKind, CoinJoinMatch
from cointrail.analysis.txview import (
    InputView,
    LockTimeStyle,
    OutputView,
    SequenceStyle,
    TxStyle,
    TxView,
    iter_tx_views,
    tx_views_spent_until,
)
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.sigstyle import SIG_ECDSA, SIG_HIGH_R
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import InputError
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles

P2WPKH = ScriptType.WITNESS_V0_KEYHASH
P2TR = ScriptType.WITNESS_V1_TAPROOT
P2PKH = ScriptType.PUBKEYHASH
NULLDATA = ScriptType.NULLDATA
RBF = 0xFFFFFFFD
TX_ID = 9_000
HEIGHT = 800_000
NO_CTX = TxContext()
PAYER, PAYER2, PAYEE, CHANGE = 1, 2, 3, 4

CORE = TxStyle(2, LockTimeStyle.TIP_HEIGHT, SequenceStyle.RBF, P2WPKH)
OTHER_WALLET = TxStyle(1, LockTimeStyle.ZERO, SequenceStyle.FINAL, P2PKH)


def inp(addr: int | None, value: int, st: ScriptType = P2WPKH) -> InputView:
    return InputView(addr, value, st, RBF)


def out(
    n: int,
    addr: int | None,
    value: int,
    st: ScriptType = P2WPKH,
    *,
    fresh: bool = True,
    spent_by: TxStyle | None = None,
) -> OutputView:
    return OutputView(n, addr, value, st, (TX_ID if fresh else 100) if addr else None, spent_by)


def make_tx(
    inputs: Sequence[InputView], outputs: Sequence[OutputView], *, coinbase: bool = False
) -> TxView:
    return TxView(TX_ID, HEIGHT, 2, HEIGHT - 1, tuple(inputs), tuple(outputs), coinbase)


def payment(**changes: Any) -> TxView:
    """A typical wallet payment: two P2WPKH coins pay 0.05 BTC to a reused P2PKH address and send
    1,234,567 sat change to a fresh P2WPKH address; each output later spent by its owner."""
    outputs = [
        out(0, PAYEE, 5_000_000, P2PKH, fresh=False, spent_by=OTHER_WALLET),
        out(1, CHANGE, 1_234_567, P2WPKH, spent_by=CORE),
    ]
    inputs = [inp(PAYER, 3_000_000), inp(PAYER2, 3_300_000)]
    return replace(make_tx(inputs, outputs), **changes)


# --- common-input ownership -------------------------------------------------------------------


def test_multi_input_links_inputs_to_the_first() -> None:
    tx = make_tx([inp(7, 1), inp(8, 1), inp(7, 1), inp(None, 1), inp(9, 1)], [out(0, 3, 1)])
    assert MultiInput().links(tx, NO_CTX) == [
        ClusterLink(7, 8, TX_ID, "multi_input"),
        ClusterLink(7, 9, TX_ID, "multi_input"),
    ]


def test_multi_input_skips_coinbase_and_single_address() -> None:
    assert MultiInput().links(make_tx([], [out(0, 3, 50)], coinbase=True), NO_CTX) == []
    assert MultiInput().links(make_tx([inp(7, 1), inp(7, 2)], [out(0, 3, 2)]), NO_CTX) == []
    assert MultiInput().links(make_tx([inp(None, 1), inp(None, 2)], [out(0, 3, 2)]), NO_CTX) == []


def test_multi_input_respects_the_coinjoin_verdict() -> None:
    tx = make_tx([inp(7, 1), inp(8, 1)], [out(0, 3, 1)])
    mix = TxContext(CoinJoinMatch(CoinJoinKind.WHIRLPOOL, "whirlpool", "1"))
    tx0 = TxContext(CoinJoinMatch(CoinJoinKind.WHIRLPOOL_TX0, "whirlpool_tx0", "1", {}, False))
    assert MultiInput().links(tx, mix) == []
    assert len(MultiInput().links(tx, tx0)) == 1  # a Tx0 has one owner
    assert len(MultiInput(skip_coinjoin=False).links(tx, mix)) == 1


def test_a_transaction_declared_multi_owner_gives_no_multi_input_nor_change_link() -> None:
    """An analyst's declaration (a PayJoin, a missed CoinJoin) holds whatever the detector says
    and whether or not CoinJoins are skipped."""
    tx = make_tx([inp(7, 1), inp(8, 1)], [out(0, 3, 1)])
    for verdict in (None, CoinJoinMatch(CoinJoinKind.WHIRLPOOL_TX0, "whirlpool_tx0", "1", {},
                                        False)):
        declared = TxContext(verdict, multi_owner=True)
        assert declared.multi_party
        assert MultiInput().links(tx, declared) == []
        assert MultiInput(skip_coinjoin=False).links(tx, declared) == []
    assert not NO_CTX.multi_party
    typical, linker = payment(), ChangeLinker()
    assert linker.links_of(typical, linker.decide(typical, NO_CTX))  # linked when undeclared
    decision = linker.decide(typical, TxContext(multi_owner=True))
    assert (decision.index, decision.reason) == (None, "declared multi-owner")
    assert linker.links_of(typical, decision) == []


@given(st.lists(st.one_of(st.none(), st.integers(0, 30)), min_size=1, max_size=40))
def test_multi_input_links_form_a_star(addrs: list[int | None]) -> None:
    tx = make_tx([inp(a, 1) for a in addrs], [out(0, 99, 1)])
    links = MultiInput().links(tx, NO_CTX)
    present = [a for a in addrs if a is not None]
    if not present:
        assert links == []
        return
    assert {link.a for link in links} <= {present[0]}
    assert sorted(link.b for link in links) == sorted(set(present) - {present[0]})
    assert all(link.a != link.b and link.tx_id == TX_ID for link in links)


# --- each change heuristic --------------------------------------------------------------------


def test_self_change() -> None:
    tx = make_tx([inp(PAYER, 5_000)], [out(0, PAYEE, 3_000), out(1, PAYER, 1_900, fresh=False)])
    assert SelfChange().change_index(tx) == 1
    both = make_tx([inp(PAYER, 5_000), inp(PAYER2, 1)], [out(0, PAYER2, 3), out(1, PAYER, 1)])
    assert SelfChange().change_index(both) is None
    assert SelfChange().change_index(payment()) is None
    assert SelfChange().change_index(make_tx([inp(PAYER, 5)], [out(0, PAYER, 4)])) is None


def test_address_type_match() -> None:
    assert AddressTypeMatch().change_index(payment()) == 1
    same = make_tx([inp(PAYER, 9)], [out(0, PAYEE, 5), out(1, CHANGE, 3)])
    assert AddressTypeMatch().change_index(same) is None
    mixed = make_tx(
        [inp(PAYER, 9), inp(PAYER2, 9, P2PKH)], [out(0, PAYEE, 5, P2PKH), out(1, CHANGE, 3)]
    )
    assert AddressTypeMatch().change_index(mixed) is None


def test_one_time_change() -> None:
    assert OneTimeChange().change_index(payment()) == 1
    both_fresh = make_tx([inp(PAYER, 9)], [out(0, PAYEE, 5), out(1, CHANGE, 3)])
    assert OneTimeChange().change_index(both_fresh) is None
    unknown = make_tx([inp(PAYER, 9)], [out(0, None, 5), out(1, CHANGE, 3)])
    assert OneTimeChange().change_index(unknown) is None
    duplicate = make_tx([inp(PAYER, 9)], [out(0, CHANGE, 5), out(1, CHANGE, 3)])
    assert OneTimeChange().change_index(duplicate) is None


def test_one_time_change_never_calls_the_payment_change_beside_self_change() -> None:
    # the change goes back to the (reused) input address; the payee's address is fresh
    tx = make_tx([inp(PAYER, 9)], [out(0, PAYEE, 5), out(1, PAYER, 3, fresh=False)])
    assert OneTimeChange().change_index(tx) is None


def test_round_payment_amount() -> None:
    assert RoundPaymentAmount().change_index(payment()) == 1
    both_round = make_tx([inp(PAYER, 9)], [out(0, PAYEE, 5_000_000), out(1, CHANGE, 200_000)])
    assert RoundPaymentAmount().change_index(both_round) is None
    none_round = make_tx([inp(PAYER, 9)], [out(0, PAYEE, 5_000_001), out(1, CHANGE, 3)])
    assert RoundPaymentAmount().change_index(none_round) is None
    assert RoundPaymentAmount(precision_sats=1_000_000).change_index(both_round) == 1
    with pytest.raises(InputError):
        RoundPaymentAmount(precision_sats=0)


def test_optimal_change() -> None:
    assert OptimalChange().change_index(payment()) == 1  # 1,234,567 < both inputs
    wasteful = make_tx(
        [inp(PAYER, 3_000_000), inp(PAYER2, 2_500_000)],
        [out(0, PAYEE, 2_900_000), out(1, CHANGE, 2_590_000)],
    )
    assert OptimalChange().change_index(wasteful) is None
    one_input = make_tx([inp(PAYER, 9_000)], [out(0, PAYEE, 5_000), out(1, CHANGE, 3_000)])
    assert OptimalChange().change_index(one_input) is None


def test_wallet_fingerprint() -> None:
    # the payment's own style: v2, lock-time at the tip, RBF, P2WPKH inputs — CORE
    assert payment().style == CORE
    assert WalletFingerprint().change_index(payment()) == 1
    alike = make_tx(
        [inp(PAYER, 9)], [out(0, PAYEE, 5, spent_by=CORE), out(1, CHANGE, 3, spent_by=CORE)]
    )
    assert WalletFingerprint().change_index(alike) is None
    unspent = make_tx(
        [inp(PAYER, 9)], [out(0, PAYEE, 5), out(1, CHANGE, 3, spent_by=CORE)]
    )
    assert WalletFingerprint().change_index(unspent) is None
    assert WalletFingerprint(require_all_spent=False).change_index(unspent) == 1


def test_wallet_fingerprint_does_not_compare_the_spenders_script_types() -> None:
    """A spender spends the script type of the output it spends, so comparing script types
    restates the outputs' types (version 1's two wrong-vote cases, both kept here)."""
    p2sh = ScriptType.SCRIPTHASH
    payer_style = TxStyle(2, LockTimeStyle.TIP_HEIGHT, SequenceStyle.RBF, p2sh)
    payee_style = payer_style  # the payee: same software and settings, a P2SH coin
    change_style = replace(payer_style, input_script_type=P2WPKH)  # the bech32 change, spent
    # a P2SH-P2WPKH wallet pays a P2SH payee; its change is bech32
    tx = make_tx([inp(PAYER, 9_000_000, p2sh)],
                 [out(0, PAYEE, 4_000_000, p2sh, spent_by=payee_style),
                  out(1, CHANGE, 4_987_654, P2WPKH, spent_by=change_style)])
    assert tx.style == payer_style
    assert WalletFingerprint(script_type=True).change_index(tx) == 0  # version 1: the payee
    assert WalletFingerprint().change_index(tx) is None  # both spenders carry the settings
    # the change spent together with coins of other types (a mixed-type spender)
    mixed = replace(payer_style, input_script_type=None)
    tx2 = make_tx([inp(PAYER, 9_000_000, p2sh)],
                  [out(0, PAYEE, 4_000_000, p2sh, spent_by=payee_style),
                   out(1, CHANGE, 4_987_654, p2sh, spent_by=mixed)])
    assert WalletFingerprint(script_type=True).change_index(tx2) == 0
    assert WalletFingerprint().change_index(tx2) is None
    # settings still tell wallets apart: the payee without RBF
    tx3 = make_tx([inp(PAYER, 9_000_000, p2sh)],
                  [out(0, PAYEE, 4_000_000, p2sh,
                       spent_by=replace(payee_style, sequence=SequenceStyle.FINAL)),
                   out(1, CHANGE, 4_987_654, P2WPKH, spent_by=mixed)])
    assert WalletFingerprint().change_index(tx3) == 1
    assert WalletFingerprint.version == "3"


def signed_input(addr: int, value: int, flags: int | None) -> InputView:
    return InputView(addr, value, P2WPKH, RBF, sig_flags=flags)


def test_wallet_fingerprint_tells_a_grinding_signer_from_one_that_does_not() -> None:
    """Version 3 with `signatures`: a high-R signature and `min_low_r` or more low-R inputs
    are two signers; too few low-R inputs, or no signature data, say nothing (version 2's
    decision). Off by default (docs/accuracy.md measured it)."""
    sig = WalletFingerprint(signatures=True, min_low_r=2)
    grinder_2 = replace(CORE, low_r=2)  # two inputs, both low R
    grinder_1 = replace(CORE, low_r=1)
    hardware = replace(CORE, high_r=True, low_r=1)  # same settings, a signer that does not grind
    # the payer grinds (two low-R inputs); the payee's signer does not
    tx = make_tx([signed_input(PAYER, 5, SIG_ECDSA), signed_input(PAYER2, 5, SIG_ECDSA)],
                 [out(0, PAYEE, 6, spent_by=hardware), out(1, CHANGE, 3, spent_by=grinder_1)])
    assert tx.style == grinder_2
    assert sig.change_index(tx) == 1
    assert WalletFingerprint().change_index(tx) is None  # the default: settings alike
    assert WalletFingerprint(signatures=True).change_index(tx) is None  # min_low_r 4 by default
    # the other way round: the payer's signer does not grind, the payee's does (two inputs)
    tx2 = make_tx([signed_input(PAYER, 9, SIG_ECDSA | SIG_HIGH_R)],
                  [out(0, PAYEE, 6, spent_by=grinder_2), out(1, CHANGE, 2, spent_by=grinder_1)])
    assert tx2.style == replace(CORE, high_r=True)
    assert sig.change_index(tx2) == 1
    # one low-R input is no evidence at min_low_r = 2; at 1 it is
    tx3 = make_tx([signed_input(PAYER, 9, SIG_ECDSA)],
                  [out(0, PAYEE, 6, spent_by=hardware), out(1, CHANGE, 2, spent_by=grinder_1)])
    assert sig.change_index(tx3) is None
    assert replace(sig, min_low_r=1).change_index(tx3) == 1
    # the known false positive: a non-grinding payer whose change is spent by two inputs that
    # both came out low-R; the payee's spender (a non-grinder too) then "matches" alone
    tx5 = make_tx([signed_input(PAYER, 9, SIG_ECDSA | SIG_HIGH_R)],
                  [out(0, PAYEE, 6, spent_by=replace(CORE, high_r=True)),
                   out(1, CHANGE, 2, spent_by=grinder_2)])
    assert sig.change_index(tx5) == 0  # wrong: the payment
    assert WalletFingerprint().change_index(tx5) is None
    # no signature data (a store ingested before schema 3): version 2's decision
    tx4 = make_tx([signed_input(PAYER, 5, None), signed_input(PAYER2, 5, None)],
                  [out(0, PAYEE, 6, spent_by=hardware), out(1, CHANGE, 3, spent_by=CORE)])
    assert tx4.style == CORE
    assert sig.change_index(tx4) is None
    # both high R: the same kind of signer, no conflict
    assert not sig.different_signers(hardware, replace(CORE, high_r=True))
    with pytest.raises(InputError, match="min_low_r"):
        WalletFingerprint(min_low_r=0)
    # ties_only: the signature style decides only between spenders that all match on
    # settings, and never takes away a lone match
    ties = replace(sig, ties_only=True)
    assert ties.change_index(tx) == 1  # a tie of two settings matches, broken
    assert ties.change_index(tx5) == 0  # the known false positive breaks ties too
    lone = make_tx([signed_input(PAYER, 9, SIG_ECDSA | SIG_HIGH_R)],
                   [out(0, PAYEE, 6, spent_by=OTHER_WALLET),
                    out(1, CHANGE, 2, spent_by=grinder_2)])
    assert sig.change_index(lone) is None  # the lone settings match taken away
    assert ties.change_index(lone) == 1  # kept
    assert WalletFingerprint().describe()["params"] == {
        "require_all_spent": True, "script_type": False, "signatures": False, "min_low_r": 4,
        "ties_only": False}


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(1, 6)),
            st.integers(0, 10**9),
            st.sampled_from([P2WPKH, P2TR, P2PKH, NULLDATA]),
            st.booleans(),
        ),
        max_size=6,
    ),
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 10**9)), max_size=4),
)
def test_change_heuristics_name_a_spendable_output_or_abstain(
    outs: list[tuple[int | None, int, ScriptType, bool]], ins: list[tuple[int, int]]
) -> None:
    outputs = [out(n, a, v, t, fresh=f) for n, (a, v, t, f) in enumerate(outs)]
    tx = make_tx([inp(a, v) for a, v in ins], outputs)
    for heuristic in ChangeLinker().heuristics:
        index = heuristic.change_index(tx)
        assert index is None or tx.outputs[index].script_type is not NULLDATA


# --- the combined linker ----------------------------------------------------------------------


def test_linker_links_change_when_votes_agree() -> None:
    linker = ChangeLinker()
    decision = linker.decide(payment(), NO_CTX)
    assert decision.index == 1 and decision.reason == "linked"
    assert decision.votes == {
        "self_change": None, "address_type": 1, "one_time_change": 1, "round_amount": 1,
        "optimal_change": 1, "wallet_fingerprint": 1,
    }
    assert linker.links(payment(), NO_CTX) == [ClusterLink(PAYER, CHANGE, TX_ID, "change")]


def test_linker_refuses_contested_votes() -> None:
    # the payee's address is fresh and the change's reused: freshness points at the payment,
    # the script type and the round amount at the change — so nothing is linked
    tx = make_tx(
        [inp(PAYER, 3_000_000), inp(PAYER2, 3_300_000)],
        [out(0, PAYEE, 5_000_000, P2PKH), out(1, CHANGE, 1_234_567, fresh=False)],
    )
    linker = ChangeLinker(heuristics=(AddressTypeMatch(), OneTimeChange(), RoundPaymentAmount()))
    decision = linker.decide(tx, NO_CTX)
    assert decision.votes == {"address_type": 1, "one_time_change": 0, "round_amount": 1}
    assert decision.index is None and decision.reason == "votes disagree"
    assert linker.links(tx, NO_CTX) == []


def lone_vote_txs() -> dict[str, TxView]:
    """Two-output payments on which exactly one change heuristic votes, for output 1."""
    odd = 4_876_543  # no amount here is round
    return {
        # one input (optimal change abstains), one type, the payee's address reused
        "one_time_change": make_tx([inp(PAYER, 10_000_000)],
                                   [out(0, PAYEE, 5_123_451, fresh=False), out(1, CHANGE, odd)]),
        # two inputs, both outputs fresh and of one type: only the change is below each input
        "optimal_change": make_tx([inp(PAYER, 6_000_000), inp(PAYER2, 7_000_000)],
                                  [out(0, PAYEE, 8_123_451), out(1, CHANGE, odd)]),
        # one input, both fresh: only the spenders tell
        "wallet_fingerprint": make_tx([inp(PAYER, 10_000_000)],
                                      [out(0, PAYEE, 5_123_451, spent_by=OTHER_WALLET),
                                       out(1, CHANGE, odd, spent_by=CORE)]),
        "address_type": make_tx([inp(PAYER, 10_000_000)],
                                [out(0, PAYEE, 5_123_451, P2PKH), out(1, CHANGE, odd)]),
        "round_amount": make_tx([inp(PAYER, 10_000_000)],
                                [out(0, PAYEE, 5_000_000), out(1, CHANGE, odd)]),
    }


def test_linker_follows_a_lone_vote_of_a_decisive_heuristic_only() -> None:
    linker = ChangeLinker()
    assert linker.version == "4"
    v3 = ChangeLinker(decisive=("self_change",))
    for name, tx in lone_vote_txs().items():
        decision = linker.decide(tx, NO_CTX)
        assert {k: v for k, v in decision.votes.items() if v is not None} == {name: 1}, name
        if name in ("address_type", "round_amount"):  # lone votes of these were often wrong
            assert decision.index is None and decision.reason == "1 votes, fewer than 2"
        else:
            assert decision.index == 1 and decision.reason == "linked", name
            assert linker.links(tx, NO_CTX) == [ClusterLink(PAYER, CHANGE, TX_ID, "change")]
        assert v3.decide(tx, NO_CTX).index is None, name  # version 3 needed two votes
    # a decisive vote that another heuristic contradicts links nothing
    contested = make_tx([inp(PAYER, 10_000_000)],
                        [out(0, PAYEE, 5_123_451, fresh=False), out(1, CHANGE, 4_876_543, P2PKH)])
    decision = linker.decide(contested, NO_CTX)
    assert {k: v for k, v in decision.votes.items() if v is not None} == {
        "one_time_change": 1, "address_type": 0}
    assert decision.index is None and decision.reason == "votes disagree"


def test_linker_policies() -> None:
    three = (AddressTypeMatch(), RoundPaymentAmount(), SelfChange())
    tx = payment()  # address_type and round_amount vote 1, self_change abstains
    assert ChangeLinker(heuristics=three).decide(tx, NO_CTX).index == 1
    assert ChangeLinker(heuristics=three, min_votes=3).decide(tx, NO_CTX).index is None
    unanimous = ChangeLinker(heuristics=three, policy=ChangePolicy.UNANIMOUS)
    assert unanimous.decide(tx, NO_CTX).reason == "not every heuristic voted"
    assert ChangeLinker(heuristics=three[:2], policy=ChangePolicy.UNANIMOUS).decide(
        tx, NO_CTX
    ).index == 1
    # two say output 1, one says output 0: only the majority policy links
    split = (AddressTypeMatch(), RoundPaymentAmount(), OptimalChange())
    tx2 = make_tx(
        [inp(PAYER, 600_000), inp(PAYER2, 700_000)],
        [out(0, PAYEE, 500_000, P2PKH, fresh=False), out(1, CHANGE, 734_567)],
    )
    assert [h.change_index(tx2) for h in split] == [1, 1, 0]
    assert ChangeLinker(heuristics=split).decide(tx2, NO_CTX).index is None
    majority = ChangeLinker(heuristics=split, policy=ChangePolicy.MAJORITY)
    assert majority.decide(tx2, NO_CTX).index == 1


def test_linker_skips_coinbase_coinjoin_and_many_outputs() -> None:
    linker = ChangeLinker()
    mix = TxContext(CoinJoinMatch(CoinJoinKind.JOINMARKET, "joinmarket", "1"))
    assert linker.links(payment(), mix) == []
    assert linker.decide(payment(), mix).reason.startswith("coinjoin")
    assert linker.links(payment(is_coinbase=True), NO_CTX) == []
    three = payment(outputs=(*payment().outputs, out(2, 77, 9_000_000, P2PKH, fresh=False)))
    assert linker.links(three, NO_CTX) == []
    assert ChangeLinker(max_outputs=3).decide(three, NO_CTX).index == 1
    op_return = payment(outputs=(*payment().outputs, OutputView(2, None, 0, NULLDATA, None)))
    assert linker.decide(op_return, NO_CTX).index == 1  # OP_RETURN is not a payment


def test_linker_reused_change_address_only_when_allowed() -> None:
    reused = payment(
        outputs=(payment().outputs[0], out(1, CHANGE, 1_234_567, fresh=False, spent_by=CORE))
    )
    linker = ChangeLinker(heuristics=(AddressTypeMatch(), RoundPaymentAmount()))
    assert linker.decide(reused, NO_CTX).reason == "change address is not fresh"
    relaxed = ChangeLinker(
        heuristics=(AddressTypeMatch(), RoundPaymentAmount()), require_fresh_change=False
    )
    assert relaxed.links(reused, NO_CTX) == [ClusterLink(PAYER, CHANGE, TX_ID, "change")]


def test_linker_self_change_links_nothing_new() -> None:
    tx = make_tx([inp(PAYER, 5_000)], [out(0, PAYEE, 3_000), out(1, PAYER, 1_900, fresh=False)])
    decision = ChangeLinker().decide(tx, NO_CTX)
    assert decision.index == 1  # the change is known; its address is the payer's own
    assert ChangeLinker().links(tx, NO_CTX) == []


def test_linker_validates_parameters() -> None:
    with pytest.raises(InputError):
        ChangeLinker(heuristics=())
    with pytest.raises(InputError):
        ChangeLinker(max_outputs=1)


def test_run_description_is_json() -> None:
    run = describe_run([MultiInput(), ChangeLinker()], CoinJoinDetector())
    assert json.loads(json.dumps(run)) == run
    heuristics = run["heuristics"]
    assert isinstance(heuristics, list)
    assert heuristics[0] == {"name": "multi_input", "version": "1",
                             "params": {"skip_coinjoin": True, "stonewall_one_owner": False}}
    assert heuristics[1]["params"]["policy"] == "uncontested"
    assert [h["name"] for h in heuristics[1]["params"]["heuristics"]] == [
        "self_change", "address_type", "one_time_change", "round_amount", "optimal_change",
        "wallet_fingerprint",
    ]


# --- real data --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def early_mainnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    store = Store(tmp_path_factory.mktemp("store")).chain(get_chain("bitcoin", "mainnet"))
    ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
    yield store
    store.close()


FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def test_block_170_is_self_change(early_mainnet: ChainStore) -> None:
    """Satoshi pays Hal Finney 10 BTC and sends 40 BTC back to the spent key: self-change."""
    (tx_id,) = early_mainnet.query(
        "SELECT tx_id FROM txs WHERE txid = ?", [bytes.fromhex(FIRST_TRANSFER)[::-1]]
    )[0]
    (tx,) = iter_tx_views(early_mainnet.con, tx_id, tx_id, with_spenders=True)
    assert [o.value for o in tx.outputs] == [10 * 10**8, 40 * 10**8]
    assert SelfChange().change_index(tx) == 1
    assert OneTimeChange().change_index(tx) is None  # Hal's fresh address is the payment
    assert AddressTypeMatch().change_index(tx) is None  # every script is P2PK
    assert ChangeLinker().decide(tx, NO_CTX).index == 1
    assert ChangeLinker().links(tx, NO_CTX) == []


def test_early_mainnet_links(early_mainnet: ChainStore) -> None:
    views = list(iter_tx_views(early_mainnet.con, 0, 10**12, with_spenders=True))
    links = list(iter_links(views, [MultiInput(), ChangeLinker()], CoinJoinDetector()))
    by_id = {v.tx_id: v for v in views}
    for link in links:
        tx = by_id[link.tx_id]
        addrs = tx.input_addr_ids | {o.addr_id for o in tx.outputs}
        assert link.a != link.b and {link.a, link.b} <= addrs
    # blocks 0-438 hold only single-input spends, and their change is all self-change
    assert links == []


def test_views_see_spenders_only_up_to_their_bound(early_mainnet: ChainStore) -> None:
    """`tx_views_spent_until` (the engine's second look) fills `spent_by` only from spenders at
    or before each transaction's bound; the rest of the view is the plain one."""
    con = early_mainnet.con
    full = {v.tx_id: v for v in iter_tx_views(con, 0, 10**12, with_spenders=True)}
    spenders: dict[int, dict[int, int]] = {}
    for tx_id, n, spender in early_mainnet.query(
            "SELECT tx_id, n, spent_by_tx_id FROM outputs_spent"
            " WHERE spent_by_tx_id IS NOT NULL"):
        spenders.setdefault(int(tx_id), {})[int(n)] = int(spender)
    several = [t for t, s in spenders.items() if len(set(s.values())) > 1]
    assert len(spenders) == 5 and several  # one has its two outputs spent apart
    unspent = [0, 1, 2, 200]  # coinbases never spent up to block 438, whatever the bound
    assert not set(unspent) & set(spenders)
    for bound_of in (lambda t: t, lambda t: min(spenders[t].values()),
                     lambda t: max(spenders[t].values())):
        bounds = {t: bound_of(t) for t in spenders} | {t: 10**12 for t in unspent}
        views = tx_views_spent_until(con, bounds)
        assert [v.tx_id for v in views] == sorted(bounds)
        for view in views:
            whole = full[view.tx_id]
            assert replace(view, outputs=()) == replace(whole, outputs=())
            for out, ref in zip(view.outputs, whole.outputs, strict=True):
                seen = spenders.get(view.tx_id, {}).get(out.n, 10**13) <= bounds[view.tx_id]
                assert out == (ref if seen else replace(ref, spent_by=None))
    assert tx_views_spent_until(con, {}) == []
