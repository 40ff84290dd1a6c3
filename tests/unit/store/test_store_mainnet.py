"""The store against the real chain: mainnet blocks 0–438 ingested, checked against the chain.

Expected values never come from the store: they are computed here by walking the blocks decoded
with `cointrail.decode_block` (a plain UTXO dict), or are published facts (the first bitcoin
transfer in block 170, the 50 BTC subsidy of the first era, the hash of block 438).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cointrail import Block, decode_block, get_chain
from cointrail.interfaces.cli.main import app
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.queries import show_address, show_tx
from cointrail.store.schema import TABLES
from cointrail.store.sync import ingest_blkfiles
from tests.support.data import require_shared

BLK = "btc/blocks/mainnet-000000-000438.blk"
BTC = get_chain("bitcoin", "mainnet")
COIN = 100_000_000
SUBSIDY = 50 * COIN  # block subsidy of heights 0–209,999 (halving schedule)
TIP_438 = "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None,
    "COINTRAIL_NETWORK": None,
    "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None,
    "COINTRAIL_CONFIRMATIONS": None,
}

Outpoint = tuple[bytes, int]


# --- the chain, walked independently of the store ----------------------------------------------


def read_frames(path: Path) -> list[bytes]:
    """The blocks of a framed file (magic, u32 length, block), in file order."""
    data = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        magic, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        assert magic == BTC.magic
        blocks.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def write_frames(path: Path, raws: list[bytes]) -> Path:
    path.write_bytes(b"".join(BTC.magic + struct.pack("<I", len(r)) + r for r in raws))
    return path


@dataclass
class AddressFacts:
    received: int = 0
    sent: int = 0
    outputs_received: int = 0
    outputs_spent: int = 0
    txids: set[bytes] = field(default_factory=set)
    heights: set[int] = field(default_factory=set)


@dataclass
class Walk:
    """What the chain says, computed from decoded blocks with a plain UTXO dict."""

    addresses: dict[str, AddressFacts]  # in order of first appearance
    first_height: dict[str, int]
    created: dict[Outpoint, tuple[int, int, str | None]]  # outpoint -> height, value, address
    spent: dict[Outpoint, tuple[int, bytes, int]]  # outpoint -> height, spending txid, vin
    unspent: dict[Outpoint, tuple[int, str | None]]
    tx_count: int
    output_count: int
    input_count: int
    coinbase_value: int
    fees: dict[bytes, int]  # non-coinbase txid -> fee


def walk(blocks: list[Block]) -> Walk:
    addresses: dict[str, AddressFacts] = {}
    first_height: dict[str, int] = {}
    created: dict[Outpoint, tuple[int, int, str | None]] = {}
    spent: dict[Outpoint, tuple[int, bytes, int]] = {}
    utxo: dict[Outpoint, tuple[int, str | None]] = {}
    tx_count = output_count = input_count = coinbase_value = 0
    fees: dict[bytes, int] = {}
    for height, block in enumerate(blocks):
        for tx in block.transactions:
            txid = bytes(tx.txid)
            tx_count += 1
            in_value = 0
            if not tx.is_coinbase:
                for vin, txin in enumerate(tx.inputs):
                    outpoint = (bytes(txin.prev_txid), txin.prev_vout)
                    value, address = utxo.pop(outpoint)  # KeyError: spends a missing coin
                    spent[outpoint] = (height, txid, vin)
                    in_value += value
                    input_count += 1
                    if address is not None:
                        facts = addresses[address]
                        facts.sent += value
                        facts.outputs_spent += 1
                        facts.txids.add(txid)
                        facts.heights.add(height)
            for out in tx.outputs:
                output_count += 1
                created[(txid, out.n)] = (height, out.value, out.address)
                utxo[(txid, out.n)] = (out.value, out.address)
                if out.address is not None:
                    if out.address not in addresses:
                        addresses[out.address] = AddressFacts()
                        first_height[out.address] = height
                    facts = addresses[out.address]
                    facts.received += out.value
                    facts.outputs_received += 1
                    facts.txids.add(txid)
                    facts.heights.add(height)
            if tx.is_coinbase:
                coinbase_value += sum(o.value for o in tx.outputs)
            else:
                fees[txid] = in_value - sum(o.value for o in tx.outputs)
    return Walk(addresses, first_height, created, spent, utxo, tx_count, output_count,
                input_count, coinbase_value, fees)


def dump(store: ChainStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a canonical order."""
    return {t.name: store.query(f"SELECT * FROM {t.name} ORDER BY ALL") for t in TABLES}


def assert_same_rows(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert got.keys() == want.keys()
    for name, rows in want.items():
        assert got[name] == rows, f"table {name} differs"


def ingest(root: Path, path: Path, **kwargs: Any) -> tuple[ChainStore, Any]:
    store = Store(root).chain(BTC)
    result = ingest_blkfiles(UtxoIngestor(store, **kwargs), str(path))
    return store, result


def cli(args: list[str]) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart
    return runner.invoke(app, args, env=CLEAN_ENV)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blk_path() -> Path:
    return require_shared(BLK)


@pytest.fixture(scope="module")
def raws(blk_path: Path) -> list[bytes]:
    return read_frames(blk_path)


@pytest.fixture(scope="module")
def blocks(raws: list[bytes]) -> list[Block]:
    return [decode_block(raw, BTC) for raw in raws]


@pytest.fixture(scope="module")
def chain(blocks: list[Block]) -> Walk:
    return walk(blocks)


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, blk_path: Path
) -> Iterator[dict[str, list[Any]]]:
    """The rows of one clean full ingest, the yardstick for resumed and repeated ingests."""
    store, _ = ingest(tmp_path_factory.mktemp("reference"), blk_path)
    with store:
        yield dump(store)


@pytest.fixture(scope="module", params=["api", "cli"])
def ingested(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, blk_path: Path
) -> Iterator[tuple[ChainStore, dict[str, Any]]]:
    """The full file ingested through `ingest_blkfiles` or through ``cointrail ingest``."""
    root = tmp_path_factory.mktemp(f"ingest-{request.param}")
    if request.param == "api":
        store, result = ingest(root, blk_path)
        report = {"tip_height": result.tip_height, "tip_hash": result.tip_hash,
                  "blocks_added": result.blocks, "transactions_added": result.txs}
    else:
        run = cli(["--store", str(root), "ingest", "blkfiles", str(blk_path), "--json"])
        assert run.exit_code == 0, (run.stdout, run.stderr)
        report = json.loads(run.stdout)
        store = Store(root).chain(BTC, read_only=True)
    with store:
        yield store, report


# --- ingest of the real chain -----------------------------------------------------------------


def test_ingest_report_names_the_real_tip(
    ingested: tuple[ChainStore, dict[str, Any]], blocks: list[Block], chain: Walk
) -> None:
    _, report = ingested
    assert str(blocks[438].hash) == TIP_438
    assert report["tip_height"] == 438
    assert report["tip_hash"] == TIP_438
    assert report["blocks_added"] == len(blocks) == 439
    assert report["transactions_added"] == chain.tx_count


def test_table_counts_match_the_chain(
    ingested: tuple[ChainStore, dict[str, Any]], blocks: list[Block], chain: Walk
) -> None:
    store, _ = ingested
    counts = store.table_counts()
    assert counts["blocks"] == len(blocks)
    assert counts["txs"] == chain.tx_count
    assert counts["outputs"] == chain.output_count
    assert counts["inputs"] == chain.input_count
    assert counts["coinbases"] == len(blocks)
    assert counts["addresses"] == len(chain.addresses)
    assert counts["transfers"] == counts["assets"] == 0


def test_blocks_rows_match_headers(
    ingested: tuple[ChainStore, dict[str, Any]], blocks: list[Block], raws: list[bytes]
) -> None:
    store, _ = ingested
    rows = store.query(
        "SELECT height, hash, prev_hash, merkle_root, time, bits, nonce, size, tx_count,"
        " first_tx_id FROM blocks ORDER BY height"
    )
    assert [r[0] for r in rows] == list(range(len(blocks)))
    first_tx_id = 0
    for row, block, raw in zip(rows, blocks, raws, strict=True):
        h = block.header
        assert row[1:8] == (bytes(h.hash), bytes(h.prev_hash), bytes(h.merkle_root), h.time,
                            h.bits, h.nonce, len(raw))
        assert row[8] == len(block.transactions)
        assert row[9] == first_tx_id  # dense tx ids in chain order
        first_tx_id += len(block.transactions)


def test_first_bitcoin_transfer(
    ingested: tuple[ChainStore, dict[str, Any]], blocks: list[Block], chain: Walk
) -> None:
    store, _ = ingested
    coinbase_9 = blocks[9].transactions[0].txid
    assert str(coinbase_9).startswith("0437cd7f")
    change_spender = chain.spent[(bytes.fromhex(FIRST_TRANSFER)[::-1], 1)]
    tx = show_tx(store, FIRST_TRANSFER)
    assert tx["height"] == 170
    assert tx["blockhash"] == str(blocks[170].hash)
    assert tx["coinbase"] is False
    assert tx["vin"] == [{
        "n": 0, "txid": str(coinbase_9), "vout": 0, "value_sat": 50 * COIN, "address": SATOSHI,
        "sequence": blocks[170].transactions[1].inputs[0].sequence,
        # one strict-DER signature with a 32-byte r, SIGHASH_ALL; a P2PK spend pushes no key
        "signature": {"ecdsa": True, "high_r": False, "sighash_not_all": False,
                      "schnorr": False, "uncompressed_key": False},
    }]
    assert [(o["n"], o["value_sat"], o["address"]) for o in tx["vout"]] == [
        (0, 10 * COIN, HAL), (1, 40 * COIN, SATOSHI)
    ]
    assert tx["vout"][0]["spent_by"] is None  # Hal's 10 BTC are still unspent at 438
    spender_height, spender_txid, spender_vin = change_spender
    assert spender_height > 170
    assert tx["vout"][1]["spent_by"] == {"txid": spender_txid[::-1].hex(), "vin": spender_vin}
    assert tx["input_value_sat"] == tx["output_value_sat"] == 50 * COIN
    assert tx["fee_sat"] == 0


def test_every_address_agrees_with_the_chain(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    stored = {text for (text,) in store.query("SELECT text FROM addresses")}
    assert stored == set(chain.addresses)
    for address, facts in chain.addresses.items():
        got = show_address(store, address)
        assert got["address"] == address
        assert got["received_sat"] == facts.received, address
        assert got["sent_sat"] == facts.sent, address
        assert got["balance_sat"] == facts.received - facts.sent, address
        assert got["outputs_received"] == facts.outputs_received, address
        assert got["outputs_spent"] == facts.outputs_spent, address
        assert got["tx_count"] == len(facts.txids), address
        assert got["first_seen"]["height"] == min(facts.heights), address
        assert got["last_seen"]["height"] == max(facts.heights), address


def test_first_transfer_addresses(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    hal = show_address(store, HAL)
    assert (hal["received_sat"], hal["sent_sat"], hal["balance_sat"]) == (10 * COIN, 0, 10 * COIN)
    assert hal["first_seen"]["height"] == hal["last_seen"]["height"] == 170
    satoshi = show_address(store, SATOSHI)
    assert satoshi["first_seen"]["height"] == 9  # the coinbase of block 9 paid this key
    assert satoshi["balance_sat"] == chain.addresses[SATOSHI].received - chain.addresses[
        SATOSHI].sent


def test_addresses_in_order_of_first_appearance(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    rows = store.query("SELECT addr_id, text, first_height FROM addresses ORDER BY addr_id")
    assert [r[0] for r in rows] == list(range(len(chain.addresses)))
    assert [r[1] for r in rows] == list(chain.addresses)
    assert [r[2] for r in rows] == [chain.first_height[a] for a in chain.addresses]


def test_address_stats_view_agrees_with_the_chain(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    rows = store.query(
        "SELECT a.text, s.received, s.sent, s.balance, s.first_height, s.last_height"
        " FROM address_stats s JOIN addresses a USING (addr_id)"
    )
    got = {r[0]: r[1:] for r in rows}
    want = {
        a: (f.received, f.sent, f.received - f.sent, min(f.heights), max(f.heights))
        for a, f in chain.addresses.items()
    }
    assert got == want


def test_supply_is_the_sum_of_subsidies(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    # no fees in this era, so every coin is a subsidy: 439 blocks × 50 BTC
    assert chain.coinbase_value == 439 * SUBSIDY
    balances = store.query("SELECT sum(balance)::BIGINT FROM address_stats")[0][0]
    assert balances == chain.coinbase_value
    unspent = store.query(
        "SELECT sum(value)::BIGINT FROM outputs_spent WHERE spent_by_tx_id IS NULL"
    )[0][0]
    assert unspent == sum(v for v, _ in chain.unspent.values()) == chain.coinbase_value
    minted = store.query("SELECT sum(output_value)::BIGINT FROM txs WHERE is_coinbase")[0][0]
    assert minted == chain.coinbase_value


def test_fees_are_zero_in_that_era(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    rows = store.query("SELECT txid, is_coinbase, input_value, output_value, fee FROM txs")
    fees = {bytes(txid): fee for txid, coinbase, _, _, fee in rows if not coinbase}
    assert fees == chain.fees
    assert set(fees.values()) == {0}
    assert len(fees) == chain.tx_count - 439
    for _, coinbase, input_value, output_value, fee in rows:
        if coinbase:
            assert input_value is None and fee is None
            assert output_value == SUBSIDY
        else:
            assert input_value == output_value


def test_outputs_spent_view_names_the_spender(
    ingested: tuple[ChainStore, dict[str, Any]], chain: Walk
) -> None:
    store, _ = ingested
    rows = store.query(
        "SELECT t.txid, o.n, o.value, s.txid, o.spent_by_n FROM outputs_spent o"
        " JOIN txs t ON t.tx_id = o.tx_id LEFT JOIN txs s ON s.tx_id = o.spent_by_tx_id"
    )
    got = {(bytes(t), n): (v, None if s is None else (bytes(s), sn)) for t, n, v, s, sn in rows}
    want = {
        op: (value, None if op not in chain.spent else chain.spent[op][1:])
        for op, (_, value, _) in chain.created.items()
    }
    assert got == want
    assert sum(1 for _, spender in got.values() if spender) == chain.input_count


# --- repeatable and resumable -----------------------------------------------------------------


def test_second_ingest_adds_nothing(
    tmp_path: Path, blk_path: Path, reference: dict[str, list[Any]]
) -> None:
    store, first = ingest(tmp_path, blk_path)
    with store:
        assert first.blocks == 439
        second = ingest_blkfiles(UtxoIngestor(store), str(blk_path))
        assert second.blocks == 0 and second.txs == 0
        assert second.start_height == second.tip_height == 438
        assert (second.reorgs, second.blocks_rolled_back) == (0, 0)
        assert_same_rows(dump(store), reference)


@pytest.mark.parametrize("first_tip", [0, 170, 200])
def test_resumed_ingest_equals_one_full_ingest(
    tmp_path: Path, raws: list[bytes], blk_path: Path, reference: dict[str, list[Any]],
    first_tip: int,
) -> None:
    part = write_frames(tmp_path / "part.blk", raws[: first_tip + 1])
    store, first = ingest(tmp_path / "store", part)
    store.close()
    assert first.tip_height == first_tip
    store, result = ingest(tmp_path / "store", blk_path)  # a new process: state from the store
    with store:
        assert result.start_height == first_tip
        assert result.blocks == 438 - first_tip
        assert_same_rows(dump(store), reference)


def test_tiny_batches_give_the_same_store(
    tmp_path: Path, blk_path: Path, reference: dict[str, list[Any]]
) -> None:
    flushes: list[int] = []
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store, batch_txs=1, on_flush=lambda p: flushes.append(p.height))
        ingest_blkfiles(ingestor, str(blk_path))
        assert flushes == list(range(439))  # every block is its own committed batch
        assert_same_rows(dump(store), reference)


# --- rollback ---------------------------------------------------------------------------------


ROLLBACK_HEIGHTS = [0, 169, 170, 180, 182, 247, 437]


@pytest.mark.parametrize("height", ROLLBACK_HEIGHTS)
def test_rollback_then_reingest_restores_rows_and_ids(
    tmp_path: Path, blk_path: Path, raws: list[bytes], blocks: list[Block], height: int
) -> None:
    store, _ = ingest(tmp_path / "full", blk_path)
    with store:
        before, before_ids = dump(store), store.next_ids()
        ingestor = UtxoIngestor(store)
        assert ingestor.rollback_to(height) == 438 - height
        assert store.tip() is not None and store.tip().height == height  # type: ignore[union-attr]
        # the rows are those of a store that never saw the later blocks
        part = write_frames(tmp_path / "part.blk", raws[: height + 1])
        short, _ = ingest(tmp_path / "short", part)
        with short:
            want = dump(short)
        got = dump(store)
        for table in TABLES:
            if table.name != "sync_state":
                assert got[table.name] == want[table.name], table.name
        prefix = walk(blocks[: height + 1])
        assert store.next_ids() == (prefix.tx_count, len(prefix.addresses))
        # ingest again on the same ingestor: same rows, the same ids reused
        result = ingest_blkfiles(ingestor, str(blk_path))
        assert result.blocks == 438 - height
        assert store.next_ids() == before_ids
        assert_same_rows(dump(store), before)


@pytest.mark.parametrize("height", [169, 437])
def test_rollback_moves_the_recorded_tip(tmp_path: Path, blk_path: Path, height: int) -> None:
    store, _ = ingest(tmp_path, blk_path)
    with store:
        assert store.state()["tip_height"] == "438"
        UtxoIngestor(store).rollback_to(height)
        assert store.state()["tip_height"] == str(height)


@pytest.mark.parametrize("height", [169, 180, 182, 247])
def test_rollback_unspends_outputs_spent_above(
    tmp_path: Path, blk_path: Path, chain: Walk, height: int
) -> None:
    kept_then_spent = {
        op for op, (spent_height, _, _) in chain.spent.items()
        if chain.created[op][0] <= height < spent_height
    }
    assert kept_then_spent  # each height splits a spend from the coin it spends
    store, _ = ingest(tmp_path, blk_path)
    with store:
        sql = (
            "SELECT t.txid, o.n, o.spent_by_tx_id FROM outputs_spent o"
            " JOIN txs t ON t.tx_id = o.tx_id"
        )
        spent_before = {(bytes(t), n) for t, n, s in store.query(sql) if s is not None}
        assert kept_then_spent <= spent_before
        UtxoIngestor(store).rollback_to(height)
        rows = {(bytes(t), n): s for t, n, s in store.query(sql)}
        for op in kept_then_spent:
            assert rows[op] is None, op
        still_spent = {op for op, s in rows.items() if s is not None}
        assert still_spent == {
            op for op, (h, _, _) in chain.spent.items() if h <= height
        }


@pytest.mark.parametrize("height", [169, 182])
def test_rollback_then_resume_in_a_new_process(
    tmp_path: Path, blk_path: Path, reference: dict[str, list[Any]], height: int
) -> None:
    store, _ = ingest(tmp_path, blk_path)
    with store:
        store.rollback_to(height)
    store, result = ingest(tmp_path, blk_path)  # the UTXO index is rebuilt from the store
    with store:
        assert result.start_height == height
        assert_same_rows(dump(store), reference)


# --- size -------------------------------------------------------------------------------------


def test_size_on_disk_per_transaction(tmp_path: Path, blk_path: Path, chain: Walk) -> None:
    store, _ = ingest(tmp_path, blk_path)
    with store:
        store.con.execute("CHECKPOINT")
        path = store.path
        size = os.path.getsize(path)
    wal = path.with_name(path.name + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0  # everything is in the main file
    with Store(tmp_path).chain(BTC, read_only=True) as reopened:
        assert reopened.table_counts()["txs"] == chain.tx_count
    print(
        f"\nstore size: {size} bytes for {chain.tx_count} txs = "
        f"{size / chain.tx_count:.0f} bytes/tx on disk (blocks 0–438, after CHECKPOINT)"
    )
