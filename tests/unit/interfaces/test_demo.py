"""``cointrail demo``: its figures against the scenario's ground truth (``facts.json``, read from
the node that made the chain) and against an independent reading of the bundled blocks.

The independent reading decodes every bundled block with the reference decoder (not the
columnar ingest path the demo uses), finds the outputs paying the reported ransom addresses
(from the bundled tags CSV, not the attribution database) and follows them spend by spend in
plain Python until they reach an address the exchange listed.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cointrail.chain.utxo.blkfile import iter_blk_frames
from cointrail.chain.utxo.block import decode_block
from cointrail.data import (
    SCENARIO_BLOCKS,
    SCENARIO_CHAIN,
    SCENARIO_FACTS,
    SCENARIO_TAGS,
    bundled_path,
)
from cointrail.interfaces.cli.main import app

CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None, "COINTRAIL_NETWORK": None, "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None,
}
MODELS = ("poison", "haircut", "fifo")
Outpoint = tuple[str, int]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = tmp_path_factory.mktemp("demo") / "store"
    result = CliRunner().invoke(app, ["demo", "--store", str(store), "--json"], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@cache
def facts() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(bundled_path(SCENARIO_FACTS).read_text("utf-8"))
    return doc


def tagged(category: str) -> set[str]:
    with (bundled_path(SCENARIO_TAGS) / "scenario-tags.csv").open(newline="") as f:
        return {row["address"] for row in csv.DictReader(f) if row["category"] == category}


class Chain:
    """The bundled scenario chain, decoded with the reference decoder."""

    def __init__(self, path: Path) -> None:
        chain, network = SCENARIO_CHAIN
        self.outputs: dict[Outpoint, tuple[int, str | None]] = {}
        self.spender: dict[Outpoint, str] = {}
        self.tx_outputs: dict[str, list[Outpoint]] = defaultdict(list)
        self.tx_inputs: dict[str, list[Outpoint]] = defaultdict(list)
        self.blocks = 0
        for frame in iter_blk_frames(path):
            block = decode_block(frame.raw, chain, network)
            self.blocks += 1
            for tx in block.transactions:
                txid = str(tx.txid)
                for out in tx.outputs:
                    self.outputs[(txid, out.n)] = (out.value, out.address)
                    self.tx_outputs[txid].append((txid, out.n))
                for i in tx.inputs:
                    if not i.is_coinbase:
                        prev = (str(i.prev_txid), i.prev_vout)
                        self.spender[prev] = txid
                        self.tx_inputs[txid].append(prev)

    def paying(self, addresses: set[str]) -> dict[Outpoint, int]:
        return {k: v for k, (v, a) in self.outputs.items() if a in addresses}

    def follow(self, start: set[Outpoint], stop: set[str]) -> tuple[dict[Outpoint, int], int]:
        """Every output reached from `start` (whole outputs, spend by spend) that pays a `stop`
        address, and the fees of the transactions crossed."""
        reached: dict[Outpoint, int] = {}
        crossed: set[str] = set()
        front = list(start)
        seen = set(front)
        while front:
            key = front.pop()
            value, address = self.outputs[key]
            if key not in start and address in stop:
                reached[key] = value
                continue
            txid = self.spender.get(key)
            if txid is None or txid in crossed:
                continue
            crossed.add(txid)
            for out in self.tx_outputs[txid]:
                if out not in seen:
                    seen.add(out)
                    front.append(out)
        fees = sum(sum(self.outputs[i][0] for i in self.tx_inputs[t])
                   - sum(self.outputs[o][0] for o in self.tx_outputs[t]) for t in crossed)
        return reached, fees


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain(bundled_path(SCENARIO_BLOCKS))


def test_bundled_chain_is_the_chain_facts_describe(chain: Chain) -> None:
    assert chain.blocks == facts()["chain"]["blocks"]
    assert len(chain.tx_outputs) == facts()["chain"]["transactions"]


def test_independent_reading_matches_the_ground_truth(chain: Chain) -> None:
    ransom = chain.paying(tagged("ransomware"))
    truth = facts()
    assert sum(ransom.values()) == truth["total_ransom_sat"]
    assert {(v["txid"], v["vout"]): v["value_sat"] for v in truth["victims"]} == ransom
    reached, fees = chain.follow(set(ransom), tagged("exchange"))
    assert {(d["txid"], d["vout"]): d["value_sat"]
            for d in truth["exchange"]["deposits"]} == reached
    assert fees == truth["operator"]["fees_sat"]
    assert sum(reached.values()) + fees == truth["total_ransom_sat"]


def test_demo_ransom_figures_match_ground_truth_and_blocks(demo: dict[str, Any],
                                                           chain: Chain) -> None:
    s, truth = demo["scenario"], facts()
    ransom = chain.paying(tagged("ransomware"))
    assert s["total_ransom_sat"] == truth["total_ransom_sat"] == sum(ransom.values())
    assert s["victims"] == len(truth["victims"]) == len({t for t, _ in ransom})
    paid = {(p["txid"], p["vout"]): p["value_sat"] for p in s["ransom_payments"]}
    assert paid == ransom
    assert {p["txid"] for p in s["ransom_payments"]} == {v["txid"] for v in truth["victims"]}


@pytest.mark.parametrize("model", MODELS)
def test_demo_amount_reaching_the_exchange(demo: dict[str, Any], chain: Chain,
                                           model: str) -> None:
    reached, _fees = chain.follow(set(chain.paying(tagged("ransomware"))), tagged("exchange"))
    got = demo["scenario"]["reaching_exchange_sat"][model]
    assert got == facts()["exchange"]["reaching_exchange_sat"][model]
    assert got == sum(reached.values())


def test_demo_deposit_addresses(demo: dict[str, Any], chain: Chain) -> None:
    reached, _ = chain.follow(set(chain.paying(tagged("ransomware"))), tagged("exchange"))
    by_address: dict[str, int] = defaultdict(int)
    for key, value in reached.items():
        address = chain.outputs[key][1]
        assert address is not None
        by_address[address] += value
    shown = {d["address"]: d["amount_sat"] for d in demo["scenario"]["deposit_addresses"]}
    assert shown == dict(by_address)
    assert sorted(shown) == facts()["exchange"]["deposit_addresses_reached"]
    assert demo["scenario"]["exchange_labels"] == [facts()["exchange"]["label"]]
    assert demo["scenario"]["fees_sat"] == facts()["operator"]["fees_sat"]


def test_demo_keeps_the_mainnet_part(demo: dict[str, Any]) -> None:
    main = demo["mainnet"]
    assert main["blocks"] == 439 and main["ingested"]["blocks"] == 439
    assert main["first_transfer"]["txid"] == (
        "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16")
    assert [o["value_sat"] for o in main["first_transfer"]["outputs"]] == [
        1_000_000_000, 4_000_000_000]


def test_demo_store_can_be_explored(demo: dict[str, Any]) -> None:
    """The store the demo names holds both chains: the CLI can query it afterwards."""
    store = demo["store"]
    deposit = demo["scenario"]["deposit_addresses"][0]
    result = CliRunner().invoke(
        app, ["--store", store, "--chain", "litecoin", "--network", "regtest", "show",
              "address", deposit["address"], "--json"], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["received_sat"] == deposit["amount_sat"]
    status = CliRunner().invoke(app, ["--store", store, "status", "--json"], env=CLEAN_ENV)
    assert {c["chain"] for c in json.loads(status.stdout)["chains"]} == {"bitcoin", "litecoin"}
    assert any(store in c for c in demo["explore"]["commands"])


def test_demo_refuses_a_store_that_is_not_fresh(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--store", str(tmp_path)], env=CLEAN_ENV)
    assert result.exit_code == 2
    assert "fresh store" in result.stderr and "\n" not in result.stderr.strip()


def test_demo_human_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--store", str(tmp_path / "s")], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    total = facts()["total_ransom_sat"]
    assert f"{total // 100_000_000}.{total % 100_000_000:08d} LTC" in result.stdout
    for address in facts()["exchange"]["deposit_addresses_reached"]:
        assert address in result.stdout
    assert "serve" in result.stdout and "R0001" in result.stdout
    assert "prove the bundled Bitcoin blocks" in result.stderr  # progress, one line per step


def test_demo_case_custody_and_replay(demo: dict[str, Any]) -> None:
    """The case's custody log verifies, and its trace finding replays to the same bytes."""
    from cointrail.auth import Principal, Role
    from cointrail.cases import CaseStore, replay

    store = Path(demo["store"])
    case = CaseStore.for_store(store).open(demo["case"]["reference"],
                                           Principal("auditor", Role.AUDITOR))
    assert case.verify().ok
    assert case.head().seq == demo["case"]["custody_entries"]
    actions = [e.action for e in case.entries()]
    assert actions[0] == "case.open"
    for needed in ("acquire.file", "acquire.tags", "query.trace", "finding.record",
                   "report.write", "request.draft"):
        assert needed in actions, needed
    (finding,) = case.findings()
    kept = json.loads(case.read_finding(finding))
    assert kept["endpoints"]["exchange"]["amount_sat"] == (
        facts()["exchange"]["reaching_exchange_sat"][kept["model"]])
    assert replay(case, store, log=False).ok


def test_demo_preservation_request(demo: dict[str, Any]) -> None:
    """A draft to the legal entity the contact directory names for the exchange's actor,
    listing exactly the deposits the ground truth knows."""
    import yaml

    request = demo["case"]["request"]
    doc = json.loads(Path(next(f for f in request["files"] if f.endswith("request.json")))
                     .read_text("utf-8"))
    directory = yaml.safe_load(bundled_path("scenario/contacts.yaml").read_text("utf-8"))
    (entity,) = directory["entities"]
    assert doc["status"] == "draft" and doc["approved_by"] is None
    assert doc["kind"] == "preservation"
    assert doc["fields"]["legal_entity"] == entity["name"] == request["addressee"]
    assert doc["fields"]["legal_entity_country"] == facts()["exchange"]["jurisdiction"]
    identifiers = {(i["txid"], i["vout"]): i["amount_base_units"] for i in doc["identifiers"]}
    assert identifiers == {(d["txid"], d["vout"]): d["value_sat"]
                           for d in facts()["exchange"]["deposits"]}
    for path in request["files"]:
        assert Path(path).is_file(), path
    assert Path(next(f for f in request["files"] if f.endswith(".pdf"))).read_bytes()[:5] == (
        b"%PDF-")


def test_demo_report_and_api_key(demo: dict[str, Any]) -> None:
    from cointrail.auth.keys import authenticate

    html, pdf = (Path(p) for p in demo["case"]["report"])
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert demo["case"]["reference"] in html.read_text("utf-8")
    key = demo["explore"]["api_key"]
    principal = authenticate(Path(demo["store"]), key["secret"])
    assert principal.name == key["name"] and str(principal.role) == key["role"]
