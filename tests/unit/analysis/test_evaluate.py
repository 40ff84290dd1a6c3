"""`evaluate` and ``cluster-evaluate`` on the bundled demo scenario chain (litecoin regtest),
clustered with common-input ownership, against the owners its facts.json names: the ransomware
operator's ransom addresses (one cluster, joined by the consolidation) and the exchange's hot
and deposit addresses.

Nothing evaluated is an error, not a perfect score; a measure with nothing to count is None
(null in JSON, n/a in text), and the measures of an ordinary ground truth are the pair counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cointrail import get_chain
from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
from cointrail.analysis.clustering.evaluate import (
    evaluate,
    read_ground_truth,
    write_ground_truth,
)
from cointrail.chain.utxo.address import encode_address
from cointrail.data import SCENARIO_BLOCKS, SCENARIO_CHAIN, SCENARIO_FACTS, bundled_path
from cointrail.errors import InputError
from cointrail.interfaces.cli.main import app
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles
from tests.support.cli import pair_counts

CHAIN, NETWORK = SCENARIO_CHAIN
SPEC = get_chain(CHAIN, NETWORK)
CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None, "COINTRAIL_NETWORK": None, "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None,
}
#: valid litecoin regtest addresses of made-up keys: on no chain
UNKNOWN = [encode_address(SPEC, "witness_v0_keyhash", bytes([k]) * 20) or "" for k in (1, 2, 3)]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario chain, ingested and clustered to its tip (multi-input)."""
    root = tmp_path_factory.mktemp("evaluate")
    with open_chain(root, CHAIN, NETWORK) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(SCENARIO_BLOCKS)))
        Clusterer(store, ClusterConfig()).run()
    return root


@pytest.fixture
def store(store_dir: Path) -> Iterator[ChainStore]:
    with open_chain(store_dir, CHAIN, NETWORK, read_only=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def truth() -> dict[str, str]:
    """address -> owner: the ransom addresses and the exchange's hot and deposit addresses."""
    facts: dict[str, Any] = json.loads(bundled_path(SCENARIO_FACTS).read_text("utf-8"))
    owners = {a: "ransomware" for a in facts["operator"]["ransom_addresses"]}
    exchange = facts["exchange"]
    for address in [exchange["hot_address"], *exchange["deposit_addresses_tagged"]]:
        owners[address] = "exchange"
    return owners


def ransom(truth: dict[str, str]) -> list[str]:
    return [a for a, owner in truth.items() if owner == "ransomware"]


def first_heights(store: ChainStore, addresses: list[str]) -> list[int]:
    rows = store.query("SELECT first_height FROM addresses WHERE text IN "
                       "(SELECT unnest(?::VARCHAR[]))", [addresses])
    return [int(h) for (h,) in rows]


def cli(store_dir: Path, truth: dict[str, str], *args: str) -> Result:
    csv = store_dir.parent / f"{store_dir.name}-truth.csv"
    write_ground_truth(csv, truth)
    return CliRunner().invoke(
        app, ["--store", str(store_dir), "--chain", CHAIN, "--network", NETWORK,
              "cluster-evaluate", str(csv), *args], env=CLEAN_ENV)


# -- nothing to evaluate -----------------------------------------------------------------------


def test_addresses_the_store_never_saw_are_an_error(store: ChainStore) -> None:
    tip = cluster_view(store).height
    with pytest.raises(InputError) as caught:
        evaluate(store, {a: "nobody" for a in UNKNOWN})
    message = str(caught.value)
    assert (f"none of the 3 ground-truth address(es) can be evaluated: 3 not in the "
            f"litecoin/regtest store, 0 first seen above the clustering's height {tip}"
            in message)
    assert "--chain/--network" in message
    assert "--as-of" not in message  # no address is above the height: that advice is no help
    with pytest.raises(InputError, match="the ground truth holds no address"):
        evaluate(store, {})


def test_addresses_first_seen_above_the_height_are_an_error(
        store: ChainStore, truth: dict[str, str]) -> None:
    addresses = ransom(truth)
    height = min(first_heights(store, addresses)) - 1
    with pytest.raises(InputError) as caught:
        evaluate(store, {a: truth[a] for a in addresses}, as_of=height)
    message = str(caught.value)
    assert (f"none of the 5 ground-truth address(es) can be evaluated: 0 not in the "
            f"litecoin/regtest store, 5 first seen above the clustering's height {height}"
            in message)
    assert "`cointrail cluster`" in message and "--as-of" in message
    assert "--chain/--network" not in message
    mixed = {a: truth[a] for a in addresses} | {a: "nobody" for a in UNKNOWN}
    with pytest.raises(InputError) as caught:
        evaluate(store, mixed, as_of=height)
    message = str(caught.value)
    assert "none of the 8 ground-truth address(es)" in message
    assert "3 not in the litecoin/regtest store, 5 first seen above" in message
    assert "--chain/--network" in message and "--as-of" in message
    # one address at the height is enough to evaluate
    assert evaluate(store, mixed, as_of=height + 1).addresses == 1


def test_cluster_evaluate_exits_with_the_error(store_dir: Path, truth: dict[str, str]) -> None:
    done = cli(store_dir, {a: "nobody" for a in UNKNOWN}, "--json")
    assert done.exit_code == 2, done.output
    assert done.stdout == ""
    assert done.stderr.startswith("error: none of the 3 ground-truth address(es) can be "
                                  "evaluated: 3 not in the litecoin/regtest store"), done.stderr
    done = cli(store_dir, {a: truth[a] for a in ransom(truth)}, "--as-of", "1")
    assert done.exit_code == 2, done.output
    assert "5 first seen above the clustering's height 1" in done.stderr
    assert "pairwise precision" not in done.stdout


# -- measures with nothing to count ------------------------------------------------------------


def test_one_address_has_neither_precision_nor_recall(
        store_dir: Path, store: ChainStore, truth: dict[str, str]) -> None:
    address = ransom(truth)[0]
    result = evaluate(store, {address: "ransomware"})
    assert (result.addresses, result.predicted_pairs, result.true_pairs) == (1, 0, 0)
    assert (result.precision, result.recall, result.f1) == (None, None, None)
    assert (result.purity, result.inverse_purity) == (1.0, 1.0)
    (owner,) = result.largest_owners
    assert (owner.addresses, owner.recall) == (1, None)
    doc = json.loads(json.dumps(result.to_dict()))
    assert (doc["precision"], doc["recall"], doc["f1"]) == (None, None, None)
    assert doc["largest_owners"][0]["recall"] is None
    shown = cli(store_dir, {address: "ransomware"}, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == doc
    text = cli(store_dir, {address: "ransomware"})
    assert text.exit_code == 0, text.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in text.stdout.splitlines() if line.count("│") == 3}
    assert rows["pairwise precision"] == "n/a (no pairs predicted)"
    assert rows["pairwise recall"] == "n/a (no same-owner pairs)"
    assert rows["F1"] == "n/a (needs precision and recall)"
    assert rows["purity"] == "1.0000"


def test_each_measure_is_undefined_only_without_its_pairs(
        store: ChainStore, truth: dict[str, str]) -> None:
    view = cluster_view(store)
    ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")}
    first, second = ransom(truth)[:2]
    hot = next(a for a, owner in truth.items() if owner == "exchange")
    apart = next(a for a, owner in truth.items()
                 if owner == "exchange" and view.of(ids[a]) != view.of(ids[hot]))
    assert view.of(ids[first]) == view.of(ids[second]) != view.of(ids[hot])
    # one cluster, two owners: a wrong pair predicted, none true
    joined = evaluate(store, {first: "a", second: "b"})
    assert (joined.precision, joined.recall, joined.f1) == (0.0, None, None)
    # one owner, two clusters: a true pair missed, none predicted
    split = evaluate(store, {hot: "exchange", apart: "exchange"})
    assert (split.precision, split.recall, split.f1) == (None, 0.0, None)
    assert split.largest_owners[0].recall == 0.0
    # two owners, two clusters: nothing predicted, nothing true
    both = evaluate(store, {first: "ransomware", hot: "exchange"})
    assert (both.precision, both.recall, both.f1) == (None, None, None)
    # one owner, one cluster
    right = evaluate(store, {first: "ransomware", second: "ransomware"})
    assert (right.precision, right.recall, right.f1) == (1.0, 1.0, 1.0)


# -- an ordinary ground truth ------------------------------------------------------------------


def test_measures_are_the_pair_counts(
        store_dir: Path, store: ChainStore, truth: dict[str, str]) -> None:
    result = evaluate(store, truth)
    view = cluster_view(store)
    ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")}
    cluster = {a: view.of(ids[a]) for a in truth}
    predicted, true, correct = pair_counts(cluster, truth, list(truth))
    assert (result.addresses, result.not_in_store, result.above_height) == (len(truth), 0, 0)
    assert (result.predicted_pairs, result.true_pairs, result.correct_pairs) == (
        predicted, true, correct)
    assert true > correct > 0  # a recall strictly between 0 and 1
    assert result.precision == correct / predicted
    assert result.recall == correct / true
    precision, recall = correct / predicted, correct / true
    assert result.f1 == 2 * precision * recall / (precision + recall)
    majority = 0
    for c in set(cluster.values()):
        in_c = [truth[a] for a in truth if cluster[a] == c]
        majority += max(in_c.count(o) for o in set(in_c))
    assert result.purity == majority / len(truth)
    shown = cli(store_dir, truth)
    assert shown.exit_code == 0, shown.output
    assert f"{result.recall:.4f}" in shown.stdout
    assert "n/a" not in shown.stdout


# -- change detection, transaction by transaction -----------------------------------------------


@pytest.fixture(scope="module")
def change_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario chain clustered with multi-input and the change linker."""
    root = tmp_path_factory.mktemp("evaluate-change")
    with open_chain(root, CHAIN, NETWORK) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(SCENARIO_BLOCKS)))
        Clusterer(store, ClusterConfig(heuristics=("multi_input", "change"))).run()
    return root


def peel_hops(store: ChainStore) -> tuple[dict[str, str], list[tuple[int, list[str], list[str]]]]:
    """The operator's peel hops as ground truth: their input addresses and every output not
    paid to an exchange deposit address are the operator's, the deposit addresses the
    exchange's. Also each two-output hop as (tx_id, input addresses, output addresses)."""
    facts: dict[str, Any] = json.loads(bundled_path(SCENARIO_FACTS).read_text("utf-8"))
    exchange = facts["exchange"]
    deposits = set(exchange["deposit_addresses_reached"]) | set(
        exchange["deposit_addresses_tagged"])
    owners: dict[str, str] = {}
    hops: list[tuple[int, list[str], list[str]]] = []
    for txid in facts["operator"]["peel_txids"]:
        ((tx_id,),) = store.query("SELECT tx_id FROM txs WHERE txid = ?",
                                  [bytes.fromhex(txid)[::-1]])
        inputs = [str(t) for (t,) in store.query(
            "SELECT a.text FROM inputs i JOIN addresses a USING (addr_id) WHERE i.tx_id = ?",
            [tx_id])]
        outputs = [str(t) for (t,) in store.query(
            "SELECT a.text FROM outputs o JOIN addresses a USING (addr_id) WHERE o.tx_id = ?"
            " ORDER BY o.n", [tx_id])]
        for text in inputs:
            owners[text] = "ransomware"
        for text in outputs:
            owners[text] = "exchange" if text in deposits else "ransomware"
        if len(outputs) == 2:
            hops.append((tx_id, inputs, outputs))
    return owners, hops


def judge_hops(store: ChainStore, owners: dict[str, str],
               hops: list[tuple[int, list[str], list[str]]]) -> dict[str, int]:
    """The change detection counts of the hops, from the change links' joined addresses."""
    out = dict.fromkeys(("with_change", "without_change", "linked", "found", "wrong"), 0)
    for tx_id, inputs, outputs in hops:
        (payer,) = {owners[a] for a in inputs}
        own = [a for a in outputs if owners[a] == payer]
        out["with_change" if len(own) == 1 else "without_change"] += 1
        named = [str(t) for (t,) in store.query(
            "SELECT a.text FROM cluster_links l JOIN addresses a ON a.addr_id = l.addr_b"
            " WHERE l.heuristic = 'change' AND l.tx_id = ?", [tx_id])]
        for address in named:
            out["linked"] += 1
            if owners[address] != payer:
                out["wrong"] += 1
            elif len(own) == 1:
                out["found"] += 1
    return out


def test_change_detection_counts_the_peel_hops(change_store_dir: Path) -> None:
    with open_chain(change_store_dir, CHAIN, NETWORK, read_only=True) as store:
        owners, hops = peel_hops(store)
        expected = judge_hops(store, owners, hops)
        result = evaluate(store, owners)
    change = result.change_detection
    assert change is not None
    found = expected["found"]
    assert len(hops) >= 4 and found >= 1
    assert expected["with_change"] == len(hops)
    assert (change.transactions, change.with_change, change.without_change, change.to_self) == (
        len(hops), len(hops), 0, 0)
    assert (change.found, change.linked, change.wrong) == (found, found, 0)
    assert change.coverage == found / len(hops)
    assert change.precision == 1.0
    assert change.by_owner == {"ransomware": (len(hops), found, 0)}
    shown = cli(change_store_dir, owners)
    assert shown.exit_code == 0, shown.output
    assert (f"{len(hops)} with change, its change found in {found}"
            in " ".join(shown.stdout.split()))
    as_json = json.loads(cli(change_store_dir, owners, "--json").stdout)
    assert as_json["change_detection"]["found"] == found


def test_a_change_link_to_another_owner_is_wrong(change_store_dir: Path) -> None:
    """Give a linked hop's change address to someone else: that hop pays no change back, so
    its change link names another owner's output; the next hop, which spends that address,
    now has another payer."""
    with open_chain(change_store_dir, CHAIN, NETWORK, read_only=True) as store:
        owners, hops = peel_hops(store)
        before = judge_hops(store, owners, hops)
        linked = [outputs for tx_id, _, outputs in hops if store.query(
            "SELECT 1 FROM cluster_links WHERE heuristic = 'change' AND tx_id = ?", [tx_id])]
        assert linked
        (change_address,) = [a for a in linked[0] if owners[a] == "ransomware"]
        owners[change_address] = "someone else"
        expected = judge_hops(store, owners, hops)
        result = evaluate(store, owners)
    change = result.change_detection
    assert change is not None
    assert expected["wrong"] >= 1 and expected["found"] < before["found"]
    assert (change.with_change, change.without_change) == (
        expected["with_change"], expected["without_change"])
    assert (change.found, change.linked, change.wrong) == (
        expected["found"], expected["linked"], expected["wrong"])
    assert change.precision == (expected["linked"] - expected["wrong"]) / expected["linked"]


def test_no_single_owner_transaction_leaves_change_detection_undefined(
        store: ChainStore, truth: dict[str, str]) -> None:
    """The multi-input clustering and a ground truth of the exchange alone (its sweeps have one
    output, its withdrawals pay addresses of unknown owners): nothing to judge, so coverage and
    precision are undefined rather than 0 or 1."""
    exchange = {a: o for a, o in truth.items() if o == "exchange"}
    change = evaluate(store, exchange).change_detection
    assert change is not None
    assert (change.transactions, change.with_change, change.linked) == (0, 0, 0)
    assert change.coverage is None and change.precision is None


def test_read_ground_truth_says_what_is_wrong_with_the_file(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffaddress,owner\r\na1,alice\r\n".encode())  # as spreadsheets save it
    assert read_ground_truth(bom) == {"a1": "alice"}
    with pytest.raises(InputError, match=r"ground-truth file .* does not exist; check the path"):
        read_ground_truth(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory; pass a ground-truth CSV file"):
        read_ground_truth(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"ground-truth file .* is not UTF-8 text"):
        read_ground_truth(latin)
    empty = tmp_path / "empty.csv"
    empty.write_text("address,owner\n# none yet\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no address,owner rows"):
        read_ground_truth(empty)
