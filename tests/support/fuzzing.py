"""Mutation fuzzing of `decode_block` and `decode_tx`, seeded with real mainnet blocks.

Invariant under test: for any bytes and any UTXO chain, the decoders either return or raise
DecodeError, within a time bound; a decoded value re-encodes to exactly the input (tx.py and
block.py promise that). Anything else is a failure: another exception, a timeout, a slow input,
or a round trip that differs. Input `index` of a run with seed `seed` is a pure function of
(seed, index, corpus), so every failure reproduces from those two numbers.

Used by ``bench/fuzz.py`` (long runs, several processes) and by the short deterministic test.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cointrail import decode_block, decode_tx
from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.chain.utxo.blkfile import iter_blk_frames
from cointrail.chain.utxo.block import encode_block
from cointrail.chain.utxo.columnar import HAVE_SPEEDUPS, decode_block_columns
from cointrail.chain.utxo.tx import encode_tx
from cointrail.errors import DecodeError

SMALL_BLOCKS = "btc/blocks/mainnet-000000-000438.blk"
LARGE_BLOCKS = ("mainnet-413567.raw", "mainnet-540107.raw", "mainnet-574200.raw")
LARGE_TX = "mainnet-tx-bb41a757.raw"
HEX_TX = "mainnet-tx-bip69-1.hex"
MAX_SMALL_TX = 4096  # transactions up to this size from the big blocks join the small pool

# (chain, network), weight: Bitcoin mostly, the others for their own code paths
# (Litecoin MWEB flags, Dogecoin AuxPoW headers, Bitcoin Cash without segwit).
CHAINS: tuple[tuple[str, int], ...] = (
    ("bitcoin", 70),
    ("litecoin", 10),
    ("dogecoin", 10),
    ("bitcoin-cash", 10),
)
INTERESTING = (0x00, 0x01, 0x02, 0x08, 0x09, 0x7F, 0x80, 0xFC, 0xFD, 0xFE, 0xFF)


@dataclass(frozen=True, slots=True)
class Seed:
    """One real input: `kind` is "block" or "tx"; `counts` are the offsets of its CompactSize
    fields (counts and lengths), the targets of the "huge count" mutation."""

    kind: str
    data: bytes
    counts: tuple[int, ...]
    label: str


@dataclass(frozen=True, slots=True)
class Corpus:
    """Seeds: `small` (transactions and blocks 0-438), `large` (1-2 MB blocks, a 1 MB tx)."""

    small: tuple[Seed, ...]
    large: tuple[Seed, ...]


@dataclass(frozen=True, slots=True)
class Options:
    """How inputs are made and judged. `time_limit`: seconds an input may take before it is a
    "slow" failure; an input is interrupted ("timeout") after `hard_limit_factor` times that."""

    data_dir: Path
    large_share: float = 0.002
    time_limit: float = 2.0
    hard_limit_factor: float = 5.0
    roundtrip: bool = True
    keep_per_signature: int = 3


@dataclass(frozen=True, slots=True)
class Case:
    """One fuzz input and how it was made."""

    seed: int
    index: int
    target: str  # "block" or "tx": the decoder it is fed to
    chain: str
    data: bytes
    origin: str
    mutations: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"s{self.seed}-i{self.index}-{self.target}-{self.chain}"


@dataclass(frozen=True, slots=True)
class Failure:
    """A case that broke the invariant. `signature` groups failures with one cause."""

    case: Case
    category: str  # "exception", "timeout", "slow", "roundtrip"
    error: str
    where: str
    details: str
    seconds: float

    @property
    def signature(self) -> str:
        return f"{self.category}: {self.error.split(':', 1)[0]} at {self.where}"


@dataclass(frozen=True, slots=True)
class Timing:
    seconds: float
    seed: int
    index: int
    target: str
    chain: str
    size: int
    origin: str


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of a run (or of one range of a run); `merge` combines ranges."""

    count: int
    decoded: int
    rejected: int
    failures: tuple[Failure, ...]  # at most `keep_per_signature` kept per signature
    failure_counts: tuple[tuple[str, int], ...]  # every failure counted, by signature
    slowest: tuple[Timing, ...]
    seconds: float

    @property
    def failed(self) -> int:
        return sum(n for _, n in self.failure_counts)


SLOWEST_KEPT = 5


def merge(a: Result, b: Result, keep_per_signature: int = 3) -> Result:
    counts: dict[str, int] = dict(a.failure_counts)
    for sig, n in b.failure_counts:
        counts[sig] = counts.get(sig, 0) + n
    kept: dict[str, list[Failure]] = {}
    for f in (*a.failures, *b.failures):
        group = kept.setdefault(f.signature, [])
        if len(group) < keep_per_signature:
            group.append(f)
    return Result(
        a.count + b.count,
        a.decoded + b.decoded,
        a.rejected + b.rejected,
        tuple(f for group in kept.values() for f in group),
        tuple(sorted(counts.items())),
        tuple(sorted((*a.slowest, *b.slowest), key=lambda t: -t.seconds)[:SLOWEST_KEPT]),
        a.seconds + b.seconds,
    )


EMPTY = Result(0, 0, 0, (), (), (), 0.0)


# --- corpus ----------------------------------------------------------------------------------


def _compact(data: bytes, pos: int) -> tuple[int, int]:
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "little"), pos + 1 + width


def _walk_tx(data: bytes, pos: int, counts: list[int]) -> int:
    """The end of the (valid, Bitcoin-format) transaction at `pos`; records CompactSize offsets."""
    pos += 4
    segwit = data[pos] == 0 and data[pos + 1] != 0
    if segwit:
        pos += 2
    counts.append(pos)
    n_in, pos = _compact(data, pos)
    for _ in range(n_in):
        pos += 36
        counts.append(pos)
        length, pos = _compact(data, pos)
        pos += length + 4
    counts.append(pos)
    n_out, pos = _compact(data, pos)
    for _ in range(n_out):
        pos += 8
        counts.append(pos)
        length, pos = _compact(data, pos)
        pos += length
    if segwit:
        for _ in range(n_in):
            counts.append(pos)
            items, pos = _compact(data, pos)
            for _ in range(items):
                counts.append(pos)
                length, pos = _compact(data, pos)
                pos += length
    return pos + 4


def _block_seeds(raw: bytes, label: str) -> tuple[Seed, list[Seed]]:
    """The block as a seed, and each of its transactions as a seed."""
    counts = [80]
    n_tx, pos = _compact(raw, 80)
    txs = []
    for i in range(n_tx):
        start, tx_counts = pos, list[int]()
        pos = _walk_tx(raw, pos, tx_counts)
        counts += tx_counts
        tx = raw[start:pos]
        txs.append(Seed("tx", tx, tuple(c - start for c in tx_counts), f"{label} tx {i}"))
    if pos != len(raw):
        raise ValueError(f"seed {label} did not parse to its end ({pos} of {len(raw)} bytes)")
    return Seed("block", raw, tuple(counts), label), txs


def _tx_seed(raw: bytes, label: str) -> Seed:
    counts: list[int] = []
    end = _walk_tx(raw, 0, counts)
    if end != len(raw):
        raise ValueError(f"seed {label} did not parse to its end ({end} of {len(raw)} bytes)")
    return Seed("tx", raw, tuple(counts), label)


@cache
def load_corpus(data_dir: Path) -> Corpus:
    """Seeds from the shared real data (``<data_dir>/btc/blocks``), loaded once per process."""
    blocks_dir = data_dir / "btc" / "blocks"
    small: list[Seed] = []
    seen: set[bytes] = set()

    def add_tx(seed: Seed) -> None:
        if len(seed.data) <= MAX_SMALL_TX and seed.data not in seen:
            seen.add(seed.data)
            small.append(seed)

    for height, frame in enumerate(iter_blk_frames(data_dir / SMALL_BLOCKS)):
        block, txs = _block_seeds(frame.raw, f"block {height}")
        small.append(block)
        for tx in txs:
            add_tx(tx)
    large: list[Seed] = []
    for name in LARGE_BLOCKS:
        block, txs = _block_seeds((blocks_dir / name).read_bytes(), name)
        large.append(block)
        for tx in txs:
            add_tx(tx)
    large.append(_tx_seed((blocks_dir / LARGE_TX).read_bytes(), LARGE_TX))
    add_tx(_tx_seed(bytes.fromhex((blocks_dir / HEX_TX).read_text().strip()), HEX_TX))
    return Corpus(tuple(small), tuple(large))


# --- mutations --------------------------------------------------------------------------------

Mutator = Callable[[bytearray, random.Random, Seed, Corpus], bytearray]


def _pos(buf: bytearray, rng: random.Random) -> int:
    """A position, biased to the first 128 bytes (headers, counts) and the last 16 (lock time,
    the end of the last witness or MWEB part)."""
    if not buf:
        return 0
    roll = rng.random()
    if roll < 0.4:
        return rng.randrange(min(len(buf), 128))
    if roll < 0.6:
        return len(buf) - 1 - rng.randrange(min(len(buf), 16))
    return rng.randrange(len(buf))


def bit_flip(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        if buf:
            buf[_pos(buf, rng)] ^= 1 << rng.randrange(8)
    return buf


def set_byte(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    if buf:
        buf[_pos(buf, rng)] = rng.choice(INTERESTING)
    return buf


def insert_bytes(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    n = rng.choice((1, 1, 2, 4, 8, 32))
    if rng.random() < 0.5:
        chunk = bytes(rng.choice(INTERESTING) for _ in range(n))
    else:
        chunk = rng.randbytes(n)
    at = _pos(buf, rng) if buf else 0
    buf[at:at] = chunk
    return buf


def delete_bytes(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    if buf:
        at = _pos(buf, rng)
        del buf[at : at + rng.choice((1, 1, 2, 4, 8, 32, 64))]
    return buf


def truncate(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    if buf:
        cut = rng.randrange(len(buf)) if rng.random() < 0.5 else len(buf) - rng.randint(1, 8)
        del buf[max(cut, 0) :]
    return buf


def _count_value(rng: random.Random, old: int) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        value = rng.choice((2**64 - 1, 2**63, 2**63 - 1, 2**32, 2**40, rng.getrandbits(64)))
        return b"\xff" + value.to_bytes(8, "little")
    if choice == 1:
        return b"\xfe" + rng.choice((2**32 - 1, 2**31, 0x10000, rng.getrandbits(32))).to_bytes(
            4, "little"
        )
    if choice == 2:
        return b"\xfd" + rng.choice((0xFFFF, 0xFD, 0x8000, rng.getrandbits(16))).to_bytes(
            2, "little"
        )
    if choice == 3:  # non-canonical encodings of small numbers
        return rng.choice(
            (
                b"\xfd" + (old & 0xFF).to_bytes(2, "little"),
                b"\xfe" + (0xFFFF).to_bytes(4, "little"),
                b"\xff" + (0xFFFFFFFF).to_bytes(8, "little"),
            )
        )
    if choice == 4:
        return b"\x00"
    if choice == 5:
        return bytes([min(old + 1, 0xFC)])
    if choice == 6:
        return bytes([max(old - 1, 0)])
    if choice == 7:
        return bytes([rng.choice((0xFD, 0xFE, 0xFF))])  # a prefix with its value cut off
    return bytes([rng.randrange(0xFD)])


def huge_count(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    """Replace a CompactSize count or length of the seed with an extreme or off-by-one value."""
    candidates = [c for c in seed.counts if c < len(buf)]
    at = rng.choice(candidates) if candidates else _pos(buf, rng)
    if at >= len(buf):
        return buf
    first = buf[at]
    width = {0xFD: 3, 0xFE: 5, 0xFF: 9}.get(first, 1)
    buf[at : at + width] = _count_value(rng, first)
    return buf


def splice(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    other = rng.choice(corpus.small).data
    cut = rng.randrange(len(buf) + 1)
    return buf[:cut] + other[rng.randrange(len(other) + 1) :]


def duplicate_range(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    if buf:
        a = _pos(buf, rng)
        chunk = buf[a : a + rng.choice((1, 4, 36, 41, 80, 200))]
        at = rng.randrange(len(buf) + 1)
        buf[at:at] = chunk * rng.choice((1, 1, 2, 8))
    return buf


def tx_flags(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    """Set or insert the extended-format marker and flags (segwit 0x01, MWEB 0x08, unknown);
    with the MWEB flag, often also an MWEB presence byte and body before the lock time."""
    at = 4 if seed.kind == "tx" else 81  # first tx of a block with a one-byte tx count
    flag = rng.choice((0x00, 0x01, 0x08, 0x09, 0x02, 0xFF))
    if len(buf) >= at + 2 and rng.random() < 0.5:
        buf[at : at + 2] = bytes([0, flag])
    else:
        buf[at:at] = bytes([0, flag])
    if flag & 0x08 and seed.kind == "tx" and len(buf) >= 4 and rng.random() < 0.5:
        body = rng.randbytes(rng.choice((0, 0, 1, 2, 8, 40)))
        buf[-4:-4] = bytes([rng.choice((0, 1, 1, 2))]) + body
    return buf


def append_bytes(buf: bytearray, rng: random.Random, seed: Seed, corpus: Corpus) -> bytearray:
    return buf + rng.choice((b"\x00", b"\x00" * 4, rng.randbytes(rng.randint(1, 16))))


MUTATORS: tuple[tuple[str, int, Mutator], ...] = (
    ("bit_flip", 20, bit_flip),
    ("set_byte", 14, set_byte),
    ("insert", 8, insert_bytes),
    ("delete", 8, delete_bytes),
    ("truncate", 10, truncate),
    ("huge_count", 20, huge_count),
    ("splice", 8, splice),
    ("duplicate", 4, duplicate_range),
    ("tx_flags", 6, tx_flags),
    ("append", 2, append_bytes),
)
_MUTATOR_WEIGHTS = tuple(w for _, w, _ in MUTATORS)
_CHAIN_NAMES = tuple(c for c, _ in CHAINS)
_CHAIN_WEIGHTS = tuple(w for _, w in CHAINS)


def make_case(corpus: Corpus, seed: int, index: int, large_share: float) -> Case:
    """Input `index` of the run with `seed`: a seed picked and mutated 1-4 times."""
    rng = random.Random(f"{seed}:{index}")
    pool = corpus.large if corpus.large and rng.random() < large_share else corpus.small
    source = rng.choice(pool)
    buf = bytearray(source.data)
    names = []
    for _ in range(rng.choices((1, 2, 3, 4), weights=(60, 25, 10, 5))[0]):
        name, _, mutate = rng.choices(MUTATORS, weights=_MUTATOR_WEIGHTS)[0]
        buf = mutate(buf, rng, source, corpus)
        names.append(name)
    target = source.kind
    if rng.random() < 0.03:
        target = "tx" if target == "block" else "block"
    chain = rng.choices(_CHAIN_NAMES, weights=_CHAIN_WEIGHTS)[0]
    return Case(seed, index, target, chain, bytes(buf), source.label, tuple(names))


# --- running ----------------------------------------------------------------------------------


class FuzzTimeout(BaseException):  # not Exception: no decoder handler may swallow it
    """An input ran past the hard time limit."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt the block with FuzzTimeout after `seconds` (main thread on POSIX only)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise FuzzTimeout

    previous = signal.signal(signal.SIGALRM, fire)
    started = time.monotonic()
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # give back an outer timer (e.g. pytest-timeout's) what is left
            left = max(outer_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inner = [f for f in frames if "cointrail" in f.filename] or frames
    if not inner:
        return "?"
    last = inner[-1]
    name = last.filename.split("/src/", 1)[-1]
    return f"{name}:{last.lineno} ({last.name})"


@cache
def _spec(chain: str) -> ChainSpec:
    return get_chain(chain, "mainnet")


class CompiledMismatchError(AssertionError):
    """The compiled decoder disagrees with the reference decoder."""


def _compiled_agrees(case: Case, spec: ChainSpec, offset: int | None, txids: bytes | None) -> None:
    """Run the compiled core on the same bytes: same verdict, same error offset, same txids."""
    if not HAVE_SPEEDUPS:
        return
    try:
        cols = decode_block_columns(case.data, spec, use_speedups=True)
    except DecodeError as exc:
        if offset != exc.offset:
            raise CompiledMismatchError(
                f"compiled core rejects at offset {exc.offset}, reference "
                f"{'decodes' if offset is None else f'rejects at {offset}'}"
            ) from exc
        return
    if offset is not None:
        raise CompiledMismatchError(f"compiled core decodes, reference rejects at {offset}")
    if cols.txids.tobytes() != txids:
        raise CompiledMismatchError("compiled core and reference give different txids")


def check_case(case: Case, options: Options) -> tuple[str, float, Failure | None]:
    """Run one case: ("decoded" | "rejected" | "failed", seconds, the failure if any)."""
    spec = _spec(case.chain)
    hard = options.time_limit * options.hard_limit_factor
    started = time.perf_counter()
    failure: Failure | None = None
    outcome = "decoded"
    try:
        with _alarm(hard):
            if case.target == "block":
                try:
                    block = decode_block(case.data, spec)
                except DecodeError as exc:
                    _compiled_agrees(case, spec, exc.offset, None)
                    raise
                _compiled_agrees(case, spec, None, b"".join(t.txid for t in block.transactions))
                again = encode_block(block) if options.roundtrip else case.data
            else:
                tx = decode_tx(case.data, spec)
                again = encode_tx(tx) if options.roundtrip else case.data
        seconds = time.perf_counter() - started
        if again != case.data:
            first = next(
                (i for i, (x, y) in enumerate(zip(again, case.data, strict=False)) if x != y),
                min(len(again), len(case.data)),
            )
            failure = Failure(
                case,
                "roundtrip",
                "RoundTripMismatch: re-encoding differs",
                f"{case.target} encoder",
                f"decoded, but re-encoding gives {len(again)} bytes instead of "
                f"{len(case.data)}; first difference at byte {first}",
                seconds,
            )
    except DecodeError:
        outcome, seconds = "rejected", time.perf_counter() - started
    except FuzzTimeout:
        seconds = time.perf_counter() - started
        failure = Failure(
            case, "timeout", f"FuzzTimeout: over {hard:.1f} s", "?", "interrupted", seconds
        )
    except Exception as exc:
        seconds = time.perf_counter() - started
        failure = Failure(
            case,
            "exception",
            f"{type(exc).__name__}: {exc}",
            _where(exc),
            "".join(traceback.format_exception(exc)),
            seconds,
        )
    if failure is None and seconds > options.time_limit:
        failure = Failure(
            case,
            "slow",
            f"Slow: {seconds:.2f} s",
            f"{case.target} decoder",
            f"{len(case.data)} bytes took {seconds:.3f} s (limit {options.time_limit} s)",
            seconds,
        )
    return ("failed" if failure else outcome), seconds, failure


def run_range(seed: int, start: int, stop: int, options: Options) -> Result:
    """Make and check inputs `start` to `stop - 1` of the run with `seed`."""
    corpus = load_corpus(options.data_dir)
    decoded = rejected = 0
    counts: dict[str, int] = {}
    kept: list[Failure] = []
    slowest: list[Timing] = []
    began = time.perf_counter()
    for index in range(start, stop):
        case = make_case(corpus, seed, index, options.large_share)
        outcome, seconds, failure = check_case(case, options)
        if outcome == "decoded":
            decoded += 1
        elif outcome == "rejected":
            rejected += 1
        if failure is not None:
            n = counts.get(failure.signature, 0)
            counts[failure.signature] = n + 1
            if n < options.keep_per_signature:
                kept.append(failure)
        if len(slowest) < SLOWEST_KEPT or seconds > slowest[-1].seconds:
            slowest.append(
                Timing(seconds, seed, index, case.target, case.chain, len(case.data), case.origin)
            )
            slowest.sort(key=lambda t: -t.seconds)
            del slowest[SLOWEST_KEPT:]
    return Result(
        stop - start,
        decoded,
        rejected,
        tuple(kept),
        tuple(sorted(counts.items())),
        tuple(slowest),
        time.perf_counter() - began,
    )
