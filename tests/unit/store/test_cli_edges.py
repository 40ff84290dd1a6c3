"""The store commands at their edges: a store path that is a file, malformed node URLs and
cookie files, empty and unreadable chain databases, out-of-range options, the
``--confirmations`` option, Ctrl-C in the middle of an ingest, and ``show`` inputs. Each ends in
one ``error:`` line with the right exit code, or a plain statement of what is there."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cointrail import get_chain
from cointrail.chain.rpc import RpcClient
from cointrail.errors import InputError
from cointrail.store.duck import open_chain
from tests.support.cli import ok_json, one_error, run
from tests.support.data import REPO_ROOT, require_shared
from tests.support.process import wait_for

BLK = "btc/blocks/mainnet-000000-000438.blk"
BTC = get_chain("bitcoin", "mainnet")
TIP = 438
TXS, OUTPUTS, INPUTS = 446, 451, 7  # blocks 0-438
BLOCK_9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
BLOCK_9_SCRIPT_SIG = "04ffff001d0134"  # Core's getrawtransaction: vin[0].coinbase
INTERRUPTED = re.compile(
    r"interrupted at height (\d+) \(the store is consistent there\); run the same command "
    r"again to resume"
)
HOLD_WRITER = """
import sys
from cointrail.store.duck import open_chain
store = open_chain(sys.argv[1], "bitcoin", "mainnet")
print("ready", flush=True)
sys.stdin.read()  # hold the store until the test closes stdin
store.close()
"""
# The real command, which touches a file once block `at` is added (the test's cue to press
# Ctrl-C) and takes 10 ms more for each block after it, so the ingest is still under way then.
ANNOUNCING_CLI = """
import sys
import time
from pathlib import Path
from cointrail.interfaces.cli.main import app
from cointrail.store import ingest

ready, at = Path(sys.argv[1]), int(sys.argv[2])
add_block = ingest.UtxoIngestor.add_block

def announce(self, block):
    add_block(self, block)
    if self.height == at:
        ready.touch()
    elif self.height > at:
        time.sleep(0.01)

ingest.UtxoIngestor.add_block = announce
app(args=sys.argv[3:], prog_name="cointrail")
"""


# --- helpers ----------------------------------------------------------------------------------


def read_frames(path: Path) -> list[bytes]:
    data, frames, pos = path.read_bytes(), [], 0
    while pos < len(data):
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        frames.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return frames


def assert_consistent_at(store_dir: Path, height: int) -> None:
    """The store holds blocks 0..`height` and exactly their rows, with the tip recorded."""
    with open_chain(store_dir, "bitcoin", "mainnet", read_only=True) as store:
        tip = store.tip()
        assert tip is not None and tip.height == height
        assert store.state()["tip_height"] == str(height)
        (blocks, in_blocks, top), = store.query(
            "SELECT count(*), sum(tx_count), max(height) FROM blocks")
        assert (blocks, top) == (height + 1, height)
        (txs, next_tx, tx_top), = store.query(
            "SELECT count(*), max(tx_id) + 1, max(height) FROM txs")
        assert txs == in_blocks == next_tx and tx_top == height
        for table in ("outputs", "inputs", "coinbases"):
            (above,), = store.query(f"SELECT count(*) FROM {table} WHERE tx_id >= ?", [txs])
            assert above == 0, table


def subprocess_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}


def cli_process(args: list[str], announce: tuple[Path, int] | None = None,
                ) -> subprocess.Popen[str]:
    """``cointrail ARGS`` in its own process (with `announce`: touching a file at a height)."""
    if announce is None:
        command = [sys.executable, "-m", "cointrail.interfaces.cli.main", *args]
    else:
        command = [sys.executable, "-c", ANNOUNCING_CLI, str(announce[0]), str(announce[1]),
                   *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(), cwd=REPO_ROOT)


def interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C, twice (the second is ignored while the command stops); its stdout and stderr."""
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def interrupted_height(returncode: int, stdout: str, stderr: str) -> int:
    assert returncode == 130, (stdout, stderr)
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    match = INTERRUPTED.fullmatch(lines[0])
    assert match, lines[0]
    return int(match.group(1))


class FakeNode:
    """A Bitcoin Core JSON-RPC node on 127.0.0.1 serving real mainnet blocks 0-438 (no REST):
    enough for ``cointrail sync``. It counts what it served, so a test can act mid-sync."""

    def __init__(self, raws: list[bytes]) -> None:
        from cointrail.chain.utxo.hashes import sha256d

        self.raws = raws
        self.hashes = [sha256d(raw[:80])[::-1].hex() for raw in raws]
        self.by_hash = {h: raw for h, raw in zip(self.hashes, raws, strict=True)}
        self.highest_served = -1
        self.polls_at_tip = 0
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._send(404, b"REST is not served")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                calls = request if isinstance(request, list) else [request]
                answers = [node.answer(call) for call in calls]
                self._send(200, json.dumps(answers if isinstance(request, list)
                                           else answers[0]).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://u:p@127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call["params"]
        result: Any
        if method == "getblockchaininfo":
            result = {"chain": "main", "blocks": TIP}
        elif method == "getblockcount":
            if self.highest_served == TIP:
                self.polls_at_tip += 1
            result = TIP
        elif method == "getbestblockhash":  # what --follow polls while it waits at the tip
            if self.highest_served == TIP:
                self.polls_at_tip += 1
            result = self.hashes[TIP]
        elif method == "getblockhash":
            result = self.hashes[params[0]]
        elif method == "getblock":
            raw = self.by_hash[params[0]]
            self.highest_served = max(self.highest_served, self.hashes.index(params[0]))
            result = raw.hex()
        else:
            return {"id": call["id"], "result": None,
                    "error": {"code": -32601, "message": "Method not found"}}
        return {"id": call["id"], "result": result, "error": None}

    def __enter__(self) -> FakeNode:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blk_path() -> Path:
    return require_shared(BLK)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory, blk_path: Path) -> Path:
    root = tmp_path_factory.mktemp("edges-store")
    ok_json(run(["--store", str(root), "ingest", "blkfiles", str(blk_path), "--json"]))
    return root


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "afile"
    path.write_text("hi\n")
    return path


@pytest.fixture
def node(blk_path: Path) -> Iterator[FakeNode]:
    with FakeNode(read_frames(blk_path)) as fake:
        yield fake


# --- 1. a store path that is a file -----------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["ingest", "blkfiles", "BLK"],
    ["ingest", "blkfiles", "BLK", "--json"],
    ["status"],
    ["status", "--json"],
    ["show", "block", "0"],
    ["show", "tx", BLOCK_9_COINBASE],
    ["sync", "--rpc", "http://127.0.0.1:9/"],
])
@pytest.mark.parametrize("below", [False, True])
def test_a_store_that_is_a_file_is_refused(
    a_file: Path, blk_path: Path, command: list[str], below: bool
) -> None:
    store = a_file / "sub" if below else a_file
    args = [str(blk_path) if arg == "BLK" else arg for arg in command]
    line = one_error(run(["--store", str(store), *args]), f"store {store} is not a directory")
    assert "pass --store a directory" in line
    if below:
        assert f"{a_file} is a file" in line
    assert a_file.read_text() == "hi\n"


# --- 2. node URLs and cookie files ------------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), [
    ("http://[::1", "Invalid IPv6 URL"),
    ("http://u:secret@127.0.0.1:99999/", "Port out of range"),
    ("http://u:secret@127.0.0.1:port/", "Port could not be cast"),
    ("http://u:secret@127.0.0.1:0/", "port 0"),
    ("ftp://u:secret@127.0.0.1:21/", "not an http(s) URL"),
    ("127.0.0.1:8332", "not an http(s) URL"),
    ("http:///path", "not an http(s) URL"),
])
def test_a_malformed_node_url_is_an_input_error(tmp_path: Path, url: str, problem: str) -> None:
    store = tmp_path / "s"
    args = ["--chain", "litecoin", "--network", "regtest", "--store", str(store), "sync",
            "--rpc", url]
    line = one_error(run(args), problem)
    assert "node URL" in line and "http://user:password@127.0.0.1:8332/" in line
    assert "secret" not in line  # credentials never reach a message
    assert not store.exists()  # refused before the store is created
    with pytest.raises(InputError, match=re.escape(problem)):
        RpcClient(url)


@pytest.mark.parametrize("content", ["nocolon", "", ":password", "__cookie__:", "a:b\nc:d"])
def test_a_malformed_cookie_file_says_so(tmp_path: Path, content: str) -> None:
    cookie = tmp_path / ".cookie"
    cookie.write_text(content)
    store = tmp_path / "s"
    result = run(["--store", str(store), "sync", "--rpc", "http://127.0.0.1:9/",
                  "--rpc-cookie", str(cookie)])
    line = one_error(result, f"the cookie file {cookie} is malformed")
    assert "user:password" in line and "401" not in line
    assert not store.exists()


def test_a_missing_cookie_file_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "no.cookie"
    result = run(["--store", str(tmp_path / "s"), "sync", "--rpc", "http://127.0.0.1:9/",
                  "--rpc-cookie", str(missing)])
    one_error(result, f"cannot read the cookie file {missing}: No such file or directory")


def test_a_good_cookie_file_gives_the_credentials(tmp_path: Path) -> None:
    from cointrail.chain.rpc import read_cookie

    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:ab:cd\n")  # the password is everything after the first colon
    assert read_cookie(str(cookie)) == ("__cookie__", "ab:cd")


def test_an_ipv6_node_url_keeps_its_brackets() -> None:
    with RpcClient("http://user:pw@[::1]:18443/wallet/w") as client:
        assert client.url == "http://[::1]:18443/wallet/w"


# --- 3. empty chain databases and empty block files -------------------------------------------


def test_status_of_a_chain_without_blocks(tmp_path: Path) -> None:
    one_error(run(["--store", str(tmp_path), "ingest", "blkfiles", str(tmp_path / "none")]),
              "does not exist")
    assert list(tmp_path.iterdir()) == []  # a wrong path creates no database
    open_chain(tmp_path, "bitcoin", "mainnet").close()  # as a first ingest that failed leaves it
    result = run(["--store", str(tmp_path), "status"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "bitcoin/mainnet: no blocks yet"
    (chain,) = ok_json(run(["--store", str(tmp_path), "status", "--json"]))["chains"]
    assert chain["blocks"] == 0
    assert chain["tip_height"] is chain["tip_hash"] is chain["final_height"] is None


@pytest.mark.parametrize("content", [b"", bytes(4096)])
def test_ingest_of_a_file_without_blocks_says_so(tmp_path: Path, content: bytes) -> None:
    empty = tmp_path / "blk00000.dat"
    empty.write_bytes(content)
    result = run(["--store", str(tmp_path / "s"), "ingest", "blkfiles", str(empty), "--json"])
    doc = ok_json(result)
    assert doc["tip_height"] is None and doc["tip_hash"] is None
    assert doc["blocks_added"] == 0
    (warning,) = doc["warnings"]
    assert f"no bitcoin/mainnet block in {empty}" in warning
    assert result.stderr.strip() == f"warning: {warning}"


def test_an_empty_file_says_so_over_a_store_that_holds_blocks(
    tmp_path: Path, blk_path: Path
) -> None:
    store = tmp_path / "s"
    ok_json(run(["--store", str(store), "ingest", "blkfiles", str(blk_path), "--json"]))
    empty = tmp_path / "blk00000.dat"
    empty.write_bytes(b"")
    doc = ok_json(run(["--store", str(store), "ingest", "blkfiles", str(empty), "--json"]))
    assert (doc["tip_height"], doc["blocks_added"]) == (438, 0)
    (warning,) = doc["warnings"]
    assert f"no bitcoin/mainnet block in {empty}" in warning


# --- 4. one unreadable chain database among good ones ------------------------------------------


@pytest.fixture
def mixed_store(tmp_path: Path, blk_path: Path) -> Path:
    root = tmp_path / "mixed"
    ok_json(run(["--store", str(root), "ingest", "blkfiles", str(blk_path), "--json"]))
    (root / "dogecoin-mainnet.duckdb").write_bytes(b"garbage " * 1000)
    return root


def test_status_json_lists_the_good_chains_and_the_bad_file(mixed_store: Path) -> None:
    result = run(["--store", str(mixed_store), "status", "--json"])
    assert result.exit_code == 1, result.stderr
    bitcoin, dogecoin = json.loads(result.stdout)["chains"]
    assert (bitcoin["chain"], bitcoin["tip_height"]) == ("bitcoin", TIP)
    assert "error" not in bitcoin
    bad = mixed_store / "dogecoin-mainnet.duckdb"
    assert (dogecoin["chain"], dogecoin["network"], dogecoin["path"]) == (
        "dogecoin", "mainnet", str(bad))
    assert "not a valid DuckDB database file" in dogecoin["error"]
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: {dogecoin['error']}"
    assert "move it away" in line


def test_status_text_lists_the_good_chains_and_the_bad_file(mixed_store: Path) -> None:
    result = run(["--store", str(mixed_store), "status"])
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith(f"bitcoin/mainnet tip {TIP} ")
    bad = mixed_store / "dogecoin-mainnet.duckdb"
    assert f"dogecoin/mainnet:cannotberead({bad})" in "".join(result.stdout.split())
    assert result.stderr.startswith("error: cannot open the store")


def test_status_reports_a_chain_in_use_as_a_warning(tmp_path: Path, blk_path: Path) -> None:
    ok_json(run(["--store", str(tmp_path), "ingest", "blkfiles", str(blk_path), "--json"]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=subprocess_env(), cwd=REPO_ROOT)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run(["--store", str(tmp_path), "status", "--json"])
        assert result.exit_code == 0, result.stderr  # an ingest running is no failure
        (chain,) = json.loads(result.stdout)["chains"]
        assert chain["in_use"] is True and str(holder.pid) in chain["error"]
        assert result.stderr.startswith("warning: ") and "in use" in result.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


# --- 5. out-of-range options and confirmations above the tip ----------------------------------


@pytest.mark.parametrize("value", ["0", "-5"])
def test_batch_txs_below_one_is_refused(tmp_path: Path, blk_path: Path, value: str) -> None:
    store = tmp_path / "s"
    one_error(run(["--store", str(store), "ingest", "blkfiles", str(blk_path),
                   "--batch-txs", value]), f"--batch-txs {value}: must be 1 or more")
    one_error(run(["--store", str(store), "sync", "--rpc", "http://127.0.0.1:9/",
                   "--batch-txs", value]), f"--batch-txs {value}: must be 1 or more")
    one_error(run(["--store", str(store), "sync", "--rpc", "http://127.0.0.1:9/",
                   "--batch-blocks", value]), f"--batch-blocks {value}: must be 1 or more")
    assert not store.exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_poll_must_be_positive(tmp_path: Path, value: str) -> None:
    one_error(run(["--store", str(tmp_path / "s"), "sync", "--rpc", "http://127.0.0.1:9/",
                   "--follow", "--poll", value]), "must be a positive number of seconds")


def test_confirmations_above_the_tip_leave_nothing_final(store_dir: Path) -> None:
    env = {"COINTRAIL_CONFIRMATIONS": "1000"}
    (chain,) = ok_json(run(["--store", str(store_dir), "status", "--json"], env))["chains"]
    assert (chain["confirmations"], chain["final_height"]) == (1000, None)
    (chain,) = ok_json(run(["--store", str(store_dir), "status", "--json"],
                           {"COINTRAIL_CONFIRMATIONS": str(TIP)}))["chains"]
    assert chain["final_height"] == 0  # genesis has 438 blocks above it
    result = run(["--store", str(store_dir), "status"], env)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "nothing final yet (1000 confirmations needed)" in text
    assert "None" not in text and "-1" not in text


# --- 6. the --confirmations option; the tip's age in the text ---------------------------------


def test_the_confirmations_option(store_dir: Path) -> None:
    def final(args: list[str], env: Mapping[str, str | None] | None = None) -> Any:
        (chain,) = ok_json(run([*args, "--store", str(store_dir), "status", "--json"],
                               env))["chains"]
        return chain["confirmations"], chain["final_height"]

    assert final(["--confirmations", "100"]) == (100, TIP - 100)
    assert final(["--confirmations", "0"]) == (0, TIP)
    # the option beats the environment, which beats the default
    assert final(["--confirmations", "10"], {"COINTRAIL_CONFIRMATIONS": "20"}) == (10, TIP - 10)
    assert final([], {"COINTRAIL_CONFIRMATIONS": "20"}) == (20, TIP - 20)
    one_error(run(["--confirmations", "-1", "--store", str(store_dir), "status"]),
              "confirmations")


def test_status_text_shows_the_age_of_the_tip(store_dir: Path) -> None:
    (chain,) = ok_json(run(["--store", str(store_dir), "status", "--json"]))["chains"]
    years = int(chain["tip_age_seconds"] // (365.25 * 86400))
    assert years >= 15  # block 438 is from January 2009
    result = run(["--store", str(store_dir), "status"])
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert text == (f"bitcoin/mainnet tip {TIP} {chain['tip_hash']} — {TXS} txs, final up to "
                    f"{TIP - 6} (6 confirmations); the tip is {years} years old")


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0 s"), (119, "119 s"), (120, "2 min"), (7199, "119 min"), (7200, "2 h"),
    (2 * 86400 - 1, "47 h"), (2 * 86400, "2 days"), (729 * 86400, "729 days"),
    (730 * 86400, "730 days"), (731 * 86400, "2 years"), (16 * 31_557_600, "16 years"),
])
def test_ages_for_people(seconds: int, shown: str) -> None:
    from cointrail.interfaces.cli.store_cmds import _age

    assert _age(seconds) == shown


# --- 7. Ctrl-C during an ingest ---------------------------------------------------------------


@pytest.mark.parametrize(("batch", "as_json"), [(["--batch-txs", "1"], False), ([], True)])
def test_ctrl_c_during_ingest_blkfiles_leaves_a_resumable_store(
    tmp_path: Path, blk_path: Path, batch: list[str], as_json: bool
) -> None:
    """Committing each block, or only at the end (one default batch holds all 439 blocks):
    either way the blocks added before Ctrl-C are committed, whole, and the store resumes."""
    store, ready = tmp_path / "s", tmp_path / "ready"
    args = ["--store", str(store), "ingest", "blkfiles", str(blk_path), *batch,
            *(["--json"] if as_json else [])]
    proc = cli_process(args, announce=(ready, 100))
    wait_for(ready.exists, proc, "block 100 was added")
    out, err = interrupt(proc)
    height = interrupted_height(proc.returncode, out, err)
    assert 100 <= height < TIP
    assert_consistent_at(store, height)
    doc = ok_json(run([*(a for a in args if a != "--json"), "--json"]))  # the same, resumed
    assert (doc["tip_height"], doc["blocks_added"]) == (TIP, TIP - height)
    counts = ok_json(run(["--store", str(store), "status", "--json"]))["chains"][0]
    assert (counts["transactions"], counts["outputs"], counts["inputs"]) == (TXS, OUTPUTS, INPUTS)


def test_ctrl_c_during_sync_leaves_a_resumable_store(tmp_path: Path, node: FakeNode) -> None:
    store = tmp_path / "s"
    args = ["--store", str(store), "sync", "--rpc", node.url, "--batch-blocks", "10",
            "--batch-txs", "1", "--json"]
    proc = cli_process(args)
    wait_for(lambda: node.highest_served >= 100, proc, "the node served block 100")
    out, err = interrupt(proc)
    height = interrupted_height(proc.returncode, out, err)
    assert 0 <= height < TIP
    assert_consistent_at(store, height)
    doc = ok_json(run(args))
    assert (doc["tip_height"], doc["blocks_added"]) == (TIP, TIP - height)
    counts = ok_json(run(["--store", str(store), "status", "--json"]))["chains"][0]
    assert (counts["transactions"], counts["outputs"], counts["inputs"]) == (TXS, OUTPUTS, INPUTS)


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_during_sync_follow(tmp_path: Path, node: FakeNode, as_json: bool) -> None:
    """Polling at the tip after adding blocks (the Ctrl-C waits for the poll to end), then
    again with nothing added (it stops at once)."""
    store = tmp_path / "s"
    args = ["--store", str(store), "sync", "--rpc", node.url, "--follow", "--poll", "0.05",
            *(["--json"] if as_json else [])]
    for _ in range(2):
        node.polls_at_tip = 0
        proc = cli_process(args)
        wait_for(lambda: node.polls_at_tip >= 3, proc, "the sync reached the tip and polled")
        out, err = interrupt(proc)
        assert interrupted_height(proc.returncode, out, err) == TIP
        assert_consistent_at(store, TIP)


# --- 8. show ----------------------------------------------------------------------------------


def test_show_tx_of_a_coinbase_shows_its_input(store_dir: Path) -> None:
    doc = ok_json(run(["--store", str(store_dir), "show", "tx", BLOCK_9_COINBASE, "--json"]))
    assert doc["coinbase"] is True
    assert doc["vin"] == [{"coinbase": BLOCK_9_SCRIPT_SIG}]


@pytest.mark.parametrize("command", [
    ["show", "block", " 170"], ["show", "block", "170 "], ["show", "tx", f" {BLOCK_9_COINBASE}\n"],
])
def test_show_ignores_surrounding_blanks(store_dir: Path, command: list[str]) -> None:
    doc = ok_json(run(["--store", str(store_dir), *command, "--json"]))
    assert doc["height"] == (170 if command[1] == "block" else 9)
    if command[1] == "tx":
        assert doc["txid"] == BLOCK_9_COINBASE


def test_an_ethereum_address_under_a_bitcoin_store(store_dir: Path) -> None:
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    line = one_error(run(["--store", str(store_dir), "show", "address", address]),
                     "looks like an Ethereum address")
    assert "pass --chain ethereum" in line and "base58" not in line
