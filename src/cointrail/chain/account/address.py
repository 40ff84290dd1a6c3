"""Ethereum account addresses: EIP-55 checksums, keccak-256, the lower-case stored form.

Invariant: every address leaving this module is ``0x`` + 40 lower-case hex digits. Mixed-case
input must carry a valid EIP-55 checksum (all-lower and all-upper input carry none and are
accepted as written, as EIP-55 specifies).
"""

from __future__ import annotations

import re

from Crypto.Hash import keccak

from cointrail.errors import AddressError

_HEX40 = re.compile(r"0[xX][0-9a-fA-F]{40}")
ZERO_ADDRESS = "0x" + "0" * 40
#: ``addresses.type`` code of an account address (UTXO ScriptType codes stay below 64).
ACCOUNT_ADDRESS_TYPE = 64


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (the pre-standard padding, not SHA3-256)."""
    return keccak.new(digest_bits=256, data=data).digest()


def to_checksum_address(address: str) -> str:
    """The EIP-55 mixed-case form of a (valid) address."""
    lower = parse_eth_address(address)[2:]
    hashed = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(h, 16) >= 8 else c
        for c, h in zip(lower, hashed, strict=False)
    )


def parse_eth_address(text: str) -> str:
    """``0x`` + 40 lower-case hex digits; AddressError on a wrong form or a bad EIP-55 checksum."""
    cleaned = text.strip()
    if not _HEX40.fullmatch(cleaned):
        raise AddressError(
            f"{cleaned[:64]!r} is not an Ethereum address (0x followed by 40 hex digits)"
        )
    digits = cleaned[2:]
    lower = digits.lower()
    if digits not in (lower, digits.upper()):
        hashed = keccak256(lower.encode("ascii")).hex()
        expected = "".join(
            c.upper() if c.isalpha() and int(h, 16) >= 8 else c
            for c, h in zip(lower, hashed, strict=False)
        )
        if expected != digits:
            raise AddressError(
                f"{cleaned!r} fails its EIP-55 checksum (mixed case that does not match); "
                "the address is mistyped: copy it again from the source"
            )
    return "0x" + lower


def address_from_word(word: bytes) -> str:
    """The address in the low 20 bytes of a 32-byte ABI word (an indexed log topic)."""
    return "0x" + word[-20:].hex()
