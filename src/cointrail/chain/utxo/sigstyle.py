"""The signature style of an input: what its scriptSig and witness say about the signing wallet.

A wallet fingerprint feature (Möser & Narayanan 2022; Bitcoin Core's low-R grinding, PR 13666,
released in 0.17): `signature_flags` reads the signatures and public keys an input pushes and
returns bit flags, stored per input (``inputs.sig_flags``):

- `SIG_ECDSA`: at least one strictly DER-encoded ECDSA signature (BIP 66's
  ``IsValidSignatureEncoding``, with its sighash byte).
- `SIG_HIGH_R`: one of them has a high R: its r value takes 33 bytes in DER (r >= 2^255, so a
  0x00 pad). A wallet that grinds its nonce for a low R (Bitcoin Core and Litecoin Core since
  0.17, Electrum since 4.x, and others) never makes one; a wallet that does not, makes one with
  every other signature.
- `SIG_NOT_ALL`: a signature with a sighash type other than ``SIGHASH_ALL`` (for Schnorr, a
  65-byte signature whose last byte is not 0x01; 64 bytes is the default, all).
- `SIG_SCHNORR`: a BIP 340 Schnorr signature on a taproot key-path spend (a witness of one
  64- or 65-byte item, or two with an annex).
- `SIG_UNCOMPRESSED`: an uncompressed public key (65 bytes, 0x04) is pushed.

Only push data is read: a scriptSig with a non-push opcode, or a push running past its end, is
read up to that point. The redeem script or witness script at the end of a P2SH / P2WSH spend is
not DER and is skipped, so each signature of a multisig spend counts. The compiled ingest core
(`cointrail.store._ingestcore`) has the same rules in C; tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

from cointrail.chain.utxo.script import OP_PUSHDATA4, TRUNCATED, ScriptType, scan_ops

SIG_ECDSA = 1
SIG_HIGH_R = 2
SIG_NOT_ALL = 4
SIG_SCHNORR = 8
SIG_UNCOMPRESSED = 16

SIGHASH_ALL = 0x01
_ANNEX_TAG = 0x50


def is_der_signature(sig: bytes) -> bool:
    """BIP 66's strict DER check of a signature with its sighash byte (Core's
    ``IsValidSignatureEncoding``)."""
    size = len(sig)
    if size < 9 or size > 73 or sig[0] != 0x30 or sig[1] != size - 3 or sig[2] != 0x02:
        return False
    len_r = sig[3]
    if len_r == 0 or 5 + len_r >= size:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != size:
        return False
    if sig[4] & 0x80 or (len_r > 1 and sig[4] == 0 and not sig[5] & 0x80):
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0:
        return False
    return not (sig[len_r + 6] & 0x80
                or (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80))


def _item_flags(item: bytes) -> int:
    if is_der_signature(item):
        flags = SIG_ECDSA
        if item[3] == 33:
            flags |= SIG_HIGH_R
        if item[-1] != SIGHASH_ALL:
            flags |= SIG_NOT_ALL
        return flags
    if len(item) == 65 and item[0] == 0x04:
        return SIG_UNCOMPRESSED
    return 0


def signature_flags(script_sig: bytes, witness: Sequence[bytes], spent_type: ScriptType) -> int:
    """The `SIG_*` flags of one input (0: no signature or key recognised)."""
    flags = 0
    for data in _pushes(script_sig):
        flags |= _item_flags(data)
    if spent_type is ScriptType.WITNESS_V1_TAPROOT:
        items = list(witness)
        if len(items) >= 2 and items[-1][:1] == bytes([_ANNEX_TAG]):
            items.pop()
        if len(items) == 1 and len(items[0]) in (64, 65):
            flags |= SIG_SCHNORR
            if len(items[0]) == 65 and items[0][64] != SIGHASH_ALL:
                flags |= SIG_NOT_ALL
        return flags
    for item in witness:
        flags |= _item_flags(item)
    return flags


def describe_flags(flags: int | None) -> dict[str, bool] | None:
    """The flags as named facts, for people and JSON (None: not known, e.g. an input ingested
    before the store kept signature styles)."""
    if flags is None:
        return None
    return {
        "ecdsa": bool(flags & SIG_ECDSA),
        "high_r": bool(flags & SIG_HIGH_R),
        "sighash_not_all": bool(flags & SIG_NOT_ALL),
        "schnorr": bool(flags & SIG_SCHNORR),
        "uncompressed_key": bool(flags & SIG_UNCOMPRESSED),
    }


def _pushes(script: bytes) -> list[bytes]:
    """The data pushed by `script`, up to its first non-push opcode or a push that runs past
    its end."""
    out: list[bytes] = []
    for op, data in scan_ops(script):
        if op == TRUNCATED or op > OP_PUSHDATA4 or data is None:
            break
        out.append(data)
    return out
