"""``cointrail decode``: real blocks and transactions in, one JSON document out; clean errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cointrail.interfaces.cli.main import app
from tests.support.data import require_shared

BLOCK_413567 = "0000000000000000025aff8be8a55df8f89c77296db6198f272d6577325d4069"
GENESIS = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
# a Bitcoin Core getrawtransaction answer: ab188e2a... (two p2pkh inputs, OP_RETURN output)
TX_JSON = "btc/rpc/ab188e2ae90a6e54dad6200f0d2ef188b723d2b393bbd01e65d753058afcba62.json"
# settings come from COINTRAIL_* variables too: keep the caller's environment out of the tests
CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None,
    "COINTRAIL_NETWORK": None,
    "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None,
}


def run(args: list[str], stdin: bytes | str | None = None) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart
    return runner.invoke(app, args, input=stdin, env=CLEAN_ENV)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, fragment: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def block_path() -> Path:
    return require_shared("btc/blocks/mainnet-413567.raw")


@pytest.fixture(scope="module")
def framed_path() -> Path:
    return require_shared("btc/blocks/mainnet-000000-000438.blk")


# ------------------------------------------------------------------------------------ blocks


def test_decode_block_file(block_path: Path) -> None:
    doc = ok_json(run(["decode", "block", str(block_path)]))
    assert doc["hash"] == BLOCK_413567
    assert doc["nTx"] == len(doc["tx"]) == 1557
    assert doc["size"] == block_path.stat().st_size
    assert "height" not in doc  # not known from one block alone
    assert all("value_sat" in out for tx in doc["tx"] for out in tx["vout"])
    assert all("hex" in tx for tx in doc["tx"])


def test_decode_block_stdin_raw_and_hex_agree(block_path: Path) -> None:
    raw = block_path.read_bytes()
    from_file = run(["decode", "block", str(block_path)])
    from_stdin = run(["decode", "block", "-"], stdin=raw)
    from_hex = run(["decode", "block", "-"], stdin=raw.hex() + "\n")
    assert from_file.exit_code == from_stdin.exit_code == from_hex.exit_code == 0
    assert from_stdin.stdout == from_file.stdout == from_hex.stdout


def test_decode_block_height_option_and_summary(block_path: Path) -> None:
    doc = ok_json(run(["decode", "block", "--height", "413567", str(block_path)]))
    assert doc["height"] == 413567
    summary = run(["decode", "block", "--summary", str(block_path)])
    assert summary.exit_code == 0
    assert "1557" in summary.stdout


def test_decode_framed_file(framed_path: Path) -> None:
    docs = ok_json(run(["decode", "block", "--framed", str(framed_path)]))
    assert isinstance(docs, list) and len(docs) == 439
    assert docs[0]["hash"] == GENESIS
    assert [d["height"] for d in docs] == list(range(439))
    assert all(d["previousblockhash"] == p["hash"] for p, d in itertools.pairwise(docs))


def test_decode_framed_jsonl_and_stdin(framed_path: Path) -> None:
    result = run(["decode", "block", "--framed", "--jsonl", str(framed_path)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 439
    assert json.loads(lines[438])["height"] == 438
    piped = run(["decode", "block", "--framed", "-"], stdin=framed_path.read_bytes())
    assert len(ok_json(piped)) == 439


def test_framed_file_without_framed_flag_says_so(framed_path: Path) -> None:
    assert_one_line_error(run(["decode", "block", str(framed_path)]), "--framed")


def test_garbage_block(tmp_path: Path) -> None:
    bad = tmp_path / "bad.raw"
    bad.write_bytes(bytes(range(256)) * 3)
    assert_one_line_error(run(["decode", "block", str(bad)]), "byte offset")
    assert_one_line_error(run(["decode", "block", "-"], stdin=b"\x01\x02\x03"), "truncated")
    assert_one_line_error(run(["decode", "block", "-"], stdin="abc\n"), "even number")
    assert_one_line_error(run(["decode", "block", "-"], stdin=b""), "empty")


def test_missing_file() -> None:
    assert_one_line_error(run(["decode", "block", "no/such/block.raw"]), "does not exist")
    assert_one_line_error(
        run(["decode", "block", "--framed", "no/such/blk00000.dat"]), "does not exist"
    )
    assert_one_line_error(run(["decode", "tx", "no/such/tx.hex"]), "neither")


def test_debug_shows_the_traceback() -> None:
    result = run(["--debug", "decode", "block", "-"], stdin=b"\x01\x02\x03")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_unknown_chain() -> None:
    assert_one_line_error(run(["--chain", "nocoin", "decode", "tx", "00"]), "unknown chain")


def test_version() -> None:
    result = run(["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("cointrail ")


# ------------------------------------------------------------------------------ transactions


def test_decode_tx_hex_argument() -> None:
    core = json.loads(require_shared(TX_JSON).read_text())
    doc = ok_json(run(["decode", "tx", core["hex"]]))
    assert doc["txid"] == core["txid"]
    assert "hex" not in doc  # as decoderawtransaction
    assert [i["scriptSig"]["asm"] for i in doc["vin"]] == [
        i["scriptSig"]["asm"] for i in core["vin"]
    ]
    assert [o["value_sat"] for o in doc["vout"]] == [0, 600, 5248496, 600]


def test_decode_tx_file_and_stdin() -> None:
    hex_file = require_shared("btc/blocks/mainnet-tx-bip69-1.hex")
    from_file = ok_json(run(["decode", "tx", str(hex_file)]))
    from_stdin = ok_json(run(["decode", "tx", "-"], stdin=hex_file.read_bytes()))
    assert from_file == from_stdin
    raw_file = require_shared("btc/blocks/mainnet-tx-bb41a757.raw")
    assert ok_json(run(["decode", "tx", str(raw_file)]))["txid"].startswith("bb41a757")


def test_decode_tx_summary() -> None:
    core = json.loads(require_shared(TX_JSON).read_text())
    result = run(["decode", "tx", "--summary", core["hex"]])
    assert result.exit_code == 0
    assert core["txid"] in result.stdout


def test_garbage_tx() -> None:
    assert_one_line_error(run(["decode", "tx", "not-hex!"]), "neither")
    assert_one_line_error(run(["decode", "tx", "0100"]), "truncated")
    assert_one_line_error(run(["decode", "tx", "-"], stdin="zz top\n"), "byte offset")
