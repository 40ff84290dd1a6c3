"""Decoded blocks and transactions as Bitcoin Core prints them.

`tx_to_core_json` gives the object of ``decoderawtransaction`` (``include_hex=False``) or one
transaction of ``getblock <hash> 2``; `block_to_core_json` gives ``getblock <hash> 2`` without
the fields that need the node's chain state (confirmations, mediantime, chainwork,
nextblockhash, and the per-transaction fee). The rules follow Bitcoin Core 28+
(``core_write.cpp``, ``script.cpp``, ``descriptor.cpp``, ``interpreter.cpp``):

- ``asm`` is Core's ``ScriptToAsmStr``; input scripts get its sighash decoding.
- ``desc`` is what ``InferDescriptor`` prints without wallet data: ``pk(KEY)``,
  ``multi(k,KEY,...)``, ``rawtr(XONLY)``, ``addr(ADDRESS)`` or ``raw(HEX)``, with checksum.
- ``address`` only where Core gives one (never for pubkey, multisig, nulldata, nonstandard).

cointrail adds ``value_sat`` (integer amount) to every output and, for ``pubkey`` outputs,
``cointrail_address`` in ``scriptPubKey``: the p2pkh address the output is attributed to
(docs/adr/0002-address-attribution.md). Amounts are `Decimal` with the chain's decimals;
`dumps` writes them as JSON numbers exactly as Core does (``50.00000000``).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from cointrail.chain.spec import ChainSpec
from cointrail.chain.utxo.block import Block, bits_to_target
from cointrail.chain.utxo.script import ScriptType, multisig_keys
from cointrail.chain.utxo.tx import Transaction, TxIn, TxOut, encode_tx
from cointrail.errors import InputError

CoreJSON = dict[str, Any]

# ------------------------------------------------------------------------------------ opcodes

_OP_PUSHDATA4 = 0x4E
_OP_RETURN = 0x6A
_MAX_SCRIPT_SIZE = 10_000

# 0x61 .. 0xba in opcode order, named as Core's GetOpName names them (after "OP_")
_NAMED_OPS = (
    "NOP", "VER", "IF", "NOTIF", "VERIF", "VERNOTIF", "ELSE", "ENDIF", "VERIFY", "RETURN",
    "TOALTSTACK", "FROMALTSTACK", "2DROP", "2DUP", "3DUP", "2OVER", "2ROT", "2SWAP", "IFDUP",
    "DEPTH", "DROP", "DUP", "NIP", "OVER", "PICK", "ROLL", "ROT", "SWAP", "TUCK", "CAT", "SUBSTR",
    "LEFT", "RIGHT", "SIZE", "INVERT", "AND", "OR", "XOR", "EQUAL", "EQUALVERIFY", "RESERVED1",
    "RESERVED2", "1ADD", "1SUB", "2MUL", "2DIV", "NEGATE", "ABS", "NOT", "0NOTEQUAL", "ADD", "SUB",
    "MUL", "DIV", "MOD", "LSHIFT", "RSHIFT", "BOOLAND", "BOOLOR", "NUMEQUAL", "NUMEQUALVERIFY",
    "NUMNOTEQUAL", "LESSTHAN", "GREATERTHAN", "LESSTHANOREQUAL", "GREATERTHANOREQUAL", "MIN",
    "MAX", "WITHIN", "RIPEMD160", "SHA1", "SHA256", "HASH160", "HASH256", "CODESEPARATOR",
    "CHECKSIG", "CHECKSIGVERIFY", "CHECKMULTISIG", "CHECKMULTISIGVERIFY", "NOP1",
    "CHECKLOCKTIMEVERIFY", "CHECKSEQUENCEVERIFY", "NOP4", "NOP5", "NOP6", "NOP7", "NOP8", "NOP9",
    "NOP10", "CHECKSIGADD",
)


def _op_names() -> dict[int, str]:
    names = {0x00: "0", 0x4C: "OP_PUSHDATA1", 0x4D: "OP_PUSHDATA2", 0x4E: "OP_PUSHDATA4"}
    names |= {0x4F: "-1", 0x50: "OP_RESERVED", 0xFF: "OP_INVALIDOPCODE"}
    names |= {0x50 + n: str(n) for n in range(1, 17)}
    names |= {0x61 + i: f"OP_{name}" for i, name in enumerate(_NAMED_OPS)}
    return names


OP_NAMES: dict[int, str] = _op_names()


def op_name(opcode: int) -> str:
    """Core's ``GetOpName``: ``OP_UNKNOWN`` for opcodes without a name."""
    return OP_NAMES.get(opcode, "OP_UNKNOWN")


# ------------------------------------------------------------------------ asm and sighashes

SIGHASH_NAMES: dict[int, str] = {
    0x01: "ALL",
    0x81: "ALL|ANYONECANPAY",
    0x02: "NONE",
    0x82: "NONE|ANYONECANPAY",
    0x03: "SINGLE",
    0x83: "SINGLE|ANYONECANPAY",
}


def is_valid_signature_encoding(sig: bytes) -> bool:
    """Core's ``IsValidSignatureEncoding``: strict DER (BIP 66) plus one hashtype byte."""
    size = len(sig)
    if size < 9 or size > 73 or sig[0] != 0x30 or sig[1] != size - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= size:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != size:
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def _sighash_suffix(data: bytes) -> str | None:
    """``[ALL]`` etc. when `data` passes Core's STRICTENC signature checks, else None."""
    if not is_valid_signature_encoding(data):
        return None
    hashtype = data[-1]
    if not 0x01 <= hashtype & ~0x80 <= 0x03:  # IsDefinedHashtypeSignature
        return None
    name = SIGHASH_NAMES.get(hashtype)
    return None if name is None else f"[{name}]"


def _script_num(data: bytes) -> int:
    """``CScriptNum(data, false).getint()`` for a push of at most 4 bytes."""
    if not data:
        return 0
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        return -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def script_to_asm(script: bytes, attempt_sighash_decode: bool = False) -> str:
    """Core's ``ScriptToAsmStr``; ``attempt_sighash_decode`` is True for input scripts.

    Pushes of up to 4 bytes print as script numbers, longer ones as hex (a signature with a
    defined hashtype as DER hex + ``[ALL]`` ...); a push running past the end as ``[error]``.
    """
    decode = attempt_sighash_decode and not (
        (script and script[0] == _OP_RETURN) or len(script) > _MAX_SCRIPT_SIZE
    )
    parts: list[str] = []
    i, n = 0, len(script)
    while i < n:
        op = script[i]
        i += 1
        if op > _OP_PUSHDATA4:
            parts.append(op_name(op))
            continue
        width = {0x4C: 1, 0x4D: 2, 0x4E: 4}.get(op, 0)
        if n - i < width:
            parts.append("[error]")
            break
        size = int.from_bytes(script[i : i + width], "little") if width else op
        i += width
        if n - i < size:
            parts.append("[error]")
            break
        data = script[i : i + size]
        i += size
        if size <= 4:
            parts.append(str(_script_num(data)))
            continue
        suffix = _sighash_suffix(data) if decode else None
        parts.append(data.hex() if suffix is None else data[:-1].hex() + suffix)
    return " ".join(parts)


# -------------------------------------------------------------------------------- descriptors

INPUT_CHARSET = (
    "0123456789()[],'/*abcdefgh@:$%{}"
    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
    "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
)
CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)


def _polymod(c: int, val: int) -> int:
    top = c >> 35
    c = ((c & 0x7FFFFFFFF) << 5) ^ val
    for i, gen in enumerate(_GENERATOR):
        if top >> i & 1:
            c ^= gen
    return c


def descriptor_checksum(descriptor: str) -> str:
    """The 8-character checksum of a descriptor (Core's ``DescriptorChecksum``)."""
    c, cls, count = 1, 0, 0
    for pos, ch in enumerate(descriptor):
        index = INPUT_CHARSET.find(ch)
        if index < 0:
            raise InputError(
                f"character {ch!r} at position {pos} is not allowed in a descriptor"
            )
        c = _polymod(c, index & 31)
        cls = cls * 3 + (index >> 5)
        count += 1
        if count == 3:
            c, cls, count = _polymod(c, cls), 0, 0
    if count:
        c = _polymod(c, cls)
    for _ in range(8):
        c = _polymod(c, 0)
    c ^= 1
    return "".join(CHECKSUM_CHARSET[(c >> (5 * (7 - j))) & 31] for j in range(8))


def add_checksum(descriptor: str) -> str:
    """``descriptor#checksum``."""
    return f"{descriptor}#{descriptor_checksum(descriptor)}"


_SECP256K1_P = 2**256 - 2**32 - 977


def xonly_pubkey_valid(key: bytes) -> bool:
    """True if `key` is the x coordinate of a secp256k1 point (``XOnlyPubKey::IsFullyValid``)."""
    x = int.from_bytes(key, "big")
    if len(key) != 32 or x >= _SECP256K1_P:
        return False
    y2 = (pow(x, 3, _SECP256K1_P) + 7) % _SECP256K1_P
    return pow(y2, (_SECP256K1_P - 1) // 2, _SECP256K1_P) == 1


def _key_non_hybrid(key: bytes) -> bool:
    # CPubKey::IsValidNonHybrid; sizes are already checked by the classifier
    return bool(key) and key[0] in (2, 3, 4)


def core_script_type(out: TxOut, spec: ChainSpec) -> str:
    """The ``scriptPubKey.type`` Core prints (the classifier's name)."""
    return out.script_type.value


_NO_CORE_ADDRESS = frozenset(
    {
        ScriptType.PUBKEY,
        ScriptType.MULTISIG,
        ScriptType.NULLDATA,
        ScriptType.NONSTANDARD,
        ScriptType.WITNESS_MWEB_HOGADDR,
        ScriptType.WITNESS_MWEB_PEGIN,
    }
)


def core_address(out: TxOut, spec: ChainSpec) -> str | None:
    """The ``scriptPubKey.address`` Core prints, or None where it prints none."""
    if out.script_type in _NO_CORE_ADDRESS:
        return None
    return out.address


def infer_descriptor(out: TxOut, spec: ChainSpec) -> str:
    """The descriptor (with checksum) Core's ``InferDescriptor`` gives an output script."""
    script = out.script_pubkey
    kind = out.script_type
    desc: str | None = None
    if kind is ScriptType.PUBKEY:
        key = script[1:-1]
        if _key_non_hybrid(key):
            desc = f"pk({key.hex()})"
    elif kind is ScriptType.MULTISIG:
        found = multisig_keys(script)
        if found is not None and all(_key_non_hybrid(k) for k in found[1]):
            desc = f"multi({found[0]},{','.join(k.hex() for k in found[1])})"
    elif kind is ScriptType.WITNESS_V1_TAPROOT and xonly_pubkey_valid(script[2:]):
        desc = f"rawtr({script[2:].hex()})"
    if desc is None:
        address = core_address(out, spec)
        desc = f"addr({address})" if address is not None else f"raw({script.hex()})"
    return add_checksum(desc)


# -------------------------------------------------------------------------------- amounts


def amount_to_decimal(value: int, decimals: int = 8) -> Decimal:
    """An integer amount in coins with exactly `decimals` places (Core's ``ValueFromAmount``)."""
    unit = 10**decimals
    quotient, remainder = divmod(abs(value), unit)
    sign = "-" if value < 0 else ""
    text = f"{sign}{quotient}.{remainder:0{decimals}d}" if decimals else f"{sign}{quotient}"
    return Decimal(text)


def difficulty(bits: int) -> float:
    """Core's ``GetDifficulty`` (double arithmetic), at the 16 digits its JSON prints."""
    shift = (bits >> 24) & 0xFF
    mantissa = bits & 0x00FFFFFF
    if mantissa == 0:
        return float("inf")
    diff = float(0x0000FFFF) / float(mantissa)
    while shift < 29:
        diff *= 256.0
        shift += 1
    while shift > 29:
        diff /= 256.0
        shift -= 1
    return float(f"{diff:.16g}")


# ------------------------------------------------------------------------------- documents


def _vin_json(txin: TxIn, coinbase: bool) -> CoreJSON:
    entry: CoreJSON
    if coinbase:
        entry = {"coinbase": txin.script_sig.hex()}
    else:
        entry = {
            "txid": txin.prev_txid.rpc_hex,
            "vout": txin.prev_vout,
            "scriptSig": {
                "asm": script_to_asm(txin.script_sig, attempt_sighash_decode=True),
                "hex": txin.script_sig.hex(),
            },
        }
    if txin.witness:
        entry["txinwitness"] = [item.hex() for item in txin.witness]
    entry["sequence"] = txin.sequence
    return entry


def script_pubkey_json(out: TxOut, spec: ChainSpec) -> CoreJSON:
    """Core's ``ScriptToUniv`` for an output script, plus ``cointrail_address`` for p2pk."""
    entry: CoreJSON = {
        "asm": script_to_asm(out.script_pubkey),
        "desc": infer_descriptor(out, spec),
        "hex": out.script_pubkey.hex(),
    }
    address = core_address(out, spec)
    if address is not None:
        entry["address"] = address
    entry["type"] = core_script_type(out, spec)
    if out.script_type is ScriptType.PUBKEY and out.address is not None:
        entry["cointrail_address"] = out.address
    return entry


def _vout_json(out: TxOut, spec: ChainSpec) -> CoreJSON:
    return {
        "value": amount_to_decimal(out.value, spec.decimals),
        "value_sat": out.value,
        "n": out.n,
        "scriptPubKey": script_pubkey_json(out, spec),
    }


def tx_to_core_json(tx: Transaction, spec: ChainSpec, *, include_hex: bool = True) -> CoreJSON:
    """A transaction as Core's ``TxToUniv`` prints it (``decoderawtransaction`` omits hex)."""
    coinbase = tx.is_coinbase
    entry: CoreJSON = {
        "txid": tx.txid.rpc_hex,
        "hash": tx.wtxid.rpc_hex,
        "version": tx.version & 0xFFFFFFFF,  # unsigned since Core 28
        "size": tx.size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.lock_time,
        "vin": [_vin_json(txin, coinbase) for txin in tx.inputs],
        "vout": [_vout_json(out, spec) for out in tx.outputs],
    }
    if include_hex:
        entry["hex"] = encode_tx(tx).hex()
    return entry


def block_to_core_json(block: Block, spec: ChainSpec, height: int | None = None) -> CoreJSON:
    """A block as ``getblock <hash> 2`` prints it, without the chain-state fields.

    ``height`` is included when given; ``previousblockhash`` is omitted for a block whose
    previous hash is all zeros (the genesis block).
    """
    header = block.header
    entry: CoreJSON = {"hash": header.hash.rpc_hex}
    if height is not None:
        entry["height"] = height
    entry |= {
        "version": header.version,
        "versionHex": f"{header.version & 0xFFFFFFFF:08x}",
        "merkleroot": header.merkle_root[::-1].hex(),
        "time": header.time,
        "nonce": header.nonce,
        "bits": f"{header.bits:08x}",
        "target": f"{bits_to_target(header.bits):064x}",
        "difficulty": difficulty(header.bits),
        "nTx": len(block.transactions),
    }
    if any(header.prev_hash):
        entry["previousblockhash"] = header.prev_hash.rpc_hex
    entry |= {
        "strippedsize": block.stripped_size,
        "size": block.size,
        "weight": block.weight,
        "tx": [tx_to_core_json(tx, spec) for tx in block.transactions],
    }
    return entry


# ------------------------------------------------------------------------------------ output


def dumps(document: object, indent: int | None = 2) -> str:
    """JSON text of a Core JSON document: amounts as ``50.00000000``, floats as Core prints.

    ``indent=None`` gives one compact line (for JSON lines).
    """
    parts: list[str] = []
    _write(document, parts, indent, 0)
    return "".join(parts)


def _write(value: object, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, Decimal):
        out.append(format(value, "f"))
    elif isinstance(value, float):
        out.append(f"{value:.16g}" if math.isfinite(value) else "null")
    elif value is None or isinstance(value, bool | int | str):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        sep = ":" if indent is None else ": "
        pairs = [(json.dumps(str(k)) + sep, v) for k, v in value.items()]
        _write_items(pairs, "{}", out, indent, level)
    elif isinstance(value, list | tuple):
        _write_items([("", v) for v in value], "[]", out, indent, level)
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_items(
    items: list[tuple[str, object]], brackets: str, out: list[str], indent: int | None, level: int
) -> None:
    if not items:
        out.append(brackets)
        return
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    outer = "" if indent is None else "\n" + " " * (indent * level)
    out.append(brackets[0])
    for i, (prefix, item) in enumerate(items):
        out.append(("," if i else "") + inner + prefix)
        _write(item, out, indent, level + 1)
    out.append(outer + brackets[1])
