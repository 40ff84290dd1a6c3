"""Signature style of inputs (`cointrail.chain.utxo.sigstyle`) and its C twin in the ingest core.

- Hand-made vectors for every flag: strict DER (BIP 66's rules, each one broken once), low and
  high R, sighash types, uncompressed keys, P2SH multisig, truncated pushes, taproot key path
  with and without annex, and what is not a key-path spend.
- Real mainnet blocks (2016, 2018, 2019): the Python rules and the compiled core agree on every
  input, and the share of high-R signatures is what the wallets of the time made (about half of
  the single-signature inputs before low-R grinding spread).
- Random bytes: the two agree on anything.
"""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cointrail import get_chain
from cointrail.chain.utxo.columnar import decode_block_columns
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.sigstyle import (
    SIG_ECDSA,
    SIG_HIGH_R,
    SIG_NOT_ALL,
    SIG_SCHNORR,
    SIG_UNCOMPRESSED,
    describe_flags,
    is_der_signature,
    signature_flags,
)
from cointrail.store.ingest import HAVE_CORE
from tests.support.data import require_shared

P2PKH, P2WPKH, P2TR = (ScriptType.PUBKEYHASH, ScriptType.WITNESS_V0_KEYHASH,
                       ScriptType.WITNESS_V1_TAPROOT)
KEY = bytes([0x02]) + bytes(range(1, 33))
UNCOMPRESSED_KEY = bytes([0x04]) + bytes(range(1, 65))


def der(r: bytes, s: bytes, sighash: int = 0x01) -> bytes:
    """A DER signature of the integers r and s (big-endian bytes, minimal, padded as DER asks)."""

    def integer(v: bytes) -> bytes:
        v = v.lstrip(b"\0") or b"\0"
        if v[0] & 0x80:
            v = b"\0" + v
        return bytes([0x02, len(v)]) + v

    body = integer(r) + integer(s)
    return bytes([0x30, len(body)]) + body + bytes([sighash])


LOW_R = der(bytes([0x7F]) + bytes(31), bytes([0x11]) * 32)
HIGH_R = der(bytes([0x80]) + bytes(31), bytes([0x11]) * 32)


def push(data: bytes) -> bytes:
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return bytes([0x4C, len(data)]) + data
    return bytes([0x4D]) + len(data).to_bytes(2, "little") + data


def serialize_witness(items: list[bytes]) -> bytes:
    out = bytes([len(items)])
    for item in items:
        assert len(item) < 0xFD
        out += bytes([len(item)]) + item
    return out


def both(script_sig: bytes, witness: list[bytes], spent: ScriptType) -> int:
    """The Python flags, checked against the compiled core's when it is built."""
    flags = signature_flags(script_sig, witness, spent)
    if HAVE_CORE:
        from cointrail.store import _ingestcore

        raw = serialize_witness(witness) if witness else b""
        assert _ingestcore.sig_flags(script_sig, raw, spent.code) == flags
    return flags


def test_der_encodings() -> None:
    assert len(LOW_R) == 71 and len(HIGH_R) == 72 and HIGH_R[3] == 33
    assert is_der_signature(LOW_R) and is_der_signature(HIGH_R)
    bad = [
        b"", LOW_R[:8],
        bytes([0x31]) + LOW_R[1:],  # not a sequence
        LOW_R[:1] + bytes([LOW_R[1] + 1]) + LOW_R[2:],  # wrong total length
        LOW_R[:2] + bytes([0x03]) + LOW_R[3:],  # r is not an integer
        der(bytes([0x01]) * 32, bytes([0x11]) * 32)[:-1],  # no sighash byte: lengths disagree
        LOW_R[:4] + bytes([0x80]) + LOW_R[5:],  # negative r
        LOW_R[:4] + b"\0" + LOW_R[5:],  # r padded with a zero it does not need
        bytes([0x30, 0x06, 0x02, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01]),  # empty r
        bytes(80),  # too long
    ]
    for sig in bad:
        assert not is_der_signature(sig), sig.hex()
        assert both(push(sig), [], P2PKH) & SIG_ECDSA == 0


def test_flags_of_legacy_and_segwit_spends() -> None:
    assert both(push(LOW_R) + push(KEY), [], P2PKH) == SIG_ECDSA
    assert both(push(HIGH_R) + push(KEY), [], P2PKH) == SIG_ECDSA | SIG_HIGH_R
    assert both(push(LOW_R) + push(UNCOMPRESSED_KEY), [], P2PKH) == SIG_ECDSA | SIG_UNCOMPRESSED
    anyone_can_pay = der(bytes([0x7F]) + bytes(31), bytes([0x11]) * 32, 0x81)
    assert both(push(anyone_can_pay) + push(KEY), [], P2PKH) == SIG_ECDSA | SIG_NOT_ALL
    # P2WPKH, P2SH-P2WPKH (the scriptSig pushes the redeem script only)
    assert both(b"", [HIGH_R, KEY], P2WPKH) == SIG_ECDSA | SIG_HIGH_R
    redeem = bytes([0x00, 0x14]) + bytes(20)
    assert both(push(redeem), [LOW_R, KEY], ScriptType.SCRIPTHASH) == SIG_ECDSA
    # P2SH 2-of-3: OP_0, two signatures, the redeem script (not DER: skipped)
    multisig = bytes([0x52]) + (push(KEY) * 3) + bytes([0x53, 0xAE])
    script_sig = b"\0" + push(LOW_R) + push(HIGH_R) + push(multisig)
    assert both(script_sig, [], ScriptType.SCRIPTHASH) == SIG_ECDSA | SIG_HIGH_R
    # nothing recognisable: no flags
    assert both(b"", [], P2WPKH) == 0
    assert both(push(b"\x01" * 20), [], P2PKH) == 0


def test_pushes_are_read_up_to_a_non_push_or_a_truncated_push() -> None:
    assert both(push(HIGH_R) + bytes([0x76]) + push(UNCOMPRESSED_KEY), [], P2PKH) == (
        SIG_ECDSA | SIG_HIGH_R)
    truncated = push(LOW_R) + bytes([0x4C, 0xFF]) + bytes(10)
    assert both(truncated, [], P2PKH) == SIG_ECDSA
    assert both(bytes([0x4D, 0x01]), [], P2PKH) == 0  # PUSHDATA2 without its length
    assert both(push(HIGH_R)[:-1], [], P2PKH) == 0


def test_taproot_key_path() -> None:
    schnorr = bytes(range(64))
    assert both(b"", [schnorr], P2TR) == SIG_SCHNORR
    assert both(b"", [schnorr + b"\x01"], P2TR) == SIG_SCHNORR  # explicit SIGHASH_ALL
    assert both(b"", [schnorr + b"\x83"], P2TR) == SIG_SCHNORR | SIG_NOT_ALL
    assert both(b"", [schnorr, b"\x50annex"], P2TR) == SIG_SCHNORR
    # a script path (script and control block) and a 64-byte item elsewhere are not key paths
    assert both(b"", [schnorr, b"\x20" + bytes(32) + b"\xac", b"\xc0" + bytes(32)], P2TR) == 0
    assert both(b"", [schnorr], P2WPKH) == 0
    # ECDSA rules are not applied to a taproot witness
    assert both(b"", [HIGH_R, KEY], P2TR) == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.lists(st.binary(max_size=80), max_size=4),
       st.sampled_from([P2PKH, P2WPKH, P2TR, ScriptType.SCRIPTHASH]))
def test_c_and_python_agree_on_any_bytes(script_sig: bytes, witness: list[bytes],
                                         spent: ScriptType) -> None:
    both(script_sig, witness, spent)
    both(b"".join(push(w) for w in witness) + script_sig, [], spent)


@pytest.mark.skipif(not HAVE_CORE, reason="the compiled ingest core is not built")
@pytest.mark.parametrize(("name", "low", "high"), [
    ("mainnet-413567.raw", 0.45, 0.55),  # 2016: no wallet ground its R yet
    ("mainnet-574200.raw", 0.35, 0.47),  # 2019: Bitcoin Core grinds since 0.17 (2018)
])
def test_real_blocks(name: str, low: float, high: float) -> None:
    from cointrail.store import _ingestcore

    raw = require_shared(f"btc/blocks/{name}").read_bytes()
    block = decode_block_columns(raw, get_chain("bitcoin", "mainnet"))
    counts: collections.Counter[int] = collections.Counter()
    single = collections.Counter[bool]()
    for j in range(len(block.in_sequence)):
        script_sig, witness = block.script_sig(j), block.witness(j)
        start, size = int(block.in_witness_offset[j]), int(block.in_witness_len[j])
        for spent in (P2PKH, P2TR):
            flags = signature_flags(script_sig, witness, spent)
            assert _ingestcore.sig_flags(script_sig, block.raw[start : start + size],
                                         spent.code) == flags, (name, j)
        flags = signature_flags(script_sig, witness, P2PKH)
        counts[flags] += 1
        # one signature and one key: a P2PKH or P2WPKH spend
        items = witness if witness else ()
        if (len(items) == 2 and len(items[1]) == 33) or (
                not items and len(script_sig) in (106, 107, 138, 139)):
            single[bool(flags & SIG_HIGH_R)] += 1 if flags & SIG_ECDSA else 0
    ecdsa = sum(n for f, n in counts.items() if f & SIG_ECDSA)
    assert ecdsa > 0.95 * (len(block.in_sequence) - 1)  # all but the coinbase sign with ECDSA
    share = single[True] / (single[True] + single[False])
    assert sum(single.values()) > 1000
    assert low < share < high, share


def test_flags_are_named_for_people() -> None:
    assert describe_flags(None) is None
    assert describe_flags(0) == dict.fromkeys(
        ("ecdsa", "high_r", "sighash_not_all", "schnorr", "uncompressed_key"), False)
    assert describe_flags(SIG_ECDSA | SIG_HIGH_R | SIG_UNCOMPRESSED) == {
        "ecdsa": True, "high_r": True, "sighash_not_all": False, "schnorr": False,
        "uncompressed_key": True}
    assert describe_flags(SIG_SCHNORR | SIG_NOT_ALL) == {
        "ecdsa": False, "high_r": False, "sighash_not_all": True, "schnorr": True,
        "uncompressed_key": False}
