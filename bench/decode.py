"""Block decoding throughput on one core: cointrail against the hashing floor and its peers.

    python bench/decode.py [--repeats 21] [--slow-repeats 7] [--no-write]

Decodes real mainnet blocks 413567, 540107 and 574200 (from ``../shared/data/btc/blocks``),
each decoder computing every txid AND every output's address, and reports transactions per
second (median of the repeats, garbage collector off while timing, as timeit does) per block
and in total:

* floor: hashlib double SHA-256 of every transaction's bytes (boundaries found beforehand, not
  timed): what just hashing the ids costs, with no parsing at all;
* cointrail C: `decode_block_columns` with the compiled core (txids, wtxids, every column, and
  the list of addresses);
* cointrail Python: the pure-Python reference `decode_block` (objects, addresses);
* python-bitcoinlib: ``CBlock.deserialize``, ``GetTxid()`` per tx and
  ``str(CBitcoinAddress.from_scriptPubKey(...))`` per output where it has an address;
* embit: ``Transaction.read_from`` per tx after the header, ``txid()`` and
  ``script_pubkey.address()`` per output where it has one.

Targets (issue): cointrail C >= 0.33x the floor and >= 20x python-bitcoinlib. The table is
printed and written to bench/results/decode.md with the machine's details.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import io
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCKS = REPO.parent / "shared" / "data" / "btc" / "blocks"
RESULTS = REPO / "bench" / "results" / "decode.md"
HEIGHTS = (413567, 540107, 574200)
PEER_PACKAGES = ("python-bitcoinlib>=0.12,<0.13", "embit>=0.8,<0.9")  # as in the test extras
FLOOR_TARGET = 0.33
BITCOINLIB_TARGET = 20.0


def pin_one_core() -> int:
    """Run on one core (the last one this process may use), so the numbers are per core."""
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def ensure_peers() -> None:
    """Install the peer libraries with pip when they are missing (same pins as the tests)."""
    try:
        import bitcoin  # noqa: F401
        import embit  # noqa: F401
    except ImportError:
        print(f"installing peers for the comparison: {' '.join(PEER_PACKAGES)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times)


# ----------------------------------------------------------------------------- decoders


def floor_fn(txs: list[bytes]) -> Callable[[], object]:
    sha256 = hashlib.sha256

    def run() -> object:
        for tx in txs:
            sha256(sha256(tx).digest()).digest()
        return None

    return run


def cointrail_c_fn(raw: bytes) -> Callable[[], object]:
    from cointrail.chain.utxo.columnar import decode_block_columns

    return lambda: decode_block_columns(raw, use_speedups=True)


def cointrail_py_fn(raw: bytes) -> Callable[[], object]:
    from cointrail.chain.utxo.block import decode_block

    return lambda: decode_block(raw)


def bitcoinlib_fn(raw: bytes) -> Callable[[], object]:
    from bitcoin.core import CBlock
    from bitcoin.wallet import CBitcoinAddress, CBitcoinAddressError

    def run() -> object:
        block = CBlock.deserialize(raw)
        txids: list[bytes] = []
        addresses: list[str | None] = []
        for tx in block.vtx:
            txids.append(tx.GetTxid())
            for out in tx.vout:
                try:
                    addresses.append(str(CBitcoinAddress.from_scriptPubKey(out.scriptPubKey)))
                except CBitcoinAddressError:
                    addresses.append(None)
        return txids, addresses

    return run


def embit_fn(raw: bytes) -> Callable[[], object]:
    from embit import compact
    from embit.networks import NETWORKS
    from embit.transaction import Transaction

    main = NETWORKS["main"]

    def run() -> object:
        stream = io.BytesIO(raw)
        stream.seek(80)
        txids: list[bytes] = []
        addresses: list[str | None] = []
        for _ in range(compact.read_from(stream)):
            tx = Transaction.read_from(stream)
            txids.append(tx.txid())
            for out in tx.vout:
                try:
                    addresses.append(out.script_pubkey.address(main))
                except ValueError:  # no address representation (p2pk, nulldata, ...)
                    addresses.append(None)
        return txids, addresses

    return run


@dataclass
class Row:
    name: str
    make: Callable[[bytes, list[bytes]], Callable[[], object]]
    slow: bool


ROWS = [
    Row("floor: hashlib sha256d of each tx", lambda raw, txs: floor_fn(txs), False),
    Row("cointrail C (decode_block_columns)", lambda raw, txs: cointrail_c_fn(raw), False),
    Row("cointrail pure Python (decode_block)", lambda raw, txs: cointrail_py_fn(raw), True),
    Row("python-bitcoinlib", lambda raw, txs: bitcoinlib_fn(raw), True),
    Row("embit", lambda raw, txs: embit_fn(raw), True),
]
FLOOR, C, BITCOINLIB = ROWS[0].name, ROWS[1].name, ROWS[3].name


def check_peers_agree(raw: bytes) -> dict[str, str]:
    """Sanity check outside the timing: every decoder finds the same txids; address counts."""
    from cointrail.chain.utxo.columnar import decode_block_columns

    cols = decode_block_columns(raw)
    ours = cols.txid_list()
    notes = {C: f"{sum(a is not None for a in cols.addresses)}/{cols.n_outputs} addresses"}
    # python-bitcoinlib returns txids in internal byte order, embit in RPC (reversed) order
    for name, fn, order in ((BITCOINLIB, bitcoinlib_fn(raw), 1), ("embit", embit_fn(raw), -1)):
        result: Any = fn()
        txids, addresses = result
        assert [bytes(t)[::order] for t in txids] == ours, f"{name} txids differ from ours"
        matches = sum(a == b for a, b in zip(addresses, cols.addresses, strict=True) if b)
        notes[name] = (
            f"{sum(a is not None for a in addresses)}/{len(addresses)} addresses, "
            f"{matches} equal to cointrail's"
        )
    return notes


# ------------------------------------------------------------------------------ report


def machine_info(core: int) -> list[str]:
    model, sha_ni = "unknown", False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                sha_ni = sha_ni or " sha_ni" in line
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    from cointrail.chain.utxo import columnar

    return [
        f"- CPU: {model} ({os.cpu_count()} cores, pinned to core {core}; SHA-NI: "
        f"{'yes' if sha_ni else 'no'})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- {ssl.OPENSSL_VERSION}; numpy {version('numpy')}",
        f"- cointrail {version('cointrail')} (compiled core: "
        f"{'built' if columnar.HAVE_SPEEDUPS else 'NOT built'}), python-bitcoinlib "
        f"{version('python-bitcoinlib')}, embit {version('embit')}",
    ]


def ktx(rate: float) -> str:
    return f"{rate / 1000:,.1f} k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="runs of the fast decoders")
    parser.add_argument("--slow-repeats", type=int, default=7, help="runs of the slow ones")
    parser.add_argument("--no-write", action="store_true", help="only print the table")
    args = parser.parse_args()

    if not BLOCKS.is_dir():
        print(f"shared block data not found at {BLOCKS}", file=sys.stderr)
        return 2
    core = pin_one_core()
    ensure_peers()
    from cointrail.chain.utxo.columnar import HAVE_SPEEDUPS, decode_block_columns

    if not HAVE_SPEEDUPS:
        print("cointrail's compiled core is not built: pip install -e .", file=sys.stderr)
        return 2

    blocks: dict[int, bytes] = {}
    txs: dict[int, list[bytes]] = {}
    for height in HEIGHTS:
        raw = (BLOCKS / f"mainnet-{height}.raw").read_bytes()
        cols = decode_block_columns(raw)
        assert cols.merkle_root_valid
        blocks[height] = raw
        txs[height] = [
            raw[int(o) : int(o) + int(s)]
            for o, s in zip(cols.tx_offset.tolist(), cols.tx_size.tolist(), strict=True)
        ]
    notes: dict[str, list[str]] = {}
    for height in HEIGHTS:
        for name, note in check_peers_agree(blocks[height]).items():
            notes.setdefault(name, []).append(f"{height}: {note}")

    seconds: dict[str, dict[int, float]] = {}
    for row in ROWS:
        seconds[row.name] = {}
        for height in HEIGHTS:
            fn = row.make(blocks[height], txs[height])
            repeats = args.slow_repeats if row.slow else args.repeats
            seconds[row.name][height] = median_seconds(fn, repeats)
            per_second = len(txs[height]) / seconds[row.name][height]
            print(f"{row.name:40s} {height}: {ktx(per_second)} tx/s", flush=True)

    n_total = sum(len(txs[h]) for h in HEIGHTS)

    def rate(name: str, height: int | None) -> float:
        if height is None:
            return n_total / sum(seconds[name].values())
        return len(txs[height]) / seconds[name][height]

    columns: list[int | None] = [*HEIGHTS, None]
    heads = [f"block {h} ({len(txs[h])} tx)" for h in HEIGHTS] + [f"total ({n_total} tx)"]
    lines = [
        "# Block decoding throughput (txids + every output's address), one core",
        "",
        f"Median of {args.repeats} runs ({args.slow_repeats} for the pure-Python decoders), "
        "garbage collector off while timing. Generated by `python bench/decode.py`.",
        "",
        *machine_info(core),
        "",
        "## Transactions per second",
        "",
        "| decoder | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for row in ROWS:
        cells = [ktx(rate(row.name, h)) for h in columns]
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Ratios",
        "",
        "| decoder | vs | " + " | ".join(heads) + " |",
        "|---|---|" + "---:|" * len(heads),
    ]
    for row in ROWS[1:]:
        for ref in (FLOOR, BITCOINLIB):
            if ref == row.name:
                continue
            cells = [f"{rate(row.name, h) / rate(ref, h):.2f}x" for h in columns]
            lines.append(f"| {row.name} | {ref.split(':')[0]} | " + " | ".join(cells) + " |")
    vs_floor = [rate(C, h) / rate(FLOOR, h) for h in columns]
    vs_lib = [rate(C, h) / rate(BITCOINLIB, h) for h in columns]
    floor_ok = min(vs_floor) >= FLOOR_TARGET
    lib_ok = min(vs_lib) >= BITCOINLIB_TARGET
    lines += [
        "",
        "## Targets",
        "",
        f"- cointrail C >= {FLOOR_TARGET}x the floor, on every block and in total: "
        f"{'met' if floor_ok else 'NOT met'} (lowest {min(vs_floor):.2f}x, total "
        f"{vs_floor[-1]:.2f}x)",
        f"- cointrail C >= {BITCOINLIB_TARGET:.0f}x python-bitcoinlib, on every block and in "
        f"total: {'met' if lib_ok else 'NOT met'} (lowest {min(vs_lib):.1f}x, total "
        f"{vs_lib[-1]:.1f}x)",
        "",
        "## Addresses produced (checked outside the timing; all decoders agree on every txid)",
        "",
        *(f"- {name}: " + "; ".join(items) for name, items in notes.items()),
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS.relative_to(REPO)}")
        sys.path.insert(0, str(REPO / "bench"))
        from svgchart import bar_chart

        bar_chart(
            REPO / "docs" / "img" / "decode.svg",
            f"Block decoding, txids + addresses, one core ({n_total} real mainnet txs)",
            "tx/s",
            [(row.name, rate(row.name, None)) for row in ROWS],
            log=True,
        )
    return 0 if floor_ok and lib_ok else 1


if __name__ == "__main__":
    sys.exit(main())
