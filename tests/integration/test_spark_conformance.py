"""The conformance suite: Spark (local mode) against the embedded engine, row for row.

On two chains — the real mainnet blocks 0–438 bundled with cointrail and a regtest economy acted
out on ``litecoind`` (`tests.support.scenario`, with Whirlpool and WabiSabi CoinJoins and
wallets' ground truth) — the store is clustered by the embedded engine, exported to Parquet
(`ChainStore.export_parquet`), and every Spark job's result is compared with the embedded one:

* input resolution and address first-seen rebuilt from the raw columns equal the export;
* CoinJoin labels equal `tx_labels`, multi-input links equal `cluster_links` (in chain order),
  and every address has the same cluster id (both engines: the cluster's smallest addr_id);
* address and cluster statistics (one SQL text) equal on DuckDB and Spark, and equal what
  ``show cluster`` reports;
* one-hop exposure of every cluster (one SQL text) equal on DuckDB and Spark, and equal to the
  embedded ``exposure(..., hops=1)`` category totals, with tagged counterparties;
* ``cointrail cluster --engine spark`` writes a clustering that ``show cluster`` and ``explain``
  read exactly as the embedded one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
from cointrail.analysis.risk.exposure import CHAIN_CATEGORIES, exposure
from cointrail.attribution.db import AttributionStore
from cointrail.attribution.importer import import_tags
from cointrail.chain.rpc import RpcClient
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import InputError
from cointrail.interfaces.cli.main import app
from cointrail.scaleout.clustering import SparkClustering, run_clustering
from cointrail.scaleout.exposure import (
    category_totals,
    cluster_subjects,
    duckdb_exposure,
    spark_exposure,
    stop_table,
)
from cointrail.scaleout.layout import (
    ChainLayout,
    check_addresses,
    check_resolution,
    load_layout,
)
from cointrail.scaleout.session import spark_session
from cointrail.scaleout.statistics import (
    ADDRESS_STATS_SQL,
    CLUSTER_STATS_SQL,
    duckdb_statistics,
    spark_statistics,
)
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles, sync_rpc
from tests.support.litecoind import LitecoindNode
from tests.support.scenario import NODE_ARGS, ScenarioFacts, build_scenario

pytestmark = pytest.mark.integration

SEED = 20240607


@pytest.fixture(scope="session")
def spark() -> Any:
    return spark_session("local[2]", shuffle_partitions=2)


@dataclass
class Chain:
    """A store clustered by the embedded engine, its Parquet export and the Spark run on it."""

    name: str
    root: Path
    chain: str
    network: str
    layout: ChainLayout
    result: SparkClustering

    def open(self, read_only: bool = True) -> ChainStore:
        return open_chain(self.root, self.chain, self.network, read_only=read_only)


def _tag(root: Path, chain: str, network: str, tags: list[tuple[str, str]]) -> None:
    """Import test tags (address, category) into the store's attribution database."""
    folder = root / "tags"
    folder.mkdir()
    lines = [f"{a},{chain},{network},test tag {k},{c},,forensic,conformance fixture"
             for k, (a, c) in enumerate(tags)]
    (folder / "tags.csv").write_text(
        "address,chain,network,label,category,actor,confidence,source\n" + "\n".join(lines)
        + "\n")
    with AttributionStore(root) as attr:
        assert import_tags(attr, [folder / "tags.csv"]).totals()["records"] == len(tags)


def _prepare(spark: Any, name: str, root: Path, chain: str, network: str) -> Chain:
    with open_chain(root, chain, network) as store:
        Clusterer(store, ClusterConfig()).run()
        store.export_parquet(root / "layout")
    layout = load_layout(spark, str(root / "layout")).cached()
    return Chain(name, root, chain, network, layout, run_clustering(layout))


@pytest.fixture(scope="module")
def mainnet(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("mainnet")
    with open_chain(root, "bitcoin", "mainnet") as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        # tag the receivers of the first spends, so exposure meets attribution categories
        receivers = [str(t) for (t,) in store.query(
            "SELECT DISTINCT a.text FROM outputs o JOIN addresses a USING (addr_id)"
            " WHERE o.tx_id IN (SELECT DISTINCT tx_id FROM inputs) ORDER BY 1 LIMIT 4")]
    assert receivers, "blocks 0-438 hold spends"
    _tag(root, "bitcoin", "mainnet", [(a, ("exchange", "ransomware")[k % 2])
                                      for k, a in enumerate(receivers)])
    return _prepare(spark, "mainnet", root, "bitcoin", "mainnet")


@pytest.fixture(scope="module")
def regtest(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("regtest")
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts: ScenarioFacts = build_scenario(node, SEED, 1)
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        with open_chain(root, "litecoin", "regtest") as store, RpcClient(url) as client:
            sync_rpc(UtxoIngestor(store), client)
    tags = [(a, "exchange") for a in facts.addresses_of(facts.exchange)]
    tags += [(a, "ransomware") for a in facts.addresses_of(facts.operator)]
    _tag(root, "litecoin", "regtest", tags)
    yield _prepare(spark, "regtest", root, "litecoin", "regtest")


@pytest.fixture(params=["mainnet", "regtest"])
def chain(request: pytest.FixtureRequest) -> Chain:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def _rows(frame: Any, *order: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in frame.orderBy(*order).collect()]


# -- input resolution and address tables -----------------------------------------------------


def test_inputs_resolve_from_outpoints_to_the_exported_columns(chain: Chain) -> None:
    check = check_resolution(chain.layout)
    with chain.open() as store:
        inputs = store.table_counts()["inputs"]
    assert check.inputs == inputs > 0
    assert check.ok, check


def test_address_first_seen_rebuilt_from_outputs_equals_the_export(chain: Chain) -> None:
    assert check_addresses(chain.layout) == 0


# -- clustering --------------------------------------------------------------------------------


def test_coinjoin_labels_equal_the_embedded_tx_labels(chain: Chain) -> None:
    spark_labels = [r[:6] for r in _rows(chain.result.labels, "tx_id")]
    with chain.open() as store:
        embedded = store.query("SELECT tx_id, height, label, kind, detector, evidence"
                               " FROM tx_labels ORDER BY tx_id")
    assert spark_labels == [tuple(r) for r in embedded]
    if chain.name == "regtest":  # the scenario makes Whirlpool and WabiSabi rounds
        assert {r[3] for r in spark_labels} >= {"whirlpool", "wasabi_2"}


def test_multi_input_links_equal_the_embedded_links_in_chain_order(chain: Chain) -> None:
    spark_links = [r[:5] for r in _rows(chain.result.links, "tx_id", "first_n")]
    with chain.open() as store:
        embedded = store.query("SELECT height, tx_id, addr_a, addr_b, heuristic"
                               " FROM cluster_links ORDER BY tx_id, rowid")
    assert spark_links == [tuple(r) for r in embedded]
    if chain.name == "regtest":  # blocks 0-438 never spend two addresses together
        assert len(spark_links) > 100


def test_every_address_has_the_embedded_cluster_id(chain: Chain) -> None:
    spark_ids = np.array([r[1] for r in _rows(chain.result.clusters, "addr_id")], np.int64)
    with chain.open() as store:
        embedded = np.asarray(cluster_view(store).ids, np.int64)
    assert spark_ids.size == embedded.size
    assert np.array_equal(spark_ids, embedded)
    if chain.name == "regtest":
        assert np.unique(embedded).size < embedded.size  # some addresses were merged


def test_coinjoin_inputs_are_not_merged(regtest: Chain) -> None:
    with regtest.open() as store:
        ids = np.asarray(cluster_view(store).ids)
        spread = store.query(
            "SELECT l.tx_id, list(DISTINCT i.addr_id) FROM tx_labels l JOIN inputs i USING"
            " (tx_id) WHERE l.kind IN ('whirlpool', 'wasabi_2') AND i.addr_id IS NOT NULL"
            " GROUP BY l.tx_id")
    spark_ids = {r[0]: r[1] for r in regtest.result.clusters.collect()}
    rounds = [addrs for _, addrs in spread if len({int(ids[a]) for a in addrs}) > 1]
    assert rounds, "the scenario's mixes keep several owners apart"
    for addrs in rounds:
        assert len({spark_ids[a] for a in addrs}) == len({int(ids[a]) for a in addrs})


# -- statistics ------------------------------------------------------------------------------


def test_address_statistics_equal_on_both_engines(chain: Chain) -> None:
    with chain.open() as store:
        embedded = duckdb_statistics(store, chain.layout.height, ADDRESS_STATS_SQL)
        view = store.query("SELECT addr_id, received, sent, balance, first_height, last_height"
                           " FROM address_stats ORDER BY addr_id")
    spark_rows = _rows(spark_statistics(chain.layout, ADDRESS_STATS_SQL), "addr_id")
    assert spark_rows == [tuple(r) for r in embedded]
    assert [(r[0], r[1], r[2], r[3], r[6], r[7]) for r in embedded] == [tuple(r) for r in view]


def test_cluster_statistics_equal_on_both_engines_and_show_cluster(chain: Chain) -> None:
    from cointrail.analysis.clustering.engine import show_cluster

    with chain.open() as store:
        ids = np.asarray(cluster_view(store).ids)
        embedded = duckdb_statistics(store, chain.layout.height, CLUSTER_STATS_SQL, ids)
        largest = sorted(embedded, key=lambda r: (-r[1], r[0]))[:3]
        shown = [show_cluster(store, int(r[0])) for r in largest]
    spark_rows = _rows(spark_statistics(chain.layout, CLUSTER_STATS_SQL, chain.result.clusters),
                       "cluster_id")
    assert spark_rows == [tuple(r) for r in embedded]
    for row, doc in zip(largest, shown, strict=True):
        assert (row[1], row[2], row[3], row[4], row[7], row[8]) == (
            doc["size"], doc["received_sat"], doc["sent_sat"], doc["balance_sat"],
            doc["first_seen_height"], doc["last_seen_height"])


# -- exposure --------------------------------------------------------------------------------


def test_exposure_equals_on_both_engines_and_the_embedded_trace(chain: Chain) -> None:
    with chain.open() as store:
        ids = np.asarray(cluster_view(store).ids)
        stops = stop_table(store)
        embedded = duckdb_exposure(store, cluster_subjects(ids), stops)
        spark_rows = _rows(spark_exposure(chain.layout, chain.result.clusters, stops,
                                          chain.result.labels),
                           "subject", "direction", "category")
        assert spark_rows == [tuple(r) for r in embedded]
        categories = {r[2] for r in embedded}
        assert {"exchange", "ransomware", "hop_limit"} <= categories
        # clusters that meet a tag or a CoinJoin, and a stride of all (about 60 traces)
        notable = sorted({r[0] for r in embedded if r[2] not in CHAIN_CATEGORIES})
        notable += sorted({r[0] for r in embedded if r[2] == "coinjoin"})
        clusters = sorted(set(ids.tolist()))
        subjects = sorted(set(notable[::max(1, len(notable) // 30)])
                          | set(clusters[:: max(1, len(clusters) // 30)]))
        for cid in subjects:
            doc = exposure(store, f"cluster:{cid}", hops=1).to_dict()
            traced = {key: {c: g["amount_sat"] for c, g in doc[name]["categories"].items()}
                      for key, name in (("in", "incoming"), ("out", "outgoing"))}
            assert category_totals(embedded, cid) == traced, cid


# -- the CLI -----------------------------------------------------------------------------------


def _cli(root: Path, chain: Chain, *args: str) -> Any:
    env = {k: None for k in os.environ if k.startswith("COINTRAIL_")}
    result = CliRunner().invoke(app, ["--store", str(root), "--chain", chain.chain,
                                      "--network", chain.network, *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_spark_clustering_reads_back_like_the_embedded_one(
        regtest: Chain, tmp_path: Path) -> None:
    db = f"{regtest.chain}-{regtest.network}.duckdb"
    target = tmp_path / "spark"
    target.mkdir()
    shutil.copy(regtest.root / db, target / db)
    shutil.copy(regtest.root / "attribution.duckdb", target / "attribution.duckdb")
    with open_chain(target, regtest.chain, regtest.network) as store:  # no clustering yet
        for table in ("tx_labels", "cluster_links", "cluster_merges"):
            store.con.execute(f"DELETE FROM {table}")
        store.con.execute("DELETE FROM sync_state WHERE key LIKE 'cluster_%'")
    run = _cli(target, regtest, "cluster", "--engine", "spark", "--master", "local[2]")
    with regtest.open() as store:
        embedded_run = store.query("SELECT links, coinjoins FROM cluster_runs ORDER BY run_id"
                                   " DESC LIMIT 1")[0]
        ids = np.asarray(cluster_view(store).ids)
        pairs = store.query("SELECT a.text, b.text FROM cluster_links l JOIN addresses a ON"
                            " a.addr_id = l.addr_a JOIN addresses b ON b.addr_id = l.addr_b"
                            " ORDER BY l.tx_id DESC LIMIT 3")
    assert (run["links"], run["coinjoins"]) == embedded_run
    assert run["clusters"] == np.unique(ids).size
    values, counts = np.unique(ids, return_counts=True)
    for cid in values[np.argsort(-counts, kind="stable")][:3].tolist():
        assert _cli(target, regtest, "show", "cluster", str(cid)) == _cli(
            regtest.root, regtest, "show", "cluster", str(cid))
    for a, b in pairs:
        spark_doc = _cli(target, regtest, "explain", a, b)
        embedded_doc = _cli(regtest.root, regtest, "explain", a, b)
        assert spark_doc["linked"] is embedded_doc["linked"] is True
        assert spark_doc["path"] == embedded_doc["path"]
    # the embedded engine takes the Spark clustering as its own and goes on from it
    after = _cli(target, regtest, "cluster")
    assert (after["restarted"], after["from_height"]) == (False, run["to_height"] + 1)


def test_cli_spark_engine_refuses_the_change_heuristic(regtest: Chain) -> None:
    result = CliRunner().invoke(app, [
        "--store", str(regtest.root), "--chain", regtest.chain, "--network", regtest.network,
        "cluster", "--engine", "spark", "--heuristics", "multi_input,change"])
    assert result.exit_code == 2
    assert "multi_input" in result.output


def test_exposure_job_for_one_subject_equals_the_embedded_command(regtest: Chain) -> None:
    from cointrail.scaleout.jobs import exposure_with_spark

    with regtest.open() as store:
        stops = stop_table(store)
        ids = np.asarray(cluster_view(store).ids)
        rows = duckdb_exposure(store, cluster_subjects(ids), stops)
        tagged = sorted({r[0] for r in rows if r[2] not in CHAIN_CATEGORIES})
        assert tagged
        address = store.query("SELECT text FROM addresses WHERE addr_id = ?", [tagged[0]])[0][0]
        for subject in (f"cluster:{tagged[-1]}", str(address)):
            doc = exposure_with_spark(store, subject, master="local[2]")
            embedded = exposure(store, subject, hops=1).to_dict()
            for name in ("incoming", "outgoing"):
                assert doc[name]["total_sat"] == embedded[name]["total_sat"]
                assert list(doc[name]["categories"]) == list(embedded[name]["categories"])
                for category, group in doc[name]["categories"].items():
                    assert group["amount_sat"] == embedded[name]["categories"][category][
                        "amount_sat"]
        with pytest.raises(InputError, match="--hops 1"):
            exposure_with_spark(store, subject, hops=6)


def test_cli_exposure_engine_spark_equals_the_embedded_command(regtest: Chain) -> None:
    with regtest.open() as store:
        stops = stop_table(store)
        ids = np.asarray(cluster_view(store).ids)
        rows = duckdb_exposure(store, cluster_subjects(ids), stops)
    tagged = sorted({r[0] for r in rows if r[2] not in CHAIN_CATEGORIES})
    subject = f"cluster:{tagged[0]}"
    spark = _cli(regtest.root, regtest, "exposure", subject, "--hops", "1", "--engine", "spark")
    embedded = _cli(regtest.root, regtest, "exposure", subject, "--hops", "1")
    for name in ("incoming", "outgoing"):
        assert spark[name]["total_sat"] == embedded[name]["total_sat"]
        assert {c: g["amount_sat"] for c, g in spark[name]["categories"].items()} == {
            c: g["amount_sat"] for c, g in embedded[name]["categories"].items()}


def test_cli_stats_spark_equals_embedded_row_for_row(regtest: Chain, tmp_path: Path) -> None:
    """`cointrail stats` on both engines writes the same Parquet rows (address and cluster)."""
    import pyarrow.parquet as pq

    embedded = _cli(regtest.root, regtest, "stats", "--out", str(tmp_path / "embedded"))
    spark = _cli(regtest.root, regtest, "stats", "--engine", "spark", "--out",
                 str(tmp_path / "spark"))
    assert embedded["height"] == spark["height"]
    for name, key in (("address_stats", "addr_id"), ("cluster_stats", "cluster_id")):
        ours = pq.read_table(embedded["written"][name]).sort_by(key)
        theirs = pq.read_table(spark["written"][name]).sort_by(key)
        assert ours.num_rows == theirs.num_rows > 0
        for column in ours.column_names:
            assert ours.column(column).to_pylist() == theirs.column(column).to_pylist(), column
