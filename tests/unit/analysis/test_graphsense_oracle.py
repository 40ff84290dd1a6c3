"""Common-input ownership against GraphSense: its Spark test chain and its expected clusters.

GraphSense's transformation test (graphsense/graphsense-spark, ``TransformationTest``) clusters a
ten-transaction chain twice: ``computeAddressCluster(regInputs, addressIds, true)`` "without
coinjoin inputs" (reference ``address_cluster.json``) and with ``false``, "all inputs"
(``address_cluster_with_coinjoin.json``). Note the names: the file *with* ``coinjoin`` in its
name is the clustering that *keeps* the CoinJoin's inputs.

The views are built here straight from ``test_txs.json`` (views are store-independent): address
ids in order of first appearance, ``address_first_tx_id`` the first paying transaction, the
script type from the address form, and GraphSense's multi-address outputs (bare multisig, one
address per key) as outputs without an address, as cointrail attributes bare multisig
(docs/adr/0002-address-attribution.md). `MultiInput` and `UnionFind` then cluster them, and the
partitions (sets of member sets, ids aside) are compared. Every difference is asserted exactly
and explained in docs/clustering.md ("Comparison with GraphSense").
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cointrail import get_chain
from cointrail.analysis.clustering.heuristics import MultiInput, TxContext
from cointrail.analysis.clustering.unionfind import UnionFind
from cointrail.analysis.patterns.coinjoin import CoinJoinDetector, CoinJoinKind, CoinJoinMatch
from cointrail.analysis.txview import InputView, OutputView, TxView
from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.script import ScriptType
from tests.support.data import require_shared

ORACLE = "btc/clustering-oracle"
BTC = get_chain("bitcoin", "mainnet")
SEQUENCE_FINAL = 0xFFFFFFFF
#: GraphSense's pseudo-address for the input of a coinbase (id 0 in its reference data).
COINBASE_PSEUDO_ADDRESS = "coinbase"
#: GraphSense's CoinJoin flag as a context verdict (the flag carries no kind or evidence).
FLAGGED = TxContext(CoinJoinMatch(CoinJoinKind.EQUAL_OUTPUT, "graphsense-coinjoin-flag", "test"))

Partition = set[frozenset[str]]


# --- the data ---------------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def txs() -> list[dict[str, Any]]:
    rows = read_lines(require_shared(f"{ORACLE}/test_txs.json"))
    return sorted(rows, key=lambda tx: (tx["blockId"], tx["txId"]))


@pytest.fixture(scope="module")
def graphsense_ids() -> dict[str, int]:
    """address -> GraphSense addressId."""
    rows = read_lines(require_shared(f"{ORACLE}/reference/address_ids.json"))
    return {row["address"]: row["addressId"] for row in rows}


def graphsense_partition(reference: str, ids: dict[str, int]) -> Partition:
    rows = read_lines(require_shared(f"{ORACLE}/reference/{reference}"))
    by_id = {i: address for address, i in ids.items()}
    groups: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        groups[row["clusterId"]].add(by_id[row["addressId"]])
    return {frozenset(g) for g in groups.values()}


@pytest.fixture(scope="module")
def without_coinjoin_inputs(graphsense_ids: dict[str, int]) -> Partition:
    """GraphSense's clustering that leaves out the inputs of flagged CoinJoins."""
    return graphsense_partition("address_cluster.json", graphsense_ids)


@pytest.fixture(scope="module")
def all_inputs(graphsense_ids: dict[str, int]) -> Partition:
    """GraphSense's clustering over every transaction's inputs, CoinJoins included."""
    return graphsense_partition("address_cluster_with_coinjoin.json", graphsense_ids)


# --- the views --------------------------------------------------------------------------------


def script_type(addresses: list[str]) -> ScriptType:
    """The script type an address's form implies; several addresses: bare multisig."""
    if len(addresses) != 1:
        return ScriptType.MULTISIG
    return ScriptType(parse_address(addresses[0], BTC).script_type)


class Views:
    """TxViews of the JSON chain and the address id of every address text."""

    def __init__(self, txs: list[dict[str, Any]]) -> None:
        self.ids: dict[str, int] = {}
        self.first_tx: dict[int, int] = {}
        self.views: list[TxView] = []
        self.raw: dict[int, dict[str, Any]] = {}
        for tx in txs:
            self.raw[tx["txId"]] = tx
            inputs = tuple(
                InputView(self._id(i["address"], tx["txId"]), i["value"],
                          script_type(i["address"]), SEQUENCE_FINAL)
                for i in tx["inputs"]
            )
            outputs = []
            for n, o in enumerate(tx["outputs"]):
                addr = self._id(o["address"], tx["txId"])
                first = None if addr is None else self.first_tx[addr]
                outputs.append(OutputView(n, addr, o["value"], script_type(o["address"]), first))
            self.views.append(TxView(tx["txId"], tx["blockId"], 1, 0, inputs, tuple(outputs),
                                     bool(tx["coinbase"])))

    def _id(self, addresses: list[str], tx_id: int) -> int | None:
        if len(addresses) != 1:
            return None  # bare multisig: no address (ADR 0002)
        text = addresses[0]
        if text not in self.ids:
            self.ids[text] = len(self.ids)
            self.first_tx[self.ids[text]] = tx_id
        return self.ids[text]

    def cluster(
        self, heuristic: MultiInput, context: Callable[[TxView], TxContext]
    ) -> Partition:
        links = [link for tx in self.views for link in heuristic.links(tx, context(tx))]
        uf = UnionFind(len(self.ids))
        uf.union_batch(np.array([k.a for k in links], dtype=np.int64),
                       np.array([k.b for k in links], dtype=np.int64))
        roots = uf.find_all()
        texts = {i: t for t, i in self.ids.items()}
        groups: dict[int, set[str]] = defaultdict(set)
        for i, root in enumerate(roots.tolist()):
            groups[root].add(texts[i])
        return {frozenset(g) for g in groups.values()}


@pytest.fixture(scope="module")
def views(txs: list[dict[str, Any]]) -> Views:
    return Views(txs)


def flag_of(views: Views) -> Callable[[TxView], TxContext]:
    """GraphSense's ``coinjoin`` flag from the JSON as the context's verdict."""
    return lambda tx: FLAGGED if views.raw[tx.tx_id]["coinjoin"] else TxContext()


def detector_verdict(tx: TxView) -> TxContext:
    return TxContext.of(tx, CoinJoinDetector())


def differences(ours: Partition, theirs: Partition) -> tuple[list[set[str]], list[set[str]]]:
    """(member sets only GraphSense has, member sets only cointrail has), sorted for reading."""
    def order(sets: Partition) -> list[set[str]]:
        return sorted((set(s) for s in sets), key=sorted)
    return order(theirs - ours), order(ours - theirs)


# --- the facts the differences rest on --------------------------------------------------------

TX_COINJOIN = 5  # the one transaction the test chain flags as a CoinJoin
MULTISIG_KEYS = {"1E5UPs8bXBq7v7D2b7BYNU19ZviX2LMgEe", "1KLWBUTPXtRB7wvTYq9TYdeo93fAKvWPKs"}
CJ_INPUTS = {"1FDCgJ8m2xDyVmYuankk13XReVC2Zvs5cz", "1HxbaBMF2jXBVnagoHvaA6rLxmaYL8gb8T"}


def test_coinbase_pseudo_address_is_graphsenses_own(
    txs: list[dict[str, Any]], graphsense_ids: dict[str, int], views: Views
) -> None:
    """GraphSense's reference has an address "coinbase" (id 0): the input of every coinbase in
    the chain its references were made from. The chain shipped beside them gives coinbases no
    inputs at all, and cointrail lists no input for a coinbase."""
    assert graphsense_ids[COINBASE_PSEUDO_ADDRESS] == 0
    every_address = {a for tx in txs for io in tx["inputs"] + tx["outputs"] for a in io["address"]}
    assert COINBASE_PSEUDO_ADDRESS not in every_address
    coinbases = {tx["txId"] for tx in txs if tx["coinbase"]}
    assert all(not tx["inputs"] for tx in txs if tx["coinbase"])
    regular_inputs = read_lines(require_shared(f"{ORACLE}/reference/regular_inputs.json"))
    assert {r["txId"] for r in regular_inputs if r["address"] == COINBASE_PSEUDO_ADDRESS} == (
        coinbases)
    assert all(not v.inputs for v in views.views if v.is_coinbase)


def test_address_ids_agree_but_for_the_pseudo_address(
    graphsense_ids: dict[str, int], views: Views
) -> None:
    """Both number addresses by first appearance; GraphSense's id 0 is the pseudo-address."""
    real = {a: i for a, i in graphsense_ids.items() if a != COINBASE_PSEUDO_ADDRESS}
    assert {a: i - 1 for a, i in real.items()} == views.ids


def test_multisig_outputs_have_no_address_on_either_side(
    txs: list[dict[str, Any]], graphsense_ids: dict[str, int], views: Views
) -> None:
    """GraphSense keeps only inputs and outputs with exactly one address (its
    ``computeRegularInputs`` filters ``size(address) === 1``); cointrail gives bare multisig no
    address. The 2-key output of tx 5, spent by tx 8, is thus left out by both."""
    multi = [io for tx in txs for io in tx["inputs"] + tx["outputs"] if len(io["address"]) > 1]
    assert {frozenset(io["address"]) for io in multi} == {frozenset(MULTISIG_KEYS)}
    assert not MULTISIG_KEYS & set(graphsense_ids)
    assert not MULTISIG_KEYS & set(views.ids)
    tx8 = next(v for v in views.views if v.tx_id == 8)
    assert tx8.inputs[0].addr_id is None
    assert tx8.inputs[0].script_type is ScriptType.MULTISIG


def test_the_flagged_coinjoin_has_no_coinjoin_shape(views: Views) -> None:
    """Tx 5 is flagged ``coinjoin`` in the test chain, but no two of its four outputs are equal:
    no equal-output pattern (cointrail's detectors; BlockSci's ``isCoinjoin``, which
    graphsense-lib ports, wants the most frequent output value on (outputs + 1) // 2 = 2
    outputs) can call it one. The flag is a hand-set label of the synthetic chain."""
    flagged = [tx_id for tx_id, tx in views.raw.items() if tx["coinjoin"]]
    assert flagged == [TX_COINJOIN]
    tx5 = next(v for v in views.views if v.tx_id == TX_COINJOIN)
    values = [o.value for o in tx5.outputs]
    assert len(values) == 4
    assert len(set(values)) == len(values)
    assert {views.ids[a] for a in CJ_INPUTS} == tx5.input_addr_ids
    assert [v.tx_id for v in views.views if CoinJoinDetector().detect(v) is not None] == []


# --- the comparisons --------------------------------------------------------------------------


def test_flag_as_verdict_matches_without_coinjoin_inputs(
    views: Views, without_coinjoin_inputs: Partition
) -> None:
    ours = views.cluster(MultiInput(skip_coinjoin=True), flag_of(views))
    only_graphsense, only_cointrail = differences(ours, without_coinjoin_inputs)
    assert only_graphsense == [{COINBASE_PSEUDO_ADDRESS}]
    assert only_cointrail == []
    assert {frozenset({"1FDCgJ8m2xDyVmYuankk13XReVC2Zvs5cz"}),
            frozenset({"1HxbaBMF2jXBVnagoHvaA6rLxmaYL8gb8T"})} <= ours


def test_no_skip_matches_all_inputs(views: Views, all_inputs: Partition) -> None:
    for heuristic, context in [
        (MultiInput(skip_coinjoin=False), flag_of(views)),  # flag known, skip off
        (MultiInput(skip_coinjoin=True), lambda _: TxContext()),  # no verdict at all
    ]:
        ours = views.cluster(heuristic, context)
        only_graphsense, only_cointrail = differences(ours, all_inputs)
        assert only_graphsense == [{COINBASE_PSEUDO_ADDRESS}]
        assert only_cointrail == []
        assert frozenset(CJ_INPUTS) in ours


def test_cointrails_detector_against_both_references(
    views: Views, without_coinjoin_inputs: Partition, all_inputs: Partition
) -> None:
    """cointrail's own detector does not call tx 5 a CoinJoin, so its inputs are joined: the
    result is GraphSense's all-inputs clustering, and differs from its filtered one by tx 5."""
    ours = views.cluster(MultiInput(), detector_verdict)
    only_graphsense, only_cointrail = differences(ours, all_inputs)
    assert (only_graphsense, only_cointrail) == ([{COINBASE_PSEUDO_ADDRESS}], [])
    only_graphsense, only_cointrail = differences(ours, without_coinjoin_inputs)
    assert only_graphsense == [
        {"1FDCgJ8m2xDyVmYuankk13XReVC2Zvs5cz"},
        {"1HxbaBMF2jXBVnagoHvaA6rLxmaYL8gb8T"},
        {COINBASE_PSEUDO_ADDRESS},
    ]
    assert only_cointrail == [CJ_INPUTS]


def test_the_clusters_are_not_trivial(views: Views, all_inputs: Partition) -> None:
    """The comparison means something: three multi-input spends make three two-address
    clusters, the rest are singletons."""
    ours = views.cluster(MultiInput(skip_coinjoin=False), lambda _: TxContext())
    assert sorted(len(s) for s in ours if len(s) > 1) == [2, 2, 2]
    assert len(ours) == len(views.ids) - 3
    assert len(all_inputs) == len(ours) + 1
