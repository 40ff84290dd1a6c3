"""Blocks of the Bitcoin family: the 80-byte header, Dogecoin's AuxPoW proof, the
transactions, and Litecoin's MWEB extension block.

Invariant: a decoded block's `computed_merkle_root` is recomputed from the txids we hashed, so
``block.merkle_root_valid`` proves the transaction bytes were read exactly.

Litecoin MWEB (LIP 0002/0003): when the last transaction is the HogEx, the block ends with the
serialized MWEB block. cointrail keeps it as opaque bytes (`Block.mweb_data`) and does not parse
it: the canonical transactions, txids and merkle root do not depend on it, and the MWEB outputs
are confidential (no addresses or amounts to analyse).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo.hashes import BlockHash, merkle_root, sha256d
from cointrail.chain.utxo.reader import ByteReader
from cointrail.chain.utxo.tx import Transaction, encode_compact_size, encode_tx, parse_tx
from cointrail.errors import DecodeError

HEADER_SIZE = 80
AUXPOW_VERSION_FLAG = 1 << 8  # Dogecoin: header is followed by an AuxPoW proof


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The 80-byte block header."""

    version: int  # "nVersion"
    prev_hash: BlockHash  # "hashPrevBlock"
    merkle_root: bytes  # "hashMerkleRoot", internal order
    time: int  # "nTime", Unix seconds
    bits: int  # "nBits", compact target
    nonce: int  # "nNonce"
    hash: BlockHash
    raw: bytes

    @property
    def target(self) -> int:
        return bits_to_target(self.bits)

    @property
    def work(self) -> int:
        """Expected hashes to find this block (Core's ``GetBlockProof``)."""
        target = self.target
        return 0 if target <= 0 else (1 << 256) // (target + 1)


@dataclass(frozen=True, slots=True)
class Block:
    """A decoded block."""

    header: BlockHeader
    transactions: tuple[Transaction, ...]
    size: int
    stripped_size: int
    auxpow: bytes | None = None  # Dogecoin merged-mining proof, raw
    mweb_data: bytes | None = None  # Litecoin MWEB extension block, raw (opaque)

    @property
    def hash(self) -> BlockHash:
        return self.header.hash

    @property
    def merkle_root(self) -> bytes:
        return self.header.merkle_root

    @property
    def computed_merkle_root(self) -> bytes:
        return merkle_root([tx.txid for tx in self.transactions])

    @property
    def merkle_root_valid(self) -> bool:
        return self.computed_merkle_root == self.header.merkle_root

    @property
    def mweb_size(self) -> int:
        """Bytes of Litecoin MWEB data in `size`: the extension block and the HogEx flag bytes."""
        if self.mweb_data is None:
            return 0
        return len(self.mweb_data) + sum(tx.mweb_size for tx in self.transactions)

    @property
    def weight(self) -> int:
        """BIP 141 weight; Litecoin's ``GetBlockWeight`` serializes without MWEB."""
        return self.stripped_size * 3 + self.size - self.mweb_size


def bits_to_target(bits: int) -> int:
    """Expand a compact "nBits" into the 256-bit target (Core's ``arith_uint256::SetCompact``)."""
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if bits & 0x00800000:
        return 0  # negative targets are invalid
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


def pow_hash(header_raw: bytes, spec: ChainSpec) -> bytes:
    """The proof-of-work hash of a header (internal order): double-SHA256 or scrypt(1024,1,1)."""
    if spec.pow_algorithm == "scrypt":
        return hashlib.scrypt(header_raw, salt=header_raw, n=1024, r=1, p=1, dklen=32)
    return sha256d(header_raw)


def check_proof_of_work(header: BlockHeader, spec: ChainSpec) -> bool:
    """True if the header's PoW hash meets its own target (not the chain's difficulty rules).

    Dogecoin AuxPoW blocks prove work through the parent header and are not checked here.
    """
    target = header.target
    return target > 0 and int.from_bytes(pow_hash(header.raw, spec), "little") <= target


def parse_header(r: ByteReader) -> BlockHeader:
    raw = r.read(HEADER_SIZE, "block header")
    return BlockHeader(
        version=int.from_bytes(raw[0:4], "little", signed=True),
        prev_hash=BlockHash(raw[4:36]),
        merkle_root=raw[36:68],
        time=int.from_bytes(raw[68:72], "little"),
        bits=int.from_bytes(raw[72:76], "little"),
        nonce=int.from_bytes(raw[76:80], "little"),
        hash=BlockHash(sha256d(raw)),
        raw=raw,
    )


def decode_header(raw: bytes | memoryview) -> BlockHeader:
    """Decode an 80-byte header (extra bytes are ignored)."""
    return parse_header(ByteReader(raw))


def _skip_auxpow(r: ByteReader, spec: ChainSpec) -> bytes:
    """Read Dogecoin's CAuxPow: merkle tx, chain merkle branch and index, parent header."""
    start = r.pos
    parse_tx(r, spec)  # coinbase of the parent chain
    r.read(32, "AuxPoW parent block hash")
    r.read(32 * r.count("AuxPoW coinbase branch", 32), "AuxPoW coinbase branch")
    r.i32("AuxPoW coinbase index")
    r.read(32 * r.count("AuxPoW chain branch", 32), "AuxPoW chain branch")
    r.i32("AuxPoW chain index")
    r.read(HEADER_SIZE, "AuxPoW parent header")
    return bytes(r.data[start : r.pos])


def parse_block(r: ByteReader, spec: ChainSpec) -> Block:
    """Read one block that spans the reader from its position to its end."""
    start = r.pos
    header = parse_header(r)
    auxpow = None
    if spec.has_auxpow and header.version & AUXPOW_VERSION_FLAG:
        auxpow = _skip_auxpow(r, spec)
    n_tx_at = r.pos
    n_tx = r.count("transaction", 60)
    if n_tx == 0:
        raise r.fail("block has no transactions", n_tx_at)
    txs = tuple(parse_tx(r, spec) for _ in range(n_tx))
    mweb_data = None
    mweb_at = r.pos
    if spec.has_mweb and n_tx >= 2 and txs[-1].is_hogex:
        mweb_data = bytes(r.data[r.pos : r.end])
        if not mweb_data:
            raise r.fail("block ends with a HogEx but the MWEB block is missing")
        r.pos = r.end
    if r.remaining:
        raise r.fail(
            f"{r.remaining} bytes after the last transaction; the data is not a single "
            f"{spec.key} block (wrong --chain, or several blocks concatenated: use --framed)"
        )
    size = r.pos - start
    # Core's "strippedsize": the serialization without witness (and without MWEB) data
    stripped = (mweb_at - start) - sum(tx.size - tx.base_size for tx in txs)
    return Block(header, txs, size, stripped, auxpow, mweb_data)


def decode_block(
    raw: bytes | bytearray | memoryview | str,
    chain: str | ChainSpec = "bitcoin",
    network: str = "mainnet",
) -> Block:
    """Decode one serialized block (bytes or hex), e.g. Core's ``getblock <hash> 0``.

    Raises DecodeError (with the byte offset) on truncated, oversized or garbage input.
    """
    spec = get_chain(chain, network)
    if isinstance(raw, str):
        try:
            raw = bytes.fromhex(raw.strip())
        except ValueError as exc:
            raise DecodeError(f"block hex is not valid hexadecimal: {exc}", 0) from exc
    data = raw if isinstance(raw, bytes) else bytes(raw)
    if len(data) < HEADER_SIZE:
        raise DecodeError(
            f"truncated input: a block needs at least {HEADER_SIZE} bytes, got {len(data)}", 0
        )
    return parse_block(ByteReader(data), spec)


def encode_block(block: Block) -> bytes:
    """Serialize a block back to the exact bytes it was decoded from."""
    parts = [block.header.raw]
    if block.auxpow is not None:
        parts.append(block.auxpow)
    parts.append(encode_compact_size(len(block.transactions)))
    parts += [encode_tx(tx) for tx in block.transactions]
    if block.mweb_data is not None:
        parts.append(block.mweb_data)
    return b"".join(parts)
