#!/usr/bin/env python3
"""Regenerate the bundled scenario chain of ``cointrail demo`` (src/cointrail/data/scenario/).

Starts a real ``litecoind -regtest`` node, acts out the ransomware scenario of
``tests/support/scenario.py`` (victims pay a ransomware operator, who consolidates, peels and
deposits at an exchange; ordinary users, merchants, employers, Whirlpool and WabiSabi CoinJoins
around it), then writes:

* ``litecoin-regtest-scenario.blk``: every block of the node's best chain, genesis first, framed
  like a ``blk*.dat`` file (regtest magic, 32-bit little-endian length, block);
* ``tags/``: an ActorPack naming the exchange (with its jurisdiction) and the operator, and an
  own-tags CSV: the exchange's deposit and hot addresses (category ``exchange``) and the
  addresses the victims paid (category ``ransomware``, as reported by the victims);
* ``contacts.yaml``: the exchange's entry in the contact directory (legal entity, country,
  law-enforcement e-mail);
* ``facts.json``: the ground truth the demo's figures must match, read from the node's own
  transactions (never from cointrail's trace engine).

Determinism: the plan is a pure function of seed and scale (its digest is recorded), and node time
is mocked (``setmocktime``: a fixed start, 150 s per block), so amounts, victims, heights and block
times are the same on every run. Keys, signatures and coin selection are the node's own
randomness: addresses, txids, block hashes and a few satoshi of fees (signature sizes) differ
between runs; ``facts.json`` records the run's values.

Usage (from the repository root, with the dev virtualenv)::

    python scripts/make-demo-data.py [--seed N] [--scale N] [--out DIR]

Afterwards the script ingests the new data into a temporary store, clusters, imports the tags and
traces the ransom forward, and exits non-zero if any figure differs from ``facts.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cointrail.chain.spec import get_chain  # noqa: E402
from tests.support.litecoind import LitecoindNode, to_sat  # noqa: E402
from tests.support.scenario import NODE_ARGS, ScenarioFacts, build_scenario  # noqa: E402

CHAIN, NETWORK = "litecoin", "regtest"
DEFAULT_SEED = 20240607
DEFAULT_SCALE = 1
MOCKTIME_START = 1_717_718_400  # 2024-06-07T00:00:00Z
BLOCK_SPACING = 150  # seconds: Litecoin's target block interval
BLOCK_FILE = "litecoin-regtest-scenario.blk"
TAGS_DIR = "tags"
ACTORPACK_FILE = "scenario.actorpack.yaml"
TAGS_FILE = "scenario-tags.csv"
CONTACTS_FILE = "contacts.yaml"
FACTS_FILE = "facts.json"
MODELS = ("poison", "haircut", "fifo")
TRACE_HOPS = 20

EXCHANGE_ACTOR = "harbour-exchange"
EXCHANGE_LABEL = "Harbour Exchange (fictional)"
EXCHANGE_JURISDICTION = "EE"
OPERATOR_ACTOR = "scenario-ransomware"
OPERATOR_LABEL = "Scenario ransomware operator (fictional)"


class MockTimeNode(LitecoindNode):
    """A regtest node whose clock is mocked: each mined block is `BLOCK_SPACING` seconds after
    the previous one, from `MOCKTIME_START`, so block times do not depend on the wall clock."""

    clock = MOCKTIME_START

    def start(self) -> MockTimeNode:
        super().start()
        self.rpc("setmocktime", self.clock)
        return self

    def mine(self, n: int, address: str) -> list[str]:
        hashes: list[str] = []
        for _ in range(n):
            self.clock += BLOCK_SPACING
            self.rpc("setmocktime", self.clock)
            hashes += super().mine(1, address)
        return hashes


def _address(vout: dict[str, Any]) -> str | None:
    spk = vout.get("scriptPubKey", {})
    if "address" in spk:
        return str(spk["address"])
    found = spk.get("addresses") or []
    return str(found[0]) if len(found) == 1 else None


def write_blocks(node: LitecoindNode, path: Path) -> dict[str, Any]:
    """Every block of the best chain, framed; returns what the chain file holds."""
    magic = get_chain(CHAIN, NETWORK).magic
    hashes = node.best_chain()
    transactions = 0
    with path.open("wb") as out:
        for start in range(0, len(hashes), 100):
            chunk = hashes[start:start + 100]
            for raw_hex in node.batch(("getblock", [h, 0]) for h in chunk):
                raw = bytes.fromhex(raw_hex)
                out.write(magic + struct.pack("<I", len(raw)) + raw)
            transactions += sum(
                len(b["tx"]) for b in node.batch(("getblock", [h, 1]) for h in chunk))
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "bytes": path.stat().st_size,
        "blocks": len(hashes),
        "tip_height": len(hashes) - 1,
        "tip_hash": hashes[-1],
        "transactions": transactions,
    }


def story_facts(node: LitecoindNode, facts: ScenarioFacts) -> dict[str, Any]:
    """The ransom, the operator's hops and the deposits, from the node's transactions."""

    def raw(txid: str) -> dict[str, Any]:
        block = node.rpc("getblockhash", facts.tx_heights[txid])
        return dict(node.rpc("getrawtransaction", txid, True, block))

    operator = set(facts.operator_addresses)
    deposit_addresses = set(facts.exchange_deposits.values())
    victims = []
    ransom_outputs: dict[tuple[str, int], int] = {}
    for txid, victim in facts.ransom_payments.items():
        tx = raw(txid)
        paid = [v for v in tx["vout"] if _address(v) in operator]
        if len(paid) != 1:
            raise AssertionError(f"ransom {txid} pays the operator {len(paid)} times")
        value = to_sat(paid[0]["value"])
        ransom_outputs[(txid, int(paid[0]["n"]))] = value
        victims.append({"victim": victim, "txid": txid, "vout": int(paid[0]["n"]),
                        "address": _address(paid[0]), "value_sat": value,
                        "height": facts.tx_heights[txid]})
    fees: dict[str, int] = {}
    deposits: list[dict[str, Any]] = []
    for txid in [facts.consolidation_txid, *facts.peel_txids]:
        tx = raw(txid)
        spent = 0
        for vin in tx["vin"]:
            prev = node.rpc("getrawtransaction", vin["txid"], True)
            spent += to_sat(prev["vout"][int(vin["vout"])]["value"])
        made = sum(to_sat(v["value"]) for v in tx["vout"])
        fees[txid] = spent - made
        if txid == facts.consolidation_txid:
            consolidated = {(str(i["txid"]), int(i["vout"])) for i in tx["vin"]}
            if consolidated != set(ransom_outputs):
                raise AssertionError("the consolidation does not spend exactly the ransoms")
            continue
        for vout in tx["vout"]:
            if _address(vout) in deposit_addresses:
                deposits.append({"txid": txid, "vout": int(vout["n"]),
                                 "address": _address(vout), "value_sat": to_sat(vout["value"]),
                                 "height": facts.tx_heights[txid]})
    reached = sum(int(d["value_sat"]) for d in deposits)
    total = sum(ransom_outputs.values())
    if total != facts.total_ransom_sat or total != reached + sum(fees.values()):
        raise AssertionError("ransom, deposits and fees do not add up")
    return {
        "victims": victims,
        "total_ransom_sat": total,
        "operator": {
            "ransom_addresses": list(facts.operator_addresses),
            "consolidation_txid": facts.consolidation_txid,
            "consolidation_address": facts.consolidation_address,
            "peel_txids": list(facts.peel_txids),
            "fees_sat": sum(fees.values()),
        },
        "exchange": {
            "actor": EXCHANGE_ACTOR,
            "label": EXCHANGE_LABEL,
            "jurisdiction": EXCHANGE_JURISDICTION,
            "hot_address": facts.hot_address,
            "deposit_addresses_tagged": sorted(deposit_addresses),
            "deposit_addresses_reached": sorted({d["address"] for d in deposits}),
            "deposits": deposits,
            # the operator's coins are ransom money only (checked above), so every taint model
            # carries the whole deposit values to the exchange
            "reaching_exchange_sat": dict.fromkeys(MODELS, reached),
        },
    }


def write_tags(folder: Path, facts: ScenarioFacts) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ACTORPACK_FILE).write_text(
        "title: cointrail demo scenario actors\n"
        "creator: scripts/make-demo-data.py\n"
        "description: The fictional exchange and ransomware operator of the demo chain.\n"
        "lastmod: 2024-06-07\n"
        "actors:\n"
        f"- id: {EXCHANGE_ACTOR}\n"
        f"  label: {EXCHANGE_LABEL}\n"
        "  uri: https://harbour-exchange.example\n"
        "  categories: [exchange]\n"
        f"  jurisdictions: [{EXCHANGE_JURISDICTION}]\n"
        f"- id: {OPERATOR_ACTOR}\n"
        f"  label: {OPERATOR_LABEL}\n"
        "  uri: https://victim-reports.example\n"
        "  categories: [ransomware]\n",
        encoding="utf-8",
    )
    with (folder / TAGS_FILE).open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["address", "chain", "network", "label", "category", "actor",
                      "confidence", "source"])
        exchange = sorted({*facts.exchange_deposits.values(), facts.hot_address})
        for address in exchange:
            out.writerow([address, CHAIN, NETWORK, EXCHANGE_LABEL, "exchange", EXCHANGE_ACTOR,
                          "service_data", "address list received from the exchange"])
        for address in facts.operator_addresses:
            out.writerow([address, CHAIN, NETWORK, "Ransom payment address (victim report)",
                          "ransomware", OPERATOR_ACTOR, "forensic_investigation",
                          "victim reports"])


def write_contacts(path: Path) -> None:
    """The contact directory (format: `cointrail.legal.contacts`), importable with
    ``cointrail request contacts import``."""
    path.write_text(
        "# Contact directory of the demo's fictional exchange (see README.md).\n"
        "version: 1\n"
        "entities:\n"
        "  - name: Harbour Exchange OU (fictional)\n"
        f"    country: {EXCHANGE_JURISDICTION}\n"
        "    address: 1 Harbour Street, 10111 Tallinn, Estonia (fictional)\n"
        f"    actors: [{EXCHANGE_ACTOR}]\n"
        "    le_portal: https://harbour-exchange.example/law-enforcement\n"
        "    le_email: law-enforcement@harbour-exchange.example\n"
        "states:\n"
        f"  - country: {EXCHANGE_JURISDICTION}\n"
        "    poc_247: Demo 24/7 point of contact (fictional), poc-247@police.example\n"
        "    central_authority: Demo central authority (fictional), mla@justice.example\n",
        encoding="utf-8",
    )


def check(out: Path, doc: dict[str, Any]) -> list[str]:
    """Ingest the written data as the demo does and compare its trace with the ground truth."""
    from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
    from cointrail.analysis.tracing import TaintModel, TraceParams, trace
    from cointrail.attribution import AttributionStore, import_tags
    from cointrail.store.duck import open_chain
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cointrail-demo-check-") as tmp:
        root = Path(tmp)
        with open_chain(root, CHAIN, NETWORK) as store:
            ingest_blkfiles(UtxoIngestor(store), str(out / BLOCK_FILE))
            Clusterer(store, ClusterConfig(heuristics=("multi_input",))).run()
        with AttributionStore(root) as attribution:
            report = import_tags(attribution, [out / TAGS_DIR])
        if any(f.rejected for f in report.files):
            problems.append(f"tags rejected: {report.as_dict()}")
        with open_chain(root, CHAIN, NETWORK, read_only=True) as store:
            first = doc["operator"]["ransom_addresses"][0]
            (addr_id,) = store.query("SELECT addr_id FROM addresses WHERE text = ?", [first])[0]
            start = f"cluster:{cluster_view(store).of(int(addr_id))}"
            for model in MODELS:
                result = trace(store, start, "forward",
                               TraceParams(model=TaintModel(model), hops=TRACE_HOPS),
                               attribution_root=root)
                got = result.endpoint_totals().get("exchange", 0)
                want = doc["exchange"]["reaching_exchange_sat"][model]
                if result.seed_amount != doc["total_ransom_sat"] or got != want:
                    problems.append(f"{model}: seed {result.seed_amount}, exchange {got}; "
                                    f"ground truth {doc['total_ransom_sat']}, {want}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=int, default=DEFAULT_SCALE)
    parser.add_argument("--out", type=Path, default=REPO / "src/cointrail/data/scenario")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(["litecoind", "-version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0].strip()
    started = time.perf_counter()
    node = MockTimeNode(extra_args=NODE_ARGS)
    with node:
        print(f"acting out the scenario (seed {args.seed}, scale {args.scale}) on {version}",
              file=sys.stderr)
        # the demonstration chain's wallets all run Litecoin Core, as the bundled chain's do
        # (the accuracy benchmark's economy also has light wallets and hardware signers)
        facts = build_scenario(node, args.seed, args.scale, light_share=0.0, hardware_share=0.0)
        print(f"  {facts.transactions} transactions, tip {facts.tip_height}, "
              f"{facts.seconds:.0f} s", file=sys.stderr)
        chain = write_blocks(node, out / BLOCK_FILE)
        story = story_facts(node, facts)
    write_tags(out / TAGS_DIR, facts)
    write_contacts(out / CONTACTS_FILE)
    doc: dict[str, Any] = {
        "about": "Ground truth of the demo scenario chain, read from the litecoind node that "
                 "made it; regenerate with scripts/make-demo-data.py.",
        "generator": {
            "script": "scripts/make-demo-data.py",
            "litecoind": version,
            "seed": facts.seed,
            "scale": facts.scale,
            "plan_digest": facts.plan_digest,
            "mocktime_start": MOCKTIME_START,
            "block_spacing_seconds": BLOCK_SPACING,
        },
        "chain": {"chain": CHAIN, "network": NETWORK, **chain},
        "actors": dict(sorted(facts.actors.items())),
        "coinjoins": [{"txid": c.txid, "kind": c.kind, "inputs": c.inputs,
                       "outputs": c.outputs, "height": c.height} for c in facts.coinjoins],
        "trace": {"start": "the cluster of the first ransom address", "hops": TRACE_HOPS},
        **story,
    }
    (out / FACTS_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    problems = check(out, doc)
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    print(f"wrote {out} ({chain['bytes']} bytes of blocks, {chain['blocks']} blocks, "
          f"{len(story['victims'])} victims, ransom {story['total_ransom_sat']} sat, "
          f"{story['exchange']['reaching_exchange_sat']['haircut']} sat reached the exchange) "
          f"in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
