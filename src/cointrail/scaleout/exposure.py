"""Direct exposure of every cluster, by counterparty category: one SQL text for DuckDB and Spark.

`cointrail exposure SUBJECT --hops 1` traces one subject; this aggregation computes the same
figures for every cluster at once, which is what a batch (risk screening of a whole chain) needs.
For each cluster S and direction it gives the satoshi per endpoint category of the one-hop
haircut trace (`cointrail.analysis.tracing`, `cointrail.analysis.risk.exposure`):

The query is staged: `EXPOSURE_STEPS` are materialised in order (DuckDB temporary tables,
Spark checkpointed views), then `EXPOSURE_SQL` aggregates them.

- *out*: each output of S that is spent enters its spending transaction (or stops there as
  ``coinjoin`` when the transaction is labelled one); each such input's value is split over the
  transaction's outputs and fee in proportion to their values, by largest remainder (ties to the
  earlier target, the fee last). Shares reaching an output of S are S paying itself (absorbed,
  not counted); the rest end as the category of the output's address (tag or sanctions stop,
  with cluster mates), else ``hop_limit`` if spent and ``unspent`` if not; fee shares as ``fee``.
  Unspent outputs of S itself are left out, as in the embedded exposure.
- *in*: each output of S ends as ``coinbase`` or ``coinjoin`` when its transaction is one, else
  its value is split over that transaction's inputs by largest remainder; shares reaching an
  output of S are absorbed, the rest end as the category of the spent output's address, else
  ``coinbase`` (it was newly mined) or ``hop_limit``.

A subject is a set of addresses: ``subject_map(addr_id, subject)`` lists them (every
cluster: `cluster_subjects`; one address or cluster: `subject_table`). The other inputs are
``stop_map(addr_id, category)`` (`stop_table`: the stops the embedded trace loads from the
attribution database) and ``tx_labels``. Products of two amounts need up to 31 digits, so
they are DECIMAL(38, 0) and the division is exact (``(x - x % w) / w``) in both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from cointrail.scaleout.layout import ChainLayout
    from cointrail.store.duck import ChainStore

_FEE_TARGET = 2147483647  # the fee is the last target of a forward split

_SPLIT = """
    SELECT subject, tx_id, k, j, w, addr_id, is_fee, prev_tx_id, prev_n,
           base + CASE WHEN row_number() OVER (PARTITION BY subject, tx_id, k
                                               ORDER BY rem DESC, j) <= amount - sum(base)
                            OVER (PARTITION BY subject, tx_id, k) THEN 1 ELSE 0 END AS share
    FROM (
        SELECT p.*, CAST((p.x - p.x % p.total) / p.total AS BIGINT) AS base,
               p.x % p.total AS rem
        FROM (
            SELECT s.subject, s.tx_id, s.k, s.amount, t.j, t.w, t.addr_id, t.is_fee,
                   t.prev_tx_id, t.prev_n,
                   CAST(s.amount AS DECIMAL(38, 0)) * CAST(t.w AS DECIMAL(38, 0)) AS x,
                   CAST(wt.total AS DECIMAL(38, 0)) AS total
            FROM {sources} s JOIN {targets} t ON t.tx_id = s.tx_id
            JOIN (SELECT tx_id, sum(w) AS total FROM {targets} GROUP BY tx_id) wt
              ON wt.tx_id = s.tx_id
        ) p
    ) b
"""

EXPOSURE_STEPS: tuple[tuple[str, str], ...] = (
    ("exp_seeds", """
        SELECT m.subject, o.tx_id, o.n, o.value
        FROM outputs o JOIN subject_map m ON m.addr_id = o.addr_id
        WHERE o.value > 0"""),
    ("exp_cj", "SELECT DISTINCT tx_id FROM tx_labels WHERE label = 'coinjoin'"),
    ("exp_f_src", """
        SELECT s.subject, i.tx_id, i.n AS k, s.value AS amount, (cj.tx_id IS NOT NULL) AS is_cj
        FROM exp_seeds s JOIN inputs i ON i.prev_tx_id = s.tx_id AND i.prev_n = s.n
        LEFT JOIN exp_cj cj ON cj.tx_id = i.tx_id"""),
    ("exp_f_live", "SELECT subject, tx_id, k, amount FROM exp_f_src WHERE NOT is_cj"),
    ("exp_f_tgt", f"""
        SELECT tx_id, n AS j, value AS w, addr_id, 0 AS is_fee,
               CAST(NULL AS BIGINT) AS prev_tx_id, CAST(NULL AS INT) AS prev_n
        FROM outputs WHERE tx_id IN (SELECT tx_id FROM exp_f_live)
        UNION ALL
        SELECT tx_id, {_FEE_TARGET} AS j, fee AS w, CAST(NULL AS BIGINT) AS addr_id,
               1 AS is_fee, CAST(NULL AS BIGINT) AS prev_tx_id, CAST(NULL AS INT) AS prev_n
        FROM txs WHERE fee > 0 AND tx_id IN (SELECT tx_id FROM exp_f_live)"""),
    ("exp_f_share", _SPLIT.format(sources="exp_f_live", targets="exp_f_tgt")),
    ("exp_b_src", """
        SELECT s.subject, s.tx_id, s.n AS k, s.value AS amount, t.is_coinbase,
               (cj.tx_id IS NOT NULL) AS is_cj
        FROM exp_seeds s JOIN txs t ON t.tx_id = s.tx_id LEFT JOIN exp_cj cj ON cj.tx_id = s.tx_id
    """),
    ("exp_b_live", """
        SELECT subject, tx_id, k, amount FROM exp_b_src WHERE NOT is_coinbase AND NOT is_cj"""),
    ("exp_b_tgt", """
        SELECT tx_id, n AS j, value AS w, addr_id, 0 AS is_fee, prev_tx_id, prev_n
        FROM inputs WHERE tx_id IN (SELECT tx_id FROM exp_b_live)"""),
    ("exp_b_share", _SPLIT.format(sources="exp_b_live", targets="exp_b_tgt")),
)
"""The intermediate tables, in order: each engine materialises them under these names."""

EXPOSURE_SQL = """
WITH
f_reach AS (
    SELECT subject, tx_id, j AS n, addr_id, least(CAST(sum(share) AS BIGINT), max(w)) AS amount
    FROM exp_f_share WHERE is_fee = 0 GROUP BY subject, tx_id, j, addr_id
),
f_end AS (
    SELECT r.subject,
           CASE WHEN st.category IS NOT NULL THEN st.category
                WHEN sp.tx_id IS NOT NULL THEN 'hop_limit' ELSE 'unspent' END AS category,
           r.amount
    FROM f_reach r
    LEFT JOIN subject_map m ON m.addr_id = r.addr_id AND m.subject = r.subject
    LEFT JOIN stop_map st ON st.addr_id = r.addr_id
    LEFT JOIN inputs sp ON sp.prev_tx_id = r.tx_id AND sp.prev_n = r.n
    WHERE r.amount > 0 AND m.addr_id IS NULL
),
f_fee AS (
    SELECT subject, 'fee' AS category, least(CAST(sum(share) AS BIGINT), max(w)) AS amount
    FROM exp_f_share WHERE is_fee = 1 GROUP BY subject, tx_id
),
b_reach AS (
    SELECT subject, prev_tx_id, prev_n, addr_id,
           least(CAST(sum(share) AS BIGINT), max(w)) AS amount
    FROM exp_b_share GROUP BY subject, prev_tx_id, prev_n, addr_id
),
b_end AS (
    SELECT r.subject,
           CASE WHEN st.category IS NOT NULL THEN st.category
                WHEN pt.is_coinbase THEN 'coinbase' ELSE 'hop_limit' END AS category,
           r.amount
    FROM b_reach r
    JOIN txs pt ON pt.tx_id = r.prev_tx_id
    LEFT JOIN subject_map m ON m.addr_id = r.addr_id AND m.subject = r.subject
    LEFT JOIN stop_map st ON st.addr_id = r.addr_id
    WHERE r.amount > 0 AND m.addr_id IS NULL
),
ends AS (
    SELECT subject, 'out' AS direction, 'coinjoin' AS category, amount
    FROM exp_f_src WHERE is_cj
    UNION ALL SELECT subject, 'out', category, amount FROM f_end
    UNION ALL SELECT subject, 'out', category, amount FROM f_fee WHERE amount > 0
    UNION ALL SELECT subject, 'in',
                     CASE WHEN is_coinbase THEN 'coinbase' ELSE 'coinjoin' END, amount
              FROM exp_b_src WHERE is_coinbase OR is_cj
    UNION ALL SELECT subject, 'in', category, amount FROM b_end
)
SELECT subject, direction, category, CAST(sum(amount) AS BIGINT) AS amount_sat
FROM ends GROUP BY subject, direction, category
"""
"""``(subject, direction, category, amount_sat)``: the one-hop exposure of every subject,
over the tables of `EXPOSURE_STEPS`."""

EXPOSURE_COLUMNS = ("subject", "direction", "category", "amount_sat")


def stop_table(store: ChainStore, attribution_root: Path | None = None) -> pa.Table:
    """``(addr_id, category)`` of every address a trace stops at, exactly as
    `cointrail.analysis.risk.exposure.exposure` loads its stops (every tag category of the
    chain, sanctions, and the cluster mates of tagged addresses)."""
    from cointrail.analysis.risk.exposure import tag_categories
    from cointrail.analysis.tracing import SERVICE_CATEGORIES
    from cointrail.analysis.tracing.stops import load_stops

    stops = load_stops(store, SERVICE_CATEGORIES | tag_categories(store, attribution_root),
                       sanctioned=True, clusters=True, attribution_root=attribution_root)
    found: dict[int, str] = {}
    if stops.by_cluster and stops.cluster_ids is not None:
        ids = np.asarray(stops.cluster_ids)
        wanted = np.fromiter(stops.by_cluster, np.int64)
        for a in np.flatnonzero(np.isin(ids, wanted)).tolist():
            found[int(a)] = stops.by_cluster[int(ids[a])].category
    found |= {a: s.category for a, s in stops.by_addr.items()}
    keys = sorted(found)
    return pa.table({"addr_id": pa.array(keys, pa.int64()),
                     "category": pa.array([found[k] for k in keys], pa.string())})


def cluster_subjects(cluster_ids: np.ndarray) -> pa.Table:
    """``subject_map`` with every cluster as a subject (index of `cluster_ids` = addr_id)."""
    ids = np.asarray(cluster_ids, np.int64)
    return pa.table({"addr_id": pa.array(np.arange(ids.size, dtype=np.int64)),
                     "subject": pa.array(ids)})


def subject_table(addr_ids: np.ndarray, subject: int) -> pa.Table:
    """``subject_map`` with one subject made of `addr_ids`."""
    ids = np.asarray(addr_ids, np.int64)
    return pa.table({"addr_id": pa.array(ids),
                     "subject": pa.array(np.full(ids.size, subject, np.int64))})


def duckdb_exposure(store: ChainStore, subjects: pa.Table, stops: pa.Table
                    ) -> list[tuple[Any, ...]]:
    """Run `EXPOSURE_SQL` on the embedded store, ordered by subject, direction, category."""
    con = store.con
    con.register("subject_map", subjects)
    con.register("stop_map", stops)
    try:
        for name, sql in EXPOSURE_STEPS:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        return con.execute(f"SELECT * FROM ({EXPOSURE_SQL}) q ORDER BY 1, 2, 3").fetchall()
    finally:
        for name, _ in EXPOSURE_STEPS:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.unregister("subject_map")
        con.unregister("stop_map")


def _frame(spark: Any, table: pa.Table, schema: str) -> DataFrame:
    rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)),
                    strict=True))
    frame: DataFrame = spark.createDataFrame(rows, schema)
    return frame


def spark_exposure(layout: ChainLayout, subjects: DataFrame | pa.Table,
                   stops: DataFrame | pa.Table, labels: DataFrame | None = None) -> DataFrame:
    """Run `EXPOSURE_SQL` on Spark over `layout`. `subjects` is a ``subject_map`` (a Spark
    cluster map ``(addr_id, cluster_id)`` is taken as every cluster); `labels` default to the
    layout's tx_labels."""
    from cointrail.scaleout.components import checkpoint

    spark = layout.spark
    layout.register()
    if isinstance(subjects, pa.Table):
        subjects = _frame(spark, subjects, "addr_id BIGINT, subject BIGINT")
    elif "subject" not in subjects.columns:
        subjects = subjects.withColumnRenamed("cluster_id", "subject")
    subjects.select("addr_id", "subject").createOrReplaceTempView("subject_map")
    if isinstance(stops, pa.Table):
        stops = _frame(spark, stops, "addr_id BIGINT, category STRING")
    stops.createOrReplaceTempView("stop_map")
    labels = labels if labels is not None else layout.tx_labels
    if labels is None:
        labels = spark.createDataFrame([], "tx_id BIGINT, label STRING")
    labels.select("tx_id", "label").createOrReplaceTempView("tx_labels")
    for name, sql in EXPOSURE_STEPS:  # materialised: the plan stays small, each step once
        checkpoint(spark.sql(sql)).createOrReplaceTempView(name)
    return spark.sql(EXPOSURE_SQL)


def category_totals(rows: list[tuple[Any, ...]], subject: int) -> dict[str, dict[str, int]]:
    """``{"in"|"out": {category: amount_sat}}`` of one subject's exposure rows."""
    out: dict[str, dict[str, int]] = {"in": {}, "out": {}}
    for sid, direction, category, amount in rows:
        if sid == subject:
            out[str(direction)][str(category)] = int(amount)
    return out


def exposure_document(rows: list[tuple[Any, ...]], subject: int, text: str,
                      direction: str = "both") -> dict[str, Any]:
    """One subject's rows in the shape of `Exposure.to_dict()` (one hop: all of it direct;
    the per-endpoint lists and paths are the embedded command's and are left empty)."""
    from cointrail.analysis.risk.exposure import CHAIN_CATEGORIES

    totals = category_totals(rows, subject)
    doc: dict[str, Any] = {"subject": text, "hops": 1, "incoming": None, "outgoing": None,
                           "record": {"engine": "spark", "query": "scaleout.exposure"}}
    for key, name in (("in", "incoming"), ("out", "outgoing")):
        if direction not in (key, "both"):
            continue
        cats = totals[key]
        total = sum(cats.values())
        groups: dict[str, dict[str, Any]] = {c: {
                      "kind": "chain" if c in CHAIN_CATEGORIES else "attribution",
                      "amount_sat": a, "direct_sat": a, "indirect_sat": 0,
                      "amount_share": a / total if total else 0.0,
                      "direct_share": a / total if total else 0.0, "indirect_share": 0.0,
                      "endpoint_count": None, "endpoints": []} for c, a in cats.items()}
        order = sorted(groups, key=lambda c: (groups[c]["kind"] != "attribution",
                                              -groups[c]["amount_sat"], c))
        doc[name] = {"direction": key, "total_sat": total, "absorbed_sat": None,
                     "categories": {c: groups[c] for c in order}}
    return doc


__all__ = [
    "EXPOSURE_COLUMNS",
    "EXPOSURE_SQL",
    "EXPOSURE_STEPS",
    "category_totals",
    "cluster_subjects",
    "duckdb_exposure",
    "exposure_document",
    "spark_exposure",
    "stop_table",
    "subject_table",
]
