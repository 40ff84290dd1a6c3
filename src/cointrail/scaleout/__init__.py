"""Scale-out: the batch analyses on Apache Spark, over the store's Parquet layout.

The embedded store (DuckDB) serves one machine; past it, the same analyses run on Spark over the
Parquet tree `ChainStore.export_parquet` writes, with results equal to the embedded ones:

- `layout`: the exported tables cut at a height; input resolution and address first-seen from
  the raw columns, checked against the export.
- `clustering`: multi-input clustering with CoinJoin exclusion (the embedded detectors run on the
  executors, `coinjoin`), connected components by large-star / small-star (`components`), and
  the write-back into the store.
- `statistics`: address and cluster statistics, one SQL text that DuckDB and Spark SQL both run.
- `exposure`: one-hop exposure of every cluster (or one subject) by category, one SQL text.
- `jobs`: the drivers behind `cointrail cluster --engine spark` and `exposure --engine spark`.

PySpark is an optional extra (``pip install 'cointrail[spark]'``) imported only when a job runs.
"""
