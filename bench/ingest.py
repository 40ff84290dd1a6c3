"""Ingest speed, memory and disk: cointrail against bitcoin-etl on one regtest chain.

    python bench/ingest.py [--txs 250000] [--repeats 3] [--utxo-entries 5000000]
                           [--addresses 2000000] [--no-enrich] [--no-write] [--output FILE]

Builds (or reuses, from /tmp) a Litecoin regtest chain of at least 50,000 transactions with
`bench/regtest_chain.py`, starts ``litecoind`` on it, and in the same run:

* RPC sync, end to end: ``cointrail sync --rpc`` into a fresh store (DuckDB, committed; the
  blocks from the node's P2P port with ``--p2p``, the headline, and over REST and JSON-RPC
  beside it) against ``bitcoinetl export_blocks_and_transactions`` into JSON files, both as
  the command-line tools a user runs, wall clock from process start to exit, against the same
  node and block range.
  bitcoin-etl runs with its defaults (batch 1, 5 workers) and with 2 workers (2 cores here);
  its ``enrich_transactions`` (which fills the inputs' values and addresses that cointrail
  resolves) is timed on a sample of the export and extrapolated, as it is far slower.
  bitcoin-etl lives in its own venv (/tmp/venv-bitcoinetl): it pins click 7, idna 2.7 and
  requests 2.20, which would downgrade the development venv. It runs on Python 3.11 unpatched.
* blk-file ingest: the node is stopped (its blk files complete) and ``cointrail ingest
  blkfiles`` reads them into a fresh store.
* Where the time goes: the same two ingests in-process, with timers around block reading,
  decoding (C), input resolution and row building (``UtxoIngestor.add_block``), Arrow
  conversion and the DuckDB insert + commit; the basis of the 16-core projection.
* Memory: peak RSS of each ingest (VmHWM of a child process, see procmem.py), RSS along the
  ingest, and the two structures that grow with the chain, the index of unspent outputs and
  the address map (the compiled ingest core's tables, ``_ingestcore.c``); then
  micro-measurements in clean processes, for the core and for the pure-Python reference: N
  synthetic entries in the unspent-output table (insert only, then steady churn) and N
  synthetic addresses in the address map, projected with each one's growth rule to the full
  Bitcoin chain (180 M unspent outputs, 1.2 B addresses) on a 32 GB machine.
* Disk: the store's file after CHECKPOINT per transaction, and per table (each table, and the
  UTXO tables together, copied alone into a fresh DuckDB file; and as Parquet zstd).

The report is printed and written to bench/results/ingest.md with the machine's details and
its load (other jobs may share the machine: the load average is recorded around each run).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from cointrail.store.defaults import DEFAULT_BATCH_TXS  # noqa: E402
from procmem import peak_rss_bytes, wait_with_peak  # noqa: E402 - after the path set-up

RESULTS = REPO / "bench" / "results" / "ingest.md"
ETL_VENV = Path("/tmp/venv-bitcoinetl")
ETL_PIN = "bitcoin-etl==1.5.2"
ENRICH_SAMPLE = 2_000  # transactions given to bitcoin-etl's (slow) enrich_transactions
WORK_ROOT = Path("/tmp")
UTXO_TABLES = ("txs", "outputs", "inputs", "coinbases")  # cointrail.store.schema.UTXO_TABLES
SMALL_BATCH = 2_000  # transactions per commit, for the file-size-versus-commits check

RATIO_TARGET = 10.0
DISK_TARGET = 120.0  # bytes per transaction, UTXO tables
BLOCKSCI_DISK = 170.0
BLOCKSCI_RAM = "60-64 GB"
RAM_BYTES = 32 * 2**30
# The full Bitcoin chain, approximately (the figures; per-tx shape assumed).
MAINNET_TXS = 1.1e9
MAINNET_UTXOS = 180e6
MAINNET_ADDRESSES = 1.2e9
MAINNET_INPUTS_PER_TX = 2.4
MAINNET_OUTPUTS_PER_TX = 2.6
CORES = 16
# Magnitude of ids at full-chain scale, for the synthetic entries (int object sizes depend on it).
ID_BASE = 1_000_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")
PYMALLOC_ALIGN = 16


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def hours(low: float, high: float) -> str:
    """'2.2 h', or '2.2-3.1 h' for a range (seconds in)."""
    lo, hi = f"{low / 3600:,.1f}", f"{high / 3600:,.1f}"
    return f"{lo} h" if lo == hi else f"{lo}-{hi} h"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "n/a"


# =============================================================================== workers
# Each runs in its own process (python bench/ingest.py --worker KIND --worker-args JSON) and
# prints one line "RESULT <json>", so its RSS figures are its own.


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += clock() - start
                calls[name] += 1

        return timed

    def wrap_iter(self, name: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        seconds, clock = self.seconds, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            start = clock()
            it = fn(*args, **kwargs)
            seconds[name] += clock() - start
            while True:
                start = clock()
                try:
                    item = next(it)
                except StopIteration:
                    seconds[name] += clock() - start
                    return
                seconds[name] += clock() - start
                yield item

        return timed


def _instrument(timers: Timers) -> None:
    """Timers around the stages of an ingest (monkeypatched in this worker process only)."""
    from cointrail.chain import fetch as fetch_mod
    from cointrail.store import ingest as ingest_mod
    from cointrail.store import sync as sync_mod
    from cointrail.store.duck import ChainStore

    sync_mod.DECODE_THREADS = 0  # decode on the ingesting thread: each stage timed alone
    for name, stage, wrap in (("decode_block_columns", "decode", timers.wrap),
                              ("iter_best_chain_blocks", "read", timers.wrap_iter)):
        setattr(sync_mod, name, wrap(stage, getattr(sync_mod, name)))
    # the fetching thread's wait for each block (its REST requests run side by side, so timing
    # each request would add their overlaps up); it overlaps the ingesting thread's stages,
    # and the sync's few other calls to the node (its tip and chain) fall under WAIT_STAGE
    fetcher = fetch_mod.BlockFetcher
    fetcher._fetch = staticmethod(  # type: ignore[method-assign]
        timers.wrap_iter("rpc", fetcher._fetch))
    ingest_mod._Columns.to_arrow = timers.wrap(  # type: ignore[method-assign]
        "arrow", ingest_mod._Columns.to_arrow)
    ingest_mod._CoreRows.tables = timers.wrap(  # type: ignore[method-assign]
        "arrow", ingest_mod._CoreRows.tables)
    ChainStore.append = timers.wrap("duckdb", ChainStore.append)  # type: ignore[method-assign]
    # every commit goes through _write_batch (flush = _write_batch + waiting for a background
    # write, which the staged runs do not use)
    write = timers.wrap("flush", ingest_mod.UtxoIngestor._write_batch)
    ingest_mod.UtxoIngestor._write_batch = write  # type: ignore[method-assign]
    add_block = ingest_mod.UtxoIngestor.add_block
    seconds = timers.seconds

    def timed_add_block(self: Any, block: Any) -> None:
        start, flushed = time.perf_counter(), seconds["flush"]
        try:
            add_block(self, block)
        finally:
            # rows = add_block without the flushes it triggers
            seconds["rows"] += time.perf_counter() - start - (seconds["flush"] - flushed)

    ingest_mod.UtxoIngestor.add_block = timed_add_block  # type: ignore[method-assign]


def _dict_object_bytes(d: dict[Any, Any]) -> int:
    """Bytes of a dict's keys and values as pymalloc allocates them (16-byte classes)."""
    total = 0
    for key, value in d.items():
        for obj in (key, value):
            size = sys.getsizeof(obj)
            total += -(-size // PYMALLOC_ALIGN) * PYMALLOC_ALIGN
    return total


def rss_split() -> tuple[int, int]:
    """(anonymous, file-backed + shared) resident bytes of this process."""
    anon = other = 0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
            elif line.startswith(("RssFile:", "RssShmem:")):
                other += int(line.split()[1]) * 1024
    return anon, other


def worker_ingest(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """An in-process sync or blk-file ingest with stage timers and memory figures."""
    t0 = time.perf_counter()
    from cointrail.chain.p2p import PeerAddress
    from cointrail.chain.rpc import RpcClient
    from cointrail.chain.spec import get_chain
    from cointrail.store.duck import Store
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles, sync_rpc

    timers = Timers()
    background = bool(args.get("background"))
    if not background:  # stage timers time a serial ingest; with a writer thread they'd overlap
        _instrument(timers)
    gc.collect()
    rss_start = rss_bytes()
    anon_start = rss_split()[0]
    import_seconds = time.perf_counter() - t0
    samples: list[tuple[int, int, int, int]] = []  # txs, rss, utxos, addresses
    spec = get_chain("litecoin", "regtest")
    start = time.perf_counter()
    store = Store(args["store"]).chain(spec)
    ingestor = UtxoIngestor(store, batch_txs=args.get("batch_txs", DEFAULT_BATCH_TXS),
                            background_writes=background)
    opened = time.perf_counter()

    def sample(*_: Any) -> None:
        m = ingestor.memory()
        samples.append((ingestor.txs_added, rss_bytes(), m["utxos"], m["addresses"]))

    if kind == "sync":
        peer = PeerAddress("127.0.0.1", int(args["p2p"])) if args.get("p2p") else None
        with RpcClient(args["url"]) as client:
            result = sync_rpc(ingestor, client, batch_blocks=args.get("batch_blocks", 100),
                              on_block=sample, p2p=peer)
    else:
        result = ingest_blkfiles(ingestor, args["blocks"], on_block=sample)
    ingestor.close()
    ingested = time.perf_counter()
    duck_memory = sum(int(r[0]) for r in store.query(
        "SELECT memory_usage_bytes FROM duckdb_memory()"))
    memory = ingestor.memory()
    anon_end, file_end = rss_split()
    close_start = time.perf_counter()
    store.close()
    closed = time.perf_counter()
    # resume: both indexes rebuilt from the committed store by a new ingestor
    store = Store(args["store"]).chain(spec)
    reload_start = time.perf_counter()
    UtxoIngestor(store)
    reload_seconds = time.perf_counter() - reload_start
    store.close()
    return {
        "kind": kind,
        "background": background,
        "txs": result.txs,
        "blocks": result.blocks,
        "tip_height": result.tip_height,
        "import_seconds": import_seconds,
        "open_seconds": opened - start,
        "ingest_seconds": ingested - opened,
        "close_seconds": closed - close_start,
        "total_seconds": closed - start,
        "stages": dict(timers.seconds),
        "calls": dict(timers.calls),
        "rss_start": rss_start,
        "anon_start": anon_start,
        "anon_end": anon_end,
        "file_end": file_end,
        "peak_rss": peak_rss_bytes(),
        "samples": samples,
        "duckdb_memory": duck_memory,
        "compiled": ingestor.compiled,
        "memory": memory,
        "reload_seconds": reload_seconds,
    }


def _synthetic_txid(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "little"), digest_size=32).digest()


def worker_utxo(args: dict[str, Any]) -> dict[str, Any]:
    """N synthetic unspent outputs in the compiled core's table ("core") or the Python
    reference `UtxoIndex` ("python"): insert only, then steady churn."""
    from cointrail.store.ingest import CoreUtxoIndex, UtxoIndex

    n = int(args["entries"])
    impl = args["impl"]
    per_tx = 2
    n_txs = n // per_tx
    rng = random.Random(3)
    max_value = 21_000_000 * 10**8

    def no_txid(tx_id: int) -> bytes:
        raise AssertionError("synthetic txids do not collide in 8 bytes")

    def make() -> Any:
        return CoreUtxoIndex(no_txid) if impl == "core" else UtxoIndex(no_txid)

    def outputs() -> list[Any]:
        return [(k, rng.randrange(max_value), ID_BASE + rng.randrange(ID_BASE), 2)
                for k in range(per_tx)]

    def churn(index: Any, first: int, count: int, live_txs: int) -> float:
        """Spend the oldest transaction's outputs, add a new one: the live count stays."""
        start = time.perf_counter()
        for i in range(first, first + count):
            txid = _synthetic_txid(i)
            for k in range(per_tx):
                assert index.spend(txid, k) is not None
            index.add(_synthetic_txid(i + live_txs), ID_BASE + i + live_txs, outputs())
        return time.perf_counter() - start

    # the same churn on a table that stays in the CPU caches: the difference is memory latency
    small_txs = 25_000
    small = make()
    for i in range(small_txs):
        small.add(_synthetic_txid(i), ID_BASE + i, outputs())
    small_seconds = churn(small, 0, small_txs, small_txs)
    del small
    gc.collect()
    rss0, anon0 = rss_bytes(), rss_split()[0]
    index = make()
    start = time.perf_counter()
    for i in range(n_txs):
        index.add(_synthetic_txid(i), ID_BASE + i, outputs())
    insert_seconds = time.perf_counter() - start
    gc.collect()
    rss_insert, anon_insert = rss_bytes(), rss_split()[0]
    out: dict[str, Any] = {"impl": impl}
    if impl == "core":
        out["stats_insert"] = index.core.stats()
    else:
        out["table_insert"] = sys.getsizeof(index._main)
        key, value = next(iter(index._main.items()))
        out["key_bytes"], out["value_bytes"] = sys.getsizeof(key), sys.getsizeof(value)
    churn_seconds = churn(index, 0, n_txs, n_txs)
    gc.collect()
    rss_churn, anon_churn = rss_bytes(), rss_split()[0]
    if impl == "core":
        out["stats_churn"] = index.core.stats()
    else:
        out["table_churn"] = sys.getsizeof(index._main)
        out["memory_bytes"] = index.memory_bytes()
    return out | {
        "entries": len(index),
        "rss_before": rss0,
        "rss_insert": rss_insert,
        "rss_churn": rss_churn,
        "anon_before": anon0,
        "anon_insert": anon_insert,
        "anon_churn": anon_churn,
        "insert_seconds": insert_seconds,
        "churn_seconds": churn_seconds,
        "small_entries": small_txs * per_tx,
        "small_churn_seconds": small_seconds,
        "small_churn_outputs": small_txs * per_tx,
        "peak_rss": peak_rss_bytes(),
    }


# Address text by type: (share, prefix, length, alphabet), a mainnet-like mix (assumed), and
# the (ScriptType code, payload bytes) of each form.
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
ADDRESS_MIX = (
    ("p2pkh", 0.55, "1", 34, _BASE58),
    ("p2sh", 0.20, "3", 34, _BASE58),
    ("p2wpkh", 0.20, "bc1q", 42, _BECH32),
    ("p2wsh/p2tr", 0.05, "bc1p", 62, _BECH32),
)
ADDRESS_FORMS = {"p2pkh": (1, 20), "p2sh": (2, 20), "p2wpkh": (5, 20), "p2wsh/p2tr": (6, 32)}


def worker_addresses(args: dict[str, Any]) -> dict[str, Any]:
    """N synthetic addresses: in the compiled core's map ("core": (type, payload) -> addr_id,
    payload records in a file) or in a str -> int dict of their texts ("python")."""
    n = int(args["addresses"])
    rng = random.Random(5)
    kinds = rng.choices(ADDRESS_MIX, [m[1] for m in ADDRESS_MIX], k=n)
    if args["impl"] == "python":
        gc.collect()
        rss0 = rss_bytes()
        addr_ids: dict[str, int] = {}
        start = time.perf_counter()
        for i, (_, _, prefix, length, alphabet) in enumerate(kinds):
            text = prefix + "".join(rng.choices(alphabet, k=length - len(prefix)))
            addr_ids[text] = ID_BASE + i
        seconds = time.perf_counter() - start
        del kinds
        gc.collect()
        rss1 = rss_bytes()
        assert all(c in string.printable for c in next(iter(addr_ids)))
        return {
            "impl": "python",
            "entries": len(addr_ids),
            "rss_before": rss0,
            "rss_after": rss1,
            "table": sys.getsizeof(addr_ids),
            "objects": _dict_object_bytes(addr_ids),
            "seconds": seconds,
            "peak_rss": peak_rss_bytes(),
        }
    from cointrail.store.ingest import _require_core

    del kinds
    bounds, total = [], 0.0  # the mix as cumulative shares of 256
    for mx in ADDRESS_MIX:
        total += mx[1]
        bounds.append((round(total * 256), ADDRESS_FORMS[mx[0]]))

    def address(i: int) -> tuple[int, bytes]:
        """The i-th synthetic address, (type code, payload), derived from i alone."""
        digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=33).digest()
        code, size = next(form for bound, form in bounds if digest[32] < bound)
        return code, digest[:size]

    scratch = Path(tempfile.mkdtemp(prefix="cointrail-bench-addr-", dir=WORK_ROOT))
    try:
        core = _require_core().Core(None, os.urandom(16))
        core.open_records(str(scratch / "bench.addrkeys"))
        core.finish_load()
        gc.collect()
        rss0, anon0 = rss_bytes(), rss_split()[0]
        start = time.perf_counter()
        for i in range(n):
            core.addr_id(*address(i))
        seconds = time.perf_counter() - start
        gc.collect()
        rss1, anon1 = rss_bytes(), rss_split()[0]
        probes = range(0, n, max(1, n // 200_000))
        start = time.perf_counter()
        for i in probes:
            assert core.addr_id(*address(i)) == i
        lookup_seconds = time.perf_counter() - start
        stats = core.stats()
        file_bytes = (scratch / "bench.addrkeys").stat().st_size
        del core
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "impl": "core",
        "entries": n,
        "rss_before": rss0,
        "rss_after": rss1,
        "anon_before": anon0,
        "anon_after": anon1,
        "stats": stats,
        "file_bytes": file_bytes,
        "seconds": seconds,
        "lookups": len(probes),
        "lookup_seconds": lookup_seconds,
        "peak_rss": peak_rss_bytes(),
    }


def worker_fetch(args: dict[str, Any]) -> dict[str, Any]:
    """Only the fetch: every block of the node's chain as `sync --p2p` fetches it (hashes over
    JSON-RPC, blocks from the P2P port, on the fetch thread), taken and dropped at once."""
    from cointrail.chain.fetch import BlockFetcher
    from cointrail.chain.p2p import PeerAddress
    from cointrail.chain.rpc import RpcClient
    from cointrail.chain.spec import get_chain

    spec = get_chain("litecoin", "regtest")
    with RpcClient(args["url"]) as client:
        tip = int(client.call("getblockcount"))
        start = time.perf_counter()
        fetcher = BlockFetcher(client, 0, tip, 100, peer=PeerAddress("127.0.0.1", args["p2p"]),
                               spec=spec)
        size = sum(len(raw) for raw in fetcher)
        seconds = time.perf_counter() - start
        fetcher.close()
    return {"seconds": seconds, "bytes": size, "blocks": tip + 1}


def run_worker(kind: str, args: dict[str, Any]) -> int:
    if kind in ("sync", "blk"):
        result = worker_ingest(kind, args)
    elif kind == "fetch":
        result = worker_fetch(args)
    elif kind == "utxo":
        result = worker_utxo(args)
    elif kind == "addresses":
        result = worker_addresses(args)
    else:
        raise SystemExit(f"unknown worker {kind}")
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# ============================================================================ the parent


@dataclass
class Run:
    """One timed command-line run in a child process."""

    label: str
    seconds: float
    peak_rss: int
    node_cpu: float | None = None
    load: float = 0.0
    output_bytes: int = 0
    stdout: str = ""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_command(label: str, cmd: list[str], *, node_pid: int | None = None,
                  output: Path | None = None) -> Run:
    """Run `cmd` to completion; wall clock from spawn to exit, the child's peak RSS (its
    VmHWM, sampled every 5 ms while it runs)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        node_before = _cpu_seconds(node_pid) if node_pid else None
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        status, peak = wait_with_peak(proc)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        node_cpu = _cpu_seconds(node_pid) - node_before if node_pid and node_before is not None \
            else None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed ({proc.returncode}): "
                               f"{err.read().decode(errors='replace')[-2000:]}")
    size = 0
    if output is not None and output.exists():
        size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file()) \
            if output.is_dir() else output.stat().st_size
    return Run(label, seconds, peak, node_cpu, load, size, stdout)


def best_worker(kind: str, args: dict[str, Any], repeats: int, label: str,
                store: Path) -> dict[str, Any]:
    """The fastest of `repeats` in-process runs, each into a fresh store at `store`."""
    runs = []
    for rep in range(repeats):
        log(f"{label}, run {rep + 1}")
        runs.append(worker(kind, {**args, "store": str(store)}))
        shutil.rmtree(store)
    return min(runs, key=lambda x: x["total_seconds"])


def worker(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
           "--worker-args", json.dumps(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed: {proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines()[::-1] if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT "):])
    result["load"] = os.getloadavg()[0]
    return result


def ensure_bitcoinetl() -> Path:
    """bitcoin-etl's CLI in its own venv (its pins would break the development venv)."""
    exe = ETL_VENV / "bin" / "bitcoinetl"
    if not exe.exists():
        print(f"installing {ETL_PIN} into {ETL_VENV}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ETL_VENV)], check=True)
        subprocess.run([str(ETL_VENV / "bin" / "pip"), "install", "-q", ETL_PIN], check=True)
    return exe


def _enrich_sample(source: Path, target: Path, n: int) -> tuple[int, int]:
    """Every k-th transaction of an export, about n of them: (inputs in all, inputs sampled)."""
    with open(source) as fh:
        lines = fh.readlines()
    step = max(1, len(lines) // n)
    sample = lines[::step]
    target.write_text("".join(sample))
    count = sum(len(json.loads(line)["inputs"]) for line in lines)
    return count, sum(len(json.loads(line)["inputs"]) for line in sample)


def compile_cointrail() -> None:
    """Write the bytecode of cointrail's modules, as ``pip install`` does for a wheel (and did
    for bitcoin-etl here): an editable checkout run with PYTHONDONTWRITEBYTECODE=1 would
    compile every module from source at each start (0.1-0.2 s per command)."""
    import compileall

    import cointrail

    compileall.compile_dir(str(Path(cointrail.__file__).parent), quiet=1)


def cointrail_cli() -> list[str]:
    exe = Path(sys.executable).parent / "cointrail"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "cointrail.interfaces.cli.main"]


def log(message: str) -> None:
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ dict projection


def dict_table_bytes(slots: int, entry_bytes: int) -> int:
    """Bytes of a CPython 3.11 dict's key table of `slots` slots (header ignored)."""
    log2 = slots.bit_length() - 1
    index_width = 1 if log2 < 8 else 2 if log2 < 16 else 4 if log2 < 32 else 8
    usable = (slots << 1) // 3
    return slots * index_width + usable * entry_bytes


def _next_pow2(n: int) -> int:
    return 1 << max(3, (n - 1).bit_length())


def dict_slots_insert_only(n: int) -> int:
    """Slots of a dict filled by n insertions (CPython 3.11: grow to pow2(3 * used))."""
    slots = 8
    while (slots << 1) // 3 < n:
        slots = _next_pow2(3 * ((slots << 1) // 3))
    return slots


def dict_slots_churn(live: int) -> tuple[int, int]:
    """(smallest, largest) slots of a dict holding `live` entries under steady insert/delete:
    each resize, when deletions' dummies exhaust the table, sizes it to pow2(3 * live at that
    moment); the live count at the last resize was at most `live`, and at least what a table
    of those slots can hold."""
    largest = _next_pow2(3 * live)
    return largest // 2, largest  # half: the last resize came at <= largest / 6 live


# --------------------------------------------------------------------------------- disk


def checkpointed_size(db_path: Path) -> int:
    import duckdb

    con = duckdb.connect(str(db_path))
    con.execute("CHECKPOINT")
    con.close()
    return db_path.stat().st_size


def disk_report(db_path: Path, scratch: Path) -> dict[str, Any]:
    import duckdb

    from cointrail.store.schema import TABLES

    definitions = {t.name: t for t in TABLES}

    con = duckdb.connect(str(db_path))
    con.execute("CHECKPOINT")
    counts = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore
              for t in ("blocks", "txs", "outputs", "inputs", "coinbases", "addresses")}
    db_size = con.execute("PRAGMA database_size").fetchone()
    assert db_size is not None
    block_size, used_blocks = int(db_size[2]), int(db_size[4])
    parquet: dict[str, int] = {}
    for table in counts:
        target = scratch / f"{table}.parquet"
        con.execute(f"COPY (SELECT * FROM {table}) TO '{target}' "
                    "(FORMAT PARQUET, COMPRESSION ZSTD)")
        parquet[table] = target.stat().st_size
    con.close()
    file_size = db_path.stat().st_size
    wal = db_path.with_name(db_path.name + ".wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    # each table alone in a fresh file, and the UTXO tables together in one, minus the size of
    # a file holding one empty table (DuckDB's default 256 KiB blocks, as the store uses)
    groups: dict[str, tuple[str, ...]] = {t: (t,) for t in counts}
    groups["utxo"] = UTXO_TABLES
    groups["utxo+addresses"] = (*UTXO_TABLES, "addresses")
    con = duckdb.connect()
    con.execute(f"ATTACH '{db_path}' AS src (READ_ONLY)")
    empty = scratch / "empty.duckdb"
    con.execute(f"ATTACH '{empty}' AS dst")
    con.execute("CREATE TABLE dst.t (x INTEGER)")
    con.execute("CHECKPOINT dst")
    con.execute("DETACH dst")
    empty_size = empty.stat().st_size
    alone: dict[str, int] = {}
    for name, tables in groups.items():
        path = scratch / f"{name}.duckdb"
        con.execute(f"ATTACH '{path}' AS dst")
        for table in tables:  # with the store's column definitions (their compression)
            ddl = definitions[table].ddl()
            con.execute(ddl.replace(f"CREATE TABLE IF NOT EXISTS {table} ",
                                    f"CREATE TABLE dst.{table} ", 1))
            con.execute(f"INSERT INTO dst.{table} SELECT * FROM src.{table}")
        con.execute("CHECKPOINT dst")
        con.execute("DETACH dst")
        alone[name] = path.stat().st_size - empty_size
    whole = scratch / "whole.duckdb"
    con.execute(f"ATTACH '{whole}' AS dst")
    con.execute("COPY FROM DATABASE src TO dst")
    con.execute("CHECKPOINT dst")
    con.execute("DETACH dst")
    con.close()
    alone["whole copy"] = whole.stat().st_size
    return {"counts": counts, "file_size": file_size, "wal_size": wal_size,
            "block_size": block_size, "used_blocks": used_blocks, "alone": alone,
            "parquet": parquet, "empty_size": empty_size}


# ------------------------------------------------------------------------------- report


def machine_info() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = gib(int(line.split()[1]) * 1024)
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    from cointrail.chain.utxo import columnar
    from cointrail.store import ingest

    return [
        f"- CPU: {model}, {os.cpu_count()} cores; RAM {mem}; disk: the machine's /tmp",
        f"- Python {platform.python_version()}, {platform.system()} {platform.release()}",
        f"- cointrail {version('cointrail')} (compiled decoder: "
        f"{'built' if columnar.HAVE_SPEEDUPS else 'NOT built'}, compiled ingest core: "
        f"{'built' if ingest.HAVE_CORE else 'NOT built'}), duckdb {version('duckdb')}, "
        f"pyarrow {version('pyarrow')}; {ETL_PIN} (own venv, Python 3.11, unpatched)",
    ]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, head: list[str], rows: list[list[str]], align: str = "") -> None:
        align = align or "l" + "r" * (len(head) - 1)
        self.add("| " + " | ".join(head) + " |",
                 "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
        for row in rows:
            self.add("| " + " | ".join(row) + " |")
        self.add("")


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


def secs(runs: list[Run]) -> str:
    return ", ".join(f"{r.seconds:.2f}" for r in runs)


FETCH_STAGE = "fetch raw blocks (own thread: hashes over JSON-RPC, blocks over P2P)"
WAIT_STAGE = "waiting for the node's blocks, node tip checks, loop, callbacks"


def stage_rows(res: dict[str, Any], kind: str) -> tuple[list[list[str]], dict[str, float]]:
    """The staged run's time by stage. A sync's blocks are fetched on their own thread while
    the ingesting thread works, so that stage overlaps the others and is listed apart; the
    ingesting thread's stages add up to the total, its waits for blocks included."""
    st = res["stages"]
    total = res["total_seconds"]
    flush_other = st.get("flush", 0.0) - st.get("arrow", 0.0) - st.get("duckdb", 0.0)
    parts: dict[str, float] = {}
    if kind != "sync":
        parts["read blk files (header scan, chain selection, PoW, re-read)"] = st.get("read", 0.0)
    parts.update({
        "decode (C: txids, columns, addresses)": st.get("decode", 0.0),
        ("resolve inputs + build rows (C core, add_block)" if res.get("compiled")
         else "resolve inputs + build rows (Python, add_block)"): st.get("rows", 0.0),
        "rows -> Arrow (flush)": st.get("arrow", 0.0) + max(flush_other, 0.0),
        "DuckDB insert + commit (flush)": st.get("duckdb", 0.0),
        "open store + close (checkpoint)": res["open_seconds"] + res["close_seconds"],
    })
    parts[WAIT_STAGE if kind == "sync" else "other (hex decode, loop, callbacks)"] = max(
        total - sum(parts.values()), 0.0)
    rows = [[name, f"{s:.2f}", f"{100 * s / total:.0f} %", rate(res["txs"], s)]
            for name, s in parts.items()]
    rows.append(["total in-process", f"{total:.2f}", "100 %", rate(res["txs"], total)])
    if kind == "sync":
        fetch = st.get("rpc", 0.0)
        rows.append([FETCH_STAGE + ", alongside the above (its waits for room in the "
                     "queue when the ingest falls behind included)", f"{fetch:.2f}",
                     f"({100 * fetch / total:.0f} % of the total)", rate(res["txs"], fetch)])
        parts[FETCH_STAGE] = fetch
    return rows, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=250_000,
                        help="transactions in the chain (the ratio target is measured on "
                             "250,000; with fewer, the tools' fixed start-up weighs more)")
    parser.add_argument("--per-block", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached chain")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each timed command")
    parser.add_argument("--utxo-entries", type=int, default=5_000_000)
    parser.add_argument("--addresses", type=int, default=2_000_000)
    parser.add_argument("--no-enrich", action="store_true",
                        help="skip timing bitcoin-etl's enrich_transactions")
    parser.add_argument("--no-write", action="store_true", help="only print the report")
    parser.add_argument("--output", help="report file (default bench/results/ingest.md)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_worker(args.worker, json.loads(args.worker_args))
    if args.txs < 50_000:
        log("note: the issue asks for a chain of at least 50,000 transactions")

    from cointrail.chain.utxo.columnar import HAVE_SPEEDUPS

    if not HAVE_SPEEDUPS:
        print("cointrail's compiled core is not built: pip install -e .", file=sys.stderr)
        return 2
    from regtest_chain import build_chain
    from tests.support.litecoind import LitecoindNode

    loads = [os.getloadavg()]
    chain = build_chain(args.txs, args.per_block, args.seed, rebuild=args.rebuild)
    log(f"chain: {chain.txs} txs, height {chain.height}, {chain.datadir}")
    etl = ensure_bitcoinetl()
    work = Path(tempfile.mkdtemp(prefix="cointrail-bench-ingest-", dir=WORK_ROOT))
    sync_runs: list[Run] = []  # --p2p: the fastest path, the headline
    sync_rest_runs: list[Run] = []
    sync_rpc_runs: list[Run] = []
    etl_runs: dict[str, list[Run]] = defaultdict(list)
    etl_configs = {"defaults (batch 1, 5 workers)": [], "batch 1, 2 workers": ["-w", "2"]}
    enrich: Run | None = None
    enrich_inputs = enrich_sample = 0
    startup: dict[str, Run] = {}
    try:
        compile_cointrail()
        startup["cointrail"] = timed_command("cointrail --help", [*cointrail_cli(), "--help"])
        startup["bitcoinetl"] = timed_command("bitcoinetl --help", [str(etl), "--help"])
        node = LitecoindNode(datadir=Path(chain.datadir),
                             extra_args=["-disablewallet", "-rest=1"], listen=True)
        node.start()
        try:
            assert node.process is not None
            pid = node.process.pid
            url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
            height = int(node.rpc("getblockcount"))
            assert height == chain.height, (height, chain.height)
            hashes = node.best_chain()
            for start in range(0, len(hashes), 50):  # warm the node's and the OS's caches
                node.batch(("getblock", [h, 0]) for h in hashes[start : start + 50])
            for rep in range(args.repeats):
                store = work / f"sync-{rep}"
                log(f"cointrail sync --p2p, run {rep + 1}")
                sync_runs.append(timed_command(
                    "cointrail sync --p2p",
                    [*cointrail_cli(), "--store", str(store), "--chain", "litecoin",
                     "--network", "regtest", "sync", "--rpc", url, "--p2p",
                     str(node.p2p_port), "--json"],
                    node_pid=pid, output=store))
                shutil.rmtree(store)
                log(f"cointrail sync (REST), run {rep + 1}")
                sync_rest_runs.append(timed_command(
                    "cointrail sync",
                    [*cointrail_cli(), "--store", str(store), "--chain", "litecoin",
                     "--network", "regtest", "sync", "--rpc", url, "--json"],
                    node_pid=pid, output=store))
                shutil.rmtree(store)
                log(f"cointrail sync --no-rest, run {rep + 1}")
                sync_rpc_runs.append(timed_command(
                    "cointrail sync --no-rest",
                    [*cointrail_cli(), "--store", str(store), "--chain", "litecoin",
                     "--network", "regtest", "sync", "--rpc", url, "--no-rest", "--json"],
                    node_pid=pid, output=store))
                shutil.rmtree(store)
                for label, extra in etl_configs.items():
                    out = work / f"etl-{rep}"
                    out.mkdir()
                    log(f"bitcoin-etl {label}, run {rep + 1}")
                    etl_runs[label].append(timed_command(
                        f"bitcoinetl {label}",
                        [str(etl), "export_blocks_and_transactions", "--start-block", "0",
                         "--end-block", str(height), "--provider-uri", url.rstrip("/"),
                         "--chain", "litecoin", "--blocks-output", str(out / "blocks.json"),
                         "--transactions-output", str(out / "transactions.json"), *extra],
                        node_pid=pid, output=out))
                    if rep == args.repeats - 1 and label.startswith("batch 1, 2") \
                            and not args.no_enrich:
                        log("bitcoin-etl enrich_transactions, on a sample")
                        enrich_inputs, enrich_sample = _enrich_sample(
                            out / "transactions.json", out / "sample.json", ENRICH_SAMPLE)
                        enrich = timed_command(
                            "bitcoinetl enrich_transactions",
                            [str(etl), "enrich_transactions", "--provider-uri",
                             url.rstrip("/"), "--chain", "litecoin", "-w", "2",
                             "--transactions-input", str(out / "sample.json"),
                             "--transactions-output", str(out / "enriched.json")],
                            node_pid=pid, output=out / "enriched.json")
                    shutil.rmtree(out)
            p2p = node.p2p_port
            log("fetch only, over P2P")
            fetch_only = min((worker("fetch", {"url": url, "p2p": p2p})
                              for _ in range(args.repeats)), key=lambda x: x["seconds"])
            sync_stages = best_worker("sync", {"url": url, "p2p": p2p}, args.repeats,
                                      "cointrail sync in-process, with stage timers",
                                      work / "sync-staged")
            sync_piped = best_worker("sync", {"url": url, "p2p": p2p, "background": True},
                                     args.repeats,
                                     "cointrail sync in-process, background writes",
                                     work / "sync-piped")
        finally:
            node.stop()
        loads.append(os.getloadavg())
        blocks_dir = str(chain.blocks_dir)
        blk_runs: list[Run] = []
        for rep in range(args.repeats):
            store = work / f"blk-{rep}"
            log(f"cointrail ingest blkfiles, run {rep + 1}")
            blk_runs.append(timed_command(
                "cointrail ingest blkfiles",
                [*cointrail_cli(), "--store", str(store), "--chain", "litecoin",
                 "--network", "regtest", "ingest", "blkfiles", blocks_dir, "--json"],
                output=store))
            shutil.rmtree(store)
        staged = []
        for rep in range(args.repeats):
            log(f"cointrail blk ingest in-process, with stage timers and memory, run {rep + 1}")
            blk_store = work / f"blk-staged-{rep}"
            staged.append(worker("blk", {"store": str(blk_store), "blocks": blocks_dir}))
        blk_stages = min(staged, key=lambda x: x["total_seconds"])
        blk_piped = best_worker("blk", {"blocks": blocks_dir, "background": True}, args.repeats,
                                "cointrail blk ingest in-process, background writes",
                                work / "blk-piped")
        log("disk")
        scratch = work / "disk"
        scratch.mkdir()
        disk = disk_report(blk_store / "litecoin-regtest.duckdb", scratch)
        small_store = work / "blk-small-batches"
        worker("blk", {"store": str(small_store), "blocks": blocks_dir,
                       "batch_txs": SMALL_BATCH})
        disk["small_batch_size"] = checkpointed_size(small_store / "litecoin-regtest.duckdb")
        log(f"unspent-output table: {args.utxo_entries:,} synthetic entries (core, Python)")
        utxo = worker("utxo", {"entries": args.utxo_entries, "impl": "core"})
        utxo_py = worker("utxo", {"entries": args.utxo_entries, "impl": "python"})
        log(f"address map: {args.addresses:,} synthetic addresses (core, Python)")
        addrs = worker("addresses", {"addresses": args.addresses, "impl": "core"})
        addrs_py = worker("addresses", {"addresses": args.addresses, "impl": "python"})
        loads.append(os.getloadavg())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = build_report(args, chain, sync_runs, sync_rest_runs, sync_rpc_runs, etl_runs,
                          enrich, enrich_inputs,
                          enrich_sample, startup,
                          sync_stages, blk_runs, blk_stages, disk, utxo, utxo_py, addrs,
                          addrs_py, loads, sync_piped, blk_piped, fetch_only)
    text = "\n".join(report.lines)
    print(text)
    if not args.no_write:
        out = Path(args.output) if args.output else RESULTS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"written to {out}")
    return 1 if report.failures else 0


def build_report(
    args: argparse.Namespace, chain: Any, sync_runs: list[Run], sync_rest_runs: list[Run],
    sync_rpc_runs: list[Run], etl_runs: dict[str, list[Run]], enrich: Run | None,
    enrich_inputs: int, enrich_sample: int, startup: dict[str, Run],
    sync_stages: dict[str, Any], blk_runs: list[Run],
    blk_stages: dict[str, Any], disk: dict[str, Any], utxo: dict[str, Any],
    utxo_py: dict[str, Any], addrs: dict[str, Any], addrs_py: dict[str, Any],
    loads: list[tuple[float, float, float]], sync_piped: dict[str, Any],
    blk_piped: dict[str, Any], fetch_only: dict[str, Any],
) -> Report:
    r = Report()
    n = chain.txs
    r.add(
        "# Ingest: speed, memory and disk (issue 3)",
        "",
        "Generated by `python bench/ingest.py` "
        f"(--txs {args.txs} --repeats {args.repeats} --utxo-entries {args.utxo_entries} "
        f"--addresses {args.addresses}) on {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        *machine_info(),
        "- load average (1, 5, 15 min) at the start, after the RPC runs, at the end: "
        + "; ".join(f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in loads)
        + " (2 cores: other jobs shared the machine when the load is above ~1)",
        "",
        "## The chain",
        "",
        f"Litecoin regtest built by `bench/regtest_chain.py` (cached in {chain.datadir}): "
        f"**{n:,} transactions** in {chain.height + 1} blocks ({chain.non_coinbase_txs:,} "
        f"non-coinbase; {chain.inputs:,} inputs and {chain.outputs:,} outputs in the spending "
        f"rounds), {chain.addresses_made:,} addresses (p2pkh 40 %, p2sh-p2wpkh 25 %, p2wpkh "
        f"35 %). Built in {chain.build_seconds:.0f} s; raw transactions "
        "(createrawtransaction + signrawtransactionwithkey + sendrawtransaction, JSON-RPC "
        f"batches of 100) ran at {chain.build_tx_per_second:,.0f} tx/s. {chain.litecoind}.",
        "",
    )

    # ------------------------------------------------------------------ RPC comparison
    sync_best = best(sync_runs)
    r.add("## RPC sync, end to end: cointrail vs bitcoin-etl", "",
          "Same node, same blocks (0 to tip), same run; wall clock of the command-line tool "
          "from spawn to exit (best of the runs; all runs listed). cointrail: `cointrail "
          "--store DIR --chain litecoin --network regtest sync --rpc URL --p2p PORT --json` "
          "into a fresh store, committed (DuckDB): block hashes and control over JSON-RPC, the "
          "raw blocks from the node's P2P port (`getdata`; the node sends them straight from "
          "its block files). Without `--p2p` (the node runs with `-rest=1`) `sync` takes them "
          "over REST (binary), and with `--no-rest` over JSON-RPC (`getblock <hash> 0`, hex). "
          "bitcoin-etl: `bitcoinetl export_blocks_and_transactions --chain litecoin` into "
          "JSON files. Node CPU = CPU seconds litecoind spent during the run (it shares the 2 "
          "cores).", "")
    rows = [["cointrail sync --p2p", secs(sync_runs), f"{sync_best.seconds:.2f}",
             rate(n, sync_best.seconds), f"{sync_best.node_cpu:.1f}",
             mib(sync_best.peak_rss), mib(sync_best.output_bytes), "1.0x"]]
    for label, other in (("cointrail sync (REST)", sync_rest_runs),
                         ("cointrail sync --no-rest", sync_rpc_runs)):
        if other:
            b = best(other)
            rows.append([label, secs(other), f"{b.seconds:.2f}",
                         rate(n, b.seconds), f"{b.node_cpu:.1f}", mib(b.peak_rss),
                         mib(b.output_bytes), f"{sync_best.seconds / b.seconds:.2f}x"])
    ratios = {}
    for label, runs in etl_runs.items():
        b = best(runs)
        ratios[label] = b.seconds / sync_best.seconds
        rows.append([f"bitcoin-etl, {label}", secs(runs), f"{b.seconds:.2f}",
                     rate(n, b.seconds), f"{b.node_cpu:.1f}", mib(b.peak_rss),
                     mib(b.output_bytes), f"{1 / ratios[label]:.2f}x"])
    r.table(["tool", "runs (s)", "best (s)", "tx/s", "node CPU (s)", "peak RSS",
             "output", "speed vs cointrail"], rows)
    worst_label = min(ratios, key=lambda k: ratios[k])
    ratio = ratios[worst_label]
    ok = ratio >= RATIO_TARGET
    if not ok:
        r.failures.append("ratio")
    rest_ratio = (best(etl_runs[worst_label]).seconds / best(sync_rest_runs).seconds
                  if sync_rest_runs else 0.0)
    r.add(f"**cointrail is {ratio:.1f}x bitcoin-etl end to end** (`sync --p2p` against "
          f"bitcoin-etl's fastest configuration, {worst_label}); target >= "
          f"{RATIO_TARGET:.0f}x: **{'met' if ok else 'NOT met'}**. Ratios per configuration: "
          + ", ".join(f"{k}: {v:.1f}x" for k, v in ratios.items())
          + f". Over REST (`sync` without `--p2p`): {rest_ratio:.1f}x.", "")
    in_proc = sync_piped["total_seconds"]  # as the command runs: background writes
    staged_s = sync_stages["total_seconds"]
    fastest = best(etl_runs[worst_label]).seconds
    rpc_floor = fetch_only["seconds"]
    startup_s = startup["cointrail"].seconds
    floor = startup_s + rpc_floor
    _, staged_parts = stage_rows(sync_stages, "sync")
    waits = staged_parts.get(WAIT_STAGE, 0.0)
    rest = max(staged_s - waits, 0.0)
    r.add(f"- What bounds the ratio: a tenth of bitcoin-etl's best is {fastest / 10:.2f} s. "
          f"cointrail's start-up (`cointrail --help`) takes {startup_s:.2f} s and fetching the "
          f"raw blocks alone (hashes in JSON-RPC batches, blocks from the node's P2P port, as "
          f"`sync --p2p` does, each dropped once in; best of {args.repeats}) {rpc_floor:.2f} "
          "s, so a sync that did nothing else would take "
          f"{floor:.2f} s, "
          f"at most {fastest / floor:.1f}x bitcoin-etl. The fetch runs on its own thread; "
          "meanwhile the ingesting thread's own work (decode, input resolution and rows in the "
          f"C core, Arrow, DuckDB insert + commit, open and close) takes {rest:.2f} s of the "
          f"staged run's {staged_s:.2f} s, one stage after another, and it waits {waits:.2f} s "
          "for blocks; the sync command's own start-up "
          f"(end to end minus in-process) is {max(sync_best.seconds - in_proc, 0.0):.2f} s. "
          + ("**10x is out of reach on this node at this chain length whatever the ingest "
             "does: start-up plus the node's RPC alone take more than a tenth of "
             "bitcoin-etl's time**; it would take reading the node's blk files (below) and a "
             "lighter start-up (the CLI's imports: typer, pyarrow, duckdb)."
             if floor >= fastest / 10 else
             f"Start-up and fetch leave room for 10x at this chain length; what stands "
             f"between is the in-process work beyond the fetch (DuckDB's insert + commit "
             f"{sync_stages['stages'].get('duckdb', 0.0):.2f} s the largest part), on 2 "
             "cores shared with the node.")
          + f" On a chain long enough for start-up to vanish on both sides, the ratio tends "
          f"to cointrail's in-process rate over bitcoin-etl's: {fastest / in_proc:.1f}x.")
    r.add(f"- Process start-up is part of both: `cointrail --help` takes "
          f"{startup['cointrail'].seconds:.2f} s, `bitcoinetl --help` "
          f"{startup['bitcoinetl'].seconds:.2f} s (both from compiled bytecode, as installed "
          "packages run). In-process (store open to close, no "
          f"start-up; best of {args.repeats} runs) cointrail syncs in {in_proc:.2f} s = "
          f"{rate(n, in_proc)} tx/s, {best(etl_runs[worst_label]).seconds / in_proc:.1f}x "
          "bitcoin-etl's end-to-end time, with each full batch committed on a writer thread "
          "while the next is built, as the command does (one stage after another, the staged "
          f"run below: {staged_s:.2f} s).")
    r.add("- The outputs differ in content: cointrail's rows resolve every input to the output "
          "it spends (value, address, dense ids) and are queryable; bitcoin-etl's export "
          "leaves each input's value and address null (`\"value\": null`) — its "
          "`enrich_transactions` step fills them with `getrawtransaction` per spent "
          "transaction.")
    if enrich is not None and enrich_sample:
        etl2 = best(etl_runs["batch 1, 2 workers"])
        full = enrich.seconds * enrich_inputs / enrich_sample
        r.add(f"- bitcoin-etl `enrich_transactions` (2 workers) on a sample of the export "
              f"(every k-th of its transactions, {enrich_sample:,} inputs): "
              f"{enrich.seconds:.2f} s (node CPU {enrich.node_cpu:.1f} s), "
              f"{enrich_sample / enrich.seconds:,.0f} inputs/s; extrapolated to all "
              f"{enrich_inputs:,} inputs: {full:,.0f} s. Export + enrich, content comparable "
              f"to cointrail's: about {etl2.seconds + full:,.0f} s, "
              f"{(etl2.seconds + full) / sync_best.seconds:,.0f}x cointrail's sync.")
    r.add("")
    rows, _ = stage_rows(sync_stages, "sync")
    r.add("### Where cointrail's sync time goes (in-process, stage timers, fastest of "
          f"{args.repeats} runs)", "")
    r.table(["stage", "seconds", "share", "tx/s if alone"], rows)

    # ------------------------------------------------------------------------ blk files
    blk_best = best(blk_runs)
    r.add("## blk-file ingest", "",
          f"`cointrail ingest blkfiles <node>/regtest/blocks --json` into a fresh store, node "
          f"stopped: runs {secs(blk_runs)} s, best **{blk_best.seconds:.2f} s = "
          f"{rate(n, blk_best.seconds)} tx/s** end to end (start-up included), peak RSS "
          f"{mib(blk_best.peak_rss)}. In-process, as the command runs it (each full batch "
          f"committed on a writer thread while the next is built; best of {args.repeats}): "
          f"**{blk_piped['total_seconds']:.2f} s = {rate(n, blk_piped['total_seconds'])} "
          f"tx/s**; one stage after another (fastest of {args.repeats} staged runs, table "
          f"below): {blk_stages['total_seconds']:.2f} s = "
          f"{rate(n, blk_stages['total_seconds'])} tx/s.", "")
    rows, _ = stage_rows(blk_stages, "blk")
    r.table(["stage", "seconds", "share", "tx/s if alone"], rows)

    # ------------------------------------------------------------------ 16-core projection
    st = blk_stages["stages"]
    rows_in = disk["counts"]["inputs"]
    rows_out = disk["counts"]["outputs"]
    seq_here = st.get("rows", 0.0) + st.get("flush", 0.0) + blk_stages["close_seconds"]
    per_row = seq_here / (rows_in + rows_out)
    per_tx_par = (st.get("read", 0.0) + st.get("decode", 0.0)) / n
    shape = MAINNET_INPUTS_PER_TX + MAINNET_OUTPUTS_PER_TX
    here_shape = (rows_in + rows_out) / n
    # memory latency once the tables outgrow the CPU caches: churn (one spend + one add per
    # output) at N entries against the same churn on a cache-resident table
    big_ns = utxo["churn_seconds"] / utxo["entries"] * 1e9
    small_ns = utxo["small_churn_seconds"] / utxo["small_churn_outputs"] * 1e9
    miss = max(big_ns - small_ns, 0.0) * 1e-9
    seq_main = MAINNET_TXS * shape * per_row
    seq_miss = MAINNET_TXS * shape * (per_row + miss)
    par_main = MAINNET_TXS * per_tx_par * (shape / here_shape)
    t16 = seq_main + par_main / CORES
    t16_miss = seq_miss + par_main / CORES
    t1, t1_miss = seq_main + par_main, seq_miss + par_main
    # with background writes the insert + commit overlap the rows of the next batch: the
    # sequential path is the longer of the two (the cache misses fall on the rows)
    rows_per = st.get("rows", 0.0) / (rows_in + rows_out)
    flush_per = st.get("flush", 0.0) / (rows_in + rows_out)
    close_per = blk_stages["close_seconds"] / (rows_in + rows_out)
    piped_main = MAINNET_TXS * shape * (max(rows_per, flush_per) + close_per)
    piped_miss = MAINNET_TXS * shape * (max(rows_per + miss, flush_per) + close_per)
    p16, p16_miss = piped_main + par_main / CORES, piped_miss + par_main / CORES
    r.add(f"## Projection: the full Bitcoin chain ({MAINNET_TXS / 1e9:.1f} B transactions) "
          f"on one {CORES}-core machine", "",
          "cointrail's ingest decodes blocks on threads a few blocks ahead (the C decoder "
          "releases the GIL while it parses), runs the C ingest core (input resolution, ids, "
          "rows) and Arrow on the ingesting thread, and commits each full batch to DuckDB on "
          "a writer thread while the next batch is built. What runs in parallel: decoding "
          "(independent per block; up to 8 threads) and, not yet, reading the blk files "
          "(the ingesting thread reads them). What cannot: resolving inputs and building "
          "rows in chain order (sequential by nature), the DuckDB insert + commit (one writer "
          "at a time; DuckDB compresses with its own threads, not counted on here). "
          "Measured here (the staged runs decode on the ingesting thread, to time each "
          "stage alone):", "",
          f"- sequential part (rows + flush + the checkpoint at close): "
          f"{per_row * 1e6:.2f} µs per input or output row "
          f"({here_shape:.2f} rows per transaction on this chain);",
          f"- parallel part (read + decode): {per_tx_par * 1e6:.2f} µs per transaction, scaled "
          f"by rows for mainnet's larger transactions;",
          f"- at full scale the tables outgrow the CPU caches: at {utxo['entries'] / 1e6:g} M "
          f"entries a spend + add costs {big_ns:.0f} ns per output against {small_ns:.0f} ns "
          f"in a table of {utxo['small_entries'] / 1e3:.0f} k (Python call included in both): "
          f"+{miss * 1e6:.2f} µs per row (180 M entries will miss the TLB as well);",
          f"- assumed mainnet shape: {MAINNET_INPUTS_PER_TX} inputs and "
          f"{MAINNET_OUTPUTS_PER_TX} outputs per transaction (approximate), one core of "
          "this machine's speed, blk files on a disk that is not the bottleneck.", "",
          f"**Projection: {seq_main / 3600:,.1f} h sequential + {par_main / 3600:,.1f} h / "
          f"{CORES} parallel = {t16 / 3600:,.1f} h on {CORES} cores; "
          f"{t16_miss / 3600:,.1f} h with the cache-miss cost on every row** "
          f"({t1 / 3600:,.1f}-{t1_miss / 3600:,.1f} h on one core as written). (Equivalent "
          f"rate: {MAINNET_TXS / t16_miss:,.0f} tx/s.)", "",
          f"With the writer thread, the insert + commit ({flush_per * 1e6:.2f} µs per row) "
          f"overlap the rows of the next batch ({rows_per * 1e6:.2f} µs per row, "
          f"{(rows_per + miss) * 1e6:.2f} with the cache misses): the sequential path is the "
          f"longer of the two plus the checkpoint at close, **{hours(p16, p16_miss)} on "
          f"{CORES} cores** (measured on this chain: in-process "
          f"{blk_stages['total_seconds']:.2f} s one stage after another, "
          f"{blk_piped['total_seconds']:.2f} s with the writer thread).", "",
          "Not included: the DuckDB insert's growth with the table sizes, reads of the "
          "address record file that miss the page cache (see Memory), and rebuilding the "
          "indexes when an ingest resumes (a query over all outputs and inputs).", "")

    # ---------------------------------------------------------------------------- memory
    r.add("## Memory", "")
    samples = blk_stages["samples"]
    m = blk_stages["memory"]
    if not blk_stages["compiled"]:
        r.add("**The compiled ingest core was not built: the figures below are the Python "
              "reference's.**", "")
        m = {"utxo_slots": 0, "utxo_used_slots": 0, "addr_slots": 0, "addr_used_slots": 0,
             "batch_bytes": 0, "record_bytes_mapped": 0, "addr_verified_hits": 0,
             "addr_false_matches": 0, **m}
    utxos, addresses = m["utxos"], m["addresses"]
    r.add("### The blk-file ingest of this chain", "",
          f"Peak RSS {mib(blk_stages['peak_rss'])} (VmHWM of the worker process; "
          f"{mib(blk_stages['rss_start'])} after imports). At the end: anonymous memory "
          f"{mib(blk_stages['anon_end'])}, file-backed pages {mib(blk_stages['file_end'])} "
          "(libraries and the address record file). "
          f"{utxos:,} unspent outputs in {m['utxo_slots']:,} slots of 32 B: "
          f"{mib(m['utxo_bytes'])}, {m['utxo_bytes'] / max(utxos, 1):.0f} B per output "
          f"(load {100 * m['utxo_used_slots'] / max(m['utxo_slots'], 1):.0f} %; a chain this "
          "short keeps most of the 1,024 partitions near their minimum size); "
          f"{addresses:,} addresses in {m['addr_slots']:,} slots of 8 B: "
          f"{mib(m['addr_bytes'])}, {m['addr_bytes'] / max(addresses, 1):.0f} B per address "
          f"(load {100 * m['addr_used_slots'] / max(m['addr_slots'], 1):.0f} % over 4,096 "
          f"partitions), their payloads in the record file ({mib(44 * addresses)}, 44 B per "
          f"address, memory-mapped). DuckDB's own buffers {mib(blk_stages['duckdb_memory'])}; "
          f"the batch's column buffers {mib(m['batch_bytes'])} (allocated for the largest "
          f"batch). 8-byte txid-prefix collisions: {m['collisions']}. Address lookups that "
          f"found a known address: {m['addr_verified_hits']:,}, each verified against its "
          f"record; fingerprint matches of another address: {m['addr_false_matches']}. "
          f"Resuming (a new ingestor rebuilding both indexes from the committed store, "
          f"record file checked against the addresses table): "
          f"{blk_stages['reload_seconds']:.2f} s.", "")
    if samples:
        picked, mark = [], 0.0
        for sample in samples:
            if sample[0] >= mark or sample is samples[-1]:
                picked.append(sample)
                mark = sample[0] + n / 8
        rows = []
        for txs, rss, utxo_n, addr_n in picked:
            rows.append([f"{txs:,}", mib(rss), f"{utxo_n:,}", f"{addr_n:,}",
                         mib(rss - blk_stages["rss_start"])])
        r.add(f"RSS along the ingest (the batch of {DEFAULT_BATCH_TXS:,} transactions is "
              "committed at each flush and its buffers reused; what stays is the two indexes):",
              "")
        r.table(["txs ingested", "RSS", "unspent outputs", "addresses", "RSS - start"], rows)
    per_buffered = m["batch_bytes"] / min(n, DEFAULT_BATCH_TXS)
    batch_main = per_buffered * DEFAULT_BATCH_TXS * shape / here_shape
    r.add(f"The batch is bounded by `batch_txs` (default {DEFAULT_BATCH_TXS:,}): its buffers "
          f"took {per_buffered:,.0f} B per buffered transaction here, about "
          f"{mib(batch_main)} for a batch of mainnet-shaped transactions, plus the same again "
          "while DuckDB inserts it. Two structures grow with the chain: the index of unspent "
          "outputs, which the issue allows, and the address map; a chain this short cannot "
          "show their asymptote, so each is measured alone below.", "")

    # unspent-output table
    u, up = utxo, utxo_py
    e = u["entries"]
    si, sc = u["stats_insert"], u["stats_churn"]
    u_ins = (u["anon_insert"] - u["anon_before"]) / e
    u_churn = (u["anon_churn"] - u["anon_before"]) / e
    p_ins = (up["rss_insert"] - up["rss_before"]) / e
    p_churn = (up["rss_churn"] - up["rss_before"]) / e
    r.add(f"### Unspent-output table: {e:,} synthetic unspent outputs (clean process each)", "",
          "Keys and values as at full-chain scale (tx_id and addr_id near "
          f"{ID_BASE:,}, values up to 21 M coins), two outputs per transaction; churn spends "
          "the oldest transaction's outputs and adds a new transaction, so the live count "
          "stays at N. Times include one Python call per transaction added and per output "
          "spent.", "")
    r.table(["", "memory growth per entry (insert / churn)", "table per entry", "load",
             "insert per output", "churn per output"], [
        ["compiled core: 32-byte slots, 1,024 partitions",
         f"{u_ins:.0f} B / {u_churn:.0f} B (anonymous RSS)",
         f"{sc['utxo_bytes'] / e:.1f} B",
         f"{100 * sc['utxo_used_slots'] / sc['utxo_slots']:.0f} %",
         f"{u['insert_seconds'] / e * 1e9:.0f} ns", f"{u['churn_seconds'] / e * 1e9:.0f} ns"],
        ["Python reference: dict of packed ints", f"{p_ins:.0f} B / {p_churn:.0f} B (RSS)",
         f"{up['table_churn'] / e:.0f} B + objects", "",
         f"{up['insert_seconds'] / e * 1e9:.0f} ns", f"{up['churn_seconds'] / e * 1e9:.0f} ns"],
    ], align="lrrrrr")
    assert sc["utxo_used_slots"] == si["utxo_used_slots"] == e  # no collisions, no tombstones
    # growth rule of _ingestcore.c: a partition grows by 1.25x when it passes 80 % load, so
    # every partition stays between 64 % and 80 % (partitions fill alike, hash-spread)
    u_lo, u_hi = 32 / 0.80, 32 / 0.64
    utxo_lo, utxo_hi = MAINNET_UTXOS * u_lo, MAINNET_UTXOS * u_hi
    u_part = MAINNET_UTXOS / 1024 * u_hi
    py_obj = sum(-(-up[k] // PYMALLOC_ALIGN) * PYMALLOC_ALIGN
                 for k in ("key_bytes", "value_bytes"))
    py_lo_slots, py_hi_slots = dict_slots_churn(int(MAINNET_UTXOS))
    py_utxo_lo = MAINNET_UTXOS * py_obj + dict_table_bytes(py_lo_slots, 24)
    py_utxo_hi = MAINNET_UTXOS * py_obj + dict_table_bytes(py_hi_slots, 24)
    r.add(f"Projection to {MAINNET_UTXOS / 1e6:.0f} M unspent outputs: each partition holds "
          "between 64 % and 80 % of its slots (it grows by 1.25x on passing 80 %), so "
          f"{u_lo:.0f}-{u_hi:.0f} B per output: **{gib(utxo_lo)} to {gib(utxo_hi)}** "
          f"(measured here: {sc['utxo_bytes'] / e:.1f} B per entry of table, "
          f"{u_churn:.0f} B of RSS growth after churn). Deletion shifts entries back instead "
          "of leaving tombstones, so churn leaves the table as insertion alone does. A resize "
          f"copies one partition at a time: the transient is one partition, ~{mib(u_part)} "
          f"at that size, not a second table (the Python dict's resize needed old and new "
          f"tables at once). The Python reference measured {p_churn:.0f} B per entry at "
          f"{e / 1e6:g} M; at 180 M its objects and power-of-two table come to "
          f"{gib(py_utxo_lo)}-{gib(py_utxo_hi)}.", "")

    # address map
    a, ap = addrs, addrs_py
    ae = a["entries"]
    st_a = a["stats"]
    a_anon = (a["anon_after"] - a["anon_before"]) / ae
    a_table = st_a["addr_bytes"] / ae
    a_load = st_a["addr_used_slots"] / st_a["addr_slots"]
    a_file = (a["file_bytes"] - 64) / ae
    pa_rss = (ap["rss_after"] - ap["rss_before"]) / ae
    pa_obj = ap["objects"] / ae
    r.add(f"### Address map: {ae:,} synthetic addresses (clean process each)", "",
          "Mix assumed: " + ", ".join(f"{mx[0]} {int(mx[1] * 100)} %" for mx in ADDRESS_MIX)
          + f"; ids up to {ae:,}. The core keys each address by a keyed 64-bit hash of (type, "
          "payload): 12 bits choose one of 4,096 partitions, a 28-bit fingerprint and the id "
          "fill an 8-byte slot, and every fingerprint match is verified against the "
          "address's record (type, length, payload: 44 B per address in `<store>.addrkeys`, "
          "memory-mapped), so the map is exact. The Python reference maps each address's text "
          "to its id in a dict.", "")
    r.table(["", "memory growth per address", "table per address", "load",
             "record file (growth slack included)", "insert", "lookup (hit)"], [
        ["compiled core", f"{a_anon:.1f} B (anonymous RSS)", f"{a_table:.1f} B",
         f"{100 * a_load:.0f} %", f"{a_file:.0f} B", f"{a['seconds'] / ae * 1e9:.0f} ns",
         f"{a['lookup_seconds'] / max(a['lookups'], 1) * 1e9:.0f} ns"],
        ["Python reference (str -> int dict)", f"{pa_rss:.0f} B (RSS)",
         f"{ap['table'] / ae:.0f} B + objects {pa_obj:.0f} B", "", "",
         f"{ap['seconds'] / ae * 1e9:.0f} ns", ""],
    ], align="lrrrrrr")
    # growth rule: 1.25x on passing 85 % load, so 68 % to 85 %
    a_lo, a_hi = 8 / 0.85, 8 / 0.68
    addr_lo, addr_hi = MAINNET_ADDRESSES * a_lo, MAINNET_ADDRESSES * a_hi
    records = MAINNET_ADDRESSES * 44
    py_addr = MAINNET_ADDRESSES * pa_obj + dict_table_bytes(
        dict_slots_insert_only(int(MAINNET_ADDRESSES)), 16)
    r.add(f"Projection to {MAINNET_ADDRESSES / 1e9:.1f} B addresses: {a_lo:.1f}-{a_hi:.1f} B "
          f"per address (load 68-85 %): **{gib(addr_lo)} to {gib(addr_hi)}** in memory, "
          f"plus the record file, {gib(records)} on disk, read through the page cache "
          f"(measured here: {a_table:.1f} B of table and {a_anon:.1f} B of anonymous RSS per "
          f"address). The Python reference: ~{gib(py_addr)}.", "")

    # the whole process at full scale
    fixed = blk_stages["rss_start"] + blk_stages["duckdb_memory"] + 2 * batch_main
    total_lo = utxo_lo + addr_lo + fixed
    total_hi = utxo_hi + addr_hi + fixed
    fits = total_hi <= RAM_BYTES
    if not fits:
        r.failures.append("total-memory")
    r.add(f"**Full chain ({MAINNET_UTXOS / 1e6:.0f} M unspent outputs, "
          f"{MAINNET_ADDRESSES / 1e9:.1f} B addresses): unspent outputs "
          f"{gib(utxo_lo)}-{gib(utxo_hi)} + address map {gib(addr_lo)}-{gib(addr_hi)} + the "
          f"rest of the process ~{gib(fixed)} (libraries after imports, DuckDB's buffers, the "
          f"batch twice) = {gib(total_lo)}-{gib(total_hi)}: "
          f"{'fits' if fits else 'does NOT fit'} in 32 GiB**, leaving "
          f"{gib(max(RAM_BYTES - total_hi, 0))}-{gib(max(RAM_BYTES - total_lo, 0))} for the "
          "page cache (the record file and DuckDB's file). BlockSci needs " + BLOCKSCI_RAM + ".",
          "",
          "What this leaves open at full scale: (1) every lookup of a known address reads its "
          f"44-byte record, and the {gib(records)} file will not stay in a page cache of "
          "that size: reuses of old, cold addresses cost a disk read each (random 4 KiB "
          "reads; the count depends on how addresses are reused, not measured here). "
          "(2) Resuming rebuilds the indexes from the store: the addresses table is streamed "
          "once (and the record file compared with it), and the unspent outputs come from an "
          "anti-join of all outputs with all inputs, which DuckDB must run within its own "
          "memory limit (it spills to disk). (3) DuckDB's buffer pool is bounded only by its "
          "`memory_limit`, 80 % of RAM by default; it held "
          f"{mib(blk_stages['duckdb_memory'])} here, but a full-chain ingest or resume on "
          "32 GB should set it (a few GB) below what the two indexes leave free.", "")

    # ------------------------------------------------------------------------------ disk
    c = disk["counts"]
    alone, pq = disk["alone"], disk["parquet"]
    block = disk["block_size"]
    r.add("## Disk", "",
          f"The blk-file store after CHECKPOINT: file {mib(disk['file_size'])} "
          f"({disk['used_blocks']} used blocks of {block // 1024} KiB; WAL "
          f"{disk['wal_size']} B) = **{disk['file_size'] / n:.0f} B per transaction, all "
          "tables** (blocks, addresses and the empty account-model tables included); the "
          f"whole database copied fresh takes {alone['whole copy'] / n:.0f} B per transaction "
          "(commits leave partly filled blocks: the same chain ingested in batches of "
          f"{SMALL_BATCH:,} transactions instead of {DEFAULT_BATCH_TXS:,} takes "
          f"{disk['small_batch_size'] / n:.0f} B per transaction; runs also differ by a few % "
          "with DuckDB's multi-threaded checkpoint). A file's fixed part "
          "(metadata, small tables, a block each) weighs on a chain this short and not on "
          "mainnet's. Per "
          "table: copied alone into a fresh DuckDB file (same 256 KiB blocks as the store), "
          "size minus that of a file with one empty table. DuckDB allocates whole blocks, so "
          f"each table is rounded up by up to one block, {block / n:.1f} B per transaction on "
          "a chain this short: the figures are upper bounds within that (the UTXO tables "
          "copied together into one file take the same blocks as the four apart). Parquet "
          "zstd for comparison. (DuckDB files with 16 KiB blocks came out twice as "
          "large — segments that small compress worse — so they are no guide.)", "")
    rows = []
    for t in ("txs", "outputs", "inputs", "coinbases", "addresses", "blocks"):
        rows.append([t, f"{c[t]:,}", mib(alone[t]), f"{alone[t] / max(c[t], 1):.1f}",
                     f"{alone[t] / n:.1f}", f"{pq[t] / n:.1f}"])
    duck_utxo = alone["utxo"]
    pq_utxo = sum(pq[t] for t in UTXO_TABLES)
    with_addr = alone["utxo+addresses"]
    rows.append(["**UTXO tables together** (txs, outputs, inputs, coinbases)", "",
                 mib(duck_utxo), "", f"**{duck_utxo / n:.1f}**", f"{pq_utxo / n:.1f}"])
    rows.append(["UTXO tables + addresses together", "", mib(with_addr), "",
                 f"{with_addr / n:.1f}", f"{(pq_utxo + pq['addresses']) / n:.1f}"])
    r.table(["table", "rows", "DuckDB", "B per row", "B per tx", "B per tx (Parquet zstd)"],
            rows)
    per_in = alone["inputs"] / max(c["inputs"], 1)
    per_out = alone["outputs"] / max(c["outputs"], 1)
    per_txrow = alone["txs"] / n  # coinbases: one row per block, nil per transaction
    main_tx = per_txrow + MAINNET_INPUTS_PER_TX * per_in + MAINNET_OUTPUTS_PER_TX * per_out
    # ids (prev_tx_id, addr_id) are bit-packed: here they fit in far fewer bits than on mainnet
    id_bits_here = max(n, c["addresses"]).bit_length()
    id_bits_main = int(max(MAINNET_TXS, MAINNET_ADDRESSES)).bit_length()
    extra_id = (id_bits_main - id_bits_here) / 8
    main_tx_ids = main_tx + extra_id * (2 * MAINNET_INPUTS_PER_TX + MAINNET_OUTPUTS_PER_TX)
    per_addr = alone["addresses"] / max(c["addresses"], 1)
    main_addr = per_addr * MAINNET_ADDRESSES / MAINNET_TXS
    ok_disk = duck_utxo / n <= DISK_TARGET
    ok_main = main_tx_ids <= DISK_TARGET
    if not (ok_disk and ok_main):
        r.failures.append("disk")
    r.add(f"UTXO tables (`cointrail.store.schema.UTXO_TABLES`: txs, outputs, inputs, "
          f"coinbases; blocks and addresses excluded): **{duck_utxo / n:.0f} B per "
          f"transaction on this chain** ({here_shape:.2f} input + output rows per "
          f"transaction); target <= {DISK_TARGET:.0f} B: **{'met' if ok_disk else 'NOT met'}** "
          f"(BlockSci: about {BLOCKSCI_DISK:.0f}). With mainnet's shape "
          f"({MAINNET_INPUTS_PER_TX} inputs, {MAINNET_OUTPUTS_PER_TX} outputs per transaction) "
          f"at the per-row upper bounds measured here (txs {per_txrow:.1f} B per "
          f"transaction — of which 32 B is the txid, incompressible —, inputs {per_in:.1f} "
          f"and outputs {per_out:.1f} B per row): about {main_tx:.0f} B per transaction. "
          f"But ids here fit in {id_bits_here} bits and on mainnet take ~{id_bits_main}: "
          f"bit-packed, each random-looking id column (inputs: prev_tx_id, addr_id; outputs: "
          f"addr_id) grows by ~{extra_id:.1f} B per row, so **about {main_tx_ids:.0f} B per "
          f"mainnet transaction — {'met, narrowly' if ok_main else 'NOT met'}** "
          "(an estimate, not a measurement).", "",
          f"The addresses table is not in that figure and is not small: {per_addr:.0f} B per "
          f"address here (text and payload both stored), about {main_addr:.0f} B per "
          f"transaction at mainnet's ~{MAINNET_ADDRESSES / MAINNET_TXS:.1f} addresses per "
          f"transaction; counted in, the store takes {with_addr / n:.0f} B per transaction "
          f"here{' — over the target' if with_addr / n > DISK_TARGET else ''}.", "",
          "Caveats: regtest data compresses differently from mainnet (three script types, "
          "every output has an address so no output scripts are stored, uniform sequence "
          "numbers and lock times, ids dense and recent), so the mainnet figure is an estimate "
          "from this chain's per-row sizes, not a measurement.", "")

    # --------------------------------------------------------------------------- summary
    r.add("## Targets", "",
          f"- cointrail >= {RATIO_TARGET:.0f}x bitcoin-etl end to end: "
          f"{'met' if 'ratio' not in r.failures else 'NOT met'} ({ratio:.1f}x)",
          f"- full-chain input resolution in 32 GB: "
          f"{'met' if 'total-memory' not in r.failures else 'NOT met'} (unspent outputs "
          f"{gib(utxo_lo)}-{gib(utxo_hi)}, address map {gib(addr_lo)}-{gib(addr_hi)}, "
          f"process in all {gib(total_lo)}-{gib(total_hi)}; address records {gib(records)} "
          "on disk)",
          f"- UTXO tables <= {DISK_TARGET:.0f} B per transaction: "
          f"{'met' if 'disk' not in r.failures else 'NOT met'} ({duck_utxo / n:.0f} B here, "
          f"about {main_tx_ids:.0f} B estimated for mainnet; {with_addr / n:.0f} B here with "
          "the addresses table)",
          f"- blk-file ingest: {rate(n, blk_best.seconds)} tx/s end to end; projected full "
          f"chain on {CORES} cores: {p16 / 3600:.1f}-{p16_miss / 3600:.1f} h with the writer "
          f"thread ({t16 / 3600:.1f}-{t16_miss / 3600:.1f} h one stage after another)",
          "")
    return r


if __name__ == "__main__":
    sys.exit(main())
