"""Columnar block decoding: one block becomes numpy columns (one row per transaction, output or
input) plus the list of output addresses, for bulk ingestion where `decode_block`'s objects
cost too much.

`decode_block_columns` uses the compiled core (``_speedups.c``, see its header for why it is C)
when it is built, else a pure-Python path built on `decode_block`; both give the same columns
and fail with the same `DecodeError` (message and offset) on malformed data. `HAVE_SPEEDUPS`
says which one runs. The per-field semantics are `decode_block`'s: txids and wtxids in internal
byte order, sizes as Bitcoin Core counts them, script types per `classify_script` (`out_type`
holds the index of the type in `SCRIPT_TYPES`, which is `ScriptType`'s order and its ``code``),
and addresses as `TxOut.address` (p2pk outputs attributed to the p2pkh address of their key).

Offsets (`tx_offset`, `out_script_offset`, `in_prev_txid_offset`, ...) index `BlockColumns.raw`,
the block's bytes, so scripts and ids are sliced from it only when they are wanted.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo.block import Block, BlockHeader, decode_block, decode_header
from cointrail.chain.utxo.hashes import BlockHash, Txid, Wtxid, merkle_root
from cointrail.chain.utxo.reader import ByteReader
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.tx import WITNESS_FLAG, encode_compact_size
from cointrail.errors import CointrailError, DecodeError

__all__ = [
    "HAVE_SPEEDUPS",
    "SCRIPT_TYPES",
    "BlockColumns",
    "columns_from_block",
    "decode_block_columns",
]

#: ``out_type`` code → script type (the order of `ScriptType`, as the C core numbers them).
SCRIPT_TYPES: tuple[ScriptType, ...] = tuple(ScriptType)
_TYPE_CODE: dict[ScriptType, int] = {t: i for i, t in enumerate(SCRIPT_TYPES)}

# flags of scan_block (the chain's ChainSpec properties)
_SCAN_SEGWIT, _SCAN_MWEB, _SCAN_AUXPOW, _SCAN_NO_WTXIDS = 1, 2, 4, 8

#: The fields of the C core's result tuple, in order (checked against its SCAN_FIELDS).
_FIELDS: tuple[str, ...] = (
    "block_hash", "n_tx", "size", "stripped_size", "auxpow_end", "mweb_offset",
    "txids", "wtxids",
    "tx_offset", "tx_version", "tx_lock_time", "tx_size", "tx_base_size", "tx_n_in", "tx_n_out",
    "tx_flags", "tx_mweb_size",
    "out_value", "out_script_offset", "out_script_len", "out_type", "out_tx",
    "in_prev_txid_offset", "in_prev_vout", "in_tx", "in_sequence", "in_script_offset",
    "in_script_len", "in_witness_offset", "in_witness_len",
    "addresses",
)  # fmt: skip

#: numpy dtype of every integer column.
_DTYPES: dict[str, str] = {
    "tx_offset": "<u4", "tx_version": "<i4", "tx_lock_time": "<u4", "tx_size": "<u4",
    "tx_base_size": "<u4", "tx_n_in": "<u4", "tx_n_out": "<u4", "tx_flags": "u1",
    "tx_mweb_size": "<u4",
    "out_value": "<i8", "out_script_offset": "<u4", "out_script_len": "<u4", "out_type": "u1",
    "out_tx": "<u4",
    "in_prev_txid_offset": "<u4", "in_prev_vout": "<u4", "in_tx": "<u4", "in_sequence": "<u4",
    "in_script_offset": "<u4", "in_script_len": "<u4", "in_witness_offset": "<u4",
    "in_witness_len": "<u4",
}  # fmt: skip


class _ScanError(Exception):
    args: tuple[str, int]


class _Speedups(Protocol):
    """The interface of the compiled core (``_speedups.c``)."""

    ScanError: type[_ScanError]
    SCAN_FIELDS: tuple[str, ...]
    SCAN_DTYPES: tuple[str, ...]
    SCRIPT_TYPE_NAMES: tuple[str, ...]

    def scan_block(
        self,
        data: bytes | bytearray | memoryview,
        flags: int,
        p2pkh_prefix: int,
        p2sh_prefix: int,
        hrp: str | None,
        cashaddr_prefix: str | None,
        key: str = "",
    ) -> tuple[Any, ...] | None: ...

    def merkle_root(self, hashes: bytes) -> bytes: ...


def _load_speedups() -> _Speedups | None:
    if os.environ.get("COINTRAIL_NO_SPEEDUPS"):
        return None
    try:
        module = cast(_Speedups, importlib.import_module("cointrail.chain.utxo._speedups"))
    except ImportError:
        return None
    stale = (
        module.SCAN_FIELDS != _FIELDS
        or tuple(t.value for t in SCRIPT_TYPES) != module.SCRIPT_TYPE_NAMES
        or any(
            dtype and _DTYPES.get(name) != dtype
            for name, dtype in zip(module.SCAN_FIELDS, module.SCAN_DTYPES, strict=True)
        )
    )
    if stale:  # a build older than this file: the pure-Python path is right, only slower
        warnings.warn(
            "cointrail's compiled decoder is out of date with columnar.py and is not used; "
            "rebuild it with `pip install -e .` (or `python setup.py build_ext --inplace`)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return module


_SPEEDUPS = _load_speedups()
#: True when the compiled core is built and used (set COINTRAIL_NO_SPEEDUPS=1 to disable it).
HAVE_SPEEDUPS: bool = _SPEEDUPS is not None


@dataclass(frozen=True, slots=True, eq=False)
class BlockColumns:
    """One decoded block as columns.

    Per transaction (row i): `txids`/`wtxids` (n_tx x 32 bytes, internal order), `tx_offset`
    (where it starts in `raw`), version, lock time, `tx_size`/`tx_base_size` (Core's size and
    stripped size), input and output counts, the extended-format flags byte (bit 0x01:
    witness, 0x08: Litecoin HogEx) and `tx_mweb_size` (Litecoin: MWEB bytes in the size, as
    `Transaction.mweb_size`). Per output (row k, transactions in order, outputs in
    order): value, script offset and length in `raw`, type code (`SCRIPT_TYPES`), the index of
    its transaction, and `addresses[k]`. Per input (row j): where its previous txid is in `raw`,
    the previous output index, its transaction, sequence, scriptSig and serialized witness stack
    (item count included; length 0 without witness) as offset and length in `raw`.
    """

    spec: ChainSpec
    raw: bytes
    hash: BlockHash
    version: int
    prev_hash: BlockHash
    merkle_root: bytes
    time: int
    bits: int
    nonce: int
    size: int
    stripped_size: int
    auxpow_end: int | None  # Dogecoin: end of the AuxPoW proof that follows the header
    mweb_offset: int | None  # Litecoin: where the opaque MWEB extension block starts
    txids: NDArray[np.uint8]
    wtxids: NDArray[np.uint8]
    tx_offset: NDArray[np.uint32]
    tx_version: NDArray[np.int32]
    tx_lock_time: NDArray[np.uint32]
    tx_size: NDArray[np.uint32]
    tx_base_size: NDArray[np.uint32]
    tx_n_in: NDArray[np.uint32]
    tx_n_out: NDArray[np.uint32]
    tx_flags: NDArray[np.uint8]
    tx_mweb_size: NDArray[np.uint32]
    out_value: NDArray[np.int64]
    out_script_offset: NDArray[np.uint32]
    out_script_len: NDArray[np.uint32]
    out_type: NDArray[np.uint8]
    out_tx: NDArray[np.uint32]
    addresses: list[str | None]
    in_prev_txid_offset: NDArray[np.uint32]
    in_prev_vout: NDArray[np.uint32]
    in_tx: NDArray[np.uint32]
    in_sequence: NDArray[np.uint32]
    in_script_offset: NDArray[np.uint32]
    in_script_len: NDArray[np.uint32]
    in_witness_offset: NDArray[np.uint32]
    in_witness_len: NDArray[np.uint32]
    #: False when decoded with ``wtxids=False``: `wtxids` then holds zeros, not the wtxids
    has_wtxids: bool = True

    # ----------------------------------------------------------------------------- counts

    @property
    def n_tx(self) -> int:
        return len(self.tx_size)

    @property
    def n_outputs(self) -> int:
        return len(self.out_value)

    @property
    def n_inputs(self) -> int:
        return len(self.in_prev_vout)

    @property
    def header(self) -> BlockHeader:
        return decode_header(self.raw)

    @property
    def mweb_size(self) -> int:
        """Bytes of Litecoin MWEB data in `size` (as `Block.mweb_size`)."""
        if self.mweb_offset is None:
            return 0
        return self.size - self.mweb_offset + int(self.tx_mweb_size.sum())

    @property
    def weight(self) -> int:
        """BIP 141 weight; Litecoin's ``GetBlockWeight`` leaves the MWEB bytes out."""
        return self.stripped_size * 3 + self.size - self.mweb_size

    @property
    def tx_first_output(self) -> NDArray[np.int64]:
        """Row of each transaction's first output (its outputs are the next `tx_n_out` rows)."""
        return _starts(self.tx_n_out)

    @property
    def tx_first_input(self) -> NDArray[np.int64]:
        """Row of each transaction's first input."""
        return _starts(self.tx_n_in)

    # ------------------------------------------------------------------------ single items

    def txid(self, i: int) -> Txid:
        return Txid(self.txids[i].tobytes())

    def wtxid(self, i: int) -> Wtxid:
        if not self.has_wtxids:
            raise ValueError("this block was decoded without its wtxids (wtxids=False); "
                             "decode it with wtxids=True to read them")
        return Wtxid(self.wtxids[i].tobytes())

    def txid_list(self) -> list[Txid]:
        flat = self.txids.tobytes()
        return [Txid(flat[i : i + 32]) for i in range(0, len(flat), 32)]

    def script_pubkey(self, k: int) -> bytes:
        start = int(self.out_script_offset[k])
        return self.raw[start : start + int(self.out_script_len[k])]

    def script_type(self, k: int) -> ScriptType:
        return SCRIPT_TYPES[int(self.out_type[k])]

    def prev_txid(self, j: int) -> Txid:
        start = int(self.in_prev_txid_offset[j])
        return Txid(self.raw[start : start + 32])

    def script_sig(self, j: int) -> bytes:
        start = int(self.in_script_offset[j])
        return self.raw[start : start + int(self.in_script_len[j])]

    def witness(self, j: int) -> tuple[bytes, ...]:
        """Input j's witness stack (empty without witness)."""
        start, length = int(self.in_witness_offset[j]), int(self.in_witness_len[j])
        if not length:
            return ()
        r = ByteReader(self.raw, start, start + length)
        return tuple(r.var_bytes("witness item") for _ in range(r.compact_size("witness item")))

    def is_coinbase(self, i: int) -> bool:
        """Transaction i spends only the null prevout (O(n_tx): use the columns in bulk)."""
        if int(self.tx_n_in[i]) != 1:
            return False
        j = int(self.tx_first_input[i])
        return int(self.in_prev_vout[j]) == 0xFFFFFFFF and self.prev_txid(j) == bytes(32)

    # ------------------------------------------------------------------------- integrity

    @property
    def computed_merkle_root(self) -> bytes:
        """Merkle root of the txids (internal order), as the header should carry it."""
        flat = self.txids.tobytes()
        if _SPEEDUPS is not None:
            return _SPEEDUPS.merkle_root(flat)
        return merkle_root([flat[i : i + 32] for i in range(0, len(flat), 32)])

    @property
    def merkle_root_valid(self) -> bool:
        return self.computed_merkle_root == self.merkle_root


def _starts(counts: NDArray[np.uint32]) -> NDArray[np.int64]:
    out = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], dtype=np.int64, out=out[1:])
    return out


def _as_bytes(raw: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(raw, str):
        try:
            return bytes.fromhex(raw.strip())
        except ValueError as exc:
            raise DecodeError(f"block hex is not valid hexadecimal: {exc}", 0) from exc
    return raw if isinstance(raw, bytes) else bytes(raw)


def _make(spec: ChainSpec, raw: bytes, f: dict[str, Any], *,
          has_wtxids: bool = True) -> BlockColumns:
    header = raw[:80]
    txids = np.frombuffer(f["txids"], dtype=np.uint8).reshape(-1, 32)
    wtxids = np.frombuffer(f["wtxids"], dtype=np.uint8).reshape(-1, 32)
    cols = {name: np.frombuffer(f[name], dtype=dtype) for name, dtype in _DTYPES.items()}
    return BlockColumns(
        spec=spec,
        raw=raw,
        hash=BlockHash(f["block_hash"]),
        version=int.from_bytes(header[0:4], "little", signed=True),
        prev_hash=BlockHash(header[4:36]),
        merkle_root=header[36:68],
        time=int.from_bytes(header[68:72], "little"),
        bits=int.from_bytes(header[72:76], "little"),
        nonce=int.from_bytes(header[76:80], "little"),
        size=f["size"],
        stripped_size=f["stripped_size"],
        auxpow_end=f["auxpow_end"],
        mweb_offset=f["mweb_offset"],
        txids=txids,
        wtxids=wtxids,
        addresses=f["addresses"],
        has_wtxids=has_wtxids,
        **cols,
    )


def _scan_flags(spec: ChainSpec) -> int:
    return (
        (_SCAN_SEGWIT if spec.has_segwit else 0)
        | (_SCAN_MWEB if spec.has_mweb else 0)
        | (_SCAN_AUXPOW if spec.has_auxpow else 0)
    )


def decode_block_columns(
    raw: bytes | bytearray | memoryview | str,
    chain: str | ChainSpec = "bitcoin",
    network: str = "mainnet",
    *,
    use_speedups: bool | None = None,
    wtxids: bool = True,
) -> BlockColumns:
    """Decode one serialized block (bytes or hex) into columns.

    `use_speedups`: None uses the compiled core when it is built; False forces the pure-Python
    path (the reference the core must match); True requires the compiled core. Raises
    DecodeError (with the byte offset) on truncated, oversized or garbage input, exactly as
    `decode_block` does. `wtxids=False` lets the compiled core skip the witness txids, which
    the store does not keep: a segwit transaction is then hashed once instead of twice
    (`has_wtxids` says which; the pure-Python path always computes them).
    """
    spec = get_chain(chain, network)
    data = _as_bytes(raw)
    if use_speedups is True and _SPEEDUPS is None:
        raise CointrailError(
            "cointrail's compiled decoder is not built; build it with "
            "`pip install -e .` (needs gcc and the OpenSSL headers, libssl-dev)"
        )
    if _SPEEDUPS is not None and use_speedups is not False:
        try:
            result = _SPEEDUPS.scan_block(
                data, _scan_flags(spec) | (0 if wtxids else _SCAN_NO_WTXIDS),
                spec.p2pkh_prefix, spec.p2sh_prefix,
                spec.bech32_hrp, spec.cashaddr_prefix, spec.key,
            )  # fmt: skip
        except _SPEEDUPS.ScanError as exc:
            message, offset = exc.args
            raise DecodeError(message, offset) from None
        if result is not None:  # None: too large for the core's 32-bit offsets
            return _make(spec, data, dict(zip(_FIELDS, result, strict=True)),
                         has_wtxids=wtxids)
    return columns_from_block(decode_block(data, spec), data, spec)


def columns_from_block(block: Block, raw: bytes, spec: ChainSpec) -> BlockColumns:
    """The columns of a block decoded by `decode_block` from `raw` (the pure-Python path).

    Offsets are recomputed from the decoded fields, which `encode_block` reproduces byte for
    byte, so they index `raw` exactly.
    """
    ints: dict[str, list[int]] = {name: [] for name in _DTYPES}
    addresses: list[str | None] = []
    txs = block.transactions
    pos = 80 + (len(block.auxpow) if block.auxpow is not None else 0)
    pos += len(encode_compact_size(len(txs)))
    for ti, tx in enumerate(txs):
        ints["tx_offset"].append(pos)
        ints["tx_version"].append(tx.version)
        ints["tx_lock_time"].append(tx.lock_time)
        ints["tx_size"].append(tx.size)
        ints["tx_base_size"].append(tx.base_size)
        ints["tx_n_in"].append(len(tx.inputs))
        ints["tx_n_out"].append(len(tx.outputs))
        ints["tx_flags"].append(tx.flags)
        ints["tx_mweb_size"].append(tx.mweb_size)
        p = pos + 4 + (2 if tx.flags else 0) + len(encode_compact_size(len(tx.inputs)))
        for txin in tx.inputs:
            ints["in_prev_txid_offset"].append(p)
            ints["in_prev_vout"].append(txin.prev_vout)
            ints["in_tx"].append(ti)
            ints["in_sequence"].append(txin.sequence)
            p += 36 + len(encode_compact_size(len(txin.script_sig)))
            ints["in_script_offset"].append(p)
            ints["in_script_len"].append(len(txin.script_sig))
            p += len(txin.script_sig) + 4
        p += len(encode_compact_size(len(tx.outputs)))
        for out in tx.outputs:
            p += 8 + len(encode_compact_size(len(out.script_pubkey)))
            ints["out_value"].append(out.value)
            ints["out_script_offset"].append(p)
            ints["out_script_len"].append(len(out.script_pubkey))
            ints["out_type"].append(_TYPE_CODE[out.script_type])
            ints["out_tx"].append(ti)
            addresses.append(out.address)
            p += len(out.script_pubkey)
        for txin in tx.inputs:
            if tx.flags & WITNESS_FLAG:
                ints["in_witness_offset"].append(p)
                start = p
                p += len(encode_compact_size(len(txin.witness)))
                p += sum(len(encode_compact_size(len(w))) + len(w) for w in txin.witness)
                ints["in_witness_len"].append(p - start)
            else:
                ints["in_witness_offset"].append(0)
                ints["in_witness_len"].append(0)
        pos += tx.size
    fields: dict[str, Any] = {
        name: np.array(values, dtype=_DTYPES[name]).tobytes() for name, values in ints.items()
    }
    mweb_offset = None if block.mweb_data is None else len(raw) - len(block.mweb_data)
    fields.update(
        block_hash=bytes(block.hash),
        size=block.size,
        stripped_size=block.stripped_size,
        auxpow_end=None if block.auxpow is None else 80 + len(block.auxpow),
        mweb_offset=mweb_offset,
        txids=b"".join(tx.txid for tx in txs),
        wtxids=b"".join(tx.wtxid for tx in txs),
        addresses=addresses,
    )
    return _make(spec, raw, fields)
