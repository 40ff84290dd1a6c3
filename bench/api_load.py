"""API load: a fixed arrival rate of mixed reads and single-address screening on loopback.

Builds a store from the bundled mainnet blocks 0–438 (ingested, clustered, one own tag), starts
``cointrail serve`` in a subprocess on a free 127.0.0.1 port (rate limit raised above the load),
and sends RATE requests per second for DURATION seconds from an async httpx client: each
request starts at its scheduled time whether or not earlier ones have answered (open loop),
so a slow server shows as latency, not as a lower rate (a small keep-alive HTTP/1.1 client on
64 connections, cheap enough to share the machine with the server). Reports errors and p50/p99/max
latency per route kind, and writes ``bench/results/api_load.md``.

    python bench/api_load.py [--rate 200] [--duration 60] [--out bench/results/api_load.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cointrail import get_chain
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path

SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def build_store(root: Path) -> list[str]:
    """Ingest, cluster, tag; returns addresses of the chain to ask about."""
    from cointrail.analysis.clustering.engine import Clusterer
    from cointrail.attribution import AttributionStore, import_tags
    from cointrail.store.duck import Store
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    with Store(root).chain(get_chain("bitcoin", "mainnet")) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        Clusterer(store).run()
        addresses = [str(r[0]) for r in store.query(
            "SELECT text FROM addresses ORDER BY addr_id LIMIT 400")]
    tags = root / "own-tags.csv"
    tags.write_text("address,chain,label,category,actor,confidence,source\n"
                    f"{HAL},bitcoin,Hal Finney (bench label),exchange,,ownership,bench\n")
    with AttributionStore(root) as attr:
        import_tags(attr, [tags])
    return addresses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def requests_mix(addresses: list[str], rng: random.Random) -> tuple[str, str]:
    """(kind, path): half single-address screening, half reads of several kinds."""
    a = rng.choice(addresses)
    roll = rng.random()
    if roll < 0.5:
        return "screen", f"/api/v1/screen?address={a}"
    if roll < 0.65:
        return "address", f"/api/v1/addresses/{a}"
    if roll < 0.75:
        return "neighbours", f"/api/v1/addresses/{a}/neighbours?limit=20"
    if roll < 0.85:
        return "tx", f"/api/v1/txs/{FIRST_TRANSFER}"
    if roll < 0.95:
        return "block", f"/api/v1/blocks/{rng.randrange(439)}"
    return "search", f"/api/v1/search?q={a}"


class Connection:
    """One keep-alive HTTP/1.1 connection: a minimal client, so that the load generator (on
    the same two cores as the server) costs little CPU per request."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.headers = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        writer.write(f"GET {path} HTTP/1.1\r\n{self.headers}".encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length, chunked = 0, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            while (size := int((await reader.readline()).strip(), 16)) > 0:
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def run_load(port: int, key: str, addresses: list[str], rate: float, duration: float,
                   connections: int = 64) -> dict[str, list[tuple[float, int]]]:
    """Open loop: request i is due at t0 + i/rate; its latency counts from then, so time
    spent waiting for a free connection (a slow server) is part of it."""
    rng = random.Random(8632)
    results: dict[str, list[tuple[float, int]]] = {}
    queue: asyncio.Queue[tuple[str, str, float] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection("127.0.0.1", port, key)
        while (item := await queue.get()) is not None:
            kind, path, due = item
            try:
                status = await conn.get(path)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                conn.close()
                status = -1
            results.setdefault(kind, []).append((time.perf_counter() - due, status))
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    t0 = time.perf_counter()
    for i in range(int(rate * duration)):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        kind, path = requests_mix(addresses, rng)
        queue.put_nowait((kind, path, due))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(results: dict[str, list[tuple[float, int]]], rate: float, duration: float,
           elapsed: float) -> str:
    rows = []
    all_lat: list[float] = []
    errors = 0
    for kind in sorted(results):
        lat = [t * 1000 for t, _ in results[kind]]
        bad = sum(1 for _, s in results[kind] if s != 200)
        errors += bad
        all_lat += lat
        rows.append(f"| {kind} | {len(lat)} | {bad} | {percentile(lat, 0.5):.1f} | "
                    f"{percentile(lat, 0.99):.1f} | {max(lat):.1f} |")
    rows.append(f"| **all** | {len(all_lat)} | {errors} | {percentile(all_lat, 0.5):.1f} | "
                f"{percentile(all_lat, 0.99):.1f} | {max(all_lat):.1f} |")
    return "\n".join([
        "# API load benchmark",
        "",
        f"`python bench/api_load.py --rate {rate:g} --duration {duration:g}`: an open-loop "
        f"client sends {rate:g} requests/s for {duration:g} s to `cointrail serve` on "
        "127.0.0.1 (one uvicorn process, store: bundled mainnet blocks 0–438, clustered, one "
        "tag). Half the requests screen one address (`GET /api/v1/screen`), the rest read "
        "addresses, neighbour pages, transactions, blocks and search. Every request carries "
        "an API key, is rate-limit checked and written to the audit log. The reads repeat "
        "(402 addresses, 439 blocks, one transaction), so after its first answer a read "
        "comes from the server's response cache (kept while the store files are unchanged).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with the client and "
        f"other work; Python {platform.python_version()}. Sending took {elapsed:.1f} s.",
        "",
        "| route kind | requests | errors | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "api_load.md")
    args = parser.parse_args()
    from cointrail.auth.keys import create_key

    with tempfile.TemporaryDirectory(prefix="cointrail-api-load-") as tmp:
        root = Path(tmp)
        addresses = [*build_store(root), HAL, SATOSHI]
        key = create_key(root, "load-bench", "analyst").secret
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
        server = subprocess.Popen(
            [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(root),
             "serve", "--host", "127.0.0.1", "--port", str(port), "--rate", "100000",
             "--burst", "100000", "--no-web"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            # warm-up: open the databases and the spend graph once
            asyncio.run(run_load(port, key, addresses, 50, 2))
            started = time.perf_counter()
            results = asyncio.run(run_load(port, key, addresses, args.rate, args.duration))
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = report(results, args.rate, args.duration, elapsed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
