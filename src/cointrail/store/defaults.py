"""Defaults of the store's ingest and its file names, importable without loading DuckDB or
Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cointrail.chain.spec import ChainSpec

#: A chain's database file in a store directory: ``<chain>-<network>.duckdb``
DB_SUFFIX = ".duckdb"


def db_name(spec: ChainSpec) -> str:
    """The file name of one chain's and network's database in a store directory."""
    return f"{spec.chain}-{spec.network}{DB_SUFFIX}"

#: Transactions per committed batch. DuckDB writes the full row groups (122,880 rows) of a
#: large insert straight to the database file while inserting; the rows of a smaller batch
#: are written by a checkpoint at its commit, which costs more per row and per commit.
#: On a 250,000-transaction chain (about 1.35 M rows) DuckDB's share of the ingest fell from
#: 0.93 s in batches of 50,000 to 0.63 s in batches of 200,000 (docs/benchmarks.md). The
#: batch's buffers are the bound on memory besides the two indexes: about 120 MiB for
#: 200,000 mainnet-shaped transactions, twice that while DuckDB inserts them.
DEFAULT_BATCH_TXS = 200_000
