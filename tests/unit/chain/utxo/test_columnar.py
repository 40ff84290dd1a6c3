"""The columnar decoder: its compiled core equals the pure-Python reference (`decode_block`).

Every txid, wtxid, size, script type, value, address and input of real mainnet blocks is
compared with `decode_block`'s objects; crafted scripts and blocks cover what mainnet data does
not (bare multisig quirks, witness_unknown, Litecoin MWEB and HogAddr, Dogecoin AuxPoW,
CashAddr); random mutations and truncations of real blocks must fail with the same DecodeError
(message and offset) on both paths, or succeed with the same columns.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo import columnar
from cointrail.chain.utxo.block import Block, decode_block
from cointrail.chain.utxo.columnar import (
    HAVE_SPEEDUPS,
    SCRIPT_TYPES,
    BlockColumns,
    decode_block_columns,
)
from cointrail.chain.utxo.hashes import merkle_root, sha256d
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.tx import encode_compact_size, encode_tx
from cointrail.errors import DecodeError
from tests.support.data import require_shared

BTC = get_chain("bitcoin", "mainnet")
LTC = get_chain("litecoin", "mainnet")
BCH = get_chain("bitcoin-cash", "mainnet")
DOGE = get_chain("dogecoin", "mainnet")
SPECS = [BTC, get_chain("bitcoin", "testnet"), LTC, BCH, DOGE]

BIG_BLOCKS = (413567, 540107, 574200)

needs_core = pytest.mark.skipif(
    not HAVE_SPEEDUPS,
    reason="compiled decoder not built (pip install -e .); "
    "test_compiled_core_is_built_in_ci makes CI fail instead",
)


def test_compiled_core_is_built_in_ci() -> None:
    """The C-vs-Python tests skip without the core; in CI a missing core is a failure."""
    if os.environ.get("CI"):
        assert HAVE_SPEEDUPS, "CI must build cointrail.chain.utxo._speedups (see setup.py)"
    else:
        pytest.skip("only enforced when CI is set")


def test_script_type_codes_are_scripttype_order() -> None:
    assert tuple(ScriptType) == SCRIPT_TYPES
    code = getattr(ScriptType.PUBKEY, "code", None)
    if code is not None:  # the store's stable codes are the same numbers
        assert [t.code for t in SCRIPT_TYPES] == list(range(len(SCRIPT_TYPES)))


# ---------------------------------------------------------------------------------- helpers


def iter_framed(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        assert data[pos : pos + 4] == BTC.magic
        (length,) = struct.unpack_from("<I", data, pos + 4)
        yield data[pos + 8 : pos + 8 + length]
        pos += 8 + length


@pytest.fixture(scope="module")
def early_blocks() -> list[bytes]:
    path = require_shared("btc/blocks/mainnet-000000-000438.blk")
    return list(iter_framed(path.read_bytes()))


@pytest.fixture(scope="module")
def big_blocks() -> dict[int, bytes]:
    return {h: require_shared(f"btc/blocks/mainnet-{h}.raw").read_bytes() for h in BIG_BLOCKS}


def c_columns(raw: bytes, spec: ChainSpec = BTC) -> BlockColumns:
    return decode_block_columns(raw, spec, use_speedups=True)


def py_columns(raw: bytes, spec: ChainSpec = BTC) -> BlockColumns:
    return decode_block_columns(raw, spec, use_speedups=False)


def assert_same_columns(a: BlockColumns, b: BlockColumns) -> None:
    for f in fields(BlockColumns):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, f.name
            assert x.shape == y.shape, f.name
            assert np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def assert_matches_reference(cols: BlockColumns, block: Block, raw: bytes) -> None:
    """Every field of the columns against decode_block's objects."""
    assert cols.hash == block.hash
    assert cols.header == block.header
    assert (cols.version, cols.prev_hash, cols.merkle_root) == (
        block.header.version,
        block.header.prev_hash,
        block.header.merkle_root,
    )
    assert (cols.time, cols.bits, cols.nonce) == (
        block.header.time,
        block.header.bits,
        block.header.nonce,
    )
    assert (cols.size, cols.stripped_size, cols.weight) == (
        block.size,
        block.stripped_size,
        block.weight,
    )
    assert cols.n_tx == len(block.transactions)
    assert cols.auxpow_end == (None if block.auxpow is None else 80 + len(block.auxpow))
    if block.mweb_data is None:
        assert cols.mweb_offset is None
    else:
        assert raw[cols.mweb_offset :] == block.mweb_data
    k = j = 0
    first_out, first_in = cols.tx_first_output, cols.tx_first_input
    for i, tx in enumerate(block.transactions):
        assert cols.txid(i) == tx.txid
        assert cols.wtxid(i) == tx.wtxid
        start = int(cols.tx_offset[i])
        assert raw[start : start + int(cols.tx_size[i])] == encode_tx(tx)
        assert int(cols.tx_size[i]) == tx.size
        assert int(cols.tx_base_size[i]) == tx.base_size
        assert int(cols.tx_version[i]) == tx.version
        assert int(cols.tx_lock_time[i]) == tx.lock_time
        assert int(cols.tx_flags[i]) == tx.flags
        assert int(cols.tx_mweb_size[i]) == tx.mweb_size
        assert int(cols.tx_n_in[i]) == len(tx.inputs)
        assert int(cols.tx_n_out[i]) == len(tx.outputs)
        assert int(first_out[i]) == k
        assert int(first_in[i]) == j
        assert cols.is_coinbase(i) == tx.is_coinbase
        for out in tx.outputs:
            assert int(cols.out_tx[k]) == i
            assert int(cols.out_value[k]) == out.value
            assert cols.script_pubkey(k) == out.script_pubkey
            assert cols.script_type(k) is out.script_type
            assert cols.addresses[k] == out.address
            k += 1
        for txin in tx.inputs:
            assert int(cols.in_tx[j]) == i
            assert cols.prev_txid(j) == txin.prev_txid
            assert int(cols.in_prev_vout[j]) == txin.prev_vout
            assert int(cols.in_sequence[j]) == txin.sequence
            assert cols.script_sig(j) == txin.script_sig
            assert cols.witness(j) == txin.witness
            j += 1
    assert k == cols.n_outputs == len(cols.addresses)
    assert j == cols.n_inputs
    assert cols.txid_list() == [tx.txid for tx in block.transactions]


def outcome(decode: Callable[[], BlockColumns]) -> BlockColumns | tuple[str, int]:
    """The columns, or (message, offset) of the DecodeError; any other exception propagates."""
    try:
        return decode()
    except DecodeError as exc:
        return exc.reason, exc.offset


def assert_paths_agree(raw: bytes, spec: ChainSpec = BTC) -> BlockColumns | tuple[str, int]:
    """Both paths succeed with equal columns, or fail with the same DecodeError."""
    py = outcome(lambda: py_columns(raw, spec))
    if HAVE_SPEEDUPS:
        c = outcome(lambda: c_columns(raw, spec))
        if isinstance(py, BlockColumns):
            assert isinstance(c, BlockColumns), c
            assert_same_columns(c, py)
        else:
            assert c == py
    return py


# ------------------------------------------------------------------------------ real blocks


@needs_core
@pytest.mark.parametrize("height", BIG_BLOCKS)
def test_big_block_equals_reference(big_blocks: dict[int, bytes], height: int) -> None:
    raw = big_blocks[height]
    cols = c_columns(raw)
    block = decode_block(raw)
    assert_matches_reference(cols, block, raw)
    assert cols.merkle_root_valid
    txids = cols.txids.tobytes()
    assert merkle_root([txids[i : i + 32] for i in range(0, len(txids), 32)]) == cols.merkle_root
    assert_same_columns(cols, py_columns(raw))


@needs_core
@pytest.mark.parametrize("height", BIG_BLOCKS)
def test_without_wtxids_every_other_column_is_the_same(
    big_blocks: dict[int, bytes], height: int
) -> None:
    """wtxids=False (what the store's ingest asks for) skips only the witness txids: every
    other column is the full decode's, and asking for a wtxid says how to get it."""
    raw = big_blocks[height]
    full = c_columns(raw)
    lean = decode_block_columns(raw, BTC, use_speedups=True, wtxids=False)
    assert full.has_wtxids and not lean.has_wtxids
    assert not lean.wtxids.any() and lean.wtxids.shape == full.wtxids.shape
    segwit = [i for i in range(full.n_tx) if full.wtxid(i) != full.txid(i)]
    assert bool(segwit) == (height > 481_824)  # after segwit's activation: hashing skipped
    for f in fields(BlockColumns):
        if f.name not in ("wtxids", "has_wtxids"):
            x, y = getattr(full, f.name), getattr(lean, f.name)
            assert np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y, f.name
    assert lean.merkle_root_valid
    with pytest.raises(ValueError, match="wtxids=True"):
        lean.wtxid(0)


@pytest.mark.parametrize("height", BIG_BLOCKS)
def test_python_path_equals_reference(big_blocks: dict[int, bytes], height: int) -> None:
    raw = big_blocks[height]
    cols = py_columns(raw)
    assert_matches_reference(cols, decode_block(raw), raw)
    assert cols.merkle_root_valid


def test_big_blocks_hold_the_types_they_should(big_blocks: dict[int, bytes]) -> None:
    """The real data exercises p2pk (attributed to p2pkh), p2wpkh/p2wsh and nulldata."""
    cols = decode_block_columns(big_blocks[574200])
    types = {SCRIPT_TYPES[t] for t in np.unique(cols.out_type)}
    assert {ScriptType.PUBKEY, ScriptType.WITNESS_V0_SCRIPTHASH, ScriptType.NULLDATA} <= types
    p2pk = [k for k in range(cols.n_outputs) if cols.script_type(k) is ScriptType.PUBKEY]
    assert all(cols.addresses[k] is not None for k in p2pk)
    assert all(
        (cols.addresses[k] is None)
        == (cols.script_type(k) in (ScriptType.NULLDATA, ScriptType.NONSTANDARD))
        for k in range(cols.n_outputs)
    )


@needs_core
def test_all_early_blocks_equal_reference(early_blocks: list[bytes]) -> None:
    assert len(early_blocks) == 439
    for raw in early_blocks:
        cols = c_columns(raw)
        assert_matches_reference(cols, decode_block(raw), raw)
        assert cols.merkle_root_valid
        assert_same_columns(cols, py_columns(raw))


def test_inputs_of_every_kind(early_blocks: list[bytes]) -> None:
    """bytes, bytearray, memoryview and hex give the same columns."""
    raw = early_blocks[170]
    ref = decode_block_columns(raw)
    for variant in (bytearray(raw), memoryview(raw), raw.hex()):
        assert_same_columns(decode_block_columns(variant), ref)
    with pytest.raises(DecodeError, match="not valid hexadecimal"):
        decode_block_columns("zz")


@needs_core
def test_every_truncation_fails_alike(early_blocks: list[bytes]) -> None:
    raw = early_blocks[170]
    for cut in range(len(raw)):
        result = assert_paths_agree(raw[:cut])
        assert not isinstance(result, BlockColumns)
        assert 0 <= result[1] <= cut


# ---------------------------------------------------------------------- synthetic builders


def cs(n: int) -> bytes:
    return encode_compact_size(n)


def make_tx(
    outputs: list[tuple[int, bytes]],
    *,
    n_inputs: int = 1,
    witness: list[list[bytes]] | None = None,
    flags: int | None = None,
    mweb_presence: bytes = b"",
    version: int = 2,
    lock_time: int = 0,
) -> bytes:
    ins = b"".join(
        bytes([i]) * 32 + struct.pack("<I", i) + cs(20) + bytes(20) + struct.pack("<I", 0xFFFFFFFE)
        for i in range(n_inputs)
    )
    outs = b"".join(struct.pack("<q", v) + cs(len(s)) + s for v, s in outputs)
    if flags is None:
        flags = 1 if witness else 0
    wit = b""
    if witness is not None:
        wit = b"".join(
            cs(len(stack)) + b"".join(cs(len(x)) + x for x in stack) for stack in witness
        )
    marker = b"\x00" + bytes([flags]) if flags else b""
    return (
        struct.pack("<i", version)
        + marker
        + cs(n_inputs)
        + ins
        + cs(len(outputs))
        + outs
        + wit
        + mweb_presence
        + struct.pack("<I", lock_time)
    )


HEADER = struct.pack("<i", 0x20000000) + bytes(range(4, 80))  # version without AuxPoW bit


def make_block(txs: list[bytes], header: bytes = HEADER, between: bytes = b"") -> bytes:
    return header + between + cs(len(txs)) + b"".join(txs)


# ------------------------------------------------------------------------- script classes

keys33 = st.builds(
    lambda p, b: bytes([p]) + b, st.sampled_from([2, 3]), st.binary(min_size=32, max_size=32)
)
keys65 = st.builds(
    lambda p, b: bytes([p]) + b, st.sampled_from([4, 6, 7]), st.binary(min_size=64, max_size=64)
)


def push(data: bytes) -> bytes:
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return b"\x4c" + bytes([len(data)]) + data
    return b"\x4d" + struct.pack("<H", len(data)) + data


def small(x: int) -> bytes:
    """OP_1..OP_16 for 1..16, else the byte itself (OP_0 and non-numbers)."""
    return bytes([0x50 + x]) if 1 <= x <= 16 else bytes([x & 0xFF])


def number(x: int, form: str) -> bytes:
    """`x` as multisig's m or n: OP_N, or pushed (Core accepts minimal pushes of 17..20)."""
    if form == "op":
        return small(x)
    if form == "push":
        return bytes([1, x & 0x7F])
    if form == "pushdata1":
        return b"\x4c\x01" + bytes([x & 0xFF])
    if form == "non-minimal":
        return b"\x02" + bytes([x & 0xFF, 0])
    return b"\x01" + bytes([(x & 0x7F) | 0x80])  # negative


number_forms = st.sampled_from(["op", "op", "push", "push", "pushdata1", "non-minimal", "negative"])


@st.composite
def multisig_like(draw: st.DrawFn) -> bytes:
    key = st.one_of(keys33, keys65, st.binary(max_size=70))
    keys = draw(st.one_of(st.lists(key, max_size=4), st.lists(keys33, min_size=15, max_size=21)))
    m = draw(st.one_of(st.integers(0, 5), st.integers(15, 22)))
    n = draw(st.sampled_from([len(keys), len(keys), draw(st.integers(0, 22))]))
    body = number(m, draw(number_forms))
    body += b"".join(push(k) for k in keys) + number(n, draw(number_forms))
    tail = draw(st.sampled_from([b"\xae", b"\x01\xae", b"\xac", b""]))
    return body + tail


@st.composite
def witness_like(draw: st.DrawFn) -> bytes:
    op = draw(st.sampled_from([0x00, 0x51, 0x52, 0x58, 0x59, 0x60, 0x4F, 0x61]))
    program = draw(st.one_of(st.binary(max_size=41), st.sampled_from([b"\x4e\x73", b"\x4e"])))
    length = draw(st.sampled_from([len(program), len(program), len(program) + 1]))
    return bytes([op, length & 0xFF]) + program


@st.composite
def nulldata_like(draw: st.DrawFn) -> bytes:
    parts = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=90).map(push),
                st.sampled_from([b"\x00", b"\x4f", b"\x50", b"\x51", b"\x60", b"\x61", b"\x6a"]),
                st.sampled_from(
                    [b"\x4c", b"\x4d\x01", b"\x4e\x00\x00\x00", b"\x4e\xff\xff\xff\xff"]
                ),
            ),
            max_size=4,
        )
    )
    return b"\x6a" + b"".join(parts)


scripts = st.one_of(
    st.binary(max_size=80),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\xa9\x14" + h + b"\x87"),
    keys33.map(lambda k: b"\x21" + k + b"\xac"),
    keys65.map(lambda k: b"\x41" + k + b"\xac"),
    st.binary(min_size=65, max_size=65).map(lambda k: b"\x41" + k + b"\xac"),
    multisig_like(),
    witness_like(),
    nulldata_like(),
)


@needs_core
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outs=st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), scripts), max_size=8),
    spec=st.sampled_from(SPECS),
)
def test_crafted_scripts_classify_and_encode_alike(
    outs: list[tuple[int, bytes]], spec: ChainSpec
) -> None:
    raw = make_block([make_tx(outs, n_inputs=1)])
    result = assert_paths_agree(raw, spec)
    assert isinstance(result, BlockColumns)
    assert_matches_reference(c_columns(raw, spec), decode_block(raw, spec), raw)


@needs_core
def test_multisig_quirk_last_byte_only() -> None:
    """classify_script checks the script's last byte, not that the last op is CHECKMULTISIG."""
    key = b"\x02" + b"\x11" * 32
    quirk = b"\x51" + push(key) + b"\x51" + b"\x01\xae"
    plain = b"\x51" + push(key) + b"\x51\xae"
    raw = make_block([make_tx([(1, quirk), (2, plain)])])
    cols = c_columns(raw)
    assert [cols.script_type(k) for k in range(2)] == [ScriptType.MULTISIG, ScriptType.MULTISIG]
    assert_matches_reference(cols, decode_block(raw), raw)


@needs_core
def test_multisig_with_pushed_counts() -> None:
    """Core takes m and n as OP_1..OP_16 or minimal pushes of 17..20 (up to 20 keys)."""
    keys = b"".join(push(b"\x03" + bytes([i]) * 32) for i in range(17))
    scripts = [
        number(1, "op") + keys + number(17, "push") + b"\xae",
        number(17, "push") + keys + number(17, "push") + b"\xae",
        number(1, "op") + keys + number(17, "non-minimal") + b"\xae",
        number(1, "op") + keys + number(17, "pushdata1") + b"\xae",
        number(1, "op") + keys + number(17, "negative") + b"\xae",
        number(18, "push") + keys + number(17, "push") + b"\xae",
    ]
    raw = make_block([make_tx([(i, sc) for i, sc in enumerate(scripts)])])
    cols = c_columns(raw)
    assert [cols.script_type(k) for k in range(len(scripts))] == [
        ScriptType.MULTISIG,
        ScriptType.MULTISIG,
        *[ScriptType.NONSTANDARD] * 4,
    ]
    assert_matches_reference(cols, decode_block(raw), raw)


@needs_core
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.key)
def test_every_address_kind_per_chain(spec: ChainSpec) -> None:
    h20, h32 = bytes(range(20)), bytes(range(32))
    outs = [
        b"\x76\xa9\x14" + h20 + b"\x88\xac",
        b"\xa9\x14" + h20 + b"\x87",
        b"\x21\x03" + h32 + b"\xac",
        b"\x41\x04" + h32 + h32 + b"\xac",
        b"\x00\x14" + h20,
        b"\x00\x20" + h32,
        b"\x51\x20" + h32,
        b"\x51\x02\x4e\x73",  # pay-to-anchor: witness_unknown with an address
        b"\x60\x28" + bytes(40),
        b"\x58\x20" + h32,  # Litecoin: HogAddr
        b"\x59\x20" + h32,  # Litecoin: MWEB peg-in
        b"\x00\x00" * 20,
    ]
    raw = make_block([make_tx([(i, s) for i, s in enumerate(outs)])])
    cols = c_columns(raw, spec)
    assert_matches_reference(cols, decode_block(raw, spec), raw)
    assert cols.addresses[0] is not None
    if spec.cashaddr_prefix:
        assert str(cols.addresses[0]).startswith(spec.cashaddr_prefix + ":")


# ------------------------------------------------------------------ chains' block formats


@needs_core
def test_segwit_and_mweb_transactions() -> None:
    """Litecoin: witness + MWEB flag (wtxid without the MWEB byte), HogEx, MWEB block."""
    p2wpkh = b"\x00\x14" + b"\x22" * 20
    coinbase = make_tx([(50, p2wpkh)], witness=[[b"\x00" * 32]])
    both = make_tx(
        [(1, p2wpkh), (2, b"\x58\x20" + b"\x33" * 32)],
        n_inputs=2,
        witness=[[b"\x30" * 71, b"\x02" * 33], []],
        flags=0x09,
        mweb_presence=b"\x00",
    )
    hogex = make_tx([(3, b"\x58\x20" + b"\x44" * 32)], flags=0x08, mweb_presence=b"\x00")
    mweb_block = b"\x01\x02\x03 opaque MWEB block"
    raw = make_block([coinbase, both, hogex]) + mweb_block
    cols = c_columns(raw, LTC)
    block = decode_block(raw, LTC)
    assert block.mweb_data == mweb_block
    assert_matches_reference(cols, block, raw)
    assert_same_columns(cols, py_columns(raw, LTC))
    assert cols.script_type(2) is ScriptType.WITNESS_MWEB_HOGADDR
    assert cols.addresses[2] is None
    # the same bytes are not a bitcoin block
    assert not isinstance(assert_paths_agree(raw, BTC), BlockColumns)
    # a HogEx last with nothing after it
    truncated = make_block([coinbase, hogex])
    assert assert_paths_agree(truncated, LTC) == (
        "block ends with a HogEx but the MWEB block is missing",
        len(truncated),
    )


@needs_core
def test_dogecoin_auxpow() -> None:
    parent_coinbase = make_tx([(1, b"\x51")], version=1)
    auxpow = (
        parent_coinbase
        + b"\x55" * 32
        + cs(2) + b"\x66" * 64 + struct.pack("<i", 0)
        + cs(0) + struct.pack("<i", 0)
        + b"\x77" * 80
    )  # fmt: skip
    header = struct.pack("<i", 0x00620104) + HEADER[4:]
    txs = [make_tx([(5, b"\x76\xa9\x14" + b"\x12" * 20 + b"\x88\xac")], version=1)]
    raw = make_block(txs, header=header, between=auxpow)
    cols = c_columns(raw, DOGE)
    block = decode_block(raw, DOGE)
    assert block.auxpow == auxpow
    assert cols.auxpow_end == 80 + len(auxpow)
    assert_matches_reference(cols, block, raw)
    assert_same_columns(cols, py_columns(raw, DOGE))
    for cut in range(len(raw)):
        assert not isinstance(assert_paths_agree(raw[:cut], DOGE), BlockColumns)


# --------------------------------------------------------------------- malformed data


def test_errors_are_decode_errors_with_offsets() -> None:
    for raw in (b"", b"\x00" * 79, b"\x00" * 80, b"\x00" * 81, HEADER + b"\xff" + b"\xff" * 8):
        for use in (False, True) if HAVE_SPEEDUPS else (False,):
            with pytest.raises(DecodeError) as info:
                decode_block_columns(raw, use_speedups=use)
            assert 0 <= info.value.offset <= len(raw)


@pytest.fixture(scope="module")
def mutation_corpus(
    early_blocks: list[bytes], big_blocks: dict[int, bytes]
) -> list[tuple[bytes, ChainSpec]]:
    """Small real blocks: block 170 (first transfer), and mainnet headers with a few real
    segwit / p2pk / multi-input transactions of the big blocks."""
    corpus: list[tuple[bytes, ChainSpec]] = [(early_blocks[170], BTC), (early_blocks[9], BTC)]
    for height, picks in ((574200, (0, 1, 7)), (540107, (0, 3)), (413567, (0, 2, 5))):
        cols = decode_block_columns(big_blocks[height])
        raw = big_blocks[height]
        txs = [
            raw[int(cols.tx_offset[i]) : int(cols.tx_offset[i]) + int(cols.tx_size[i])]
            for i in picks
        ]
        corpus.append((make_block(txs, header=raw[:80]), BTC))
    corpus.append((corpus[2][0], LTC))
    corpus.append((corpus[1][0], BCH))
    return corpus


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, bytes]]:
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(size - 1, 0)))
        value = draw(
            st.one_of(
                st.binary(min_size=1, max_size=9),
                st.sampled_from([b"\x00", b"\x01", b"\x08", b"\x09", b"\xfd", b"\xfe", b"\xff",
                                 b"\xff" * 9, b"\xfd\x00\x00", b"\x00\x01"]),
            )
        )  # fmt: skip
        ops.append((kind, at, value))
    return ops


def apply(raw: bytes, ops: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(raw)
    for kind, where, value in ops:
        at = min(where, len(data))
        if kind == "set":
            data[at : at + len(value)] = value
        elif kind == "insert":
            data[at:at] = value
        elif kind == "delete":
            del data[at : at + len(value)]
        else:
            del data[at:]
    return bytes(data)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_blocks_fail_alike_or_decode_alike(
    mutation_corpus: list[tuple[bytes, ChainSpec]], data: st.DataObject
) -> None:
    raw, spec = data.draw(st.sampled_from(mutation_corpus))
    mutated = apply(raw, data.draw(mutations(len(raw))))
    result = assert_paths_agree(mutated, spec)
    if isinstance(result, BlockColumns):
        assert result.size == len(mutated)
    else:
        assert 0 <= result[1] <= len(mutated)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400), spec=st.sampled_from(SPECS))
def test_random_bytes_fail_alike(raw: bytes, spec: ChainSpec) -> None:
    assert_paths_agree(raw, spec)
    assert_paths_agree(HEADER + raw, spec)


@needs_core
def test_hostile_counts_fail_fast() -> None:
    huge = b"\xff" + struct.pack("<Q", 2**64 - 1)
    for raw in (
        HEADER + huge,
        HEADER + cs(1) + struct.pack("<i", 1) + huge,
        HEADER + cs(1) + make_tx([(1, b"")])[:-14] + huge,  # output count
    ):
        result = assert_paths_agree(raw + bytes(100))
        assert not isinstance(result, BlockColumns)
        assert "cannot fit" in result[0]


def test_block_170_txid_is_sha256d_of_its_bytes(early_blocks: list[bytes]) -> None:
    raw = early_blocks[170]
    cols = decode_block_columns(raw)
    for i in range(cols.n_tx):
        start = int(cols.tx_offset[i])
        assert cols.txid(i) == sha256d(raw[start : start + int(cols.tx_size[i])])


def test_columns_module_reports_which_path_runs() -> None:
    assert columnar.HAVE_SPEEDUPS is HAVE_SPEEDUPS
