"""blk*.dat reading: framing, zero padding, XOR obfuscation, truncation, chain selection.

Every synthetic case is built in tmp_path from the real mainnet blocks 0-438, and the expected
chain is the one read independently (plain struct parsing) from the real file.
"""

from __future__ import annotations

import itertools
import random
import struct
import time
from pathlib import Path

import pytest

from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.blkfile import (
    MAX_FRAME_LENGTH,
    BlkFileWarning,
    ChainIndex,
    TruncatedFrame,
    apply_xor,
    best_chain,
    iter_best_chain_blocks,
    iter_blk_files,
    iter_blk_frames,
    iter_blk_headers,
    load_xor_key,
    read_block_at,
)
from cointrail.chain.utxo.block import decode_header
from cointrail.chain.utxo.hashes import BlockHash, sha256d
from cointrail.errors import DecodeError, InputError
from tests.support.data import require_shared

BTC = get_chain("bitcoin", "mainnet")
MAIN = BTC.magic
TESTNET = get_chain("bitcoin", "testnet").magic
GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
REAL = "btc/blocks/mainnet-000000-000438.blk"


@pytest.fixture(scope="module")
def real_path() -> Path:
    return require_shared(REAL)


@pytest.fixture(scope="module")
def blocks(real_path: Path) -> list[bytes]:
    """Blocks 0-438 by height, parsed with plain struct (independent of the module)."""
    data = real_path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        magic, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        assert magic == MAIN
        out.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    assert len(out) == 439
    return out


def frame(raw: bytes, magic: bytes = MAIN) -> bytes:
    return magic + len(raw).to_bytes(4, "little") + raw


def block_hash(raw: bytes) -> BlockHash:
    return BlockHash(sha256d(raw[:80]))


def fork_block(parent: bytes, template: bytes, nonce: int, bits: int | None = None) -> bytes:
    """A competing block: `template`'s header with `parent` as previous block and a new nonce
    (and optionally new bits); the body is `template`'s. Its PoW is not valid."""
    header = bytearray(template[:80])
    header[4:36] = sha256d(parent[:80])
    if bits is not None:
        header[72:76] = bits.to_bytes(4, "little")
    header[76:80] = nonce.to_bytes(4, "little")
    return bytes(header) + template[80:]


def hashes(index: ChainIndex) -> list[str]:
    return [str(e.hash) for e in index.chain]


def assert_real_chain(index: ChainIndex, blocks: list[bytes]) -> None:
    assert [e.height for e in index.chain] == list(range(len(blocks)))
    assert hashes(index) == [str(block_hash(b)) for b in blocks]


# --- the real file ---------------------------------------------------------------------------


def test_real_file_reads_all_439_frames(real_path: Path, blocks: list[bytes]) -> None:
    frames = list(iter_blk_frames(real_path))
    assert len(frames) == 439
    assert [f.raw for f in frames] == blocks
    assert all(f.magic == MAIN and f.file == real_path for f in frames)
    assert frames[0].offset == 0
    for a, b in itertools.pairwise(frames):
        assert b.offset == a.data_offset + len(a.raw)
    assert str(frames[0].header.hash) == GENESIS


def test_real_best_chain_links_heights_0_to_438(real_path: Path, blocks: list[bytes]) -> None:
    index = best_chain(iter_blk_frames(real_path), BTC)  # proof of work checked
    assert_real_chain(index, blocks)
    assert str(index.chain[0].hash) == GENESIS
    headers = [decode_header(b) for b in blocks]
    for prev, cur in itertools.pairwise(headers):
        assert cur.prev_hash == prev.hash
    assert index.chain_work == sum(h.work for h in headers)
    assert not index.stale and not index.orphans and not index.invalid and not index.duplicates
    assert index.tip is not None and index.tip.height == 438


def test_headers_only_pass_gives_the_same_chain(real_path: Path, blocks: list[bytes]) -> None:
    heads = list(iter_blk_headers(real_path, {MAIN}))
    assert [h.length for h in heads] == [len(b) for b in blocks]
    assert best_chain(heads) == best_chain(iter_blk_frames(real_path))


def test_iter_best_chain_blocks_real(real_path: Path, blocks: list[bytes]) -> None:
    assert list(iter_best_chain_blocks(real_path, BTC)) == list(enumerate(blocks))


def test_read_block_at(real_path: Path, blocks: list[bytes]) -> None:
    index = best_chain(iter_blk_headers(real_path))
    e = index.chain[170]
    assert read_block_at(e.file, e.offset, magic_set={MAIN}) == blocks[170]


# --- files of a blocks directory ---------------------------------------------------------------


def test_blocks_dir_numeric_order_and_ignored_files(tmp_path: Path, blocks: list[bytes]) -> None:
    for n, height in ((10, 2), (1, 0), (2, 1), (100000, 3)):
        (tmp_path / f"blk{n:05d}.dat").write_bytes(frame(blocks[height]))
    (tmp_path / "rev00000.dat").write_bytes(b"\x01" * 100)
    (tmp_path / "blk00003.dat.bak").write_bytes(b"\x01" * 100)
    names = [f.path.name for f in iter_blk_files(tmp_path)]
    assert names == ["blk00001.dat", "blk00002.dat", "blk00010.dat", "blk100000.dat"]
    assert [f.raw for f in iter_blk_frames(tmp_path)] == blocks[:4]


def test_data_dir_with_blocks_subdir(tmp_path: Path, blocks: list[bytes]) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "blk00000.dat").write_bytes(frame(blocks[0]))
    assert [f.raw for f in iter_blk_frames(tmp_path)] == blocks[:1]


def test_missing_or_empty_dir_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no blk"):
        iter_blk_files(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        iter_blk_files(tmp_path / "nope")


def test_empty_file_has_no_frames(tmp_path: Path) -> None:
    (tmp_path / "blk00000.dat").write_bytes(b"")
    assert list(iter_blk_frames(tmp_path)) == []
    assert best_chain(iter_blk_frames(tmp_path)).chain == []


# --- out of order, padding, orphans, forks -------------------------------------------------------


def write_shuffled(directory: Path, raws: list[bytes], seed: int, pad: bool = False) -> None:
    rng = random.Random(seed)
    order = list(raws)
    rng.shuffle(order)
    half = len(order) // 2
    for n, part in enumerate((order[:half], order[half:])):
        chunks = []
        for raw in part:
            if pad:
                chunks.append(b"\x00" * rng.randrange(0, 300))
            chunks.append(frame(raw))
        if pad:
            chunks.append(b"\x00" * (1 << 20))  # pre-allocated tail
        (directory / f"blk{n:05d}.dat").write_bytes(b"".join(chunks))


def test_shuffled_across_two_files(tmp_path: Path, blocks: list[bytes]) -> None:
    write_shuffled(tmp_path, blocks, seed=1)
    assert len(list(iter_blk_frames(tmp_path))) == 439
    assert_real_chain(best_chain(iter_blk_headers(tmp_path), BTC), blocks)
    assert list(iter_best_chain_blocks(tmp_path, BTC)) == list(enumerate(blocks))


def test_zero_padding_between_and_after_frames(tmp_path: Path, blocks: list[bytes]) -> None:
    write_shuffled(tmp_path, blocks, seed=2, pad=True)
    truncations: list[TruncatedFrame] = []
    frames = list(iter_blk_frames(tmp_path, truncations=truncations))
    assert sorted(f.raw for f in frames) == sorted(blocks)
    assert truncations == []
    assert_real_chain(best_chain(frames), blocks)


def test_orphan_with_absent_parent_is_reported(tmp_path: Path, blocks: list[bytes]) -> None:
    stray = bytearray(blocks[5])
    stray[4:36] = bytes(range(32))  # a parent the files do not hold
    write_shuffled(tmp_path, [*blocks, bytes(stray)], seed=3)
    index = best_chain(iter_blk_headers(tmp_path), check_pow=False)
    assert_real_chain(index, blocks)
    assert [str(o.hash) for o in index.orphans] == [str(block_hash(bytes(stray)))]
    assert index.orphans[0].prev_hash == bytes(range(32))


def test_missing_block_cuts_the_chain_and_reports_descendants(
    tmp_path: Path, blocks: list[bytes]
) -> None:
    write_shuffled(tmp_path, blocks[:100] + blocks[101:], seed=4)
    index = best_chain(iter_blk_headers(tmp_path))
    assert_real_chain(index, blocks[:100])
    assert sorted(str(o.hash) for o in index.orphans) == sorted(
        str(block_hash(b)) for b in blocks[101:]
    )
    first = next(o for o in index.orphans if o.hash == block_hash(blocks[101]))
    assert first.prev_hash == block_hash(blocks[100])


def test_longer_fork_wins_and_real_tail_is_stale(tmp_path: Path, blocks: list[bytes]) -> None:
    f437 = fork_block(blocks[436], blocks[437], nonce=1)
    f438 = fork_block(f437, blocks[438], nonce=2)
    f439 = fork_block(f438, blocks[438], nonce=3)
    write_shuffled(tmp_path, [*blocks, f437, f438, f439], seed=5)
    index = best_chain(iter_blk_headers(tmp_path), BTC, check_pow=False)
    assert hashes(index) == [str(block_hash(b)) for b in [*blocks[:437], f437, f438, f439]]
    assert [(e.height, str(e.hash)) for e in index.stale] == [
        (437, str(block_hash(blocks[437]))),
        (438, str(block_hash(blocks[438]))),
    ]
    assert index.orphans == []
    heights = dict(iter_best_chain_blocks(tmp_path, BTC, check_pow=False))
    assert heights[439] == f439 and heights[436] == blocks[436]


def test_shorter_fork_is_stale(tmp_path: Path, blocks: list[bytes]) -> None:
    f437 = fork_block(blocks[436], blocks[437], nonce=7)
    write_shuffled(tmp_path, [f437, *blocks], seed=6)
    index = best_chain(iter_blk_headers(tmp_path), check_pow=False)
    assert_real_chain(index, blocks)
    assert [(e.height, str(e.hash)) for e in index.stale] == [(437, str(block_hash(f437)))]


def test_work_from_bits_beats_length(tmp_path: Path, blocks: list[bytes]) -> None:
    """One block with a 256x harder target outweighs the two real blocks it competes with."""
    hard = fork_block(blocks[436], blocks[437], nonce=9, bits=0x1C00FFFF)
    assert decode_header(hard).work > 2 * decode_header(blocks[437]).work
    write_shuffled(tmp_path, [*blocks, hard], seed=7)
    index = best_chain(iter_blk_headers(tmp_path), check_pow=False)
    assert hashes(index) == [str(block_hash(b)) for b in [*blocks[:437], hard]]
    assert {str(e.hash) for e in index.stale} == {str(block_hash(b)) for b in blocks[437:]}


def test_pow_check_rejects_forged_fork(tmp_path: Path, blocks: list[bytes]) -> None:
    hard = fork_block(blocks[436], blocks[437], nonce=9, bits=0x1C00FFFF)
    child = fork_block(hard, blocks[438], nonce=10)
    write_shuffled(tmp_path, [*blocks, hard, child], seed=8)
    index = best_chain(iter_blk_headers(tmp_path), BTC)
    assert_real_chain(index, blocks)
    assert {str(r.hash) for r in index.invalid} == {str(block_hash(hard)), str(block_hash(child))}
    assert not index.stale and not index.orphans


def test_equal_work_tie_goes_to_first_seen(tmp_path: Path, blocks: list[bytes]) -> None:
    rival = fork_block(blocks[437], blocks[438], nonce=11)
    (tmp_path / "blk00000.dat").write_bytes(b"".join(frame(b) for b in [*blocks[:438], rival]))
    (tmp_path / "blk00001.dat").write_bytes(frame(blocks[438]))
    index = best_chain(iter_blk_headers(tmp_path), check_pow=False)
    assert index.chain[-1].hash == block_hash(rival)
    assert [e.hash for e in index.stale] == [block_hash(blocks[438])]


def test_duplicate_block_is_reported_once(tmp_path: Path, blocks: list[bytes]) -> None:
    (tmp_path / "blk00000.dat").write_bytes(b"".join(frame(b) for b in [*blocks, blocks[7]]))
    index = best_chain(iter_blk_headers(tmp_path))
    assert_real_chain(index, blocks)
    assert [d.hash for d in index.duplicates] == [block_hash(blocks[7])]
    assert index.chain[7].offset < index.duplicates[0].offset


def test_pruned_files_need_a_start(tmp_path: Path, blocks: list[bytes]) -> None:
    write_shuffled(tmp_path, blocks[100:], seed=9)
    with pytest.raises(InputError, match="genesis"):
        best_chain(iter_blk_headers(tmp_path))
    start = str(block_hash(blocks[100]))
    index = best_chain(iter_blk_headers(tmp_path), start=start, start_height=100)
    assert [e.height for e in index.chain] == list(range(100, 439))
    assert hashes(index) == [str(block_hash(b)) for b in blocks[100:]]
    with pytest.raises(InputError, match="not in the"):
        best_chain(iter_blk_headers(tmp_path), start=GENESIS)


def test_blocks_below_an_explicit_start_are_not_orphans(
    real_path: Path, blocks: list[bytes]
) -> None:
    start = block_hash(blocks[50])
    index = best_chain(iter_blk_headers(real_path), start=start, start_height=50)
    assert [e.height for e in index.chain] == list(range(50, 439))
    assert index.chain_work == sum(decode_header(b).work for b in blocks[50:])
    assert not index.orphans and not index.stale


# --- XOR obfuscation ---------------------------------------------------------------------------


def test_apply_xor_indexes_the_key_by_file_offset() -> None:
    key = bytes.fromhex("0102040810204080")
    data = bytes(range(20))
    for offset in (0, 3, 8, 13):
        expected = bytes(b ^ key[(offset + i) % 8] for i, b in enumerate(data))
        assert apply_xor(data, key, offset) == expected
        assert apply_xor(expected, key, offset) == data
    assert apply_xor(data, b"", 5) == data


def obfuscate_dir(directory: Path, key: bytes) -> None:
    for f in directory.glob("blk*.dat"):
        f.write_bytes(apply_xor(f.read_bytes(), key, 0))
    (directory / "xor.dat").write_bytes(key)


def test_xor_obfuscated_files_give_the_identical_chain(tmp_path: Path, blocks: list[bytes]) -> None:
    write_shuffled(tmp_path, blocks, seed=10, pad=True)
    plain_frames = list(iter_blk_frames(tmp_path))
    plain = best_chain(plain_frames)
    key = random.Random(10).randbytes(8)
    obfuscate_dir(tmp_path, key)
    assert load_xor_key(tmp_path) == key
    assert (tmp_path / "blk00000.dat").read_bytes()[:4] != MAIN
    assert list(iter_blk_frames(tmp_path)) == plain_frames
    assert best_chain(iter_blk_headers(tmp_path)) == plain
    assert list(iter_best_chain_blocks(tmp_path, BTC)) == list(enumerate(blocks))
    single = tmp_path / "blk00001.dat"  # a single file picks up xor.dat beside it
    assert [f.raw for f in iter_blk_frames(single)] == [
        f.raw for f in plain_frames if f.file == single
    ]
    e = plain.chain[9]
    assert read_block_at(e.file, e.offset) == blocks[9]


def test_obfuscated_files_without_the_key_fail_with_a_hint(
    tmp_path: Path, blocks: list[bytes]
) -> None:
    (tmp_path / "blk00000.dat").write_bytes(frame(blocks[0]))
    obfuscate_dir(tmp_path, bytes.fromhex("a1b2c3d4e5f60718"))
    with pytest.raises(DecodeError, match=r"xor\.dat") as info:
        list(iter_blk_frames(tmp_path, xor_key=b""))
    assert info.value.offset == 0


def test_xor_key_files(tmp_path: Path) -> None:
    assert load_xor_key(tmp_path) == b""
    (tmp_path / "xor.dat").write_bytes(bytes(8))
    assert load_xor_key(tmp_path) == b""  # all zeros: not obfuscated
    (tmp_path / "xor.dat").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DecodeError, match="exactly 8"):
        load_xor_key(tmp_path)


# --- damaged files -------------------------------------------------------------------------------


def test_wrong_magic_names_file_offset_and_chain(tmp_path: Path, blocks: list[bytes]) -> None:
    good = frame(blocks[0]) + frame(blocks[1])
    path = tmp_path / "blk00000.dat"
    path.write_bytes(good + frame(blocks[2], TESTNET))
    with pytest.raises(DecodeError) as info:
        list(iter_blk_frames(path, {MAIN}))
    assert info.value.offset == len(good)
    assert "blk00000.dat" in str(info.value) and "bitcoin/testnet" in str(info.value)
    with pytest.raises(DecodeError) as auto:  # learnt from the first frame
        list(iter_blk_frames(path))
    assert auto.value.offset == len(good)


def test_garbage_instead_of_magic(tmp_path: Path, blocks: list[bytes]) -> None:
    good = frame(blocks[0])
    path = tmp_path / "blk00000.dat"
    path.write_bytes(good + b"\x00\x00\x00" + b"\xde\xad\xbe\xef" + bytes(100))
    with pytest.raises(DecodeError, match="not the network magic") as info:
        list(iter_blk_frames(path))
    assert info.value.offset == len(good) + 3


def test_first_frame_of_an_unknown_chain(tmp_path: Path, blocks: list[bytes]) -> None:
    path = tmp_path / "blk00000.dat"
    path.write_bytes(frame(blocks[0], b"\x11\x22\x33\x44"))
    with pytest.raises(DecodeError, match="11223344"):
        list(iter_blk_frames(path))


def test_truncated_final_frame_stops_cleanly(tmp_path: Path, blocks: list[bytes]) -> None:
    whole = b"".join(frame(b) for b in blocks[:438])
    last = frame(blocks[438])
    path = tmp_path / "blk00000.dat"
    path.write_bytes(whole + last[:100])
    truncations: list[TruncatedFrame] = []
    frames = list(iter_blk_frames(path, truncations=truncations))
    assert [f.raw for f in frames] == blocks[:438]
    assert truncations == [TruncatedFrame(path, len(whole), len(blocks[438]), 100)]
    assert "truncated" in str(truncations[0])
    with pytest.raises(DecodeError, match="truncated") as info:
        list(iter_blk_frames(path, strict=True))
    assert info.value.offset == len(whole)
    with pytest.warns(BlkFileWarning, match="truncated"):
        assert len(list(iter_blk_frames(path))) == 438
    seen: list[TruncatedFrame] = []
    chain = list(iter_best_chain_blocks(path, BTC, truncations=seen))
    assert chain == list(enumerate(blocks[:438])) and len(seen) == 1


def test_truncated_frame_header(tmp_path: Path, blocks: list[bytes]) -> None:
    path = tmp_path / "blk00000.dat"
    whole = frame(blocks[0])
    path.write_bytes(whole + MAIN + b"\x1d")
    truncations: list[TruncatedFrame] = []
    assert len(list(iter_blk_frames(path, truncations=truncations))) == 1
    assert truncations == [TruncatedFrame(path, len(whole), None, 5)]


def test_truncation_in_one_file_does_not_hide_the_next(tmp_path: Path, blocks: list[bytes]) -> None:
    (tmp_path / "blk00000.dat").write_bytes(frame(blocks[0]) + frame(blocks[1])[:50])
    (tmp_path / "blk00001.dat").write_bytes(frame(blocks[1]) + frame(blocks[2]))
    truncations: list[TruncatedFrame] = []
    frames = list(iter_blk_frames(tmp_path, truncations=truncations))
    assert [f.raw for f in frames] == blocks[:3] and len(truncations) == 1


@pytest.mark.parametrize("length", [0xFFFFFFFF, MAX_FRAME_LENGTH + 1])
def test_huge_length_fails_fast(tmp_path: Path, blocks: list[bytes], length: int) -> None:
    path = tmp_path / "blk00000.dat"
    good = frame(blocks[0])
    path.write_bytes(good + MAIN + length.to_bytes(4, "little") + blocks[1])
    started = time.perf_counter()
    with pytest.raises(DecodeError, match="maximum") as info:
        list(iter_blk_frames(path))
    assert time.perf_counter() - started < 1.0
    assert info.value.offset == len(good)


def test_length_shorter_than_a_header(tmp_path: Path, blocks: list[bytes]) -> None:
    path = tmp_path / "blk00000.dat"
    path.write_bytes(frame(blocks[0]) + MAIN + (79).to_bytes(4, "little") + bytes(79))
    with pytest.raises(DecodeError, match="shorter than"):
        list(iter_blk_frames(path))


def test_reread_detects_changed_file(tmp_path: Path, blocks: list[bytes]) -> None:
    path = tmp_path / "blk00000.dat"
    path.write_bytes(frame(blocks[0]) + frame(blocks[1]))
    gen = iter_best_chain_blocks(path, BTC)
    assert next(gen) == (0, blocks[0])
    path.write_bytes(frame(blocks[0]) + frame(blocks[2]))
    with pytest.raises(DecodeError, match="changed"):
        next(gen)


def test_bad_magic_set_is_input_error(real_path: Path) -> None:
    with pytest.raises(InputError, match="4-byte"):
        iter_blk_frames(real_path, {b"\xf9\xbe"})
