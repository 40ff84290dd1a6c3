"""Stores written by an older cointrail are upgraded in place when opened for writing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cointrail import get_chain
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import StoreError
from cointrail.store.duck import Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.schema import SCHEMA_VERSION
from cointrail.store.sync import ingest_blkfiles

SPEC = get_chain("bitcoin", "mainnet")


def _downgrade_to_v1(root: Path) -> Path:
    """Make the store look like one schema version 1 wrote: no account_txs table, no
    transfers.amount_exact column, transfers.tx_id NOT NULL."""
    (db,) = root.glob("*.duckdb")
    con = duckdb.connect(str(db))
    try:
        con.execute("DROP TABLE account_txs")
        con.execute("ALTER TABLE transfers DROP COLUMN amount_exact")
        con.execute("ALTER TABLE transfers ALTER COLUMN tx_id SET NOT NULL")
        con.execute("UPDATE sync_state SET value = '1' WHERE key = 'schema_version'")
    finally:
        con.close()
    return db


def _columns(db: Path, table: str) -> dict[str, bool]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = ?", [table]).fetchall()
    finally:
        con.close()
    return {str(name): nullable == "YES" for name, nullable in rows}


def test_version_1_store_is_upgraded_when_opened_for_writing(tmp_path: Path) -> None:
    with Store(tmp_path).chain(SPEC) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        before = store.table_counts()
    db = _downgrade_to_v1(tmp_path)
    assert "amount_exact" not in _columns(db, "transfers")

    with pytest.raises(StoreError, match=r"older cointrail .*schema version 1"):
        Store(tmp_path).chain(SPEC, read_only=True)

    with Store(tmp_path).chain(SPEC) as store:
        assert store.state()["schema_version"] == str(SCHEMA_VERSION)
        assert store.table_counts() == before  # no data lost
        exported = store.export_parquet(tmp_path / "parquet")
    assert "transfers" in exported and "account_txs" in exported
    columns = _columns(db, "transfers")
    assert "amount_exact" in columns and columns["tx_id"] is True
    with Store(tmp_path).chain(SPEC, read_only=True) as store:
        assert store.tip() is not None and store.tip().height == 438
