"""Address clustering speed on one core: cointrail's union-find against the targets and networkx.

    python bench/cluster.py [--links 100000000] [--addresses 60000000] [--batch 10000000]
                            [--small-links 1000000] [--seed 1] [--no-uniform] [--no-write]

(a) Synthetic common-input links shaped like a chain's (see `generate`), made with numpy
    before any timing and kept on disk: `UnionFind.union_batch` over every batch (merges
    recorded, as the product does) plus `find_all`, timed; peak RSS of that phase (the kernel's
    high-water mark, reset once the input is made) and bytes per address, projected to the
    full Bitcoin chain. The same count of uniformly random links (no locality, the worst case
    for the caches) is timed too.
(b) A 1 M-link graph from the same generator: cointrail (new UnionFind, union_batch,
    find_all) against networkx (graph build from a prepared edge list, then
    `connected_components`), medians of repeats, the garbage collector off while timing; both
    partitions are checked equal outside the timing.

Targets (issue 4): (a) <= 60 s for 100 M links; (b) >= 30x networkx. The table is printed and
written to bench/results/cluster.md with the machine's details.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "cluster.md"
BITCOIN_ADDRESSES = 1_200_000_000
TIME_TARGET = 60.0
NETWORKX_TARGET = 30.0
NETWORKX = "networkx>=3,<4"  # bench-only dependency


def pin_one_core() -> int:
    """Run on one core (the last one this process may use), so the numbers are per core."""
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def ensure_networkx() -> None:
    if importlib.util.find_spec("networkx") is None:
        print(f"installing {NETWORKX} for the comparison", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", NETWORKX], check=True)


# ----------------------------------------------------------------------------- memory


def status_kib(key: str) -> int:
    """A ``Vm*`` line of /proc/self/status, in KiB (0 where it is not available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False if not possible."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


# ----------------------------------------------------------------------------- data


@dataclass
class Generated:
    """A synthetic link set: batches of int64 (a, b) pairs over `n` addresses."""

    n: int
    batches: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_links(self) -> int:
        return sum(a.size for a, _ in self.batches)


def generate(n_addresses: int, n_links: int, batch: int, seed: int) -> Generated:
    """Links shaped like a UTXO chain's common-input links, in batches of about `batch`.

    Owners ("entities") have power-law sizes (P(s) ~ s^-2.2, up to 100 k addresses, so most
    are one or a few addresses) plus 50 exchange-like giants with Zipf sizes (the largest 2 %
    of all addresses). Address ids follow first appearance: each entity lives from a random
    birth over a span that grows with its size (giants: the whole chain), and its addresses
    appear at random times in that span. Each multi-input transaction belongs to an entity
    picked in proportion to its size, happens at a random time in its span (transactions are
    applied in time order) and spends k >= 2 addresses drawn from it (P(k) ~ (k-1)^-2.5, at
    most the entity's size, with repeats); its links chain consecutive inputs.
    """
    rng = np.random.default_rng(seed)
    n_giants = 50
    giant_sizes = (0.02 * n_addresses / np.arange(1, n_giants + 1) ** 0.9).astype(np.int64)
    rest = n_addresses - int(giant_sizes.sum())
    chunks: list[NDArray[np.int64]] = []
    total = 0
    while total < rest:
        drawn = np.minimum(rng.zipf(2.2, size=max(rest // 3, 16)), 100_000).astype(np.int64)
        chunks.append(drawn)
        total += int(drawn.sum())
    small = np.concatenate(chunks)
    cut = int(np.searchsorted(np.cumsum(small), rest))
    small = small[: cut + 1]
    small[-1] -= int(small.sum()) - rest
    small = small[small > 0]
    sizes = np.concatenate([giant_sizes, small])
    n_entities = sizes.size
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    birth = rng.random(n_entities)
    birth[:n_giants] *= 0.3
    span = np.minimum(1e-4 * sizes**0.7 * rng.lognormal(0.0, 1.0, n_entities), 1.0 - birth)
    span[:n_giants] = 1.0 - birth[:n_giants]

    # slot j (entity-major order) -> address id = rank of its first-appearance time
    slot_entity = np.repeat(np.arange(n_entities, dtype=np.int32), sizes)
    appear = birth[slot_entity] + span[slot_entity] * rng.random(n_addresses)
    order = np.argsort(appear)
    del appear
    id_of_slot = np.empty(n_addresses, dtype=np.int64)
    id_of_slot[order] = np.arange(n_addresses, dtype=np.int64)
    del order

    # transactions: entity in proportion to size (a random slot of a multi-address entity)
    multi_slots = np.flatnonzero(sizes[slot_entity] >= 2)
    n_tx = int(n_links / 1.8) + 1000
    tx_entity = np.empty(0, dtype=np.int32)
    tx_k = np.empty(0, dtype=np.int64)
    while int((tx_k - 1).sum()) < n_links:
        ent = slot_entity[multi_slots[rng.integers(0, multi_slots.size, n_tx)]]
        k = np.minimum(1 + rng.zipf(2.5, n_tx), np.maximum(sizes[ent], 2))
        tx_entity = np.concatenate([tx_entity, ent])
        tx_k = np.concatenate([tx_k, k])
        n_tx = n_tx // 4 + 1000
    del multi_slots, slot_entity
    tx_time = birth[tx_entity] + span[tx_entity] * rng.random(tx_entity.size)
    by_time = np.argsort(tx_time)
    del tx_time
    tx_entity, tx_k = tx_entity[by_time], tx_k[by_time]
    del by_time
    last = int(np.searchsorted(np.cumsum(tx_k - 1), n_links))
    tx_entity, tx_k = tx_entity[: last + 1], tx_k[: last + 1]

    out = Generated(n=n_addresses)
    tx_links = np.cumsum(tx_k - 1)
    first_tx = 0
    while first_tx < tx_entity.size:
        before = int(tx_links[first_tx - 1]) if first_tx else 0
        end_tx = int(np.searchsorted(tx_links, before + batch, side="left")) + 1
        ent = tx_entity[first_tx:end_tx]
        k = tx_k[first_tx:end_tx]
        inp_entity = np.repeat(ent, k)
        slot = start[inp_entity] + (rng.random(inp_entity.size) * sizes[inp_entity]).astype(
            np.int64
        )
        addr = id_of_slot[slot]
        is_first = np.zeros(addr.size, dtype=bool)
        is_first[np.concatenate([[0], np.cumsum(k)[:-1]])] = True
        keep = ~is_first[1:]  # a link (addr[j], addr[j+1]) unless j+1 starts a new tx
        out.batches.append((addr[:-1][keep].copy(), addr[1:][keep].copy()))
        first_tx = end_tx
    extra = out.n_links - n_links
    if extra > 0:
        a_last, b_last = out.batches[-1]
        out.batches[-1] = (a_last[: a_last.size - extra], b_last[: b_last.size - extra])
    out.notes = [
        f"{n_entities:,} entities ({int((sizes >= 2).sum()):,} with >= 2 addresses, "
        f"largest {int(sizes.max()):,}), {tx_entity.size:,} multi-input transactions "
        f"(mean {float(tx_k.mean()):.2f} inputs, most {int(tx_k.max()):,})"
    ]
    return out


def uniform_batches(
    n_addresses: int, n_links: int, batch: int, seed: int
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    rng = np.random.default_rng(seed)
    for lo in range(0, n_links, batch):
        m = min(batch, n_links - lo)
        yield rng.integers(0, n_addresses, m), rng.integers(0, n_addresses, m)


# ----------------------------------------------------------------------------- (a) big run


@dataclass
class BigRun:
    label: str
    n: int
    n_links: int
    union_seconds: list[float]
    find_all_seconds: float
    n_merges: int
    clusters: NDArray[Any]
    peak_kib: int
    base_kib: int
    depth_max: int
    depth_mean: float
    structure_bytes: int

    @property
    def total_seconds(self) -> float:
        return sum(self.union_seconds) + self.find_all_seconds


def tree_depths(parent: NDArray[Any]) -> tuple[int, float]:
    """Max and mean distance to the root over all elements (before `find_all` flattens)."""
    n = parent.size
    current = np.flatnonzero(parent != np.arange(n, dtype=parent.dtype))
    total, depth = 0, 0
    node = parent[current].astype(np.int64)
    while current.size:
        depth += 1
        total += current.size
        up = parent[node].astype(np.int64)
        moving = up != node
        current, node = current[moving], up[moving]
    return depth, total / max(n, 1)


def timed_run(
    label: str,
    n: int,
    batches: Callable[[], Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]],
) -> BigRun:
    """Union every batch (timed per call), then `find_all` (timed); peak RSS of the phase."""
    from cointrail.analysis.clustering.unionfind import UnionFind

    peak_ok = reset_peak()
    base = status_kib("VmRSS")
    uf = UnionFind(n, use_speedups=True)
    seconds: list[float] = []
    n_links = n_merges = 0
    gc.disable()
    try:
        for a, b in batches():
            start = time.perf_counter()
            result = uf.union_batch(a, b)
            seconds.append(time.perf_counter() - start)
            n_links += a.size
            n_merges += result.n_merges
            print(
                f"  {label}: batch {len(seconds)}: {a.size:,} links in {seconds[-1]:.2f} s",
                flush=True,
            )
            del a, b, result
        peak = status_kib("VmHWM")
        gc.enable()
        depth_max, depth_mean = tree_depths(uf.parent)
        reset_peak()
        gc.disable()
        start = time.perf_counter()
        clusters = uf.find_all()
        find_seconds = time.perf_counter() - start
        peak = max(peak, status_kib("VmHWM"))
    finally:
        gc.enable()
    if not peak_ok:  # no VmHWM reset: the process-wide mark (includes generating the data)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return BigRun(
        label, n, n_links, seconds, find_seconds, n_merges, clusters, peak, base,
        depth_max, depth_mean, uf.nbytes,
    )  # fmt: skip


def cluster_stats(clusters: NDArray[Any]) -> str:
    counts = np.bincount(clusters)
    sizes = counts[counts > 0]
    top = np.sort(sizes)[::-1][:5]
    return (
        f"{sizes.size:,} clusters; {int((sizes == 1).sum()):,} single addresses; "
        f"{float(sizes[sizes >= 2].sum()) / clusters.size:.1%} of addresses in clusters of "
        f">= 2; largest: {', '.join(f'{int(s):,}' for s in top)}"
    )


# ----------------------------------------------------------------------------- (b) networkx


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return statistics.median(times)


@dataclass
class Versus:
    n: int
    n_links: int
    n_nodes_nx: int
    cointrail: float
    nx_build: float
    nx_components: float

    @property
    def nx_total(self) -> float:
        return self.nx_build + self.nx_components


def versus_networkx(small: Generated, repeats: int, nx_repeats: int) -> Versus:
    nx: Any = importlib.import_module("networkx")  # untyped, bench-only

    from cointrail.analysis.clustering.unionfind import UnionFind

    a = np.concatenate([x for x, _ in small.batches])
    b = np.concatenate([y for _, y in small.batches])
    edges = list(zip(a.tolist(), b.tolist(), strict=True))

    def ours() -> NDArray[Any]:
        uf = UnionFind(small.n, use_speedups=True)
        uf.union_batch(a, b)
        return uf.find_all()

    def build() -> Any:
        graph = nx.Graph()
        graph.add_edges_from(edges)
        return graph

    graph = build()
    components = list(nx.connected_components(graph))
    clusters = ours()
    for component in components:  # same partition: each component is one cluster, id = min
        members = np.fromiter(component, dtype=np.int64, count=len(component))
        assert (clusters[members] == members.min()).all(), "networkx and cointrail differ"
    linked = np.unique(np.concatenate([a, b]))
    assert np.unique(clusters[linked]).size == len(components)
    assert graph.number_of_nodes() == linked.size

    return Versus(
        small.n,
        a.size,
        graph.number_of_nodes(),
        median_seconds(ours, repeats),
        median_seconds(build, nx_repeats),
        median_seconds(lambda: list(nx.connected_components(graph)), nx_repeats),
    )


# ------------------------------------------------------------------------------ report


def machine_info(core: int) -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1])
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    from cointrail.analysis.clustering import unionfind

    return [
        f"- CPU: {model} ({os.cpu_count()} cores, pinned to core {core}); RAM {mib(mem_total)}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- load average when the report was written (other work on the machine): "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)",
        f"- cointrail {version('cointrail')} (compiled union-find: "
        f"{'built' if unionfind.HAVE_SPEEDUPS else 'NOT built'}), numpy {version('numpy')}, "
        f"networkx {version('networkx')}",
    ]


def big_rows(run: BigRun) -> list[str]:
    rate = run.n_links / sum(run.union_seconds) / 1e6
    per_addr = (run.peak_kib - run.base_kib) * 1024 / run.n
    return [
        f"| {run.label} | {run.n_links:,} | {run.n:,} | {run.n_merges:,} | "
        f"{sum(run.union_seconds):.1f} s ({rate:.1f} M links/s) | {run.find_all_seconds:.2f} s | "
        f"**{run.total_seconds:.1f} s** | {mib(run.peak_kib)} | {per_addr:.1f} | "
        f"{run.depth_max} / {run.depth_mean:.2f} |"
    ]


def report(
    core: int,
    args: argparse.Namespace,
    runs: list[BigRun],
    notes: list[str],
    versus: Versus,
    gen_seconds: float,
) -> tuple[str, bool, bool]:
    main = runs[0]
    time_ok = main.total_seconds <= TIME_TARGET
    ratio = versus.nx_total / versus.cointrail
    nx_ok = ratio >= NETWORKX_TARGET
    structure_per_addr = main.structure_bytes / main.n
    measured_per_addr = (main.peak_kib - main.base_kib) * 1024 / main.n
    batch_bytes = args.batch * (2 * 8 + 3 * 8)
    out_per_addr = main.clusters.itemsize
    lines = [
        "# Address clustering (union-find) speed, one core",
        "",
        "Generated by `python bench/cluster.py` (one process, pinned to one core; garbage "
        "collector off while timing).",
        "",
        *machine_info(core),
        "",
        "## (a) 100 M links: union_batch over every batch + find_all",
        "",
        f"Synthetic links (seed {args.seed}, made in {gen_seconds:.0f} s before any timing, "
        f"then read batch by batch): {'; '.join(notes)}. Batches of about "
        f"{args.batch:,} links; merges recorded (younger, older, link) as the product does; "
        "no supercluster guard. Peak RSS is the kernel's high-water mark (VmHWM) over the "
        "timed phase, reset after the data was made; bytes/address = (peak - RSS before the "
        "UnionFind was created) / addresses, so it includes one batch in flight, its merge "
        "records and the find_all output.",
        "",
        "| links | count | addresses | merges | union_batch total | find_all | total | "
        "peak RSS | bytes/address | tree depth max / mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines += big_rows(run)
    per_batch = (f"{r.label}: " + ", ".join(f"{s:.2f}" for s in r.union_seconds) for r in runs)
    lines += ["", "Per batch (s): " + "; ".join(per_batch) + "."]
    lines += [
        "",
        "Clusters: " + "; ".join(f"{run.label}: {cluster_stats(run.clusters)}" for run in runs),
        "",
        "Tree depth is each address's distance to its root after the last batch, before "
        "find_all flattens it: linking the younger root under the older one (no union by "
        "size) with path halving keeps the trees shallow in practice.",
        "",
        "### Memory, projected to the full Bitcoin chain",
        "",
        f"- UnionFind storage: {structure_per_addr:.1f} bytes/address ({main.clusters.dtype} "
        "parent + size, interleaved; uint32 up to 4,294,967,295 addresses, then int64 and "
        f"twice that): {gib(structure_per_addr * BITCOIN_ADDRESSES)} for "
        f"{BITCOIN_ADDRESSES / 1e9:.1f} B addresses.",
        f"- find_all output: {out_per_addr} bytes/address "
        f"({gib(out_per_addr * BITCOIN_ADDRESSES)}; none with `find_all(copy=False)`, a view).",
        f"- One batch in flight: a, b int64 + merge records = 40 bytes/link, "
        f"{batch_bytes / 2**20:,.0f} MiB for {args.batch:,} links (independent of the chain "
        "size).",
        f"- Measured: {measured_per_addr:.1f} bytes/address over the phase (peak "
        f"{mib(main.peak_kib)}, {mib(main.base_kib)} before); the same per-address figure "
        f"gives {gib(measured_per_addr * BITCOIN_ADDRESSES)} for 1.2 B addresses, and "
        f"structure + output + one batch gives "
        f"{gib((structure_per_addr + out_per_addr) * BITCOIN_ADDRESSES + batch_bytes)}.",
        "",
        f"## (b) {versus.n_links:,}-link graph: cointrail against networkx",
        "",
        f"Same generator, {versus.n:,} addresses ({versus.n_nodes_nx:,} of them linked). "
        "cointrail: new UnionFind + union_batch + find_all (median of "
        f"{args.repeats}); networkx: `Graph.add_edges_from` on a prepared list of Python-int "
        f"edges, then `list(connected_components(G))` (median of {args.nx_repeats} each; only "
        "linked addresses are nodes, which favours networkx). Both partitions were checked "
        "equal.",
        "",
        "| | seconds | cointrail is faster by |",
        "|---|---:|---:|",
        f"| cointrail (union_batch + find_all) | {versus.cointrail * 1e3:.1f} ms | |",
        f"| networkx graph build | {versus.nx_build * 1e3:.0f} ms | "
        f"{versus.nx_build / versus.cointrail:.0f}x |",
        f"| networkx connected_components | {versus.nx_components * 1e3:.0f} ms | "
        f"{versus.nx_components / versus.cointrail:.0f}x |",
        f"| networkx total | {versus.nx_total * 1e3:.0f} ms | **{ratio:.0f}x** |",
        "",
        "## Targets (issue 4)",
        "",
        f"- 100 M links in <= {TIME_TARGET:.0f} s on one core: "
        f"{'met' if time_ok else 'NOT met'} ({main.total_seconds:.1f} s)",
        f"- >= {NETWORKX_TARGET:.0f}x networkx on a 1 M-link graph (build + components), same "
        f"run: {'met' if nx_ok else 'NOT met'} ({ratio:.0f}x; components alone "
        f"{versus.nx_components / versus.cointrail:.0f}x)",
        "",
    ]
    return "\n".join(lines), time_ok, nx_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=100_000_000)
    parser.add_argument("--addresses", type=int, default=60_000_000)
    parser.add_argument("--batch", type=int, default=10_000_000)
    parser.add_argument("--small-links", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=11, help="runs of cointrail in (b)")
    parser.add_argument("--nx-repeats", type=int, default=3, help="runs of networkx in (b)")
    parser.add_argument("--no-uniform", action="store_true", help="skip the uniform run")
    parser.add_argument("--no-write", action="store_true", help="only print the report")
    args = parser.parse_args()

    core = pin_one_core()
    ensure_networkx()
    from cointrail.analysis.clustering.unionfind import HAVE_SPEEDUPS

    if not HAVE_SPEEDUPS:
        print("cointrail's compiled union-find is not built: pip install -e .", file=sys.stderr)
        return 2

    print(f"generating {args.links:,} links over {args.addresses:,} addresses", flush=True)
    start = time.perf_counter()
    data = generate(args.addresses, args.links, args.batch, args.seed)
    gen_seconds = time.perf_counter() - start
    notes = data.notes
    print(f"  done in {gen_seconds:.0f} s: {notes[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="cointrail-bench-") as tmp:
        paths = []
        for i, (a, b) in enumerate(data.batches):
            paths.append((Path(tmp) / f"a{i}.npy", Path(tmp) / f"b{i}.npy"))
            np.save(paths[-1][0], a)
            np.save(paths[-1][1], b)
        del data, a, b

        def from_disk() -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
            for path_a, path_b in paths:
                yield np.load(path_a), np.load(path_b)

        runs = [timed_run("chain-like", args.addresses, from_disk)]
    if not args.no_uniform:
        runs.append(
            timed_run(
                "uniform random",
                args.addresses,
                lambda: uniform_batches(args.addresses, args.links, args.batch, args.seed),
            )
        )

    print(f"(b) {args.small_links:,} links: cointrail against networkx", flush=True)
    small_n = max(args.small_links * args.addresses // args.links, 1000)
    small = generate(small_n, args.small_links, args.small_links, args.seed)
    versus = versus_networkx(small, args.repeats, args.nx_repeats)

    text, time_ok, nx_ok = report(core, args, runs, notes, versus, gen_seconds)
    print()
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        print(f"written to {RESULTS.relative_to(REPO)}")
    return 0 if time_ok and nx_ok else 1


if __name__ == "__main__":
    sys.exit(main())
