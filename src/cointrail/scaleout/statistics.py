"""Address and cluster statistics: one SQL text, run by DuckDB (embedded) and Spark SQL.

The queries read the store's tables by their names (``txs``, ``outputs``, ``inputs``,
``addresses``) plus two small inputs each engine provides: ``stat_bound(height)``, one row with
the height the statistics are taken at, and ``cluster_map(addr_id, cluster_id)``. Only SQL both
engines read the same way is used (``CAST``, ``coalesce``, ``least``/``greatest`` skipping
NULLs, scalar subqueries), so the two results compare row for row.

The figures are the ones `show address` and `show cluster` report: received and sent satoshi,
balance, the number of outputs received and inputs spent, first and last height seen (first
seen of a cluster: its oldest address's first height).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from cointrail.scaleout.layout import ChainLayout
    from cointrail.store.duck import ChainStore

ADDRESS_STATS_SQL = """
SELECT a.addr_id,
       coalesce(r.received, 0) AS received_sat,
       coalesce(s.sent, 0) AS sent_sat,
       coalesce(r.received, 0) - coalesce(s.sent, 0) AS balance_sat,
       coalesce(r.outputs, 0) AS outputs_received,
       coalesce(s.inputs, 0) AS inputs_spent,
       least(r.first_height, s.first_height) AS first_height,
       greatest(r.last_height, s.last_height) AS last_height
FROM addresses a
LEFT JOIN (
    SELECT o.addr_id, CAST(sum(o.value) AS BIGINT) AS received, count(*) AS outputs,
           min(t.height) AS first_height, max(t.height) AS last_height
    FROM outputs o JOIN txs t ON t.tx_id = o.tx_id
    WHERE o.addr_id IS NOT NULL AND t.height <= (SELECT height FROM stat_bound)
    GROUP BY o.addr_id
) r ON r.addr_id = a.addr_id
LEFT JOIN (
    SELECT i.addr_id, CAST(sum(i.value) AS BIGINT) AS sent, count(*) AS inputs,
           min(t.height) AS first_height, max(t.height) AS last_height
    FROM inputs i JOIN txs t ON t.tx_id = i.tx_id
    WHERE i.addr_id IS NOT NULL AND t.height <= (SELECT height FROM stat_bound)
    GROUP BY i.addr_id
) s ON s.addr_id = a.addr_id
WHERE a.first_height <= (SELECT height FROM stat_bound)
"""
"""One row per address first seen up to the bound."""

CLUSTER_STATS_SQL = f"""
WITH st AS ({ADDRESS_STATS_SQL})
SELECT c.cluster_id,
       count(*) AS size,
       CAST(sum(st.received_sat) AS BIGINT) AS received_sat,
       CAST(sum(st.sent_sat) AS BIGINT) AS sent_sat,
       CAST(sum(st.balance_sat) AS BIGINT) AS balance_sat,
       CAST(sum(st.outputs_received) AS BIGINT) AS outputs_received,
       CAST(sum(st.inputs_spent) AS BIGINT) AS inputs_spent,
       min(a.first_height) AS first_seen_height,
       max(st.last_height) AS last_seen_height
FROM cluster_map c
JOIN st ON st.addr_id = c.addr_id
JOIN addresses a ON a.addr_id = c.addr_id
GROUP BY c.cluster_id
"""
"""One row per cluster: the sums of its addresses' statistics."""

ADDRESS_COLUMNS = ("addr_id", "received_sat", "sent_sat", "balance_sat", "outputs_received",
                   "inputs_spent", "first_height", "last_height")
CLUSTER_COLUMNS = ("cluster_id", "size", "received_sat", "sent_sat", "balance_sat",
                   "outputs_received", "inputs_spent", "first_seen_height", "last_seen_height")


def _bound(height: int) -> pa.Table:
    return pa.table({"height": pa.array([height], pa.int32())})


def _cluster_table(cluster_ids: np.ndarray) -> pa.Table:
    ids = np.asarray(cluster_ids, np.int64)
    return pa.table({"addr_id": pa.array(np.arange(ids.size, dtype=np.int64)),
                     "cluster_id": pa.array(ids)})


def duckdb_statistics(
    store: ChainStore, height: int, sql: str, cluster_ids: np.ndarray | None = None,
) -> list[tuple[Any, ...]]:
    """Run a statistics SQL text on the embedded store (ordered by its first column)."""
    con = store.con
    con.register("stat_bound", _bound(height))
    if cluster_ids is not None:
        con.register("cluster_map", _cluster_table(cluster_ids))
    try:
        return con.execute(f"SELECT * FROM ({sql}) q ORDER BY 1").fetchall()
    finally:
        con.unregister("stat_bound")
        if cluster_ids is not None:
            con.unregister("cluster_map")


def spark_statistics(layout: ChainLayout, sql: str, clusters: DataFrame | None = None
                     ) -> DataFrame:
    """Run a statistics SQL text on Spark over `layout` (views registered by this call)."""
    spark = layout.spark
    layout.register()
    spark.createDataFrame([(layout.height,)], "height INT").createOrReplaceTempView("stat_bound")
    if clusters is not None:
        clusters.select("addr_id", "cluster_id").createOrReplaceTempView("cluster_map")
    return spark.sql(sql)


__all__ = [
    "ADDRESS_COLUMNS",
    "ADDRESS_STATS_SQL",
    "CLUSTER_COLUMNS",
    "CLUSTER_STATS_SQL",
    "duckdb_statistics",
    "spark_statistics",
]
