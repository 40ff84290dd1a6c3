"""Fuzz `decode_block` / `decode_tx` with mutated real mainnet blocks and transactions.

    python bench/fuzz.py --count 1000000 [--seed S] [--jobs 2]
    python bench/fuzz.py --seed S --replay INDEX      # re-run one input and show it

Invariant checked: every input decodes (and re-encodes to itself) or raises DecodeError, within
the time limit; every other outcome is a failure, printed with its seed, index and hex prefix and
saved under bench/results/fuzz-failures/. The mutation engine is tests/support/fuzzing.py (the
short test in tests/unit/chain/utxo/test_fuzz_short.py runs the same code).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "src", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.support.data import shared_data  # noqa: E402
from tests.support.fuzzing import (  # noqa: E402
    EMPTY,
    Failure,
    Options,
    Result,
    check_case,
    load_corpus,
    make_case,
    merge,
    run_range,
)

RESULTS = ROOT / "bench" / "results" / "fuzz-failures"
HEX_PREFIX = 64  # bytes of each failing input shown on screen


def _task(args: tuple[int, int, int, Options]) -> Result:
    seed, start, stop, options = args
    return run_range(seed, start, stop, options)


def run(count: int, seed: int, jobs: int, chunk: int, options: Options) -> Result:
    """Check inputs 0 to count - 1, over `jobs` processes, printing progress."""
    load_corpus(options.data_dir)  # once in the parent: forked workers inherit it
    tasks = [(seed, a, min(a + chunk, count), options) for a in range(0, count, chunk)]
    total = EMPTY
    began = last = time.perf_counter()

    def progress(result: Result) -> None:
        nonlocal total, last
        total = merge(total, result, options.keep_per_signature)
        now = time.perf_counter()
        if now - last >= 5 or total.count == count:
            last = now
            rate = total.count / max(now - began, 1e-9)
            print(
                f"  {total.count:>9,}/{count:,} inputs  {rate:>8,.0f}/s  {total.failed} failures",
                flush=True,
            )

    if jobs <= 1:
        for t in tasks:
            progress(_task(t))
    else:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ctx.Pool(jobs) as pool:
            for result in pool.imap_unordered(_task, tasks):
                progress(result)
    return total


def save(failure: Failure, out: Path) -> Path:
    """Write the failing input (.bin) and what is known about it (.txt); returns the .bin."""
    out.mkdir(parents=True, exist_ok=True)
    case = failure.case
    stem = f"{failure.category}-{case.name}"
    (out / f"{stem}.bin").write_bytes(case.data)
    (out / f"{stem}.txt").write_text(
        f"category: {failure.category}\n"
        f"error: {failure.error}\n"
        f"where: {failure.where}\n"
        f"seed: {case.seed}\nindex: {case.index}\n"
        f"decoder: decode_{case.target}(data, {case.chain!r}, 'mainnet')\n"
        f"origin: {case.origin}\nmutations: {', '.join(case.mutations)}\n"
        f"size: {len(case.data)} bytes, {failure.seconds:.4f} s\n"
        f"reproduce: python bench/fuzz.py --seed {case.seed} --replay {case.index}\n"
        f"hex: {case.data.hex()}\n\n{failure.details}\n"
    )
    return out / f"{stem}.bin"


def report(total: Result, seed: int, jobs: int, wall: float, out: Path) -> None:
    print(
        f"fuzz: seed {seed}, {total.count:,} inputs in {wall:.1f} s "
        f"({total.count / max(wall, 1e-9):,.0f} inputs/s, {jobs} process(es))"
    )
    print(
        f"  decoded {total.decoded:,}, rejected with DecodeError {total.rejected:,}, "
        f"failures {total.failed:,}"
    )
    print("  slowest inputs:")
    for t in total.slowest:
        print(
            f"    {t.seconds * 1000:8.1f} ms  decode_{t.target} {t.chain} {t.size:,} bytes "
            f"from {t.origin} (--seed {t.seed} --replay {t.index})"
        )
    if not total.failed:
        return
    print("  failures by cause:")
    for signature, n in total.failure_counts:
        print(f"    {n:>7,} x {signature}")
    print(f"  examples (saved under {out}):")
    for f in total.failures:
        path = save(f, out)
        case = f.case
        print(
            f"    seed {case.seed} index {case.index}: decode_{case.target} {case.chain}, "
            f"{len(case.data)} bytes from {case.origin} after {'+'.join(case.mutations)}\n"
            f"      {f.error[:200]}\n      at {f.where}\n"
            f"      hex[:{HEX_PREFIX}] {case.data[:HEX_PREFIX].hex()}\n      saved {path.name}"
        )


def replay(seed: int, index: int, options: Options, out: Path) -> int:
    case = make_case(load_corpus(options.data_dir), seed, index, options.large_share)
    outcome, seconds, failure = check_case(case, options)
    print(
        f"seed {seed} index {index}: decode_{case.target}(data, {case.chain!r}), "
        f"{len(case.data)} bytes from {case.origin} after {'+'.join(case.mutations)}"
    )
    print(f"outcome: {outcome} in {seconds * 1000:.2f} ms")
    print(f"hex: {case.data.hex() if len(case.data) <= 4096 else case.data[:4096].hex() + '...'}")
    if failure is not None:
        print(f"{failure.error}\nat {failure.where}\n{failure.details}")
        print(f"saved {save(failure, out)}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20_000, help="inputs to check")
    parser.add_argument("--seed", type=int, default=None, help="run seed (default: random)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--chunk", type=int, default=2_000, help="inputs per worker task")
    parser.add_argument(
        "--large-share", type=float, default=0.002, help="share of 1-2 MB block/tx inputs"
    )
    parser.add_argument(
        "--time-limit", type=float, default=2.0, help="seconds per input before it fails"
    )
    parser.add_argument("--no-roundtrip", action="store_true", help="skip the re-encode check")
    parser.add_argument("--replay", type=int, default=None, metavar="INDEX")
    parser.add_argument("--data-dir", type=Path, default=shared_data())
    parser.add_argument("--out", type=Path, default=RESULTS, help="where failures are saved")
    args = parser.parse_args(argv)
    if not (args.data_dir / "btc" / "blocks").is_dir():
        print(
            f"no real blocks under {args.data_dir / 'btc' / 'blocks'}; pass --data-dir "
            "pointing at the shared data folder",
            file=sys.stderr,
        )
        return 2
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    options = Options(
        data_dir=args.data_dir.resolve(),
        large_share=args.large_share,
        time_limit=args.time_limit,
        roundtrip=not args.no_roundtrip,
    )
    if args.replay is not None:
        return replay(seed, args.replay, options, args.out)
    jobs = max(1, args.jobs)
    print(f"fuzzing {args.count:,} inputs, seed {seed}, {jobs} process(es)", flush=True)
    began = time.perf_counter()
    total = run(args.count, seed, jobs, max(1, args.chunk), options)
    report(total, seed, jobs, time.perf_counter() - began, args.out)
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main())
