"""Ethereum ingest against a real ``anvil`` node (issue 9).

A scripted chain on anvil: native sends, a failed send (to a contract that refuses ether), an
ERC-20 token deployed from ``tests/data/eth/Contracts.sol`` and moved by ``transfer`` and
``transferFrom``, a failed token transfer, a contract splitting ether among recipients
(internal transfers) and a contract call whose value-carrying inner call is undone by the
revert. ``cointrail sync`` ingests it and the tests show:

* every account's native balance in the store (``show address --json``) equals the node's
  ``eth_getBalance`` change since genesis — fees (burned base fee and the miner's tip)
  included — and every token balance equals the contract's ``balanceOf``;
* block and transaction hashes recompute (keccak of RLP) for anvil's EIP-1559 blocks;
* the node's chain id is checked against ``--network``;
* a reorganisation (``evm_snapshot``/``evm_revert``, then a different chain) is rolled back
  and re-applied; the store equals a fresh sync of the final chain;
* a sync killed with SIGKILL mid-run resumes to the same store as an uninterrupted one;
* a node without trace APIs is detected and said so.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cointrail.chain.account.hashes import block_hash, hex_bytes, transaction_hash
from cointrail.store.duck import open_chain
from cointrail.store.schema import TABLES
from tests.support.anvil import AnvilNode, Contracts, start_anvil
from tests.support.process import wait_for

pytestmark = pytest.mark.integration
CHAIN, NETWORK = "ethereum", "regtest"


def cli(store: Path, *args: str, network: str = NETWORK) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
    return subprocess.run(
        [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(store),
         "--chain", CHAIN, "--network", network, *args],
        capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL,
        check=False)


def sync(store: Path, url: str, *extra: str) -> dict[str, Any]:
    done = cli(store, "sync", "--rpc", url, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def show(store: Path, address: str) -> dict[str, Any]:
    """``show address --json``, run in this process (the sync runs as its own process)."""
    from typer.testing import CliRunner

    from cointrail.interfaces.cli.main import app

    done = CliRunner().invoke(app, ["--store", str(store), "--chain", CHAIN, "--network",
                                    NETWORK, "show", "address", address, "--json"])
    assert done.exit_code == 0, done.output
    return dict(json.loads(done.stdout))


def dump(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    with open_chain(store, CHAIN, NETWORK, read_only=True) as s:
        return {t.name: s.query(f"SELECT * FROM {t.name} ORDER BY ALL") for t in TABLES
                if t.name != "sync_state"}


@dataclass
class Scenario:
    node: AnvilNode
    contracts: Contracts
    token: str
    splitter: str
    holders: list[str]
    failed: list[str]  # tx hashes of failed transactions


def build_scenario(node: AnvilNode) -> Scenario:
    a = node.accounts
    c = Contracts(node)
    failed = []
    node.send(a[0], a[1], 3 * 10**18)
    node.send(a[1], a[2], 10**18 + 7)
    token = c.deploy("Token", a[0], ["string", "string", "uint8", "uint256"],
                     ["Test Dollar", "TUSD", 6, 10**15])
    splitter = c.deploy("Splitter", a[0])
    # a failed native send: Splitter has no receive function, so the call reverts
    r = node.send(a[3], splitter, 5 * 10**18, gas=100_000)
    assert r["status"] == "0x0"
    failed.append(r["transactionHash"])
    uint = ["address", "uint256"]
    c.transact(token, a[0], "transfer(address,uint256)", uint, [a[1], 250_000_000])
    c.transact(token, a[1], "approve(address,uint256)", uint, [a[4], 100_000_000])
    c.transact(token, a[4], "transferFrom(address,address,uint256)",
               ["address", "address", "uint256"], [a[1], a[5], 60_000_000])
    r = c.transact(token, a[2], "transfer(address,uint256)", uint, [a[3], 1], gas=100_000)
    assert r["status"] == "0x0"  # a[2] holds no tokens
    failed.append(r["transactionHash"])
    c.transact(splitter, a[0], "split(address[])", ["address[]"], [[a[6], a[7], a[8]]],
               value=10**18 + 2)
    r = c.transact(splitter, a[6], "splitThenFail(address)", ["address"], [a[9]],
                   value=10**17, gas=200_000)
    assert r["status"] == "0x0"
    failed.append(r["transactionHash"])
    return Scenario(node, c, token, splitter, list(a), failed)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with start_anvil() as node:
        yield build_scenario(node)


@pytest.fixture(scope="module")
def synced(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[
        str, Any]]:
    store = tmp_path_factory.mktemp("eth")
    return store, sync(store, scenario.node.url)


def test_sync_reports_what_it_ingested(scenario: Scenario,
                                       synced: tuple[Path, dict[str, Any]]) -> None:
    _, report = synced
    assert report["tip_height"] == scenario.node.height()
    assert report["transactions_added"] == scenario.node.height()  # one tx per block
    assert report["traces"].startswith("internal transfers from ")
    assert report["transfers_added"] > report["transactions_added"]


def test_hashes_recompute_on_anvil_blocks(scenario: Scenario) -> None:
    for height in range(scenario.node.height() + 1):
        block = scenario.node.rpc("eth_getBlockByNumber", hex(height), True)
        assert block_hash(block) == hex_bytes(block["hash"])
        for tx in block["transactions"]:
            assert transaction_hash(tx) == hex_bytes(tx["hash"])


def test_native_balances_equal_the_node(scenario: Scenario,
                                        synced: tuple[Path, dict[str, Any]]) -> None:
    store, _ = synced
    node = scenario.node
    zero = "0x" + "00" * 20  # anvil's coinbase: it receives the priority fees
    for address in [*scenario.holders, scenario.splitter, scenario.token, zero]:
        change = node.balance(address) - node.balance(address, 0)
        if address == scenario.holders[9]:  # only named by a call that reverted
            done = cli(store, "show", "address", address, "--json")
            assert change == 0 and done.returncode == 2 and "never appeared" in done.stderr
            continue
        assert show(store, address)["balance_wei"] == change, address
    # the split recipients got their ether only through internal transfers
    assert show(store, scenario.holders[7])["received_wei"] == (10**18 + 2) // 3


def test_token_balances_equal_balance_of(scenario: Scenario,
                                         synced: tuple[Path, dict[str, Any]]) -> None:
    store, _ = synced
    seen = 0
    for address in scenario.holders[:9]:
        want = scenario.contracts.token_balance(scenario.token, address)
        tokens = {t["contract"]: t for t in show(store, address)["tokens"]}
        got = tokens.get(scenario.token)
        assert (got["balance"] if got else 0) == want, address
        if got:
            seen += 1
            assert got["symbol"] == "TUSD" and got["decimals"] == 6
    assert seen == 3  # a0 (minted), a1 (transfer), a5 (transferFrom by a4)


def test_failed_transactions_move_no_value(scenario: Scenario,
                                           synced: tuple[Path, dict[str, Any]]) -> None:
    store, _ = synced
    for tx in scenario.failed:
        done = cli(store, "show", "tx", tx, "--json")
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["status"] == "failed"
        kinds = {t["kind"] for t in doc["transfers"]}
        assert kinds == {"fee"}, tx
        assert sum(t["amount"] for t in doc["transfers"]) == doc["fee_wei"]


def test_node_of_another_network_is_refused(scenario: Scenario, tmp_path: Path) -> None:
    done = cli(tmp_path, "sync", "--rpc", scenario.node.url, network="mainnet")
    assert done.returncode == 2
    assert "chain id 31337" in done.stderr and "--network regtest" in done.stderr


def test_bad_checksum_address_is_refused(synced: tuple[Path, dict[str, Any]]) -> None:
    store, _ = synced
    done = cli(store, "show", "address", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
    assert done.returncode == 2 and "EIP-55" in done.stderr


def test_reorg_is_rolled_back_and_reapplied(tmp_path: Path) -> None:
    with start_anvil() as node:
        a = node.accounts
        node.send(a[0], a[1], 10**18)
        snapshot = node.rpc("evm_snapshot")
        for n in range(3):
            node.send(a[1], a[2], 10**17 + n)
        first = sync(tmp_path / "follower", node.url)
        assert first["tip_height"] == 4
        assert node.rpc("evm_revert", snapshot) is True
        node.send(a[1], a[3], 5 * 10**17)  # the other branch: two different blocks
        node.send(a[3], a[4], 10**17)
        again = sync(tmp_path / "follower", node.url)
        assert again["reorgs"] == 1 and again["blocks_rolled_back"] == 3
        assert again["tip_height"] == 3
        fresh = sync(tmp_path / "fresh", node.url)
        assert fresh["tip_height"] == 3
        assert dump(tmp_path / "follower") == dump(tmp_path / "fresh")
        for address in (a[0], a[1], a[3], a[4]):
            want = node.balance(address) - node.balance(address, 0)
            assert show(tmp_path / "follower", address)["balance_wei"] == want
        gone = cli(tmp_path / "follower", "show", "address", a[2])  # paid only on the branch
        assert gone.returncode == 2 and "never appeared" in gone.stderr


KILLER = """
import os, signal, sys
from cointrail.chain.account.node import EthNode
from cointrail.chain.rpc import RpcClient
from cointrail.store.duck import open_chain
from cointrail.store.ethsync import EthIngestor, sync_eth

store = open_chain(sys.argv[1], "ethereum", "regtest")
kill_at = int(sys.argv[3])

def on_block(height, top):
    if height == kill_at:  # mid-batch: the blocks of this batch are not committed yet
        os.kill(os.getpid(), signal.SIGKILL)

sync_eth(EthIngestor(store), EthNode(RpcClient(sys.argv[2], jsonrpc="2.0")),
         batch_blocks=4, on_block=on_block)
"""


def test_killed_sync_resumes_to_the_same_store(tmp_path: Path) -> None:
    with start_anvil() as node:
        build_scenario(node)
        node.rpc("anvil_mine", hex(10))
        build_scenario(node)  # the same again: reused contracts, more transfers
        top = node.height()
        kill_at = top // 2 + 1
        done = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path / "killed"),
                               node.url, str(kill_at)], capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == -9, done.stderr
        with open_chain(tmp_path / "killed", CHAIN, NETWORK, read_only=True) as s:
            tip = s.tip()
        assert tip is not None and 0 < tip.height < kill_at  # committed batches only
        resumed = sync(tmp_path / "killed", node.url)
        assert resumed["tip_height"] == top and resumed["reorgs"] == 0
        sync(tmp_path / "clean", node.url)
        assert dump(tmp_path / "killed") == dump(tmp_path / "clean")


class NoTraceRelay:
    """A JSON-RPC relay to anvil that answers trace and debug methods as a node without those
    APIs does ("method not found"), like a geth node without ``--http.api debug``."""

    def __init__(self, target: str) -> None:
        relay = self
        self.target = target

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                items = body if isinstance(body, list) else [body]
                passed = [i for i in items if not i["method"].startswith(("trace_", "debug_"))]
                answers = httpx.post(relay.target, json=passed).json() if passed else []
                answers += [{"jsonrpc": "2.0", "id": i["id"], "error": {
                    "code": -32601, "message": f"the method {i['method']} does not exist"}}
                    for i in items if i not in passed]
                raw = json.dumps(answers if isinstance(body, list) else answers[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_node_without_traces_is_detected(scenario: Scenario, tmp_path: Path) -> None:
    relay = NoTraceRelay(scenario.node.url)
    try:
        done = cli(tmp_path, "sync", "--rpc", relay.url, "--json")
    finally:
        relay.close()
    assert done.returncode == 0, done.stderr
    assert "neither trace_block nor debug_traceBlockByHash" in done.stderr
    report = json.loads(done.stdout)
    assert "not ingested" in report["traces"]
    with open_chain(tmp_path, CHAIN, NETWORK, read_only=True) as s:
        assert s.query("SELECT count(*) FROM transfers WHERE kind = 1")[0][0] == 0
        assert s.query("SELECT count(*) FROM transfers WHERE kind = 2")[0][0] > 0


def test_show_block_and_status_match_the_node(scenario: Scenario,
                                              synced: tuple[Path, dict[str, Any]]) -> None:
    store, _ = synced
    node_block = scenario.node.rpc("eth_getBlockByNumber", "0x3", False)
    done = cli(store, "show", "block", "3", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["hash"] == node_block["hash"]
    assert doc["parentHash"] == node_block["parentHash"]
    assert doc["tx"] == node_block["transactions"]
    by_hash = cli(store, "show", "block", node_block["hash"], "--json")
    assert json.loads(by_hash.stdout) == doc
    status = json.loads(cli(store, "status", "--json").stdout)["chains"][0]
    assert status["tip_height"] == scenario.node.height()
    assert status["transfers"] > 0 and status["assets"] == 2  # ether and TUSD


def _status_tip(store: Path) -> int | None:
    """The tip another process reads (`status --json`); None while the store is held."""
    done = cli(store, "status", "--json")
    if done.returncode != 0:
        return None
    chains = json.loads(done.stdout)["chains"]
    return None if not chains or "error" in chains[0] else chains[0]["tip_height"]


def test_follow_lets_other_commands_read_the_store_while_it_waits(tmp_path: Path) -> None:
    """`sync --follow` releases the store while it waits for anvil's next block: `status`
    and `show` read it meanwhile, a reorg at the same height is still seen (the node's tip
    hash is compared, not only its height), and Ctrl-C stops at the committed tip."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
    with start_anvil() as node:
        a = node.accounts
        node.send(a[0], a[1], 10**18)
        snapshot = node.rpc("evm_snapshot")
        node.send(a[1], a[2], 10**17)  # block 2, replaced below by another block 2
        store = tmp_path / "store"
        follower = subprocess.Popen(
            [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(store),
             "--chain", CHAIN, "--network", NETWORK, "sync", "--rpc", node.url, "--follow",
             "--poll", "0.2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: _status_tip(store) == 2, follower, "status read height 2")
            assert show(store, a[2])["balance_wei"] == 10**17
            assert node.rpc("evm_revert", snapshot) is True
            node.send(a[1], a[3], 2 * 10**17)  # the other block 2: same height, new hash
            deadline = time.monotonic() + 120
            while cli(store, "show", "address", a[2]).returncode != 2:
                assert follower.poll() is None, follower.communicate()
                assert time.monotonic() < deadline, "the same-height reorg was not taken"
                time.sleep(0.1)
            assert _status_tip(store) == 2
            assert show(store, a[3])["balance_wei"] == 2 * 10**17
            node.send(a[3], a[4], 10**17)
            wait_for(lambda: _status_tip(store) == 3, follower, "status read height 3")
            follower.send_signal(signal.SIGINT)
            out, err = follower.communicate(timeout=120)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.communicate()
        assert follower.returncode == 130, (out, err)
        assert "interrupted at height 3 (the store is consistent there)" in " ".join(err.split())
        fresh = sync(tmp_path / "fresh", node.url)
        assert fresh["tip_height"] == 3
        assert dump(store) == dump(tmp_path / "fresh")


class Gate:
    """A JSON-RPC relay in front of anvil that can be shut: while `down`, every connection
    is closed without an answer, as a stopped node's would be."""

    def __init__(self, target: str) -> None:
        gate = self
        self.down = False

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if gate.down:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                answer = httpx.post(target, content=body, timeout=60,
                                    headers={"content-type": "application/json"})
                self.send_response(answer.status_code)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_follow_waits_out_a_node_that_goes_away(tmp_path: Path) -> None:
    """The Ethereum follower, like the UTXO one, says the node went away and waits (backing
    off) instead of ending; it takes the blocks mined meanwhile once the node answers."""
    from cointrail.chain.account.node import EthNode
    from cointrail.chain.rpc import RpcClient
    from cointrail.store.ethsync import EthIngestor, sync_eth

    with start_anvil() as node:
        a = node.accounts
        node.send(a[0], a[1], 10**18)
        gate = Gate(node.url)
        notices: list[str] = []
        try:
            with open_chain(tmp_path / "follower", CHAIN, NETWORK) as store:
                ingestor = EthIngestor(store)

                def step() -> bool:
                    if ingestor.height == 1 and not gate.down and not notices:
                        gate.down = True  # the node goes away; two blocks come meanwhile
                        node.send(a[1], a[2], 10**17)
                        node.send(a[1], a[3], 10**17)
                    if notices and gate.down:
                        gate.down = False  # back after the follower said it waits
                    return ingestor.height >= 3

                result = sync_eth(ingestor, EthNode(RpcClient(gate.url, jsonrpc="2.0")),
                                  follow=True, poll_seconds=0.1, should_stop=step,
                                  on_notice=notices.append)
        finally:
            gate.close()
        assert result.tip_height == 3, result
        assert notices and "the store is consistent at height 1; trying again in" in notices[0]
        fresh = sync(tmp_path / "fresh", node.url)
        assert fresh["tip_height"] == 3
        assert dump(tmp_path / "follower") == dump(tmp_path / "fresh")
