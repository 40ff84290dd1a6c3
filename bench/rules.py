"""Red-flag rules against ground truth: who do peel-chain and pass-through flag?

    python bench/rules.py [--seeds 20240607,20240608,20240609,20240610] [--scale 1]
                          [--heuristics multi_input[,change]] [--no-write]

For each seed: starts ``litecoind -regtest``, acts out `tests.support.scenario` (the same
economy as the tracing tests: users, merchants, employers, an exchange, CoinJoins, victims and
a ransomware operator), syncs it into a fresh store and clusters it with common-input ownership
(as `tests/integration/test_trace_scenario.py` does; `--heuristics multi_input,change` adds the
change linker, which joins more of each wallet, and writes bench/results/rules-change.md).
Then every address of every wallet is evaluated as its cluster with each rule, and the
clusters flagged are counted per actor role (victims apart from other users). A scan of the
whole store lists the peel chains found and whose coins they move.

The report is printed and written to bench/results/rules.md; docs/tracing.md carries its table.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cointrail import __version__  # noqa: E402
from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view  # noqa: E402
from cointrail.analysis.risk.rules import PassThrough, PeelChain, evaluate  # noqa: E402
from cointrail.chain.rpc import RpcClient  # noqa: E402
from cointrail.store.duck import ChainStore, open_chain  # noqa: E402
from cointrail.store.ingest import UtxoIngestor  # noqa: E402
from cointrail.store.sync import sync_rpc  # noqa: E402
from tests.support.litecoind import LitecoindNode  # noqa: E402
from tests.support.scenario import NODE_ARGS, ScenarioFacts, build_scenario  # noqa: E402

RESULTS = REPO / "bench" / "results" / "rules.md"
RULES = (PeelChain(), PassThrough())


def role_of(facts: ScenarioFacts, wallet: str) -> str:
    return "victim" if wallet in facts.victims else facts.actors[wallet]


def first_input_owner(store: ChainStore, facts: ScenarioFacts, txid: str) -> str:
    rows = store.query(
        "SELECT a.text FROM txs t JOIN inputs i USING (tx_id) JOIN addresses a"
        " ON a.addr_id = i.addr_id WHERE t.txid = ? LIMIT 1", [bytes.fromhex(txid)[::-1]])
    return str(facts.owners.get(str(rows[0][0]), "?")) if rows else "?"


def run_seed(seed: int, scale: int, root: Path, heuristics: tuple[str, ...]
             ) -> tuple[dict[str, Counter[str]], list[str]]:
    store_dir = root / "store"
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, seed, scale)
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        with open_chain(store_dir, "litecoin", "regtest") as store, RpcClient(url) as client:
            sync_rpc(UtxoIngestor(store), client)
    counts: dict[str, Counter[str]] = {"clusters": Counter()}
    counts.update({rule.name: Counter() for rule in RULES})
    chains: list[str] = []
    with open_chain(store_dir, "litecoin", "regtest") as store:
        Clusterer(store, ClusterConfig(heuristics=heuristics)).run()
        view = cluster_view(store)
        ids = dict(store.query("SELECT text, addr_id FROM addresses"))
        for wallet in sorted(facts.actors):
            role = role_of(facts, wallet)
            subjects = set()
            for address in facts.addresses_of(wallet):
                if address in ids:
                    cluster = view.of(int(ids[address]))
                    if cluster is not None:
                        subjects.add(f"cluster:{cluster}")
            for subject in sorted(subjects):
                counts["clusters"][role] += 1
                for rule in RULES:
                    if evaluate(store, subject, [rule]):
                        counts[rule.name][role] += 1
        for hit in evaluate(store, None, [PeelChain(min_hops=3, max_gap_blocks=6)]):
            heights = [e.height for e in hit.evidence]
            gaps = [b - a for a, b in itertools.pairwise(heights)]
            owner = first_input_owner(store, facts, hit.evidence[0].txid)
            chains.append(f"{owner} ({role_of(facts, owner) if owner in facts.actors else '?'}):"
                          f" {len(heights)} hops, gaps {gaps}")
    return counts, chains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="20240607,20240608,20240609,20240610")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--heuristics", default="multi_input")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    heuristics = tuple(h.strip() for h in args.heuristics.split(",") if h.strip())
    lines = [
        "# Red-flag rules on the regtest scenario",
        "",
        f"cointrail {__version__}, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"python {platform.python_version()}, scale {args.scale}. Generated by "
        "`python bench/rules.py`.",
        "",
        "Clusters flagged / clusters of that role (each wallet's addresses as their "
        f"clusters, clustering heuristics {', '.join(heuristics)}; defaults of each rule: "
        + "; ".join(f"{r.name} v{r.version} {r.params()}" for r in RULES) + ").",
        "",
    ]
    table: dict[int, dict[str, Counter[str]]] = {}
    all_chains: dict[int, list[str]] = {}
    for seed in seeds:
        started = time.perf_counter()
        root = Path(tempfile.mkdtemp(prefix=f"cointrail-rules-{seed}-"))
        try:
            table[seed], all_chains[seed] = run_seed(seed, args.scale, root, heuristics)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    roles = sorted({r for c in table.values() for r in c["clusters"]})
    for rule in RULES:
        lines += [f"## {rule.name} (version {rule.version})", "",
                  "| role | " + " | ".join(str(s) for s in seeds) + " |",
                  "|---|" + "---:|" * len(seeds)]
        for role in roles:
            cells = [f"{table[s][rule.name][role]} / {table[s]['clusters'][role]}" for s in seeds]
            lines.append(f"| {role} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Peel chains in a whole-store scan (>= 3 hops, gaps <= 6 blocks)", "",
              "Whose coins each chain moves and the block gaps between its hops (the default "
              "rule needs >= 4 hops with gaps <= 2 blocks).", ""]
    for seed in seeds:
        lines += [f"- seed {seed}: " + ("; ".join(all_chains[seed]) or "none")]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        target = RESULTS if heuristics == ("multi_input",) else RESULTS.with_name(
            "rules-" + "-".join(h for h in heuristics if h != "multi_input") + ".md")
        target.write_text(text)


if __name__ == "__main__":
    main()
