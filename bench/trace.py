"""Benchmark: a 5-hop forward haircut trace on a synthetic store: the trace engine walking the
memory-mapped spend graph (CSR, `cointrail.analysis.tracing.spendgraph`), the same engine on
set-based SQL (``spendgraph=False``), and the same trace as one recursive SQL query (DuckDB),
all on one core, in the same run.

Target (issue 6): on a synthetic store of 10 M transactions, p95 <= 100 ms on one core.

The store is written directly as the store's tables (schema from `cointrail.store.schema`, via
Arrow; no ingest): ``--txs`` transactions of two outputs each, 2 000 per block. Each output is
left unspent with probability 0.1, otherwise spent by a later transaction a random
(exponential, mean ``--reach``) number of transactions later; a transaction that spends nothing
is a coinbase. Values flow: a transaction's outputs split its inputs less a fee. Seeds are
random transactions from the middle of the chain with a spent output. Run:

    python bench/trace.py [--txs 1000000] [--seeds 30] [--root DIR] [--out FILE]

With ``--root`` the store (and its spend graph) is kept there and reused by the next run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from cointrail import get_chain
from cointrail.analysis.tracing import TraceParams, spendgraph, trace
from cointrail.analysis.tracing.engine import Start
from cointrail.chain.utxo.hashes import Txid
from cointrail.store.duck import ChainStore, Store
from cointrail.store.schema import ADDRESSES, BLOCKS, INPUTS, OUTPUTS, TXS, Table

SPEC = get_chain("bitcoin", "regtest")
PER_BLOCK = 2_000
HOPS = 5

CTE = """
WITH RECURSIVE t(hop, tx_id, n, amount) AS (
    SELECT 0, tx_id, n, value::DOUBLE FROM outputs WHERE tx_id = $seed
    UNION ALL
    SELECT t.hop + 1, o.tx_id, o.n, t.amount * o.value / x.input_value
    FROM t
    JOIN inputs i ON i.prev_tx_id = t.tx_id AND i.prev_n = t.n
    JOIN txs x ON x.tx_id = i.tx_id
    JOIN outputs o ON o.tx_id = i.tx_id
    WHERE t.hop < $hops
)
SELECT tx_id, n, min(hop), sum(amount) FROM t GROUP BY tx_id, n
"""


def build(store: ChainStore, n_tx: int, reach: float, rng: np.random.Generator) -> None:
    n_out = 2 * n_tx
    src = np.arange(n_out, dtype=np.int64)
    spender = (src // 2) + 1 + rng.exponential(reach, n_out).astype(np.int64)
    spent = (rng.random(n_out) >= 0.1) & (spender < n_tx)
    src, spender = src[spent], spender[spent]
    order = np.argsort(spender, kind="stable")
    src, spender = src[order], spender[order]
    starts = np.searchsorted(spender, np.arange(n_tx + 1))
    split = rng.uniform(0.1, 0.9, n_tx)
    values = [0] * n_out
    in_value = [0] * n_tx
    fees = [0] * n_tx
    src_l, starts_l, split_l = src.tolist(), starts.tolist(), split.tolist()
    for i in range(n_tx):
        a, b = starts_l[i], starts_l[i + 1]
        total = sum(values[o] for o in src_l[a:b]) if b > a else 0
        fee = min(1_000, total // 100) if b > a else 0
        total = total if b > a else 5_000_000_000
        rest = total - fee
        first = int(rest * split_l[i])
        values[2 * i], values[2 * i + 1] = first, rest - first
        in_value[i], fees[i] = total, fee
    tx_ids = np.arange(n_tx, dtype=np.int64)
    heights = (tx_ids // PER_BLOCK).astype(np.int32)
    coinbase = (starts[1:] - starts[:-1]) == 0
    n_addr = n_out // 2
    addr = rng.integers(0, n_addr, n_out)
    out_value = np.asarray(values, dtype=np.int64)
    txids = rng.bytes(32 * n_tx)
    hashes = pa.array([txids[32 * i:32 * i + 32] for i in range(n_tx)], pa.binary())
    n_blocks = int(heights[-1]) + 1
    zero32 = pa.array([b"\0" * 32] * n_blocks, pa.binary())
    blocks = pa.table({
        "height": pa.array(np.arange(n_blocks, dtype=np.int32)), "hash": zero32,
        "prev_hash": zero32, "merkle_root": zero32,
        "version": pa.array(np.ones(n_blocks, np.int32)),
        "time": pa.array(1_700_000_000 + 600 * np.arange(n_blocks, dtype=np.int64)),
        "bits": pa.array(np.zeros(n_blocks, np.int64)),
        "nonce": pa.array(np.zeros(n_blocks, np.int64)),
        "size": pa.array(np.zeros(n_blocks, np.int32)),
        "stripped_size": pa.array(np.zeros(n_blocks, np.int32)),
        "weight": pa.array(np.zeros(n_blocks, np.int32)),
        "tx_count": pa.array(np.bincount(heights).astype(np.int32)),
        "first_tx_id": pa.array(np.arange(n_blocks, dtype=np.int64) * PER_BLOCK),
        "first_addr_id": pa.array(np.zeros(n_blocks, np.int64)),
    })
    in_arr = np.asarray(in_value, dtype=np.int64)
    fee_arr = np.asarray(fees, dtype=np.int64)
    txs = pa.table({
        "tx_id": pa.array(tx_ids), "txid": hashes, "height": pa.array(heights),
        "version": pa.array(np.full(n_tx, 2, np.int32)),
        "lock_time": pa.array(np.zeros(n_tx, np.int64)),
        "size": pa.array(np.full(n_tx, 250, np.int32)),
        "vsize": pa.array(np.full(n_tx, 250, np.int32)),
        "is_coinbase": pa.array(coinbase),
        "input_count": pa.array((starts[1:] - starts[:-1]).astype(np.int32)),
        "output_count": pa.array(np.full(n_tx, 2, np.int32)),
        "input_value": pa.array(in_arr, mask=coinbase),
        "output_value": pa.array(in_arr - fee_arr),
        "fee": pa.array(fee_arr, mask=coinbase),
    })
    outputs = pa.table({
        "tx_id": pa.array(np.repeat(tx_ids, 2)),
        "n": pa.array(np.tile(np.array([0, 1], np.int32), n_tx)),
        "value": pa.array(out_value), "addr_id": pa.array(addr),
        "script_type": pa.array(np.zeros(n_out, np.int8)),
        "script": pa.nulls(n_out, pa.binary()),
    })
    n_in = len(src)
    inputs = pa.table({
        "tx_id": pa.array(spender),
        "n": pa.array((np.arange(n_in) - starts[spender]).astype(np.int32)),
        "prev_tx_id": pa.array(src // 2), "prev_n": pa.array((src % 2).astype(np.int32)),
        "value": pa.array(out_value[src]), "addr_id": pa.array(addr[src]),
        "script_type": pa.array(np.zeros(n_in, np.int8)),
        "sequence": pa.array(np.full(n_in, 0xFFFFFFFD, np.int64)),
    })
    first_seen = np.full(n_addr, n_tx, np.int64)
    np.minimum.at(first_seen, addr, np.repeat(tx_ids, 2))
    used = first_seen < n_tx
    ids = np.flatnonzero(used)
    addresses = pa.table({
        "addr_id": pa.array(ids), "type": pa.array(np.zeros(len(ids), np.int8)),
        "payload": pa.array([b""] * len(ids), pa.binary()),
        "text": pa.array([f"synthetic{i}" for i in ids.tolist()], pa.string()),
        "first_tx_id": pa.array(first_seen[used]),
        "first_height": pa.array((first_seen[used] // PER_BLOCK).astype(np.int32)),
    })
    tables: dict[Table, pa.Table] = {BLOCKS: blocks, TXS: txs, OUTPUTS: outputs,
                                     INPUTS: inputs, ADDRESSES: addresses}
    for table, data in tables.items():
        store.con.register("_bench", data.select(list(table.column_names)))
        store.con.execute(f"INSERT INTO {table.name} SELECT * FROM _bench")
        store.con.unregister("_bench")
    store.con.execute("CHECKPOINT")


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--txs", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--reach", type=float, default=4_000.0)
    parser.add_argument("--root", type=Path, help="keep the store here (default: temporary)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = np.random.default_rng(6)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        t0 = time.perf_counter()
        store = Store(root).chain(SPEC)
        store.con.execute("SET threads = 1")  # one core, for both the engine and the CTE
        reused = bool(store.query("SELECT count(*) FROM txs")[0][0])
        if not reused:
            build(store, args.txs, args.reach, rng)
        t_build = time.perf_counter() - t0
        counts = store.table_counts()
        lo, hi = args.txs // 4, args.txs // 2
        rows = store.query(
            "SELECT t.tx_id, t.txid FROM txs t WHERE t.tx_id BETWEEN ? AND ? AND EXISTS"
            " (SELECT 1 FROM inputs i WHERE i.prev_tx_id = t.tx_id)"
            " ORDER BY hash(t.tx_id) LIMIT ?", [lo, hi, args.seeds])
        seeds = [(int(t), bytes(h)) for t, h in rows]
        params = TraceParams(hops=HOPS)
        tip = store.tip()
        assert tip is not None
        t0 = time.perf_counter()
        where = spendgraph.build(store, tip)
        t_csr = time.perf_counter() - t0
        csr_bytes = sum(f.stat().st_size for f in where.iterdir())
        graph = spendgraph.spend_graph(store)
        assert graph is not None
        warm = Start("tx", seeds[0][1][::-1].hex(), Txid(seeds[0][1]))
        trace(store, warm, "forward", params)
        trace(store, warm, "forward", params, spendgraph=False)
        csr_s, engine_s, cte_s, sizes, agree, same = [], [], [], [], 0, 0
        for tx_id, txid in seeds:
            start = Start("tx", txid[::-1].hex(), Txid(txid))
            t0 = time.perf_counter()
            fast = trace(store, start, "forward", params)
            csr_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = trace(store, start, "forward", params, spendgraph=False)
            engine_s.append(time.perf_counter() - t0)
            records = [{k: v for k, v in r.record.items() if k != "spend_graph"}
                       for r in (fast, result)]
            same += (fast.nodes, fast.edges, fast.endpoints, records[0]) == (
                result.nodes, result.edges, result.endpoints, records[1])
            t0 = time.perf_counter()
            cte = store.con.execute(CTE, {"seed": tx_id, "hops": HOPS}).fetchall()
            cte_s.append(time.perf_counter() - t0)
            sizes.append(len(result.nodes))
            reached_engine = {(n.txid, n.vout) for n in result.nodes}
            id_of = dict(store.query(
                "SELECT tx_id, txid FROM txs WHERE tx_id IN (SELECT unnest(?))",
                [sorted({int(r[0]) for r in cte})]))
            reached_cte = {(bytes(id_of[int(r[0])])[::-1].hex(), int(r[1])) for r in cte
                           if float(r[3]) >= 1.0}
            agree += reached_engine == reached_cte
        store.close()
    lines = [
        "# Trace benchmark: 5-hop forward haircut trace",
        "",
        f"Generated by `python bench/trace.py --txs {args.txs}` ({platform.python_version()}, "
        f"{platform.machine()}, DuckDB threads = 1).",
        "",
        f"Store: {counts['txs']:,} txs, {counts['outputs']:,} outputs, "
        f"{counts['inputs']:,} inputs, {counts['addresses']:,} addresses; "
        + (f"reused from {args.root}." if reused else
           f"built directly from Arrow in {t_build:.1f} s."),
        f"Seeds: {len(seeds)} random transactions from the middle of the chain; tainted outputs "
        f"per trace: median {int(np.median(sizes))}, max {max(sizes)}.",
        "",
        "| method | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|",
        f"| trace engine on the spend graph (CSR, default) | {pct(csr_s, 50):.1f} | "
        f"{pct(csr_s, 95):.1f} | {max(csr_s) * 1000:.1f} |",
        f"| trace engine on SQL (`spendgraph=False`, the old path) | {pct(engine_s, 50):.1f} | "
        f"{pct(engine_s, 95):.1f} | {max(engine_s) * 1000:.1f} |",
        f"| recursive CTE (DuckDB, one query) | {pct(cte_s, 50):.1f} | {pct(cte_s, 95):.1f} | "
        f"{max(cte_s) * 1000:.1f} |",
        "",
        f"Same set of tainted outputs (CTE amounts >= 1 sat) in {agree} of {len(seeds)} traces;"
        f" CSR and SQL engine traces identical in {same} of {len(seeds)}.",
        "",
        f"Spend graph: built in {t_csr:.1f} s (one pass, NumPy from DuckDB), "
        f"{csr_bytes / 1e6:,.0f} MB on disk = {csr_bytes / counts['txs']:.0f} bytes per tx; "
        f"key: tip height {graph.key['tip_height']}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
