"""Queries after a rollback: rows deleted since the last checkpoint must not hide the new tip.

DuckDB 1.5's row-group pruner answered ``ORDER BY height DESC LIMIT 1`` from statistics that
still counted the deleted rows, so after a reorg the store's tip (and every "latest row" query)
was the block below the real tip until the table was next checkpointed. `connect_duckdb`
switches the pruner off; these tests fail without that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cointrail.chain.utxo.blkfile import iter_best_chain_blocks
from cointrail.chain.utxo.columnar import decode_block_columns
from cointrail.chain.utxo.hashes import sha256d
from cointrail.store.duck import connect_duckdb, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles
from tests.support.data import require_shared


def test_latest_row_after_deleting_the_top_and_appending(tmp_path: Path) -> None:
    con = connect_duckdb(tmp_path / "t.duckdb", read_only=False, what="the test database")
    con.execute("CREATE TABLE blocks (height INTEGER, hash BLOB)")
    con.execute("INSERT INTO blocks SELECT i, 'a' FROM range(432) t(i)")
    con.execute("CHECKPOINT")
    con.execute("DELETE FROM blocks WHERE height > 429")  # a reorg: 430 and 431 go
    con.execute("INSERT INTO blocks VALUES (430, 'b')")  # the other branch's 430
    assert con.execute(
        "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1").fetchall() == [
            (430, b"b")]
    con.close()


@pytest.mark.filterwarnings("ignore:another ingestor holds")
@pytest.mark.parametrize("background", [False, True])
def test_the_tip_after_a_rollback_to_a_shorter_branch_is_the_new_tip(
    tmp_path: Path, background: bool
) -> None:
    """Blocks 0-438 ingested and checkpointed; a rollback to 430 and blocks 431-435 again (a
    branch shorter than the one removed): the tip is 435, not a block below it."""
    blocks = require_shared("btc/blocks/mainnet-000000-000438.blk")
    raws = dict(iter_best_chain_blocks(blocks, "bitcoin"))
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    with UtxoIngestor(store, background_writes=background) as ingestor:
        ingest_blkfiles(ingestor, str(blocks))
    store.close()  # checkpointed: the rollback below deletes rows of a checkpointed table
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    try:
        with UtxoIngestor(store, background_writes=background, batch_txs=2) as ingestor:
            assert ingestor.rollback_to(430) == 8
            for height in range(431, 436):
                ingestor.add_block(decode_block_columns(raws[height], store.spec))
            ingestor.flush()
        tip = store.tip()
        assert tip is not None
        assert (tip.height, tip.hash) == (435, sha256d(raws[435][:80]))
        assert store.con.execute(
            "SELECT max(height), count(*) FROM blocks").fetchone() == (435, 436)
    finally:
        store.close()
