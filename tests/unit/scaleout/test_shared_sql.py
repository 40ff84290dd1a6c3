"""The shared SQL texts on the embedded engine (DuckDB) against the embedded analyses they
stand for, on the real mainnet blocks 0–438: `address_stats`, `show cluster` and the one-hop
`exposure`. The Spark side of the same texts is checked in
tests/integration/test_spark_conformance.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cointrail.analysis.clustering.engine import Clusterer, cluster_view, show_cluster
from cointrail.analysis.risk.exposure import exposure
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.scaleout.exposure import (
    category_totals,
    cluster_subjects,
    duckdb_exposure,
    stop_table,
    subject_table,
)
from cointrail.scaleout.statistics import ADDRESS_STATS_SQL, CLUSTER_STATS_SQL, duckdb_statistics
from cointrail.store.duck import open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mainnet")
    with open_chain(path, "bitcoin", "mainnet") as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        Clusterer(store).run()
    return path


def test_address_statistics_equal_the_store_view(root: Path) -> None:
    with open_chain(root, "bitcoin", "mainnet", read_only=True) as store:
        rows = duckdb_statistics(store, 438, ADDRESS_STATS_SQL)
        view = store.query("SELECT addr_id, received, sent, balance, first_height, last_height"
                           " FROM address_stats ORDER BY addr_id")
    assert [(r[0], r[1], r[2], r[3], r[6], r[7]) for r in rows] == [tuple(r) for r in view]
    assert sum(r[5] for r in rows) > 0  # some addresses spent


def test_statistics_at_a_lower_height_leave_later_blocks_out(root: Path) -> None:
    with open_chain(root, "bitcoin", "mainnet", read_only=True) as store:
        rows = duckdb_statistics(store, 100, ADDRESS_STATS_SQL)
        first = dict(store.query("SELECT addr_id, first_height FROM addresses"))
    assert rows and all(first[r[0]] <= 100 and (r[7] is None or r[7] <= 100) for r in rows)
    assert len(rows) < len(first)


def test_cluster_statistics_equal_show_cluster(root: Path) -> None:
    with open_chain(root, "bitcoin", "mainnet", read_only=True) as store:
        ids = np.asarray(cluster_view(store).ids)
        rows = duckdb_statistics(store, 438, CLUSTER_STATS_SQL, ids)
        for row in rows[::37]:
            doc = show_cluster(store, int(row[0]))
            assert (row[1], row[2], row[3], row[4], row[7], row[8]) == (
                doc["size"], doc["received_sat"], doc["sent_sat"], doc["balance_sat"],
                doc["first_seen_height"], doc["last_seen_height"])


def test_one_hop_exposure_equals_the_embedded_trace(root: Path) -> None:
    with open_chain(root, "bitcoin", "mainnet", read_only=True) as store:
        ids = np.asarray(cluster_view(store).ids)
        stops = stop_table(store)
        rows = duckdb_exposure(store, cluster_subjects(ids), stops)
        spenders = sorted({int(ids[a]) for (a,) in store.query(
            "SELECT DISTINCT addr_id FROM inputs WHERE addr_id IS NOT NULL")})
        assert spenders
        for cid in [*spenders[:40], 0, 1]:
            doc = exposure(store, f"cluster:{cid}", hops=1).to_dict()
            traced = {key: {c: g["amount_sat"] for c, g in doc[name]["categories"].items()}
                      for key, name in (("in", "incoming"), ("out", "outgoing"))}
            assert category_totals(rows, cid) == traced, cid
        # one subject alone gives the same rows as in the batch
        alone = duckdb_exposure(store, subject_table(np.flatnonzero(ids == spenders[0]),
                                                     spenders[0]), stops)
        assert alone == [r for r in rows if r[0] == spenders[0]]
