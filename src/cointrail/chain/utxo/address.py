"""Address encodings of the Bitcoin family, and parsing an address for one chain and network.

Encodings, all hand-written:

* Base58Check: legacy P2PKH / P2SH addresses (checksum = first 4 bytes of double SHA-256).
* Bech32 (BIP 173) and Bech32m (BIP 350): native segwit addresses; v0 uses Bech32, v1..v16
  Bech32m. Litecoin MWEB stealth addresses reuse Bech32 without the 90-character limit.
* CashAddr (Bitcoin Cash ``cashaddr.md``): ``prefix:payload`` with a 40-bit BCH-code checksum.

`encode_address` turns a classified output script (Bitcoin Core's script type names) into the
address a node would show; `parse_address` does the reverse for one `ChainSpec`, and names the
registered chain/network an address belongs to when it is not the one asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from cointrail.chain.spec import ChainSpec, Family, all_chains
from cointrail.errors import AddressError

__all__ = [
    "B58_ALPHABET",
    "BECH32_MAX_LENGTH",
    "CASHADDR_P2PKH",
    "CASHADDR_P2SH",
    "CASHADDR_TOKEN_P2PKH",
    "CASHADDR_TOKEN_P2SH",
    "CHARSET",
    "Encoding",
    "ParsedAddress",
    "b58decode",
    "b58encode",
    "base58check_decode",
    "base58check_encode",
    "bech32_decode",
    "bech32_decode_segwit",
    "bech32_encode",
    "bech32_encode_segwit",
    "cashaddr_decode",
    "cashaddr_decode_raw",
    "cashaddr_encode",
    "cashaddr_encode_raw",
    "convertbits",
    "encode_address",
    "guess_chains",
    "parse_address",
]

# --------------------------------------------------------------------------- Base58 / Base58Check

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Base58 with Bitcoin's alphabet; every leading zero byte becomes a leading ``1``."""
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, rem = divmod(n, 58)
        digits.append(B58_ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of `b58encode`; raises AddressError on a character outside the alphabet."""
    n = 0
    for pos, char in enumerate(text):
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise AddressError(
                f"invalid base58 character {char!r} at position {pos} in {_shown(text)!r}; "
                "base58 has no 0, O, I or l: check the address for typos"
            )
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def _checksum4(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[:4]


def base58check_encode(version: int, payload: bytes) -> str:
    """Base58Check of one version byte + `payload` + 4-byte double-SHA256 checksum."""
    if not 0 <= version <= 0xFF:
        raise AddressError(f"base58check version {version} does not fit in one byte")
    data = bytes([version]) + payload
    return b58encode(data + _checksum4(data))


def base58check_decode(text: str) -> tuple[int, bytes]:
    """``(version byte, payload)`` of a Base58Check string, checksum verified."""
    raw = b58decode(text)
    if len(raw) < 5:
        raise AddressError(
            f"{_shown(text)!r} is too short for base58check ({len(raw)} bytes, need at least 5 "
            "for version and checksum); the address is truncated: copy it again from the source"
        )
    data, check = raw[:-4], raw[-4:]
    if _checksum4(data) != check:
        raise AddressError(
            f"bad base58check checksum in {_shown(text)!r}: the address is mistyped or "
            "truncated; copy it again from the source"
        )
    return data[0], data[1:]


# --------------------------------------------------------------------- Bech32 / Bech32m (173/350)

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_INDEX = {c: i for i, c in enumerate(CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
BECH32_MAX_LENGTH = 90  # BIP 173 limit for segwit addresses


class Encoding(Enum):
    """Checksum variant; the value is the constant the polymod must equal (BIP 173 / BIP 350)."""

    BECH32 = 1
    BECH32M = 0x2BC830A3


def _bech32_polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def convertbits(data: Iterable[int], frombits: int, tobits: int, pad: bool = True) -> list[int]:
    """Regroup `frombits`-bit values into `tobits`-bit values, most significant bit first.

    With ``pad`` the last group is zero-padded; without it (decoding, BIP 173) a leftover of
    `frombits` bits or more, or non-zero leftover bits, raise AddressError.
    """
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    max_acc = (1 << (frombits + tobits - 1)) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise AddressError(f"value {value} does not fit in {frombits} bits")
        acc = ((acc << frombits) | value) & max_acc
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits:
        raise AddressError(f"invalid padding: {bits} leftover bits (at most {frombits - 1})")
    elif (acc << (tobits - bits)) & maxv:
        raise AddressError("invalid padding: leftover bits are not zero")
    return out


def bech32_encode(hrp: str, data: Sequence[int], encoding: Encoding) -> str:
    """``hrp`` + ``1`` + 5-bit `data` + 6-character checksum of `encoding` (no length check)."""
    values = _hrp_expand(hrp) + list(data)
    mod = _bech32_polymod([*values, 0, 0, 0, 0, 0, 0]) ^ encoding.value
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in [*data, *checksum])


def bech32_decode(
    text: str, *, max_length: int | None = BECH32_MAX_LENGTH
) -> tuple[str, list[int], Encoding]:
    """``(hrp, 5-bit data without checksum, encoding)`` of a Bech32 or Bech32m string.

    Enforces BIP 173: printable ASCII, no mixed case, at most `max_length` characters (None
    lifts the limit, as Litecoin does for MWEB), non-empty HRP, 6-character checksum.
    """
    for pos, char in enumerate(text):
        if not 33 <= ord(char) <= 126:
            raise AddressError(
                f"character {char!r} at position {pos} is not printable ASCII; "
                "a bech32 string holds only ASCII 33..126"
            )
    if text.lower() != text and text.upper() != text:
        raise AddressError(
            f"{_shown(text)!r} mixes upper and lower case, which bech32 forbids (BIP 173); "
            "write it all in lower case"
        )
    if max_length is not None and len(text) > max_length:
        raise AddressError(
            f"{_shown(text)!r} is {len(text)} characters long; bech32 allows at most {max_length}"
        )
    lowered = text.lower()
    sep = lowered.rfind("1")
    if sep < 0:
        raise AddressError(f"{_shown(text)!r} has no bech32 separator '1'")
    if sep == 0:
        raise AddressError(f"{_shown(text)!r} has an empty human-readable part before the '1'")
    if sep + 7 > len(lowered):
        raise AddressError(f"{_shown(text)!r} is too short for a 6-character bech32 checksum")
    hrp = lowered[:sep]
    data: list[int] = []
    for pos in range(sep + 1, len(lowered)):
        value = _CHARSET_INDEX.get(lowered[pos])
        if value is None:
            raise AddressError(
                f"invalid bech32 character {text[pos]!r} at position {pos} in {_shown(text)!r}; "
                "bech32 has no 1, b, i or o after the separator: check the address for typos"
            )
        data.append(value)
    const = _bech32_polymod(_hrp_expand(hrp) + data)
    for encoding in Encoding:
        if const == encoding.value:
            return hrp, data[:-6], encoding
    raise AddressError(
        f"bad bech32 checksum in {_shown(text)!r}: the address is mistyped or truncated; "
        "copy it again from the source"
    )


def _check_witness(witver: int, program: bytes) -> None:
    if not 0 <= witver <= 16:
        raise AddressError(f"invalid witness version {witver}; segwit versions are 0..16")
    if not 2 <= len(program) <= 40:
        raise AddressError(
            f"invalid witness program length {len(program)} bytes; segwit allows 2..40 (BIP 141)"
        )
    if witver == 0 and len(program) not in (20, 32):
        raise AddressError(
            f"invalid witness v0 program length {len(program)} bytes; v0 is 20 (P2WPKH) "
            "or 32 (P2WSH) bytes (BIP 141)"
        )


def _encoding_for(witver: int) -> Encoding:
    return Encoding.BECH32 if witver == 0 else Encoding.BECH32M


def bech32_encode_segwit(hrp: str, witver: int, program: bytes) -> str:
    """Segwit address: Bech32 for witness v0 (BIP 173), Bech32m for v1..v16 (BIP 350)."""
    _check_witness(witver, program)
    if not hrp or hrp != hrp.lower() or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise AddressError(f"invalid human-readable part {hrp!r}; use lower-case ASCII")
    text = bech32_encode(hrp, [witver, *convertbits(program, 8, 5)], _encoding_for(witver))
    if len(text) > BECH32_MAX_LENGTH:
        raise AddressError(f"segwit address would be {len(text)} characters, over the 90 limit")
    return text


def bech32_decode_segwit(hrp: str, text: str) -> tuple[int, bytes]:
    """``(witness version, program)`` of a segwit address with human-readable part `hrp`.

    Enforces BIP 173 and BIP 350: HRP, version 0..16, program 2..40 bytes (v0: 20 or 32),
    padding of at most 4 zero bits, Bech32 for v0 and Bech32m for v1+.
    """
    got, data, encoding = bech32_decode(text)
    if got != hrp:
        raise AddressError(f"{_shown(text)!r} has human-readable part {got!r}, expected {hrp!r}")
    if not data:
        raise AddressError(f"{_shown(text)!r} has an empty data part: no witness version")
    witver = data[0]
    if witver > 16:
        raise AddressError(f"invalid witness version {witver} in {_shown(text)!r}; 0..16 exist")
    program = bytes(convertbits(data[1:], 5, 8, pad=False))
    _check_witness(witver, program)
    expected = _encoding_for(witver)
    if encoding is not expected:
        raise AddressError(
            f"{_shown(text)!r} is witness v{witver} with a {encoding.name.lower()} checksum; "
            f"v{witver} requires {expected.name.lower()} (BIP 350): the address was made by "
            "faulty software, do not send to it"
        )
    return witver, program


# ------------------------------------------------------------------------- CashAddr (cashaddr.md)

CASHADDR_P2PKH = 0
CASHADDR_P2SH = 1
CASHADDR_TOKEN_P2PKH = 2  # CashTokens (CHIP-2022-02): token-aware P2PKH, same output script
CASHADDR_TOKEN_P2SH = 3  # CashTokens: token-aware P2SH
_CASH_GENERATOR = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
_CASH_SIZE_BITS = {20: 0, 24: 1, 28: 2, 32: 3, 40: 4, 48: 5, 56: 6, 64: 7}
_CASH_SIZE_BYTES = {bits: size for size, bits in _CASH_SIZE_BITS.items()}


def _cash_polymod(values: Iterable[int]) -> int:
    c = 1
    for value in values:
        top = c >> 35
        c = ((c & 0x07FFFFFFFF) << 5) ^ value
        for i, gen in enumerate(_CASH_GENERATOR):
            if (top >> i) & 1:
                c ^= gen
    return c ^ 1


def _cash_prefix_expand(prefix: str) -> list[int]:
    return [ord(c) & 31 for c in prefix] + [0]


def _check_cash_prefix(prefix: str) -> None:
    if not prefix or not prefix.isascii() or not prefix.isalnum() or prefix != prefix.lower():
        raise AddressError(f"invalid cashaddr prefix {prefix!r}; use lower-case letters/digits")


def cashaddr_encode_raw(prefix: str, data: Sequence[int]) -> str:
    """``prefix:`` + 5-bit `data` + 8-character (40-bit) checksum."""
    _check_cash_prefix(prefix)
    mod = _cash_polymod([*_cash_prefix_expand(prefix), *data, 0, 0, 0, 0, 0, 0, 0, 0])
    checksum = [(mod >> 5 * (7 - i)) & 31 for i in range(8)]
    return prefix + ":" + "".join(CHARSET[d] for d in [*data, *checksum])


def cashaddr_decode_raw(text: str, default_prefix: str | None = None) -> tuple[str, list[int]]:
    """``(prefix, 5-bit data without checksum)`` of a CashAddr string, checksum verified.

    The prefix may be omitted when `default_prefix` is given; mixed case is rejected.
    """
    if text.lower() != text and text.upper() != text:
        raise AddressError(
            f"{_shown(text)!r} mixes upper and lower case, which cashaddr forbids; "
            "write it all in lower case"
        )
    lowered = text.lower()
    if ":" in lowered:
        prefix, _, payload = lowered.partition(":")
        if not prefix:
            raise AddressError(f"{_shown(text)!r} has an empty prefix before the ':'")
    elif default_prefix is None:
        raise AddressError(
            f"{_shown(text)!r} has no cashaddr prefix; write it as 'bitcoincash:...' "
            "(or the prefix of its network)"
        )
    else:
        prefix, payload = default_prefix.lower(), lowered
    data: list[int] = []
    for pos, char in enumerate(payload):
        value = _CHARSET_INDEX.get(char)
        if value is None:
            raise AddressError(
                f"invalid cashaddr character {char!r} at position {pos} of the payload of "
                f"{_shown(text)!r}; cashaddr has no 1, b, i or o: check the address for typos"
            )
        data.append(value)
    if len(data) < 8:
        raise AddressError(f"{_shown(text)!r} is too short for the 8-character cashaddr checksum")
    if _cash_polymod(_cash_prefix_expand(prefix) + data) != 0:
        raise AddressError(
            f"bad cashaddr checksum in {_shown(text)!r} for prefix {prefix!r}: the address is "
            "mistyped, truncated or belongs to another network"
        )
    return prefix, data[:-8]


def cashaddr_encode(prefix: str, kind: int, hash_: bytes) -> str:
    """CashAddr for type `kind` (0 = P2PKH, 1 = P2SH) and a 20..64-byte hash.

    The version byte is ``kind << 3 | size bits`` (cashaddr.md, "Type byte").
    """
    if not 0 <= kind <= 15:
        raise AddressError(f"cashaddr type {kind} does not fit in 4 bits")
    size_bits = _CASH_SIZE_BITS.get(len(hash_))
    if size_bits is None:
        raise AddressError(
            f"cashaddr cannot carry a {len(hash_)}-byte hash; sizes are 20, 24, 28, 32, 40, 48, "
            "56 or 64 bytes"
        )
    return cashaddr_encode_raw(prefix, convertbits(bytes([kind << 3 | size_bits]) + hash_, 8, 5))


def cashaddr_decode(text: str, default_prefix: str | None = None) -> tuple[str, int, bytes]:
    """``(prefix, kind, hash)`` of a CashAddr, with or without its prefix.

    Verifies the checksum, the reserved version bit and that the size bits match the hash length.
    """
    prefix, data = cashaddr_decode_raw(text, default_prefix)
    payload = bytes(convertbits(data, 5, 8, pad=False))
    if not payload:
        raise AddressError(f"{_shown(text)!r} has no cashaddr version byte")
    version = payload[0]
    if version & 0x80:
        raise AddressError(f"{_shown(text)!r} sets the reserved high bit of the version byte")
    hash_ = payload[1:]
    expected = _CASH_SIZE_BYTES[version & 0x07]
    if len(hash_) != expected:
        raise AddressError(
            f"{_shown(text)!r} carries a {len(hash_)}-byte hash but its version byte says "
            f"{expected} bytes"
        )
    return prefix, version >> 3, hash_


# ----------------------------------------------------------------------- script types, addresses

_NO_ADDRESS = frozenset(
    {"pubkey", "multisig", "nulldata", "nonstandard", "witness_mweb_hogaddr", "witness_mweb_pegin"}
)
_WITNESS_FIXED = {
    "witness_v0_keyhash": (0, 20),
    "witness_v0_scripthash": (0, 32),
    "witness_v1_taproot": (1, 32),
}
_ANCHOR_PROGRAM = bytes.fromhex("4e73")  # pay-to-anchor, witness v1 (Bitcoin Core 28)
_MWEB_PAYLOAD_SIZE = 66  # scan pubkey (33) + spend pubkey (33)


def _need_length(script_type: str, payload: bytes, *sizes: int) -> None:
    if len(payload) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise AddressError(f"{script_type} payload must be {want} bytes, got {len(payload)}")


def encode_address(spec: ChainSpec, script_type: str, payload: bytes) -> str | None:
    """The address of an output of `script_type` (Bitcoin Core's names) on `spec`'s chain.

    Payloads: ``pubkeyhash``/``scripthash`` the 20-byte hash (Bitcoin Cash: cashaddr, and
    ``scripthash`` may be a 32-byte P2SH32 hash); ``witness_v0_keyhash`` 20 bytes,
    ``witness_v0_scripthash`` and ``witness_v1_taproot`` 32 bytes; ``witness_unknown`` the
    version byte + program; ``anchor`` the 2-byte program; ``mweb`` (Litecoin) scan + spend
    pubkeys, 66 bytes. Returns None for types without an address and for segwit/MWEB types on a
    chain without them; raises AddressError on an unknown type or a payload of the wrong size.
    """
    if script_type in _NO_ADDRESS:
        return None
    if script_type in ("pubkeyhash", "scripthash"):
        p2pkh = script_type == "pubkeyhash"
        if spec.cashaddr_prefix is not None:
            _need_length(script_type, payload, *((20,) if p2pkh else (20, 32)))
            kind = CASHADDR_P2PKH if p2pkh else CASHADDR_P2SH
            return cashaddr_encode(spec.cashaddr_prefix, kind, payload)
        _need_length(script_type, payload, 20)
        return base58check_encode(spec.p2pkh_prefix if p2pkh else spec.p2sh_prefix, payload)
    if script_type in _WITNESS_FIXED or script_type in ("witness_unknown", "anchor"):
        if spec.bech32_hrp is None:
            return None
        if script_type == "witness_unknown":
            if not payload:
                raise AddressError("witness_unknown payload must start with the version byte")
            witver, program = payload[0], payload[1:]
        elif script_type == "anchor":
            witver, program = 1, payload
        else:
            witver, size = _WITNESS_FIXED[script_type]
            _need_length(script_type, payload, size)
            program = payload
        return bech32_encode_segwit(spec.bech32_hrp, witver, program)
    if script_type == "mweb":
        if spec.mweb_hrp is None:
            return None
        _need_length(script_type, payload, _MWEB_PAYLOAD_SIZE)
        return bech32_encode(spec.mweb_hrp, [0, *convertbits(payload, 8, 5)], Encoding.BECH32)
    raise AddressError(
        f"unknown script type {script_type!r}; expected one of Bitcoin Core's names "
        "(pubkeyhash, scripthash, witness_v0_keyhash, witness_v0_scripthash, witness_v1_taproot, "
        "witness_unknown, anchor, pubkey, multisig, nulldata, nonstandard) or mweb"
    )


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An address validated for one chain and network.

    `text` is the canonical form: bech32 and cashaddr in lower case, cashaddr with its prefix.
    `script_type` uses Bitcoin Core's names plus ``mweb``; `payload` is what `encode_address`
    takes for that type. `script_pubkey` is the output script paying the address; it is empty for
    Litecoin MWEB addresses, whose outputs live in the extension block and have no script.
    """

    text: str
    spec: ChainSpec
    script_type: str
    payload: bytes
    script_pubkey: bytes


def _witness_script(witver: int, program: bytes) -> bytes:
    return bytes([0x50 + witver if witver else 0, len(program)]) + program


def _p2pkh_script(hash_: bytes) -> bytes:
    return b"\x76\xa9\x14" + hash_ + b"\x88\xac"  # DUP HASH160 <20> EQUALVERIFY CHECKSIG


def _p2sh_script(hash_: bytes) -> bytes:
    if len(hash_) == 32:  # Bitcoin Cash P2SH32: HASH256 <32> EQUAL
        return b"\xaa\x20" + hash_ + b"\x87"
    return b"\xa9\x14" + hash_ + b"\x87"  # HASH160 <20> EQUAL


def _shown(text: str) -> str:
    return text if len(text) <= 64 else text[:40] + "..."


def _where(spec: ChainSpec) -> str:
    return f"{spec.chain} {spec.network}"


_MAX_ADDRESS_LENGTH = 200  # MWEB addresses are ~120 characters; anything longer is not one


def _parse(text: str, spec: ChainSpec) -> ParsedAddress:
    if not text:
        raise AddressError("empty address; pass the address text")
    if len(text) > _MAX_ADDRESS_LENGTH:
        raise AddressError(f"{_shown(text)!r} is {len(text)} characters, too long for an address")
    lowered = text.lower()
    if spec.mweb_hrp is not None and lowered.startswith(spec.mweb_hrp + "1"):
        return _parse_mweb(text, spec, spec.mweb_hrp)
    if spec.bech32_hrp is not None and lowered.startswith(spec.bech32_hrp + "1"):
        witver, program = bech32_decode_segwit(spec.bech32_hrp, text)
        return _segwit_parsed(lowered, spec, witver, program)
    if spec.cashaddr_prefix is not None and (":" in text or _looks_like_cashaddr(text)):
        return _parse_cashaddr(text, spec, spec.cashaddr_prefix)
    if ":" in text:
        raise AddressError(
            f"{_shown(text)!r} contains ':', which no {_where(spec)} address does; pass the bare "
            "address, without a 'bitcoin:'-style URI scheme or a cashaddr prefix"
        )
    try:
        hrp = bech32_decode(text, max_length=None)[0]
    except AddressError:
        pass
    else:
        uses = (
            f"uses {spec.bech32_hrp!r}" if spec.bech32_hrp else "has no bech32 (segwit) addresses"
        )
        raise AddressError(
            f"{_shown(text)!r} is a bech32 address with human-readable part {hrp!r}, but "
            f"{_where(spec)} {uses}; check the chain and network the address belongs to"
        )
    return _parse_base58(text, spec)


def _looks_like_cashaddr(text: str) -> bool:
    # a prefix-less cashaddr is >= 42 charset characters; legacy base58 addresses are <= 35
    return len(text) >= 42 and all(c in _CHARSET_INDEX for c in text.lower())


def _segwit_parsed(text: str, spec: ChainSpec, witver: int, program: bytes) -> ParsedAddress:
    script = _witness_script(witver, program)
    if witver == 0:
        kind = "witness_v0_keyhash" if len(program) == 20 else "witness_v0_scripthash"
        return ParsedAddress(text, spec, kind, program, script)
    if witver == 1 and len(program) == 32:
        return ParsedAddress(text, spec, "witness_v1_taproot", program, script)
    if witver == 1 and program == _ANCHOR_PROGRAM:
        return ParsedAddress(text, spec, "anchor", program, script)
    return ParsedAddress(text, spec, "witness_unknown", bytes([witver]) + program, script)


def _parse_mweb(text: str, spec: ChainSpec, hrp: str) -> ParsedAddress:
    got, data, encoding = bech32_decode(text, max_length=None)
    if got != hrp:
        raise AddressError(f"{_shown(text)!r} has human-readable part {got!r}, expected {hrp!r}")
    if encoding is not Encoding.BECH32:
        raise AddressError(f"{_shown(text)!r}: MWEB addresses use a bech32 checksum, not bech32m")
    if not data or data[0] != 0:
        raise AddressError(f"{_shown(text)!r}: MWEB address version must be 0")
    payload = bytes(convertbits(data[1:], 5, 8, pad=False))
    if len(payload) != _MWEB_PAYLOAD_SIZE:
        raise AddressError(
            f"{_shown(text)!r}: MWEB address carries {len(payload)} bytes, expected 66 "
            "(scan pubkey + spend pubkey)"
        )
    return ParsedAddress(text.lower(), spec, "mweb", payload, b"")


def _parse_cashaddr(text: str, spec: ChainSpec, expected_prefix: str) -> ParsedAddress:
    prefix, kind, hash_ = cashaddr_decode(text, default_prefix=expected_prefix)
    if prefix != expected_prefix:
        raise AddressError(
            f"{_shown(text)!r} has cashaddr prefix {prefix!r}; {_where(spec)} uses "
            f"{expected_prefix!r}"
        )
    canonical = cashaddr_encode(prefix, kind, hash_)
    if kind in (CASHADDR_P2PKH, CASHADDR_TOKEN_P2PKH) and len(hash_) == 20:
        return ParsedAddress(canonical, spec, "pubkeyhash", hash_, _p2pkh_script(hash_))
    if kind in (CASHADDR_P2SH, CASHADDR_TOKEN_P2SH) and len(hash_) in (20, 32):
        return ParsedAddress(canonical, spec, "scripthash", hash_, _p2sh_script(hash_))
    raise AddressError(
        f"{_shown(text)!r} is cashaddr type {kind} with a {len(hash_)}-byte hash, which pays no "
        "known output script (P2PKH needs 20 bytes, P2SH 20 or 32)"
    )


def _parse_base58(text: str, spec: ChainSpec) -> ParsedAddress:
    version, payload = base58check_decode(text)
    if version == spec.p2pkh_prefix:
        script_type = "pubkeyhash"
    elif version == spec.p2sh_prefix or version in spec.legacy_p2sh_prefixes:
        script_type = "scripthash"
    else:
        prefixes = f"p2pkh 0x{spec.p2pkh_prefix:02x}, p2sh 0x{spec.p2sh_prefix:02x}"
        if spec.legacy_p2sh_prefixes:
            legacy = ", ".join(f"0x{p:02x}" for p in spec.legacy_p2sh_prefixes)
            prefixes += f", legacy p2sh {legacy}"
        raise AddressError(
            f"{_shown(text)!r} has version byte 0x{version:02x}, which is not a {_where(spec)} "
            f"address prefix ({prefixes}); check the chain and network"
        )
    if len(payload) != 20:
        raise AddressError(
            f"{_shown(text)!r} carries {len(payload)} bytes after its version byte; a "
            f"{script_type} address carries a 20-byte hash: the address is malformed"
        )
    script = _p2pkh_script(payload) if script_type == "pubkeyhash" else _p2sh_script(payload)
    return ParsedAddress(text, spec, script_type, payload, script)


def _utxo_specs() -> tuple[ChainSpec, ...]:
    return tuple(s for s in all_chains() if s.family is Family.UTXO)


def _parses(text: str, spec: ChainSpec) -> bool:
    try:
        _parse(text, spec)
    except AddressError:
        return False
    return True


def _other_chain_hint(text: str, spec: ChainSpec) -> str | None:
    matches = [s for s in _utxo_specs() if s != spec and _parses(text, s)]
    if not matches:
        return None
    # closest first: same chain (another network), then same network (another chain)
    matches.sort(key=lambda s: (s.chain != spec.chain, s.network != spec.network))
    best = matches[0]
    flags = []
    if best.chain != spec.chain:
        flags.append(f"--chain {best.chain}")
    if best.network != spec.network:
        flags.append(f"--network {best.network}")
    advice = "pass " + " ".join(flags)
    if len(matches) == 1:
        return f"{_shown(text)!r} is a {_where(best)} address, not {_where(spec)}; {advice}"
    names = ", ".join(_where(s) for s in matches)
    return (
        f"{_shown(text)!r} is not a {_where(spec)} address; it is valid for {names}; "
        f"{advice} if it is a {_where(best)} address"
    )


def parse_address(text: str, spec: ChainSpec) -> ParsedAddress:
    """Validate `text` as an address of `spec`'s chain and network (surrounding blanks ignored).

    Checks the checksum and the version byte / human-readable part / cashaddr prefix. Accepts
    `spec.legacy_p2sh_prefixes` as P2SH (Litecoin's old ``3...`` form), cashaddr with or without
    prefix and legacy base58 on Bitcoin Cash, and Litecoin MWEB addresses (script type ``mweb``,
    payload = scan + spend pubkey, no script). The AddressError says what is wrong and, when the
    address belongs to another registered chain or network, which one and what to pass instead.
    """
    if spec.family is not Family.UTXO:
        raise AddressError(
            f"{_where(spec)} is not a UTXO chain; parse its addresses with its own codec"
        )
    cleaned = text.strip()
    try:
        return _parse(cleaned, spec)
    except AddressError as exc:
        hint = _other_chain_hint(cleaned, spec)
        if hint is None and _looks_like_ethereum(cleaned):
            hint = (f"{cleaned!r} looks like an Ethereum address (0x and 40 hex digits), not "
                    f"a {_where(spec)} address; pass --chain ethereum")
        if hint is None:
            raise
        raise AddressError(hint) from exc


def _looks_like_ethereum(text: str) -> bool:
    """``0x`` + 40 hex digits: an account-model (Ethereum) address, whatever its checksum."""
    body = text[2:]
    return text[:2] in ("0x", "0X") and len(body) == 40 and all(
        c in "0123456789abcdefABCDEF" for c in body)


def guess_chains(text: str) -> list[ChainSpec]:
    """Every registered UTXO chain/network for which `text` is a valid address, registry order."""
    cleaned = text.strip()
    return [s for s in _utxo_specs() if _parses(cleaned, s)]
