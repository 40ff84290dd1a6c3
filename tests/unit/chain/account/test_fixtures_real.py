"""Real mainnet fixtures (ethereum-etl, GraphSense) decode to the transfers they encode.

Every block hash and transaction hash is recomputed with keccak-256 of RLP; ERC-20 transfers
match ethereum-etl's expected outputs and GraphSense's USDT transfers for blocks
15000000-15000004; internal transfers match ethereum-etl's expected Parity traces.
"""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from cointrail.chain.account.hashes import block_hash, hex_bytes, transaction_hash
from cointrail.chain.account.transfers import (
    TransferKind,
    decode_token_log,
    failed_by_traces,
    iter_geth_traces,
    iter_parity_traces,
    iter_token_transfers,
    iter_tx_transfers,
)
from tests.support.data import require_shared

ETL = "eth/ethereum-etl-resources"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"


def _result(path: Path) -> Any:
    return json.loads(path.read_text())["result"]


def _block_files() -> list[str]:
    names = [
        "test_export_blocks_job/block_with_logs/web3_response.eth_getBlockByNumber_0x76250_true",
        "test_export_blocks_job/block_without_transactions/"
        "web3_response.eth_getBlockByNumber_0x0_true",
        "test_export_blocks_job/blocks_with_transactions/"
        "web3_response.eth_getBlockByNumber_0xb872_true",
        "test_export_blocks_job/blocks_with_transactions/"
        "web3_response.eth_getBlockByNumber_0xb873_true",
        "test_stream/blocks_1755634_1755635/web3_response.eth_getBlockByNumber_0x1ac9f2_true",
        "test_stream/blocks_1755634_1755635/web3_response.eth_getBlockByNumber_0x1ac9f3_true",
        "test_stream/blocks_2112234_2112234/web3_response.eth_getBlockByNumber_0x203aea_false",
        "test_stream/blocks_508110_508110/web3_response.eth_getBlockByNumber_0x7c0ce_false",
    ]
    return [f"{ETL}/{n}.json" for n in names]


@pytest.mark.parametrize("relpath", _block_files())
def test_block_and_legacy_tx_hashes_recompute(relpath: str) -> None:
    block = _result(require_shared(relpath))
    assert block_hash(block) == hex_bytes(block["hash"])
    for tx in block["transactions"]:
        if isinstance(tx, dict):
            assert transaction_hash(tx) == hex_bytes(tx["hash"])


def test_a_changed_header_field_changes_the_hash() -> None:
    block = _result(require_shared(_block_files()[2]))
    tampered = dict(block, gasUsed=hex(int(block["gasUsed"], 16) + 1))
    assert block_hash(tampered) != hex_bytes(block["hash"])


def test_stream_block_decodes_to_native_fee_and_token_transfers() -> None:
    folder = require_shared(f"{ETL}/test_stream/blocks_1755634_1755635")
    block = _result(folder / "web3_response.eth_getBlockByNumber_0x1ac9f3_true.json")
    receipts = [
        _result(folder / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")
        for tx in block["transactions"]
    ]
    moved = list(iter_tx_transfers(block, receipts))
    expected_txs = json.loads("[" + ",".join(
        (folder / "expected_transactions.json").read_text().split("\n")[:-1]) + "]")
    by_hash = {t["hash"]: t for t in expected_txs if t["block_number"] == 1755635}
    natives = [t for t in moved if t.kind is TransferKind.NATIVE]
    assert {("0x" + t.tx_hash.hex(), t.from_address, t.to_address, t.amount)  # type: ignore[union-attr]
            for t in natives} == {
        (h, t["from_address"], t["to_address"], t["value"]) for h, t in by_hash.items()
        if t["value"] and t["receipt_status"] != 0}
    fees = [t for t in moved if t.kind is TransferKind.FEE]
    assert sum(f.amount for f in fees) == sum(
        t["receipt_gas_used"] * t["gas_price"] for t in by_hash.values())
    assert all(f.to_address == block["miner"] for f in fees)  # pre-London: all to the miner
    tokens = list(iter_token_transfers(receipts))
    expected = [json.loads(line) for line in
                (folder / "expected_token_transfers.json").read_text().splitlines() if line]
    assert [(t.token, t.from_address, t.to_address, t.amount, t.log_index) for t in tokens] == [
        (e["token_address"], e["from_address"], e["to_address"], e["value"], e["log_index"])
        for e in expected]


def test_failed_transaction_moves_no_value_but_pays_its_fee() -> None:
    folder = require_shared(f"{ETL}/test_stream/blocks_1755634_1755635")
    block = _result(folder / "web3_response.eth_getBlockByNumber_0x1ac9f3_true.json")
    receipts = [
        _result(folder / f"web3_response.eth_getTransactionReceipt_{tx['hash']}.json")
        for tx in block["transactions"]
    ]
    tx = dict(block["transactions"][0], value=hex(10**18))
    failed = dict(receipts[0], status="0x0")
    moved = list(iter_tx_transfers(dict(block, transactions=[tx]), [failed]))
    assert [t.kind for t in moved] == [TransferKind.FEE]
    assert list(iter_token_transfers([failed])) == []
    succeeded = list(iter_tx_transfers(dict(block, transactions=[tx]), [receipts[0]]))
    assert [t.kind for t in succeeded] == [TransferKind.NATIVE, TransferKind.FEE]


def test_logs_csv_erc20_transfers_match_ethereum_etl() -> None:
    folder = require_shared(f"{ETL}/test_extract_token_transfers_job/logs")
    with (folder / "logs.csv").open() as fh:
        logs = [{"address": r["address"], "topics": r["topics"].split(","), "data": r["data"],
                 "transactionHash": r["transaction_hash"], "logIndex": int(r["log_index"])}
                for r in csv.DictReader(fh)]
    found = [t for log in logs if (t := decode_token_log(log)) is not None]
    with (folder / "expected_token_transfers.csv").open() as fh:
        expected = list(csv.DictReader(fh))
    assert [(t.token, t.from_address, t.to_address, str(t.amount),
             "0x" + (t.tx_hash or b"").hex(), str(t.log_index)) for t in found] == [
        (e["token_address"], e["from_address"], e["to_address"], e["value"],
         e["transaction_hash"], e["log_index"]) for e in expected]


def test_graphsense_usdt_transfers_match_exactly() -> None:
    """GraphSense's USDT transfers in blocks 15000000-15000004: all 143 matched, no difference.

    GraphSense keeps byte fields base64-encoded; decoded, every (tx, log index, from, to,
    amount) is one of ours and vice versa."""
    folder = require_shared("eth/graphsense-spark/tokens")
    logs = [json.loads(line) for line in (folder / "logs.json").read_text().splitlines()]
    ours = {(t.tx_hash, t.log_index, t.from_address, t.to_address, t.amount)
            for log in logs if (t := decode_token_log(log)) is not None and t.token == USDT}
    reference = [json.loads(line) for line in
                 (folder / "reference/USDT_token_transfers.json").read_text().splitlines()]

    def b64(text: str) -> bytes:
        return base64.b64decode(text)

    theirs = {(b64(r["txHash"]), r["logIndex"], "0x" + b64(r["from"]).hex(),
               "0x" + b64(r["to"]).hex(), r["value"]) for r in reference}
    assert {b64(r["tokenAddress"]).hex() for r in reference} == {USDT[2:]}
    assert len(theirs) == len(reference) == 143
    assert ours == theirs


TRACE_CASES = ["block_with_create", "block_with_error", "block_with_subtraces",
               "block_with_suicide", "block_without_transactions"]


def _expected_value_traces(path: Path) -> set[tuple[str, str, str, int, str]]:
    """ethereum-etl's traces that move value: successful, value > 0, not callcode/delegate."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    out = set()
    for r in rows:
        if r["status"] != "1" or not r["value"] or int(r["value"]) == 0:
            continue
        if r["trace_type"] == "reward":
            out.add(("reward", "", r["to_address"], int(r["value"]), ""))
        elif r["trace_address"] and r["call_type"] in ("call", ""):
            out.add(("internal", r["from_address"], r["to_address"], int(r["value"]),
                     r["trace_address"]))
    return out


@pytest.mark.parametrize("case", TRACE_CASES)
def test_parity_traces_match_ethereum_etl(case: str) -> None:
    folder = require_shared(f"{ETL}/test_export_traces_job/{case}")
    traces = _result(next(folder.glob("web3_response.trace_block_*.json")))
    ours = {("reward" if t.kind is TransferKind.REWARD else "internal", t.from_address or "",
             t.to_address or "", t.amount,
             "" if t.kind is TransferKind.REWARD else t.trace_address or "")
            for t in iter_parity_traces(traces)}
    assert ours == _expected_value_traces(folder / "expected_traces.csv")


def test_parity_suicide_and_errored_call() -> None:
    suicide = require_shared(f"{ETL}/test_export_traces_job/block_with_suicide")
    moved = list(iter_parity_traces(_result(next(suicide.glob("web3_response.*.json")))))
    internal = [t for t in moved if t.kind is TransferKind.INTERNAL]
    assert [(t.from_address, t.to_address, t.amount) for t in internal] == [
        ("0x474faa5018639791952fae334e2911700ac7fe9b",
         "0x83973747eec131bf9a08ac64fb1a518e891bdf4b", 50_000_000_000_000_000)]
    error = require_shared(f"{ETL}/test_export_traces_job/block_with_error")
    traces = _result(next(error.glob("web3_response.*.json")))
    # the failed top-level call carries 1 ETH: as a sub-call of a sub-call it still moves none
    nested = [dict(t, traceAddress=[0, 1]) for t in traces if t.get("error")]
    assert nested and list(iter_parity_traces(nested)) == []
    ok = [dict(t, traceAddress=[0], error=None) for t in traces if t.get("error")]
    assert [t.amount for t in iter_parity_traces(ok)] == [10**18]


@pytest.mark.parametrize("case", TRACE_CASES)
def test_geth_calltracer_agrees_with_parity(case: str) -> None:
    """Below the top level, geth's callTracer and Parity's trace_block give the same moves,
    except for what geth before 1.11 leaves out: a SELFDESTRUCT frame without beneficiary
    or value (block_with_suicide) — Parity says 0.05 ETH went back to the caller."""
    geth = require_shared(f"{ETL}/test_extract_geth_traces_job/{case}")
    parity = require_shared(f"{ETL}/test_export_traces_job/{case}")
    ours = {(t.from_address, t.to_address, t.amount, t.trace_address) for t in
            iter_geth_traces(_result(next(geth.glob("web3_response.*.json"))))}
    theirs = {(t.from_address, t.to_address, t.amount, t.trace_address) for t in
              iter_parity_traces(_result(next(parity.glob("web3_response.*.json"))))
              if t.kind is TransferKind.INTERNAL}
    if case == "block_with_suicide":
        assert ours == set() and len(theirs) == 1
    else:
        assert ours == theirs


def test_geth_frames_nested_create_error_and_selfdestruct() -> None:
    top = {"type": "CALL", "from": "0x" + "aa" * 20, "to": "0x" + "bb" * 20, "value": "0x5",
           "calls": [
               {"type": "CALL", "from": "0x" + "bb" * 20, "to": "0x" + "cc" * 20,
                "value": "0x3", "error": "execution reverted",
                "calls": [{"type": "CALL", "from": "0x" + "cc" * 20, "to": "0x" + "dd" * 20,
                           "value": "0x1"}]},
               {"type": "CREATE2", "from": "0x" + "bb" * 20, "to": "0x" + "ee" * 20,
                "value": "0x2"},
               {"type": "DELEGATECALL", "from": "0x" + "bb" * 20, "to": "0x" + "ff" * 20,
                "value": "0x9"},
               {"type": "SELFDESTRUCT", "from": "0x" + "ee" * 20, "to": "0x" + "aa" * 20,
                "value": "0x2"},
           ]}
    got = [(t.from_address, t.to_address, t.amount, t.trace_address)
           for t in iter_geth_traces([{"txHash": "0x" + "11" * 32, "result": top}])]
    assert got == [("0x" + "bb" * 20, "0x" + "ee" * 20, 2, "1"),
                   ("0x" + "ee" * 20, "0x" + "aa" * 20, 2, "3")]
    failed = dict(top, error="out of gas")
    assert list(iter_geth_traces([{"result": failed}])) == []


def test_pre_byzantium_failure_is_known_from_the_traces() -> None:
    """Block 1,000,895 (2016) has no receipt status; its Parity trace says tx 0xa2f089…
    ran out of gas at the top level, so its 1 ETH did not move. geth's callTracer agrees."""
    parity = require_shared(f"{ETL}/test_export_traces_job/block_with_error")
    geth = require_shared(f"{ETL}/test_extract_geth_traces_job/block_with_error")
    failed = "a2f089480e6fd907e786a88d928ba20feeca2ca37ffa84c2d54bae42f5d989c9"
    ok = "c7fec96b2dd4cadaade2721dc9b5386a39ab00e96e7c1060e441f273801b39de"
    hashes = [bytes.fromhex(failed), bytes.fromhex(ok)]
    traces = _result(next(parity.glob("web3_response.*.json")))
    assert failed_by_traces(traces) == {bytes.fromhex(failed)}
    geth_traces = _result(next(geth.glob("web3_response.*.json")))
    assert failed_by_traces(geth_traces, hashes) == {bytes.fromhex(failed)}
    # the same transactions as a block without receipt status: only the second one moves
    txs = [{"hash": "0x" + h, "transactionIndex": hex(i), "from": "0x" + "11" * 20,
            "to": "0x" + "22" * 20, "value": hex(10**18), "nonce": "0x0", "gas": "0x5208",
            "gasPrice": "0x1", "input": "0x"} for i, h in enumerate((failed, ok))]
    receipts = [{"transactionHash": "0x" + h, "gasUsed": "0x5208"} for h in (failed, ok)]
    block = {"number": "0xf45bf", "miner": "0x" + "33" * 20, "transactions": txs}
    natives = [t for t in iter_tx_transfers(block, receipts, failed_by_traces(traces))
               if t.kind is TransferKind.NATIVE]
    assert [t.tx_hash for t in natives] == [bytes.fromhex(ok)]
