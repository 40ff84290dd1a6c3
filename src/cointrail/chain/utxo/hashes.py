"""Hash types and hash functions of the Bitcoin family.

Hashes are 32-byte ``bytes`` in internal (wire) byte order; ``str()`` gives the reversed,
lower-case hex that Bitcoin Core's RPC prints. Distinct types (`Txid`, `Wtxid`, `BlockHash`)
keep a wtxid from being passed where a txid is meant.
"""

from __future__ import annotations

import hashlib
from typing import Self

from cointrail.errors import InputError


class Hash256(bytes):
    """A 32-byte hash in internal byte order; prints in RPC (reversed) hex."""

    __slots__ = ()

    def __str__(self) -> str:
        return self[::-1].hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self}')"

    @property
    def rpc_hex(self) -> str:
        """Lower-case hex in RPC byte order (what block explorers and Core print)."""
        return self[::-1].hex()

    @classmethod
    def from_rpc_hex(cls, text: str) -> Self:
        """Parse RPC-order hex (64 hex digits) into internal byte order."""
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise InputError(
                f"{text!r} is not a {cls.__name__}: expected 64 hex digits in RPC byte order"
            )
        return cls(raw[::-1])


class Txid(Hash256):
    """Transaction id: double-SHA256 of the transaction without witness (BIP 141)."""

    __slots__ = ()


class Wtxid(Hash256):
    """Witness transaction id: double-SHA256 of the full serialization (BIP 141)."""

    __slots__ = ()


class BlockHash(Hash256):
    """Block hash: double-SHA256 of the 80-byte header."""

    __slots__ = ()


def sha256d(data: bytes | memoryview) -> bytes:
    """Double SHA-256 ("Hash256" in Bitcoin Core)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256 ("Hash160"), the payload of p2pkh / p2wpkh addresses."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def merkle_root(hashes: list[bytes]) -> bytes:
    """Merkle root of a list of 32-byte hashes (internal order), as Bitcoin computes it.

    An odd level duplicates its last hash (the CVE-2012-2459 quirk is the chain's rule).
    """
    if not hashes:
        return b"\x00" * 32
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]
