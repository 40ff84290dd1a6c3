"""Tracing and the red-flag rules on a real ``litecoind -regtest`` scenario (issue 6).

`tests.support.scenario` acts out an economy in which victims pay a ransomware operator, who
consolidates every ransom into one address, peels it hop by hop into deposit addresses at an
exchange. The exchange's deposit addresses are tagged (an own-tags CSV, category ``exchange``)
and the tests check the issue's targets:

* a forward trace from the ransom addresses finds every exchange deposit with the exact amount
  under each taint model (poison, haircut, FIFO);
* a backward trace from a deposit reaches the victims' ransom payments and the victims;
* the peel-chain and pass-through rules fire on the operator and not on ordinary users.

Every expected amount is read from the node (``getrawtransaction`` of the scenario's
transactions), never from the trace engine.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
from cointrail.analysis.risk.rules import PassThrough, PeelChain, evaluate
from cointrail.analysis.tracing import TaintModel, Trace, TraceParams, trace
from cointrail.attribution import AttributionStore, import_tags
from cointrail.chain.rpc import RpcClient
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import sync_rpc
from tests.support.litecoind import LitecoindNode, to_sat
from tests.support.scenario import NODE_ARGS, ScenarioFacts, build_scenario

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("ACCURACY_TEST_SEED", "20240607"))
SCALE = 1
CHAIN, NETWORK = "litecoin", "regtest"
MODELS = (TaintModel.POISON, TaintModel.HAIRCUT, TaintModel.FIFO)
#: Enough hops for ransom -> consolidation -> every peel hop (and back again).
HOPS = 20
EXCHANGE_LABEL = "Scenario exchange deposit"

Outpoint = tuple[str, int]


@dataclass
class World:
    facts: ScenarioFacts
    store: Path  # synced, clustered with common-input ownership; attribution.duckdb beside it
    txs: dict[str, dict[str, Any]]  # txid -> verbose getrawtransaction, of the operator's story
    deposits: dict[Outpoint, int] = field(default_factory=dict)  # peel outputs at the exchange
    fees: dict[str, int] = field(default_factory=dict)  # consolidation and peel fees
    ransom_outputs: dict[Outpoint, int] = field(default_factory=dict)  # paid to the operator
    victim_inputs: dict[Outpoint, str] = field(default_factory=dict)  # spent by ransoms -> victim


def _raw(node: LitecoindNode, facts: ScenarioFacts, txid: str) -> dict[str, Any]:
    block = node.rpc("getblockhash", facts.tx_heights[txid])
    return dict(node.rpc("getrawtransaction", txid, True, block))


def _address(vout: dict[str, Any]) -> str | None:
    spk = vout.get("scriptPubKey", {})
    if "address" in spk:
        return str(spk["address"])
    found = spk.get("addresses") or []
    return str(found[0]) if len(found) == 1 else None


def _expectations(world: World) -> None:
    """What the operator's transactions carry, from the node's own transactions."""
    facts, txs = world.facts, world.txs
    operator = set(facts.operator_addresses)
    deposit_addresses = set(facts.exchange_deposits.values())

    def value(txid: str, n: int) -> int:
        return to_sat(txs[txid]["vout"][n]["value"])

    for txid in facts.ransom_payments:
        for vout in txs[txid]["vout"]:
            if _address(vout) in operator:
                world.ransom_outputs[(txid, int(vout["n"]))] = to_sat(vout["value"])
        for vin in txs[txid]["vin"]:
            world.victim_inputs[(str(vin["txid"]), int(vin["vout"]))] = (
                facts.ransom_payments[txid])
    for txid in [facts.consolidation_txid, *facts.peel_txids]:
        spent = sum(value(str(i["txid"]), int(i["vout"])) for i in txs[txid]["vin"])
        made = sum(to_sat(v["value"]) for v in txs[txid]["vout"])
        world.fees[txid] = spent - made
        if txid != facts.consolidation_txid:
            for vout in txs[txid]["vout"]:
                if _address(vout) in deposit_addresses:
                    world.deposits[(txid, int(vout["n"]))] = to_sat(vout["value"])


def _tag_exchange(facts: ScenarioFacts, store_dir: Path) -> None:
    """Own tags: every deposit address of the exchange, category exchange, actor exchange."""
    path = store_dir.parent / "exchange-tags.csv"
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["address", "chain", "network", "label", "category", "actor",
                      "confidence", "source"])
        for address in sorted(set(facts.exchange_deposits.values())):
            out.writerow([address, CHAIN, NETWORK, EXCHANGE_LABEL, "exchange", "exchange",
                          "ownership", "scenario ground truth"])
    with AttributionStore(store_dir) as attribution:
        report = import_tags(attribution, [path])
    assert [f.kind for f in report.files] == ["own"]
    assert report.files[0].rejected == 0, report.as_dict()


def build_world(root: Path) -> World:
    store_dir = root / "store"
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, SEED, SCALE)
        story = [*facts.ransom_payments, facts.consolidation_txid, *facts.peel_txids]
        txs = {t: _raw(node, facts, t) for t in story}
        # the prevouts the ransoms spend (for the victims' coins) are read from the store
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        with open_chain(store_dir, CHAIN, NETWORK) as store, RpcClient(url) as client:
            sync_rpc(UtxoIngestor(store), client)
    with open_chain(store_dir, CHAIN, NETWORK) as store:
        Clusterer(store, ClusterConfig(heuristics=("multi_input",))).run()
    _tag_exchange(facts, store_dir)
    world = World(facts, store_dir, txs)
    _expectations(world)
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield build_world(tmp_path_factory.mktemp("trace"))


def opened(world: World) -> ChainStore:
    return open_chain(world.store, CHAIN, NETWORK, read_only=True)


def cluster_of(store: ChainStore, address: str) -> str:
    (addr_id,) = store.query("SELECT addr_id FROM addresses WHERE text = ?", [address])[0]
    cluster_id = cluster_view(store).of(int(addr_id))
    assert cluster_id is not None
    return f"cluster:{cluster_id}"


def endpoints(result: Trace, category: str) -> dict[Outpoint, int]:
    found: dict[Outpoint, int] = {}
    for e in result.endpoints:
        if e.category == category:
            assert e.vout is not None
            found[(e.txid, e.vout)] = found.get((e.txid, e.vout), 0) + e.amount
    return found


# -- the scenario's own story, checked against the node ----------------------------------------


def test_operator_funds_are_ransom_only(world: World) -> None:
    """The consolidation spends exactly the victims' ransom outputs, and every later hop spends
    only the operator's previous output: no other funds mix in, so under every taint model the
    deposits are wholly ransom money and their exact amounts are the deposit outputs' values."""
    facts, txs = world.facts, world.txs
    consolidation = txs[facts.consolidation_txid]
    spent = {(str(i["txid"]), int(i["vout"])) for i in consolidation["vin"]}
    assert spent == set(world.ransom_outputs)
    assert sum(world.ransom_outputs.values()) == facts.total_ransom_sat
    assert len(consolidation["vout"]) == 1
    previous = {(facts.consolidation_txid, 0)}
    for txid in facts.peel_txids:
        ins = {(str(i["txid"]), int(i["vout"])) for i in txs[txid]["vin"]}
        assert len(ins) == 1 and ins <= previous, txid
        previous = {(txid, int(v["n"])) for v in txs[txid]["vout"]
                    if (txid, int(v["n"])) not in world.deposits}
    assert previous == set()  # the last hop sends everything to a deposit
    assert len(world.deposits) == len(facts.peel_txids)
    assert facts.total_ransom_sat == sum(world.deposits.values()) + sum(world.fees.values())


# -- forward: every deposit, exact amounts, every model ----------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=[m.value for m in MODELS])
def test_forward_trace_finds_every_deposit_exactly(world: World, model: TaintModel) -> None:
    facts = world.facts
    with opened(world) as store:
        start = cluster_of(store, facts.operator_addresses[0])
        result = trace(store, start, "forward", TraceParams(model=model, hops=HOPS),
                       attribution_root=world.store)
    doc = result.to_dict()
    assert result.seed_amount == facts.total_ransom_sat
    seeds = {(n.txid, n.vout) for n in result.nodes if n.seed}
    assert seeds == set(world.ransom_outputs)
    assert endpoints(result, "exchange") == world.deposits, doc["endpoints"]
    assert {e.label for e in result.endpoints if e.category == "exchange"} == {EXCHANGE_LABEL}
    assert doc["endpoints"]["exchange"]["amount_sat"] == sum(world.deposits.values())
    assert "unspent" not in result.endpoint_totals()


@pytest.mark.parametrize("model", MODELS, ids=[m.value for m in MODELS])
def test_forward_trace_accounts_for_every_fee(world: World, model: TaintModel) -> None:
    """The rest of the ransom went to fees: each fee endpoint is the fee the node's transaction
    paid (never more), and deposits plus fees are the whole ransom."""
    with opened(world) as store:
        start = cluster_of(store, world.facts.operator_addresses[0])
        result = trace(store, start, "forward", TraceParams(model=model, hops=HOPS),
                       attribution_root=world.store)
    fees = {e.txid: e.amount for e in result.endpoints if e.category == "fee"}
    assert fees == {t: f for t, f in world.fees.items() if f}
    assert result.endpoint_totals() == {"exchange": sum(world.deposits.values()),
                                        "fee": sum(world.fees.values())}
    assert result.absorbed == 0


def test_forward_trace_from_one_ransom_address_reaches_the_exchange(world: World) -> None:
    """One victim's ransom, traced alone: haircut and FIFO carry exactly its amount less its
    share of the fees; the deposits it reaches are among the operator's deposits."""
    facts = world.facts
    address = facts.operator_addresses[0]
    paid = sum(v for (t, n), v in world.ransom_outputs.items()
               if _address(world.txs[t]["vout"][n]) == address)
    for model in (TaintModel.HAIRCUT, TaintModel.FIFO):
        with opened(world) as store:
            result = trace(store, address, "forward", TraceParams(model=model, hops=HOPS),
                           attribution_root=world.store)
        assert result.seed_amount == paid
        reached = endpoints(result, "exchange")
        assert reached and set(reached) <= set(world.deposits), model
        assert all(0 < a <= world.deposits[k] for k, a in reached.items()), model
        totals = result.endpoint_totals()
        assert set(totals) <= {"exchange", "fee"}, (model, totals)
        assert sum(totals.values()) + result.absorbed == paid, model


# -- backward: from a deposit to the victims ---------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=[m.value for m in MODELS])
def test_backward_trace_from_a_deposit_finds_the_victims(world: World,
                                                         model: TaintModel) -> None:
    facts = world.facts
    deposit, value = min(world.deposits.items(), key=lambda d: facts.peel_txids.index(d[0][0]))
    with opened(world) as store:
        result = trace(store, f"{deposit[0]}:{deposit[1]}", "backward",
                       TraceParams(model=model, hops=HOPS), attribution_root=world.store)
    assert result.seed_amount == value
    tainted = {(n.txid, n.vout): n.amount for n in result.nodes}
    at_ransoms = {k: tainted[k] for k in world.ransom_outputs if k in tainted}
    victims_reached = {world.victim_inputs[k] for k in world.victim_inputs if k in tainted}
    owners_reached = {facts.owners.get(n.address or "") for n in result.nodes}
    if model is TaintModel.FIFO:
        # FIFO maps the deposit onto a contiguous span of the consolidation's inputs: only the
        # ransoms that span covers are reached, and they carry exactly the deposit's value
        assert at_ransoms
        assert sum(at_ransoms.values()) == value
        assert victims_reached == {facts.ransom_payments[t] for t, _ in at_ransoms}
    else:
        assert set(at_ransoms) == set(world.ransom_outputs)  # every ransom payment
        assert victims_reached == set(facts.victims)  # and every victim behind it
        assert set(facts.victims) <= owners_reached
        if model is TaintModel.HAIRCUT:
            assert sum(at_ransoms.values()) == value
        else:
            assert at_ransoms == world.ransom_outputs  # poison: whole outputs


# -- the rules ---------------------------------------------------------------------------------


def test_peel_chain_fires_on_the_operator_with_its_peel_txids(world: World) -> None:
    facts = world.facts
    # every peel but the last (which sends everything: one output) splits in two
    two_way = [t for t in facts.peel_txids if len(world.txs[t]["vout"]) == 2]
    assert two_way == facts.peel_txids[:-1]
    with opened(world) as store:
        hits = evaluate(store, facts.consolidation_address, [PeelChain()])
        scan = evaluate(store, None, [PeelChain()])
    assert len(hits) == 1, [h.to_dict() for h in hits]
    assert [e.txid for e in hits[0].evidence] == two_way
    assert {e.role for e in hits[0].evidence} == {"peel"}
    assert [e.height for e in hits[0].evidence] == [facts.tx_heights[t] for t in two_way]
    assert [e.txid for e in hits[0].evidence] in [[e.txid for e in h.evidence] for h in scan]


def test_pass_through_fires_on_the_operator(world: World) -> None:
    facts = world.facts
    with opened(world) as store:
        subject = cluster_of(store, facts.operator_addresses[0])
        hits = evaluate(store, subject, [PassThrough()])
        consolidated = evaluate(store, facts.consolidation_address, [PassThrough()])
    # one hit per ransom: received from a victim, sent on by the consolidation
    assert {h.evidence[0].txid for h in hits} == set(facts.ransom_payments), (
        [h.to_dict() for h in hits])
    for hit in hits:
        roles = {(e.role, e.txid) for e in hit.evidence}
        assert ("out", facts.consolidation_txid) in roles
    # the consolidated coin's first peel pays a deposit and sends the rest to a fresh address
    # nothing identifies: that spend keeps the rest back (it may be change; it is the
    # operator's next hop), so the address is not a pass-through; the peel chain names it
    assert consolidated == []


def ordinary_users(facts: ScenarioFacts) -> list[str]:
    """Every user who neither paid a ransom nor is the operator."""
    return sorted(w for w, role in facts.actors.items()
                  if role == "user" and w not in facts.victims)


@pytest.mark.parametrize("rule", [PeelChain(), PassThrough()], ids=lambda r: r.name)
def test_rules_stay_quiet_on_ordinary_users(world: World, rule: Any) -> None:
    """Each address of every ordinary user, as its common-input cluster: no hit. (Users spend
    their salary, exchange withdrawals and own change on large payments soon after receiving
    them; pass-through version 3 counted those and fired on 18 of these clusters.)"""
    facts = world.facts
    fired: dict[str, list[str]] = {}
    with opened(world) as store:
        for user in ordinary_users(facts):
            for subject in sorted({cluster_of(store, a) for a in facts.addresses_of(user)}):
                hits = evaluate(store, subject, [rule])
                if hits:
                    fired[f"{user} {subject}"] = [h.explanation for h in hits]
    assert fired == {}, f"{rule.name} fired on {len(fired)} ordinary-user clusters: {fired}"
