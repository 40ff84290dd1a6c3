"""Property tests: any well-formed transaction round-trips; ids follow BIP 141."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cointrail import decode_tx
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.hashes import Txid, sha256d
from cointrail.chain.utxo.tx import Transaction, TxIn, encode_tx, make_output

BTC = get_chain("bitcoin", "mainnet")

scripts = st.one_of(
    st.binary(max_size=60),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x76\xa9\x14" + h + b"\x88\xac"),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\xa9\x14" + h + b"\x87"),
    st.binary(min_size=20, max_size=20).map(lambda h: b"\x00\x14" + h),
    st.binary(min_size=32, max_size=32).map(lambda h: b"\x51\x20" + h),
    st.binary(max_size=80).map(lambda d: b"\x6a" + bytes([len(d)]) + d if len(d) < 76 else b"\x6a"),
)

inputs = st.builds(
    TxIn,
    prev_txid=st.binary(min_size=32, max_size=32).map(Txid),
    prev_vout=st.integers(0, 2**32 - 1),
    script_sig=st.binary(max_size=120),
    sequence=st.integers(0, 2**32 - 1),
    witness=st.lists(st.binary(max_size=80), max_size=4).map(tuple),
)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    ins = draw(st.lists(inputs, min_size=1, max_size=5))
    segwit = any(i.witness for i in ins)
    if not segwit:
        ins = [TxIn(i.prev_txid, i.prev_vout, i.script_sig, i.sequence, ()) for i in ins]
    outs = [
        make_output(BTC, n, draw(st.integers(0, 21 * 10**14)), draw(scripts))
        for n in range(draw(st.integers(0, 5)))
    ]
    version = draw(st.integers(-(2**31), 2**31 - 1))
    lock_time = draw(st.integers(0, 2**32 - 1))
    tx = Transaction(
        version, tuple(ins), tuple(outs), lock_time, Txid(b"\x00" * 32), b"\x00" * 32,  # type: ignore[arg-type]
        0, 0, 1 if segwit else 0,
    )
    return tx


@settings(max_examples=300, deadline=None)
@given(transactions())
def test_encode_decode_round_trip(tx: Transaction) -> None:
    raw = encode_tx(tx)
    decoded = decode_tx(raw)
    assert encode_tx(decoded) == raw
    assert decoded.inputs == tx.inputs
    assert decoded.outputs == tx.outputs
    assert (decoded.version, decoded.lock_time) == (tx.version, tx.lock_time)
    assert decoded.txid == sha256d(encode_tx(decoded, include_witness=False))
    assert decoded.wtxid == sha256d(raw)
    assert decoded.size == len(raw)
    assert decoded.base_size == len(encode_tx(decoded, include_witness=False))
    assert decoded.vsize == (decoded.base_size * 3 + decoded.size + 3) // 4


@settings(max_examples=200, deadline=None)
@given(transactions(), st.data())
def test_every_truncation_is_a_decode_error_with_offset(
    tx: Transaction, data: st.DataObject
) -> None:
    from cointrail.errors import DecodeError

    raw = encode_tx(tx)
    cut = data.draw(st.integers(0, len(raw) - 1))
    try:
        decode_tx(raw[:cut])
    except DecodeError as exc:
        assert 0 <= exc.offset <= cut
        assert "offset" in str(exc)
    else:  # a prefix can only decode if it is itself a complete transaction
        raise AssertionError(f"truncated transaction at {cut} of {len(raw)} decoded")
