"""Clustering accuracy against ground truth: the synthetic economy at a larger scale.

    python bench/accuracy.py [--scale 4] [--seeds 20240607,20240608,20240609] [--no-write]
                             [--output bench/results/accuracy.md] [--payjoin-share SHARE]
                             [--stonewall-share SHARE]

For each seed: starts ``litecoind -regtest``, acts out `tests.support.scenario` (users,
merchants, employers, an exchange, Whirlpool-like and WabiSabi-like CoinJoins, a ransomware
operator; the wallets' ``getaddressinfo`` is the ground truth), syncs the chain into a fresh
store (``sync_rpc``), clusters it with each heuristic set and evaluates the clustering with
`cointrail.analysis.clustering.evaluate`:

* pairwise precision, recall, F1, purity and inverse purity, clusters against wallets;
* the stored links each heuristic made and how many join two owners; which change heuristics
  voted for the change output on right and on wrong change links;
* change detection transaction by transaction (`ChangeDetection`): of the two-output
  transactions paid by one wallet with one output back to it, how many the change linker
  links to the right output (coverage), split by the payer's role and wallet software, and
  why it left the others (each decided again on the final chain);
* CoinJoin detection: generated rounds flagged with the right kind, per kind; Tx0s; ordinary
  batched payments (exchange withdrawals, payrolls) flagged; anything else flagged;
* with ``--payjoin-share``: BIP 78 PayJoins in the economy (`tests.support.scenario.PayJoin`),
  what they do to multi-input clustering, and the first and best sets again with the PayJoins
  declared multi-owner (``cointrail cluster --multi-owner``);
* with ``--stonewall-share``: Samourai Stonewalls and Stonewall X2s in the economy
  (`tests.support.scenario.Stonewall`), how many the Stonewall detector flags, and the first and
  best sets again reading every Stonewall as one owner's (``multi_input.stonewall_one_owner``),
  without and with the X2s declared multi-owner;
* ceilings from the ground truth (`oracle_partitions`): common-input ownership with a perfect
  CoinJoin detector, plus perfect change detection on two-output transactions, plus every
  output paid back to the inputs' owner — what no heuristic over single transactions can beat.

The report is printed and written to bench/results/accuracy.md; docs/accuracy.md carries its
tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cointrail import __version__  # noqa: E402
from cointrail.analysis.clustering.engine import (  # noqa: E402
    ClusterConfig,
    Clusterer,
    cluster_view,
)
from cointrail.analysis.clustering.evaluate import Evaluation, evaluate  # noqa: E402
from cointrail.analysis.clustering.heuristics import (  # noqa: E402
    ChangeLinker,
    TxContext,
    WalletFingerprint,
)
from cointrail.analysis.clustering.unionfind import UnionFind  # noqa: E402
from cointrail.analysis.txview import iter_tx_views  # noqa: E402
from cointrail.chain.rpc import RpcClient  # noqa: E402
from cointrail.chain.utxo.script import ScriptType  # noqa: E402
from cointrail.store.duck import open_chain  # noqa: E402
from cointrail.store.ingest import UtxoIngestor  # noqa: E402
from cointrail.store.sync import sync_rpc  # noqa: E402
from tests.support.litecoind import LitecoindNode  # noqa: E402
from tests.support.scenario import (  # noqa: E402
    NODE_ARGS,
    ScenarioFacts,
    build_scenario,
    oracle_partitions,
    pair_scores,
)

RESULTS = REPO / "bench" / "results" / "accuracy.md"
CHAIN, NETWORK = "litecoin", "regtest"
DB = f"{CHAIN}-{NETWORK}.duckdb"
SETS = {
    "multi-input": ("multi_input",),
    "multi-input + change": ("multi_input", "change"),
    "multi-input + change + deposit addresses": ("multi_input", "change", "deposit_address"),
    "multi-input + change + deposit addresses + batch change": (
        "multi_input", "change", "deposit_address", "batch_change"),
    "multi-input + change + deposit addresses + batch change + Tx0 outputs": (
        "multi_input", "change", "deposit_address", "batch_change", "tx0_outputs"),
}
#: the same heuristics with parameters, on the same chains: the wallet fingerprint comparing
#: signature styles too (off by default), at two thresholds of low-R inputs
SIG_2 = "multi-input + change, fingerprint with signature style (min_low_r 2)"
SIG_4 = "multi-input + change, fingerprint with signature style (min_low_r 4)"
PARAMS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    SIG_2: (("change", "wallet_fingerprint.signatures", True),
            ("change", "wallet_fingerprint.min_low_r", 2)),
    SIG_4: (("change", "wallet_fingerprint.signatures", True),
            ("change", "wallet_fingerprint.min_low_r", 4)),
}
SETS |= {SIG_2: ("multi_input", "change"), SIG_4: ("multi_input", "change")}
DEPOSIT = "multi-input + change + deposit addresses"
BATCH = "multi-input + change + deposit addresses + batch change"
BEST = "multi-input + change + deposit addresses + batch change + Tx0 outputs"
CEILINGS = {
    "inputs": "common-input, perfect CoinJoin detection",
    "inputs+change2": "+ perfect change detection (two-output transactions)",
    "inputs+self": "+ every output paid back to the inputs' owner",
}
#: the best set joined with a ceiling: what perfect change detection would add to it (its
#: precision is the best set's errors spread over larger clusters)
JOINED_CEILINGS = {
    "best+inputs+change2": "all five heuristics + perfect change detection (two-output "
                           "transactions)",
    "best+inputs+self": "all five heuristics + every output paid back to the inputs' owner",
}
TARGET_PRECISION_CHANGE, TARGET_RECALL_CHANGE = 0.98, 0.9
#: with --payjoin-share: the first and the best set again, the scenario's PayJoins declared
#: multi-owner (``cointrail cluster --multi-owner``), as an analyst who learnt of them would
DECLARED = {
    "multi-input, PayJoins declared": "multi-input",
    "all five, PayJoins declared": BEST,
}
#: with --stonewall-share: the first and the best set again reading every Stonewall-shaped
#: transaction as a solo Stonewall (one owner), then also with the scenario's X2s declared
#: multi-owner: (base set, X2s declared)
ONE_OWNER: tuple[tuple[str, str, Any], ...] = (("multi_input", "stonewall_one_owner", True),)
STONEWALL_ROWS = {
    "multi-input, Stonewalls read as one owner's": ("multi-input", False),
    "all five, Stonewalls read as one owner's": (BEST, False),
    "multi-input, Stonewalls read as one owner's, X2s declared": ("multi-input", True),
    "all five, Stonewalls read as one owner's, X2s declared": (BEST, True),
}


@dataclass
class Detection:
    rounds: dict[str, tuple[int, int]]  # kind -> (flagged with that kind, generated)
    tx0: tuple[int, int]
    stonewalls: tuple[int, int]  # (flagged as stonewall, made: solo and X2)
    batched_flagged: int
    batched: int
    other_flagged: int


@dataclass
class SeedRun:
    seed: int
    facts: ScenarioFacts
    build_seconds: float
    sync_seconds: float
    blocks: int
    txs: int
    node_version: str
    evaluations: dict[str, Evaluation] = field(default_factory=dict)
    cluster_seconds: dict[str, float] = field(default_factory=dict)
    detection: dict[str, Detection] = field(default_factory=dict)
    ceilings: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    looks: Looks | None = None
    by_role: dict[str, tuple[int, int]] = field(default_factory=dict)
    missed: Counter[str] = field(default_factory=Counter)  # why change was not found
    payjoin: PayJoinEffect | None = None
    payjoin_share: float = 0.0
    stonewall: StonewallEffect | None = None
    stonewall_share: float = 0.0


@dataclass
class Looks:
    """Change links by when the linker made them: at the transaction's own height, or on its
    second look at the last spend of its outputs (the wallet fingerprint's vote)."""

    own: int  # change links at the transaction's own height (ground truth on both ends)
    own_wrong: int
    second: int  # second-look links
    second_wrong: int
    delays: list[int] = field(default_factory=list)  # blocks from the transaction to the link
    partners: Counter[str] = field(default_factory=Counter)  # the other vote of a second look


def defined(value: float | None) -> float:
    """A pairwise measure of a scenario evaluation: defined, as every owner has many addresses
    and multi-input alone joins thousands of pairs."""
    assert value is not None, "a scenario evaluation without predicted or true pairs"
    return value


def looks(store: Any, owners: dict[str, str]) -> Looks:
    """Judge the stored change links against the ground truth, split by when they were made."""
    rows = store.query(
        "SELECT l.height, t.height, a.text, b.text, e.detail FROM cluster_links l"
        " JOIN txs t USING (tx_id) JOIN addresses a ON a.addr_id = l.addr_a"
        " JOIN addresses b ON b.addr_id = l.addr_b"
        " JOIN link_evidence e ON e.tx_id = l.tx_id AND e.heuristic = l.heuristic"
        " WHERE l.heuristic = 'change'")
    out = Looks(0, 0, 0, 0)
    for height, tx_height, a, b, detail in rows:
        if a not in owners or b not in owners:
            continue
        wrong = owners[a] != owners[b]
        decision = json.loads(detail)
        if "second_look" in decision:
            out.second += 1
            out.second_wrong += wrong
            out.delays.append(int(height) - int(tx_height))
            out.partners.update(k for k, v in decision["votes"].items()
                                if v is not None and k != "wallet_fingerprint")
        else:
            out.own += 1
            out.own_wrong += wrong
    return out


def missed_change(store: Any, owners: dict[str, str]) -> Counter[str]:
    """Why the change linker left the change of a single-owner two-output payment unlinked:
    each such transaction decided again by the default linker on the final chain (every
    spender known, where the run's second look saw the spenders up to the last spend)."""
    linked = {int(t) for (t,) in store.query(
        "SELECT tx_id FROM cluster_links WHERE heuristic = 'change'")}
    coinjoins = {int(t) for (t,) in store.query(  # the run's own verdicts, as evaluate reads
        "SELECT tx_id FROM tx_labels WHERE label = 'coinjoin'")}
    text = {int(a): str(t) for a, t in store.query("SELECT addr_id, text FROM addresses")}
    linker = ChangeLinker()
    spend = WalletFingerprint.name
    out: Counter[str] = Counter()
    last = store.query("SELECT max(tx_id) FROM txs")[0][0]
    for tx in iter_tx_views(store.con, 0, int(last), with_spenders=True):
        outputs = [o for o in tx.outputs if o.script_type is not ScriptType.NULLDATA]
        if (tx.is_coinbase or len(outputs) != 2 or tx.tx_id in linked
                or tx.tx_id in coinjoins):
            continue
        payers = {owners.get(text.get(i.addr_id, "")) for i in tx.inputs}
        if len(payers) != 1 or None in payers:
            continue
        own = [o for o in outputs if owners.get(text.get(o.addr_id or -1, "")) in payers]
        if len(own) != 1:
            continue
        decision = linker.decide(tx, TxContext())
        change = tx.outputs.index(own[0])
        cast = {k: v for k, v in decision.votes.items() if v is not None}
        if decision.index is not None:
            out["linked when decided on the final chain (its spends came after the run's "
                "second-look window)"] += 1
        elif not cast:
            out["no change heuristic votes (every one abstains)"] += 1
        elif len(cast) == 1:
            (name, vote), = cast.items()
            out[f"one vote only, {name}, for the "
                f"{'change' if vote == change else 'payment'} (not decisive alone)"] += 1
        elif len(set(cast.values())) > 1:
            out["votes disagree" + (" (the wallet fingerprint among them)" if spend in cast
                                    else "")] += 1
        else:
            out[decision.reason] += 1
    return out


def detection(store: Any, facts: ScenarioFacts) -> Detection:
    rows = store.query("SELECT t.txid, l.kind FROM tx_labels l JOIN txs t USING (tx_id)"
                       " WHERE l.label = 'coinjoin'")
    found = {bytes(t)[::-1].hex(): str(k) for t, k in rows}
    rounds = {}
    for kind in sorted({f.kind for f in facts.coinjoins}):
        made = [f for f in facts.coinjoins if f.kind == kind]
        rounds[kind] = (sum(found.get(f.txid) == kind for f in made), len(made))
    known = {f.txid for f in facts.coinjoins} | set(facts.tx0s) | set(facts.stonewalls)
    return Detection(
        rounds=rounds,
        tx0=(sum(found.get(t) == "whirlpool_tx0" for t in facts.tx0s), len(facts.tx0s)),
        stonewalls=(sum(found.get(t) == "stonewall" for t in facts.stonewalls),
                    len(facts.stonewalls)),
        batched_flagged=sum(t in found for t in facts.batched_payments),
        batched=len(facts.batched_payments),
        other_flagged=sum(t not in known for t in found),
    )


@dataclass
class PayJoinEffect:
    """What the scenario's PayJoins did to multi-input clustering on one seed."""

    payjoins: int
    fallbacks: int  # planned, sent without the merchant's input (no coin of the payer's type)
    links: int  # multi-input links made at PayJoins
    links_two_owners: int  # of which join the payer's and the merchant's addresses
    wrong_pairs: int  # multi-input: predicted pairs that are not one owner's
    wrong_pairs_declared: int  # the same with the PayJoins declared multi-owner


@dataclass
class StonewallEffect:
    """The scenario's Stonewalls on one seed, and what reading them as one owner's does."""

    solo: int  # one owner: drawn solo, or drawn X2 and made solo (`x2_made_solo`)
    x2: int  # two owners
    x2_made_solo: int  # drawn X2, the collaborator had no coin large enough
    fallbacks: int  # drawn, sent as an ordinary payment (the payer had no two sets of coins)
    links: int = 0  # multi-input links at X2s, Stonewalls read as one owner's
    links_two_owners: int = 0  # of which join the payer's and the collaborator's addresses
    wrong_pairs: int = 0  # multi-input, Stonewalls skipped (the default)
    wrong_pairs_one_owner: int = 0  # multi-input, Stonewalls read as one owner's
    wrong_pairs_declared: int = 0  # the same with the X2s declared multi-owner


def multi_input_links_at(store: Any, facts: ScenarioFacts,
                         txids: Collection[str]) -> tuple[int, int]:
    """(multi-input links made at the transactions `txids`, of which join two owners)."""
    rows = store.query(
        "SELECT t.txid, a.text, b.text FROM cluster_links l JOIN txs t USING (tx_id)"
        " JOIN addresses a ON a.addr_id = l.addr_a JOIN addresses b ON b.addr_id = l.addr_b"
        " WHERE l.heuristic = 'multi_input'")
    links = two = 0
    at = set(txids)
    for txid, a, b in rows:
        if bytes(txid)[::-1].hex() in at:
            links += 1
            two += facts.owners.get(str(a)) != facts.owners.get(str(b))
    return links, two


def run_seed(seed: int, scale: int, work: Path, payjoin_share: float = 0.0,
             stonewall_share: float = 0.0) -> SeedRun:
    print(f"seed {seed}, scale {scale}: building the scenario", flush=True)
    started = time.perf_counter()
    pristine = work / f"store-{seed}"
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, seed, scale, payjoin_share=payjoin_share,
                               stonewall_share=stonewall_share)
        build = time.perf_counter() - started
        version = str(node.rpc("getnetworkinfo")["subversion"]).strip("/")
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        started = time.perf_counter()
        with open_chain(pristine, CHAIN, NETWORK) as store, RpcClient(url) as client:
            result = sync_rpc(UtxoIngestor(store), client)
        sync = time.perf_counter() - started
    print(f"  built in {build:.0f} s ({facts.transactions} transactions), synced in "
          f"{sync:.1f} s", flush=True)
    run = SeedRun(seed, facts, build, sync, result.blocks, result.txs, version,
                  payjoin_share=payjoin_share, stonewall_share=stonewall_share)
    with open_chain(pristine, CHAIN, NETWORK, read_only=True) as store:
        oracles = oracle_partitions(store.con, facts)
        for name, partition in oracles.items():
            scores = pair_scores(partition, facts.owners)
            run.ceilings[name] = (scores.precision, scores.recall, scores.clusters)
    sets = dict(SETS)
    if payjoin_share > 0:
        sets |= {label: SETS[base] for label, base in DECLARED.items()}
    x2s = tuple(facts.stonewall_x2s)
    if stonewall_share > 0:
        sets |= {label: SETS[base] for label, (base, _) in STONEWALL_ROWS.items()}
        run.stonewall = StonewallEffect(
            len(facts.stonewalls) - len(x2s), len(x2s), len(facts.stonewall_solo_fallbacks),
            len(facts.stonewall_fallbacks))
    for k, (label, heuristics) in enumerate(sets.items()):
        target = work / f"store-{seed}-{k}-{'-'.join(heuristics)}"
        target.mkdir()
        shutil.copy(pristine / DB, target / DB)
        declared, source = (tuple(facts.payjoins), "the scenario's PayJoins") \
            if label in DECLARED else ((), "")
        params = PARAMS.get(label, ())
        if label in STONEWALL_ROWS:
            params = ONE_OWNER
            if STONEWALL_ROWS[label][1]:
                declared, source = x2s, "the scenario's Stonewall X2s"
        with open_chain(target, CHAIN, NETWORK) as store:
            started = time.perf_counter()
            Clusterer(store, ClusterConfig(
                heuristics=heuristics, params=params, multi_owner=declared,
                multi_owner_from=source)).run()
            run.cluster_seconds[label] = time.perf_counter() - started
            run.evaluations[label] = evaluate(store, facts.owners, detail=20)
            run.detection[label] = detection(store, facts)
            if label == "multi-input" and payjoin_share > 0:
                e = run.evaluations[label]
                pj_links, pj_two = multi_input_links_at(store, facts, facts.payjoins)
                run.payjoin = PayJoinEffect(len(facts.payjoins), len(facts.payjoin_fallbacks),
                                            pj_links, pj_two,
                                            e.predicted_pairs - e.correct_pairs, 0)
            if label == "multi-input, PayJoins declared" and run.payjoin is not None:
                e = run.evaluations[label]
                run.payjoin.wrong_pairs_declared = e.predicted_pairs - e.correct_pairs
            if run.stonewall is not None and label.startswith("multi-input"):
                e = run.evaluations[label]
                wrong = e.predicted_pairs - e.correct_pairs
                if label == "multi-input":
                    run.stonewall.wrong_pairs = wrong
                elif label == "multi-input, Stonewalls read as one owner's":
                    run.stonewall.wrong_pairs_one_owner = wrong
                    run.stonewall.links, run.stonewall.links_two_owners = (
                        multi_input_links_at(store, facts, x2s))
                elif label == "multi-input, Stonewalls read as one owner's, X2s declared":
                    run.stonewall.wrong_pairs_declared = wrong
            if label == "multi-input + change":
                run.looks = looks(store, facts.owners)
                run.missed = missed_change(store, facts.owners)
            if label == BEST:
                run.by_role = pairs_by_role(store, facts)
                ours = partition_of(store)
                for name in ("inputs+change2", "inputs+self"):
                    scores = pair_scores(joined(ours, oracles[name]), facts.owners)
                    run.ceilings[f"best+{name}"] = (scores.precision, scores.recall,
                                                    scores.clusters)
        e = run.evaluations[label]
        print(f"  {label}: precision {defined(e.precision):.4f}, "
              f"recall {defined(e.recall):.4f}, "
              f"{e.clusters} clusters for {e.owners} wallets", flush=True)
    return run


# -- the report --------------------------------------------------------------------------------


def partition_of(store: Any) -> dict[str, int]:
    """address text -> cluster id of the store's clustering."""
    view = cluster_view(store)
    return {str(t): int(view.ids[int(a)])
            for a, t in store.query("SELECT addr_id, text FROM addresses")}


def joined(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """The finest partition coarser than both: what two clusterings join together."""
    index = {address: k for k, address in enumerate(a)}
    uf = UnionFind(len(index))
    for partition in (a, b):
        leader: dict[int, int] = {}
        pairs = [(index[x], leader.setdefault(c, index[x])) for x, c in partition.items()
                 if x in index]
        uf.union_batch(np.array([p for p, _ in pairs], dtype=np.int64),
                       np.array([q for _, q in pairs], dtype=np.int64), record_merges=False)
    roots = uf.find_all()
    return {address: int(roots[k]) for address, k in index.items()}


def pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else "0/0"


def three(value: float | None) -> str:
    """A wallet's pairwise recall to 3 decimals; n/a for a wallet of one address."""
    return "n/a" if value is None else f"{value:.3f}"


def mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return (f"{statistics.mean(values):.4f} (min {min(values):.4f}, "
            f"max {max(values):.4f})")


def accuracy_table(runs: list[SeedRun]) -> list[str]:
    lines = [
        "| heuristic set | pairwise precision | pairwise recall | F1 | purity | "
        "inverse purity | clusters / wallets |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in runs[0].evaluations:
        es = [r.evaluations[label] for r in runs]
        clusters = (f"{statistics.mean(e.clusters for e in es):.0f} / "
                    f"{statistics.mean(e.owners for e in es):.0f}")
        lines.append(
            f"| {label} | {mean([defined(e.precision) for e in es])} | "
            f"{mean([defined(e.recall) for e in es])} | "
            f"{mean([defined(e.f1) for e in es])} | {mean([e.purity for e in es])} | "
            f"{mean([e.inverse_purity for e in es])} | {clusters} |")
    for name, text in CEILINGS.items():
        recalls = [r.ceilings[name][1] for r in runs]
        clusters = (f"{statistics.mean(r.ceilings[name][2] for r in runs):.0f} / "
                    f"{statistics.mean(r.evaluations['multi-input'].owners for r in runs):.0f}")
        lines.append(f"| *ceiling: {text}* | 1.0 | {mean(recalls)} | | 1.0 | | {clusters} |")
    for name, text in JOINED_CEILINGS.items():
        precisions = [r.ceilings[name][0] for r in runs]
        recalls = [r.ceilings[name][1] for r in runs]
        clusters = (f"{statistics.mean(r.ceilings[name][2] for r in runs):.0f} / "
                    f"{statistics.mean(r.evaluations['multi-input'].owners for r in runs):.0f}")
        lines.append(f"| *ceiling: {text}* | {mean(precisions)} | {mean(recalls)} | | | | "
                     f"{clusters} |")
    return lines


def detection_table(runs: list[SeedRun]) -> list[str]:
    lines = ["| what | flagged |", "|---|---:|"]
    kinds = sorted({k for r in runs for k in r.detection["multi-input"].rounds})
    for kind in kinds:
        hit = sum(r.detection["multi-input"].rounds[kind][0] for r in runs)
        made = sum(r.detection["multi-input"].rounds[kind][1] for r in runs)
        lines.append(f"| {kind} rounds flagged as {kind} | {pct(hit, made)} |")
    hit = sum(r.detection["multi-input"].tx0[0] for r in runs)
    made = sum(r.detection["multi-input"].tx0[1] for r in runs)
    lines.append(f"| Whirlpool Tx0s flagged as whirlpool_tx0 (single owner) | {pct(hit, made)} |")
    made = sum(r.detection["multi-input"].stonewalls[1] for r in runs)
    if made:
        hit = sum(r.detection["multi-input"].stonewalls[0] for r in runs)
        lines.append(f"| Stonewalls (solo and X2) flagged as stonewall | {pct(hit, made)} |")
    flagged = sum(r.detection["multi-input"].batched_flagged for r in runs)
    batched = sum(r.detection["multi-input"].batched for r in runs)
    lines.append(f"| ordinary batched payments flagged (false positives) | "
                 f"{pct(flagged, batched)} |")
    other = sum(r.detection["multi-input"].other_flagged for r in runs)
    total = sum(r.txs for r in runs)
    lines.append(f"| any other transaction flagged | {other} of {total} |")
    return lines


def links_table(runs: list[SeedRun]) -> list[str]:
    lines = ["| heuristic set | heuristic | links | judged | joining two owners |",
             "|---|---|---:|---:|---:|"]
    for label in SETS:
        totals: Counter[tuple[str, str]] = Counter()
        for r in runs:
            for s in r.evaluations[label].links:
                totals[(s.heuristic, "links")] += s.links
                totals[(s.heuristic, "judged")] += s.judged
                totals[(s.heuristic, "wrong")] += s.wrong
        for h in sorted({h for h, _ in totals}):
            lines.append(f"| {label} | {h} | {totals[(h, 'links')]} | {totals[(h, 'judged')]} "
                         f"| {totals[(h, 'wrong')]} |")
    votes = ["", "| change heuristic | votes on right change links | votes on wrong change "
             "links | share wrong |", "|---|---:|---:|---:|"]
    tally: dict[str, Counter[str]] = {k: Counter() for k in (
        "right", "wrong", "right_by_votes", "wrong_by_votes", "right_alone", "wrong_alone")}
    for r in runs:
        cv = r.evaluations["multi-input + change"].change_votes
        for key, counter in tally.items():
            counter.update(cv.get(key, {}))
    right, wrong = tally["right"], tally["wrong"]
    for h in sorted(set(right) | set(wrong)):
        n = right[h] + wrong[h]
        votes.append(f"| {h} | {right[h]} | {wrong[h]} | {100 * wrong[h] / n:.1f} % |")
    votes += ["", "| change heuristics agreeing on the linked output | right links | "
              "wrong links |", "|---:|---:|---:|"]
    right_n, wrong_n = tally["right_by_votes"], tally["wrong_by_votes"]
    for k in sorted(set(right_n) | set(wrong_n), key=int):
        votes.append(f"| {k} | {right_n[k]} | {wrong_n[k]} |")
    right_1, wrong_1 = tally["right_alone"], tally["wrong_alone"]
    if right_1 or wrong_1:
        votes += ["", "| the one heuristic behind a change link made on one vote | right links "
                  "| wrong links |", "|---|---:|---:|"]
        for h in sorted(set(right_1) | set(wrong_1)):
            votes.append(f"| {h} | {right_1[h]} | {wrong_1[h]} |")
    return lines + votes


def looks_table(runs: list[SeedRun]) -> list[str]:
    lines = ["| seed | change links at their own height: wrong / judged | second-look links: "
             "wrong / judged | blocks from the transaction to the second look: median (max) |",
             "|---:|---:|---:|---:|"]
    partners: Counter[str] = Counter()
    for r in runs:
        lk = r.looks
        if lk is None:
            continue
        partners.update(lk.partners)
        delay = (f"{statistics.median(lk.delays):.0f} ({max(lk.delays)})" if lk.delays
                 else "-")
        lines.append(f"| {r.seed} | {lk.own_wrong} / {lk.own} | {lk.second_wrong} / "
                     f"{lk.second} | {delay} |")
    if partners:
        lines += ["", "The other votes on second-look links (the fingerprint's partners): "
                  + ", ".join(f"{k} {n}" for k, n in partners.most_common()) + "."]
    return lines


def change_table(runs: list[SeedRun]) -> list[str]:
    """Change detection transaction by transaction, per heuristic set with the change linker;
    then by the payer's kind and why the rest was missed (multi-input + change)."""
    lines = ["| heuristic set | two-output payments with change | change found | coverage | "
             "change links judged | naming another owner's output | precision |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, heuristics in SETS.items():
        if "change" not in heuristics:
            continue
        cds = [r.evaluations[label].change_detection for r in runs]
        with_change = sum(c.with_change for c in cds if c)
        found = sum(c.found for c in cds if c)
        linked = sum(c.linked for c in cds if c)
        wrong = sum(c.wrong for c in cds if c)
        lines.append(f"| {label} | {with_change:,} | {found:,} | "
                     f"{found / max(with_change, 1):.3f} | {linked:,} | {wrong} | "
                     f"{(linked - wrong) / max(linked, 1):.4f} |")
    lines += ["", "By the payer (multi-input + change):", "",
              "| payer | payments with change | change found | coverage | wrong links |",
              "|---|---:|---:|---:|---:|"]
    kinds: dict[str, list[int]] = {}
    for r in runs:
        cd = r.evaluations["multi-input + change"].change_detection
        for owner, counts in (cd.by_owner if cd else {}).items():
            software = r.facts.software.get(owner, "core")
            kind = r.facts.actors[owner] + ("" if software == "core" else f" ({software})")
            row = kinds.setdefault(kind, [0, 0, 0])
            for k, value in enumerate(counts):
                row[k] += value
    for kind, (with_change, found, wrong) in sorted(kinds.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {kind} | {with_change:,} | {found:,} | "
                     f"{found / max(with_change, 1):.3f} | {wrong} |")
    missed: Counter[str] = Counter()
    for r in runs:
        missed.update(r.missed)
    lines += ["", "Why the change of the others was not found (multi-input + change; each "
              "decided again on the final chain):", "", "| reason | payments |", "|---|---:|"]
    for reason, n in missed.most_common():
        lines.append(f"| {reason} | {n:,} |")
    return lines


def missing_table(runs: list[SeedRun]) -> list[str]:
    """The same-owner pairs the best set leaves apart, by the owner's role, over all seeds."""
    lines = ["| role | same-owner pairs | joined | missing | share of all missing |",
             "|---|---:|---:|---:|---:|"]
    true: Counter[str] = Counter()
    got: Counter[str] = Counter()
    for r in runs:
        for role, (t, g) in r.by_role.items():
            true[role] += t
            got[role] += g
    missing = sum(true.values()) - sum(got.values())
    for role in sorted(true, key=lambda k: got[k] - true[k]):
        lost = true[role] - got[role]
        lines.append(f"| {role} | {true[role]:,} | {got[role]:,} | {lost:,} | "
                     f"{100 * lost / max(missing, 1):.0f} % |")
    return lines


def pairs_by_role(store: Any, facts: ScenarioFacts) -> dict[str, tuple[int, int]]:
    """role -> (same-owner pairs, those the clustering joins)."""
    view = cluster_view(store)
    ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")}
    cells: Counter[tuple[str, int]] = Counter()
    sizes: Counter[str] = Counter()
    for address, owner in facts.owners.items():
        cells[(owner, int(view.ids[ids[address]]))] += 1
        sizes[owner] += 1
    out: dict[str, list[int]] = {}

    def role(owner: str) -> str:  # users by wallet software
        software = facts.software.get(owner, "core")
        return facts.actors[owner] + ("" if software == "core" else f" ({software})")

    for owner, n in sizes.items():
        out.setdefault(role(owner), [0, 0])[0] += n * (n - 1) // 2
    for (owner, _), n in cells.items():
        out[role(owner)][1] += n * (n - 1) // 2
    return {k: (v[0], v[1]) for k, v in out.items()}


def payjoin_table(runs: list[SeedRun]) -> list[str]:
    lines = ["| seed | PayJoins | sent without the merchant's input | multi-input links at "
             "PayJoins | joining payer and merchant | multi-input wrong pairs | the same, "
             "PayJoins declared |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        p = r.payjoin
        assert p is not None
        lines.append(f"| {r.seed} | {p.payjoins} | {p.fallbacks} | {p.links} | "
                     f"{p.links_two_owners} | {p.wrong_pairs:,} | {p.wrong_pairs_declared:,} |")
    return lines


def stonewall_table(runs: list[SeedRun]) -> list[str]:
    lines = ["| seed | solo Stonewalls | X2s | X2s drawn, made solo | drawn, sent as a payment "
             "| multi-input links at X2s, read as one owner's | joining two owners | "
             "multi-input wrong pairs: Stonewalls skipped (default) | read as one owner's | "
             "read as one owner's, X2s declared |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        s = r.stonewall
        assert s is not None
        lines.append(f"| {r.seed} | {s.solo} | {s.x2} | {s.x2_made_solo} | {s.fallbacks} | "
                     f"{s.links} | {s.links_two_owners} | {s.wrong_pairs:,} | "
                     f"{s.wrong_pairs_one_owner:,} | {s.wrong_pairs_declared:,} |")
    return lines


def per_seed(runs: list[SeedRun]) -> list[str]:
    lines = ["| seed | multi-input P / R | + change P / R | + deposit addresses P / R | "
             "+ batch change P / R | + Tx0 outputs P / R | wrong change links | wrong deposit "
             "links | wrong batch-change links | wrong Tx0 links | largest impure clusters "
             "(+ change): size, owners |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        m, c = r.evaluations["multi-input"], r.evaluations["multi-input + change"]
        d, b, t = r.evaluations[DEPOSIT], r.evaluations[BATCH], r.evaluations[BEST]
        wrong_d = sum(s.wrong for s in d.links if s.heuristic == "deposit_address")
        wrong_b = sum(s.wrong for s in b.links if s.heuristic == "batch_change")
        wrong_t = sum(s.wrong for s in t.links if s.heuristic == "tx0_outputs")
        wrong = sum(s.wrong for s in c.links if s.heuristic == "change")
        impure = "; ".join(
            f"{i.size}: " + ", ".join(f"{o} {n}" for o, n in list(i.owners.items())[:3])
            + (" …" if len(i.owners) > 3 else "")
            for i in c.impure_clusters[:3])
        pr = " | ".join(f"{defined(e.precision):.4f} / {defined(e.recall):.4f}"
                        for e in (m, c, d, b, t))
        lines.append(f"| {r.seed} | {pr} | {wrong} | "
                     f"{wrong_d} | {wrong_b} | {wrong_t} | {impure} |")
    return lines


def composition(runs: list[SeedRun]) -> list[str]:
    r = runs[0]
    f = r.facts
    roles = Counter(f.actors.values())
    owners = Counter(f.owners.values())
    by_role: Counter[str] = Counter()
    for wallet, n in owners.items():
        by_role[f.actors[wallet]] += n
    kinds = Counter(c.kind for c in f.coinjoins)
    batched = Counter(f.batched_payments.values())
    wasabi = [c for c in f.coinjoins if c.kind == "wasabi_2"]
    lines = [
        f"Seed {r.seed} (the others are alike in size): {r.blocks} blocks, {r.txs} transactions "
        f"({f.transactions} made by the scenario), {len(f.owners)} wallet addresses.",
        "",
        "| actor | wallets | addresses |",
        "|---|---:|---:|",
    ]
    for role in sorted(roles, key=lambda x: -by_role[x]):
        lines.append(f"| {role} | {roles[role]} | {by_role[role]} |")
    lines += [
        "",
        f"- CoinJoins: {kinds.get('whirlpool', 0)} Whirlpool-like mixes (5 inputs from 5 "
        f"wallets, 5 equal outputs; pools 0.001, 0.01, 0.05 and 0.5 LTC) fed by {len(f.tx0s)} "
        f"Tx0s, and {len(wasabi)} WabiSabi-like rounds of "
        f"{', '.join(f'{c.inputs} inputs / {c.outputs} outputs' for c in wasabi)}.",
        f"- Ordinary batched payments: {batched.get('exchange_withdrawal', 0)} exchange "
        f"withdrawal batches and {batched.get('payroll', 0)} payrolls (sendmany, 2+ payees).",
        f"- Ransomware: {len(f.ransom_payments)} victims paid "
        f"{f.total_ransom_sat / 1e8:.8f} LTC to fresh operator addresses; one consolidation, "
        f"then {len(f.peel_txids)} peel hops to {len(f.peel_deposit_addresses)} exchange "
        "deposit addresses.",
    ]
    return lines


def machine(node_version: str) -> list[str]:
    try:
        cpu = next(line.split(":", 1)[1].strip()
                   for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    return [f"- CPU: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}",
            f"- cointrail {__version__}; {node_version} (regtest, {' '.join(NODE_ARGS)})"]


def report(runs: list[SeedRun], scale: int, argv: list[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    best = [r.evaluations[BEST] for r in runs]
    multi = [r.evaluations["multi-input"] for r in runs]
    met_a = all(defined(e.precision) == 1.0 for e in multi)
    met_b = all(defined(e.precision) >= TARGET_PRECISION_CHANGE
                and defined(e.recall) >= TARGET_RECALL_CHANGE for e in best)
    rounds_hit = sum(v[0] for r in runs for v in r.detection["multi-input"].rounds.values())
    rounds = sum(v[1] for r in runs for v in r.detection["multi-input"].rounds.values())
    fp = sum(r.detection["multi-input"].batched_flagged for r in runs)
    lines = [
        "# Clustering accuracy against ground truth (issue 4)",
        "",
        f"Generated by `python bench/accuracy.py {' '.join(argv)}` on {when} UTC; scale "
        f"{scale}, seeds {', '.join(str(r.seed) for r in runs)}.",
        "",
        *machine(runs[0].node_version),
        "",
        "## Results",
        "",
        "Means over the seeds (min and max when there are several).",
        "",
        *accuracy_table(runs),
        "",
        f"- Multi-input alone, precision 1.0 with CoinJoins present: **"
        f"{'met' if met_a else 'NOT met'}**.",
        f"- With change heuristics (and deposit addresses, batch change, Tx0 outputs), "
        f"recall >= "
        f"{TARGET_RECALL_CHANGE} "
        f"at precision >= {TARGET_PRECISION_CHANGE}: **{'met' if met_b else 'NOT met'}**.",
        f"- CoinJoin detection >= 99 % of generated rounds: **"
        f"{'met' if rounds_hit >= 0.99 * rounds else 'NOT met'}** ({pct(rounds_hit, rounds)}); "
        f"0 false positives on ordinary batched payments: **{'met' if fp == 0 else 'NOT met'}**.",
        "",
        *([f"### PayJoins ({runs[0].payjoin_share:.0%} of Litecoin Core wallets' payments to "
           "merchants)", "", *payjoin_table(runs), ""] if runs[0].payjoin else []),
        *([f"### Stonewalls ({runs[0].stonewall_share:.0%} of Whirlpool users' payments and "
           "deposits, half of them drawn as X2s)", "", *stonewall_table(runs), ""]
          if runs[0].stonewall else []),
        "### Per seed",
        "",
        *per_seed(runs),
        "",
        "### CoinJoin detection",
        "",
        *detection_table(runs),
        "",
        "### Links and votes",
        "",
        *links_table(runs),
        "",
        "### Change detection, transaction by transaction",
        "",
        *change_table(runs),
        "",
        "### The change linker's second look (wallet fingerprint)",
        "",
        *looks_table(runs),
        "",
        "### Where the missing pairs are (all five heuristics)",
        "",
        *missing_table(runs),
        "",
        "### Largest wallets (first seed): multi-input + change, then with all five heuristics",
        "",
        "| wallet | addresses | clusters | share in its largest cluster | pairwise recall |",
        "|---|---:|---:|---:|---:|",
    ]
    with_deposits = {o.owner: o for o in runs[0].evaluations[BEST].largest_owners}
    for o in runs[0].evaluations["multi-input + change"].largest_owners[:12]:
        d = with_deposits.get(o.owner)
        after = (f" → {d.clusters}" if d else "", f" → {d.largest_cluster_share:.3f}" if d
                 else "", f" → {three(d.recall)}" if d else "")
        lines.append(f"| {o.owner} | {o.addresses} | {o.clusters}{after[0]} | "
                     f"{o.largest_cluster_share:.3f}{after[1]} | {three(o.recall)}{after[2]} |")
    lines += ["", "### Wrong change links (first seed, first few)", ""]
    for w in runs[0].evaluations["multi-input + change"].wrong_links[:8]:
        votes = {k: v for k, v in (w.detail or {}).get("votes", {}).items() if v is not None}
        lines.append(f"- height {w.height}, `{w.txid}`: {w.owner_a} linked to {w.owner_b}; "
                     f"votes {votes}")
    lines += ["", "## The scenario", "", *composition(runs), "", "## Time", "",
              "| seed | build (s) | sync (s) | cluster multi-input (s) | "
              "cluster + change (s) | cluster + change + deposit (s) | "
              "cluster, all four (s) | cluster, all five (s) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.seed} | {r.build_seconds:.0f} | {r.sync_seconds:.1f} | "
                     f"{r.cluster_seconds['multi-input']:.2f} | "
                     f"{r.cluster_seconds['multi-input + change']:.2f} | "
                     f"{r.cluster_seconds[DEPOSIT]:.2f} | "
                     f"{r.cluster_seconds[BATCH]:.2f} | "
                     f"{r.cluster_seconds[BEST]:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seeds", default="20240607,20240608,20240609")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--payjoin-share", type=float, default=0.0, metavar="SHARE",
                        help="make this share of Core wallets' merchant payments PayJoins "
                             "(default none); adds rows with the PayJoins declared")
    parser.add_argument("--stonewall-share", type=float, default=0.0, metavar="SHARE",
                        help="make this share of Whirlpool users' payments Stonewalls, half of "
                             "them drawn as X2s (default none); adds rows reading Stonewalls "
                             "as one owner's")
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="where the report goes (default bench/results/accuracy.md)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="cointrail-accuracy-"))
    try:
        runs = [run_seed(seed, args.scale, work, args.payjoin_share, args.stonewall_share)
                for seed in seeds]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(runs, args.scale, sys.argv[1:])
    print(text)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
