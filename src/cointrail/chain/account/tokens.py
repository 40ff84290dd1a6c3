"""ERC-20 metadata read with ``eth_call``: ``symbol()``, ``decimals()``, ``name()``.

EIP-20 makes these optional and early tokens answer in other shapes: ``symbol`` as
``bytes32`` (EOS, MKR) instead of ``string``, strings padded with NUL bytes. The decoders
accept those shapes and return None for an answer they cannot read, never a guess.
"""

from __future__ import annotations

from cointrail.chain.account.address import keccak256


def selector(signature: str) -> str:
    """``0x`` + the 4-byte function selector of a signature such as ``symbol()``."""
    return "0x" + keccak256(signature.encode("ascii"))[:4].hex()


SYMBOL, DECIMALS, NAME = selector("symbol()"), selector("decimals()"), selector("name()")
BALANCE_OF = selector("balanceOf(address)")


def decode_text(raw: bytes) -> str | None:
    """An ABI ``string`` or a ``bytes32`` answer as text (NULs stripped); None if neither."""
    if len(raw) >= 64:
        offset = int.from_bytes(raw[:32], "big")
        if offset + 32 <= len(raw):
            size = int.from_bytes(raw[offset:offset + 32], "big")
            if offset + 32 + size <= len(raw):
                return _clean(raw[offset + 32:offset + 32 + size])
    if len(raw) == 32:
        return _clean(raw)
    return None


def _clean(data: bytes) -> str | None:
    text = data.replace(b"\0", b"").decode("utf-8", errors="replace").strip()
    return text or None


def decode_decimals(raw: bytes) -> int | None:
    """A ``uint8`` answer (one 32-byte word); None for an empty or out-of-range answer."""
    if len(raw) != 32:
        return None
    value = int.from_bytes(raw, "big")
    return value if value <= 255 else None


def balance_of_call(token: str, holder: str) -> dict[str, str]:
    """The ``eth_call`` parameters of ``balanceOf(holder)`` on `token`."""
    return {"to": token, "data": BALANCE_OF + holder[2:].rjust(64, "0")}
