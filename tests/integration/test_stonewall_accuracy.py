"""Samourai Stonewalls in the synthetic economy: the detector, and what reading them as one
owner's would cost.

A Stonewall pays two equal outputs, the payment and a decoy, from two sets of inputs that each
get their change back. A solo Stonewall has one owner; in a Stonewall X2 a collaborator funds the
second set and takes the decoy and its change, so it has two, and nothing on the chain tells the
two apart (`docs/accuracy.md`, "Stonewalls"). `tests.support.scenario` makes a share of the
Whirlpool users' payments Stonewalls on a real ``litecoind -regtest``, half of them drawn as X2s.
The tests check that they are built as Samourai builds them; that the Stonewall detector flags
every one and nothing else; that multi-input skips them by default and stays exact; that reading
them as one owner's (``multi_input.stonewall_one_owner``) errs at the X2s and only there; and
that with the X2s declared it gives exactly common-input ownership over the rest.
"""

from __future__ import annotations

import json

import pytest

from cointrail.analysis.clustering.engine import ClusterConfig
from cointrail.analysis.clustering.evaluate import evaluate
from cointrail.store.duck import ChainStore, open_chain
from tests.support.scenario import (
    Role,
    ScenarioFacts,
    Stonewall,
    oracle_partitions,
    plan_scenario,
)
from tests.support.scenario_store import (
    CHAIN,
    NETWORK,
    ScenarioStore,
    build_scenario_store,
    clusters_of,
    partition_of,
)

pytestmark = pytest.mark.integration

SEED, SCALE, SHARE = 20240607, 1, 0.8
ONE_OWNER = (("multi_input", "stonewall_one_owner", True),)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ScenarioStore:
    return build_scenario_store(tmp_path_factory.mktemp("stonewall"), SEED, SCALE,
                                stonewall_share=SHARE)


def _links(store: ChainStore, facts: ScenarioFacts) -> dict[str, list[bool]]:
    """txid -> for each stored link made there, whether it joins two owners."""
    rows = store.query(
        "SELECT t.txid, a.text, b.text FROM cluster_links l JOIN txs t USING (tx_id)"
        " JOIN addresses a ON a.addr_id = l.addr_a JOIN addresses b ON b.addr_id = l.addr_b")
    out: dict[str, list[bool]] = {}
    for raw, a, b in rows:
        out.setdefault(bytes(raw)[::-1].hex(), []).append(
            facts.owners[str(a)] != facts.owners[str(b)])
    return out


def test_the_stonewall_share_only_turns_whirlpool_users_payments_into_stonewalls() -> None:
    plain, walled = plan_scenario(SEED, SCALE), plan_scenario(SEED, SCALE, stonewall_share=SHARE)
    assert plan_scenario(SEED, SCALE, stonewall_share=0.0).digest == plain.digest
    roles = {p.wallet: p.role for p in plain.profiles}
    changed = [(a, b) for s, t in zip(plain.steps, walled.steps, strict=True)
               for a, b in zip(s, t, strict=True) if a != b]
    assert changed and all(isinstance(b, Stonewall) for _, b in changed)
    assert all((a.payer, a.payee, a.amount, a.purpose) == (b.payer, b.payee, b.amount, b.purpose)
               and roles[b.payer] is Role.WHIRLPOOL_USER for a, b in changed)
    partners = [b.collaborator for _, b in changed if b.collaborator]
    assert partners and all(roles[p] is Role.WHIRLPOOL_USER for p in partners)
    assert all(b.collaborator != b.payer for _, b in changed)
    fewer = plan_scenario(SEED, SCALE, stonewall_share=SHARE / 2)
    few = {(k, a) for k, s in enumerate(fewer.steps) for a in s if isinstance(a, Stonewall)}
    more = {(k, a) for k, s in enumerate(walled.steps) for a in s if isinstance(a, Stonewall)}
    assert few < more  # a smaller share's Stonewalls are among a larger share's


def test_stonewalls_are_built_as_samourai_builds_them(world: ScenarioStore) -> None:
    facts = world.facts
    x2s = len(facts.stonewall_x2s)
    assert x2s >= 3 and len(facts.stonewalls) - x2s >= 5, (
        len(facts.stonewalls), x2s, len(facts.stonewall_fallbacks))
    with open_chain(world.pristine, CHAIN, NETWORK, read_only=True) as store:
        txs = {bytes(raw)[::-1].hex(): (int(t), int(v), int(lt)) for raw, t, v, lt in
               store.query("SELECT txid, tx_id, version, lock_time FROM txs")}
        for txid, (payer, partner) in facts.stonewalls.items():
            tx_id, version, lock_time = txs[txid]
            assert (version, lock_time) == (2, facts.tx_heights[txid] - 1), txid
            inputs = store.query(
                "SELECT p.txid, i.prev_n, a.text FROM inputs i JOIN txs p"
                " ON p.tx_id = i.prev_tx_id JOIN addresses a ON a.addr_id = i.addr_id"
                " WHERE i.tx_id = ? ORDER BY i.n", [tx_id])
            keys = [(bytes(h)[::-1].hex(), int(n)) for h, n, _ in inputs]
            assert keys == sorted(keys), txid  # BIP 69
            outputs = store.query(
                "SELECT o.value, a.text FROM outputs o JOIN addresses a USING (addr_id)"
                " WHERE o.tx_id = ? ORDER BY o.n", [tx_id])
            values = [int(v) for v, _ in outputs]
            assert values == sorted(values) and len(values) in (3, 4), txid
            owners_in = {facts.owners[str(a)] for _, _, a in inputs}
            assert owners_in == ({payer, partner} if partner else {payer}), txid
            amount = next(v for v in values if values.count(v) == 2)
            paid = {str(a): facts.owners[str(a)] for v, a in outputs if int(v) == amount}
            others = {facts.owners[str(a)] for v, a in outputs if int(v) != amount}
            assert others <= {payer, partner or payer}
            # one of the equal outputs is the payment, the other the decoy of the second set
            assert (partner or payer) in paid.values(), txid


def test_the_detector_flags_every_stonewall_and_nothing_else(world: ScenarioStore) -> None:
    facts = world.facts
    with world.clustered("default", ClusterConfig(heuristics=("multi_input",))) as store:
        rows = store.query("SELECT t.txid, l.kind, l.evidence FROM tx_labels l JOIN txs t"
                           " USING (tx_id) WHERE l.label = 'coinjoin'")
        flagged = {bytes(raw)[::-1].hex(): str(kind) for raw, kind, _ in rows}
        evidence = {bytes(raw)[::-1].hex(): json.loads(e) for raw, _, e in rows}
        result = evaluate(store, facts.owners)
        links = _links(store, facts)
    walls = {t for t, k in flagged.items() if k == "stonewall"}
    assert walls == set(facts.stonewalls)
    # the scenario makes the fee even and takes half from each change, as Samourai does
    assert all(evidence[t]["fee_halves"] for t in walls if evidence[t]["outputs"] == 4)
    assert not walls & set(facts.batched_payments)
    known = {f.txid for f in facts.coinjoins} | set(facts.tx0s) | set(facts.stonewalls)
    assert set(flagged) <= known
    # multi-input skips every Stonewall by default, so it stays exact
    assert not set(links) & set(facts.stonewalls)
    assert result.precision == 1.0


def test_reading_stonewalls_as_one_owners_errs_at_the_x2s_only(world: ScenarioStore) -> None:
    facts = world.facts
    config = ClusterConfig(heuristics=("multi_input",), params=ONE_OWNER)
    with world.clustered("one-owner", config) as store:
        result = evaluate(store, facts.owners)
        links = _links(store, facts)
    wrong = {t for t, joins in links.items() if any(joins)}
    # every X2 joins payer and collaborator, and nothing else errs
    assert wrong == set(facts.stonewall_x2s)
    solo = set(facts.stonewalls) - set(facts.stonewall_x2s)
    assert solo & set(links)  # solo Stonewalls are joined, rightly
    assert result.precision is not None and result.precision < 1.0


def test_with_the_x2s_declared_reading_stonewalls_as_one_owners_is_the_ceiling(
    world: ScenarioStore,
) -> None:
    facts = world.facts
    config = ClusterConfig(heuristics=("multi_input",), params=ONE_OWNER,
                           multi_owner=tuple(facts.stonewall_x2s),
                           multi_owner_from="the scenario's Stonewall X2s")
    with world.clustered("declared", config) as store:
        result = evaluate(store, facts.owners)
        ours = clusters_of(store)
        ceiling = oracle_partitions(store.con, facts)["inputs"]
    assert result.precision == 1.0
    # the ceiling skips the scenario's CoinJoins and X2s and joins solo Stonewalls' inputs
    assert ours == partition_of(ceiling)
