"""The local columnar store: DuckDB (embedded default) plus a Parquet layout for Spark."""

from cointrail.store.duck import ChainStore, Store

__all__ = ["ChainStore", "Store"]
