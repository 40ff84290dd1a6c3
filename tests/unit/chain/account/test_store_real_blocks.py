"""Real mainnet blocks 1,755,634-1,755,635 (2016) into an Ethereum store, without a node:
rows, parent-hash check, rollback, exact amounts beyond HUGEINT, and ``show address``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cointrail.chain.account.node import FullBlock
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ethsync import EthIngestor
from cointrail.store.ingest import ReorgError
from cointrail.store.queries import show_account_address, show_account_tx
from cointrail.store.schema import TABLES
from tests.support.data import require_shared

FOLDER = "eth/ethereum-etl-resources/test_stream/blocks_1755634_1755635"
TOKEN = "0xbb9bc244d798123fde783fcc1c72d3bb8c189413"  # The DAO token


def _result(path: Path) -> Any:
    return json.loads(path.read_text())["result"]


def _blocks() -> list[FullBlock]:
    folder = require_shared(FOLDER)
    out = []
    for number in ("0x1ac9f2", "0x1ac9f3"):
        block = _result(folder / f"web3_response.eth_getBlockByNumber_{number}_true.json")
        receipts = [_result(folder / f"web3_response.eth_getTransactionReceipt_{t['hash']}.json")
                    for t in block["transactions"]]
        out.append(FullBlock(block, receipts, None))
    return out


def _metadata(tokens: list[str], height: int) -> dict[str, tuple[str | None, int | None]]:
    return {t: ("DAO", 16) for t in tokens}  # the answers eth_call gives for TheDAO


def _store(path: Path, blocks: list[FullBlock]) -> ChainStore:
    store = open_chain(path, "ethereum", "mainnet")
    ingestor = EthIngestor(store, _metadata, start_height=blocks[0].height)
    for full in blocks:
        ingestor.add_block(full)
    ingestor.flush()
    return store


def _dump(store: ChainStore) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: store.query(f"SELECT * FROM {t.name} ORDER BY ALL") for t in TABLES
            if t.name != "sync_state"}


def test_real_blocks_become_rows(tmp_path: Path) -> None:
    blocks = _blocks()
    with _store(tmp_path, blocks) as store:
        tip = store.tip()
        assert tip is not None and tip.height == 1_755_635
        assert tip.hash[::-1].hex() == blocks[1].block["hash"][2:]
        expected = [json.loads(line) for line in
                    (require_shared(FOLDER) / "expected_transactions.json").read_text().splitlines()
                    if line]
        for tx in expected:
            doc = show_account_tx(store, tx["hash"])
            assert (doc["from"], doc["to"], doc["value_wei"], doc["nonce"]) == (
                tx["from_address"], tx["to_address"], tx["value"], tx["nonce"])
            assert doc["fee_wei"] == tx["receipt_gas_used"] * tx["gas_price"]
            assert sum(t["amount"] for t in doc["transfers"] if t["kind"] == "fee") == \
                doc["fee_wei"]
        sender = show_account_address(store, "0x6498077292a0921c8804924fdf47b5e91e2a215f")
        (dao,) = sender["tokens"]
        assert (dao["contract"], dao["symbol"], dao["sent"]) == (TOKEN, "DAO", 5 * 10**18)
        assert dao["balance_display"] == "-500"  # a window: what it held before is not seen


def test_parent_hash_is_checked(tmp_path: Path) -> None:
    first, second = _blocks()
    wrong = dict(copy.deepcopy(second.block), parentHash="0x" + "ab" * 32)
    store = open_chain(tmp_path, "ethereum", "mainnet")
    with store:
        ingestor = EthIngestor(store, _metadata, start_height=first.height)
        ingestor.add_block(first)
        with pytest.raises(ReorgError):
            ingestor.add_block(FullBlock(wrong, second.receipts, None))


def test_rollback_then_reapply_gives_the_same_store(tmp_path: Path) -> None:
    blocks = _blocks()
    with _store(tmp_path / "a", blocks) as store:
        before = _dump(store)
        ingestor = EthIngestor(store, _metadata)
        assert ingestor.rollback_to(blocks[0].height) == 1
        assert store.query("SELECT count(*) FROM transfers WHERE height > ?",
                           [blocks[0].height]) == [(0,)]
        assert store.query("SELECT count(*) FROM account_txs") == [(0,)]
        ingestor.add_block(blocks[1])
        ingestor.flush()
        assert _dump(store) == before


def test_amounts_beyond_hugeint_stay_exact(tmp_path: Path) -> None:
    first, second = _blocks()
    receipts = copy.deepcopy(list(second.receipts))
    huge = 2**255 + 12345
    receipts[0]["logs"][0]["data"] = "0x" + huge.to_bytes(32, "big").hex()
    with _store(tmp_path, [first, FullBlock(second.block, receipts, None)]) as store:
        row = store.query("SELECT amount::VARCHAR, amount_exact FROM transfers WHERE kind = 2")
        assert row == [("0", str(huge))]
        receiver = show_account_address(store, "0x8b3b3b624c3c0397d3da8fd861512393d51dcbac")
        assert receiver["tokens"][0]["balance"] == huge
