"""Measured clustering accuracy on a synthetic economy (issue 4, "Measured accuracy").

`tests.support.scenario` acts out users, merchants, employers, an exchange, Whirlpool-like and
WabiSabi-like CoinJoins and a ransomware operator on a real ``litecoind -regtest``; the wallets'
own ``getaddressinfo`` is the ground truth. The chain is synced into a store and clustered with
(a) common-input ownership alone and (b) common-input plus change, and the tests check the
issue's targets:

* (a) pairwise precision 1.0 with CoinJoins on the chain;
* (b) recall >= 0.9 at precision >= 0.98 — the precision holds; the recall target is not
  reachable on this economy (see test_change_heuristics_keep_precision_and_add_recall);
* every generated CoinJoin round flagged in `tx_labels` with its kind (>= 99 %), and none of the
  ordinary batched payments (exchange withdrawals, payrolls);

and that the tools around them tell the truth: `evaluate` against a brute-force pair count,
``cluster-evaluate`` against `evaluate`, ``explain`` and ``show cluster`` against the scenario's
facts, ``--as-of`` against a run stopped at that height, and an incremental run against one run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cointrail import get_chain
from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
from cointrail.analysis.clustering.evaluate import (
    Evaluation,
    evaluate,
    read_ground_truth,
    write_ground_truth,
)
from cointrail.analysis.clustering.heuristics import ChangeLinker
from cointrail.analysis.txview import iter_tx_views
from cointrail.chain.rpc import RpcClient
from cointrail.chain.utxo.address import encode_address
from cointrail.errors import InputError, ValidationError
from cointrail.interfaces.cli.cluster_cmds import explain_text
from cointrail.interfaces.cli.evaluate_cmd import evaluate_cmd
from cointrail.interfaces.cli.main import main as main_callback
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import sync_rpc
from tests.support.cli import pair_counts
from tests.support.litecoind import LitecoindNode
from tests.support.scenario import (
    NODE_ARGS,
    ScenarioFacts,
    build_scenario,
    oracle_partitions,
    pair_scores,
    plan_scenario,
)

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("ACCURACY_TEST_SEED", "20240607"))
SCALE = 1
CHAIN, NETWORK = "litecoin", "regtest"
DB = f"{CHAIN}-{NETWORK}.duckdb"
CONFIGS = {
    "multi_input": ClusterConfig(heuristics=("multi_input",)),
    "change": ClusterConfig(heuristics=("multi_input", "change")),
    "deposit": ClusterConfig(heuristics=("multi_input", "change", "deposit_address")),
    "batch": ClusterConfig(heuristics=("multi_input", "change", "deposit_address",
                                       "batch_change")),
    "tx0": ClusterConfig(heuristics=("multi_input", "change", "deposit_address",
                                     "batch_change", "tx0_outputs")),
}


@dataclass
class World:
    facts: ScenarioFacts
    root: Path
    pristine: Path  # the synced store, never clustered
    truth_csv: Path
    clustered: dict[str, Path] = field(default_factory=dict)

    def copy(self, name: str) -> Path:
        target = self.root / name
        target.mkdir()
        shutil.copy(self.pristine / DB, target / DB)
        return target

    def store(self, name: str) -> Path:
        """A copy of the chain clustered to the tip with CONFIGS[name] (made once)."""
        if name not in self.clustered:
            path = self.copy(f"clustered-{name}")
            with open_chain(path, CHAIN, NETWORK) as store:
                Clusterer(store, CONFIGS[name]).run()
            self.clustered[name] = path
        return self.clustered[name]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("accuracy")
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, SEED, SCALE)
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        with open_chain(root / "pristine", CHAIN, NETWORK) as store, RpcClient(url) as client:
            sync_rpc(UtxoIngestor(store), client)
    truth_csv = root / "truth.csv"
    write_ground_truth(truth_csv, facts.owners)
    yield World(facts, root, root / "pristine", truth_csv)


def opened(path: Path, read_only: bool = True) -> ChainStore:
    return open_chain(path, CHAIN, NETWORK, read_only=read_only)


def cli(store: Path, *args: str) -> Any:
    """``cointrail --store STORE --chain litecoin --network regtest ARGS --json`` in a
    subprocess; its JSON document."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
    done = subprocess.run(
        [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(store),
         "--chain", CHAIN, "--network", NETWORK, *args, "--json"],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
        check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def scores(result: Evaluation) -> tuple[float, float]:
    """(precision, recall) of an evaluation with predicted and true pairs (the scenario's)."""
    assert result.precision is not None and result.recall is not None, (
        result.predicted_pairs, result.true_pairs)
    return result.precision, result.recall


def labels(path: Path) -> dict[str, str]:
    """txid -> CoinJoin kind of every transaction the clustering labelled."""
    with opened(path) as store:
        rows = store.query("SELECT t.txid, l.kind FROM tx_labels l JOIN txs t USING (tx_id)"
                           " WHERE l.label = 'coinjoin'")
    return {bytes(t)[::-1].hex(): str(k) for t, k in rows}


# -- the scenario ------------------------------------------------------------------------------


def test_plan_is_a_function_of_the_seed() -> None:
    first, again, other = plan_scenario(SEED, 1), plan_scenario(SEED, 1), plan_scenario(SEED + 1)
    assert first == again
    assert first.digest == again.digest
    assert other.digest != first.digest
    assert first.steps != other.steps


def test_ground_truth_covers_every_address_on_chain(world: World) -> None:
    facts = world.facts
    with opened(world.pristine) as store:
        on_chain = {str(t) for (t,) in store.query("SELECT text FROM addresses")}
        genesis = {str(t) for (t,) in store.query(
            "SELECT text FROM addresses WHERE first_height = 0")}
    # a fresh chain: every address is some wallet's but the genesis coinbase's
    assert on_chain - genesis == set(facts.owners)
    assert set(facts.owners.values()) == set(facts.actors)  # and every actor shows up
    assert facts.coinjoins and facts.batched_payments and facts.tx0s
    assert {f.kind for f in facts.coinjoins} == {"whirlpool", "wasabi_2"}
    assert facts.tip_height < 431  # below MWEB activation at this scale


# -- the targets -----------------------------------------------------------------------


def test_multi_input_alone_is_exact_with_coinjoins_present(world: World) -> None:
    with opened(world.store("multi_input")) as store:
        result = evaluate(store, world.facts.owners)
    assert result.addresses == len(world.facts.owners)
    assert result.correct_pairs > 0
    assert len(world.facts.coinjoins) >= 10
    assert result.precision == 1.0, result.wrong_links


def test_change_heuristics_keep_precision_and_add_recall(world: World) -> None:
    """The issue's precision bar (>= 0.98) holds with the change heuristics, and they add true
    links over multi-input alone. The issue's recall target (>= 0.9) is NOT reachable on this
    economy by any per-transaction heuristic: the ground-truth ceilings below (perfect change
    detection) stay far under it; docs/accuracy.md reports the figures."""
    with opened(world.store("multi_input")) as store:
        alone = evaluate(store, world.facts.owners)
    with opened(world.store("change")) as store:
        result = evaluate(store, world.facts.owners)
        ceilings = {k: pair_scores(v, world.facts.owners).recall
                    for k, v in oracle_partitions(store.con, world.facts).items()}
    precision, recall = scores(result)
    report = (
        f"precision {precision:.4f}, recall {recall:.4f} "
        f"({result.correct_pairs}/{result.true_pairs} true pairs); wrong links "
        f"{[(s.heuristic, s.wrong, s.judged) for s in result.links]}; change votes on wrong "
        f"links {result.change_votes.get('wrong')}, on right links "
        f"{result.change_votes.get('right')}; recall ceilings from the ground truth {ceilings}"
    )
    assert precision >= 0.98, report
    assert recall > scores(alone)[1], report
    assert max(ceilings.values()) < 0.9, report  # why the 0.9 recall target cannot be met here
    # change links made on one vote (linker v4): only the decisive heuristics make them, and
    # the tally by heuristic covers every such link
    votes = result.change_votes
    lone = Counter(votes["right_alone"]) + Counter(votes["wrong_alone"])
    ones = Counter(votes["right_by_votes"]) + Counter(votes["wrong_by_votes"])
    assert sum(lone.values()) == ones["1"], (lone, ones)
    assert lone, report  # the scenario has payments that only one heuristic can read
    assert set(lone) <= set(ChangeLinker().decisive), lone  # never address_type, round_amount


def test_change_detection_is_judged_payment_by_payment(world: World) -> None:
    """`Evaluation.change_detection` agrees with a count from the wallets' ground truth over
    the chain's own transactions: the two-output payments (no coinbase, no CoinJoin) whose
    inputs are all one wallet's and one of whose outputs goes back to it, and which of them
    carry a change link to that output; the linker names the change far more often than
    not, and almost never the payment."""
    owners = world.facts.owners
    cj = {f.txid for f in world.facts.coinjoins} | set(world.facts.tx0s)
    with opened(world.store("change")) as store:
        result = evaluate(store, owners)
        text = {int(a): str(t) for a, t in store.query("SELECT addr_id, text FROM addresses")}
        txid = {int(t): bytes(h)[::-1].hex() for t, h in store.query("SELECT tx_id, txid FROM txs")}
        named = {(int(t), text[int(b)]) for t, b in store.query(
            "SELECT tx_id, addr_b FROM cluster_links WHERE heuristic = 'change'")}
        last = int(store.query("SELECT max(tx_id) FROM txs")[0][0])
        with_change = found = 0
        for tx in iter_tx_views(store.con, 0, last):
            if tx.is_coinbase or len(tx.outputs) != 2 or txid[tx.tx_id] in cj:
                continue
            payers = {owners.get(text.get(i.addr_id or -1, "")) for i in tx.inputs}
            outs = [text.get(o.addr_id or -1, "") for o in tx.outputs]
            if len(payers) != 1 or None in payers or not all(o in owners for o in outs):
                continue
            own = [o for o in outs if owners[o] in payers]
            if len(own) == 1:
                with_change += 1
                found += (tx.tx_id, own[0]) in named
    change = result.change_detection
    assert change is not None
    assert (change.with_change, change.found) == (with_change, found), change
    assert with_change >= 100, change
    assert change.coverage is not None and change.coverage >= 0.5, change
    assert change.precision is not None and change.precision >= 0.98, change
    assert sum(v[0] for v in change.by_owner.values()) == with_change


def test_deposit_addresses_add_recall_and_join_what_the_exchange_owns(world: World) -> None:
    """The deposit-address heuristic: every exchange deposit address the exchange swept joins
    its hot address, each merchant's cashed-out invoices (one-output sweeps to its deposit
    address at the exchange, in separate transactions) come out as one cluster, and recall
    rises over multi-input + change while precision holds."""
    facts = world.facts
    with opened(world.store("change")) as store:
        before = evaluate(store, facts.owners)
    with opened(world.store("deposit")) as store:
        result = evaluate(store, facts.owners)
        view = cluster_view(store)
        ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")}
        spent = {str(t) for (t,) in store.query(
            "SELECT DISTINCT a.text FROM inputs i JOIN addresses a USING (addr_id)")}
    judged = {s.heuristic: s for s in result.links}
    deposit = judged["deposit_address"]
    (precision, recall), recall_before = scores(result), scores(before)[1]
    report = (f"precision {precision:.4f}, recall {recall:.4f} (multi-input + "
              f"change: {recall_before:.4f}); deposit links {deposit.wrong} wrong of "
              f"{deposit.judged}")
    assert precision >= 0.98, report
    assert recall > recall_before * 1.5, report
    assert deposit.judged > 0 and deposit.wrong <= 0.01 * deposit.judged, report
    hot = view.of(ids[facts.hot_address])
    swept = sorted(d for d in set(facts.exchange_deposits.values()) if d in spent)
    assert len(swept) >= 10
    assert [d for d in swept if view.of(ids[d]) != hot] == []
    merchants: dict[str, set[int | None]] = {}
    for address, owner in facts.owners.items():
        if owner.startswith("merchant") and address in spent:
            merchants.setdefault(owner, set()).add(view.of(ids[address]))
    assert merchants and all(len(c) == 1 for c in merchants.values()), merchants
    assert hot not in set().union(*merchants.values())  # no merchant joined the exchange
    assert hot is not None
    shown = cli(world.store("deposit"), "show", "cluster", str(hot), "--limit", "1")
    (found,) = shown["hot_wallets"]  # the exchange, recognised by behaviour alone
    assert found["address"] == facts.hot_address
    assert found["deposit_addresses"] >= len(swept)


def _withdrawal_senders(store: ChainStore, facts: ScenarioFacts) -> list[int]:
    """The first input address of every exchange withdrawal batch."""
    batches = [bytes.fromhex(t)[::-1] for t, kind in facts.batched_payments.items()
               if kind == "exchange_withdrawal"]
    rows = store.query(
        "SELECT i.addr_id FROM inputs i JOIN txs t USING (tx_id) WHERE i.n = 0"
        " AND t.txid IN (SELECT unnest(?::BLOB[])) ORDER BY i.tx_id", [batches])
    return [int(a) for (a,) in rows]


def test_batch_change_joins_the_exchange_withdrawal_batches_to_its_hot_wallet(
        world: World) -> None:
    """The exchange's withdrawal batches spend the previous batch's change: with batch change
    their senders fall into far fewer clusters and more of them into the hot wallet's, no
    batch-change link joins two owners, and recall rises over the three other heuristics while
    precision holds."""
    facts = world.facts
    shares, pieces = {}, {}
    for name in ("deposit", "batch"):
        with opened(world.store(name)) as store:
            view = cluster_view(store)
            ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")}
            hot = view.of(ids[facts.hot_address])
            senders = _withdrawal_senders(store, facts)
            shares[name] = sum(view.of(a) == hot for a in senders) / len(senders)
            pieces[name] = len({view.of(a) for a in senders})
            result = evaluate(store, facts.owners)
            if name == "deposit":
                before = result
    judged = {s.heuristic: s for s in result.links}["batch_change"]
    (precision, recall), recall_before = scores(result), scores(before)[1]
    report = (f"precision {precision:.4f}, recall {recall:.4f} (without batch "
              f"change {recall_before:.4f}); batch-change links {judged.wrong} wrong of "
              f"{judged.judged}; withdrawal batches sent from the hot wallet's cluster: "
              f"{shares['deposit']:.2f} -> {shares['batch']:.2f}, from how many clusters: "
              f"{pieces['deposit']} -> {pieces['batch']}")
    assert judged.judged >= 10 and judged.wrong <= 0.01 * judged.judged, report
    assert precision >= 0.98 and recall > recall_before, report
    assert shares["batch"] > shares["deposit"], report
    assert pieces["batch"] * 2 <= pieces["deposit"], report


def _linked_pairs(store_dir: Path, heuristic: str) -> list[tuple[str, str]]:
    """The address pairs of a heuristic's stored links, in chain order."""
    with opened(store_dir) as store:
        rows = store.query(
            "SELECT a.text, b.text FROM cluster_links l JOIN addresses a ON a.addr_id = l.addr_a"
            " JOIN addresses b ON b.addr_id = l.addr_b WHERE l.heuristic = ?"
            " ORDER BY l.tx_id, l.rowid", [heuristic])
    return [(str(a), str(b)) for a, b in rows]


def test_tx0_outputs_join_each_whirlpool_users_premix_outputs_and_change(world: World) -> None:
    """Every output of every Tx0 but the coordinator's fee is linked to the Tx0's owner, none
    wrongly; the Whirlpool users come out in fewer pieces and recall rises while precision
    holds. A mix's outputs stay apart: the links are all in Tx0s."""
    facts = world.facts
    with opened(world.store("batch")) as store:
        before = evaluate(store, facts.owners)
    with opened(world.store("tx0")) as store:
        result = evaluate(store, facts.owners)
        rows = store.query(
            "SELECT t.txid, a.text, b.text FROM cluster_links l JOIN txs t USING (tx_id)"
            " JOIN addresses a ON a.addr_id = l.addr_a JOIN addresses b ON b.addr_id = l.addr_b"
            " WHERE l.heuristic = 'tx0_outputs'")
        coordinator = {bytes(t)[::-1].hex(): (int(n), str(a)) for t, n, a in store.query(
            "SELECT t.txid, o.n, a.text FROM tx_labels l JOIN txs t USING (tx_id)"
            " JOIN outputs o ON o.tx_id = l.tx_id"
            " AND o.n = CAST(json_extract(l.evidence, '$.coordinator_output') AS INTEGER)"
            " JOIN addresses a ON a.addr_id = o.addr_id WHERE l.kind = 'whirlpool_tx0'")}
    links = [(bytes(t)[::-1].hex(), str(a), str(b)) for t, a, b in rows]
    assert links and {t for t, _, _ in links} == set(facts.tx0s)
    assert [(t, a, b) for t, a, b in links if facts.owners[a] != facts.owners[b]] == []
    assert all(facts.actors[facts.owners[a]] == "whirlpool_user" for _, a, _ in links)
    assert not {b for _, _, b in links} & {a for _, a in coordinator.values()}
    assert {facts.actors[facts.owners[a]] for _, a in coordinator.values()} == {
        "whirlpool_coordinator"}
    (precision, recall), recall_before = scores(result), scores(before)[1]
    assert precision >= 0.98 and recall > recall_before, (precision, recall, recall_before)
    (tx0,) = [s for s in result.links if s.heuristic == "tx0_outputs"]
    assert tx0.wrong == 0 and tx0.judged == len(links)
    # explain names the Tx0 behind such a link, in JSON and in words
    txid, a, b = links[0]
    answer = cli(world.store("tx0"), "explain", a, b)
    assert answer["linked"] is True
    assert [(h["heuristic"], h["heuristic_version"], h["txid"]) for h in answer["path"]] == [
        ("tx0_outputs", "1", txid)]
    assert "a premix or change output of this Whirlpool Tx0" in explain_text(answer)


def test_explain_shows_the_batches_behind_a_batch_change_link(world: World) -> None:
    facts = world.facts
    store_dir = world.store("batch")
    a, b = _linked_pairs(store_dir, "batch_change")[0]
    answer = cli(store_dir, "explain", a, b)
    (hop,) = answer["path"]
    assert hop["heuristic"] == "batch_change" and hop["heuristic_version"] == "1"
    evidence = hop["evidence"]
    assert facts.batched_payments[evidence["batch"]] == "exchange_withdrawal"
    assert evidence["spent_by"] == hop["txid"]
    assert facts.batched_payments[hop["txid"]] == "exchange_withdrawal"
    assert facts.owners[a] == facts.owners[b] == facts.exchange
    assert evidence["batch_outputs"] >= 3 and evidence["spender_outputs"] >= 3


def test_explain_names_the_deposit_address_behind_a_merchant_link(world: World) -> None:
    facts = world.facts
    store_dir = world.store("deposit")
    pairs = [(a, b) for a, b in _linked_pairs(store_dir, "deposit_address")
             if facts.owners[a].startswith("merchant") and b != facts.hot_address]
    assert pairs, "no merchant cash-outs linked through their deposit address"
    a, b = pairs[0]
    merchant = facts.owners[a]
    answer = cli(store_dir, "explain", a, b)
    assert answer["linked"] is True
    (hop,) = [h for h in answer["path"] if h["heuristic"] == "deposit_address"]
    evidence = hop["evidence"]
    assert evidence["kind"] == "same_depositor"
    assert evidence["deposit_address"] == facts.exchange_deposits[merchant]
    assert evidence["hot_wallet"] == facts.hot_address
    assert len(evidence["payments"]) == 2
    for txid in (*evidence["payments"], evidence["first_forward"], hop["txid"]):
        assert txid in facts.tx_heights


def test_coinjoin_rounds_are_flagged_and_batched_payments_are_not(world: World) -> None:
    facts = world.facts
    for name in CONFIGS:
        found = labels(world.store(name))
        right = [f for f in facts.coinjoins if found.get(f.txid) == f.kind]
        for kind in ("whirlpool", "wasabi_2"):
            rounds = [f for f in facts.coinjoins if f.kind == kind]
            hits = [f for f in right if f.kind == kind]
            assert len(hits) >= 0.99 * len(rounds), (kind, [f for f in rounds if f not in hits])
        flagged = {t: found[t] for t in facts.batched_payments if t in found}
        assert flagged == {}
        tx0 = [t for t in facts.tx0s if found.get(t) == "whirlpool_tx0"]
        assert len(tx0) == len(facts.tx0s)
        # nothing else on the chain is a CoinJoin
        assert set(found) == {f.txid for f in facts.coinjoins} | set(facts.tx0s)


# -- the evaluation itself ---------------------------------------------------------------------


def test_evaluate_agrees_with_a_brute_force_pair_count(world: World) -> None:
    rng = random.Random(SEED)
    owners = world.facts.owners
    with opened(world.store("change")) as store:
        view = cluster_view(store)
        ids = {str(t): int(a) for a, t in store.query("SELECT addr_id, text FROM addresses")
               if str(t) in owners}
        # a sample rich in shared clusters: members of the largest clusters and of clusters
        # holding several owners, plus addresses drawn at random
        by_cluster: dict[int, set[str]] = {}
        for text, a in ids.items():
            by_cluster.setdefault(int(view.ids[a]), set()).add(text)
        largest = sorted(by_cluster.values(), key=len, reverse=True)[:5]
        mixed = [m for m in by_cluster.values() if len({owners[t] for t in m}) > 1][:5]
        chosen = {t for m in largest + mixed for t in sorted(m)[:60]}
        sample = sorted(chosen | set(rng.sample(sorted(owners), 250)))
        subset = {a: owners[a] for a in sample}
        result = evaluate(store, subset)
    cluster = {a: int(view.ids[ids[a]]) for a in sample}
    predicted, true, correct = pair_counts(cluster, subset, sample)
    assert (result.predicted_pairs, result.true_pairs, result.correct_pairs) == (
        predicted, true, correct)
    assert true > correct > 0
    assert (predicted > correct) == bool(mixed)  # wrong pairs exactly when clusters are mixed
    assert result.precision == correct / predicted
    assert result.recall == correct / true
    majority = 0
    for c in set(cluster.values()):
        in_c = [subset[a] for a in sample if cluster[a] == c]
        majority += max(in_c.count(o) for o in set(in_c))
    assert result.purity == majority / len(sample)
    independent = pair_scores(cluster, subset)
    assert (independent.correct_pairs, independent.clusters) == (correct, result.clusters)


def test_cluster_evaluate_command_reports_the_evaluation(world: World) -> None:
    store_dir = world.store("change")
    app = typer.Typer()
    app.callback()(main_callback)
    app.command("cluster-evaluate")(evaluate_cmd)
    runner = CliRunner()
    base = ["--store", str(store_dir), "--chain", CHAIN, "--network", NETWORK,
            "cluster-evaluate", str(world.truth_csv)]
    height = world.facts.coinjoins[0].height
    for extra in ([], ["--as-of", str(height)]):
        done = runner.invoke(app, [*base, *extra, "--json"])
        assert done.exit_code == 0, done.output
        with opened(store_dir) as store:
            expected = evaluate(store, read_ground_truth(world.truth_csv),
                                as_of=int(extra[1]) if extra else None)
        assert json.loads(done.output) == json.loads(json.dumps(expected.to_dict()))
    human = runner.invoke(app, base)
    assert human.exit_code == 0
    assert "pairwise precision" in human.output
    with opened(store_dir) as store:
        lone = evaluate(store, read_ground_truth(world.truth_csv)).change_votes["right_alone"]
    assert lone and ("right change links on one vote: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(lone.items()))) in " ".join(
        human.output.split())
    bad = world.root / "bad.csv"
    bad.write_text("address,owner\n" + next(iter(world.facts.owners)) + ",x\nnot-an-address,y\n")
    refused = runner.invoke(app, [*base[:-1], str(bad)])
    assert refused.exit_code == 2
    assert f"{bad}:3" in refused.output


def test_cluster_evaluate_refuses_a_ground_truth_with_nothing_to_evaluate(world: World) -> None:
    """Addresses of no chain, or all first seen above the clustering's height: an error that
    gives the counts, not a perfect score of nothing."""
    facts = world.facts
    store_dir = world.store("multi_input")
    spec = get_chain(CHAIN, NETWORK)
    unknown = {encode_address(spec, "witness_v0_keyhash", bytes([k]) * 20) or "": "nobody"
               for k in (1, 2, 3)}
    height = facts.tx_heights[facts.consolidation_txid] - 1
    with opened(store_dir) as store:
        tip = cluster_view(store).height
        late = {str(t): facts.owners[str(t)] for (t,) in store.query(
            "SELECT text FROM addresses WHERE first_height > ?", [height])}
        with pytest.raises(InputError) as caught:
            evaluate(store, unknown)
        assert (f"none of the 3 ground-truth address(es) can be evaluated: 3 not in the "
                f"litecoin/regtest store, 0 first seen above the clustering's height {tip}; "
                f"check that the file holds litecoin/regtest addresses (--chain/--network)"
                in str(caught.value))
        with pytest.raises(InputError) as caught:
            evaluate(store, late, as_of=height)
        assert (f"none of the {len(late)} ground-truth address(es) can be evaluated: 0 not in "
                f"the litecoin/regtest store, {len(late)} first seen above the clustering's "
                f"height {height}; run `cointrail cluster`" in str(caught.value))
    app = typer.Typer()
    app.callback()(main_callback)
    app.command("cluster-evaluate")(evaluate_cmd)
    csv = world.root / "unknown.csv"
    write_ground_truth(csv, unknown)
    refused = CliRunner().invoke(app, ["--store", str(store_dir), "--chain", CHAIN, "--network",
                                       NETWORK, "cluster-evaluate", str(csv), "--json"])
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.startswith("error: none of the 3 ground-truth address(es)")
    assert refused.stdout == ""


def test_evaluate_leaves_a_measure_without_pairs_undefined(world: World) -> None:
    """One address: no pair predicted, none true; precision, recall, F1 and the owner's recall
    are None (null in JSON, n/a in text), purity 1.0."""
    store_dir = world.store("change")
    address, owner = next(iter(world.facts.owners.items()))
    with opened(store_dir) as store:
        result = evaluate(store, {address: owner})
    assert (result.addresses, result.predicted_pairs, result.true_pairs) == (1, 0, 0)
    assert (result.precision, result.recall, result.f1) == (None, None, None)
    assert (result.purity, result.inverse_purity) == (1.0, 1.0)
    assert result.largest_owners[0].recall is None
    app = typer.Typer()
    app.callback()(main_callback)
    app.command("cluster-evaluate")(evaluate_cmd)
    csv = world.root / "one.csv"
    write_ground_truth(csv, {address: owner})
    base = ["--store", str(store_dir), "--chain", CHAIN, "--network", NETWORK,
            "cluster-evaluate", str(csv)]
    runner = CliRunner()
    doc = json.loads(runner.invoke(app, [*base, "--json"]).stdout)
    assert (doc["precision"], doc["recall"], doc["f1"]) == (None, None, None)
    text = runner.invoke(app, base)
    assert text.exit_code == 0, text.output
    assert "n/a (no pairs predicted)" in text.stdout
    assert "n/a (no same-owner pairs)" in text.stdout


def test_read_ground_truth_names_file_and_line_of_each_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text(
        "address,owner\n"          # 1
        "a1,alice\n"               # 2
        "a2,bob,extra\n"           # 3
        "\n"                       # 4 blank: skipped
        "a3,\n"                    # 5
        "a1,mallory\n"             # 6 a1 was alice's
        "a1,alice\n"               # 7 the same row again: fine
    )
    with pytest.raises(ValidationError) as caught:
        read_ground_truth(path)
    assert [(p.source, p.line) for p in caught.value.problems] == [
        (str(path), 3), (str(path), 5), (str(path), 6)]
    assert f"{path}:3" in str(caught.value)
    path.write_text("# comment\na1,alice\na2,bob\n")
    assert read_ground_truth(path) == {"a1": "alice", "a2": "bob"}


# -- explain, show cluster, --as-of, incremental runs ------------------------------------------


def test_explain_links_two_ransom_addresses_through_the_consolidation(world: World) -> None:
    facts = world.facts
    first, last = facts.operator_addresses[0], facts.operator_addresses[-1]
    store_dir = world.store("multi_input")
    answer = cli(store_dir, "explain", first, last)
    assert answer["linked"] is True
    assert answer["path"]
    with opened(store_dir) as store:
        known = {bytes(t)[::-1].hex() for (t,) in store.query("SELECT txid FROM txs")}
    for hop in answer["path"]:
        assert hop["txid"] in known
        assert hop["txid"] == facts.consolidation_txid
        assert hop["heuristic"] == "multi_input"
        assert hop["height"] == facts.tx_heights[facts.consolidation_txid]
    before = facts.tx_heights[facts.consolidation_txid] - 1
    earlier = cli(store_dir, "explain", first, last, "--as-of", str(before))
    assert earlier["linked"] is False


def test_show_cluster_of_the_operator_matches_the_ransoms(world: World) -> None:
    facts = world.facts
    store_dir = world.store("multi_input")
    with opened(store_dir) as store:
        (addr_id,) = store.query("SELECT addr_id FROM addresses WHERE text = ?",
                                 [facts.operator_addresses[0]])[0]
        cluster_id = cluster_view(store).of(int(addr_id))
    assert cluster_id is not None
    shown = cli(store_dir, "show", "cluster", str(cluster_id), "--limit", "1000")
    addresses = {item["address"] for item in shown["addresses"]["items"]}
    assert addresses == set(facts.operator_addresses)
    assert shown["size"] == len(facts.operator_addresses)
    assert shown["received_sat"] == facts.total_ransom_sat
    assert shown["sent_sat"] == facts.total_ransom_sat  # all consolidated
    assert shown["balance_sat"] == 0


@pytest.mark.parametrize("config", ["change", "deposit", "batch"])
def test_as_of_equals_a_run_stopped_at_that_height(world: World, config: str) -> None:
    facts = world.facts
    height = facts.tx_heights[facts.consolidation_txid] - 1
    copy = world.copy(f"stopped-{config}")
    with opened(copy, read_only=False) as store:
        Clusterer(store, CONFIGS[config]).run(to_height=height)
        stopped = np.asarray(cluster_view(store).ids)
        stopped_eval = evaluate(store, facts.owners)
    with opened(world.store(config)) as store:
        replayed = cluster_view(store, as_of=height)
        replayed_eval = evaluate(store, facts.owners, as_of=height)
        at_tip = np.asarray(cluster_view(store).ids)
    assert replayed.height == height
    assert np.array_equal(np.asarray(replayed.ids), stopped)
    assert len(stopped) < len(at_tip)  # addresses appeared after `height`
    assert replayed_eval.to_dict() | {"config": None} == stopped_eval.to_dict() | {"config": None}
    assert replayed_eval.above_height > 0


@pytest.mark.parametrize("config", ["change", "deposit", "batch"])
def test_incremental_runs_equal_one_run(world: World, config: str) -> None:
    facts = world.facts
    middle = sorted(f.height for f in facts.coinjoins)[len(facts.coinjoins) // 2]
    copy = world.copy(f"incremental-{config}")
    with opened(copy, read_only=False) as store:
        clusterer = Clusterer(store, CONFIGS[config])
        clusterer.run(to_height=middle)
        clusterer.run(to_height=middle + 7)
        Clusterer(store, CONFIGS[config]).run()
        stepwise = np.asarray(cluster_view(store).ids)
        stepwise_rows = {t: store.query(f"SELECT * FROM {t} ORDER BY ALL")
                         for t in ("cluster_links", "cluster_merges", "tx_labels",
                                   "link_evidence")}
    with opened(world.store(config)) as store:
        once = np.asarray(cluster_view(store).ids)
        once_rows = {t: store.query(f"SELECT * FROM {t} ORDER BY ALL") for t in stepwise_rows}
    assert np.array_equal(stepwise, once)
    for table, rows in once_rows.items():
        assert stepwise_rows[table] == rows, table
    assert once_rows["cluster_links"]


def test_second_look_links_keep_runs_and_replays_exact(world: World) -> None:
    """The change linker's second look dates a link at the last spend of its transaction's
    outputs (the wallet fingerprint's vote needs the spenders). Runs stopped between such a
    transaction and that spend, at the spend and elsewhere write the rows of one run, in the
    same order, and the replay as of the height before the spend equals a fresh run stopped
    there, without the link."""
    with opened(world.store("change")) as store:
        looks = store.query(
            "SELECT t.height, l.height, t.txid FROM cluster_links l JOIN txs t USING (tx_id)"
            " WHERE l.heuristic = 'change' AND l.height > t.height ORDER BY l.height")
        tip = int(store.state()["cluster_height"])
        once = {t: store.query(f"SELECT * FROM {t} ORDER BY rowid")
                for t in ("cluster_links", "cluster_merges", "cluster_held", "link_evidence")}
        once_ids = np.asarray(cluster_view(store).ids)
        own, late, txid = looks[len(looks) // 2] if looks else (0, 0, b"")
        before = cluster_view(store, as_of=late - 1) if looks else None
    assert looks, "no change link on the scenario chain came from a second look"
    assert before is not None
    copy = world.copy("second-look-stepwise")
    with opened(copy, read_only=False) as store:
        for stop in sorted({own, late - 1, late, tip // 3, tip // 2}):
            Clusterer(store, CONFIGS["change"]).run(to_height=stop)
        Clusterer(store, CONFIGS["change"]).run()
        assert np.array_equal(np.asarray(cluster_view(store).ids), once_ids)
        for table, rows in once.items():
            assert store.query(f"SELECT * FROM {table} ORDER BY rowid") == rows, table
    stopped = world.copy("second-look-before")
    with opened(stopped, read_only=False) as store:
        Clusterer(store, CONFIGS["change"]).run(to_height=late - 1)
        assert np.array_equal(np.asarray(cluster_view(store).ids), np.asarray(before.ids))
        assert not store.query(
            "SELECT 1 FROM cluster_links l JOIN txs t USING (tx_id)"
            " WHERE t.txid = ? AND l.heuristic = 'change'", [txid])
