"""Real mainnet blocks decode exactly: merkle roots, proof of work, ids, sizes, round trips."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator

import pytest

from cointrail import decode_block, decode_tx
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.block import check_proof_of_work, encode_block
from cointrail.chain.utxo.hashes import sha256d
from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.tx import encode_tx
from tests.support.data import require_shared

BTC = get_chain("bitcoin", "mainnet")

BIG_BLOCKS = {
    413567: "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069",
    540107: "00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab",
    574200: "0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2",
}


def iter_framed(data: bytes) -> Iterator[bytes]:
    pos = 0
    while pos < len(data):
        magic, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        assert magic == BTC.magic
        yield data[pos + 8 : pos + 8 + length]
        pos += 8 + length


@pytest.fixture(scope="module")
def early_blocks() -> list[bytes]:
    path = require_shared("btc/blocks/mainnet-000000-000438.blk")
    return list(iter_framed(path.read_bytes()))


@pytest.mark.parametrize("height", sorted(BIG_BLOCKS))
def test_big_block_merkle_pow_and_round_trip(height: int) -> None:
    raw = require_shared(f"btc/blocks/mainnet-{height}.raw").read_bytes()
    block = decode_block(raw)
    assert str(block.hash) == BIG_BLOCKS[height]
    assert block.hash == hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()
    assert block.merkle_root_valid
    assert check_proof_of_work(block.header, BTC)
    assert block.size == len(raw)
    assert block.weight <= 4_000_000
    assert encode_block(block) == raw
    for tx in block.transactions:
        assert sha256d(encode_tx(tx, include_witness=False)) == tx.txid
        assert sha256d(encode_tx(tx)) == tx.wtxid or not tx.has_witness
    # the coinbase pays the subsidy plus fees: at least the subsidy of its era
    assert block.transactions[0].is_coinbase
    assert not any(tx.is_coinbase for tx in block.transactions[1:])


def test_early_chain_links_and_meets_pow(early_blocks: list[bytes]) -> None:
    assert len(early_blocks) == 439
    prev = b"\x00" * 32
    for raw in early_blocks:
        block = decode_block(raw)
        assert block.header.prev_hash == prev
        assert block.merkle_root_valid
        assert check_proof_of_work(block.header, BTC)
        assert encode_block(block) == raw
        prev = block.hash


def test_first_bitcoin_transfer(early_blocks: list[bytes]) -> None:
    block = decode_block(early_blocks[170])
    tx = block.transactions[1]
    assert str(tx.txid) == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    assert [o.value for o in tx.outputs] == [10 * 10**8, 40 * 10**8]
    assert all(o.script_type is ScriptType.PUBKEY for o in tx.outputs)
    # p2pk outputs are attributed to the p2pkh address of their key (docs/adr/0002)
    assert tx.outputs[0].address == "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
    assert tx.outputs[1].address == "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
    spent = tx.inputs[0]
    assert str(spent.prev_txid) == (
        "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
    )
    assert spent.prev_vout == 0


def test_genesis_address() -> None:
    raw = require_shared("btc/blocks/mainnet-000000-000438.blk").read_bytes()
    genesis = decode_block(next(iter_framed(raw)))
    assert str(genesis.hash) == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert genesis.transactions[0].outputs[0].address == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_one_megabyte_transaction() -> None:
    raw = require_shared("btc/blocks/mainnet-tx-bb41a757.raw").read_bytes()
    tx = decode_tx(raw)
    assert str(tx.txid) == "bb41a757f405890fb0f5856228e23b715702d714d59bf2b1feb70d8b2b4e3e08"
    assert len(tx.inputs) == 5569
    assert tx.size == len(raw) == 999_657
    assert encode_tx(tx) == raw


def test_bip69_transaction_from_hex() -> None:
    text = require_shared("btc/blocks/mainnet-tx-bip69-1.hex").read_text()
    tx = decode_tx(text)
    assert str(tx.txid).startswith("0a6a357e")
    assert str(tx.txid).endswith("c4c3")
    assert (len(tx.inputs), len(tx.outputs)) == (17, 2)
    assert encode_tx(tx).hex() == text.strip()


def test_ofac_listed_payment_in_574200() -> None:
    raw = require_shared("btc/blocks/mainnet-574200.raw").read_bytes()
    block = decode_block(raw)
    tx = next(t for t in block.transactions if str(t.txid).startswith("41f366c2"))
    paid = [o for o in tx.outputs if o.address == "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"]
    assert [o.value for o in paid] == [38_796_959]  # "0.388 BTC"; merkle-proven bytes
