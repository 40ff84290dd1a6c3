"""Damaged or foreign block files: refused or reported, never stored as if they were the chain.

Built from the bundled real mainnet blocks 0-438 (one framed file): a block whose bytes were
altered is refused by its merkle root and nothing of it is stored; a gap or a block failing its
proof of work ends the chain there with a warning naming what was left out; files of another
chain (the bundled Litecoin regtest scenario read as Bitcoin regtest) are refused by their
genesis block.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.chain.utxo.hashes import sha256d
from cointrail.data import EARLY_MAINNET_BLOCKS, SCENARIO_BLOCKS, bundled_path
from cointrail.errors import InputError
from cointrail.interfaces.cli.main import app
from cointrail.store.duck import open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import MerkleRootError, ingest_blkfiles

MAGIC = bytes.fromhex("f9beb4d9")


def frames() -> list[bytes]:
    """The raw blocks of the bundled file, by height (it holds them in chain order)."""
    data = bundled_path(EARLY_MAINNET_BLOCKS).read_bytes()
    out, i = [], 0
    while i + 8 <= len(data):
        magic, size = struct.unpack_from("<4sI", data, i)
        assert magic == MAGIC
        out.append(data[i + 8 : i + 8 + size])
        i += 8 + size
    assert len(out) == 439
    return out


def write(path: Path, blocks: list[bytes]) -> Path:
    path.write_bytes(b"".join(MAGIC + struct.pack("<I", len(b)) + b for b in blocks))
    return path


def ingest(store_dir: Path, path: Path) -> tuple[object, int, bytes | None]:
    store = open_chain(store_dir, "bitcoin", "mainnet")
    try:
        try:
            with UtxoIngestor(store) as ingestor:
                result: object = ingest_blkfiles(ingestor, str(path))
        except InputError as exc:
            result = exc
        tip = store.tip()
        return result, tip.height if tip else -1, tip.hash if tip else None
    finally:
        store.close()


def coinbase_value_offset(block: bytes) -> int:
    """Offset of the first output's value in a block whose coinbase is the first transaction
    (80-byte header, 1-byte counts, a non-segwit coinbase: these early blocks)."""
    i = 80 + 1 + 4 + 1 + 32 + 4  # header, tx count, version, input count, prevout
    script_len = block[i]
    return i + 1 + script_len + 4 + 1  # script, sequence, output count


@pytest.mark.parametrize("height", [170, 300])
def test_an_altered_block_is_refused_by_its_merkle_root(tmp_path: Path, height: int) -> None:
    blocks = frames()
    damaged = bytearray(blocks[height])
    at = coinbase_value_offset(damaged)
    assert struct.unpack_from("<Q", damaged, at)[0] == 50 * 10**8
    struct.pack_into("<Q", damaged, at, 92 * 10**8)  # the header and its PoW stay valid
    blocks[height] = bytes(damaged)
    result, tip, tip_hash = ingest(tmp_path / "store", write(tmp_path / "bad.blk", blocks))
    assert isinstance(result, MerkleRootError), result
    assert f"at height {height}" in str(result) and "merkle root" in str(result)
    assert (tip, tip_hash) == (height - 1, sha256d(blocks[height - 1][:80]))


def test_the_cli_says_so_and_exits_2(tmp_path: Path) -> None:
    blocks = frames()
    damaged = bytearray(blocks[300])
    struct.pack_into("<Q", damaged, coinbase_value_offset(damaged), 1)
    blocks[300] = bytes(damaged)
    done = CliRunner().invoke(app, ["--store", str(tmp_path / "s"), "ingest", "blkfiles",
                                    str(write(tmp_path / "bad.blk", blocks)), "--json"])
    assert done.exit_code == 2, done.output
    assert "at height 300: its transactions do not hash to its header's merkle root" in \
        " ".join(done.output.split())


def test_a_gap_ends_the_chain_with_a_warning(tmp_path: Path) -> None:
    blocks = frames()
    path = write(tmp_path / "gap.blk", blocks[:250] + blocks[251:])
    result, tip, _ = ingest(tmp_path / "store", path)
    assert tip == 249
    warnings = result.warnings  # type: ignore[attr-defined]
    assert len(warnings) == 1 and warnings[0].startswith(
        "188 block(s) in the files do not connect to the chain ingested (it ends at height "
        "249): their parents are missing")
    assert str(sha256d(blocks[250][:80])[::-1].hex()) in warnings[0]  # the parent it needs


def test_a_block_failing_its_proof_of_work_is_reported(tmp_path: Path) -> None:
    blocks = frames()
    damaged = bytearray(blocks[200])
    damaged[76:80] = b"\x00\x00\x00\x00"  # another nonce: the header's hash misses the target
    blocks[200] = bytes(damaged)
    result, tip, _ = ingest(tmp_path / "store", write(tmp_path / "pow.blk", blocks))
    assert tip == 199
    warnings = result.warnings  # type: ignore[attr-defined]
    assert any(w.startswith("1 block(s) fail their proof of work") for w in warnings), warnings
    # its children name the original block 200 as parent, which the files no longer hold
    assert any(w.startswith("238 block(s) in the files do not connect") for w in warnings)


def test_a_clean_file_gives_no_warning(tmp_path: Path) -> None:
    result, tip, _ = ingest(tmp_path / "store", bundled_path(EARLY_MAINNET_BLOCKS))
    assert (tip, result.warnings) == (438, [])  # type: ignore[attr-defined]


def test_files_of_another_chain_are_refused_by_their_genesis(tmp_path: Path) -> None:
    """Litecoin and Bitcoin regtest share a message start, so only the genesis tells them
    apart; without the check the Litecoin blocks were stored as Bitcoin regtest."""
    args = ["--store", str(tmp_path), "--chain", "bitcoin", "--network", "regtest", "ingest",
            "blkfiles", str(bundled_path(SCENARIO_BLOCKS))]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 2, done.output
    assert ("its genesis block 530827f38f93b43e… is litecoin/regtest's, not bitcoin/regtest's; "
            "pass --chain litecoin --network regtest") in " ".join(done.output.split())
    store = open_chain(tmp_path, "bitcoin", "regtest")
    try:
        assert store.tip() is None
    finally:
        store.close()
