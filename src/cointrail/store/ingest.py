"""Turning decoded blocks into store rows: dense ids, input resolution, batching.

Invariant: rows depend only on the chain, never on how or in how many runs it was ingested —
ids are assigned in chain order (block by block, transaction by transaction, output by
output), so a resumed, re-run or reorged ingest gives the store a clean run gives.

Two implementations write the same rows: the compiled core (``_ingestcore.c``, see its header
for why it is C), used when it is built, and the pure-Python reference below (`UtxoIndex`, a
text -> addr_id dict and row lists), the fallback and the yardstick the tests hold the core
to. `HAVE_CORE` says whether the core is built; ``UtxoIngestor(..., compiled=False)`` (or
COINTRAIL_NO_SPEEDUPS=1) forces the reference.

Memory: bounded by the batch, except the two indexes input resolution needs. With the core:
the unspent outputs in 32-byte slots (~40-50 bytes per output at 64-80 % load) and the
address map in 8-byte slots (~9.5-12 bytes per address at 68-85 % load), each map exact; the
addresses' payloads, against which every map hit is verified, live in ``<store>.addrkeys``
(44 bytes per address, memory-mapped: page cache, not process memory). The file is a cache of
the store's addresses table: every ingest checks it against that table when it starts and
rewrites what differs, so it needs no durability of its own. `UtxoIngestor.memory` reports
the figures.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

import numpy as np
import pyarrow as pa

from cointrail.chain.utxo.block import Block, encode_block
from cointrail.chain.utxo.columnar import BlockColumns, columns_from_block
from cointrail.chain.utxo.hashes import BlockHash, Txid, hash160
from cointrail.chain.utxo.script import ScriptType, classify_script
from cointrail.chain.utxo.sigstyle import signature_flags
from cointrail.errors import CointrailError, StoreError
from cointrail.store.defaults import DEFAULT_BATCH_TXS
from cointrail.store.duck import ChainStore
from cointrail.store.schema import ADDRESSES, BLOCKS, COINBASES, INPUTS, OUTPUTS, TXS, Table

_N_BITS = 24  # outputs per transaction < 2**24 (a 4 MWU block holds < 2**18)
# packed entry: value 64 bits (Dogecoin outputs exceed 2**51), addr_id + 1 40 bits, script
# type 5 bits, tx_id
_PACK_ADDR, _PACK_TYPE, _PACK_TX = 64, 104, 109
_VALUE_MASK = (1 << 64) - 1
_ADDR_MASK = (1 << 40) - 1
_NULLDATA = ScriptType.NULLDATA.code  # provably unspendable: never enters the UTXO index
_CORE_VERSION = 2
#: Suffix of the address record file next to the store's database file (compiled core only).
RECORDS_SUFFIX = ".addrkeys"
_ROW_TABLES: tuple[Table, ...] = (TXS, OUTPUTS, INPUTS, COINBASES, ADDRESSES)
_LOAD_BATCH = 1 << 20  # rows per Arrow batch when the indexes are rebuilt from the store
_BLOB_FLUSH = 1 << 30  # flush before a binary column of the batch nears Arrow's 2 GiB


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


def _missing(txid: bytes, height: int, prev_txid: bytes, prev_n: int) -> StoreError:
    return StoreError(
        f"transaction {Txid(txid)} at height {height} spends {Txid(prev_txid)}:{prev_n}, "
        "which the store does not hold as unspent; ingest the chain from its genesis block in "
        "order"
    )


class UtxoIndex:
    """Unspent outputs for input resolution (the pure-Python reference).

    One dict maps ``(first 8 bytes of txid) << 24 | n`` to an int packing (tx_id, addr_id,
    value, script type). Two transactions whose txids share 8 bytes (expected a few times over
    the whole chain) are detected on insert — `txid_of` gives the full txid of a stored tx_id —
    and their outputs move to a small side dict keyed by the full txid. BIP 30 duplicate txids
    (two 2010 coinbases) overwrite, as in Bitcoin Core. The compiled core's table behaves the
    same (`CoreUtxoIndex` gives it this interface).
    """

    _AMBIGUOUS = -1

    def __init__(self, txid_of: Callable[[int], bytes]) -> None:
        self._main: dict[int, int] = {}
        self._side: dict[tuple[bytes, int], int] = {}
        self._txid_of = txid_of
        self._count = 0
        self.collisions = 0
        self._journal: list[tuple[dict[Any, int], Any, int | None]] | None = None
        self._count_at_begin = self._collisions_at_begin = 0

    def begin(self) -> None:
        """Start recording changes so that `undo` can revert them (one block's worth)."""
        self._journal = []
        self._count_at_begin, self._collisions_at_begin = self._count, self.collisions

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
        self._count, self.collisions = self._count_at_begin, self._collisions_at_begin

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
                side_key = (bytes(txid), n)
                if side_key in self._side:  # BIP 30 duplicate among colliding txids
                    self._count -= 1
                self._set(self._side, side_key, packed)
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
        import sys

        total = sys.getsizeof(self._main) + sys.getsizeof(self._side)
        for key, value in self._main.items():
            total += sys.getsizeof(key) + sys.getsizeof(value)
        total += sum(150 for _ in self._side)
        return total


# --- the compiled core ---------------------------------------------------------------------


class _Core(Protocol):
    """The interface of ``_ingestcore.Core``."""

    next_tx_id: int
    next_addr_id: int
    batch_txs: int
    batch_blob_bytes: int
    utxo_count: int
    collisions: int

    def reset(self, next_tx_id: int, next_addr_id: int) -> None: ...
    def open_records(self, path: str) -> None: ...
    def finish_load(self) -> int: ...
    def load_utxos(self, txids: Any, tx_ids: Any, ns: Any, values: Any, addr_ids: Any,
                   types: Any) -> None: ...
    def load_addresses(self, addr_ids: Any, types: Any, offsets: Any, data: Any) -> None: ...
    def add_block(self, block: BlockColumns, height: int) -> None: ...
    def batch(self) -> tuple[tuple[str, int, tuple[tuple[Any, Any, Any], ...]], ...]: ...
    def clear_batch(self) -> None: ...
    def utxo_add(self, txid: bytes, tx_id: int,
                 outputs: list[tuple[int, int, int | None, int]]) -> None: ...
    def utxo_spend(self, txid: bytes, n: int) -> tuple[int, int, int | None, int] | None: ...
    def utxo_begin(self) -> None: ...
    def utxo_commit(self) -> None: ...
    def utxo_undo(self) -> None: ...
    def addr_lookup(self, type_code: int, payload: bytes) -> int | None: ...
    def addr_id(self, type_code: int, payload: bytes) -> int: ...
    def addr_truncate(self, count: int) -> None: ...
    def stats(self) -> dict[str, int]: ...


class _CoreModule(Protocol):
    MissingOutput: type[Exception]
    SCRIPT_TYPE_NAMES: tuple[str, ...]
    TABLES: tuple[tuple[str, tuple[int, ...]], ...]
    VERSION: int
    RECORD_SIZE: int
    UTXO_SLOT_BYTES: int
    ADDR_SLOT_BYTES: int

    def Core(  # noqa: N802 - the C type
        self, txid_of: Callable[[int], bytes] | None, seed: bytes, utxo_hash_mask: int = ...,
        addr_hash_mask: int = ...,
    ) -> _Core: ...


# The C core's column kinds: bytes per value; 0 a bit-packed bool; -1 offsets + data.
_KIND_OF: dict[str, int] = {"int8": 1, "int32": 4, "int64": 8, "bool": 0, "binary": -1,
                            "string": -1}


def _core_matches(module: _CoreModule) -> bool:
    if module.VERSION != _CORE_VERSION:
        return False
    if tuple(t.value for t in ScriptType) != module.SCRIPT_TYPE_NAMES:
        return False
    want = tuple(
        (t.name, tuple(_KIND_OF.get(str(f.type), 99) for f in t.arrow_schema()))
        for t in _ROW_TABLES
    )
    return want == module.TABLES


def _load_core() -> _CoreModule | None:
    if os.environ.get("COINTRAIL_NO_SPEEDUPS") or os.environ.get("COINTRAIL_NO_INGEST_CORE"):
        return None
    try:
        module = cast(_CoreModule, importlib.import_module("cointrail.store._ingestcore"))
    except ImportError:
        return None
    if not _core_matches(module):  # a build older than this file: the reference is right
        warnings.warn(
            "cointrail's compiled ingest core is out of date with ingest.py and is not used; "
            "rebuild it with `pip install -e .` (or `python setup.py build_ext --inplace`)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return module


_CORE = _load_core()
#: True when the compiled ingest core is built and used.
HAVE_CORE: bool = _CORE is not None


def _require_core() -> _CoreModule:
    if _CORE is None:
        raise CointrailError(
            "cointrail's compiled ingest core is not built; build it with `pip install -e .` "
            "(needs gcc and the OpenSSL headers, libssl-dev)"
        )
    return _CORE


def new_core(
    txid_of: Callable[[int], bytes] | None = None,
    *,
    utxo_hash_mask: int = (1 << 64) - 1,
    addr_hash_mask: int = (1 << 64) - 1,
) -> _Core:
    """A bare compiled core (its address records in memory). The hash masks keep only some
    bits of the tables' hashes, to force probe collisions in tests."""
    return _require_core().Core(txid_of, os.urandom(16), utxo_hash_mask, addr_hash_mask)


class CoreUtxoIndex:
    """The compiled core's unspent-output table behind `UtxoIndex`'s interface."""

    def __init__(self, txid_of: Callable[[int], bytes], *, hash_mask: int = (1 << 64) - 1
                 ) -> None:
        self.core = new_core(txid_of, utxo_hash_mask=hash_mask)

    def begin(self) -> None:
        self.core.utxo_begin()

    def commit(self) -> None:
        self.core.utxo_commit()

    def undo(self) -> None:
        self.core.utxo_undo()

    def add(self, txid: bytes, tx_id: int, outputs: list[tuple[int, int, int | None, int]]) -> None:
        self.core.utxo_add(txid, tx_id, outputs)

    def spend(self, txid: bytes, n: int) -> Spent | None:
        found = self.core.utxo_spend(txid, n)
        return None if found is None else Spent(*found)

    @property
    def collisions(self) -> int:
        return self.core.collisions

    def __len__(self) -> int:
        return self.core.utxo_count

    def memory_bytes(self) -> int:
        """Bytes of the table's slots (the side dict of colliding outputs not counted)."""
        return self.core.stats()["utxo_bytes"]


# --- row batches ---------------------------------------------------------------------------


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


class _Rows(Protocol):
    """Input resolution and the rows of every table but `blocks` (one implementation each)."""

    txids: _StoredTxids

    @property
    def next_tx_id(self) -> int: ...
    @property
    def next_addr_id(self) -> int: ...

    def load(self, next_tx_id: int, next_addr_id: int) -> None: ...
    def add_block(self, block: BlockColumns, height: int) -> None: ...
    def batch_txs(self) -> int: ...
    def batch_blob_bytes(self) -> int: ...
    def tables(self) -> dict[Table, pa.Table]: ...
    def clear(self) -> None: ...
    def memory(self) -> dict[str, int]: ...


def _unspent_outputs_sql() -> str:
    return """
        SELECT t.txid, o.tx_id, o.n, o.value, coalesce(o.addr_id, -1) AS addr_id,
               o.script_type
        FROM outputs o JOIN txs t USING (tx_id)
        WHERE o.script_type <> ? AND NOT EXISTS (
            SELECT 1 FROM inputs i WHERE i.prev_tx_id = o.tx_id AND i.prev_n = o.n)
    """


class _StoredTxids:
    """The full txid of a tx_id no longer in the batch being built: from the batch a
    background write is committing (`pending`, not yet visible to the store's connection),
    else from the store. Holds the store, not the ingestor: no cycle keeps the compiled core
    (and the lock on its record file) alive once the ingestor is dropped."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.pending: pa.Table | None = None  # the txs rows of the batch being committed

    def __call__(self, tx_id: int) -> bytes:
        pending = self.pending
        if pending is not None and pending.num_rows:
            first = cast(int, pending.column("tx_id")[0].as_py())
            if first <= tx_id < first + pending.num_rows:
                return cast(bytes, pending.column("txid")[tx_id - first].as_py())
        row = self.store.query("SELECT txid FROM txs WHERE tx_id = ?", [tx_id])
        if not row:
            raise StoreError(f"the store lost transaction {tx_id}; re-ingest into a new store")
        return bytes(row[0][0])


class _PythonRows:
    """The pure-Python reference: `UtxoIndex`, a text -> addr_id dict and row lists."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.mweb = store.spec.has_mweb
        self._buffers = {t: _Columns(t) for t in _ROW_TABLES}
        self.next_tx_id = self.next_addr_id = 0
        self.addr_ids: dict[str, int] = {}
        self.txids = _StoredTxids(store)
        self.utxo = UtxoIndex(self._txid_of)

    def load(self, next_tx_id: int, next_addr_id: int) -> None:
        self.next_tx_id, self.next_addr_id = next_tx_id, next_addr_id
        self.addr_ids = {
            str(text): int(addr_id)
            for text, addr_id in self.store.query("SELECT text, addr_id FROM addresses")
        }
        self.utxo = UtxoIndex(self._txid_of)
        rows = self.store.query(_unspent_outputs_sql() + " ORDER BY o.tx_id, o.n", [_NULLDATA])
        for txid, tx_id, n, value, addr_id, code in rows:
            addr = None if addr_id < 0 else int(addr_id)
            self.utxo.add(bytes(txid), int(tx_id), [(int(n), int(value), addr, int(code))])

    def _txid_of(self, tx_id: int) -> bytes:
        """Full txid of a tx_id, from the unflushed batch, the batch being committed or the
        store."""
        buffered = self._buffers[TXS].data
        ids = buffered["tx_id"]
        if ids:
            first = cast(int, ids[0])
            if tx_id >= first:
                return cast(bytes, buffered["txid"][tx_id - first])
        return self.txids(tx_id)

    def add_block(self, block: BlockColumns, height: int) -> None:
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

    def _add_block(self, block: BlockColumns, height: int) -> None:
        b = self._buffers
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
        witness_lens = block.in_witness_len.tolist()
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
                        raise _missing(txid, height, prev_txid, prev_n)
                    input_value += spent.value
                    so = in_script_offsets[j]
                    flags = signature_flags(
                        raw[so : so + in_script_lens[j]],
                        block.witness(j) if witness_lens[j] else (),
                        ScriptType.from_code(spent.script_type))
                    add_input(tx_id, n, spent.tx_id, prev_n, spent.value, spent.addr_id,
                              spent.script_type, sequences[j], flags)
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
                        addr_id = self._new_address(text, raw[so : so + script_lens[k]],
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

    def _new_address(self, text: str, script: bytes, tx_id: int, height: int) -> int:
        addr_id = self.next_addr_id
        self.next_addr_id += 1
        self.addr_ids[text] = addr_id
        form, payload = _address_form(script, self.mweb)
        self._buffers[ADDRESSES].add(addr_id, form.code, payload, text, tx_id, height)
        return addr_id

    def batch_txs(self) -> int:
        return len(self._buffers[TXS])

    def batch_blob_bytes(self) -> int:
        return 0  # Python lists: no 2 GiB offsets until the Arrow conversion chunks them

    def tables(self) -> dict[Table, pa.Table]:
        return {t: buf.to_arrow() for t, buf in self._buffers.items()}

    def clear(self) -> None:
        for buf in self._buffers.values():
            buf.clear()

    def memory(self) -> dict[str, int]:
        import sys

        return {
            "compiled": 0,
            "utxos": len(self.utxo),
            "utxo_bytes": self.utxo.memory_bytes(),
            "collisions": self.utxo.collisions,
            "addresses": len(self.addr_ids),
            "addr_bytes": sys.getsizeof(self.addr_ids)
            + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self.addr_ids.items()),
        }


def _arrow_batches(store: ChainStore, sql: str, params: list[Any]) -> Iterator[pa.RecordBatch]:
    result = store.con.execute(sql, params)
    reader = getattr(result, "to_arrow_reader", None)
    yield from (reader(_LOAD_BATCH) if reader else result.fetch_record_batch(_LOAD_BATCH))


def _binary_parts(array: pa.Array) -> tuple[np.ndarray[Any, Any], Any]:
    """(int32 offsets, data buffer) of a binary Arrow array, offsets into the buffer."""
    if array.null_count:
        raise StoreError("unexpected NULL in a binary column of the store")
    buffers = array.buffers()
    first = array.offset
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[first : first + len(array) + 1]
    data = buffers[2] if buffers[2] is not None else b""
    return np.ascontiguousarray(offsets), data


def _ints(array: pa.Array, dtype: str) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(array.to_numpy(zero_copy_only=False), dtype=dtype)


class _CoreRows:
    """The compiled core: tables, rows and the address record file in C."""

    def __init__(self, store: ChainStore) -> None:
        module = _require_core()
        self.store = store
        self.missing_output = module.MissingOutput
        self.txids = _StoredTxids(store)
        self.core = module.Core(self.txids, os.urandom(16))
        self.records = Path(str(store.path) + RECORDS_SUFFIX)
        self.records_rewritten = 0
        try:
            self.core.open_records(str(self.records))
        except BlockingIOError:
            warnings.warn(
                f"another ingestor holds {self.records}; this one keeps the "
                "address records in memory", RuntimeWarning, stacklevel=3,
            )
        except OSError as exc:
            warnings.warn(
                f"cannot use {self.records} ({exc.strerror}); the address records stay in "
                "memory", RuntimeWarning, stacklevel=3,
            )

    @property
    def next_tx_id(self) -> int:
        return self.core.next_tx_id

    @property
    def next_addr_id(self) -> int:
        return self.core.next_addr_id

    def load(self, next_tx_id: int, next_addr_id: int) -> None:
        try:
            self._load_addresses(next_tx_id, ordered=False)
        except ValueError:  # not in addr_id order as stored: ask for the order
            try:
                self._load_addresses(next_tx_id, ordered=True)
            except ValueError as exc:
                raise StoreError(f"cannot rebuild the address map from the store: {exc}; "
                                 "re-ingest into a new store") from exc
        if self.core.next_addr_id != next_addr_id:
            raise StoreError(
                f"the store's addresses are not numbered 0..{next_addr_id - 1} without gaps; "
                "re-ingest into a new store"
            )
        self.records_rewritten = self.core.finish_load()
        for batch in _arrow_batches(self.store, _unspent_outputs_sql(), [_NULLDATA]):
            offsets, data = _binary_parts(batch.column(0))
            if len(offsets) > 1 and not (np.diff(offsets) == 32).all():
                raise StoreError("the store holds a txid that is not 32 bytes")
            start = int(offsets[0]) if len(offsets) else 0
            txids = memoryview(data)[start : start + 32 * batch.num_rows]
            self.core.load_utxos(
                txids, _ints(batch.column(1), "<i8"), _ints(batch.column(2), "<u4"),
                _ints(batch.column(3), "<i8"), _ints(batch.column(4), "<i8"),
                _ints(batch.column(5), "u1"),
            )

    def _load_addresses(self, next_tx_id: int, *, ordered: bool) -> None:
        self.core.reset(next_tx_id, 0)
        sql = "SELECT addr_id, type, payload FROM addresses"
        for batch in _arrow_batches(self.store, sql + (" ORDER BY addr_id" if ordered else ""),
                                    []):
            offsets, data = _binary_parts(batch.column(2))
            self.core.load_addresses(_ints(batch.column(0), "<i8"),
                                     _ints(batch.column(1), "i1"), offsets, data)

    def add_block(self, block: BlockColumns, height: int) -> None:
        try:
            self.core.add_block(block, height)
        except self.missing_output as exc:
            _, txid, prev_txid, prev_n = exc.args
            raise _missing(txid, height, prev_txid, prev_n) from None

    def batch_txs(self) -> int:
        return self.core.batch_txs

    def batch_blob_bytes(self) -> int:
        return self.core.batch_blob_bytes

    def tables(self) -> dict[Table, pa.Table]:
        """The batch as Arrow tables over the core's buffers (no copy)."""
        out = {}
        for table, (name, rows, columns) in zip(_ROW_TABLES, self.core.batch(), strict=True):
            assert name == table.name
            schema = table.arrow_schema()
            arrays = []
            for f, (data, offsets, valid) in zip(schema, columns, strict=True):
                bufs = [None if valid is None else pa.py_buffer(valid)]
                if offsets is not None:
                    bufs.append(pa.py_buffer(offsets))
                bufs.append(pa.py_buffer(data))
                array = pa.Array.from_buffers(f.type, rows, bufs, null_count=-1)
                array.validate()
                arrays.append(array)
            out[table] = pa.Table.from_arrays(arrays, schema=schema)
        return out

    def clear(self) -> None:
        self.core.clear_batch()

    def memory(self) -> dict[str, int]:
        return {"compiled": 1, "records_rewritten": self.records_rewritten, **self.core.stats()}


class UtxoIngestor:
    """Appends blocks, in chain order, to one chain's store.

    `compiled`: None uses the compiled core when it is built; False the pure-Python
    reference; True requires the core. Both write the same rows.

    `background_writes`: a full batch is committed on a writer thread (its own connection to
    the store) while the next batch is built, one write at a time; DuckDB's insert and commit
    then overlap decoding and input resolution. Each batch is still one transaction that
    moves the recorded tip, so a crash leaves the store at the last committed tip as before.
    `flush` (and `rollback_to`, `close`) return only once everything is committed; use the
    ingestor as a context manager (or call `close`) so that no write outlives it. A failed
    write is raised by the next call; its rows are kept, as when a commit in the ingesting
    thread fails, and the next `flush` writes them first.
    """

    def __init__(
        self,
        store: ChainStore,
        *,
        batch_txs: int = DEFAULT_BATCH_TXS,
        on_flush: Callable[[IngestProgress], None] | None = None,
        compiled: bool | None = None,
        background_writes: bool = False,
    ) -> None:
        self.store = store
        self.spec = store.spec
        self.batch_txs = batch_txs
        self.on_flush = on_flush
        self.background_writes = background_writes
        self.blocks_added = 0
        self.txs_added = 0
        self.started = time.perf_counter()
        self.compiled = HAVE_CORE if compiled is None else compiled
        self._blocks = _Columns(BLOCKS)
        self._rows: _Rows = _CoreRows(store) if self.compiled else _PythonRows(store)
        self._writer: _Write | None = None
        self._writer_con: Any = None
        self._unwritten: _Write | None = None  # a batch whose background write failed
        self._load()

    def __enter__(self) -> UtxoIngestor:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(raise_errors=exc_type is None)

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait for a background write to finish (committing its batch) and release the
        writer's connection. Blocks added since the last write are not committed: `flush`
        first to keep them. `raise_errors=False` keeps a failed write from masking the
        exception that is ending the caller's work (the store stays at its last commit)."""
        try:
            self._wait()
        except BaseException:
            if raise_errors:
                raise
        finally:
            write = self._writer
            while write is not None and write.is_alive():
                # never close the connection under a running insert (DuckDB crashes): a
                # commit takes seconds, so a Ctrl-C meanwhile only waits for it
                try:
                    write.join()
                except KeyboardInterrupt:
                    continue
            if self._writer_con is not None:
                self._writer_con.close()
                self._writer_con = None

    def release(self) -> None:
        """Commit every block added and let go of the store's database, so that other
        processes (``status``, ``show``, ``cluster``, the API server) can open it while the
        indexes stay in memory; `reacquire` before adding the next block. ``sync --follow``
        does this while it waits for the node's next block."""
        self.flush()
        self.close()
        self.store.release()

    def reacquire(self) -> bool:
        """Open the store again after `release` (StoreInUseError while another process
        holds it; nothing is changed then). If the chain tables moved meanwhile (another
        process ingested or rolled back), the indexes are rebuilt from the store, as on a
        resume; returns True then. The same tip means the same rows: ids are dense in chain
        order, so blocks rolled back and added again by another process get the same ids."""
        if not self.store.released:
            return False
        self.store.reopen()
        tip = self.store.tip()
        if ((tip.height, tip.hash) if tip else (-1, b"\x00" * 32)) == (self.height,
                                                                       self.tip_hash):
            return False
        self._load()
        return True

    # -- state ------------------------------------------------------------------------------

    def _load(self) -> None:
        tip = self.store.tip()
        self.height = tip.height if tip else -1
        self.tip_hash = tip.hash if tip else b"\x00" * 32
        self._rows.load(*self.store.next_ids())

    @property
    def next_tx_id(self) -> int:
        return self._rows.next_tx_id

    @property
    def next_addr_id(self) -> int:
        return self._rows.next_addr_id

    def memory(self) -> dict[str, int]:
        """What the indexes hold and their bytes (``utxos``, ``utxo_bytes``, ``addresses``,
        ``addr_bytes``, ``collisions``; the compiled core reports slots and more)."""
        return self._rows.memory()

    # -- blocks -----------------------------------------------------------------------------

    def add_block(self, block: BlockColumns | Block) -> None:
        """Append the block that extends the current tip (height = tip + 1).

        Takes the columns of `decode_block_columns` (the fast path) or a decoded `Block`.
        All or nothing: a block that fails (an input spending an unknown output) leaves no
        trace in the indexes or the batch.
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
        if self._rows.batch_blob_bytes() + len(block.raw) > _BLOB_FLUSH:
            self._write_batch()
        first_tx_id, first_addr_id = self._rows.next_tx_id, self._rows.next_addr_id
        self._rows.add_block(block, height)
        self._blocks.add(height, bytes(block.hash), bytes(block.prev_hash), block.merkle_root,
                         block.version, block.time, block.bits, block.nonce, block.size,
                         block.stripped_size, block.weight, block.n_tx, first_tx_id,
                         first_addr_id)
        self.height = height
        self.tip_hash = bytes(block.hash)
        self.blocks_added += 1
        self.txs_added += block.n_tx
        if self._rows.batch_txs() >= self.batch_txs:
            self._write_batch()

    def flush(self) -> None:
        """Commit buffered blocks and the new tip in one transaction; returns once every
        batch is committed. If a commit fails, its rows stay buffered (more blocks may be
        added) and the next flush writes them first."""
        self._write_batch()
        self._wait()

    def _write_batch(self) -> None:
        """Commit the buffered blocks: now, or with `background_writes` on the writer thread
        (after the previous write, and any batch whose write failed, is committed)."""
        self._wait()
        if self._unwritten is not None:  # a background write failed: that batch first
            write = self._unwritten
            self.store.append(write.rows, write.state)
            self._unwritten = None
            self._rows.txids.pending = None
            self._report(write.progress)
        if not len(self._blocks):
            return
        rows = {BLOCKS: self._blocks.to_arrow(), **self._rows.tables()}
        state = {"tip_height": str(self.height)}
        progress = (self.height, self.blocks_added, self.txs_added)
        if self.background_writes:
            if self._writer_con is None:
                self._writer_con = self.store.con.cursor()
            self._rows.txids.pending = rows[TXS]
            self._writer = _Write(self.store, self._writer_con, rows, state, progress)
        else:
            self.store.append(rows, state)  # a failure keeps the batch (not cleared below)
        del rows
        # the core's buffers: reused when nobody holds them, else the core takes new ones
        self._blocks.clear()
        self._rows.clear()
        if not self.background_writes:
            self._report(progress)

    def _wait(self) -> None:
        """Wait for the background write, if any; raise its error (its rows are kept for the
        next `flush`, and its transactions stay known to input resolution)."""
        write = self._writer
        if write is None:
            return
        write.join()  # interrupted (Ctrl-C), the write stays ours: `close` waits for it again
        self._writer = None
        if write.error is not None:
            self._unwritten = write
            raise write.error
        self._rows.txids.pending = None
        self._report(write.progress)

    def _report(self, progress: tuple[int, int, int]) -> None:
        if self.on_flush:
            self.on_flush(IngestProgress(*progress, time.perf_counter() - self.started))

    def rollback_to(self, height: int) -> int:
        """Flush, remove blocks above `height`, and reload the indexes from the store."""
        self.flush()
        removed = self.store.rollback_to(height)
        self._load()
        return removed


class _Write(threading.Thread):
    """One batch committed on its own thread (DuckDB releases the GIL while it inserts)."""

    def __init__(self, store: ChainStore, con: Any, rows: dict[Table, pa.Table],
                 state: dict[str, str], progress: tuple[int, int, int]) -> None:
        super().__init__(name="cointrail-store-writer")
        self.store, self.con, self.rows, self.state = store, con, rows, state
        self.progress = progress  # (height, blocks, txs) once committed
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.store.append(self.rows, self.state, con=self.con)
        except BaseException as exc:  # handed to the ingesting thread, which raises it
            self.error = exc


def _address_form(script: bytes, mweb: bool) -> tuple[ScriptType, bytes]:
    """(address type, payload) of an output with an address; p2pk is its key's p2pkh."""
    kind, payload = classify_script(script, mweb)
    if kind is ScriptType.PUBKEY:
        return ScriptType.PUBKEYHASH, hash160(payload)
    return kind, payload
