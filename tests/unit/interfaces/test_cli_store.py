"""``cointrail ingest blkfiles``, ``status``, ``show block|tx|address``: real mainnet blocks
0–438 in, one JSON document out, one-line errors with the right exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from cointrail import Block, decode_block, get_chain
from tests.support.cli import ok_json, run
from tests.support.cli import one_error as assert_one_line_error
from tests.support.data import REPO_ROOT, require_shared

BLK = "btc/blocks/mainnet-000000-000438.blk"
BTC = get_chain("bitcoin", "mainnet")
COIN = 100_000_000
TIP_438 = "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
#: the signature style of the first transfer's input (block 170): one strict-DER ECDSA signature,
#: r of 32 bytes, SIGHASH_ALL; a P2PK spend pushes no key
SATOSHI_SIGNATURE = {"ecdsa": True, "high_r": False, "sighash_not_all": False, "schnorr": False,
                     "uncompressed_key": False}
DEFAULT_CONFIRMATIONS = 6  # docs/store.md
HOLD_WRITER = """
import sys
from cointrail.store.duck import open_chain
store = open_chain(sys.argv[1], "bitcoin", "mainnet")
print("ready", flush=True)
sys.stdin.read()
store.close()
"""

# --- helpers ----------------------------------------------------------------------------------

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58check_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes(25, "big")
    assert hashlib.sha256(hashlib.sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]
    return raw[:-4]


def b58check_encode(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(raw, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def reversion(address: str, version: int) -> str:
    """The same hash160 under another p2pkh version byte (0x30 Litecoin, 0x6f testnet)."""
    return b58check_encode(bytes([version]) + b58check_decode(address)[1:])


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == BTC.magic
        length = struct.unpack_from("<I", data, pos + 4)[0]
        blocks.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def frame(raw: bytes) -> bytes:
    return BTC.magic + struct.pack("<I", len(raw)) + raw




def address_facts(blocks: list[Block], address: str) -> dict[str, Any]:
    """received, sent, tx count and first/last height of `address`, from the blocks alone."""
    utxo: dict[tuple[bytes, int], tuple[int, str | None]] = {}
    received = sent = 0
    txids: set[bytes] = set()
    heights: set[int] = set()
    for height, block in enumerate(blocks):
        for tx in block.transactions:
            if not tx.is_coinbase:
                for txin in tx.inputs:
                    value, owner = utxo.pop((bytes(txin.prev_txid), txin.prev_vout))
                    if owner == address:
                        sent += value
                        txids.add(bytes(tx.txid))
                        heights.add(height)
            for out in tx.outputs:
                utxo[(bytes(tx.txid), out.n)] = (out.value, out.address)
                if out.address == address:
                    received += out.value
                    txids.add(bytes(tx.txid))
                    heights.add(height)
    return {"received": received, "sent": sent, "txs": len(txids), "first": min(heights),
            "last": max(heights)}


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
def store_dir(tmp_path_factory: pytest.TempPathFactory, blk_path: Path) -> Path:
    root = tmp_path_factory.mktemp("cli-store")
    ok_json(run(["--store", str(root), "ingest", "blkfiles", str(blk_path), "--json"]))
    return root


def show(store_dir: Path, *args: str) -> Result:
    return run(["--store", str(store_dir), "show", *args])


# --- ingest and status ------------------------------------------------------------------------


def test_ingest_reports_one_json_document_and_is_idempotent(
    tmp_path: Path, blk_path: Path, blocks: list[Block]
) -> None:
    args = ["--store", str(tmp_path), "ingest", "blkfiles", str(blk_path), "--json"]
    first = ok_json(run(args))
    assert first["tip_height"] == 438
    assert first["tip_hash"] == TIP_438 == str(blocks[-1].hash)
    assert first["blocks_added"] == 439
    assert first["transactions_added"] == sum(len(b.transactions) for b in blocks)
    assert (first["reorgs"], first["blocks_rolled_back"]) == (0, 0)
    second = ok_json(run(args))
    assert (second["blocks_added"], second["transactions_added"]) == (0, 0)
    assert second["tip_hash"] == TIP_438


def test_status_json(store_dir: Path, blocks: list[Block]) -> None:
    doc = ok_json(run(["--store", str(store_dir), "status", "--json"]))
    assert doc["store"] == str(store_dir)
    assert len(doc["chains"]) == 1
    chain = doc["chains"][0]
    assert (chain["chain"], chain["network"]) == ("bitcoin", "mainnet")
    assert chain["tip_height"] == 438
    assert chain["tip_hash"] == TIP_438 == str(blocks[438].hash)
    assert chain["tip_time"] == blocks[438].header.time
    assert chain["blocks"] == 439
    assert chain["transactions"] == sum(len(b.transactions) for b in blocks)
    assert chain["outputs"] == sum(len(t.outputs) for b in blocks for t in b.transactions)
    assert chain["inputs"] == sum(
        len(t.inputs) for b in blocks for t in b.transactions if not t.is_coinbase
    )
    assert chain["confirmations"] == DEFAULT_CONFIRMATIONS
    assert chain["final_height"] == 438 - DEFAULT_CONFIRMATIONS
    assert chain["tip_age_seconds"] > 0  # the tip is from 2009


def test_status_follows_the_confirmations_setting(store_dir: Path) -> None:
    doc = ok_json(run(["--store", str(store_dir), "status", "--json"],
                      env={"COINTRAIL_CONFIRMATIONS": "100"}))
    chain = doc["chains"][0]
    assert (chain["confirmations"], chain["final_height"]) == (100, 338)


def test_status_of_an_empty_store(tmp_path: Path) -> None:
    doc = ok_json(run(["--store", str(tmp_path), "status", "--json"]))
    assert doc == {"store": str(tmp_path), "chains": []}


# --- show -------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["height", "hash"])
def test_show_block_170(store_dir: Path, blocks: list[Block], raws: list[bytes], by: str) -> None:
    block = blocks[170]
    ident = "170" if by == "height" else str(block.hash)
    doc = ok_json(show(store_dir, "block", ident, "--json"))
    h = block.header
    assert doc["height"] == 170
    assert doc["hash"] == str(block.hash)
    assert doc["previousblockhash"] == str(blocks[169].hash)
    assert doc["merkleroot"] == bytes(h.merkle_root)[::-1].hex()
    assert (doc["time"], doc["nonce"], doc["version"]) == (h.time, h.nonce, h.version)
    assert doc["bits"] == f"{h.bits:08x}"
    assert doc["size"] == len(raws[170])
    assert doc["nTx"] == 2
    assert doc["tx"] == [str(tx.txid) for tx in block.transactions]
    assert doc["tx"][1] == FIRST_TRANSFER


def test_show_block_for_humans(store_dir: Path, blocks: list[Block]) -> None:
    result = show(store_dir, "block", "170")
    assert result.exit_code == 0, result.stderr
    assert str(blocks[170].hash) in result.stdout
    assert FIRST_TRANSFER in result.stdout


def test_show_tx_first_transfer(store_dir: Path, blocks: list[Block]) -> None:
    doc = ok_json(show(store_dir, "tx", FIRST_TRANSFER, "--json"))
    tx = blocks[170].transactions[1]
    coinbase_9 = str(blocks[9].transactions[0].txid)
    assert coinbase_9.startswith("0437cd7f")
    assert doc["txid"] == FIRST_TRANSFER
    assert (doc["height"], doc["blockhash"]) == (170, str(blocks[170].hash))
    assert doc["time"] == blocks[170].header.time
    assert doc["size"] == tx.size
    assert doc["coinbase"] is False
    assert doc["vin"] == [{"n": 0, "txid": coinbase_9, "vout": 0, "value_sat": 50 * COIN,
                           "address": SATOSHI, "sequence": tx.inputs[0].sequence,
                           "signature": SATOSHI_SIGNATURE}]
    assert [(o["n"], o["value_sat"], o["address"], o["type"]) for o in doc["vout"]] == [
        (0, 10 * COIN, HAL, "pubkey"), (1, 40 * COIN, SATOSHI, "pubkey")
    ]
    # who spent the 40 BTC change: the block transaction whose input names f4184fc5…:1
    spender = [
        (str(t.txid), vin) for b in blocks for t in b.transactions
        for vin, i in enumerate(t.inputs) if (str(i.prev_txid), i.prev_vout) == (FIRST_TRANSFER, 1)
    ]
    assert len(spender) == 1
    assert doc["vout"][0]["spent_by"] is None
    assert doc["vout"][1]["spent_by"] == {"txid": spender[0][0], "vin": spender[0][1]}
    assert (doc["input_value_sat"], doc["output_value_sat"], doc["fee_sat"]) == (
        50 * COIN, 50 * COIN, 0
    )


def test_show_tx_coinbase(store_dir: Path, blocks: list[Block]) -> None:
    coinbase = blocks[9].transactions[0]
    doc = ok_json(show(store_dir, "tx", str(coinbase.txid), "--json"))
    script_sig = coinbase.inputs[0].script_sig.hex()  # Core's getrawtransaction: vin[0].coinbase
    assert doc["coinbase"] is True and doc["vin"] == [{"coinbase": script_sig}]
    assert doc["fee_sat"] is None and doc["input_value_sat"] is None
    assert doc["vout"][0]["value_sat"] == 50 * COIN
    assert doc["vout"][0]["spent_by"] == {"txid": FIRST_TRANSFER, "vin": 0}


@pytest.mark.parametrize("address", [HAL, SATOSHI])
def test_show_address(store_dir: Path, blocks: list[Block], address: str) -> None:
    facts = address_facts(blocks, address)
    doc = ok_json(show(store_dir, "address", address, "--json"))
    assert (doc["address"], doc["chain"], doc["network"]) == (address, "bitcoin", "mainnet")
    assert doc["received_sat"] == facts["received"]
    assert doc["sent_sat"] == facts["sent"]
    assert doc["balance_sat"] == facts["received"] - facts["sent"]
    assert doc["tx_count"] == facts["txs"]
    assert doc["first_seen"] == {"height": facts["first"],
                                 "time": blocks[facts["first"]].header.time}
    assert doc["last_seen"] == {"height": facts["last"], "time": blocks[facts["last"]].header.time}


def test_hal_received_ten_bitcoin(store_dir: Path) -> None:
    doc = ok_json(show(store_dir, "address", HAL, "--json"))
    assert (doc["balance_sat"], doc["received_sat"], doc["sent_sat"]) == (10 * COIN, 10 * COIN, 0)
    assert doc["first_seen"]["height"] == doc["last_seen"]["height"] == 170


# --- errors -----------------------------------------------------------------------------------


def test_address_of_another_chain(store_dir: Path) -> None:
    litecoin = reversion(HAL, 0x30)  # Hal's key as a Litecoin p2pkh address
    assert litecoin.startswith("L")
    line = assert_one_line_error(show(store_dir, "address", litecoin, "--json"), "litecoin")
    assert litecoin in line


def test_address_of_another_network(store_dir: Path) -> None:
    testnet = reversion(HAL, 0x6F)
    line = assert_one_line_error(show(store_dir, "address", testnet), "testnet")
    assert testnet in line


def test_address_never_seen(store_dir: Path) -> None:
    assert reversion(HAL, 0x00) == HAL  # the helper re-encodes faithfully
    mangled = HAL[:-1]  # cut short: the checksum no longer matches
    assert_one_line_error(show(store_dir, "address", mangled), "checksum")
    never = b58check_encode(b"\x00" + bytes(range(20)))  # valid, but no coin ever paid it
    line = assert_one_line_error(show(store_dir, "address", never, "--json"), never)
    assert "never" in line


def test_unknown_tx(store_dir: Path, blocks: list[Block]) -> None:
    unknown = hashlib.sha256(b"no such transaction").hexdigest()
    assert_one_line_error(show(store_dir, "tx", unknown, "--json"), unknown)
    # a real block hash is not a transaction id
    assert_one_line_error(show(store_dir, "tx", str(blocks[1].hash)), "no transaction")


def test_unknown_block(store_dir: Path) -> None:
    assert_one_line_error(show(store_dir, "block", "439", "--json"), "439")
    unknown = hashlib.sha256(b"no such block").hexdigest()
    assert_one_line_error(show(store_dir, "block", unknown), unknown)


def test_store_without_the_chain(store_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    line = assert_one_line_error(show(empty, "block", "0"), "bitcoin/mainnet")
    assert str(empty) in line
    result = run(["--store", str(store_dir), "--chain", "litecoin", "show", "block", "0"])
    assert_one_line_error(result, "litecoin/mainnet")


def test_store_in_use_by_another_process(tmp_path: Path, blk_path: Path) -> None:
    ok_json(run(["--store", str(tmp_path), "ingest", "blkfiles", str(blk_path), "--json"]))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "ready"
        no_wait = {"COINTRAIL_STORE_WAIT": "0"}
        shown = run(["--store", str(tmp_path), "show", "block", "0"], env=no_wait)
        line = assert_one_line_error(shown, "in use", code=1)
        assert "another cointrail process" in line and str(holder.pid) in line
        ingest = run(["--store", str(tmp_path), "ingest", "blkfiles", str(blk_path), "--json"],
                     env=no_wait)
        assert_one_line_error(ingest, "in use by another cointrail process", code=1)
        waited = run(["--store", str(tmp_path), "show", "block", "0"],
                     env={"COINTRAIL_STORE_WAIT": "0.5"})
        assert waited.exit_code == 1
        assert waited.stderr.startswith("warning: ") and "waiting up to 0.5 s" in waited.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert ok_json(show(tmp_path, "block", "0", "--json"))["height"] == 0


def test_truncated_file_is_ingested_and_reported(tmp_path: Path, raws: list[bytes]) -> None:
    """In a real process: the complete blocks are stored and the cut frame is reported."""
    whole = b"".join(frame(r) for r in raws[:10])
    cut = tmp_path / "cut.blk"
    cut.write_bytes(whole + frame(raws[10])[:60])
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
    done = subprocess.run(
        [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(tmp_path / "s"),
         "ingest", "blkfiles", str(cut), "--json"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["tip_height"], doc["blocks_added"]) == (9, 10)
    assert "truncated" in done.stderr
    assert f"offset {len(whole)}" in done.stderr


def test_show_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    no_store = tmp_path / "absent"
    assert_one_line_error(show(no_store, "tx", FIRST_TRANSFER), "ingest it first")
    assert not no_store.exists()


def test_truncated_blk_file_prints_a_warning_line(tmp_path: Path, raws: list[bytes]) -> None:
    cut = tmp_path / "cut.blk"
    cut.write_bytes(b"".join(frame(r) for r in raws[:5]) + frame(raws[5])[:40])
    result = run(["--store", str(tmp_path / "s"), "ingest", "blkfiles", str(cut), "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tip_height"] == 4
    assert len(doc["warnings"]) == 1 and "truncated" in doc["warnings"][0]
    lines = [line for line in result.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "truncated" in lines[0]


def test_a_command_waits_for_a_store_held_briefly(tmp_path: Path, blk_path: Path) -> None:
    """`sync --follow` holds the store about a second per new block: a command that comes
    then says it waits (stderr) and goes on once the store is free (COINTRAIL_STORE_WAIT)."""
    ok_json(run(["--store", str(tmp_path), "ingest", "blkfiles", str(blk_path), "--json"]))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "ready"
    release = threading.Timer(1.0, holder.stdin.close)
    release.start()
    try:
        shown = run(["--store", str(tmp_path), "show", "block", "0", "--json"],
                    env={"COINTRAIL_STORE_WAIT": "60"})
    finally:
        release.join()
        holder.wait(timeout=60)
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["height"] == 0
    assert f"in use by another cointrail process (process {holder.pid}); waiting up to 60 s" \
        in " ".join(shown.stderr.split())
