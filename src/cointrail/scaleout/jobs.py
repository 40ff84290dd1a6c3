"""Driver-side jobs behind the CLI: export the store, run on Spark, bring the result back.

`cluster_with_spark` is ``cointrail cluster --engine spark``; `exposure_with_spark` is
``cointrail exposure SUBJECT --engine spark``. Both export the store's tables to Parquet
(`ChainStore.export_parquet`) unless given a layout that already holds them (``--parquet``,
e.g. a copy on object storage the cluster reads), so the Spark side never opens DuckDB.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cointrail.errors import InputError, NotFoundError
from cointrail.scaleout.session import DEFAULT_MASTER, is_local

if TYPE_CHECKING:
    from cointrail.analysis.clustering.engine import ClusterConfig
    from cointrail.store.duck import ChainStore


@contextmanager
def _workdir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    path = Path(tempfile.mkdtemp(prefix="cointrail-spark-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _layout_root(store: ChainStore, work: Path, parquet: str | None) -> str:
    if parquet is not None:
        return parquet
    store.export_parquet(work / "layout")
    return str(work / "layout")


def _check_master(master: str, parquet: str | None, work_dir: Path | None) -> None:
    if not is_local(master) and (parquet is None or work_dir is None):
        raise InputError(
            f"--master {master} is a cluster: give --parquet (the exported layout on storage "
            "the executors read) and --work-dir (a folder both this machine and the executors "
            "reach, for the results)"
        )


def cluster_with_spark(
    store: ChainStore,
    config: ClusterConfig,
    *,
    master: str = DEFAULT_MASTER,
    parquet: str | None = None,
    work_dir: Path | None = None,
    max_rounds: int = 40,
    to_height: int | None = None,
) -> dict[str, Any]:
    """Cluster the store on Spark and import the result (see `scaleout.clustering`)."""
    from cointrail.scaleout.clustering import (
        check_config,
        import_clustering,
        run_clustering,
        write_clustering,
    )
    from cointrail.scaleout.layout import load_layout
    from cointrail.scaleout.session import spark_session

    check_config(config)
    _check_master(master, parquet, work_dir)
    tip = store.tip()
    if tip is None:
        raise NotFoundError(f"the {store.spec.key} store holds no blocks; ingest first")
    height = tip.height if to_height is None else to_height
    started = time.perf_counter()
    with _workdir(work_dir) as work:
        root = _layout_root(store, work, parquet)
        spark = spark_session(master)
        layout = load_layout(spark, root, height)
        result = run_clustering(layout, coinjoin_detection=config.coinjoin_detection,
                                max_rounds=max_rounds)
        write_clustering(result, str(work / "clustering"))
        doc = import_clustering(store, work / "clustering", config, height,
                                seconds=time.perf_counter() - started, master=master)
    return doc | {"rounds": result.rounds, "seconds": round(time.perf_counter() - started, 3),
                  "restarted": True}


def _subject_addr_ids(store: ChainStore, subject: str) -> tuple[np.ndarray, int]:
    """The address ids of an address or ``cluster:ID`` subject, and the subject's id."""
    from cointrail.analysis.tracing import parse_start
    from cointrail.chain.utxo.address import parse_address

    start = parse_start(subject)
    if start.kind == "cluster":
        from cointrail.analysis.clustering.engine import cluster_view

        assert start.cluster_id is not None
        view = cluster_view(store)
        current = view.of(start.cluster_id)
        cid = start.cluster_id if current is None else current
        members = view.members(cid)
        if members.size == 0:
            raise NotFoundError(f"no cluster {start.cluster_id} in the {store.spec.key} "
                                "clustering")
        return np.asarray(members, np.int64), cid
    if start.kind != "address":
        raise InputError(f"{subject}: exposure is for an address or cluster:ID")
    text = parse_address(start.text, store.spec).text
    found = store.query("SELECT addr_id FROM addresses WHERE text = ?", [text])
    if not found:
        raise NotFoundError(f"{text} has never appeared on the {store.spec.key} chain")
    addr = int(found[0][0])
    return np.array([addr], np.int64), addr


def exposure_with_spark(
    store: ChainStore,
    subject: str,
    *,
    direction: str = "both",
    hops: int = 1,
    master: str = DEFAULT_MASTER,
    parquet: str | None = None,
    work_dir: Path | None = None,
    attribution_root: Path | None = None,
) -> dict[str, Any]:
    """One subject's one-hop exposure computed on Spark (`scaleout.exposure`), as a document
    shaped like `Exposure.to_dict()`; category totals equal ``cointrail exposure --hops 1``."""
    from cointrail.scaleout.exposure import (
        exposure_document,
        spark_exposure,
        stop_table,
        subject_table,
    )
    from cointrail.scaleout.layout import load_layout
    from cointrail.scaleout.session import spark_session

    if hops != 1:
        raise InputError(f"--engine spark computes exposure at one hop, not {hops}; use "
                         "--hops 1, or the embedded engine for deeper traces")
    if direction not in ("in", "out", "both"):
        raise InputError(f"--direction {direction!r}: use in, out or both")
    _check_master(master, parquet, work_dir)
    addr_ids, sid = _subject_addr_ids(store, subject)
    stops = stop_table(store, attribution_root)
    with _workdir(work_dir) as work:
        root = _layout_root(store, work, parquet)
        layout = load_layout(spark_session(master), root)
        rows = [tuple(r) for r in spark_exposure(
            layout, subject_table(addr_ids, sid), stops).collect()]
    return exposure_document(rows, sid, subject.strip(), direction)


__all__ = ["cluster_with_spark", "exposure_with_spark"]


def statistics_with_spark(
    store: ChainStore,
    out: Path,
    *,
    master: str = DEFAULT_MASTER,
    parquet: str | None = None,
    work_dir: Path | None = None,
    max_rounds: int = 40,
) -> dict[str, Any]:
    """Address and cluster statistics on Spark, written as Parquet folders under `out`
    (``address_stats/``, ``cluster_stats/``); the clusters are computed on Spark too
    (multi-input with CoinJoin exclusion), as `cluster_with_spark` computes them."""
    from cointrail.scaleout.clustering import run_clustering
    from cointrail.scaleout.layout import load_layout
    from cointrail.scaleout.session import spark_session
    from cointrail.scaleout.statistics import (
        ADDRESS_STATS_SQL,
        CLUSTER_STATS_SQL,
        spark_statistics,
    )

    _check_master(master, parquet, work_dir)
    tip = store.tip()
    if tip is None:
        raise NotFoundError(f"the {store.spec.key} store holds no blocks; ingest first")
    started = time.perf_counter()
    with _workdir(work_dir) as work:
        root = _layout_root(store, work, parquet)
        spark = spark_session(master)
        layout = load_layout(spark, root, tip.height)
        result = run_clustering(layout, max_rounds=max_rounds)
        written = {}
        for name, key, sql, clusters in (
                ("address_stats", "addr_id", ADDRESS_STATS_SQL, None),
                ("cluster_stats", "cluster_id", CLUSTER_STATS_SQL, result.clusters)):
            frame = spark_statistics(layout, sql, clusters).orderBy(key)
            frame.write.mode("overwrite").parquet(str(out / name))
            written[name] = str(out / name)
    return {"engine": "spark", "master": master, "height": tip.height, "written": written,
            "seconds": round(time.perf_counter() - started, 3)}


def statistics_embedded(store: ChainStore, out: Path) -> dict[str, Any]:
    """The same statistics from the embedded store and its clustering, written as Parquet
    folders under `out` (one file each), for comparison with the Spark job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cointrail.analysis.clustering.engine import cluster_view
    from cointrail.scaleout.statistics import (
        ADDRESS_COLUMNS,
        ADDRESS_STATS_SQL,
        CLUSTER_COLUMNS,
        CLUSTER_STATS_SQL,
        duckdb_statistics,
    )

    tip = store.tip()
    if tip is None:
        raise NotFoundError(f"the {store.spec.key} store holds no blocks; ingest first")
    started = time.perf_counter()
    ids = np.asarray(cluster_view(store).ids)
    written = {}
    for name, sql, columns, clusters in (
            ("address_stats", ADDRESS_STATS_SQL, ADDRESS_COLUMNS, None),
            ("cluster_stats", CLUSTER_STATS_SQL, CLUSTER_COLUMNS, ids)):
        rows = duckdb_statistics(store, tip.height, sql, clusters)
        table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})
        (out / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / name / "part-00000.parquet")
        written[name] = str(out / name)
    return {"engine": "embedded", "height": tip.height, "written": written,
            "seconds": round(time.perf_counter() - started, 3)}

