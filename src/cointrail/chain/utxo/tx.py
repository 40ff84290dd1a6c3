"""Transactions of the Bitcoin family: the wire format field by field (BIP 141 / 144 segwit,
Litecoin's MWEB flag), txid / wtxid, sizes and weight.

Invariant: ``encode_tx(decode_tx(raw)) == raw`` for every transaction that decodes, and the ids
are computed from the exact bytes that were read.
"""

from __future__ import annotations

from dataclasses import dataclass

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo import mweb
from cointrail.chain.utxo.address import encode_address
from cointrail.chain.utxo.hashes import Txid, Wtxid, hash160, sha256d
from cointrail.chain.utxo.reader import ByteReader
from cointrail.chain.utxo.script import ScriptType, classify_script
from cointrail.errors import DecodeError

NULL_TXID = Txid(b"\x00" * 32)
COINBASE_VOUT = 0xFFFFFFFF
WITNESS_FLAG = 0x01
MWEB_FLAG = 0x08  # Litecoin: transaction carries MWEB data (or is the HogEx)


@dataclass(frozen=True, slots=True)
class TxIn:
    """One input. `prev_txid`/`prev_vout` ("prevout") name the output it spends."""

    prev_txid: Txid
    prev_vout: int
    script_sig: bytes  # "scriptSig"
    sequence: int  # "nSequence"
    witness: tuple[bytes, ...] = ()  # "scriptWitness.stack" (BIP 141)

    @property
    def is_coinbase(self) -> bool:
        return self.prev_vout == COINBASE_VOUT and self.prev_txid == NULL_TXID


@dataclass(frozen=True, slots=True)
class TxOut:
    """One output. `value` is in the chain's smallest unit (satoshi), "nValue".

    `address` is the address the output is attributed to: its own address, or for ``pubkey``
    outputs the p2pkh address of the key (see script.py); None when there is none.
    """

    n: int
    value: int
    script_pubkey: bytes  # "scriptPubKey"
    script_type: ScriptType
    address: str | None


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded transaction. Sizes follow Bitcoin Core: `size` is the full serialization,
    `base_size` the one without witness (and without Litecoin MWEB data: the txid preimage);
    weight and vsize per BIP 141, where Litecoin leaves MWEB bytes (`mweb_size`) out."""

    version: int  # "nVersion"
    inputs: tuple[TxIn, ...]  # "vin"
    outputs: tuple[TxOut, ...]  # "vout"
    lock_time: int  # "nLockTime"
    txid: Txid
    wtxid: Wtxid
    size: int
    base_size: int
    flags: int = 0  # extended-format flags byte (0: legacy format)
    mweb_data: bytes | None = None  # Litecoin: raw MWEB tx body, b"" for the HogEx
    mweb_size: int = 0  # Litecoin: bytes of MWEB data in `size` (flag, marker, presence, body)
    mweb_weight: int | None = None  # Litecoin: weight by GetTransactionWeight for an MWEB body

    @property
    def has_witness(self) -> bool:
        return bool(self.flags & WITNESS_FLAG)

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_coinbase

    @property
    def is_hogex(self) -> bool:
        """Litecoin's HogEx ("integrating") transaction that closes an MWEB block."""
        return self.mweb_data == b""

    @property
    def weight(self) -> int:
        """BIP 141 weight; Litecoin's ``GetTransactionWeight`` serializes without MWEB and, for
        a transaction with an MWEB body, counts its peg-ins and peg-outs (see mweb.py)."""
        if self.mweb_weight is not None:
            return self.mweb_weight
        return self.base_size * 3 + self.size - self.mweb_size

    @property
    def vsize(self) -> int:
        return (self.weight + 3) // 4

    @property
    def output_value(self) -> int:
        return sum(o.value for o in self.outputs)


def attributed_address(spec: ChainSpec, script_type: ScriptType, payload: bytes) -> str | None:
    """The address an output is attributed to (p2pk → p2pkh of its key; see script.py)."""
    if script_type is ScriptType.PUBKEY:
        return encode_address(spec, ScriptType.PUBKEYHASH.value, hash160(payload))
    return encode_address(spec, script_type.value, payload)


def make_output(spec: ChainSpec, n: int, value: int, script: bytes) -> TxOut:
    script_type, payload = classify_script(script, spec.has_mweb)
    return TxOut(n, value, script, script_type, attributed_address(spec, script_type, payload))


def parse_tx(r: ByteReader, spec: ChainSpec, standalone: bool = False) -> Transaction:
    """Read one transaction at the reader's position (Core's ``UnserializeTransaction``).

    `standalone` is True when the transaction is the whole buffer (``decoderawtransaction``);
    only then may it carry an MWEB body (an ``mw::Transaction``, parsed by mweb.py).
    """
    data = r.data
    start = r.pos
    version = r.i32("transaction version")
    flags = 0
    if r.remaining >= 2 and data[r.pos] == 0 and spec.has_segwit:
        r.pos += 1
        flags_at = r.pos
        flags = r.u8("extended-format flags")
        if flags == 0:
            raise r.fail("transaction has no inputs (extended-format flags byte is zero)", flags_at)
        allowed = WITNESS_FLAG | (MWEB_FLAG if spec.has_mweb else 0)
        if flags & ~allowed:
            raise r.fail(
                f"unknown transaction flags 0x{flags:02x} for {spec.key}; "
                "the data may be from another chain (try --chain)",
                flags_at,
            )
    body_start = r.pos
    n_in = r.count("input", 41)
    inputs_raw = []
    for _ in range(n_in):
        prev = r.read(32, "previous txid")
        vout = r.u32("previous output index")
        script_sig = r.var_bytes("scriptSig")
        seq = r.u32("sequence")
        inputs_raw.append((prev, vout, script_sig, seq))
    n_out = r.count("output", 9)
    outputs = []
    for i in range(n_out):
        value = r.i64("output value")
        script = r.var_bytes("scriptPubKey")
        outputs.append(make_output(spec, i, value, script))
    body_end = r.pos
    witnesses: list[tuple[bytes, ...]] = [()] * n_in
    if flags & WITNESS_FLAG:
        witness_at = r.pos
        for i in range(n_in):
            n_items = r.count("witness item", 1)
            witnesses[i] = tuple(r.var_bytes("witness item") for _ in range(n_items))
        if not any(witnesses):
            raise r.fail("superfluous witness record: every witness stack is empty", witness_at)
    witness_end = r.pos
    mweb_data: bytes | None = None
    mweb_tx: mweb.MwebTransaction | None = None
    if flags & MWEB_FLAG:
        present_at = r.pos
        present = r.u8("MWEB presence byte")
        if present == 0:
            if not outputs:
                raise r.fail("HogEx transaction without outputs", present_at)
            mweb_data = b""
        elif present == 1 and standalone:
            body_at = r.pos
            mweb_tx = mweb.parse_mweb_tx(r)
            mweb_data = bytes(data[body_at : r.pos])
        else:
            raise r.fail(
                "transaction carries an MWEB body inside a block; cointrail reads MWEB "
                "bodies only in standalone transactions",
                present_at,
            )
    mweb_end = r.pos
    lock_time = r.u32("lock time")
    end = r.pos
    view = data[start:end] if isinstance(data, bytes) else bytes(data[start:end])
    rel = start
    mweb_size = 0
    if flags:
        stripped = view[:4] + view[body_start - rel : body_end - rel] + view[-4:]
        txid = Txid(sha256d(stripped))
        if flags & WITNESS_FLAG:
            no_mweb = (
                view[:4] + b"\x00\x01" + view[body_start - rel : witness_end - rel] + view[-4:]
            )
            wtxid = Wtxid(sha256d(no_mweb))
        else:
            wtxid = Wtxid(txid)
        base_size = len(stripped)
        if flags & MWEB_FLAG:
            # without MWEB the presence byte and body go, and with no witness also marker+flag
            mweb_size = (mweb_end - witness_end) + (0 if flags & WITNESS_FLAG else 2)
    else:
        txid = Txid(sha256d(view))
        wtxid = Wtxid(txid)
        base_size = end - start
    weight: int | None = None
    if mweb_tx is not None:
        mweb_only = not inputs_raw and not outputs
        if mweb_only:  # Litecoin Core 0.21: txid and wtxid are the first kernel's id
            txid = mweb_tx.txid
            wtxid = Wtxid(txid)
        canonical_weight = base_size * 3 + (end - start) - mweb_size
        weight = mweb.mweb_weight(mweb_tx, canonical_weight, mweb_only)
    inputs = tuple(
        TxIn(Txid(p), v, s, q, w) for (p, v, s, q), w in zip(inputs_raw, witnesses, strict=True)
    )
    return Transaction(
        version, inputs, tuple(outputs), lock_time, txid, wtxid, end - start, base_size,
        flags, mweb_data, mweb_size, weight,
    )


def decode_tx(
    raw: bytes | bytearray | memoryview | str,
    chain: str | ChainSpec = "bitcoin",
    network: str = "mainnet",
) -> Transaction:
    """Decode one serialized transaction (bytes or hex) that spans the whole input.

    Raises DecodeError (with the byte offset) on truncated, oversized or garbage input.
    """
    spec = get_chain(chain, network)
    if isinstance(raw, str):
        try:
            raw = bytes.fromhex(raw.strip())
        except ValueError as exc:
            raise DecodeError(f"transaction hex is not valid hexadecimal: {exc}", 0) from exc
    data = bytes(raw)
    r = ByteReader(data)
    tx = parse_tx(r, spec, standalone=True)
    if r.remaining:
        raise r.fail(f"{r.remaining} trailing bytes after the transaction")
    return tx


def _compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def encode_compact_size(n: int) -> bytes:
    """CompactSize encoding of `n` (Core's ``WriteCompactSize``)."""
    return _compact_size(n)


def encode_tx(tx: Transaction, include_witness: bool = True) -> bytes:
    """Serialize a transaction; ``include_witness=False`` gives the txid preimage."""
    flags = tx.flags if include_witness else 0
    parts = [tx.version.to_bytes(4, "little", signed=True)]
    if flags:
        parts.append(b"\x00" + bytes([flags]))
    parts.append(_compact_size(len(tx.inputs)))
    for i in tx.inputs:
        parts += [
            i.prev_txid, i.prev_vout.to_bytes(4, "little"),
            _compact_size(len(i.script_sig)), i.script_sig, i.sequence.to_bytes(4, "little"),
        ]
    parts.append(_compact_size(len(tx.outputs)))
    for o in tx.outputs:
        parts += [
            o.value.to_bytes(8, "little", signed=True),
            _compact_size(len(o.script_pubkey)), o.script_pubkey,
        ]
    if flags & WITNESS_FLAG:
        for i in tx.inputs:
            parts.append(_compact_size(len(i.witness)))
            for item in i.witness:
                parts += [_compact_size(len(item)), item]
    if flags & MWEB_FLAG:
        parts.append(b"\x00" if not tx.mweb_data else b"\x01" + tx.mweb_data)
    parts.append(tx.lock_time.to_bytes(4, "little"))
    return b"".join(parts)
