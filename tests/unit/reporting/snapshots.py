"""Case snapshots (ADR 0004 shape) for the report and export tests.

`hand_snapshot` is built by hand: a ransom output peeled into an exchange deposit, with a fee,
a screening and a flags finding. `mainnet_snapshot` wraps a real trace on the bundled mainnet
blocks 0–438 (the block-170 first transfer) in the same shape, with custody entries chained the
ADR's way.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

SEED_TX = "a1" * 32
PEEL_TX = "b2" * 32
SWEEP_TX = "c3" * 32
RANSOM = "bc1qransomaddressxxxxxxxxxxxxxxxxxxxxxxxx"
DEPOSIT = "bc1qexchangedepositxxxxxxxxxxxxxxxxxxxxxx"
CHANGE = "bc1qoperatorchangexxxxxxxxxxxxxxxxxxxxxxx"
FINAL = "bc1qoperatorfinalxxxxxxxxxxxxxxxxxxxxxxxx"
EXCHANGE = "Example Exchange Ltd"
BLOCK_TIMES = {800_000: 1_690_168_629, 800_001: 1_690_169_000, 800_005: 1_690_171_000}

BLOCK_170_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def custody_chain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`entries` with seq, prev_hash and hash filled in the ADR's way."""
    prev = "0" * 64
    out = []
    for seq, given in enumerate(entries, 1):
        e = {"seq": seq, "tool_version": "cointrail 0.1.0", "result_sha256": None,
             "parameters": {}, "role": "analyst", **given, "prev_hash": prev}
        e["hash"] = hashlib.sha256(canonical(e)).hexdigest()
        prev = e["hash"]
        out.append(e)
    return out


def hand_trace() -> dict[str, Any]:
    """A forward haircut trace: ransom 1.5 BTC -> peel (0.4 to the exchange, 1.0999 change,
    fee 0.0001) -> sweep of the change (1.0998 unspent, fee 0.0001)."""
    return {
        "direction": "forward", "model": "haircut", "start": f"{SEED_TX}:0",
        "seed_amount_sat": 150_000_000, "absorbed_sat": 0,
        "nodes": [
            {"txid": SEED_TX, "vout": 0, "address": RANSOM, "value_sat": 150_000_000,
             "amount_sat": 150_000_000, "height": 800_000, "hop": 0, "seed": True},
            {"txid": PEEL_TX, "vout": 0, "address": DEPOSIT, "value_sat": 40_000_000,
             "amount_sat": 40_000_000, "height": 800_001, "hop": 1, "seed": False},
            {"txid": PEEL_TX, "vout": 1, "address": CHANGE, "value_sat": 109_990_000,
             "amount_sat": 109_990_000, "height": 800_001, "hop": 1, "seed": False},
            {"txid": SWEEP_TX, "vout": 0, "address": FINAL, "value_sat": 109_980_000,
             "amount_sat": 109_980_000, "height": 800_005, "hop": 2, "seed": False},
        ],
        "edges": [
            {"from_txid": SEED_TX, "from_vout": 0, "txid": PEEL_TX, "to_vout": 0,
             "amount_sat": 40_000_000, "height": 800_001, "coinjoin": False},
            {"from_txid": SEED_TX, "from_vout": 0, "txid": PEEL_TX, "to_vout": 1,
             "amount_sat": 109_990_000, "height": 800_001, "coinjoin": False},
            {"from_txid": SEED_TX, "from_vout": 0, "txid": PEEL_TX, "to_vout": None,
             "amount_sat": 10_000, "height": 800_001, "coinjoin": False},
            {"from_txid": PEEL_TX, "from_vout": 1, "txid": SWEEP_TX, "to_vout": 0,
             "amount_sat": 109_980_000, "height": 800_005, "coinjoin": False},
            {"from_txid": PEEL_TX, "from_vout": 1, "txid": SWEEP_TX, "to_vout": None,
             "amount_sat": 10_000, "height": 800_005, "coinjoin": False},
        ],
        "endpoints": {
            "exchange": {"amount_sat": 40_000_000, "outputs": [
                {"txid": PEEL_TX, "vout": 0, "address": DEPOSIT, "amount_sat": 40_000_000,
                 "height": 800_001, "label": EXCHANGE, "via": None}]},
            "fee": {"amount_sat": 20_000, "outputs": [
                {"txid": PEEL_TX, "vout": None, "address": None, "amount_sat": 10_000,
                 "height": 800_001, "label": None, "via": None},
                {"txid": SWEEP_TX, "vout": None, "address": None, "amount_sat": 10_000,
                 "height": 800_005, "label": None, "via": None}]},
            "unspent": {"amount_sat": 109_980_000, "outputs": [
                {"txid": SWEEP_TX, "vout": 0, "address": FINAL, "amount_sat": 109_980_000,
                 "height": 800_005, "label": None, "via": None}]},
        },
        "unspent": {"amount_sat": 109_980_000, "outputs": []},
        "coinjoins": [],
        "record": {"chain": "bitcoin", "network": "mainnet", "tip_height": 800_100,
                   "tip_hash": "00" * 32, "direction": "forward", "start": f"{SEED_TX}:0",
                   "parameters": {"model": "haircut", "hops": 10},
                   "cointrail_version": "0.1.0"},
    }


def build_snapshot(traces: list[dict[str, Any]], *, extra_findings: list[dict[str, Any]] = (),
                   reference: str = "CT-2026-0001") -> dict[str, Any]:
    """A snapshot holding `traces` as findings F0001…, then `extra_findings`."""
    findings = []
    for result in [*traces]:
        raw = canonical(result)
        n = len(findings) + 1
        findings.append({
            "id": f"F{n:04d}", "kind": "trace", "created_at": f"2026-11-28T16:4{n}:00.000000Z",
            "created_by": "ana", "request": {"start": result["start"]},
            "record": result["record"], "result_sha256": hashlib.sha256(raw).hexdigest(),
            "path": f"findings/F{n:04d}.json", "result": result})
    for extra in extra_findings:
        n = len(findings) + 1
        raw = canonical(extra["result"])
        findings.append({"id": f"F{n:04d}", "created_at": f"2026-11-28T16:5{n}:00.000000Z",
                         "created_by": "ana", "request": {}, "record": {},
                         "result_sha256": hashlib.sha256(raw).hexdigest(),
                         "path": f"findings/F{n:04d}.json", **copy.deepcopy(extra)})
    artefacts = [{"path": "artefacts/imports/tags.csv", "sha256": "ab" * 32, "size": 1234,
                  "action": "acquire.file", "at": "2026-11-28T16:39:00.000000Z", "who": "ana"}]
    custody = custody_chain(
        [{"at": "2026-11-28T16:38:00.000000Z", "who": "ana", "action": "case.open",
          "what": f"opened case {reference}"},
         {"at": "2026-11-28T16:39:00.000000Z", "who": "ana", "action": "acquire.file",
          "what": "tags.csv", "result_sha256": "ab" * 32}]
        + [{"at": f["created_at"], "who": "ana", "action": "finding.record",
            "what": f"finding {f['id']}", "result_sha256": f["result_sha256"]}
           for f in findings])
    case = {
        "reference": reference, "title": "Ransomware payments of victim V",
        "offence": {"code": "UNCC-17", "title": "Laundering of proceeds of crime",
                    "national_law": "StGB § 261", "max_penalty_years": 5},
        "jurisdiction": "DE",
        "authority": {"name": "Landeskriminalamt Example", "unit": "Cybercrime 4",
                      "contact": "+49 30 0000 0000", "email": "cyber4@lka.example",
                      "poc_247": "DE-247-01"},
        "investigators": ["ana", "ben"],
        "facts": "Victim V paid a ransom of 1.5 BTC on 2023-07-24.",
        "legal_basis": "StPO § 161", "purpose": "criminal investigation of case CT-2026-0001",
        "retention_days": 3650, "tlp": "amber", "opened_at": "2026-11-28T16:38:00.000000Z",
        "status": "open", "head": {"seq": custody[-1]["seq"], "hash": custody[-1]["hash"]},
    }
    return {
        "case": case, "notes": [],
        "attachments": {"addresses": [
            {"chain": "bitcoin", "network": "mainnet", "address": RANSOM, "note": "ransom note",
             "added_at": "2026-11-28T16:38:30.000000Z", "added_by": "ana"}], "clusters": []},
        "findings": findings, "artefacts": artefacts, "custody": custody,
        "custody_head": {"seq": custody[-1]["seq"], "hash": custody[-1]["hash"]},
        "transfers": [], "requests": [],
    }


SCREENING = {"kind": "screening", "result": [
    {"input": DEPOSIT, "address": DEPOSIT, "verdict": "not listed", "categories": ["exchange"],
     "actors": ["example_exchange"], "sanctions": []}]}
FLAGS = {"kind": "flags", "result": [
    {"rule": "peel_chain", "version": 1, "params": {"min_hops": 2}, "subject": RANSOM,
     "explanation": "2 peels in a row", "evidence": [
         {"txid": PEEL_TX, "height": 800_001, "amount": 40_000_000, "role": "peel"}]}]}


def hand_snapshot() -> dict[str, Any]:
    return build_snapshot([hand_trace()], extra_findings=[SCREENING, FLAGS])


def mainnet_trace(root: Path) -> tuple[dict[str, Any], dict[int, int]]:
    """`Trace.to_dict()` of the forward FIFO trace of block 170's change (real blocks), and
    the header times of the blocks it spans."""
    from cointrail import get_chain
    from cointrail.analysis.tracing import TaintModel, TraceParams, trace
    from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
    from cointrail.store.duck import Store
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    store = Store(root).chain(get_chain("bitcoin", "mainnet"))
    try:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        result = trace(store, f"{BLOCK_170_TX}:1", "forward",
                       TraceParams(model=TaintModel.FIFO))
        heights = sorted({n.height for n in result.nodes})
        times = dict(store.query(
            "SELECT height, time FROM blocks WHERE height BETWEEN ? AND ?",
            [heights[0], heights[-1]]))
    finally:
        store.close()
    return result.to_dict(), {int(h): int(t) for h, t in times.items()}
