"""Block and transaction hashes recomputed from JSON-RPC objects (keccak-256 of RLP).

The node's JSON is checked, not trusted: a block's hash is keccak-256 of the RLP list of its
header fields (Yellow Paper §4.3, extended by EIP-1559 ``baseFeePerGas``, EIP-4895
``withdrawalsRoot``, EIP-4844 ``blobGasUsed``/``excessBlobGas``, EIP-4788
``parentBeaconBlockRoot`` and EIP-7685 ``requestsHash``, each present from its fork on).
A transaction's hash is keccak-256 of its RLP (legacy) or of ``type || RLP(payload)``
(EIP-2718 typed transactions: EIP-2930 type 1, EIP-1559 type 2, EIP-4844 type 3,
EIP-7702 type 4). The field lists are hand-written here because they *are* the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rlp  # type: ignore[import-untyped]

from cointrail.chain.account.address import keccak256
from cointrail.errors import DecodeError

_HEADER_FIELDS = (
    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
    "logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData",
    "mixHash", "nonce",
)
#: Optional trailing header fields in fork order; a header carries a prefix of these.
_HEADER_OPTIONAL = (
    "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
    "parentBeaconBlockRoot", "requestsHash",
)
_INT_FIELDS = frozenset({
    "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas",
    "blobGasUsed", "excessBlobGas", "nonce_tx", "gasPrice", "gas", "value", "v", "r", "s",
    "chainId", "maxPriorityFeePerGas", "maxFeePerGas", "maxFeePerBlobGas", "yParity",
})


def hex_bytes(value: str | None) -> bytes:
    """``0x…`` hex as bytes (``None`` and ``0x`` are empty)."""
    if value is None:
        return b""
    text = value[2:] if value[:2] in ("0x", "0X") else value
    if len(text) % 2:
        text = "0" + text
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise DecodeError(f"{value[:40]!r} is not hex", 0) from exc


def hex_int(value: str | int | None) -> int:
    """A JSON-RPC quantity (``0x…``) or an already decoded integer; None is 0."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        return int(value, 16) if value[:2] in ("0x", "0X") else int(value)
    except ValueError as exc:
        raise DecodeError(f"{value[:40]!r} is not a quantity", 0) from exc


def _field(obj: Mapping[str, Any], name: str) -> int | bytes:
    value = obj[name]
    if name in _INT_FIELDS:
        return hex_int(value)
    return hex_bytes(value)


def block_hash(block: Mapping[str, Any]) -> bytes:
    """keccak-256 of the RLP header of an ``eth_getBlockByNumber`` object."""
    try:
        fields: list[int | bytes] = [_field(block, f) for f in _HEADER_FIELDS]
    except KeyError as exc:
        raise DecodeError(f"block header lacks field {exc.args[0]}", 0) from exc
    fields[-1] = hex_bytes(block["nonce"]).rjust(8, b"\0")  # the PoW nonce is 8 fixed bytes
    for name in _HEADER_OPTIONAL:
        if block.get(name) is None:
            break
        fields.append(_field(block, name))
    return keccak256(rlp.encode(fields))


def _access_list(items: list[Mapping[str, Any]] | None) -> list[list[Any]]:
    return [[hex_bytes(i["address"]), [hex_bytes(k) for k in i.get("storageKeys", [])]]
            for i in items or []]


def _authorizations(items: list[Mapping[str, Any]] | None) -> list[list[Any]]:
    return [[hex_int(a["chainId"]), hex_bytes(a["address"]), hex_int(a["nonce"]),
             hex_int(a.get("yParity", a.get("v"))), hex_int(a["r"]), hex_int(a["s"])]
            for a in items or []]


def encode_transaction(tx: Mapping[str, Any]) -> bytes:
    """The signed transaction's network encoding, rebuilt from its JSON-RPC fields."""
    kind = hex_int(tx.get("type"))
    to = hex_bytes(tx.get("to"))
    common = [hex_int(tx["nonce"])]
    parity = hex_int(tx.get("yParity", tx.get("v")))
    sig = [parity, hex_int(tx["r"]), hex_int(tx["s"])]
    body = [hex_int(tx["gas"]), to, hex_int(tx["value"]), hex_bytes(tx["input"])]
    if kind == 0:
        legacy = [*common, hex_int(tx["gasPrice"]), *body, hex_int(tx["v"]),
                  hex_int(tx["r"]), hex_int(tx["s"])]
        return bytes(rlp.encode(legacy))
    chain_id = hex_int(tx["chainId"])
    access = _access_list(tx.get("accessList"))
    if kind == 1:
        payload = [chain_id, *common, hex_int(tx["gasPrice"]), *body, access, *sig]
    elif kind in (2, 3, 4):
        fees = [hex_int(tx["maxPriorityFeePerGas"]), hex_int(tx["maxFeePerGas"])]
        payload = [chain_id, *common, *fees, *body, access]
        if kind == 3:
            payload += [hex_int(tx["maxFeePerBlobGas"]),
                        [hex_bytes(h) for h in tx.get("blobVersionedHashes", [])]]
        elif kind == 4:
            payload.append(_authorizations(tx.get("authorizationList")))
        payload += sig
    else:
        raise DecodeError(f"transaction type {kind} is not known to cointrail", 0)
    return bytes([kind]) + bytes(rlp.encode(payload))


def transaction_hash(tx: Mapping[str, Any]) -> bytes:
    """keccak-256 of the transaction's encoding (its hash on the network)."""
    return keccak256(encode_transaction(tx))
