"""A node's block files (``blk*.dat``): framing, XOR obfuscation, and the best chain.

A blk file is a run of frames ``magic (4) | length (u32 LE) | block`` in the order the node
received the blocks, so it holds stale blocks and children stored before their parents, with
runs of zeros where the node pre-allocated space. Bitcoin Core 28+ XORs every byte with the
8-byte key in ``xor.dat``, key index = absolute file offset % 8.

Invariant: a frame is yielded with exactly the bytes the node wrote (de-obfuscated), or reading
stops with a DecodeError naming the file and byte offset; no length field is trusted before it
is checked against 32 MiB and the file size. A frame cut short at the end of a file (the node
was stopped while writing it) is reported, never silently dropped. Chain selection keeps a small
fixed record per header and never holds a block.
"""

from __future__ import annotations

import io
import mmap
import os
import re
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cointrail.chain.spec import ChainSpec, all_chains, chains_with_magic, check_genesis, get_chain
from cointrail.chain.utxo.block import (
    AUXPOW_VERSION_FLAG,
    HEADER_SIZE,
    BlockHeader,
    check_proof_of_work,
    decode_header,
)
from cointrail.chain.utxo.hashes import BlockHash, sha256d
from cointrail.errors import DecodeError, InputError

MAGIC_SIZE = 4
FRAME_HEADER_SIZE = 8  # magic + u32 length
MAX_FRAME_LENGTH = 32 * 1024 * 1024  # Core's MAX_SIZE; no chain's block is larger
XOR_KEY_SIZE = 8
XOR_FILE_NAME = "xor.dat"
NULL_HASH = bytes(32)

_BLK_NAME = re.compile(r"blk(\d+)\.dat")
_SCAN_CHUNK = 1 << 16
_OPEN_FILES = 4  # file handles kept open while re-reading blocks in chain order

PathLike = str | os.PathLike[str]


class BlkFileWarning(UserWarning):
    """A blk file problem that reading survives (a truncated final frame)."""


@dataclass(frozen=True, slots=True)
class BlkFile:
    """One ``blk*.dat`` file and the XOR key of its directory (b"" when not obfuscated)."""

    path: Path
    xor_key: bytes


@dataclass(frozen=True, slots=True)
class BlkFrame:
    """One framed block. `offset` is the file offset of the frame (its magic); the block starts
    at `data_offset`. `raw` is the de-obfuscated block."""

    file: Path
    offset: int
    magic: bytes
    raw: bytes

    @property
    def data_offset(self) -> int:
        return self.offset + FRAME_HEADER_SIZE

    @property
    def header(self) -> BlockHeader:
        return decode_header(self.raw)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The header of one framed block, read without the block body (`length` is its size)."""

    file: Path
    offset: int
    magic: bytes
    length: int
    header: BlockHeader


@dataclass(frozen=True, slots=True)
class TruncatedFrame:
    """A frame cut short by the end of its file: `available` bytes exist from `offset` on;
    `length` is the block length the frame announces, None if the 8-byte frame header is cut."""

    file: Path
    offset: int
    length: int | None
    available: int

    def __str__(self) -> str:
        if self.length is None:
            what = f"only {self.available} bytes of its 8-byte frame header exist"
        else:
            what = (
                f"it announces a {self.length}-byte block but only "
                f"{max(self.available - FRAME_HEADER_SIZE, 0)} bytes follow"
            )
        return (
            f"{self.file}: the last frame, at offset {self.offset}, is truncated: {what}; the "
            "node was probably stopped while writing it, and it rewrites the block on restart"
        )


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """A block connected to the start block: its height and where its frame is."""

    height: int
    hash: BlockHash
    file: Path
    offset: int


@dataclass(frozen=True, slots=True)
class HeaderRef:
    """A block outside the best chain's tree (orphan, invalid or duplicate) and its parent."""

    hash: BlockHash
    prev_hash: BlockHash
    file: Path
    offset: int


@dataclass(frozen=True, slots=True)
class ChainIndex:
    """The best chain found in blk files and every block that is not on it.

    `chain`: start block to the tip with the most cumulative work, by height.
    `stale`: blocks that connect to the start block but lost (forks), by height.
    `orphans`: blocks that do not descend from the start block (a parent missing from the
    files, or below the start of a pruned node's files), in file order.
    `invalid`: blocks whose header fails its own proof of work, and their descendants.
    `duplicates`: second and later copies of a block (the first copy is used).
    """

    chain: list[ChainEntry]
    stale: list[ChainEntry]
    orphans: list[HeaderRef]
    invalid: list[HeaderRef] = field(default_factory=list)
    duplicates: list[HeaderRef] = field(default_factory=list)
    chain_work: int = 0

    @property
    def tip(self) -> ChainEntry | None:
        return self.chain[-1] if self.chain else None


# --- XOR obfuscation ------------------------------------------------------------------------


def load_xor_key(blocks_dir: PathLike) -> bytes:
    """The obfuscation key of a blocks directory (Bitcoin Core 28+ ``xor.dat``).

    Returns b"" when there is no ``xor.dat`` or its key is all zeros (files not obfuscated).
    Raises DecodeError when the file is not exactly 8 bytes.
    """
    path = Path(blocks_dir) / XOR_FILE_NAME
    try:
        key = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return b""
    if len(key) != XOR_KEY_SIZE:
        raise DecodeError(
            f"{path} holds {len(key)} bytes but Bitcoin Core's obfuscation key is exactly "
            f"{XOR_KEY_SIZE}; the file is damaged: copy it again from the node's blocks directory",
            0,
        )
    return key if any(key) else b""


def apply_xor(data: bytes | bytearray | memoryview, key: bytes, file_offset: int) -> bytes:
    """XOR `data`, read at `file_offset` of a file, with `key` (index = file offset % len(key)).

    XOR is its own inverse: this both obfuscates and de-obfuscates. An empty key copies `data`.
    """
    n = len(data)
    if not key or n == 0:
        return bytes(data)
    shift = file_offset % len(key)
    rotated = key[shift:] + key[:shift]
    stream = (rotated * (n // len(rotated) + 1))[:n]
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")
    return mixed.to_bytes(n, "little")


# --- magic checks -----------------------------------------------------------------------------


def _owners(magic: bytes) -> str:
    return ", ".join(s.key for s in chains_with_magic(magic))


def _describe(magics: Collection[bytes]) -> str:
    parts = []
    for m in sorted(magics):
        owners = _owners(m)
        parts.append(f"{m.hex()} ({owners})" if owners else m.hex())
    return " or ".join(parts)


class _Magics:
    """The accepted network magics; with none given, the first frame's (known) magic is
    learnt and every later frame must match it."""

    __slots__ = ("accepted",)

    def __init__(self, magic_set: Collection[bytes] | None) -> None:
        if magic_set is None:
            self.accepted: frozenset[bytes] | None = None
            return
        accepted = frozenset(bytes(m) for m in magic_set)
        bad = [m for m in accepted if len(m) != MAGIC_SIZE]
        if bad or not accepted:
            raise InputError(
                f"magic_set must hold 4-byte network magics, got {sorted(m.hex() for m in bad)}; "
                "pass e.g. {spec.magic} for the chain being read"
            )
        self.accepted = accepted

    def _candidates(self) -> frozenset[bytes]:
        if self.accepted is not None:
            return self.accepted
        return frozenset(s.magic for s in all_chains() if len(s.magic) == MAGIC_SIZE)

    def check(self, path: Path, offset: int, found: bytes, key: bytes) -> None:
        if self.accepted is None:
            if chains_with_magic(found):
                self.accepted = frozenset({found})
                return
        elif found in self.accepted:
            return
        raise self.error(path, offset, found, key)

    def is_prefix(self, partial: bytes) -> bool:
        return any(m.startswith(partial[:MAGIC_SIZE]) for m in self._candidates())

    def error(self, path: Path, offset: int, found: bytes, key: bytes) -> DecodeError:
        owners = _owners(found) if len(found) == MAGIC_SIZE else ""
        if owners:
            what = f"the network magic of {owners}"
            hint = "read the blocks directory of the chain you meant, or pass its spec"
        else:
            what = "not the network magic of any chain cointrail knows"
            hint = "the file is corrupt or not a blk*.dat file"
            if not key:
                hint += (
                    "; Bitcoin Core 28+ obfuscates its files: keep its xor.dat beside them "
                    "or pass xor_key"
                )
        expected = "" if self.accepted is None else f", expected {_describe(self.accepted)}"
        return DecodeError(
            f"{path}: the frame at offset {offset} starts with {found.hex()}, {what}{expected}; "
            f"{hint}",
            offset,
        )


# --- files and frames -------------------------------------------------------------------------


def iter_blk_files(path: PathLike) -> Iterator[BlkFile]:
    """The blk files at `path`: one file, or every ``blk<N>.dat`` of a blocks directory (or of
    a data directory holding ``blocks/``) in numeric order, each with the directory's XOR key.

    Raises InputError when the path does not exist or holds no blk files.
    """
    p = Path(path)
    if p.is_file():
        return iter([BlkFile(p, load_xor_key(p.parent))])
    if not p.is_dir():
        raise InputError(f"{p} does not exist; pass a blk*.dat file or the node's blocks directory")

    def numbered(d: Path) -> list[tuple[int, str, Path]]:
        found = []
        for child in d.iterdir():
            m = _BLK_NAME.fullmatch(child.name)
            if m and child.is_file():
                found.append((int(m.group(1)), child.name, child))
        return sorted(found)

    files = numbered(p)
    if not files and (p / "blocks").is_dir():
        p = p / "blocks"
        files = numbered(p)
    if not files:
        raise InputError(
            f"{p} holds no blk*.dat files; pass the node's blocks directory "
            "(the one holding blk00000.dat) or a single block file"
        )
    key = load_xor_key(p)
    return iter([BlkFile(f, key) for _, _, f in files])


def _files(path: PathLike, xor_key: bytes | None) -> list[BlkFile]:
    files = list(iter_blk_files(path))
    if xor_key is None:
        return files
    if xor_key and len(xor_key) != XOR_KEY_SIZE:
        raise InputError(
            f"xor_key must be {XOR_KEY_SIZE} bytes (the content of xor.dat), got {len(xor_key)}"
        )
    key = xor_key if any(xor_key) else b""
    return [BlkFile(f.path, key) for f in files]


def _skip_zeros(mm: mmap.mmap, pos: int, size: int, key: bytes) -> int:
    """The offset of the first non-zero (de-obfuscated) byte at or after `pos`, or `size`."""
    klen = len(key)
    while pos < size:
        first = mm[pos] ^ (key[pos % klen] if klen else 0)
        if first:
            return pos
        end = min(pos + _SCAN_CHUNK, size)
        chunk = apply_xor(mm[pos:end], key, pos)
        rest = chunk.lstrip(b"\x00")
        if rest:
            return end - len(rest)
        pos = end
    return size


def _report(trunc: TruncatedFrame, strict: bool, truncations: list[TruncatedFrame] | None) -> None:
    if strict:
        raise DecodeError(f"{trunc}; pass strict=False to skip it and go on", trunc.offset)
    if truncations is not None:
        truncations.append(trunc)
    else:
        warnings.warn(str(trunc), BlkFileWarning, stacklevel=4)


def _scan_file(
    blk: BlkFile,
    magics: _Magics,
    strict: bool,
    truncations: list[TruncatedFrame] | None,
    body: bool,
) -> Iterator[tuple[int, bytes, int, bytes]]:
    """(frame offset, magic, block length, block bytes or only its header) for each frame."""
    path, key = blk.path, blk.xor_key
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = 0
            while True:
                pos = _skip_zeros(mm, pos, size, key)
                if pos >= size:
                    return
                available = size - pos
                head = apply_xor(mm[pos : pos + FRAME_HEADER_SIZE], key, pos)
                if available < FRAME_HEADER_SIZE:
                    if not magics.is_prefix(head):
                        raise magics.error(path, pos, head[:MAGIC_SIZE], key)
                    _report(TruncatedFrame(path, pos, None, available), strict, truncations)
                    return
                magic = head[:MAGIC_SIZE]
                magics.check(path, pos, magic, key)
                length = int.from_bytes(head[MAGIC_SIZE:], "little")
                if length > MAX_FRAME_LENGTH:
                    raise DecodeError(
                        f"{path}: the frame at offset {pos} announces a {length}-byte block, "
                        f"more than the {MAX_FRAME_LENGTH}-byte maximum; the file is corrupt "
                        "here: restore it from the node, or reindex the node",
                        pos,
                    )
                if length < HEADER_SIZE:
                    raise DecodeError(
                        f"{path}: the frame at offset {pos} announces a {length}-byte block, "
                        f"shorter than a {HEADER_SIZE}-byte header; the file is corrupt here: "
                        "restore it from the node, or reindex the node",
                        pos,
                    )
                start = pos + FRAME_HEADER_SIZE
                if length > size - start:
                    _report(TruncatedFrame(path, pos, length, available), strict, truncations)
                    return
                n = length if body else HEADER_SIZE
                yield pos, magic, length, apply_xor(mm[start : start + n], key, start)
                pos = start + length


def iter_blk_frames(
    path: PathLike,
    magic_set: Collection[bytes] | None = None,
    xor_key: bytes | None = None,
    *,
    strict: bool = False,
    truncations: list[TruncatedFrame] | None = None,
) -> Iterator[BlkFrame]:
    """Every framed block of a blk file, or of every blk file of a blocks directory, in file order.

    `magic_set`: the accepted network magics; None accepts the first frame's magic if it
    belongs to a known chain, and then only that one. `xor_key`: None reads ``xor.dat`` beside
    the files; b"" means not obfuscated. Zero padding is skipped. A truncated last frame of a
    file ends that file: it is appended to `truncations` (or issued as a BlkFileWarning when no
    list is given), or raised as DecodeError when `strict`. A wrong magic, or a length over
    32 MiB or under 80, raises DecodeError naming the file and offset.
    """
    files = _files(path, xor_key)
    magics = _Magics(magic_set)

    def frames() -> Iterator[BlkFrame]:
        for blk in files:
            for offset, magic, _, raw in _scan_file(blk, magics, strict, truncations, True):
                yield BlkFrame(blk.path, offset, magic, raw)

    return frames()


def iter_blk_headers(
    path: PathLike,
    magic_set: Collection[bytes] | None = None,
    xor_key: bytes | None = None,
    *,
    strict: bool = False,
    truncations: list[TruncatedFrame] | None = None,
) -> Iterator[FrameHeader]:
    """Like `iter_blk_frames`, but reads only each block's 80-byte header (fast, small)."""
    files = _files(path, xor_key)
    magics = _Magics(magic_set)

    def headers() -> Iterator[FrameHeader]:
        for blk in files:
            for offset, magic, length, raw in _scan_file(blk, magics, strict, truncations, False):
                yield FrameHeader(blk.path, offset, magic, length, decode_header(raw))

    return headers()


class _FrameReader:
    """Re-reads frames at known offsets, keeping a few files open."""

    __slots__ = ("_keys", "_magics", "_open", "_xor_key")

    def __init__(self, magics: _Magics, xor_key: bytes | None) -> None:
        self._magics = magics
        self._xor_key = xor_key
        self._keys: dict[Path, bytes] = {}
        self._open: dict[Path, io.FileIO] = {}

    def _key(self, file: Path) -> bytes:
        if self._xor_key is not None:
            return self._xor_key if any(self._xor_key) else b""
        parent = file.parent
        if parent not in self._keys:
            self._keys[parent] = load_xor_key(parent)
        return self._keys[parent]

    def _handle(self, file: Path) -> io.FileIO:
        fh = self._open.pop(file, None)
        if fh is None:
            if len(self._open) >= _OPEN_FILES:
                oldest = next(iter(self._open))
                self._open.pop(oldest).close()
            fh = io.FileIO(file, "r")  # unbuffered: a file rewritten in between is seen
        self._open[file] = fh  # most recently used last
        return fh

    @staticmethod
    def _pread(fh: io.FileIO, offset: int, n: int) -> bytes:
        fh.seek(offset)
        parts, left = [], n
        while left > 0:
            part = fh.read(left)
            if not part:
                break
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def read(self, file: Path, offset: int) -> bytes:
        fh = self._handle(file)
        key = self._key(file)
        size = os.fstat(fh.fileno()).st_size
        head = apply_xor(self._pread(fh, offset, FRAME_HEADER_SIZE), key, offset)
        if len(head) < FRAME_HEADER_SIZE:
            raise DecodeError(
                f"{file} ends before the frame at offset {offset}; the file changed since it "
                "was indexed: index it again",
                offset,
            )
        self._magics.check(file, offset, head[:MAGIC_SIZE], key)
        length = int.from_bytes(head[MAGIC_SIZE:], "little")
        start = offset + FRAME_HEADER_SIZE
        if not HEADER_SIZE <= length <= min(MAX_FRAME_LENGTH, size - start):
            raise DecodeError(
                f"{file}: the frame at offset {offset} announces a {length}-byte block that "
                f"does not fit the file's {size} bytes (or the 32 MiB maximum); the file is "
                "corrupt or changed since it was indexed: index it again",
                offset,
            )
        return apply_xor(self._pread(fh, start, length), key, start)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()


def read_block_at(
    file: PathLike,
    offset: int,
    xor_key: bytes | None = None,
    magic_set: Collection[bytes] | None = None,
) -> bytes:
    """The block of the frame at `offset` of `file` (e.g. a ChainEntry's file and offset)."""
    reader = _FrameReader(_Magics(magic_set), xor_key)
    try:
        return reader.read(Path(file), offset)
    finally:
        reader.close()


# --- chain selection --------------------------------------------------------------------------


def _pow_ok(header: BlockHeader, spec: ChainSpec) -> bool:
    if spec.has_auxpow and header.version & AUXPOW_VERSION_FLAG:
        return True  # merged-mined: the work is proven by the parent header in the AuxPoW
    return check_proof_of_work(header, spec)


def _start_hash(start: BlockHash | bytes | str) -> bytes:
    if isinstance(start, str):
        return bytes(BlockHash.from_rpc_hex(start))
    if len(start) != 32:
        raise InputError(
            f"start must be a 32-byte block hash (or 64 hex digits in RPC order), got "
            f"{len(start)} bytes"
        )
    return bytes(start)


def best_chain(
    frames_or_headers: Iterable[BlkFrame | FrameHeader],
    spec: ChainSpec | str | None = None,
    *,
    start: BlockHash | bytes | str | None = None,
    start_height: int = 0,
    check_pow: bool = True,
) -> ChainIndex:
    """The chain with the most cumulative work (sum of ``BlockHeader.work``) that grows from
    the genesis block (previous hash all zeros), or from `start` at `start_height`.

    Links blocks by previous hash regardless of file order. Ties in work go to the block seen
    first in file order (Core prefers the first received). With `check_pow`, a header that
    fails its own proof of work (see `check_proof_of_work`; Dogecoin AuxPoW headers are not
    checked) is reported as invalid with its descendants; the start block is trusted. Keeps one
    small record per header, never a block. An empty input gives an empty index.

    Raises InputError when there is no genesis block (pass `start`), several of them, or
    `start` is not in the input.
    """
    chain_spec = get_chain(spec) if spec is not None else get_chain()
    files: list[Path] = []
    file_ids: dict[Path, int] = {}
    # hash -> (prev hash, work, file id, offset, PoW ok); insertion order = file order
    nodes: dict[bytes, tuple[bytes, int, int, int, bool]] = {}
    duplicates: list[HeaderRef] = []
    for item in frames_or_headers:
        header = item.header
        h = bytes(header.hash)
        if h in nodes:
            duplicates.append(HeaderRef(header.hash, header.prev_hash, item.file, item.offset))
            continue
        fid = file_ids.get(item.file)
        if fid is None:
            fid = file_ids[item.file] = len(files)
            files.append(item.file)
        ok = _pow_ok(header, chain_spec) if check_pow else True
        nodes[h] = (bytes(header.prev_hash), header.work, fid, item.offset, ok)
    if not nodes:
        return ChainIndex([], [], [], [], duplicates, 0)

    def ref(h: bytes) -> HeaderRef:
        prev, _, fid, offset, _ = nodes[h]
        return HeaderRef(BlockHash(h), BlockHash(prev), files[fid], offset)

    if start is None:
        roots = [h for h, node in nodes.items() if node[0] == NULL_HASH]
        if not roots:
            raise InputError(
                f"none of the {len(nodes)} blocks is a genesis block (previous hash all zeros); "
                "the files start later (a pruned node?): pass start=<hash of the first block> "
                "and start_height"
            )
        if len(roots) > 1:
            names = ", ".join(str(BlockHash(h)) for h in roots[:3])
            raise InputError(
                f"{len(roots)} genesis blocks ({names}); the files mix several chains: read "
                "one chain's blocks directory, or pass start"
            )
        root = roots[0]
    else:
        root = _start_hash(start)
        if root not in nodes:
            raise InputError(
                f"start block {BlockHash(root)} is not in the {len(nodes)} blocks read; "
                "pass the hash of a block the files hold"
            )

    below: set[bytes] = set()  # ancestors of an explicit start block: not orphans
    h = nodes[root][0]
    while h in nodes and h not in below:
        below.add(h)
        h = nodes[h][0]

    children: dict[bytes, list[bytes]] = {}
    for h, node in nodes.items():
        if h != root and h not in below:
            children.setdefault(node[0], []).append(h)

    reached: dict[bytes, tuple[int, int]] = {root: (start_height, nodes[root][1])}
    bad: set[bytes] = set()
    stack = [root]
    while stack:
        parent = stack.pop()
        parent_bad = parent in bad
        height, work = reached.get(parent, (0, 0))
        for child in children.get(parent, ()):
            if parent_bad or not nodes[child][4]:
                bad.add(child)
            else:
                reached[child] = (height + 1, work + nodes[child][1])
            stack.append(child)

    seq = {h: i for i, h in enumerate(nodes)}
    tip = max(reached, key=lambda x: (reached[x][1], -seq[x]))

    def entry(h: bytes) -> ChainEntry:
        _, _, fid, offset, _ = nodes[h]
        return ChainEntry(reached[h][0], BlockHash(h), files[fid], offset)

    chain: list[ChainEntry] = []
    h = tip
    while True:
        chain.append(entry(h))
        if h == root:
            break
        h = nodes[h][0]
    chain.reverse()
    on_chain = {bytes(e.hash) for e in chain}
    stale = sorted(
        (entry(x) for x in reached if x not in on_chain),
        key=lambda e: (e.height, seq[bytes(e.hash)]),
    )
    orphans = [ref(x) for x in nodes if x not in reached and x not in bad and x not in below]
    invalid = [ref(x) for x in nodes if x in bad]
    return ChainIndex(chain, stale, orphans, invalid, duplicates, reached[tip][1])


def iter_best_chain_blocks(
    path: PathLike,
    spec: ChainSpec | str = "bitcoin",
    *,
    xor_key: bytes | None = None,
    start: BlockHash | bytes | str | None = None,
    start_height: int = 0,
    check_pow: bool = True,
    strict: bool = False,
    truncations: list[TruncatedFrame] | None = None,
    indexes: list[ChainIndex] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """``(height, raw block)`` along the best chain of blk files, from genesis (or `start`).

    Two passes in bounded memory: the first reads only headers to build the chain
    (`best_chain`), the second re-reads each chain block at its file and offset, checking that
    its hash is still the indexed one. `spec` gives the magic and the proof-of-work function.
    Files whose genesis block is another chain's are refused (`check_genesis`). `indexes`
    receives the `ChainIndex` (what was left out: orphans, invalid blocks) once it is built.
    """
    chain_spec = get_chain(spec)
    if len(chain_spec.magic) != MAGIC_SIZE:
        raise InputError(f"{chain_spec.key} has no blk files; pass a UTXO chain's spec")
    magic_set = {chain_spec.magic}
    headers = iter_blk_headers(path, magic_set, xor_key, strict=strict, truncations=truncations)

    def blocks() -> Iterator[tuple[int, bytes]]:
        index = best_chain(
            headers, chain_spec, start=start, start_height=start_height, check_pow=check_pow
        )
        if start is None and index.chain:
            check_genesis(chain_spec, str(index.chain[0].hash), f"the blk files at {path}")
        if indexes is not None:
            indexes.append(index)
        reader = _FrameReader(_Magics(magic_set), xor_key)
        try:
            for e in index.chain:
                raw = reader.read(e.file, e.offset)
                if sha256d(raw[:HEADER_SIZE]) != e.hash:
                    raise DecodeError(
                        f"{e.file}: the block at offset {e.offset} is no longer block {e.hash} "
                        f"(height {e.height}); the file changed since it was indexed: read it "
                        "again",
                        e.offset,
                    )
                yield e.height, raw
        finally:
            reader.close()

    return blocks()
