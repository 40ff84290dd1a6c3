"""Litecoin MWEB transactions (``mw::Transaction``): the wire format, ids and weight.

A standalone (mempool) Litecoin transaction with the MWEB flag and presence byte 1 carries a
serialized ``mw::Transaction``:

    kernel offset (32) | stealth offset (32) | inputs | outputs | kernels

each list a CompactSize count and its items. Optional fields follow feature bits:

- input: features (u8), spent output id (32), commitment (33), output pubkey (33),
  [0x01: input pubkey (33)], [0x02: extra data (bytes)], signature (64)
- output: commitment (33), sender pubkey (33), receiver pubkey (33), message: features (u8),
  [0x01: key-exchange pubkey (33), view tag (u8), masked value (u64), masked nonce (16)],
  [0x02: extra data (bytes)]; range proof (675), signature (64)
- kernel: features (u8), [0x01: fee (VarInt)], [0x02: peg-in amount (VarInt)],
  [0x04: peg-outs: count, each VarInt amount + scriptPubKey], [0x08: lock height (VarInt)],
  [0x10: stealth excess (33)], [0x20: extra data (bytes)], excess (33), signature (64)

VarInt is Bitcoin Core's base-128 ``VarInt`` (serialize.h), not CompactSize. MWEB hashes are
BLAKE3 (libmw ``Hasher``); ids are kept in the byte order the RPC prints them
(``kernel_id``, ``output_id``), i.e. ``.hex()`` matches the node.

Litecoin Core 0.21.x gives an MWEB-only transaction (no canonical inputs or outputs) the id of
its first kernel as txid and wtxid (checked against 0.21.2; Litecoin's development branch hashes
the whole ``mw::Transaction`` instead), and its ``GetTransactionWeight`` counts peg-outs as
canonical outputs and peg-ins as canonical inputs (consensus/validation.h); see `mweb_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass

from blake3 import blake3

from cointrail.chain.utxo.hashes import Txid
from cointrail.chain.utxo.reader import ByteReader
from cointrail.errors import DecodeError

HASH_SIZE = 32
BLIND_SIZE = 32  # BlindingFactor
COMMITMENT_SIZE = 33
PUBKEY_SIZE = 33
SIGNATURE_SIZE = 64
RANGE_PROOF_SIZE = 675
MASKED_NONCE_SIZE = 16

# input feature bits
INPUT_STEALTH_KEY = 0x01
INPUT_EXTRA_DATA = 0x02
# output message feature bits
OUTPUT_STANDARD_FIELDS = 0x01
OUTPUT_EXTRA_DATA = 0x02
# kernel feature bits
KERNEL_FEE = 0x01
KERNEL_PEGIN = 0x02
KERNEL_PEGOUT = 0x04
KERNEL_HEIGHT_LOCK = 0x08
KERNEL_STEALTH_EXCESS = 0x10
KERNEL_EXTRA_DATA = 0x20

# smallest serialized items, for bounds-checking counts before reading
_MIN_INPUT = 1 + HASH_SIZE + COMMITMENT_SIZE + PUBKEY_SIZE + SIGNATURE_SIZE
_MIN_OUTPUT = COMMITMENT_SIZE + 2 * PUBKEY_SIZE + 1 + RANGE_PROOF_SIZE + SIGNATURE_SIZE
_MIN_KERNEL = 1 + COMMITMENT_SIZE + SIGNATURE_SIZE
_MIN_PEGOUT = 2  # VarInt amount + CompactSize script length

_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1

# mw/consensus/Params.h
BYTES_PER_WEIGHT = 42
BASE_KERNEL_WEIGHT = 2
KERNEL_WITH_STEALTH_WEIGHT = 3
BASE_OUTPUT_WEIGHT = 17
STANDARD_OUTPUT_WEIGHT = 18
WITNESS_SCALE_FACTOR = 4
#: consensus/validation.h: a peg-in counts as one canonical input (41 bytes) × 4.
PEGIN_INPUT_WEIGHT = 41 * WITNESS_SCALE_FACTOR


@dataclass(frozen=True, slots=True)
class PegOut:
    """Coins leaving the MWEB to a canonical scriptPubKey (``PegOutCoin``)."""

    value: int  # satoshi
    script_pubkey: bytes


@dataclass(frozen=True, slots=True)
class MwebInput:
    """An MWEB input: spends the MWEB output `output_id`."""

    features: int
    output_id: bytes  # id of the spent output (RPC order)
    commitment: bytes
    output_pubkey: bytes
    input_pubkey: bytes | None
    extra_data: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class MwebOutput:
    """An MWEB output; `output_id` is the id the node prints (RPC order)."""

    output_id: bytes
    commitment: bytes
    sender_pubkey: bytes
    receiver_pubkey: bytes
    features: int  # output message features
    key_exchange_pubkey: bytes | None
    view_tag: int | None
    masked_value: int | None
    masked_nonce: bytes | None
    extra_data: bytes
    range_proof: bytes
    signature: bytes

    @property
    def has_standard_fields(self) -> bool:
        return bool(self.features & OUTPUT_STANDARD_FIELDS)


@dataclass(frozen=True, slots=True)
class MwebKernel:
    """An MWEB kernel; `kernel_id` is the id the node prints (RPC order)."""

    kernel_id: bytes
    features: int
    fee: int | None
    pegin: int | None  # peg-in amount, satoshi
    pegouts: tuple[PegOut, ...]
    lock_height: int | None
    stealth_excess: bytes | None
    extra_data: bytes
    excess: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class MwebTransaction:
    """A decoded ``mw::Transaction``; `size` is its serialized length."""

    kernel_offset: bytes
    stealth_offset: bytes
    inputs: tuple[MwebInput, ...]
    outputs: tuple[MwebOutput, ...]
    kernels: tuple[MwebKernel, ...]
    size: int

    @property
    def txid(self) -> Txid:
        """The txid Litecoin Core 0.21 gives an MWEB-only transaction: its first kernel's id."""
        return Txid(self.kernels[0].kernel_id)

    @property
    def fee(self) -> int:
        return sum(k.fee or 0 for k in self.kernels)

    @property
    def pegin_amount(self) -> int:
        return sum(k.pegin or 0 for k in self.kernels)

    @property
    def pegin_count(self) -> int:
        """Kernels with the peg-in feature (``GetPegIns().size()``)."""
        return sum(1 for k in self.kernels if k.pegin is not None)

    @property
    def pegouts(self) -> tuple[PegOut, ...]:
        return tuple(p for k in self.kernels for p in k.pegouts)

    @property
    def lock_height(self) -> int:
        return max((k.lock_height or 0 for k in self.kernels), default=0)

    @property
    def body_weight(self) -> int:
        """MWEB weight units (libmw ``Weight::Calculate``), the extension block's own measure;
        not BIP 141 weight."""
        weight = sum(_extra_weight(len(i.extra_data)) for i in self.inputs)
        for k in self.kernels:
            weight += KERNEL_WITH_STEALTH_WEIGHT if k.stealth_excess else BASE_KERNEL_WEIGHT
            weight += sum(_extra_weight(len(p.script_pubkey)) for p in k.pegouts)
            weight += _extra_weight(len(k.extra_data))
        for o in self.outputs:
            weight += STANDARD_OUTPUT_WEIGHT if o.has_standard_fields else BASE_OUTPUT_WEIGHT
            weight += _extra_weight(len(o.extra_data))
        return weight


def _extra_weight(n_bytes: int) -> int:
    return (n_bytes + BYTES_PER_WEIGHT - 1) // BYTES_PER_WEIGHT


def _compact_size_len(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9


def _blake3(*parts: bytes) -> bytes:
    h = blake3()
    for part in parts:
        h.update(part)
    return h.digest()


def read_varint(r: ByteReader, what: str, maximum: int = _INT64_MAX) -> int:
    """Bitcoin Core's ``ReadVarInt`` (MSB base-128, each continuation adds one)."""
    start = r.pos
    n = 0
    while True:
        byte = r.u8(what)
        if n > maximum >> 7:
            raise DecodeError(f"{what} VarInt is too large", start)
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return n
        if n == maximum:
            raise DecodeError(f"{what} VarInt is too large", start)
        n += 1


def _read_input(r: ByteReader) -> MwebInput:
    features = r.u8("MWEB input features")
    output_id = r.read(HASH_SIZE, "MWEB input output id")
    commitment = r.read(COMMITMENT_SIZE, "MWEB input commitment")
    output_pubkey = r.read(PUBKEY_SIZE, "MWEB input output pubkey")
    input_pubkey = None
    if features & INPUT_STEALTH_KEY:
        input_pubkey = r.read(PUBKEY_SIZE, "MWEB input pubkey")
    extra = r.var_bytes("MWEB input extra data") if features & INPUT_EXTRA_DATA else b""
    signature = r.read(SIGNATURE_SIZE, "MWEB input signature")
    return MwebInput(
        features, output_id, commitment, output_pubkey, input_pubkey, extra, signature
    )


def _read_output(r: ByteReader) -> MwebOutput:
    commitment = r.read(COMMITMENT_SIZE, "MWEB output commitment")
    sender = r.read(PUBKEY_SIZE, "MWEB output sender pubkey")
    receiver = r.read(PUBKEY_SIZE, "MWEB output receiver pubkey")
    message_start = r.pos
    features = r.u8("MWEB output features")
    key_exchange = view_tag = masked_value = masked_nonce = None
    if features & OUTPUT_STANDARD_FIELDS:
        key_exchange = r.read(PUBKEY_SIZE, "MWEB output key-exchange pubkey")
        view_tag = r.u8("MWEB output view tag")
        masked_value = r.u64("MWEB output masked value")
        masked_nonce = r.read(MASKED_NONCE_SIZE, "MWEB output masked nonce")
    extra = r.var_bytes("MWEB output extra data") if features & OUTPUT_EXTRA_DATA else b""
    message = bytes(r.data[message_start : r.pos])
    proof = r.read(RANGE_PROOF_SIZE, "MWEB output range proof")
    signature = r.read(SIGNATURE_SIZE, "MWEB output signature")
    # the id hashes the message and the proof by their hashes (Output::ComputeHash)
    output_id = _blake3(commitment, sender, receiver, _blake3(message), _blake3(proof), signature)
    return MwebOutput(
        output_id, commitment, sender, receiver, features, key_exchange, view_tag,
        masked_value, masked_nonce, extra, proof, signature,
    )


def _read_kernel(r: ByteReader) -> MwebKernel:
    data = r.data
    start = r.pos
    features = r.u8("MWEB kernel features")
    # the kernel id hashes Kernel::Serialize, which leaves out an empty peg-out list or empty
    # extra data even when their feature bit is set; `dropped` are the byte ranges left out
    dropped: list[tuple[int, int]] = []
    fee = read_varint(r, "MWEB kernel fee") if features & KERNEL_FEE else None
    pegin = read_varint(r, "MWEB kernel peg-in amount") if features & KERNEL_PEGIN else None
    pegouts: list[PegOut] = []
    if features & KERNEL_PEGOUT:
        at = r.pos
        for _ in range(r.count("MWEB peg-out", _MIN_PEGOUT)):
            value = read_varint(r, "MWEB peg-out amount")
            pegouts.append(PegOut(value, r.var_bytes("MWEB peg-out scriptPubKey")))
        if not pegouts:
            dropped.append((at, r.pos))
    lock_height = None
    if features & KERNEL_HEIGHT_LOCK:
        lock_height = read_varint(r, "MWEB kernel lock height", _INT32_MAX)
    stealth = None
    if features & KERNEL_STEALTH_EXCESS:
        stealth = r.read(PUBKEY_SIZE, "MWEB kernel stealth excess")
    extra = b""
    if features & KERNEL_EXTRA_DATA:
        at = r.pos
        extra = r.var_bytes("MWEB kernel extra data")
        if not extra:
            dropped.append((at, r.pos))
    excess = r.read(COMMITMENT_SIZE, "MWEB kernel excess")
    signature = r.read(SIGNATURE_SIZE, "MWEB kernel signature")
    h = blake3()
    pos = start
    for a, b in dropped:
        h.update(data[pos:a])
        pos = b
    h.update(data[pos : r.pos])
    return MwebKernel(
        h.digest(), features, fee, pegin, tuple(pegouts), lock_height, stealth, extra,
        excess, signature,
    )


def parse_mweb_tx(r: ByteReader) -> MwebTransaction:
    """Read one ``mw::Transaction`` at the reader's position (after the presence byte)."""
    start = r.pos
    kernel_offset = r.read(BLIND_SIZE, "MWEB kernel offset")
    stealth_offset = r.read(BLIND_SIZE, "MWEB stealth offset")
    inputs = tuple(_read_input(r) for _ in range(r.count("MWEB input", _MIN_INPUT)))
    outputs = tuple(_read_output(r) for _ in range(r.count("MWEB output", _MIN_OUTPUT)))
    kernels_at = r.pos
    kernels = tuple(_read_kernel(r) for _ in range(r.count("MWEB kernel", _MIN_KERNEL)))
    if not kernels:
        raise DecodeError("MWEB transaction has no kernel (Litecoin requires one)", kernels_at)
    return MwebTransaction(
        kernel_offset, stealth_offset, inputs, outputs, kernels, r.pos - start
    )


def decode_mweb_tx(body: bytes | memoryview) -> MwebTransaction:
    """Decode a serialized ``mw::Transaction`` that spans the whole of `body`.

    Raises DecodeError (offset relative to `body`) on truncated, oversized or trailing data.
    """
    r = ByteReader(body)
    tx = parse_mweb_tx(r)
    if r.remaining:
        raise r.fail(f"{r.remaining} trailing bytes after the MWEB transaction")
    return tx


def mweb_tx_id(body: bytes | memoryview | MwebTransaction) -> Txid:
    """The txid (and wtxid) Litecoin Core 0.21 assigns to an MWEB-only transaction whose MWEB
    body is `body`: the BLAKE3 id of its first kernel, in internal byte order (``str()`` prints
    what ``getrawtransaction`` prints)."""
    tx = body if isinstance(body, MwebTransaction) else decode_mweb_tx(body)
    return tx.txid


def pegout_weight(mweb: MwebTransaction) -> int:
    """Weight of the peg-outs, each counted as a canonical output (``CTxOut``) × 4."""
    return WITNESS_SCALE_FACTOR * sum(
        8 + _compact_size_len(len(p.script_pubkey)) + len(p.script_pubkey) for p in mweb.pegouts
    )


def mweb_weight(mweb: MwebTransaction, canonical_weight: int, mweb_only: bool) -> int:
    """Litecoin's ``GetTransactionWeight`` for a transaction that carries `mweb`.

    `canonical_weight` is the BIP 141 weight of the transaction serialized without MWEB data;
    `mweb_only` is True when it has no canonical inputs and no canonical outputs. An MWEB-only
    transaction weighs only its peg-outs; any other adds its peg-outs and 164 (a 41-byte input
    × 4) per peg-in kernel to `canonical_weight`.
    """
    if mweb_only:
        return pegout_weight(mweb)
    return canonical_weight + pegout_weight(mweb) + PEGIN_INPUT_WEIGHT * mweb.pegin_count
