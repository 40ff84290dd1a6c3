"""Turning decoded blocks into store rows: dense ids, input resolution, batching.

Invariant: rows depend only on the chain, never on how or in how many runs it was ingested —
ids are assigned in chain order (block by block, transaction by transaction, output by
output), so a resumed, re-run or reorged ingest gives the store a clean run gives.

Memory: bounded by the batch, except the index of unspent outputs that input resolution needs
(`UtxoIndex`) and the address-id map; `UtxoIndex.bytes_per_entry` reports their cost.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import pyarrow as pa

from cointrail.chain.utxo.block import Block, encode_block
from cointrail.chain.utxo.columnar import BlockColumns, columns_from_block
from cointrail.chain.utxo.hashes import BlockHash, Txid, hash160
from cointrail.chain.utxo.script import ScriptType, classify_script
from cointrail.errors import StoreError
from cointrail.store.duck import ChainStore
from cointrail.store.schema import ADDRESSES, BLOCKS, COINBASES, INPUTS, OUTPUTS, TXS, Table

_N_BITS = 24  # outputs per transaction < 2**24 (a 4 MWU block holds < 2**18)
# packed entry: value 51 bits (21e14 sat < 2**51), addr_id + 1 40 bits, script type 5 bits, tx_id
_PACK_ADDR, _PACK_TYPE, _PACK_TX = 51, 91, 96
_VALUE_MASK = (1 << 51) - 1
_ADDR_MASK = (1 << 40) - 1
_NULLDATA = ScriptType.NULLDATA.code  # provably unspendable: never enters the UTXO index


class ReorgError(StoreError):
    """The next block does not build on the store's tip: the chain reorganised."""

    def __init__(self, height: int, expected_prev: bytes, got_prev: bytes) -> None:
        super().__init__(
            f"block at height {height} builds on {BlockHash(got_prev)}, but the store's tip is "
            f"{BlockHash(expected_prev)}; the chain reorganised — roll back to the fork point"
        )
        self.height = height


class Spent(NamedTuple):
    """An output taken from the UTXO index by the input that spends it."""

    tx_id: int
    value: int
    addr_id: int | None
    script_type: int


class UtxoIndex:
    """Unspent outputs for input resolution, packed for memory.

    One dict maps ``(first 8 bytes of txid) << 24 | n`` to an int packing (tx_id, addr_id,
    value): about 130 bytes per unspent output in CPython, so the ~180 M outputs of today's
    Bitcoin UTXO set fit in 32 GB. Two transactions whose txids share 8 bytes (expected a few
    times over the whole chain) are detected on insert — `txid_of` gives the full txid of a
    stored tx_id — and their outputs move to a small side dict keyed by the full txid.
    BIP 30 duplicate txids (two 2010 coinbases) overwrite, as in Bitcoin Core.
    """

    _AMBIGUOUS = -1

    def __init__(self, txid_of: Callable[[int], bytes]) -> None:
        self._main: dict[int, int] = {}
        self._side: dict[tuple[bytes, int], int] = {}
        self._txid_of = txid_of
        self._count = 0
        self.collisions = 0
        self._journal: list[tuple[dict[Any, int], Any, int | None]] | None = None
        self._count_at_begin = 0

    def begin(self) -> None:
        """Start recording changes so that `undo` can revert them (one block's worth)."""
        self._journal = []
        self._count_at_begin = self._count

    def commit(self) -> None:
        self._journal = None

    def undo(self) -> None:
        """Revert every change since `begin`."""
        journal, self._journal = self._journal or [], None
        for table, key, old in reversed(journal):
            if old is None:
                table.pop(key, None)
            else:
                table[key] = old
        self._count = self._count_at_begin

    def _set(self, table: dict[Any, int], key: Any, value: int | None) -> None:
        if self._journal is not None:
            self._journal.append((table, key, table.get(key)))
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value

    @staticmethod
    def _pack(tx_id: int, value: int, addr_id: int | None, code: int) -> int:
        addr = 0 if addr_id is None else addr_id + 1
        return (tx_id << _PACK_TX) | (code << _PACK_TYPE) | (addr << _PACK_ADDR) | value

    @staticmethod
    def _unpack(packed: int) -> Spent:
        addr = (packed >> _PACK_ADDR) & _ADDR_MASK
        return Spent(packed >> _PACK_TX, packed & _VALUE_MASK, (addr - 1 if addr else None),
                     (packed >> _PACK_TYPE) & 31)

    def add(self, txid: bytes, tx_id: int, outputs: list[tuple[int, int, int | None, int]]) -> None:
        """Add a transaction's spendable outputs: (n, value, addr_id, script type code)."""
        prefix = int.from_bytes(txid[:8], "little") << _N_BITS
        main = self._main
        for n, value, addr_id, code in outputs:
            key = prefix | n
            packed = self._pack(tx_id, value, addr_id, code)
            old = main.get(key)
            if old is None:
                self._set(main, key, packed)
            elif old == self._AMBIGUOUS:
                self._set(self._side, (bytes(txid), n), packed)
            else:
                old_txid = self._txid_of(old >> _PACK_TX)
                if old_txid == txid:  # BIP 30 duplicate: the newer output replaces the older
                    self._set(main, key, packed)
                    self._count -= 1
                else:
                    self.collisions += 1
                    self._set(main, key, self._AMBIGUOUS)
                    self._set(self._side, (old_txid, n), old)
                    self._set(self._side, (bytes(txid), n), packed)
            self._count += 1

    def spend(self, txid: bytes, n: int) -> Spent | None:
        """Remove and return the spent output, or None if unknown."""
        key = (int.from_bytes(txid[:8], "little") << _N_BITS) | n
        packed = self._main.get(key)
        if packed is None:
            return None
        if packed == self._AMBIGUOUS:
            side_key = (bytes(txid), n)
            found = self._side.get(side_key)
            if found is None:
                return None
            self._set(self._side, side_key, None)
            packed = found
        else:
            self._set(self._main, key, None)
        self._count -= 1
        return self._unpack(packed)

    def __len__(self) -> int:
        return self._count

    def memory_bytes(self) -> int:
        """Bytes held by the index: dict tables plus key and value objects."""
        total = sys.getsizeof(self._main) + sys.getsizeof(self._side)
        for key, value in self._main.items():
            total += sys.getsizeof(key) + sys.getsizeof(value)
        total += sum(150 for _ in self._side)
        return total


class _Columns:
    """Row buffers for one table, column by column."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.data: dict[str, list[object]] = {c: [] for c in table.column_names}

    def add(self, *values: object) -> None:
        for column, value in zip(self.data.values(), values, strict=True):
            column.append(value)

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))

    def to_arrow(self) -> pa.Table:
        schema = self.table.arrow_schema()
        return pa.table(
            [pa.array(self.data[f.name], type=f.type) for f in schema], schema=schema
        )

    def clear(self) -> None:
        for column in self.data.values():
            column.clear()

    def truncate(self, length: int) -> None:
        for column in self.data.values():
            del column[length:]


@dataclass
class IngestProgress:
    height: int
    blocks: int
    txs: int
    seconds: float


class UtxoIngestor:
    """Appends blocks, in chain order, to one chain's store."""

    def __init__(
        self,
        store: ChainStore,
        *,
        batch_txs: int = 50_000,
        on_flush: Callable[[IngestProgress], None] | None = None,
    ) -> None:
        self.store = store
        self.spec = store.spec
        self.batch_txs = batch_txs
        self.on_flush = on_flush
        self.blocks_added = 0
        self.txs_added = 0
        self.started = time.perf_counter()
        tables = (BLOCKS, TXS, OUTPUTS, INPUTS, COINBASES, ADDRESSES)
        self._buffers = {t: _Columns(t) for t in tables}
        self._load()

    # -- state ------------------------------------------------------------------------------

    def _load(self) -> None:
        tip = self.store.tip()
        self.height = tip.height if tip else -1
        self.tip_hash = tip.hash if tip else b"\x00" * 32
        self.next_tx_id, self.next_addr_id = self.store.next_ids()
        self.addr_ids: dict[str, int] = dict(
            (str(text), int(addr_id))
            for text, addr_id in self.store.query("SELECT text, addr_id FROM addresses")
        )
        self.utxo = UtxoIndex(self._txid_of)
        rows = self.store.query(
            """
            SELECT t.txid, o.tx_id, o.n, o.value, o.addr_id, o.script_type
            FROM outputs o JOIN txs t USING (tx_id)
            WHERE o.script_type <> ? AND NOT EXISTS (
                SELECT 1 FROM inputs i WHERE i.prev_tx_id = o.tx_id AND i.prev_n = o.n)
            ORDER BY o.tx_id, o.n
            """,
            [_NULLDATA],
        )
        for txid, tx_id, n, value, addr_id, code in rows:
            self.utxo.add(bytes(txid), int(tx_id), [(int(n), int(value), addr_id, int(code))])

    def _txid_of(self, tx_id: int) -> bytes:
        """Full txid of a tx_id, from the unflushed batch or the store."""
        buffered = self._buffers[TXS].data
        ids = buffered["tx_id"]
        if ids:
            first = cast(int, ids[0])
            if tx_id >= first:
                return cast(bytes, buffered["txid"][tx_id - first])
        row = self.store.query("SELECT txid FROM txs WHERE tx_id = ?", [tx_id])
        if not row:
            raise StoreError(f"the store lost transaction {tx_id}; re-ingest into a new store")
        return bytes(row[0][0])

    # -- blocks -----------------------------------------------------------------------------

    def add_block(self, block: BlockColumns | Block) -> None:
        """Append the block that extends the current tip (height = tip + 1).

        Takes the columns of `decode_block_columns` (the fast path) or a decoded `Block`.
        """
        if isinstance(block, Block):
            block = columns_from_block(block, encode_block(block), self.spec)
        height = self.height + 1
        if block.prev_hash != self.tip_hash:
            if height == 0:
                raise StoreError(
                    f"the first block of an empty store must be the genesis block, but block "
                    f"{block.hash} builds on {block.prev_hash}; ingest from the chain's start"
                )
            raise ReorgError(height, self.tip_hash, block.prev_hash)
        marks = {t: len(buf) for t, buf in self._buffers.items()}
        ids = (self.next_tx_id, self.next_addr_id)
        self.utxo.begin()
        try:
            self._add_block(block, height)
        except BaseException:  # all or nothing: a failed block leaves no trace
            self.utxo.undo()
            for table, buf in self._buffers.items():
                buf.truncate(marks[table])
            for text in [t for t, i in self.addr_ids.items() if i >= ids[1]]:
                del self.addr_ids[text]
            self.next_tx_id, self.next_addr_id = ids
            raise
        self.utxo.commit()
        self.height = height
        self.tip_hash = bytes(block.hash)
        self.blocks_added += 1
        self.txs_added += block.n_tx
        if len(self._buffers[TXS]) >= self.batch_txs:
            self.flush()

    def _add_block(self, block: BlockColumns, height: int) -> None:
        b = self._buffers
        first_tx_id, first_addr_id = self.next_tx_id, self.next_addr_id
        raw = block.raw
        n_in = block.tx_n_in.tolist()
        n_out = block.tx_n_out.tolist()
        sizes, base_sizes = block.tx_size.tolist(), block.tx_base_size.tolist()
        mweb_sizes = block.tx_mweb_size.tolist()
        versions, lock_times = block.tx_version.tolist(), block.tx_lock_time.tolist()
        txids = block.txids.tobytes()
        values = block.out_value.tolist()
        types = block.out_type.tolist()
        script_offsets = block.out_script_offset.tolist()
        script_lens = block.out_script_len.tolist()
        addresses = block.addresses
        prev_offsets, prev_vouts = block.in_prev_txid_offset.tolist(), block.in_prev_vout.tolist()
        sequences = block.in_sequence.tolist()
        in_script_offsets = block.in_script_offset.tolist()
        in_script_lens = block.in_script_len.tolist()
        k = j = 0  # output and input rows
        spend = self.utxo.spend
        add_input = b[INPUTS].add
        add_output = b[OUTPUTS].add
        for i in range(len(sizes)):
            tx_id = self.next_tx_id
            self.next_tx_id += 1
            txid = txids[i * 32 : i * 32 + 32]
            input_value: int | None = None
            coinbase = i == 0
            if coinbase:
                so = in_script_offsets[j]
                b[COINBASES].add(tx_id, raw[so : so + in_script_lens[j]])
                j += n_in[i]
            else:
                input_value = 0
                for n in range(n_in[i]):
                    po = prev_offsets[j]
                    prev_txid, prev_n = raw[po : po + 32], prev_vouts[j]
                    spent = spend(prev_txid, prev_n)
                    if spent is None:
                        raise StoreError(
                            f"transaction {Txid(txid)} at height {height} spends "
                            f"{Txid(prev_txid)}:{prev_n}, which the store does not hold as "
                            "unspent; ingest the chain from its genesis block in order"
                        )
                    input_value += spent.value
                    add_input(tx_id, n, spent.tx_id, prev_n, spent.value, spent.addr_id,
                              spent.script_type, sequences[j])
                    j += 1
            new_utxos: list[tuple[int, int, int | None, int]] = []
            output_value = 0
            for n in range(n_out[i]):
                value, code, text = values[k], types[k], addresses[k]
                output_value += value
                if text is None:
                    so = script_offsets[k]
                    add_output(tx_id, n, value, None, code, raw[so : so + script_lens[k]])
                    addr_id = None
                else:
                    addr_id = self.addr_ids.get(text)
                    if addr_id is None:
                        so = script_offsets[k]
                        addr_id = self._new_address(text, code, raw[so : so + script_lens[k]],
                                                    tx_id, height)
                    add_output(tx_id, n, value, addr_id, code, None)
                if code != _NULLDATA:
                    new_utxos.append((n, value, addr_id, code))
                k += 1
            self.utxo.add(txid, tx_id, new_utxos)
            fee = None if input_value is None else input_value - output_value
            weight = base_sizes[i] * 3 + sizes[i] - mweb_sizes[i]
            b[TXS].add(tx_id, txid, height, versions[i], lock_times[i], sizes[i],
                       (weight + 3) // 4, coinbase, n_in[i], n_out[i], input_value,
                       output_value, fee)
        b[BLOCKS].add(height, bytes(block.hash), bytes(block.prev_hash), block.merkle_root,
                      block.version, block.time, block.bits, block.nonce, block.size,
                      block.stripped_size, block.weight, len(sizes), first_tx_id, first_addr_id)

    def _new_address(self, text: str, code: int, script: bytes, tx_id: int, height: int) -> int:
        addr_id = self.next_addr_id
        self.next_addr_id += 1
        self.addr_ids[text] = addr_id
        form, payload = _address_form(script, self.spec.has_mweb)
        self._buffers[ADDRESSES].add(addr_id, form.code, payload, text, tx_id, height)
        return addr_id

    def flush(self) -> None:
        """Commit buffered blocks and the new tip in one transaction."""
        if not len(self._buffers[BLOCKS]):
            return
        rows = {t: buf.to_arrow() for t, buf in self._buffers.items()}
        self.store.append(rows, {"tip_height": str(self.height)})
        for buf in self._buffers.values():
            buf.clear()
        if self.on_flush:
            self.on_flush(IngestProgress(self.height, self.blocks_added, self.txs_added,
                                         time.perf_counter() - self.started))

    def rollback_to(self, height: int) -> int:
        """Flush, remove blocks above `height`, and reload the indexes from the store."""
        self.flush()
        removed = self.store.rollback_to(height)
        self._load()
        return removed


def _address_form(script: bytes, mweb: bool) -> tuple[ScriptType, bytes]:
    """(address type, payload) of an output with an address; p2pk is its key's p2pkh."""
    kind, payload = classify_script(script, mweb)
    if kind is ScriptType.PUBKEY:
        return ScriptType.PUBKEYHASH, hash160(payload)
    return kind, payload
