"""The store refuses cleanly and never keeps half a write: wrong chain, lock, missing data,
unknown coins, truncated files and a crash in the middle of a write."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cointrail import Block, decode_block, get_chain
from cointrail.errors import CointrailError, NotFoundError, StoreError
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.schema import TABLES, Table
from cointrail.store.sync import ingest_blkfiles
from tests.support.data import require_shared

BLK = "btc/blocks/mainnet-000000-000438.blk"
BTC = get_chain("bitcoin", "mainnet")
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
FRAME_HEADER = 8  # magic + u32 length

HOLD_WRITER = """
import sys
from cointrail.store.duck import open_chain
store = open_chain(sys.argv[1], "bitcoin", "mainnet")
print("ready", flush=True)
sys.stdin.read()  # hold the store until the test closes stdin
store.close()
"""


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        magic, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        assert magic == BTC.magic
        blocks.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def frame(raw: bytes) -> bytes:
    return BTC.magic + struct.pack("<I", len(raw)) + raw


def write_frames(path: Path, raws: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(r) for r in raws))
    return path


def dump(store: ChainStore) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: store.query(f"SELECT * FROM {t.name} ORDER BY ALL") for t in TABLES}


def ingest(root: Path, path: Path, **kwargs: Any) -> tuple[ChainStore, Any]:
    store = Store(root).chain(BTC)
    return store, ingest_blkfiles(UtxoIngestor(store, **kwargs), str(path))


@pytest.fixture(scope="module")
def blk_path() -> Path:
    return require_shared(BLK)


@pytest.fixture(scope="module")
def raws(blk_path: Path) -> list[bytes]:
    return read_frames(blk_path)


@pytest.fixture(scope="module")
def blocks(raws: list[bytes]) -> list[Block]:
    return [decode_block(raw, BTC) for raw in raws]


@pytest.fixture(scope="module")
def clean_rows(
    tmp_path_factory: pytest.TempPathFactory, raws: list[bytes]
) -> Any:
    """rows(h): the rows of a clean ingest of blocks 0..h (memoised)."""
    cache: dict[int, dict[str, list[tuple[Any, ...]]]] = {}

    def rows(height: int) -> dict[str, list[tuple[Any, ...]]]:
        if height not in cache:
            root = tmp_path_factory.mktemp(f"clean-{height}")
            part = write_frames(root / "part.blk", raws[: height + 1])
            store, _ = ingest(root / "store", part)
            with store:
                cache[height] = dump(store)
        return cache[height]

    return rows


# --- opening ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("chain", "network"), [("litecoin", "mainnet"), ("bitcoin", "testnet")])
@pytest.mark.parametrize("read_only", [False, True])
def test_store_file_of_another_chain_is_refused(
    tmp_path: Path, raws: list[bytes], chain: str, network: str, read_only: bool
) -> None:
    part = write_frames(tmp_path / "part.blk", raws[:10])
    store, _ = ingest(tmp_path, part)
    store.close()
    other = get_chain(chain, network)
    # the documented layout: DIR/<chain>-<network>.duckdb; a bitcoin file copied to the name
    wrong = tmp_path / f"{chain}-{network}.duckdb"
    shutil.copyfile(store.path, wrong)
    before = wrong.read_bytes() if read_only else None
    with pytest.raises(StoreError) as excinfo:
        Store(tmp_path).chain(other, read_only=read_only)
    message = str(excinfo.value)
    assert BTC.key in message and other.key in message
    assert str(wrong) in message
    if before is not None:
        assert wrong.read_bytes() == before


@pytest.fixture
def held_store(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A store held open for writing by another process: (store dir, its pid)."""
    Store(tmp_path).chain(BTC).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield tmp_path, holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.mark.parametrize("read_only", [False, True])
def test_second_process_gets_a_clear_lock_error(
    held_store: tuple[Path, int], read_only: bool
) -> None:
    root, pid = held_store
    with pytest.raises(StoreError) as excinfo:
        Store(root).chain(BTC, read_only=read_only)
    message = str(excinfo.value)
    assert "in use by another cointrail process" in message
    assert f"process {pid}" in message
    assert str(root / f"{BTC.chain}-{BTC.network}.duckdb") in message


def test_store_opens_again_once_the_other_process_ends(tmp_path: Path) -> None:
    Store(tmp_path).chain(BTC).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "ready"
    with pytest.raises(StoreError):
        Store(tmp_path).chain(BTC)
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    with Store(tmp_path).chain(BTC) as store:
        assert store.tip() is None


def test_store_dir_without_the_chain(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    for kwargs in ({"read_only": True}, {"create": False}):
        with pytest.raises(NotFoundError) as excinfo:
            Store(missing).chain(BTC, **kwargs)
        assert BTC.key in str(excinfo.value) and str(missing) in str(excinfo.value)
    assert not missing.exists()  # looking does not create anything
    Store(tmp_path).chain(BTC).close()
    litecoin = get_chain("litecoin", "mainnet")
    with pytest.raises(NotFoundError, match=litecoin.key):
        Store(tmp_path).chain(litecoin, read_only=True)
    assert Store(tmp_path).chains() == [BTC]


# --- inputs that spend coins the store does not hold -----------------------------------------


def block_on(raw: bytes, parent: bytes) -> Block:
    """`raw` with its header's previous-block hash replaced by `parent`."""
    return decode_block(raw[:4] + parent + raw[36:], BTC)


def test_spending_an_unknown_output_is_refused_whole(
    tmp_path: Path, raws: list[bytes], blocks: list[Block]
) -> None:
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store)
        for block in blocks[:9]:
            ingestor.add_block(block)
        ingestor.flush()
        before = dump(store)
        # block 170 (its tx spends the coinbase of block 9) made to build on block 8
        crafted = block_on(raws[170], bytes(blocks[8].hash))
        with pytest.raises(StoreError) as excinfo:
            ingestor.add_block(crafted)
        message = str(excinfo.value)
        coinbase_9 = str(blocks[9].transactions[0].txid)
        assert FIRST_TRANSFER in message
        assert f"{coinbase_9}:0" in message
        assert "height 9" in message
        assert dump(store) == before


def test_failed_block_leaves_nothing_to_flush(
    tmp_path: Path, raws: list[bytes], blocks: list[Block], clean_rows: Any
) -> None:
    """Blocks 0..8 buffered, then a block that fails half way: a later flush (as after an
    interruption) commits exactly blocks 0..8, nothing of the failed block."""
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store)
        for block in blocks[:9]:
            ingestor.add_block(block)
        with pytest.raises(StoreError):
            ingestor.add_block(block_on(raws[170], bytes(blocks[8].hash)))
        assert store.table_counts()["blocks"] == 0  # nothing committed yet
        ingestor.flush()
        got, want = dump(store), clean_rows(8)
        assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in want.items()}
        assert got == want


def test_block_out_of_order_is_refused(tmp_path: Path, blocks: list[Block]) -> None:
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store)
        with pytest.raises(StoreError) as excinfo:
            ingestor.add_block(blocks[170])
        assert str(blocks[169].hash) in str(excinfo.value)  # the parent it names
        ingestor.flush()
        assert all(n == 0 for name, n in store.table_counts().items() if name != "sync_state")


def test_file_without_genesis_is_refused(tmp_path: Path, raws: list[bytes]) -> None:
    only_170 = write_frames(tmp_path / "170.blk", [raws[170]])
    store = Store(tmp_path / "store").chain(BTC)
    with store:
        with pytest.raises(CointrailError, match="genesis"):
            ingest_blkfiles(UtxoIngestor(store), str(only_170))
        assert all(n == 0 for name, n in store.table_counts().items() if name != "sync_state")


# --- truncated blk files ----------------------------------------------------------------------


@pytest.mark.parametrize("kept", [5, FRAME_HEADER + 50])
def test_truncated_file_ingests_the_whole_blocks(
    tmp_path: Path, raws: list[bytes], blk_path: Path, clean_rows: Any, kept: int
) -> None:
    whole = b"".join(frame(r) for r in raws[:10])
    cut = tmp_path / "cut.blk"
    cut.write_bytes(whole + frame(raws[10])[:kept])
    store = Store(tmp_path / "store").chain(BTC)
    with store:
        result = ingest_blkfiles(UtxoIngestor(store), str(cut))
        messages = result.warnings
        assert len(messages) == 1
        assert "truncated" in messages[0]
        assert f"offset {len(whole)}" in messages[0] and str(cut) in messages[0]
        assert (result.tip_height, result.blocks) == (9, 10)
        assert dump(store) == clean_rows(9)
        # the node rewrote the block: the same command goes on from there
        again = ingest_blkfiles(UtxoIngestor(store), str(blk_path))
        assert (again.start_height, again.tip_height) == (9, 438)
        assert dump(store) == clean_rows(438)


# --- a crash in the middle of a write ---------------------------------------------------------


class SimulatedCrashError(Exception):
    pass


class CrashAfter(dict[Table, Any]):
    """The rows of one append; iterating them crashes after `inserts` tables were written."""

    def __init__(self, rows: dict[Table, Any], inserts: int, store: ChainStore) -> None:
        super().__init__(rows)
        self.inserts = inserts
        self.store = store
        self.seen_rows_before_crash: int | None = None

    def items(self) -> Iterator[tuple[Table, Any]]:  # type: ignore[override]
        for i, item in enumerate(list(super().items())):
            if i == self.inserts:
                # the inserts so far are visible inside the open transaction
                self.seen_rows_before_crash = sum(
                    n for name, n in self.store.table_counts().items() if name != "sync_state"
                )
                raise SimulatedCrashError("power cut")
            yield item


@pytest.fixture
def crash_on_append(monkeypatch: pytest.MonkeyPatch) -> Any:
    """crash(call, inserts): make the call-th ChainStore.append crash after `inserts` tables."""
    original = ChainStore.append
    seen: list[CrashAfter] = []

    def arm(call: int, inserts: int) -> list[CrashAfter]:
        calls = 0

        def append(self: ChainStore, rows: dict[Table, Any],
                   state: dict[str, str] | None = None) -> None:
            nonlocal calls
            calls += 1
            if calls == call:
                rows = CrashAfter(rows, inserts, self)
                seen.append(rows)
            original(self, rows, state)

        monkeypatch.setattr(ChainStore, "append", append)
        return seen

    return arm


@pytest.mark.parametrize("inserts", [1, 3, 5])
def test_crash_inside_append_rolls_back(
    tmp_path: Path, raws: list[bytes], blk_path: Path, clean_rows: Any, crash_on_append: Any,
    monkeypatch: pytest.MonkeyPatch, inserts: int,
) -> None:
    part = write_frames(tmp_path / "part.blk", raws[:201])
    store, _ = ingest(tmp_path / "store", part)
    with store:
        before = dump(store)
        committed = sum(len(rows) for name, rows in before.items() if name != "sync_state")
        crashes = crash_on_append(1, inserts)
        with pytest.raises(SimulatedCrashError):
            ingest_blkfiles(UtxoIngestor(store), str(blk_path))
        assert len(crashes) == 1
        assert crashes[0].seen_rows_before_crash is not None
        assert crashes[0].seen_rows_before_crash > committed  # rows were written, then undone
        assert dump(store) == before
        monkeypatch.undo()
        again = ingest_blkfiles(UtxoIngestor(store), str(blk_path))
        assert again.start_height == 200
        assert dump(store) == clean_rows(438)


def test_crash_in_a_later_batch_keeps_the_earlier_ones(
    tmp_path: Path, blk_path: Path, clean_rows: Any, crash_on_append: Any
) -> None:
    flushed: list[int] = []
    crash_on_append(3, 2)
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store, batch_txs=50, on_flush=lambda p: flushed.append(p.height))
        with pytest.raises(SimulatedCrashError):
            ingest_blkfiles(ingestor, str(blk_path))
        assert len(flushed) == 2  # two batches committed, the third crashed
        tip = store.tip()
        assert tip is not None and tip.height == flushed[-1]
        assert dump(store) == clean_rows(flushed[-1])
