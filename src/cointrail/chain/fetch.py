"""Raw blocks from a node, fetched ahead of the ingest on a background thread.

Light by design (the standard library and the RPC client only): `sync` starts fetching from a
node for a store that has no blocks yet before it has imported and opened the store, so the
node serves the first blocks while the command is still starting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from cointrail.chain.p2p import PeerAddress, PeerClient
from cointrail.chain.rpc import RestUnavailableError, RpcClient
from cointrail.chain.spec import ChainSpec
from cointrail.errors import ExternalServiceError, InputError

#: REST requests in flight at once while a batch of blocks is fetched: the node serves each
#: on its own HTTP worker thread (Core's -rpcthreads, 4 by default). On the 250k-transaction
#: bench chain (2 cores) sync took 2.27 s with 1, 1.83-2.12 s with 2 and 1.70 s with 4.
REST_CONNECTIONS = 4

#: Raw blocks per JSON-RPC batch without REST: the first are decoded while the node
#: serves the next batch.
RPC_BLOCKS_PER_BATCH = 10


def chunks(start: int, stop: int, size: int) -> Iterator[range]:
    """`start`..`stop` (exclusive) in ranges of at most `size`."""
    for first in range(start, stop, size):
        yield range(first, min(first + size, stop))


def rest_available(rpc: RpcClient) -> bool:
    """Whether the node serves raw blocks over REST (probed with its genesis block)."""
    try:
        rpc.rest_block(str(rpc.call("getblockhash", 0)))
    except RestUnavailableError:
        return False
    return True


class BlockFetcher:
    """Fetches raw blocks `first`..`last` on a background thread, up to two batches ahead,
    so the node's work and the network overlap with decoding and ingest. Blocks are handed
    over one by one as they arrive, in chain order: decoding starts with the first block, not
    once a whole batch is in.

    Block hashes come from one JSON-RPC batch per `batch_blocks`; the blocks themselves from
    the node's P2P port when `peer` is given (`cointrail.chain.p2p`: one ``getdata`` per
    batch, and the node sends each block straight from its block files: the least work for
    it), else the REST interface when `rest` (binary, one keep-alive request each,
    REST_CONNECTIONS at a time: the node's cost per block dominates), otherwise
    ``getblock H 0`` batches (hex in JSON, decoded to bytes here, off the ingesting thread).
    A failure (the node gone, a block missing because the chain moved) is raised where it
    falls in the order."""

    _DONE = object()

    def __init__(self, rpc: RpcClient, first: int, last: int, batch_blocks: int,
                 rest: bool = False, *, peer: PeerAddress | None = None,
                 spec: ChainSpec | None = None) -> None:
        if peer is not None and spec is None:
            raise ValueError("fetching over P2P needs the chain's spec (its message start)")
        self.first, self.last = first, last
        self.rest, self.peer = rest and peer is None, peer
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2 * batch_blocks)
        self.chain_moved = False
        self._stop = threading.Event()
        self._client: PeerClient | None = None
        self._thread = threading.Thread(
            target=self._run, args=(rpc, batch_blocks, spec),
            name="cointrail-fetch", daemon=True,
        )
        self._thread.start()

    @property
    def source(self) -> str:
        """Where the blocks come from: "p2p", "rest" or "rpc" (JSON-RPC)."""
        return "p2p" if self.peer is not None else "rest" if self.rest else "rpc"

    def _run(self, rpc: RpcClient, batch_blocks: int, spec: ChainSpec | None) -> None:
        pool = (ThreadPoolExecutor(REST_CONNECTIONS, thread_name_prefix="cointrail-fetch")
                if self.rest else None)
        try:
            if self.peer is not None and spec is not None:
                self._client = PeerClient(self.peer, spec, timeout=rpc.timeout)
                if self._stop.is_set():  # closed while connecting
                    return
            for heights in chunks(self.first, self.last + 1, batch_blocks):
                for raw in self._fetch(rpc, heights, pool, self._client):
                    if self._stop.is_set():
                        return
                    self._put(raw)
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            if not self._stop.is_set():
                self._put(exc)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if self._client is not None:
                self._client.close()

    @staticmethod
    def _fetch(rpc: RpcClient, heights: range, rest: ThreadPoolExecutor | None,
               peer: PeerClient | None) -> Iterator[bytes]:
        """The raw blocks at `heights`, in order as each arrives: from the `peer` (one
        request for all), over REST on the `rest` pool (all requested at once), else in
        JSON-RPC batches of RPC_BLOCKS_PER_BATCH."""
        hashes = rpc.batch([("getblockhash", [h]) for h in heights])
        if peer is not None:
            return peer.blocks([bytes.fromhex(h)[::-1] for h in hashes])
        if rest is not None:
            return rest.map(rpc.rest_block, (str(h) for h in hashes))
        return (bytes.fromhex(raw)
                for part in chunks(0, len(hashes), RPC_BLOCKS_PER_BATCH)
                for raw in rpc.batch([("getblock", [h, 0]) for h in hashes[part.start:part.stop]]))

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(bytes, item)

    def close(self) -> None:
        self._stop.set()
        client = self._client
        if client is not None:
            client.close()  # ends a read that waits for the node
        elif self.peer is not None:
            # still connecting to the node's P2P port (or failed to): nothing to wait for;
            # the thread stops once connected, or at its timeout, and drops the connection
            return
        self._thread.join(timeout=30)


def refuse_two_sources(peer: PeerAddress | str | None, rest: bool | None) -> None:
    """InputError when both the P2P port and REST are asked for (``--p2p`` and ``--rest``)."""
    if peer is not None and rest:
        raise InputError("blocks come either over P2P or over REST: pass --p2p or --rest, "
                         "not both")


def fetch_from_genesis(rpc: RpcClient, batch_blocks: int, rest: bool | None = None, *,
                       peer: PeerAddress | None = None,
                       spec: ChainSpec | None = None) -> BlockFetcher | None:
    """For a store that holds no blocks yet: start fetching the node's chain from its
    genesis block to its tip now, while the store is opened, for `sync_rpc(..., ahead=)`.
    `rest`, `peer` as `sync_rpc`'s (`spec`: the store's chain). None when the node cannot be
    asked (or has no REST while `rest` requires it): the sync itself then reports what is
    wrong. Nothing is stored from these blocks before the sync has checked the node's chain
    and network against the store's."""
    try:
        use_rest = peer is None and rest is not False and rest_available(rpc)
        if rest and not use_rest:
            return None
        tip = int(rpc.call("getblockcount"))
    except (ExternalServiceError, TypeError, ValueError):
        return None
    return BlockFetcher(rpc, 0, tip, batch_blocks, use_rest, peer=peer, spec=spec)


__all__ = ["REST_CONNECTIONS", "RPC_BLOCKS_PER_BATCH", "BlockFetcher", "chunks",
           "fetch_from_genesis", "refuse_two_sources", "rest_available"]
