"""Malformed input always gives a DecodeError naming the offset; never a hang or huge allocation."""

from __future__ import annotations

import pytest

from cointrail import decode_block, decode_tx
from cointrail.errors import CointrailError, DecodeError, InputError
from tests.support.data import require_shared

# block 170, the first bitcoin transfer (two transactions), from the real blk file
BLOCK_170_HASH = "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee"


@pytest.fixture(scope="module")
def block_170() -> bytes:
    import struct

    data = require_shared("btc/blocks/mainnet-000000-000438.blk").read_bytes()
    pos = 0
    for _ in range(170):
        pos += 8 + struct.unpack_from("<I", data, pos + 4)[0]
    length = struct.unpack_from("<I", data, pos + 4)[0]
    return data[pos + 8 : pos + 8 + length]


def test_block_170_hash(block_170: bytes) -> None:
    assert str(decode_block(block_170).hash) == BLOCK_170_HASH


def test_every_truncation_of_a_real_block_fails_cleanly(block_170: bytes) -> None:
    for cut in range(len(block_170)):
        with pytest.raises(DecodeError) as info:
            decode_block(block_170[:cut])
        assert 0 <= info.value.offset <= max(cut, 0)


def test_trailing_garbage_is_rejected(block_170: bytes) -> None:
    with pytest.raises(DecodeError, match="after the last transaction") as info:
        decode_block(block_170 + b"\x01\x02")
    assert info.value.offset == len(block_170)


def test_oversized_input_count_fails_fast() -> None:
    # version, then a CompactSize claiming 2**64-1 inputs
    raw = bytes.fromhex("01000000" + "ff" + "ff" * 8) + b"\x00" * 64
    with pytest.raises(DecodeError, match="cannot fit") as info:
        decode_tx(raw)
    assert info.value.offset == 4


def test_oversized_tx_count_fails_fast(block_170: bytes) -> None:
    raw = block_170[:80] + b"\xfe\xff\xff\xff\x7f" + block_170[81:]
    with pytest.raises(DecodeError, match="transaction count"):
        decode_block(raw)


def test_non_canonical_compact_size(block_170: bytes) -> None:
    raw = block_170[:80] + b"\xfd\x02\x00" + block_170[81:]
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_block(raw)


def test_garbage_hex_and_bytes() -> None:
    with pytest.raises(DecodeError, match="not valid hexadecimal"):
        decode_tx("zz")
    with pytest.raises(DecodeError):
        decode_tx(b"\x00" * 3)
    with pytest.raises(DecodeError, match="needs at least 80 bytes"):
        decode_block(b"\x00" * 79)


def test_unknown_flags_name_the_chain() -> None:
    raw = bytes.fromhex("01000000" + "0002") + b"\x00" * 20
    with pytest.raises(DecodeError, match="unknown transaction flags 0x02 for bitcoin/mainnet"):
        decode_tx(raw)
    # 0x08 is Litecoin's MWEB flag: unknown on bitcoin
    with pytest.raises(DecodeError, match="0x08"):
        decode_tx(bytes.fromhex("01000000" + "0008") + b"\x00" * 20)


def test_superfluous_witness_record() -> None:
    tx = decode_tx(
        "0100000001" + "00" * 32 + "00000000" + "00" + "ffffffff" + "01" + "00" * 8 + "00"
        + "00000000"
    )
    raw = bytearray()
    raw += tx.version.to_bytes(4, "little") + b"\x00\x01"
    legacy = bytes.fromhex(
        "01" + "00" * 32 + "00000000" + "00" + "ffffffff" + "01" + "00" * 8 + "00"
    )
    raw += legacy + b"\x00" + b"\x00\x00\x00\x00"
    with pytest.raises(DecodeError, match="superfluous witness"):
        decode_tx(bytes(raw))


def test_error_family() -> None:
    assert issubclass(DecodeError, InputError)
    assert issubclass(DecodeError, ValueError)
    assert issubclass(DecodeError, CointrailError)
