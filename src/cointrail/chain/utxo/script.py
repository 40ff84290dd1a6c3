"""Output-script classification, following Bitcoin Core's ``Solver`` (script/standard.cpp).

`classify_script` returns the script type under Bitcoin Core's name and the payload an address
is made from. How outputs without an address of their own are attributed (for clustering and
balances) is decided here and documented in docs/adr/0002-address-attribution.md:

- ``pubkey`` (p2pk): attributed to the p2pkh address of the same key, as block explorers,
  BlockSci and GraphSense do (Satoshi's 2009 coins are p2pk).
- ``multisig`` (bare): no address; the output keeps its script, and `multisig_keys` gives the
  keys for analyses that want them.
- ``nulldata`` (OP_RETURN), ``nonstandard``: no address, never clustered.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_16 = 0x60
OP_RETURN = 0x6A
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC
OP_CHECKMULTISIG = 0xAE

#: Pay-to-anchor witness program (Bitcoin Core 28, ephemeral anchors).
ANCHOR_PROGRAM = bytes.fromhex("4e73")
#: Core's MAX_PUBKEYS_PER_MULTISIG.
MAX_MULTISIG_KEYS = 20

#: Litecoin's MWEB HogEx output ("HogAddr"): witness version 8, 32-byte program.
MWEB_HOGADDR_VERSION = 8
#: Litecoin's MWEB peg-in output: witness version 9, 32-byte program (the kernel id).
MWEB_PEGIN_VERSION = 9


class ScriptType(StrEnum):
    """Output script types; values are Bitcoin Core's ``scriptPubKey.type`` names."""

    PUBKEY = "pubkey"
    PUBKEYHASH = "pubkeyhash"
    SCRIPTHASH = "scripthash"
    MULTISIG = "multisig"
    NULLDATA = "nulldata"
    WITNESS_V0_KEYHASH = "witness_v0_keyhash"
    WITNESS_V0_SCRIPTHASH = "witness_v0_scripthash"
    WITNESS_V1_TAPROOT = "witness_v1_taproot"
    WITNESS_UNKNOWN = "witness_unknown"
    WITNESS_MWEB_HOGADDR = "witness_mweb_hogaddr"
    NONSTANDARD = "nonstandard"
    ANCHOR = "anchor"  # pay-to-anchor, OP_1 <0x4e73> (Bitcoin Core 28)
    WITNESS_MWEB_PEGIN = "witness_mweb_pegin"  # Litecoin peg-in output: v9, kernel id

    @property
    def code(self) -> int:
        """Stable small-integer code used by the store (never reorder existing members)."""
        return _CODES[self]

    @classmethod
    def from_code(cls, code: int) -> ScriptType:
        return _BY_CODE[code]


_CODES: dict[ScriptType, int] = {t: i for i, t in enumerate(ScriptType)}
_BY_CODE: dict[int, ScriptType] = {i: t for t, i in _CODES.items()}


#: what `scan_ops` yields, in place of an opcode, for a push that runs past the script's end
TRUNCATED = -1


def scan_ops(script: bytes) -> Iterator[tuple[int, bytes | None]]:
    """The script's (opcode, push data) pairs in order (data None for other opcodes); a push
    that runs past the end yields ``(TRUNCATED, None)`` and ends the scan."""
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op > OP_PUSHDATA4:
            yield op, None
            continue
        width = 0 if op < OP_PUSHDATA1 else {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2}.get(op, 4)
        if i + width > n:
            yield TRUNCATED, None
            return
        size = op if width == 0 else int.from_bytes(script[i : i + width], "little")
        i += width
        if i + size > n:
            yield TRUNCATED, None
            return
        yield op, script[i : i + size]
        i += size


def iter_ops(script: bytes) -> list[tuple[int, bytes | None]] | None:
    """Split a script into (opcode, push data) pairs; None if a push runs past the end."""
    ops = list(scan_ops(script))
    if ops and ops[-1][0] == TRUNCATED:
        return None
    return ops


def pubkey_size_valid(key: bytes) -> bool:
    """Core's ``CPubKey::ValidSize``: the length the first byte announces."""
    if not key:
        return False
    first = key[0]
    if first in (2, 3):
        return len(key) == 33
    if first in (4, 6, 7):
        return len(key) == 65
    return False


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) if `script` is a witness program (BIP 141), else None."""
    n = len(script)
    if n < 4 or n > 42:
        return None
    op = script[0]
    if op != OP_0 and not OP_1 <= op <= OP_16:
        return None
    if script[1] + 2 != n:
        return None
    version = 0 if op == OP_0 else op - OP_1 + 1
    return version, script[2:]


def _is_push_only(ops: list[tuple[int, bytes | None]]) -> bool:
    return all(op <= OP_16 for op, _ in ops)


def _small_number(op: int, data: bytes | None) -> int | None:
    """Core's ``GetScriptNumber(opcode, data, 1, MAX_PUBKEYS_PER_MULTISIG)``: OP_1..OP_16, or a
    minimally pushed number 17..20."""
    if OP_1 <= op <= OP_16:
        return op - OP_1 + 1
    if data is None or op > OP_PUSHDATA4 or not 1 <= len(data) <= 4:
        return None
    if op != len(data):  # must be a direct push (minimal)
        return None
    if data[-1] & 0x7F == 0 and (len(data) == 1 or not data[-2] & 0x80):
        return None  # not minimally encoded
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return None  # negative
    return value if 17 <= value <= MAX_MULTISIG_KEYS else None


def multisig_keys(script: bytes) -> tuple[int, list[bytes]] | None:
    """(required, keys) for a bare multisig script (``OP_m <keys> OP_n OP_CHECKMULTISIG``)."""
    if len(script) < 3 or script[-1] != OP_CHECKMULTISIG:
        return None
    ops = iter_ops(script)
    if ops is None or len(ops) < 4:
        return None
    required, total = _small_number(*ops[0]), _small_number(*ops[-2])
    if required is None or total is None:
        return None
    keys = []
    for op, data in ops[1:-2]:
        if data is None or op > OP_PUSHDATA4 or not pubkey_size_valid(data):
            return None
        keys.append(data)
    if len(keys) != total or not 1 <= required <= total:
        return None
    return required, keys


def classify_script(script: bytes, mweb: bool = False) -> tuple[ScriptType, bytes]:
    """The type of an output script and the payload its address encodes.

    Payloads: hash160 for pubkeyhash/scripthash, the key for pubkey, the witness program for
    witness v0/v1, version byte + program for witness_unknown, the data after OP_RETURN for
    nulldata, the whole script for multisig, and b"" for nonstandard. `mweb` enables
    Litecoin's HogAddr type.
    """
    n = len(script)
    if n == 23 and script[0] == OP_HASH160 and script[1] == 20 and script[22] == OP_EQUAL:
        return ScriptType.SCRIPTHASH, script[2:22]
    wp = witness_program(script)
    if wp is not None:
        version, program = wp
        if version == 0:
            if len(program) == 20:
                return ScriptType.WITNESS_V0_KEYHASH, program
            if len(program) == 32:
                return ScriptType.WITNESS_V0_SCRIPTHASH, program
            return ScriptType.NONSTANDARD, b""
        if version == 1 and len(program) == 32:
            return ScriptType.WITNESS_V1_TAPROOT, program
        if version == 1 and program == ANCHOR_PROGRAM:
            return ScriptType.ANCHOR, program
        if mweb and version == MWEB_HOGADDR_VERSION and len(program) == 32:
            return ScriptType.WITNESS_MWEB_HOGADDR, program
        if mweb and version == MWEB_PEGIN_VERSION and len(program) == 32:
            return ScriptType.WITNESS_MWEB_PEGIN, program
        return ScriptType.WITNESS_UNKNOWN, bytes([version]) + program
    if n >= 1 and script[0] == OP_RETURN:
        ops = iter_ops(script[1:])
        if ops is not None and _is_push_only(ops):
            return ScriptType.NULLDATA, script[1:]
    if n == 35 and script[0] == 33 and script[34] == OP_CHECKSIG and script[1] in (2, 3):
        return ScriptType.PUBKEY, script[1:34]
    if n == 67 and script[0] == 65 and script[66] == OP_CHECKSIG and script[1] in (4, 6, 7):
        return ScriptType.PUBKEY, script[1:66]
    if (
        n == 25
        and script[0] == OP_DUP
        and script[1] == OP_HASH160
        and script[2] == 20
        and script[23] == OP_EQUALVERIFY
        and script[24] == OP_CHECKSIG
    ):
        return ScriptType.PUBKEYHASH, script[3:23]
    if multisig_keys(script) is not None:
        return ScriptType.MULTISIG, script
    return ScriptType.NONSTANDARD, b""
