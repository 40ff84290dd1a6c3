"""An Ethereum JSON-RPC node as the ingest needs it: chain id, full blocks with receipts and
traces (batched), token metadata, balances.

Which trace API the node offers is detected once (`detect_tracer`): Parity-style
``trace_block`` (Erigon, Nethermind, reth, anvil), geth's ``debug_traceBlockByHash`` with the
``callTracer``, or neither — then internal transfers are not ingested and the sync says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cointrail.chain.account.hashes import hex_bytes, hex_int
from cointrail.chain.account.tokens import DECIMALS, SYMBOL, decode_decimals, decode_text
from cointrail.chain.rpc import NodeRpcError, RpcClient
from cointrail.errors import ExternalServiceError

#: What a node answers for a method it does not offer (JSON-RPC 2.0 "Method not found").
METHOD_NOT_FOUND = -32601


class Tracer(StrEnum):
    PARITY = "trace_block"
    GETH = "debug_traceBlockByHash"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class FullBlock:
    """A block with its transactions' receipts and (if the node traces) its traces."""

    block: Mapping[str, Any]
    receipts: Sequence[Mapping[str, Any]]
    traces: Sequence[Mapping[str, Any]] | None

    @property
    def height(self) -> int:
        return hex_int(self.block["number"])

    @property
    def hash(self) -> bytes:
        return hex_bytes(self.block["hash"])

    @property
    def parent_hash(self) -> bytes:
        return hex_bytes(self.block["parentHash"])


class ChainMovedError(ExternalServiceError):
    """The node's chain changed between two calls (a reorg mid-fetch): fetch again."""


class EthNode:
    """Batched reads from one Ethereum node."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc
        self._block_receipts = True  # eth_getBlockReceipts, until the node says otherwise

    @property
    def url(self) -> str:
        return self.rpc.url

    def chain_id(self) -> int:
        return hex_int(self.rpc.call("eth_chainId"))

    def block_number(self) -> int:
        return hex_int(self.rpc.call("eth_blockNumber"))

    def block_hashes(self, heights: Sequence[int]) -> list[bytes | None]:
        blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(h), False]) for h in heights])
        return [None if b is None else hex_bytes(b["hash"]) for b in blocks]

    def detect_tracer(self, height: int) -> tuple[Tracer, str]:
        """The trace API this node offers, and a sentence saying what was found."""
        block = self.rpc.call("eth_getBlockByNumber", hex(height), False)
        failures = []
        for tracer in (Tracer.PARITY, Tracer.GETH):
            try:
                self._trace_calls([block], tracer)
            except NodeRpcError as exc:
                failures.append(f"{tracer.value}: {exc}")
                continue
            return tracer, f"internal transfers from {tracer.value}"
        return Tracer.NONE, (
            "the node offers neither trace_block nor debug_traceBlockByHash ("
            + "; ".join(failures) + "): internal (contract) transfers are not ingested; "
            "enable the trace or debug API on the node and sync a fresh store to get them"
        )

    def _trace_calls(self, blocks: Sequence[Mapping[str, Any]], tracer: Tracer) -> list[Any]:
        if tracer is Tracer.PARITY:
            return self.rpc.batch([("trace_block", [b["number"]]) for b in blocks])
        return self.rpc.batch([("debug_traceBlockByHash",
                                [b["hash"], {"tracer": "callTracer"}]) for b in blocks])

    def full_blocks(self, heights: Sequence[int], tracer: Tracer) -> list[FullBlock]:
        """Blocks `heights` with receipts and traces, each checked to belong to its block.

        Raises ChainMovedError when the node's answers do not fit together (a reorg between
        calls), or a block is missing (the chain got shorter)."""
        blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(h), True]) for h in heights])
        if any(b is None for b in blocks):
            raise ChainMovedError(f"the node at {self.url} no longer has a block in "
                             f"{heights[0]}..{heights[-1]}")
        receipts = self._receipts(blocks)
        traces: list[Any] = [None] * len(blocks)
        if tracer is not Tracer.NONE:
            traces = self._trace_calls(blocks, tracer)
        out = []
        for block, rs, ts in zip(blocks, receipts, traces, strict=True):
            want = block["hash"].lower()
            if any(str(r.get("blockHash", want)).lower() != want for r in rs):
                raise ChainMovedError(f"receipts of block {hex_int(block['number'])} belong to "
                                 "another block: the chain moved")
            if tracer is Tracer.PARITY and any(
                    str(t.get("blockHash", want)).lower() != want for t in ts or ()):
                raise ChainMovedError(f"traces of block {hex_int(block['number'])} belong to "
                                 "another block: the chain moved")
            out.append(FullBlock(block, rs, ts))
        return out

    def _receipts(self, blocks: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        if self._block_receipts:
            try:
                got = self.rpc.batch([("eth_getBlockReceipts", [b["hash"]]) for b in blocks])
            except NodeRpcError as exc:
                if exc.code not in (METHOD_NOT_FOUND, -32602, -32600):
                    raise
                self._block_receipts = False
            else:
                if any(r is None for r in got):
                    raise ChainMovedError(f"the node at {self.url} lost a block's receipts: "
                                     "the chain moved")
                return [list(r) for r in got]
        calls = [("eth_getTransactionReceipt", [tx["hash"]])
                 for b in blocks for tx in b["transactions"]]
        flat = iter(self.rpc.batch(calls))
        out = [[next(flat) for _ in b["transactions"]] for b in blocks]
        if any(r is None for rs in out for r in rs):
            raise ChainMovedError(f"the node at {self.url} lost a receipt: the chain moved")
        return out

    def token_metadata(self, tokens: Sequence[str], height: int) -> dict[str, tuple[
            str | None, int | None]]:
        """(symbol, decimals) of each token contract, read at `height`; None where the
        contract does not answer (not every token implements the optional methods)."""
        out: dict[str, tuple[str | None, int | None]] = {}
        for token in tokens:
            answers: list[bytes | None] = []
            for data in (SYMBOL, DECIMALS):
                try:
                    raw = self.rpc.call("eth_call", {"to": token, "data": data}, hex(height))
                except NodeRpcError:
                    answers.append(None)  # reverted: the method is absent
                else:
                    answers.append(hex_bytes(raw))
            symbol = None if answers[0] is None else decode_text(answers[0])
            decimals = None if answers[1] is None else decode_decimals(answers[1])
            out[token] = (symbol, decimals)
        return out
