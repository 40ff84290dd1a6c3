"""Following a node: from the store's tip to the node's, through reorgs, then keep following.

Blocks travel as raw bytes (the node's P2P port, REST, or ``getblock <hash> 0`` batches) and
are decoded by cointrail's own codec, never taken from the node's JSON. A reorg is found by
comparing the store's block hashes with the node's at the same heights, rolled back to the
fork point, and re-applied.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cointrail.chain.fetch import BlockFetcher, refuse_two_sources, rest_available
from cointrail.chain.p2p import BlockNotServedError, PeerAddress
from cointrail.chain.rpc import NodeRpcError, RestUnavailableError, RpcClient
from cointrail.chain.spec import ChainSpec, check_genesis
from cointrail.chain.utxo.blkfile import ChainIndex, TruncatedFrame, iter_best_chain_blocks
from cointrail.chain.utxo.columnar import BlockColumns, decode_block_columns
from cointrail.chain.utxo.hashes import BlockHash, sha256d
from cointrail.errors import ExternalServiceError, InputError
from cointrail.store.duck import (
    ChainStore,
    StoreInUseError,
    open_when_free,
    sleep_unless_stopped,
)
from cointrail.store.ingest import IngestProgress, ReorgError, UtxoIngestor

K = TypeVar("K")

#: Threads decoding blocks ahead of the ingest (the compiled decoder releases the GIL); 0
#: decodes on the ingesting thread.
DECODE_THREADS = max(1, min(8, (os.cpu_count() or 2) - 1))

#: --follow's longest wait between attempts to reach a node that went away
MAX_RETRY_SECONDS = 60.0
RPC_IN_WARMUP = -28  # the node is starting (loading its block index)
RPC_INVALID_ADDRESS_OR_KEY = -5  # also "Block not found"

NODE_NETWORKS = {"main": "mainnet", "test": "testnet", "testnet4": "testnet", "regtest": "regtest"}


@dataclass
class SyncResult:
    start_height: int
    tip_height: int
    tip_hash: str
    blocks: int
    txs: int
    reorgs: int
    blocks_rolled_back: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    fetch: str = ""  # how raw blocks came: "rest", "rpc" (JSON-RPC), "" (block files)


class MerkleRootError(InputError):
    """A block's transactions do not hash to its header's merkle root."""


def decode_checked(raw: bytes, spec: ChainSpec, height: object = None) -> BlockColumns:
    """A raw block decoded, its transactions checked against its header's merkle root: a
    block whose bytes were altered (or misread) is refused before anything of it is stored."""
    columns = decode_block_columns(raw, spec, wtxids=False)  # the store keeps no wtxids
    if not columns.merkle_root_valid:
        at = f" at height {height}" if isinstance(height, int) else ""
        raise MerkleRootError(
            f"block {BlockHash(sha256d(raw[:80]))}{at}: its transactions do not hash to its "
            "header's merkle root, so its bytes were altered or misread; nothing of it was "
            "stored (the store keeps the blocks before it): check the node's block files "
            "(or the node) and run the same command again"
        )
    return columns


def decode_ahead(blocks: Iterable[tuple[K, bytes]], spec: ChainSpec, *,
                 threads: int | None = None) -> Iterator[tuple[K, BlockColumns]]:
    """Decode raw blocks on `threads` threads (default `DECODE_THREADS`; 0: on the calling
    thread), a few blocks ahead, and yield them in their order with their keys. A block that
    fails to decode raises where it comes in the order; blocks read ahead and not yet taken
    are dropped when the caller stops early."""
    threads = DECODE_THREADS if threads is None else threads
    if threads <= 0:
        for key, raw in blocks:
            yield key, decode_checked(raw, spec, key)
        return
    window = 2 * threads
    pending: deque[tuple[K, Future[BlockColumns]]] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="cointrail-decode") as pool:
        try:
            for key, raw in blocks:
                pending.append((key, pool.submit(decode_checked, raw, spec, key)))
                if len(pending) >= window:
                    first, done = pending.popleft()
                    yield first, done.result()
            while pending:
                first, done = pending.popleft()
                yield first, done.result()
        finally:
            for _, left in pending:
                left.cancel()


#: Node errors that mean the chain changed under a fetch (a reorg shortened it): look again.
_CHAIN_MOVED = {-8, -5}  # RPC_INVALID_PARAMETER "Block height out of range", "Block not found"


def _until_chain_moves(fetcher: BlockFetcher) -> Iterator[bytes]:
    """The fetcher's blocks; a node error saying the chain moved ends them quietly (over
    P2P: a block the node did not send)."""
    try:
        yield from fetcher
    except BlockNotServedError:
        fetcher.chain_moved = True
    except NodeRpcError as exc:
        if exc.code not in _CHAIN_MOVED:
            raise
        fetcher.chain_moved = True


def check_node_network(store: ChainStore, rpc: RpcClient) -> None:
    """Refuse to sync from a node of another chain or network than the store's (its genesis
    block is another's, or it reports another network)."""
    check_genesis(store.spec, str(rpc.call("getblockhash", 0)), f"the node at {rpc.url}")
    info = rpc.call("getblockchaininfo")
    network = NODE_NETWORKS.get(str(info.get("chain")), str(info.get("chain")))
    if network != store.spec.network:
        raise InputError(
            f"the node at {rpc.url} runs {network}, but the store is {store.spec.key}; "
            f"pass --network {network} or use the right node"
        )


class NodeBehindError(ExternalServiceError):
    """The node's best chain is a prefix of the store's: it is behind (still syncing, or
    reindexing), and the store's blocks above its tip are not a fork to roll back."""

    def __init__(self, url: str, node_height: int, height: int) -> None:
        super().__init__(
            f"the node at {url} is at height {node_height}, below the store's tip {height}, on "
            "the same chain: it is behind (still syncing or reindexing?). The store keeps its "
            "blocks; sync again once the node has caught up, or use --follow to wait for it"
        )
        self.node_height = node_height


def node_behind(ingestor: UtxoIngestor, rpc: RpcClient, node_height: int) -> bool:
    """Whether the node is behind the store: its tip (`node_height`) lies below the store's
    on the store's chain, and it is still syncing (initial download, reindex, headers ahead
    of its blocks) or has never seen the store's next block. A node that holds the store's
    next block and does not follow it has rejected it (``invalidateblock``): not behind, the
    store rolls back to the node's chain."""
    if node_height >= ingestor.height or node_height < 0:
        return False
    ours = ingestor.store.block_hash_at(node_height)
    if ours is None or ours[::-1].hex() != str(rpc.call("getblockhash", node_height)):
        return False  # the node's chain forks below its tip: a reorg
    info = rpc.call("getblockchaininfo")
    if info.get("initialblockdownload") or int(info.get("headers", -1)) >= ingestor.height:
        return True
    following = ingestor.store.block_hash_at(node_height + 1)
    if following is None:
        return False
    try:
        rpc.call("getblockheader", following[::-1].hex())
    except NodeRpcError as exc:
        if exc.code != RPC_INVALID_ADDRESS_OR_KEY:
            raise
        return True  # the node never saw the store's next block
    return False


def find_fork(ingestor: UtxoIngestor, rpc: RpcClient, *, window: int = 64,
              node_height: int | None = None) -> int | None:
    """The highest height where store and node agree, or None if the tip is still on the
    node's best chain. `node_height`: the node's height if the caller just asked for it."""
    height = ingestor.height
    if height < 0:
        return None
    if node_height is None:
        node_height = int(rpc.call("getblockcount"))
    top = min(height, node_height)
    while top >= 0:
        heights = list(range(top, max(top - window, -1), -1))
        node_hashes = rpc.batch([("getblockhash", [h]) for h in heights])
        for h, node_hash in zip(heights, node_hashes, strict=True):
            ours = ingestor.store.block_hash_at(h)
            if ours is not None and ours[::-1].hex() == node_hash:
                return None if h == height else h
        top = heights[-1] - 1
    return -1


def _transient(exc: ExternalServiceError) -> bool:
    """A failure --follow waits out: the node unreachable, restarting or warming up."""
    if isinstance(exc, NodeBehindError | RestUnavailableError):
        return False
    return not isinstance(exc, NodeRpcError) or exc.code == RPC_IN_WARMUP


class Releasable(Protocol):
    """An ingestor that can let go of its store while it waits (`UtxoIngestor`,
    `EthIngestor`): `reacquire` takes it back (a no-op when held; True when the indexes
    were rebuilt because another process moved the chain meanwhile)."""

    height: int
    store: ChainStore

    def release(self) -> None: ...

    def reacquire(self) -> bool: ...


def take_store(ingestor: Releasable, *, poll_seconds: float,
               should_stop: Callable[[], bool] | None,
               on_notice: Callable[[str], None] | None) -> bool:
    """Hold the store again after a wait that released it, waiting (with one notice, and the
    writer marker that asks the API server to let go) while another process has it open;
    False when told to stop meanwhile."""
    def waiting(exc: StoreInUseError) -> None:
        if on_notice:
            on_notice(f"{exc.in_use}; new blocks are taken once it is free")

    try:
        rebuilt = open_when_free(ingestor.reacquire, wait_seconds=math.inf,
                                 poll_seconds=poll_seconds, should_stop=should_stop,
                                 on_wait=waiting, writer_of=ingestor.store.path)
    except StoreInUseError:  # told to stop while another process held the store
        return False
    if rebuilt and on_notice:
        on_notice("the store's chain tables changed while it was released (another ingest?); "
                  f"indexes rebuilt at height {ingestor.height}")
    return True


def ride_out(ingestor: Releasable, exc: ExternalServiceError, delay: float, *, retry: bool,
             should_stop: Callable[[], bool] | None,
             on_notice: Callable[[str], None] | None) -> float | None:
    """After a node failure (`exc`, the blocks read committed): without `retry`, raise it
    saying where the store stands and that the same command resumes. With it (--follow and a
    node that went away), say so, release the store, wait `delay`; the next, doubled delay
    (at most MAX_RETRY_SECONDS), or None when told to stop."""
    where = (f"is consistent at height {ingestor.height}" if ingestor.height >= 0
             else "holds no block of this chain yet")
    if not retry:
        raise ExternalServiceError(
            f"{exc}. The store {where}; run the same command again to resume from there"
        ) from exc
    if on_notice:
        on_notice(f"{exc}; the store {where}; trying again in {delay:.0f} s")
    ingestor.release()
    if not sleep_unless_stopped(delay, should_stop):
        return None
    return min(delay * 2, MAX_RETRY_SECONDS)


class _Follow:
    """One `sync_rpc` call: what it carries from one pass over the node's chain to the next,
    and the waits between passes."""

    def __init__(self, ingestor: UtxoIngestor, rpc: RpcClient, *, use_rest: bool,
                 peer: PeerAddress | None, batch_blocks: int, poll_seconds: float,
                 on_block: Callable[[int, int], None] | None,
                 should_stop: Callable[[], bool] | None,
                 on_notice: Callable[[str], None] | None,
                 ahead: BlockFetcher | None = None) -> None:
        self.ingestor, self.rpc = ingestor, rpc
        self.ahead = ahead  # blocks fetched from the genesis block before the store opened
        self.use_rest, self.batch_blocks, self.poll_seconds = use_rest, batch_blocks, poll_seconds
        self.peer = peer
        self.on_block, self.should_stop, self.on_notice = on_block, should_stop, on_notice
        self.reorgs = self.rolled_back = 0
        self.moved, self.moved_at = 0, -2  # passes ended by the chain moving, and where

    def stopping(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def take_store(self) -> bool:
        return take_store(self.ingestor, poll_seconds=self.poll_seconds,
                          should_stop=self.should_stop, on_notice=self.on_notice)

    def wait_for_block(self, seen: str) -> bool:
        """Release the store and wait until the node's best block is no longer `seen`, then
        take the store back. Meanwhile any other command can open the store (DuckDB lets no
        other process in while one holds it for writing). False when told to stop."""
        self.ingestor.release()
        while sleep_unless_stopped(self.poll_seconds, self.should_stop):
            if str(self.rpc.call("getbestblockhash")) != seen:
                return self.take_store()
        return False

    def catch_up(self, node_height: int) -> bool:
        """Roll back to the fork with the node's chain, if any, then ingest up to the node's
        tip. True when the pass must be run again at once (a block that does not extend the
        tip arrived, or the node's chain moved while its blocks were fetched)."""
        ingestor, rpc = self.ingestor, self.rpc
        fork = find_fork(ingestor, rpc, node_height=node_height)
        if fork is not None:
            self.reorgs += 1
            self.rolled_back += ingestor.rollback_to(fork)
        node_height = int(rpc.call("getblockcount"))
        reorged = False
        fetcher, self.ahead = self.ahead, None
        if fetcher is None or fetcher.first != ingestor.height + 1:
            if fetcher is not None:
                fetcher.close()
            fetcher = BlockFetcher(rpc, ingestor.height + 1, node_height, self.batch_blocks,
                                   self.use_rest, peer=self.peer, spec=ingestor.spec)
        raws = ((None, raw) for raw in _until_chain_moves(fetcher))
        try:
            for _, columns in decode_ahead(raws, ingestor.spec):
                try:
                    ingestor.add_block(columns)
                except ReorgError:
                    reorged = True
                    break
                if self.on_block:
                    self.on_block(ingestor.height, node_height)
                if self.stopping():
                    break
        except InputError:  # a block the node served damaged: keep the good ones before it
            ingestor.flush()
            raise
        finally:
            fetcher.close()
        ingestor.flush()
        if fetcher.chain_moved:
            self.moved = self.moved + 1 if ingestor.height == self.moved_at else 1
            self.moved_at = ingestor.height
            if self.moved > 10:
                raise ExternalServiceError(
                    f"the node at {rpc.url} keeps reporting blocks missing at height "
                    f"{ingestor.height + 1}; check the node"
                )
        # blocks fetched ahead end at the tip the node had then: go on to its tip now
        short = ingestor.height == fetcher.last < node_height and not self.stopping()
        return reorged or fetcher.chain_moved or short


def sync_rpc(
    ingestor: UtxoIngestor,
    rpc: RpcClient,
    *,
    follow: bool = False,
    poll_seconds: float = 1.0,
    batch_blocks: int = 100,
    on_block: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    rest: bool | None = None,
    on_notice: Callable[[str], None] | None = None,
    ahead: BlockFetcher | None = None,
    p2p: PeerAddress | None = None,
) -> SyncResult:
    """Ingest from the node until its tip (then, with `follow`, keep following).

    `on_block(height, node_height)` reports progress. When the node goes away, the blocks
    already read are committed and ExternalServiceError says where to resume; with `follow`
    the sync waits instead (backing off up to MAX_RETRY_SECONDS, telling `on_notice`) until
    the node answers again. A node behind the store on the same chain is not a reorg: it
    raises NodeBehindError, or with `follow` is waited for. `rest`: fetch
    the raw blocks over the node's REST interface (True: required, False: never, None: when
    the node serves it, else JSON-RPC). `p2p`: fetch them from the node's P2P port at this
    address instead (`cointrail.chain.p2p`: the node sends them from its block files as they
    are, the least work for it; it needs -listen=1). `SyncResult.fetch` says which was used.

    With `follow`, every wait (for the node's next block, for a node that is behind or went
    away) releases the store after committing everything, so other processes can open it;
    the sync takes it back when there is something to ingest, waiting while another process
    holds it. The store may be released when this returns (`UtxoIngestor.reacquire`).

    `ahead`: blocks already being fetched (`cointrail.chain.fetch.fetch_from_genesis`), used
    when they start where the store ends, else dropped. The caller keeps it and closes it
    (`BlockFetcher.close`; closing one the sync has used or dropped is harmless).
    """
    started = time.perf_counter()
    start_height = ingestor.height
    refuse_two_sources(p2p, rest)
    check_node_network(ingestor.store, rpc)
    if ahead is not None and (ahead.peer != p2p or (ahead.rest and rest is False)):
        ahead.close()  # fetching from another source than the one asked for
        ahead = None
    if p2p is not None:
        use_rest = False
    else:
        use_rest = ahead.rest if ahead is not None else rest is not False and rest_available(rpc)
    if rest and not use_rest:
        raise RestUnavailableError(
            f"the node at {rpc.url} does not serve REST; start it with -rest=1, or sync "
            "without --rest (JSON-RPC only)"
        )
    run = _Follow(ingestor, rpc, use_rest=use_rest, peer=p2p, batch_blocks=batch_blocks,
                  poll_seconds=poll_seconds, on_block=on_block, should_stop=should_stop,
                  on_notice=on_notice, ahead=ahead)
    delay = poll_seconds  # the next wait for a node that went away
    while run.take_store():
        try:
            node_height = int(rpc.call("getblockcount"))
            delay = poll_seconds  # the node answered: a later failure backs off anew
            if node_behind(ingestor, rpc, node_height):  # not a reorg: never roll back for it
                if not follow:
                    raise NodeBehindError(rpc.url, node_height, ingestor.height)
                if on_block:
                    on_block(ingestor.height, node_height)
                if not run.wait_for_block(str(rpc.call("getblockhash", node_height))):
                    break
                continue
            if run.catch_up(node_height):
                continue
            if not follow or run.stopping() \
                    or not run.wait_for_block(ingestor.tip_hash[::-1].hex()):
                break
        except ExternalServiceError as exc:
            ingestor.flush()
            next_delay = ride_out(ingestor, exc, delay,
                                  retry=follow and _transient(exc) and not run.stopping(),
                                  should_stop=should_stop, on_notice=on_notice)
            if next_delay is None:
                break
            delay = next_delay
    return SyncResult(
        start_height, ingestor.height,
        ingestor.tip_hash[::-1].hex() if ingestor.height >= 0 else "",
        ingestor.blocks_added, ingestor.txs_added, run.reorgs, run.rolled_back,
        time.perf_counter() - started,
        fetch="p2p" if p2p is not None else "rest" if use_rest else "rpc",
    )


def ingest_blkfiles(
    ingestor: UtxoIngestor,
    path: str,
    *,
    on_block: Callable[[int], None] | None = None,
) -> SyncResult:
    """Ingest the best chain found in a node's blk files (or framed .blk files), resuming
    above the store's tip. If the files' chain forks below the tip, roll back first."""
    started = time.perf_counter()
    start_height = ingestor.height
    reorgs = rolled_back = 0
    truncations: list[TruncatedFrame] = []
    indexes: list[ChainIndex] = []
    blocks: Iterator[tuple[int, bytes]] = iter(iter_best_chain_blocks(
        path, ingestor.spec, truncations=truncations, indexes=indexes
    ))
    new: tuple[int, bytes] | None = None
    ingestor.flush()  # the store's connection sees committed blocks only
    for height, raw in blocks:  # the blocks the store holds already: compared, not decoded
        if height > ingestor.height:
            new = (height, raw)
            break
        ours = ingestor.store.block_hash_at(height)
        if ours == sha256d(raw[:80]):
            continue
        reorgs += 1
        rolled_back += ingestor.rollback_to(height - 1)
        new = (height, raw)
        break
    if new is not None:
        try:
            for height, columns in decode_ahead(itertools.chain([new], blocks), ingestor.spec):
                ingestor.add_block(columns)
                if on_block:
                    on_block(height)
        except InputError:  # a damaged block: keep every good block before it
            ingestor.flush()
            raise
    ingestor.flush()
    tip = ingestor.store.tip()
    return SyncResult(
        start_height, ingestor.height, tip.hash[::-1].hex() if tip else "",
        ingestor.blocks_added, ingestor.txs_added, reorgs, rolled_back,
        time.perf_counter() - started,
        [str(t) for t in truncations] + [w for index in indexes for w in left_out(index)]
        + [f"no {ingestor.spec.key} block in {path} (empty or zero-filled block files?): "
           "pass the node's blocks directory or a blk file with blocks"
           for index in indexes if not index.chain],
    )


def left_out(index: ChainIndex) -> list[str]:
    """Warnings for the blocks of the files that are not on the chain ingested: blocks whose
    parent the files lack (a gap: the chain stops below them) and blocks failing their proof
    of work (with their descendants). Forks that lost (stale blocks) are normal, not warned."""
    out = []
    if index.orphans:
        first = index.orphans[0]
        out.append(
            f"{len(index.orphans)} block(s) in the files do not connect to the chain ingested "
            f"(it ends at height {index.tip.height if index.tip else -1}): their parents are "
            f"missing, the first {first.hash} at {first.file}:{first.offset} needs "
            f"{first.prev_hash}; a node still downloading leaves such gaps, a damaged or "
            "incomplete copy too: ingest again once the files are complete")
    if index.invalid:
        first = index.invalid[0]
        out.append(
            f"{len(index.invalid)} block(s) fail their proof of work or descend from one that "
            f"does, and were left out: the first {first.hash} at {first.file}:{first.offset}; "
            "the files are damaged there")
    return out


__all__ = ["IngestProgress", "MerkleRootError", "NodeBehindError", "SyncResult",
           "ingest_blkfiles", "sync_rpc"]
