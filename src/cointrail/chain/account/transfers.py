"""Value movements decoded from JSON-RPC blocks, receipts, logs and traces.

One record type (`Transfer`) for every way value moves on an account chain (`TransferKind`):

- **native**: a transaction's own ``value`` from ``from`` to ``to`` (or to the created
  contract). A failed transaction (receipt ``status`` 0) moves no value; it still pays its fee.
  Pre-Byzantium receipts (before block 4,370,000) carry no status: their value counts as moved
  unless a trace shows the top-level call failed.
- **fee**: gas paid by the sender: ``gasUsed × baseFee`` burned (to ``None``, EIP-1559) and the
  rest to the block's miner (all of it before London), plus EIP-4844 blob gas (burned).
- **token**: an ERC-20 ``Transfer(address,address,uint256)`` log (topic0 below) with two indexed
  addresses and the amount in ``data``; the early form with nothing indexed (all three in
  ``data``) is read too. ERC-721 uses the same topic0 with a third indexed topic (the token
  id): not a fungible amount, so skipped. Logs of failed transactions do not exist.
- **internal**: value moved by a call inside a transaction, from Parity ``trace_block`` or geth
  ``debug_traceBlockByNumber`` with ``callTracer``. Only ``call`` and ``create``/``create2``
  move value (``delegatecall``/``staticcall`` carry none of their own; ``callcode`` pays the
  caller itself). A call that errored — and everything below it — moves nothing. The top
  level call is the transaction itself (already **native**) and is not repeated.
  ``suicide``/``SELFDESTRUCT`` sends the contract's balance to the beneficiary.
- **reward**: Parity ``reward`` traces (block and uncle rewards, before the merge), and
  **withdrawal**: EIP-4895 validator withdrawals (gwei in the block, wei here). Both have no
  transaction.

Amounts are exact integers (wei or token units). Addresses are lower-case ``0x`` hex.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from cointrail.chain.account.address import address_from_word, keccak256
from cointrail.chain.account.hashes import hex_bytes, hex_int
from cointrail.errors import DecodeError

#: keccak-256("Transfer(address,address,uint256)"), the ERC-20 (and ERC-721) Transfer event.
TRANSFER_TOPIC = keccak256(b"Transfer(address,address,uint256)")
GWEI = 10**9


class TransferKind(IntEnum):
    """``transfers.kind`` codes (stable: never renumber)."""

    NATIVE = 0
    INTERNAL = 1
    TOKEN = 2
    FEE = 3
    REWARD = 4
    WITHDRAWAL = 5


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of `amount` of an asset (`token` None: the native coin)."""

    kind: TransferKind
    tx_hash: bytes | None  # None for block-level credits (reward, withdrawal)
    tx_index: int | None
    from_address: str | None  # None: created (reward, withdrawal)
    to_address: str | None  # None: burned (base fee)
    amount: int
    token: str | None = None
    log_index: int | None = None
    trace_address: str | None = None  # e.g. "0,2": the call's path inside the transaction


@dataclass(frozen=True, slots=True)
class AccountTx:
    """A transaction as the store keeps it (``account_txs``): who, what, and whether it ran."""

    tx_hash: bytes
    tx_index: int
    from_address: str
    to_address: str | None  # None: contract creation
    created: str | None  # the created contract's address
    value: int
    nonce: int
    gas: int
    gas_used: int
    gas_price: int  # effective gas price, wei
    status: int  # 1 success, 0 failed, -1 unknown (pre-Byzantium)
    tx_type: int
    selector: bytes  # first 4 bytes of the input (the called function), empty for plain sends


def _addr(value: str | None) -> str | None:
    return None if value is None else value.lower()


def _status(receipt: Mapping[str, Any]) -> int:
    status = receipt.get("status")
    return -1 if status is None else hex_int(status)


def decode_account_tx(tx: Mapping[str, Any], receipt: Mapping[str, Any]) -> AccountTx:
    """The stored view of one transaction, from the block's tx object and its receipt."""
    if receipt.get("transactionHash", tx["hash"]).lower() != tx["hash"].lower():
        raise DecodeError(f"receipt {receipt.get('transactionHash')} is not for tx {tx['hash']}",
                          0)
    gas_price = receipt.get("effectiveGasPrice", tx.get("gasPrice"))
    return AccountTx(
        hex_bytes(tx["hash"]), hex_int(tx["transactionIndex"]), tx["from"].lower(),
        _addr(tx.get("to")), _addr(receipt.get("contractAddress")), hex_int(tx["value"]),
        hex_int(tx["nonce"]), hex_int(tx["gas"]), hex_int(receipt.get("gasUsed")),
        hex_int(gas_price), _status(receipt), hex_int(tx.get("type")),
        hex_bytes(tx.get("input"))[:4],
    )


def failed_by_traces(traces: Sequence[Mapping[str, Any]],
                     tx_hashes: Sequence[bytes] = ()) -> set[bytes]:
    """Hashes of the transactions whose top-level call errored, from Parity ``trace_block``
    or geth ``callTracer`` results: how a pre-Byzantium failure is known (no receipt status)."""
    failed: set[bytes] = set()
    for index, item in enumerate(traces):
        if "action" in item:  # Parity
            if not item.get("traceAddress") and item.get("error") and item.get(
                    "transactionHash"):
                failed.add(hex_bytes(item["transactionHash"]))
        elif (item.get("result") or {}).get("error"):
            tx = item.get("txHash")
            if tx:
                failed.add(hex_bytes(tx))
            elif index < len(tx_hashes):
                failed.add(tx_hashes[index])
    return failed


def iter_tx_transfers(
    block: Mapping[str, Any], receipts: Sequence[Mapping[str, Any]],
    failed: Collection[bytes] = (),
) -> Iterator[Transfer]:
    """Native value and fee transfers of every transaction of a full block (``…, true``).

    `failed` names transactions known to have failed from their traces (`failed_by_traces`);
    it matters only for pre-Byzantium receipts, which carry no status."""
    txs = block["transactions"]
    if len(txs) != len(receipts):
        raise DecodeError(f"block {block.get('number')} has {len(txs)} transactions but "
                          f"{len(receipts)} receipts", 0)
    miner = _addr(block.get("miner") or block.get("author"))
    base_fee = block.get("baseFeePerGas")
    for tx, receipt in zip(txs, receipts, strict=True):
        t = decode_account_tx(tx, receipt)
        to = t.to_address if t.to_address is not None else t.created
        if t.value and t.status != 0 and not (t.status == -1 and t.tx_hash in failed):
            yield Transfer(TransferKind.NATIVE, t.tx_hash, t.tx_index, t.from_address, to,
                           t.value)
        fee = t.gas_used * t.gas_price
        burned = 0 if base_fee is None else t.gas_used * hex_int(base_fee)
        if burned:
            yield Transfer(TransferKind.FEE, t.tx_hash, t.tx_index, t.from_address, None, burned)
        if fee - burned:
            yield Transfer(TransferKind.FEE, t.tx_hash, t.tx_index, t.from_address, miner,
                           fee - burned)
        blob = hex_int(receipt.get("blobGasUsed")) * hex_int(receipt.get("blobGasPrice"))
        if blob:
            yield Transfer(TransferKind.FEE, t.tx_hash, t.tx_index, t.from_address, None, blob)


def iter_withdrawals(block: Mapping[str, Any]) -> Iterator[Transfer]:
    """EIP-4895 validator withdrawals (amounts are gwei on the wire)."""
    for w in block.get("withdrawals") or ():
        amount = hex_int(w["amount"]) * GWEI
        if amount:
            yield Transfer(TransferKind.WITHDRAWAL, None, None, None, w["address"].lower(),
                           amount, trace_address=f"withdrawal:{hex_int(w['index'])}")


def decode_token_log(log: Mapping[str, Any]) -> Transfer | None:
    """The ERC-20 transfer a log records, or None if it is no ERC-20 ``Transfer``."""
    topics = [hex_bytes(t) for t in log.get("topics") or ()]
    if not topics or topics[0] != TRANSFER_TOPIC or log.get("removed"):
        return None
    data = hex_bytes(log.get("data"))
    if len(topics) == 3 and len(data) == 32:
        sender, receiver, amount = topics[1], topics[2], data
    elif len(topics) == 1 and len(data) == 96:  # early tokens indexed nothing
        sender, receiver, amount = data[:32], data[32:64], data[64:]
    else:
        return None  # ERC-721 (token id indexed) or a malformed event
    tx_hash = log.get("transactionHash") or log.get("txHash")
    return Transfer(
        TransferKind.TOKEN, hex_bytes(tx_hash), hex_int(log.get("transactionIndex")),
        address_from_word(sender), address_from_word(receiver), int.from_bytes(amount, "big"),
        token=log["address"].lower(), log_index=hex_int(log.get("logIndex")),
    )


def iter_token_transfers(receipts: Sequence[Mapping[str, Any]]) -> Iterator[Transfer]:
    """ERC-20 transfers in the logs of the receipts (failed transactions carry no logs)."""
    for receipt in receipts:
        if _status(receipt) == 0:
            continue
        for log in receipt.get("logs") or ():
            found = decode_token_log(log)
            if found is not None:
                yield found


# -- traces ---------------------------------------------------------------------------------

_VALUE_CALLS = frozenset({"call", "create", "create2"})


def _path(address: Sequence[int]) -> str:
    return ",".join(str(i) for i in address)


def iter_parity_traces(traces: Sequence[Mapping[str, Any]]) -> Iterator[Transfer]:
    """Internal transfers and rewards from Parity/OpenEthereum/Erigon ``trace_block``."""
    failed: set[tuple[str, tuple[int, ...]]] = set()
    for trace in traces:
        tx = trace.get("transactionHash")
        address = tuple(int(i) for i in trace.get("traceAddress") or ())
        kind = trace.get("type")
        action = trace.get("action") or {}
        if kind == "reward":
            amount = hex_int(action.get("value"))
            if amount:
                yield Transfer(TransferKind.REWARD, None, None, None,
                               action["author"].lower(), amount,
                               trace_address=f"reward:{action.get('rewardType')}")
            continue
        key = str(tx)
        if trace.get("error") or any((key, address[:n]) in failed
                                     for n in range(len(address))):
            failed.add((key, address))
            continue
        if not address:  # the transaction itself: its value is the native transfer
            continue
        tx_hash, index = hex_bytes(tx), trace.get("transactionPosition")
        if kind == "call" and action.get("callType") == "call":
            source, target, amount = action["from"], action["to"], hex_int(action["value"])
        elif kind == "create":
            result = trace.get("result") or {}
            source, target = action["from"], result.get("address")
            amount = hex_int(action["value"])
        elif kind == "suicide":
            source, target = action["address"], action["refundAddress"]
            amount = hex_int(action["balance"])
        else:
            continue
        if amount and target is not None:
            yield Transfer(TransferKind.INTERNAL, tx_hash, index, source.lower(),
                           target.lower(), amount, trace_address=_path(address))


def iter_geth_traces(
    results: Sequence[Mapping[str, Any]], tx_hashes: Sequence[bytes] | None = None
) -> Iterator[Transfer]:
    """Internal transfers from geth ``debug_traceBlockByNumber`` with ``callTracer``.

    Results come in transaction order; `tx_hashes` names them where the node's answer does
    not (older geth gives only ``result``). A ``SELFDESTRUCT`` frame without ``to``/``value``
    (geth before 1.11) does not say where the balance went and yields nothing: take
    ``trace_block`` for such blocks.
    """
    for index, item in enumerate(results):
        frame = item.get("result", item)
        tx = item.get("txHash")
        tx_hash = hex_bytes(tx) if tx else (tx_hashes[index] if tx_hashes else b"")
        if frame.get("error"):
            continue  # the whole transaction failed: nothing below it moved
        for n, child in enumerate(frame.get("calls") or ()):
            yield from _geth_frame(child, (n,), frame.get("to"), tx_hash, index)


def _geth_frame(frame: Mapping[str, Any], address: tuple[int, ...], parent_to: str | None,
                tx_hash: bytes, index: int) -> Iterator[Transfer]:
    if frame.get("error"):
        return
    kind = str(frame.get("type", "")).lower()
    amount = hex_int(frame.get("value"))
    source, target = frame.get("from", parent_to), frame.get("to")
    moves = kind in _VALUE_CALLS or kind == "selfdestruct"
    if moves and amount and source is not None and target is not None:
        yield Transfer(TransferKind.INTERNAL, tx_hash, index, source.lower(), target.lower(),
                       amount, trace_address=_path(address))
    for n, child in enumerate(frame.get("calls") or ()):
        yield from _geth_frame(child, (*address, n), target, tx_hash, index)
