"""Releasing the store between blocks (what ``sync --follow`` does while it waits).

DuckDB lets one process open a database for writing and no other process even read it
meanwhile. A follower that held its store for months would lock every other command out, so
it releases the store while it waits and takes it back for the next block. These tests check
that another process can read a released store, that taking it back keeps the indexes when
nothing changed, rebuilds them when another ingest moved the chain meanwhile, and waits out a
process that holds the store, and that every path ends with the store a clean ingest gives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cointrail.chain.utxo.blkfile import iter_best_chain_blocks
from cointrail.chain.utxo.columnar import decode_block_columns
from cointrail.errors import StoreError
from cointrail.store.duck import ChainStore, StoreInUseError, open_chain
from cointrail.store.ingest import UtxoIngestor
from tests.integration.store_support import Dump, assert_same_store, dump_chain_store
from tests.support.data import require_shared

BLOCKS = "btc/blocks/mainnet-000000-000438.blk"

READ_TIP = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT max(height) FROM blocks").fetchone()[0])
"""

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def raws() -> dict[int, bytes]:
    return dict(iter_best_chain_blocks(require_shared(BLOCKS), "bitcoin"))


def add(ingestor: UtxoIngestor, raws: dict[int, bytes], heights: range) -> None:
    for height in heights:
        ingestor.add_block(decode_block_columns(raws[height], ingestor.spec))


@pytest.fixture(scope="module")
def clean(raws: dict[int, bytes], tmp_path_factory: pytest.TempPathFactory) -> Dump:
    """Blocks 0-438 ingested in one go: what every path below must end with."""
    store = open_chain(tmp_path_factory.mktemp("clean"), "bitcoin", "mainnet")
    with store, UtxoIngestor(store) as ingestor:
        add(ingestor, raws, range(439))
        ingestor.flush()
        return dump_chain_store(store)


def other_process_tip(store: ChainStore) -> int:
    """The tip height another process reads from the store's database."""
    done = subprocess.run([sys.executable, "-c", READ_TIP, str(store.path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_released_store_is_readable_by_another_process_and_refuses_use_here(
    tmp_path: Path, raws: dict[int, bytes]
) -> None:
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    with store, UtxoIngestor(store, background_writes=True) as ingestor:
        add(ingestor, raws, range(120))
        ingestor.flush()
        blocked = subprocess.run([sys.executable, "-c", READ_TIP, str(store.path)],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert blocked.returncode != 0 and "lock" in blocked.stderr.lower()  # DuckDB's rule
        ingestor.release()
        assert store.released
        assert other_process_tip(store) == 119
        with pytest.raises(StoreError, match=r"is released .* reopen it first"):
            store.tip()
        assert ingestor.reacquire() is False  # nothing moved: the indexes are kept
        assert not store.released and store.tip() is not None


@pytest.mark.parametrize("background", [False, True])
def test_blocks_added_across_releases_give_the_clean_store(
    tmp_path: Path, raws: dict[int, bytes], clean: Dump, background: bool
) -> None:
    """Release after every 50 blocks (blocks buffered before the release are committed by
    it), read by another process each time, take back, go on: the clean store."""
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    with store, UtxoIngestor(store, background_writes=background, batch_txs=40) as ingestor:
        for start in range(0, 439, 50):
            add(ingestor, raws, range(start, min(start + 50, 439)))
            ingestor.release()
            assert other_process_tip(store) == ingestor.height
            assert ingestor.reacquire() is False
        ingestor.flush()
        assert_same_store(clean, dump_chain_store(store), "ingest with releases")


@pytest.mark.filterwarnings("ignore:another ingestor holds")
def test_taking_back_a_store_another_ingest_moved_rebuilds_the_indexes(
    tmp_path: Path, raws: dict[int, bytes], clean: Dump
) -> None:
    """While the follower has released the store, another ingest rolls it back to 150 and
    takes it to 300. The follower's indexes (at 200) no longer match: taking the store back
    rebuilds them from the store, and the follower goes on from 300 to the clean store."""
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    with store, UtxoIngestor(store) as ingestor:
        add(ingestor, raws, range(201))
        ingestor.release()
        with open_chain(tmp_path, "bitcoin", "mainnet") as other, \
                UtxoIngestor(other) as second:
            second.rollback_to(150)
            add(second, raws, range(151, 301))
            second.flush()
        assert ingestor.height == 200  # it cannot know yet
        assert ingestor.reacquire() is True
        assert (ingestor.height, ingestor.next_tx_id) == (300, store.next_ids()[0])
        add(ingestor, raws, range(301, 439))
        ingestor.flush()
        assert_same_store(clean, dump_chain_store(store), "ingest taken back after another")


def test_taking_back_a_store_another_process_holds_waits_and_changes_nothing(
    tmp_path: Path, raws: dict[int, bytes], clean: Dump
) -> None:
    store = open_chain(tmp_path, "bitcoin", "mainnet")
    with store, UtxoIngestor(store) as ingestor:
        add(ingestor, raws, range(300))
        ingestor.release()
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store.path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            with pytest.raises(StoreInUseError, match=r"is in use by another cointrail process "
                                                      rf"\(process {holder.pid}\)"):
                ingestor.reacquire()
            assert store.released and ingestor.height == 299
        finally:
            holder.communicate("", timeout=60)
        assert ingestor.reacquire() is False
        add(ingestor, raws, range(300, 439))
        ingestor.flush()
        assert_same_store(clean, dump_chain_store(store), "ingest taken back after a holder")
