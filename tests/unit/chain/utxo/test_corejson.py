"""Core JSON rendering equals Bitcoin Core's own decoding, field by field.

Reference outputs: the recorded ``getblock <hash> 2`` answers of a Bitcoin Core node for blocks
0-100 (the blocks themselves come from the shared blk file), ``getrawtransaction`` answers of
nodes, and a segwit ``getrawtransaction`` answer quoted below.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from cointrail import decode_block, decode_tx
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.corejson import (
    INPUT_CHARSET,
    add_checksum,
    amount_to_decimal,
    block_to_core_json,
    descriptor_checksum,
    difficulty,
    dumps,
    is_valid_signature_encoding,
    op_name,
    script_pubkey_json,
    script_to_asm,
    tx_to_core_json,
    xonly_pubkey_valid,
)
from cointrail.chain.utxo.tx import make_output
from cointrail.errors import InputError
from tests.support.data import require_shared

BTC = get_chain("bitcoin", "mainnet")
BCH = get_chain("bitcoin-cash", "mainnet")

CASSETTE = "btc/rpc/bitcoin-core-getblock-0-100-and-909536.cassette.yaml"
EARLY_BLOCKS = "btc/blocks/mainnet-000000-000438.blk"
# fields of getblock that need the node's chain state; "target" is not genuine in the cassette
CHAIN_CONTEXT = {"confirmations", "mediantime", "chainwork", "nextblockhash", "target"}
TX_CHAIN_CONTEXT = {"blockhash", "confirmations", "time", "blocktime", "fee"}


def strip_additions(document: dict[str, Any]) -> dict[str, Any]:
    """A tx document without cointrail's additions (value_sat, cointrail_address)."""
    doc: dict[str, Any] = json.loads(dumps(document), parse_float=Decimal)
    for out in doc["vout"]:
        del out["value_sat"]
        out["scriptPubKey"].pop("cointrail_address", None)
    return doc


# --------------------------------------------------------------------------- recorded node data


@pytest.fixture(scope="module")
def core_blocks() -> dict[int, dict[str, Any]]:
    """getblock answers by height, from the recorded node session (amounts as Decimal)."""
    yaml = pytest.importorskip("yaml")
    recorded = yaml.safe_load(require_shared(CASSETTE).read_text())
    by_height: dict[int, dict[str, Any]] = {}
    for interaction in recorded["interactions"]:
        requests = json.loads(interaction["request"]["body"])
        answers = json.loads(interaction["response"]["body"]["string"], parse_float=Decimal)
        for request, answer in zip(requests, answers, strict=True):
            if request["method"] == "getblock":
                result = answer["result"]
                verbosity = request["params"][1] if len(request["params"]) > 1 else 1
                by_height[result["height"]] = {"verbosity": verbosity, "result": result}
    return by_height


@pytest.fixture(scope="module")
def raw_blocks() -> list[bytes]:
    data = require_shared(EARLY_BLOCKS).read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == BTC.magic
        (length,) = struct.unpack_from("<I", data, pos + 4)
        blocks.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def test_cassette_holds_blocks_0_to_100_at_verbosity_2(
    core_blocks: dict[int, dict[str, Any]],
) -> None:
    verbose = sorted(h for h, entry in core_blocks.items() if entry["verbosity"] == 2)
    assert verbose == list(range(101))
    assert core_blocks[909536]["verbosity"] == 1  # txids only: nothing to compare it with


@pytest.mark.parametrize("height", range(101))
def test_block_equals_core_getblock_2(
    height: int, core_blocks: dict[int, dict[str, Any]], raw_blocks: list[bytes]
) -> None:
    core = {k: v for k, v in core_blocks[height]["result"].items() if k not in CHAIN_CONTEXT}
    block = decode_block(raw_blocks[height])
    ours = block_to_core_json(block, BTC, height=height)

    assert set(ours) - set(core) == {"target"}
    assert ours["target"] == f"{block.header.target:064x}"
    core_txs, our_txs = core.pop("tx"), ours.pop("tx")
    del ours["target"]
    assert ours == core  # header fields, sizes, difficulty (1 == 1.0), previousblockhash
    assert len(our_txs) == len(core_txs) == ours["nTx"]
    for core_tx, our_tx in zip(core_txs, our_txs, strict=True):
        assert strip_additions(our_tx) == core_tx
        assert list(our_tx) == list(core_tx)  # Core's key order
        for out, core_out in zip(our_tx["vout"], core_tx["vout"], strict=True):
            assert out["value"] == core_out["value"]
            assert out["value_sat"] == int(core_out["value"] * 100_000_000)
            assert list(strip_spk(out["scriptPubKey"])) == list(core_out["scriptPubKey"])


def strip_spk(spk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spk.items() if k != "cointrail_address"}


def test_genesis_specifics(raw_blocks: list[bytes]) -> None:
    doc = block_to_core_json(decode_block(raw_blocks[0]), BTC)
    assert "height" not in doc and "previousblockhash" not in doc
    spk = doc["tx"][0]["vout"][0]["scriptPubKey"]
    assert spk["type"] == "pubkey" and "address" not in spk
    assert spk["cointrail_address"] == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    assert spk["desc"].endswith("#vlz6ztea")
    assert '"value": 50.00000000,' in dumps(doc)


def test_difficulty_of_a_recent_block(core_blocks: dict[int, dict[str, Any]]) -> None:
    core = core_blocks[909536]["result"]
    bits = int(core["bits"], 16)
    assert difficulty(bits) == float(core["difficulty"])  # 129435235580344.8
    assert f"{bits:08x}" == core["bits"]


# -------------------------------------------------------------------- getrawtransaction answers


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("ab188e2ae90a6e54dad6200f0d2ef188b723d2b393bbd01e65d753058afcba62", BTC),
        ("59d2780701c8352ad77c026652d67ea596fe4e9316580f02c171e2137fa91578", BCH),
    ],
)
def test_transaction_equals_getrawtransaction(name: str, spec: Any) -> None:
    core = json.loads(require_shared(f"btc/rpc/{name}.json").read_text(), parse_float=Decimal)
    ours = tx_to_core_json(decode_tx(core["hex"], spec), spec)
    for key in ("txid", "hash", "version", "size", "vsize", "weight", "locktime", "hex"):
        if key in core:
            assert ours[key] == core[key], key
    assert ours["vin"] == core["vin"]  # scriptSig asm with sighash decoding, exactly
    assert len(ours["vout"]) == len(core["vout"])
    for out, core_out in zip(ours["vout"], core["vout"], strict=True):
        assert out["value"] == core_out["value"] and out["n"] == core_out["n"]
        spk, core_spk = out["scriptPubKey"], core_out["scriptPubKey"]
        for key in ("asm", "hex", "type", "desc", "address"):
            if key in core_spk:
                assert spk[key] == core_spk[key], key
        # these nodes predate "address"; they list the one address in "addresses"
        if "addresses" in core_spk:
            assert core_spk["addresses"] == [spk["address"]]
        else:
            assert "address" not in spk


# A Bitcoin Core ``getrawtransaction <txid> true`` answer (mainnet, June 2023) for a segwit
# transaction with bare multisig outputs; chain-context fields removed.
SEGWIT_TX_CORE = {
    "txid": "50aeb77245a9483a5b077e4e7506c331dc2f628c22046e7d2b4c6ad6c6236ae1",
    "hash": "d045be2dc4647d92c1327fbd5572e6c7024f00f1e991b833f38cbdfb1a19577c",
    "version": 2,
    "size": 451,
    "vsize": 369,
    "weight": 1474,
    "locktime": 0,
    "vin": [
        {
            "txid": "6005ee8cc02e528e20c8e5ff71191723b0260391020862a03587a985f813dabe",
            "vout": 2,
            "scriptSig": {"asm": "", "hex": ""},
            "txinwitness": [
                "3045022100bd8c27473a5a82cc9085af4fd530ffbcb8642fda04689ac27ecefa01287f54e502"
                "2040af2daafaa1bedd6f80ee9d751cc88c12de8f8e65b33222c432d066c8cecbd801",
                "0314beffca49f214014cccdc0e1f7259aa1a5eeaaa34da1a4fd807e16fea3a86b0",
            ],
            "sequence": 4294967295,
        }
    ],
    "vout": [
        {
            "value": Decimal("0.00000555"),
            "n": 0,
            "scriptPubKey": {
                "asm": "0 afdcc32a2778ebd36c4859c7301bb4c32cb59f93",
                "desc": "addr(bc1q4lwvx2380r4axmzgt8rnqxa5cvktt8unqlnka6)#3yzckyj0",
                "hex": "0014afdcc32a2778ebd36c4859c7301bb4c32cb59f93",
                "address": "bc1q4lwvx2380r4axmzgt8rnqxa5cvktt8unqlnka6",
                "type": "witness_v0_keyhash",
            },
        },
        {
            "value": Decimal("0.00000888"),
            "n": 1,
            "scriptPubKey": {
                "asm": "1 03c46b73fe2ff939bea5d0a577950dc8876e863bed11c887d681417dfd70533e51 "
                "039036c8182c70770f8f6bd702a25c7179bfff1ccb3a844297a717226b88b976cc "
                "020202020202020202020202020202020202020202020202020202020202020202 "
                "3 OP_CHECKMULTISIG",
                "desc": "multi(1,"
                "03c46b73fe2ff939bea5d0a577950dc8876e863bed11c887d681417dfd70533e51,"
                "039036c8182c70770f8f6bd702a25c7179bfff1ccb3a844297a717226b88b976cc,"
                "020202020202020202020202020202020202020202020202020202020202020202)#jjleg3k0",
                "hex": "512103c46b73fe2ff939bea5d0a577950dc8876e863bed11c887d681417dfd70533e51"
                "21039036c8182c70770f8f6bd702a25c7179bfff1ccb3a844297a717226b88b976cc"
                "2102020202020202020202020202020202020202020202020202020202020202020253ae",
                "type": "multisig",
            },
        },
        {
            "value": Decimal("0.00000888"),
            "n": 2,
            "scriptPubKey": {
                "asm": "1 02dc054e58b755f233295d2a8759a3e4cbf678619d8e75379e7989046dbce16be3 "
                "02932b35a45d21395ac8bb54b8f9dae3fd2dbc309c24e550cf2211fe6aa897e5ca "
                "020202020202020202020202020202020202020202020202020202020202020202 "
                "3 OP_CHECKMULTISIG",
                "desc": "multi(1,"
                "02dc054e58b755f233295d2a8759a3e4cbf678619d8e75379e7989046dbce16be3,"
                "02932b35a45d21395ac8bb54b8f9dae3fd2dbc309c24e550cf2211fe6aa897e5ca,"
                "020202020202020202020202020202020202020202020202020202020202020202)#x8agrm2s",
                "hex": "512102dc054e58b755f233295d2a8759a3e4cbf678619d8e75379e7989046dbce16be3"
                "2102932b35a45d21395ac8bb54b8f9dae3fd2dbc309c24e550cf2211fe6aa897e5ca"
                "2102020202020202020202020202020202020202020202020202020202020202020253ae",
                "type": "multisig",
            },
        },
        {
            "value": Decimal("0.00345194"),
            "n": 3,
            "scriptPubKey": {
                "asm": "0 cc1d6448d6879b3e260829d9a31717beb772186e",
                "desc": "addr(bc1qeswkgjxks7dnufsg98v6x9chh6mhyxrwrvdktf)#km4m4l32",
                "hex": "0014cc1d6448d6879b3e260829d9a31717beb772186e",
                "address": "bc1qeswkgjxks7dnufsg98v6x9chh6mhyxrwrvdktf",
                "type": "witness_v0_keyhash",
            },
        },
    ],
    "hex": (
        "02000000000101beda13f885a98735a0620802910326b023171971ffe5c8208e522ec08cee0560020000"
        "0000ffffffff042b02000000000000160014afdcc32a2778ebd36c4859c7301bb4c32cb59f9378030000"
        "0000000069512103c46b73fe2ff939bea5d0a577950dc8876e863bed11c887d681417dfd70533e512103"
        "9036c8182c70770f8f6bd702a25c7179bfff1ccb3a844297a717226b88b976cc21020202020202020202"
        "02020202020202020202020202020202020202020202020253ae780300000000000069512102dc054e58"
        "b755f233295d2a8759a3e4cbf678619d8e75379e7989046dbce16be32102932b35a45d21395ac8bb54b8"
        "f9dae3fd2dbc309c24e550cf2211fe6aa897e5ca21020202020202020202020202020202020202020202"
        "02020202020202020202020253ae6a44050000000000160014cc1d6448d6879b3e260829d9a31717beb7"
        "72186e02483045022100bd8c27473a5a82cc9085af4fd530ffbcb8642fda04689ac27ecefa01287f54e5"
        "022040af2daafaa1bedd6f80ee9d751cc88c12de8f8e65b33222c432d066c8cecbd801210314beffca49"
        "f214014cccdc0e1f7259aa1a5eeaaa34da1a4fd807e16fea3a86b000000000"
    ),
}


def test_segwit_multisig_transaction_equals_core() -> None:
    ours = tx_to_core_json(decode_tx(str(SEGWIT_TX_CORE["hex"])), BTC)
    assert strip_additions(ours) == SEGWIT_TX_CORE
    assert [o["value_sat"] for o in ours["vout"]] == [555, 888, 888, 345194]
    without_hex = tx_to_core_json(decode_tx(str(SEGWIT_TX_CORE["hex"])), BTC, include_hex=False)
    assert "hex" not in without_hex  # decoderawtransaction


# --------------------------------------------------------------------------------------- asm

# A real signature (first input of ab188e2a...) with hashtype byte 01
SIG = bytes.fromhex(
    "3045022100fac4ba8fc1fc80fe0a27ec65cdb58192ada12fe12729b04d30d1ee2a3291367102205e273e"
    "02ddafe42e4de6146b378608c25cd8a2937ccfb7252ae64f27d0ed6e5e01"
)
PUBKEY = bytes.fromhex("02dd6a4641ad9f327643144abc6bca8fdf5f94f5d430de908a9253b5a18c055a7b")


def push(data: bytes) -> bytes:
    assert len(data) < 0x4C
    return bytes([len(data)]) + data


@pytest.mark.parametrize(
    ("hashtype", "shown"),
    [
        (0x01, "[ALL]"),
        (0x02, "[NONE]"),
        (0x03, "[SINGLE]"),
        (0x81, "[ALL|ANYONECANPAY]"),
        (0x82, "[NONE|ANYONECANPAY]"),
        (0x83, "[SINGLE|ANYONECANPAY]"),
    ],
)
def test_sighash_decoding(hashtype: int, shown: str) -> None:
    sig = SIG[:-1] + bytes([hashtype])
    script = push(sig) + push(PUBKEY)
    assert script_to_asm(script, attempt_sighash_decode=True) == (
        f"{SIG[:-1].hex()}{shown} {PUBKEY.hex()}"
    )
    assert script_to_asm(script) == f"{sig.hex()} {PUBKEY.hex()}"  # scriptPubKey: no decode


@pytest.mark.parametrize("hashtype", [0x00, 0x04, 0x41, 0x80, 0x84, 0xC1])
def test_undefined_hashtype_is_shown_as_hex(hashtype: int) -> None:
    sig = SIG[:-1] + bytes([hashtype])
    assert script_to_asm(push(sig), attempt_sighash_decode=True) == sig.hex()


def test_no_sighash_decoding_in_unspendable_or_non_der_data() -> None:
    assert script_to_asm(b"\x6a" + push(SIG), True) == f"OP_RETURN {SIG.hex()}"
    not_der = b"\x31" + SIG[1:]
    assert script_to_asm(push(not_der), True) == not_der.hex()
    assert script_to_asm(b"\x00" * 10_001, True).startswith("0 0 0")


def test_signature_encoding_rules() -> None:
    assert is_valid_signature_encoding(SIG)
    assert not is_valid_signature_encoding(SIG[:8])  # too short
    assert not is_valid_signature_encoding(SIG + b"\x00")  # length byte disagrees
    assert not is_valid_signature_encoding(bytes.fromhex("300602018102010101"))  # R < 0
    assert not is_valid_signature_encoding(bytes.fromhex("30070201010202000101"))  # S padded
    assert not is_valid_signature_encoding(bytes.fromhex("300602000102010101"))  # R empty
    assert is_valid_signature_encoding(bytes.fromhex("300602010102010101"))  # minimal


@pytest.mark.parametrize(
    ("script_hex", "asm"),
    [
        ("", ""),
        ("00", "0"),
        ("4f", "-1"),
        ("51", "1"),
        ("60", "16"),
        ("0181", "-1"),
        ("0180", "0"),  # negative zero
        ("02ff00", "255"),
        ("04ffffff7f", "2147483647"),
        ("04ffffffff", "-2147483647"),
        ("050102030405", "0102030405"),
        ("4c0101", "1"),  # OP_PUSHDATA1 push shows its data
        ("4d0100ff", "-127"),
        ("4e0100000001", "1"),
        ("50 61 62 b0 b1 b2 b9 ba", "OP_RESERVED OP_NOP OP_VER OP_NOP1 OP_CHECKLOCKTIMEVERIFY "
         "OP_CHECKSEQUENCEVERIFY OP_NOP10 OP_CHECKSIGADD"),
        ("bb fe ff", "OP_UNKNOWN OP_UNKNOWN OP_INVALIDOPCODE"),
        ("76a914" + "11" * 20 + "88ac",
         f"OP_DUP OP_HASH160 {'11' * 20} OP_EQUALVERIFY OP_CHECKSIG"),
        ("4c", "[error]"),
        ("4d01", "[error]"),
        ("4e010000", "[error]"),
        ("050102", "[error]"),
        ("76 4c05 0102", "OP_DUP [error]"),
        ("51 05010203", "1 [error]"),
    ],
)
def test_script_to_asm(script_hex: str, asm: str) -> None:
    assert script_to_asm(bytes.fromhex(script_hex.replace(" ", ""))) == asm


def test_op_names() -> None:
    assert op_name(0x00) == "0"
    assert op_name(0x4C) == "OP_PUSHDATA1"
    assert op_name(0x87) == "OP_EQUAL"
    assert op_name(0xAE) == "OP_CHECKMULTISIG"
    assert op_name(0xC0) == "OP_UNKNOWN"
    assert [op_name(0x50 + n) for n in range(1, 17)] == [str(n) for n in range(1, 17)]


# ------------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize(
    "descriptor",
    [
        # pk() of the genesis output, from the recorded node session
        "pk(04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f3"
        "5504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f)#vlz6ztea",
        "addr(bc1q4lwvx2380r4axmzgt8rnqxa5cvktt8unqlnka6)#3yzckyj0",
        "addr(bc1pfeessrawgf)#d6x2lh3c",
        "rawtr(3b8b3ab1453eb47e2d4903b963776680e30863df3625d3e74292338ae7928da1)#tv35u9pg",
    ],
)
def test_descriptor_checksum_vectors(descriptor: str) -> None:
    body, checksum = descriptor.split("#")
    assert descriptor_checksum(body) == checksum
    assert add_checksum(body) == descriptor


def test_descriptor_checksum_rejects_foreign_characters() -> None:
    with pytest.raises(InputError, match="not allowed"):
        descriptor_checksum("addr(é)")


def test_descriptor_checksum_agrees_with_embit() -> None:
    checksum = pytest.importorskip("embit.descriptor.checksum")
    import random

    rng = random.Random(7)
    chars = INPUT_CHARSET.replace("#", "")
    for _ in range(500):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(1, 150)))
        assert add_checksum(text) == checksum.add_checksum(text)


def spk(script_hex: str, spec: Any = BTC) -> dict[str, Any]:
    return script_pubkey_json(make_output(spec, 0, 0, bytes.fromhex(script_hex)), spec)


def test_descriptors_by_script_type() -> None:
    x = "3b8b3ab1453eb47e2d4903b963776680e30863df3625d3e74292338ae7928da1"
    taproot = spk("5120" + x)
    assert taproot["desc"] == f"rawtr({x})#tv35u9pg"
    assert taproot["address"] == "bc1p8w9n4v298668ut2fqwukxamxsr3ssc7lxcja8e6zjgec4euj3ksswckxz6"
    # an x coordinate off the curve cannot be rawtr(): Core falls back to addr()
    off_curve = spk("5120" + "ff" * 32)
    assert off_curve["desc"].startswith("addr(bc1p") and off_curve["type"] == "witness_v1_taproot"
    anchor = spk("51024e73")
    assert anchor == {
        "asm": "1 29518",
        "desc": "addr(bc1pfeessrawgf)#d6x2lh3c",
        "hex": "51024e73",
        "address": "bc1pfeessrawgf",
        "type": "anchor",
    }
    p2sh = spk("a914" + "22" * 20 + "87")
    assert p2sh["desc"] == add_checksum(f"addr({p2sh['address']})")
    assert p2sh["address"].startswith("3")
    nulldata = spk("6a0401020304")
    assert nulldata["desc"] == add_checksum("raw(6a0401020304)")
    assert "address" not in nulldata and nulldata["asm"] == "OP_RETURN 67305985"
    nonstandard = spk("ac")
    assert nonstandard["desc"] == add_checksum("raw(ac)") and nonstandard["type"] == "nonstandard"
    future = spk("5210" + "33" * 16)
    assert future["type"] == "witness_unknown" and future["address"].startswith("bc1z")
    assert future["desc"] == add_checksum(f"addr({future['address']})")


def test_hybrid_keys_give_raw_descriptors() -> None:
    hybrid = "06" + "44" * 64
    p2pk = spk("41" + hybrid + "ac")
    assert p2pk["type"] == "pubkey" and "address" not in p2pk
    assert p2pk["desc"] == add_checksum(f"raw(41{hybrid}ac)")
    assert p2pk["cointrail_address"].startswith("1")  # attributed all the same
    compressed = "02" + "55" * 32
    multisig = spk(f"5121{compressed}41{hybrid}52ae")
    assert multisig["type"] == "multisig" and "address" not in multisig
    assert multisig["desc"].startswith("raw(")
    good = spk(f"5121{compressed}21{compressed}52ae")
    assert good["desc"] == add_checksum(f"multi(1,{compressed},{compressed})")
    assert "cointrail_address" not in good


def test_xonly_validity() -> None:
    generator_x = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    assert xonly_pubkey_valid(bytes.fromhex(generator_x))
    assert not xonly_pubkey_valid(b"\xff" * 32)
    assert not xonly_pubkey_valid(b"\x01" * 31)


# ---------------------------------------------------------------------------- amounts, output


@pytest.mark.parametrize(
    ("sat", "text"),
    [
        (0, "0.00000000"),
        (1, "0.00000001"),
        (600, "0.00000600"),
        (5_000_000_000, "50.00000000"),
        (2_100_000_000_000_000, "21000000.00000000"),
        (-1, "-0.00000001"),
        (-150_000_000, "-1.50000000"),
    ],
)
def test_amounts_print_like_core(sat: int, text: str) -> None:
    value = amount_to_decimal(sat)
    assert format(value, "f") == text
    assert dumps({"value": value}, indent=None) == f'{{"value":{text}}}'


def test_dumps() -> None:
    doc = {"a": [1, "x", None, True], "b": {}, "c": [], "d": 129435235580344.8, "e": 1.0}
    assert json.loads(dumps(doc)) == doc
    assert dumps(doc, indent=None) == (
        '{"a":[1,"x",null,true],"b":{},"c":[],"d":129435235580344.8,"e":1}'
    )
    assert dumps({"k": [1]}) == '{\n  "k": [\n    1\n  ]\n}'
    with pytest.raises(TypeError):
        dumps({"k": object()})


def test_version_fields_are_printed_unsigned_hex_and_tx_version_unsigned(
    raw_blocks: list[bytes],
) -> None:
    block = decode_block(raw_blocks[1])
    header = replace(block.header, version=-1)
    doc = block_to_core_json(replace(block, header=header), BTC)
    assert doc["version"] == -1 and doc["versionHex"] == "ffffffff"
    tx = replace(block.transactions[0], version=-1)
    assert tx_to_core_json(tx, BTC)["version"] == 0xFFFFFFFF  # uint32 since Core 28
