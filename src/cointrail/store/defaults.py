"""Defaults of the store's ingest, importable without loading DuckDB or Arrow."""

from __future__ import annotations

#: Transactions per committed batch. DuckDB writes the full row groups (122,880 rows) of a
#: large insert straight to the database file while inserting; the rows of a smaller batch
#: are written by a checkpoint at its commit, which costs more per row and per commit.
#: On a 250,000-transaction chain (about 1.35 M rows) DuckDB's share of the ingest fell from
#: 0.93 s in batches of 50,000 to 0.63 s in batches of 200,000 (docs/benchmarks.md). The
#: batch's buffers are the bound on memory besides the two indexes: about 120 MiB for
#: 200,000 mainnet-shaped transactions, twice that while DuckDB inserts them.
DEFAULT_BATCH_TXS = 200_000
