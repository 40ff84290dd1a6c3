"""Stores written by an older cointrail are upgraded in place when opened for writing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cointrail import get_chain
from cointrail.chain.utxo.blkfile import iter_best_chain_blocks
from cointrail.chain.utxo.columnar import BlockColumns, decode_block_columns
from cointrail.chain.utxo.sigstyle import SIG_ECDSA
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import StoreError
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.queries import show_tx
from cointrail.store.schema import SCHEMA_VERSION
from cointrail.store.sync import ingest_blkfiles

SPEC = get_chain("bitcoin", "mainnet")


def _downgrade_to_v1(root: Path) -> Path:
    """Make the store look like one schema version 1 wrote: no account_txs table, no
    transfers.amount_exact column, transfers.tx_id NOT NULL, no inputs.sig_flags."""
    (db,) = root.glob("*.duckdb")
    con = duckdb.connect(str(db))
    try:
        con.execute("DROP TABLE account_txs")
        con.execute("ALTER TABLE transfers DROP COLUMN amount_exact")
        con.execute("ALTER TABLE transfers ALTER COLUMN tx_id SET NOT NULL")
        con.execute("ALTER TABLE inputs DROP COLUMN sig_flags")
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


def _ingest(store: ChainStore, blocks: list[BlockColumns]) -> None:
    with UtxoIngestor(store) as ingestor:  # its address records are released when it goes
        for block in blocks:
            ingestor.add_block(block)
        ingestor.flush()


def test_version_2_store_gains_signature_styles_for_new_blocks(tmp_path: Path) -> None:
    """Schema 3 adds inputs.sig_flags: rows ingested before keep NULL (unknown), blocks
    ingested after the upgrade get their flags, and nothing else changes."""
    blocks = [decode_block_columns(raw, SPEC) for height, raw
              in iter_best_chain_blocks(bundled_path(EARLY_MAINNET_BLOCKS), SPEC) if height < 200]
    with Store(tmp_path).chain(SPEC) as store:
        _ingest(store, blocks[:180])
        before = store.table_counts()
    (db,) = tmp_path.glob("*.duckdb")
    con = duckdb.connect(str(db))
    try:
        con.execute("ALTER TABLE inputs DROP COLUMN sig_flags")
        con.execute("UPDATE sync_state SET value = '2' WHERE key = 'schema_version'")
    finally:
        con.close()
    with pytest.raises(StoreError, match=r"older cointrail .*schema version 2"):
        Store(tmp_path).chain(SPEC, read_only=True)
    with Store(tmp_path).chain(SPEC) as store:
        assert store.state()["schema_version"] == str(SCHEMA_VERSION) == "3"
        assert store.table_counts() == before
        assert store.query("SELECT count(*) FROM inputs WHERE sig_flags IS NOT NULL") == [(0,)]
        _ingest(store, blocks[180:])
        flagged = store.query(
            "SELECT t.height, i.sig_flags FROM inputs i JOIN txs t USING (tx_id) "
            "ORDER BY t.height, i.tx_id, i.n")
        # `show tx` says "not known" for the old input and names the new one's style
        before_txid, after_txid = (bytes(t)[::-1].hex() for (t,) in store.query(
            "SELECT txid FROM txs WHERE NOT is_coinbase AND height IN (170, 181) "
            "ORDER BY height"))
        assert show_tx(store, before_txid)["vin"][0]["signature"] is None
        assert show_tx(store, after_txid)["vin"][0]["signature"] == {
            "ecdsa": True, "high_r": False, "sighash_not_all": False, "schnorr": False,
            "uncompressed_key": False}
    # block 170 (Satoshi pays Hal Finney) is before the upgrade; blocks 181, 182, 183, 187
    # spend its change afterwards, each with one ECDSA signature of a P2PK coin
    assert [f for h, f in flagged if h < 180] == [None]
    after = [f for h, f in flagged if h >= 180]
    assert after and all(f is not None and f & SIG_ECDSA for f in after)
