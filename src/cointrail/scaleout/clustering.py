"""Multi-input clustering on Spark, with CoinJoin exclusion; written back into the store.

What the job computes, for the chain up to `height` (always from genesis):

1. CoinJoin labels: the embedded detectors run on the executors (`scaleout.coinjoin`), giving
   the very `tx_labels` rows the embedded engine writes.
2. Links: common-input ownership exactly as `MultiInput` makes them — per non-coinbase
   transaction that is not a multi-party CoinJoin, the first input address (in vin order) is the
   anchor and every other distinct input address is linked to it, in order of first appearance.
   These are the embedded engine's `cluster_links` rows.
3. Clusters: connected components of the links (`scaleout.components`); a cluster's id is its
   smallest `addr_id`. The embedded engine gives the same id (it keeps the older, i.e. smaller,
   id on every merge), so both engines map every address to the same cluster id.

Only the ``multi_input`` heuristic runs on Spark: the supercluster guard acts on links that rest
on weak (change) links, so with multi-input alone it never holds one back, and the results
equal an embedded run of the same configuration. `import_clustering` writes the labels, the links,
the cluster-id cache and a `cluster_runs` row into the store under the embedded configuration's
hash, so `show cluster`, `explain`, `--as-of`, tracing and later incremental runs work on it.
It does not write `cluster_merges` rows: which link merged which two clusters depends on the
order the links are applied in, a sequential notion the components job does not have.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cointrail.errors import InputError, StoreError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from cointrail.analysis.clustering.engine import ClusterConfig
    from cointrail.scaleout.layout import ChainLayout
    from cointrail.store.duck import ChainStore

MULTI_INPUT = "multi_input"


def check_config(config: ClusterConfig) -> None:
    """Refuse configurations the Spark engine does not run (anything but multi-input)."""
    if tuple(config.heuristics) != (MULTI_INPUT,):
        raise InputError(
            f"--engine spark runs the multi_input heuristic only, not "
            f"{','.join(config.heuristics)}; drop --heuristics or use --engine embedded"
        )
    if config.params:
        raise InputError(
            "--engine spark runs multi_input with its defaults; drop --param or use "
            "--engine embedded"
        )
    if config.multi_owner:
        raise InputError(
            "--engine spark does not take multi-owner declarations; drop --multi-owner or "
            "use --engine embedded"
        )


def multi_input_links(layout: ChainLayout, coinjoins: DataFrame | None) -> DataFrame:
    """``(height, tx_id, addr_a, addr_b, heuristic, first_n)``: the multi-input links of every
    transaction except the multi-party CoinJoins in `coinjoins` (None: exclude nothing).
    ``first_n`` is the input index where `addr_b` first appears (the links' order in a tx)."""
    from pyspark.sql import functions as sf

    spends = layout.inputs.filter(sf.col("addr_id").isNotNull())
    if coinjoins is not None:
        spends = spends.join(coinjoins.filter("multi_party").select("tx_id"), "tx_id",
                             "left_anti")
    firsts = spends.groupBy("tx_id", "addr_id").agg(sf.min("n").alias("first_n"))
    anchors = firsts.groupBy("tx_id").agg(sf.min_by("addr_id", "first_n").alias("anchor"))
    heights = layout.txs.select("tx_id", "height")
    links = (firsts.join(anchors, "tx_id").filter(sf.col("addr_id") != sf.col("anchor"))
             .join(heights, "tx_id"))
    return links.select(
        "height", "tx_id", sf.col("anchor").alias("addr_a"), sf.col("addr_id").alias("addr_b"),
        sf.lit(MULTI_INPUT).alias("heuristic"), "first_n")


def cluster_map(layout: ChainLayout, links: DataFrame, max_rounds: int) -> tuple[DataFrame, int]:
    """``(addr_id, cluster_id)`` for every address of `layout`, and the rounds it took."""
    from pyspark.sql import functions as sf

    from cointrail.scaleout.components import connected_components

    run = connected_components(links, a="addr_a", b="addr_b", max_rounds=max_rounds)
    labels = run.labels().select(sf.col("node").alias("addr_id"),
                                 sf.col("component").alias("cluster_id"))
    mapped = layout.addresses.select("addr_id").join(labels, "addr_id", "left").select(
        "addr_id", sf.coalesce("cluster_id", "addr_id").alias("cluster_id"))
    return mapped, run.rounds


@dataclass
class SparkClustering:
    """The DataFrames of one Spark clustering run (lazy until written or collected)."""

    height: int
    labels: DataFrame
    links: DataFrame
    clusters: DataFrame
    rounds: int
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def run_clustering(
    layout: ChainLayout,
    *,
    coinjoin_detection: bool = True,
    max_rounds: int = 40,
) -> SparkClustering:
    """Labels, links and clusters of `layout` (see the module docstring)."""
    started = time.perf_counter()
    from cointrail.scaleout.coinjoin import detect_coinjoins
    from cointrail.scaleout.components import checkpoint

    labels = checkpoint(detect_coinjoins(layout)) if coinjoin_detection else None
    links = checkpoint(multi_input_links(layout, labels))
    clusters, rounds = cluster_map(layout, links, max_rounds)
    if labels is None:
        from cointrail.scaleout.coinjoin import LABEL_SCHEMA

        labels = layout.spark.createDataFrame([], LABEL_SCHEMA)
    return SparkClustering(layout.height, labels, links, clusters, rounds,
                           time.perf_counter() - started)


def write_clustering(result: SparkClustering, out: str) -> dict[str, str]:
    """Write the run as Parquet: ``OUT/tx_labels``, ``OUT/cluster_links``, ``OUT/clusters``."""
    paths = {}
    for name, frame in (("tx_labels", result.labels), ("cluster_links", result.links),
                        ("clusters", result.clusters)):
        path = f"{out.rstrip('/')}/{name}"
        order = ["addr_id"] if name == "clusters" else ["tx_id"]
        frame.orderBy(*order).write.mode("overwrite").parquet(path)
        paths[name] = path
    return paths


def import_clustering(
    store: ChainStore, out: Path, config: ClusterConfig, height: int, *,
    seconds: float = 0.0, master: str = "",
) -> dict[str, Any]:
    """Replace the store's clustering with the Spark run written under `out` (local path).

    Writes `tx_labels`, `cluster_links` (in chain order), the cluster-id cache and a
    `cluster_runs` row; the clustered height and configuration hash are those of an embedded
    run of `config`, so every reader and later incremental runs treat it as one.
    """
    from cointrail import __version__
    from cointrail.analysis.clustering.engine import save_cluster_ids
    from cointrail.store.schema import CLUSTER_LINKS, CLUSTER_RUNS, CLUSTER_TABLES, TX_LABELS

    check_config(config)
    digest = config.digest()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    con = store.con
    globs = {name: str(out / name / "*.parquet") for name in
             ("tx_labels", "cluster_links", "clusters")}
    ids = con.execute(
        "SELECT addr_id, cluster_id FROM read_parquet(?) ORDER BY addr_id",
        [globs["clusters"]]).fetchnumpy()
    addr = np.asarray(ids["addr_id"], np.int64)
    if addr.size and not np.array_equal(addr, np.arange(addr.size, dtype=np.int64)):
        raise StoreError(
            f"the Spark cluster map under {out} does not cover addr_id 0..{addr.size - 1} "
            "densely; run the Spark job again on a fresh export")
    cluster_ids = np.asarray(ids["cluster_id"], np.int64)
    with store.transaction():
        for table in CLUSTER_TABLES:
            con.execute(f"DELETE FROM {table.name}")
        cols = ", ".join(TX_LABELS.column_names)
        con.execute(f"INSERT INTO {TX_LABELS.name} ({cols}) SELECT {cols} FROM read_parquet(?)"
                    " ORDER BY tx_id", [globs["tx_labels"]])
        cols = ", ".join(CLUSTER_LINKS.column_names)
        con.execute(f"INSERT INTO {CLUSTER_LINKS.name} ({cols}) SELECT {cols}"
                    " FROM read_parquet(?) ORDER BY tx_id, first_n", [globs["cluster_links"]])
        for key, value in (("cluster_height", str(height)), ("cluster_config_hash", digest)):
            con.execute("DELETE FROM sync_state WHERE key = ?", [key])
            con.execute("INSERT INTO sync_state VALUES (?, ?)", [key, value])
        links = int(con.execute(f"SELECT count(*) FROM {CLUSTER_LINKS.name}").fetchone()[0])  # type: ignore[index]
        coinjoins = int(con.execute(f"SELECT count(*) FROM {TX_LABELS.name}").fetchone()[0])  # type: ignore[index]
        clusters = int(np.unique(cluster_ids).size)
        merges = int(cluster_ids.size) - clusters  # each merge removes one cluster
        run_id = int(store.query("SELECT coalesce(max(run_id), 0) + 1 FROM cluster_runs")[0][0])
        block = store.block_hash_at(height) or b""
        described = config.describe() | {"engine": {"name": "spark", "master": master}}
        con.execute(
            f"INSERT INTO {CLUSTER_RUNS.name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, started_utc, 0, height, block,
             json.dumps(described, sort_keys=True, default=str), digest, links, merges, 0,
             coinjoins, f"{seconds:.3f}", __version__])
    save_cluster_ids(store, cluster_ids, height, digest)
    return {"run_id": run_id, "from_height": 0, "to_height": height,
            "block_hash": block[::-1].hex(), "addresses": int(cluster_ids.size),
            "clusters": clusters, "links": links, "merges": merges, "held_back": 0,
            "coinjoins": coinjoins, "config": described}


__all__ = [
    "SparkClustering",
    "check_config",
    "cluster_map",
    "import_clustering",
    "multi_input_links",
    "run_clustering",
    "write_clustering",
]
