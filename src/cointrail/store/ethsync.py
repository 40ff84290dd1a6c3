"""Following an Ethereum node into the store: blocks, transactions, receipts, logs and traces
become ``blocks``, ``txs``, ``account_txs``, ``addresses``, ``assets`` and ``transfers``.

Invariants (as for the UTXO ingest, `store.sync`):

- every committed batch is one DuckDB transaction that also moves the tip, so a crash or a kill
  leaves the store at the last committed block and the same command resumes from there;
- each block must build on the store's tip (``parentHash``); when it does not, or the store's
  hashes differ from the node's, the store rolls back to the fork point (one transaction) and
  the node's chain is applied again;
- hashes are stored byte-reversed, like the UTXO chains', so every generic reader that prints
  ``hash[::-1].hex()`` shows the RPC hex; amounts are exact integers (HUGEINT).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from cointrail.chain.account.address import ACCOUNT_ADDRESS_TYPE
from cointrail.chain.account.hashes import hex_bytes, hex_int
from cointrail.chain.account.node import ChainMovedError, EthNode, FullBlock, Tracer
from cointrail.chain.account.transfers import (
    Transfer,
    TransferKind,
    decode_account_tx,
    failed_by_traces,
    iter_geth_traces,
    iter_parity_traces,
    iter_token_transfers,
    iter_tx_transfers,
    iter_withdrawals,
)
from cointrail.chain.rpc import NodeRpcError
from cointrail.errors import ExternalServiceError, InputError, StoreError
from cointrail.store.duck import ChainStore, sleep_unless_stopped
from cointrail.store.ingest import ReorgError
from cointrail.store.schema import (
    ACCOUNT_TXS,
    ADDRESSES,
    ASSETS,
    BLOCKS,
    CLUSTER_TABLES,
    TRANSFERS,
    TXS,
    Table,
)
from cointrail.store.sync import SyncResult, ride_out, take_store

NATIVE_ASSET = 0
_MAX_AMOUNT = 10**38 - 1  # DECIMAL(38, 0), the Arrow side of HUGEINT

TokenMetadata = Callable[[list[str], int], dict[str, tuple[str | None, int | None]]]


class EthIngestor:
    """Turns checked node blocks into store rows; commits on `flush`."""

    def __init__(self, store: ChainStore, metadata: TokenMetadata | None = None, *,
                 start_height: int = 0) -> None:
        """`start_height` lets an empty store begin above genesis (a window of the chain:
        balances then count only the transfers from there on)."""
        if not store.spec.is_account_model:
            raise InputError(f"{store.spec.key} is not an account-model chain")
        self.store = store
        self.spec = store.spec
        self.metadata = metadata
        self.blocks_added = self.txs_added = self.transfers_added = 0
        self.tracer_note = ""
        self.start_height = start_height
        self._load()

    def _load(self) -> None:
        store = self.store
        tip = store.tip()
        self.height = tip.height if tip else self.start_height - 1
        self.tip_hash = tip.hash[::-1] if tip else b""
        self.next_tx, self.next_addr = store.next_ids()
        row = store.query("SELECT coalesce(max(transfer_id) + 1, 0) FROM transfers")
        self.next_transfer = int(row[0][0])
        self.addr_ids: dict[str, int] = {
            str(t): int(i) for i, t in store.query("SELECT addr_id, text FROM addresses")}
        self.assets: dict[str | None, int] = {
            (None if c is None else "0x" + bytes(c).hex()): int(i)
            for i, c in store.query("SELECT asset_id, contract FROM assets")}
        self._rows: dict[Table, list[dict[str, Any]]] = {
            t: [] for t in (BLOCKS, TXS, ACCOUNT_TXS, ADDRESSES, ASSETS, TRANSFERS)}
        if NATIVE_ASSET not in self.assets.values():
            self.assets[None] = NATIVE_ASSET
            self._rows[ASSETS].append({"asset_id": NATIVE_ASSET, "contract": None,
                                       "symbol": self.spec.ticker,
                                       "decimals": self.spec.decimals})
        self.next_asset = max(self.assets.values(), default=NATIVE_ASSET) + 1

    # -- ids ----------------------------------------------------------------------------------

    def _addr(self, text: str | None, tx_id: int, height: int) -> int | None:
        if text is None:
            return None
        found = self.addr_ids.get(text)
        if found is None:
            found = self.addr_ids[text] = self.next_addr
            self.next_addr += 1
            self._rows[ADDRESSES].append({
                "addr_id": found, "type": ACCOUNT_ADDRESS_TYPE, "payload": hex_bytes(text),
                "text": text, "first_tx_id": tx_id, "first_height": height})
        return found

    def _asset(self, token: str | None, height: int) -> int:
        found = self.assets.get(token)
        if found is None:
            symbol, decimals = (None, None)
            if self.metadata is not None and token is not None:
                symbol, decimals = self.metadata([token], height).get(token, (None, None))
            found = self.assets[token] = self.next_asset  # O(1): ids are dense, never reused
            self.next_asset += 1
            self._rows[ASSETS].append({"asset_id": found, "contract": hex_bytes(token),
                                       "symbol": symbol, "decimals": decimals})
        return found

    # -- blocks -------------------------------------------------------------------------------

    def add_block(self, full: FullBlock) -> None:
        """Append one block; ReorgError when it does not build on the tip."""
        height = full.height
        if self.tip_hash and full.parent_hash != self.tip_hash:
            raise ReorgError(height, self.tip_hash[::-1], full.parent_hash[::-1])
        if height != self.height + 1:
            raise StoreError(f"block {height} is not the next block after the store's tip "
                             f"{self.height}")
        block = full.block
        first_tx, first_addr = self.next_tx, self.next_addr
        tx_ids: dict[bytes, int] = {}
        for tx, receipt in zip(block["transactions"], full.receipts, strict=True):
            t = decode_account_tx(tx, receipt)
            tx_id = tx_ids[t.tx_hash] = self.next_tx
            self.next_tx += 1
            self._rows[TXS].append({
                "tx_id": tx_id, "txid": t.tx_hash[::-1], "height": height,
                "version": t.tx_type, "lock_time": 0, "size": 0, "vsize": 0,
                "is_coinbase": False, "input_count": 0, "output_count": 0,
                "input_value": None, "output_value": 0, "fee": None})
            self._rows[ACCOUNT_TXS].append({
                "tx_id": tx_id, "tx_index": t.tx_index,
                "from_addr_id": self._addr(t.from_address, tx_id, height),
                "to_addr_id": self._addr(t.to_address, tx_id, height),
                "created_addr_id": self._addr(t.created, tx_id, height),
                "value": Decimal(t.value), "nonce": t.nonce, "gas": t.gas,
                "gas_used": t.gas_used, "gas_price": Decimal(t.gas_price), "status": t.status,
                "tx_type": t.tx_type, "selector": t.selector or None})
        moves = sorted(self._transfers(full, [hex_bytes(tx["hash"])
                                              for tx in block["transactions"]]), key=_order)
        for transfer in moves:
            found = first_tx if transfer.tx_hash is None else tx_ids.get(transfer.tx_hash)
            if found is None:
                raise StoreError(f"block {height}: a transfer names transaction "
                                 f"0x{(transfer.tx_hash or b'').hex()}, which the block does "
                                 "not hold")
            tx_id = found
            exact = transfer.amount > _MAX_AMOUNT
            self._rows[TRANSFERS].append({
                "transfer_id": self.next_transfer,
                "tx_id": None if transfer.tx_hash is None else tx_id, "height": height,
                "kind": int(transfer.kind),
                "from_addr_id": self._addr(transfer.from_address, tx_id, height),
                "to_addr_id": self._addr(transfer.to_address, tx_id, height),
                "asset_id": self._asset(transfer.token, height),
                "amount": Decimal(0 if exact else transfer.amount),
                "log_index": transfer.log_index, "trace_address": transfer.trace_address,
                "amount_exact": str(transfer.amount) if exact else None})
            self.next_transfer += 1
            self.transfers_added += 1
        self._rows[BLOCKS].append({
            "height": height, "hash": full.hash[::-1], "prev_hash": full.parent_hash[::-1],
            "merkle_root": hex_bytes(block["transactionsRoot"])[::-1], "version": 0,
            "time": hex_int(block["timestamp"]), "bits": 0, "nonce": 0,
            "size": hex_int(block.get("size")), "stripped_size": hex_int(block.get("size")),
            "weight": 0, "tx_count": len(block["transactions"]), "first_tx_id": first_tx,
            "first_addr_id": first_addr})
        self.height, self.tip_hash = height, full.hash
        self.blocks_added += 1
        self.txs_added += len(block["transactions"])

    @staticmethod
    def _transfers(full: FullBlock, tx_hashes: list[bytes]) -> Iterable[Transfer]:
        failed = failed_by_traces(full.traces, tx_hashes) if full.traces else set()
        yield from iter_tx_transfers(full.block, full.receipts, failed)
        yield from iter_token_transfers(full.receipts)
        if full.traces is not None:
            if full.traces and "action" in full.traces[0]:
                yield from iter_parity_traces(full.traces)
            else:
                yield from iter_geth_traces(full.traces, tx_hashes)
        yield from iter_withdrawals(full.block)

    def flush(self, state: dict[str, str] | None = None) -> None:
        """Commit the buffered blocks (one transaction, tip included)."""
        if not any(self._rows.values()):
            return
        tables = {t: pa.Table.from_pylist(rows, schema=t.arrow_schema())
                  for t, rows in self._rows.items() if rows}
        self.store.append(tables, {"tip_height": str(self.height), **(state or {})})
        for rows in self._rows.values():
            rows.clear()

    def release(self) -> None:
        """Commit the buffered blocks and let go of the store's database while the sync
        waits (other processes can open it meanwhile); `reacquire` takes it back."""
        self.flush()
        self.store.release()

    def reacquire(self) -> bool:
        """Open the store again after `release` (StoreInUseError while another process holds
        it). If another process moved the chain tables meanwhile, the ids and address map are
        reloaded from the store; returns True then."""
        if not self.store.released:
            return False
        self.store.reopen()
        tip = self.store.tip()
        if ((tip.height, tip.hash[::-1]) if tip else (self.start_height - 1, b"")) == (
                self.height, self.tip_hash):  # the same tip: the same rows (dense ids)
            return False
        self._load()
        return True

    def rollback_to(self, height: int) -> int:
        """Remove every block above `height` and what depends on it, in one transaction."""
        self.flush()
        con = self.store.con
        row = con.execute(
            "SELECT min(first_tx_id), min(first_addr_id), count(*) FROM blocks WHERE height > ?",
            [height]).fetchone()
        if row is None or not row[2]:
            return 0
        first_tx, first_addr, removed = int(row[0]), int(row[1]), int(row[2])
        with self.store.transaction():
            con.execute("DELETE FROM transfers WHERE height > ?", [height])
            for name in ("account_txs", "txs"):
                con.execute(f"DELETE FROM {name} WHERE tx_id >= ?", [first_tx])
            for table in CLUSTER_TABLES:
                con.execute(f"DELETE FROM {table.name} WHERE tx_id >= ?", [first_tx])
            con.execute("DELETE FROM addresses WHERE addr_id >= ?", [first_addr])
            con.execute("DELETE FROM blocks WHERE height > ?", [height])
            for key, value in (("tip_height", str(height)),):
                con.execute("DELETE FROM sync_state WHERE key = ?", [key])
                con.execute("INSERT INTO sync_state VALUES (?, ?)", [key, value])
            state = self.store.state()
            if int(state.get("cluster_height", -1)) > height:
                con.execute("DELETE FROM sync_state WHERE key = 'cluster_height'")
                con.execute("INSERT INTO sync_state VALUES ('cluster_height', ?)", [str(height)])
        self._load()
        return removed


def _order(t: Transfer) -> tuple[int, int, tuple[int, ...], int]:
    """Execution order within a block: by transaction; in one, the value sent with it, then
    the calls (trace order), then the token logs, then the fee; block credits last."""
    rank = {TransferKind.NATIVE: 0, TransferKind.INTERNAL: 1, TransferKind.TOKEN: 2,
            TransferKind.FEE: 3}.get(t.kind, 4)
    path = tuple(int(p) for p in t.trace_address.split(",")) if (
        t.kind is TransferKind.INTERNAL and t.trace_address) else ()
    return (2**31 if t.tx_index is None else t.tx_index, rank, path, t.log_index or 0)


def check_chain_id(store: ChainStore, node: EthNode) -> None:
    """Refuse a node of another chain than the store's network (EIP-155 chain id)."""
    got = node.chain_id()
    if got != store.spec.chain_id:
        from cointrail.chain.spec import chains_with_chain_id

        named = [s.network for s in chains_with_chain_id(got)]
        hint = f"pass --network {named[0]}" if named else "use a node of the right chain"
        raise InputError(
            f"the node at {node.url} has chain id {got}, but the store is {store.spec.key} "
            f"(chain id {store.spec.chain_id}); {hint}"
        )


def find_fork(ingestor: EthIngestor, node: EthNode, *, window: int = 64) -> int | None:
    """The highest height where store and node agree; None if the store's tip is on the
    node's chain; just below the store's lowest block if they share none."""
    height = ingestor.height
    if ingestor.store.tip() is None:
        return None
    lowest = int(ingestor.store.query("SELECT min(height) FROM blocks")[0][0])
    top = min(height, node.block_number())
    while top >= lowest:
        heights = list(range(top, max(top - window, lowest - 1), -1))
        for h, theirs in zip(heights, node.block_hashes(heights), strict=True):
            ours = ingestor.store.block_hash_at(h)
            if ours is not None and theirs is not None and ours[::-1] == theirs:
                return None if h == height else h
        top = heights[-1] - 1
    return lowest - 1


def _wait_for_block(ingestor: EthIngestor, node: EthNode, poll_seconds: float,
                    should_stop: Callable[[], bool] | None,
                    on_notice: Callable[[str], None] | None) -> bool:
    """Release the store until the node's chain no longer ends at the store's tip (a new
    block, or a reorg at the same height), then take it back. False when told to stop."""
    ingestor.release()
    while sleep_unless_stopped(poll_seconds, should_stop):
        top = node.block_number()
        if top != ingestor.height or node.block_hashes([top])[0] != ingestor.tip_hash:
            return take_store(ingestor, poll_seconds=poll_seconds, should_stop=should_stop,
                              on_notice=on_notice)
    return False


def sync_eth(
    ingestor: EthIngestor,
    node: EthNode,
    *,
    follow: bool = False,
    poll_seconds: float = 1.0,
    batch_blocks: int = 100,
    on_block: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> SyncResult:
    """Ingest from the node until its tip (then, with `follow`, keep following).

    Each batch of `batch_blocks` blocks is committed as one transaction. When the node goes
    away, what was committed stays and ExternalServiceError says where to resume; with
    `follow` the sync waits for it instead (backing off up to MAX_RETRY_SECONDS, telling
    `on_notice`); an error the node answers with still ends it. With
    `follow`, the store is released while the sync waits for the node's next block (other
    processes can open it meanwhile) and taken back when there is one, waiting while another
    process holds it (telling `on_notice`); it may be released when this returns.
    """
    started = time.perf_counter()
    start_height = ingestor.height
    reorgs = rolled_back = 0
    check_chain_id(ingestor.store, node)
    tracer, note = node.detect_tracer(node.block_number())
    ingestor.tracer_note = note
    warnings = [note] if tracer is Tracer.NONE else []
    if ingestor.metadata is None:
        ingestor.metadata = node.token_metadata
    state = {"source": node.url, "tracer": tracer.value}
    moved = 0
    delay = poll_seconds  # the next wait for a node that went away (--follow)
    while take_store(ingestor, poll_seconds=poll_seconds, should_stop=should_stop,
                     on_notice=on_notice):
        try:
            fork = find_fork(ingestor, node)
            delay = poll_seconds  # the node answered: a later failure backs off anew
            if fork is not None:
                reorgs += 1
                rolled_back += ingestor.rollback_to(fork)
            node_height = node.block_number()
            again = False
            for first in range(ingestor.height + 1, node_height + 1, batch_blocks):
                heights = list(range(first, min(first + batch_blocks, node_height + 1)))
                try:
                    blocks = node.full_blocks(heights, tracer)
                except ChainMovedError:
                    again = True
                    break
                for full in blocks:
                    try:
                        ingestor.add_block(full)
                    except ReorgError:
                        again = True
                        break
                    if on_block:
                        on_block(ingestor.height, node_height)
                ingestor.flush(state)
                if again or (should_stop and should_stop()):
                    break
            if not again:
                moved = 0
            else:
                moved += 1
                if moved > 20:
                    raise ExternalServiceError(
                        f"the node at {node.url} keeps changing its chain at height "
                        f"{ingestor.height + 1}; check the node")
                continue
            if not follow or (should_stop and should_stop()) \
                    or not _wait_for_block(ingestor, node, poll_seconds, should_stop, on_notice):
                break
        except ExternalServiceError as exc:
            ingestor.flush(state)
            stop = should_stop is not None and should_stop()
            next_delay = ride_out(ingestor, exc, delay,
                                  retry=follow and not isinstance(exc, NodeRpcError) and not stop,
                                  should_stop=should_stop, on_notice=on_notice)
            if next_delay is None:
                break
            delay = next_delay
    return SyncResult(
        start_height, ingestor.height, ingestor.tip_hash.hex(),
        ingestor.blocks_added, ingestor.txs_added, reorgs, rolled_back,
        time.perf_counter() - started,
        warnings,
    )
