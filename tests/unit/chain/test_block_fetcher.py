"""BlockFetcher: raw blocks from a node, in chain order, handed over as each arrives."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from cointrail.chain.fetch import (
    RPC_BLOCKS_PER_BATCH,
    BlockFetcher,
    fetch_from_genesis,
)
from cointrail.chain.rpc import NodeRpcError, RestUnavailableError
from cointrail.errors import ExternalServiceError


def _hash(height: int) -> str:
    return f"{height:064x}"


def _raw(height: int) -> bytes:
    return b"block-%d" % height


class FakeNode:
    """The RpcClient calls a BlockFetcher makes, answered from a chain of `tip` + 1 blocks.
    `gate`: heights whose REST request waits for the event first (at most 3 s, then noted in
    `gate_timed_out`); `fail_at`: a height whose
    request fails."""

    def __init__(self, tip: int, *, rest: bool = True, fail_at: int | None = None) -> None:
        self.tip, self.rest, self.fail_at = tip, rest, fail_at
        self.gate: dict[int, threading.Event] = {}
        self.gate_timed_out: list[int] = []
        self.getblock_batches: list[int] = []
        self.lock = threading.Lock()

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        out: list[Any] = []
        if calls and calls[0][0] == "getblock":
            with self.lock:
                self.getblock_batches.append(len(calls))
        for method, params in calls:
            if method == "getblockhash":
                height = int(params[0])
                if height > self.tip:
                    raise NodeRpcError(method, -8, "Block height out of range")
                out.append(_hash(height))
            elif method == "getblock":
                out.append(_raw(int(str(params[0]), 16)).hex())
            elif method == "getblockcount":
                out.append(self.tip)
            else:
                raise AssertionError(method)
        return out

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, params)])[0]

    def rest_block(self, block_hash: str) -> bytes:
        if not self.rest:
            raise RestUnavailableError("no REST")
        height = int(block_hash, 16)
        if height in self.gate and not self.gate[height].wait(3):
            self.gate_timed_out.append(height)
        if height == self.fail_at:
            raise ExternalServiceError("the node went away")
        return _raw(height)


@pytest.mark.parametrize("rest", [True, False], ids=["rest", "json-rpc"])
def test_blocks_come_in_chain_order_across_batches(rest: bool) -> None:
    node = FakeNode(57, rest=rest)
    fetcher = BlockFetcher(node, 3, 57, batch_blocks=10, rest=rest)  # type: ignore[arg-type]
    try:
        assert list(fetcher) == [_raw(h) for h in range(3, 58)]
    finally:
        fetcher.close()
    if not rest:  # several small JSON-RPC batches per chunk, not one per chunk
        assert max(node.getblock_batches) == RPC_BLOCKS_PER_BATCH


def test_the_first_block_is_handed_over_before_its_batch_is_complete() -> None:
    """Decoding starts with the first block: the fetcher does not hold a block back until the
    rest of its batch has come (here the batch's last block is only served once the
    consumer has the first)."""
    node = FakeNode(20)
    first_taken = threading.Event()
    node.gate[19] = first_taken
    fetcher = BlockFetcher(node, 0, 20, batch_blocks=20, rest=True)  # type: ignore[arg-type]
    try:
        blocks = iter(fetcher)
        assert next(blocks) == _raw(0)
        assert not first_taken.is_set()
        first_taken.set()
        assert list(blocks) == [_raw(h) for h in range(1, 21)]
        assert node.gate_timed_out == []  # block 19 was still being served when 0 came
    finally:
        first_taken.set()
        fetcher.close()


def test_a_failure_is_raised_after_the_blocks_before_it() -> None:
    node = FakeNode(30, fail_at=14)
    fetcher = BlockFetcher(node, 0, 30, batch_blocks=10, rest=True)  # type: ignore[arg-type]
    got: list[bytes] = []
    try:
        with pytest.raises(ExternalServiceError, match="went away"):
            for raw in fetcher:
                got.append(raw)
    finally:
        fetcher.close()
    assert got == [_raw(h) for h in range(14)]


def test_a_chain_shorter_than_asked_raises_the_nodes_error() -> None:
    """A reorg that shortened the chain: the node's error comes where the chain ends, for
    the sync to look again."""
    node = FakeNode(12)
    fetcher = BlockFetcher(node, 0, 25, batch_blocks=10, rest=True)  # type: ignore[arg-type]
    got: list[bytes] = []
    try:
        with pytest.raises(NodeRpcError) as raised:
            for raw in fetcher:
                got.append(raw)
    finally:
        fetcher.close()
    assert raised.value.code == -8
    assert got == [_raw(h) for h in range(10)]  # the batch 10-19 failed as a whole


def test_closing_early_stops_the_fetching_thread() -> None:
    node = FakeNode(500)
    fetcher = BlockFetcher(node, 0, 500, batch_blocks=5, rest=True)  # type: ignore[arg-type]
    assert next(iter(fetcher)) == _raw(0)
    fetcher.close()
    assert not fetcher._thread.is_alive()


def test_fetch_from_genesis_covers_the_nodes_chain_to_its_tip() -> None:
    node = FakeNode(42)
    fetcher = fetch_from_genesis(node, 16)  # type: ignore[arg-type]
    assert fetcher is not None
    try:
        assert (fetcher.first, fetcher.last, fetcher.rest) == (0, 42, True)
        assert list(fetcher) == [_raw(h) for h in range(43)]
    finally:
        fetcher.close()


def test_fetch_from_genesis_follows_the_rest_choice() -> None:
    no_rest = FakeNode(9, rest=False)
    fetcher = fetch_from_genesis(no_rest, 16)  # type: ignore[arg-type]
    assert fetcher is not None and not fetcher.rest  # falls back to JSON-RPC
    fetcher.close()
    assert fetch_from_genesis(no_rest, 16, rest=True) is None  # the sync says what to do
    with_rest = FakeNode(9)
    fetcher = fetch_from_genesis(with_rest, 16, rest=False)  # type: ignore[arg-type]
    assert fetcher is not None and not fetcher.rest
    fetcher.close()


def test_fetch_from_genesis_leaves_an_unreachable_node_to_the_sync() -> None:
    class Gone(FakeNode):
        def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
            raise ExternalServiceError("cannot reach the node")

    assert fetch_from_genesis(Gone(5), 16) is None  # type: ignore[arg-type]
