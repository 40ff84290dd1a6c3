"""``sync --p2p``: raw blocks from a real ``litecoind -regtest``'s P2P port (``-listen=1``,
bound to 127.0.0.1).

One node builds a chain (store_support.WalletChainBuilder, fewer rounds than the store
tests): four wallets paying each other with legacy, p2sh-segwit and bech32 addresses,
sendmany, MWEB activation with peg-ins, later peg-ins and peg-outs, a reorganisation at the
tip. A plain ``sync --rpc`` of it (JSON-RPC: the node serves no REST) is the reference, and
the tests show:

* the node sends over P2P the very bytes ``getblock <hash> 0`` returns, MWEB included, serves
  a request longer than one ``getdata`` takes, and leaves a block it does not have
  unanswered (BlockNotServedError);
* ``sync --p2p PORT`` gives the reference store, row for row, and the blocks did come over
  the P2P port (the node's byte counters);
* a node without ``-listen`` gives one clear error naming ``-listen=1``, the store left as it
  was; ``--p2p`` with ``--rest``, for Ethereum or with a malformed address, is refused before
  anything is done;
* blocks whose hashes the sync was given but which left the node's chain before it asked
  for them over P2P (not served) end the pass as the chain moving: the sync goes on to the
  node's new tip;
* ``sync_rpc(follow=True, p2p=...)`` through an ``invalidateblock`` reorganisation ends equal
  to a fresh sync, and the invalidated block is one the node no longer serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cointrail.chain.p2p import BlockNotServedError, PeerAddress, PeerClient
from cointrail.chain.rpc import RpcClient
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.hashes import sha256d
from cointrail.store.duck import open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import sync_rpc
from tests.integration.store_support import (
    MWEB_HEIGHT,
    Dump,
    Follower,
    WalletChainBuilder,
    assert_same_store,
    cli,
    cointrail_argv,
    dump_chain_store,
    dump_store,
    new_node,
    node_in_use,
    row_counts,
    rpc_url,
    store_tip,
)
from tests.support.litecoind import LitecoindNode

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("STORE_TEST_SEED", "20240603"))
WALLETS = ("alice", "bob", "carol", "dave")
LTC_REGTEST = get_chain("litecoin", "regtest")


@dataclass
class P2pChain:
    node: LitecoindNode
    reference: Dump  # the store a plain JSON-RPC sync makes
    tip_height: int
    tip_hash: str


def _peer(node: LitecoindNode) -> PeerAddress:
    return PeerAddress("127.0.0.1", node.p2p_port)


@pytest.fixture(scope="module")
def p2p_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[P2pChain]:
    node = new_node(listen=True)
    with node_in_use(node):
        started = time.monotonic()
        builder = WalletChainBuilder(node, SEED, WALLETS, rounds_before=5, rounds_after=6)
        builder.build_through_mweb()
        builder.tip_reorg()
        chain = builder.chain
        tip_height = int(node.rpc("getblockcount"))
        print(f"\nseed {SEED}: chain to height {tip_height} in "
              f"{time.monotonic() - started:.1f}s: {chain.wallet_txs} wallet transactions, "
              f"{chain.pegins} peg-ins, {chain.pegouts} peg-outs; notes {chain.notes}")
        path = tmp_path_factory.mktemp("rpc") / "store"
        result = cli(path, "sync", "--rpc", rpc_url(node), "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["blocks_fetched_over"] == "rpc"
        assert report["tip_height"] == tip_height
        yield P2pChain(node, dump_store(path), tip_height, str(node.rpc("getbestblockhash")))


def test_the_node_sends_over_p2p_the_bytes_getblock_returns(p2p_chain: P2pChain) -> None:
    """Every block of the chain, asked for in batches over one connection, is byte for byte
    the node's ``getblock <hash> 0`` (MWEB blocks with their extension block); a request of
    more blocks than one ``getdata`` takes is served in full; a block the node does not have
    is left unanswered, which the closing ping reveals."""
    node = p2p_chain.node
    hashes = node.best_chain()
    expected = [bytes.fromhex(raw) for raw in node.batch(("getblock", [h, 0]) for h in hashes)]
    segwit = mweb = 0
    for block in node.batch(("getblock", [h, 2]) for h in hashes[MWEB_HEIGHT - 40:]):
        segwit += any("txinwitness" in i for tx in block["tx"] for i in tx["vin"])
        mweb += "mweb" in block
    assert segwit >= 5 and mweb >= 5, (segwit, mweb)  # the chain has what is worth checking
    client = PeerClient(_peer(node), LTC_REGTEST, timeout=30)
    try:
        assert client.inv_type == 0x6000_0002  # the witness + MWEB block, as stored
        assert "LitecoinCore" in client.user_agent
        got: list[bytes] = []
        for first in range(0, len(hashes), 150):
            wanted = [bytes.fromhex(h)[::-1] for h in hashes[first:first + 150]]
            got += client.blocks(wanted)
        assert len(got) == len(expected)
        differ = [h for h, a, b in zip(hashes, got, expected, strict=True) if a != b]
        assert not differ, f"{len(differ)} blocks differ from getblock's, first {differ[0]}"
        # more than one getdata takes: Core ignores one of over 50,000 entries altogether
        many = [bytes.fromhex(hashes[i % 40])[::-1] for i in range(50_001)]
        started = time.monotonic()
        assert [sha256d(raw[:80]) for raw in client.blocks(many)] == many
        print(f"\n50,001 blocks in {time.monotonic() - started:.2f}s")
        unknown = bytes.fromhex("ab" * 32)
        with pytest.raises(BlockNotServedError, match="ab" * 32):
            list(client.blocks([bytes.fromhex(hashes[5])[::-1], unknown]))
    finally:
        client.close()


def test_sync_over_p2p_gives_the_same_store_as_over_json_rpc(
        p2p_chain: P2pChain, tmp_path: Path) -> None:
    node = p2p_chain.node
    sent_before = int(node.rpc("getnettotals")["totalbytessent"])
    store = tmp_path / "p2p"
    # the port alone: the host is the --rpc URL's
    result = cli(store, "sync", "--rpc", rpc_url(node), "--p2p", str(node.p2p_port),
                 "--batch-blocks", "64", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["blocks_fetched_over"] == "p2p"
    assert (report["tip_height"], report["tip_hash"]) == (p2p_chain.tip_height,
                                                           p2p_chain.tip_hash)
    assert report["blocks_added"] == p2p_chain.tip_height + 1
    dump = dump_store(store)
    print(f"store synced over P2P: {row_counts(dump)}")
    assert_same_store(p2p_chain.reference, dump, "P2P sync vs JSON-RPC sync")
    # the blocks came from the P2P port: the node sent at least their bytes besides JSON-RPC
    # (which the node's counters leave out)
    sizes = sum(b["size"] for b in node.batch(("getblock", [h, 1]) for h in node.best_chain()))
    sent = int(node.rpc("getnettotals")["totalbytessent"]) - sent_before
    assert sent >= sizes, (sent, sizes)


def test_p2p_from_a_node_that_does_not_listen_is_a_clear_error(tmp_path: Path) -> None:
    node = new_node()  # -listen=0: nothing on its P2P port
    with node_in_use(node):
        node.rpc("createwallet", "miner")
        miner = str(node.rpc("getnewaddress", "", "bech32", wallet="miner"))
        node.mine(6, miner)
        store = tmp_path / "store"
        assert cli(store, "sync", "--rpc", rpc_url(node)).returncode == 0
        before = dump_store(store)
        node.mine(3, miner)
        for target in (store, tmp_path / "new"):  # a store with blocks, and a new one
            done = cli(target, "sync", "--rpc", rpc_url(node), "--p2p",
                       f"127.0.0.1:{node.p2p_port}", "--json")
            assert done.returncode == 1, (done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
            message = lines[0]
            assert f"cannot connect to the node's P2P port at 127.0.0.1:{node.p2p_port}" \
                in message
            assert "-listen=1" in message and "without --p2p" in message
            if target == store:
                assert "The store is consistent at height 6" in message, message
            else:
                assert "The store holds no block of this chain yet" in message, message
            assert node.rpc_password not in message
            assert done.stdout == ""
        assert_same_store(before, dump_store(store), "store after a failed --p2p sync")
        assert store_tip(store) == 6
        assert store_tip(tmp_path / "new") is None
        # and the same store syncs on without --p2p
        assert cli(store, "sync", "--rpc", rpc_url(node)).returncode == 0
        assert store_tip(store) == 9


def test_p2p_is_refused_with_rest_for_ethereum_and_when_malformed(tmp_path: Path) -> None:
    """Refused before any node is asked (nothing listens at the URL) or any store made."""
    url = "http://127.0.0.1:9/"
    store = tmp_path / "store"
    both = cli(store, "sync", "--rpc", url, "--p2p", "19444", "--rest")
    assert both.returncode == 2, both.stderr
    assert "blocks come either over P2P or over REST: pass --p2p or --rest, not both" \
        in " ".join(both.stderr.split())
    malformed = cli(store, "sync", "--rpc", url, "--p2p", "127.0.0.1:")
    assert malformed.returncode == 2, malformed.stderr
    assert "--p2p '127.0.0.1:': write the node's P2P address as HOST:PORT" \
        in " ".join(malformed.stderr.split())
    argv = cointrail_argv(store, "sync", "--rpc", url, "--p2p", "8545")
    argv[argv.index("litecoin")] = "ethereum"
    eth = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert eth.returncode == 2, eth.stderr
    assert "--p2p: ethereum/regtest blocks come over JSON-RPC only" \
        in " ".join(eth.stderr.split())
    assert not store.exists() or not any(store.iterdir())


class _ChainMovesAfterHashes(RpcClient):
    """A client of a node that, right after it handed out the hash of block `height` (once),
    drops that block and those above it (``invalidateblock``) and mines `mined` blocks on a
    new branch: the fetcher then asks the P2P port for blocks no longer on the node's chain."""

    def __init__(self, url: str, height: int, address: str, mined: int) -> None:
        super().__init__(url)
        self.height, self.address, self.mined = height, address, mined
        self.stale = ""

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        answers = super().batch(calls)
        heights = [int(params[0]) for method, params in calls if method == "getblockhash"]
        if not self.stale and len(heights) == len(calls) and self.height in heights:
            self.stale = str(answers[heights.index(self.height)])
            super().batch([("invalidateblock", [self.stale])])
            super().batch([("generatetoaddress", [self.mined, self.address])])
        return answers


def test_blocks_the_node_no_longer_serves_end_the_pass_and_the_sync_goes_on(
        tmp_path: Path) -> None:
    node = new_node(listen=True)
    with node_in_use(node):
        node.rpc("createwallet", "w")
        node.mine(20, str(node.rpc("getnewaddress", "", "bech32", wallet="w")))
        other = str(node.rpc("getnewaddress", "", "legacy", wallet="w"))
        rpc = _ChainMovesAfterHashes(rpc_url(node), 12, other, 6)
        with open_chain(tmp_path / "p2p", "litecoin", "regtest") as store, rpc:
            result = sync_rpc(UtxoIngestor(store), rpc, batch_blocks=5, p2p=_peer(node))
            got = dump_chain_store(store)
        assert rpc.stale, "the chain did not move under the fetch"
        assert int(node.rpc("getblockheader", rpc.stale)["confirmations"]) == -1
        assert (result.fetch, result.reorgs, result.blocks) == ("p2p", 0, 18)
        assert (result.tip_height, result.tip_hash) == (17, str(node.rpc("getbestblockhash")))
        with open_chain(tmp_path / "fresh", "litecoin", "regtest") as store, \
                RpcClient(rpc_url(node)) as plain:
            sync_rpc(UtxoIngestor(store), plain, rest=False)
            expected = dump_chain_store(store)
        assert_same_store(expected, got, "P2P sync through the chain moving mid-fetch")


def test_follow_over_p2p_through_a_reorg_equals_a_fresh_sync(tmp_path: Path) -> None:
    """``sync_rpc(follow=True, p2p=...)`` while the node drops its last blocks
    (``invalidateblock``) and mines a longer branch with other transactions: the follower
    ends equal to a fresh JSON-RPC sync, and the node no longer serves the invalidated block
    over P2P."""
    node = new_node(listen=True)
    follower: Follower | None = None
    with node_in_use(node):
        try:
            node.rpc("createwallet", "w")
            miner = str(node.rpc("getnewaddress", "", "bech32", wallet="w"))
            node.mine(105, miner)
            kinds = ("bech32", "p2sh-segwit", "legacy")

            def pay(n: int) -> None:
                for i in range(n):
                    dest = node.rpc("getnewaddress", "", kinds[i % 3], wallet="w")
                    node.rpc("sendtoaddress", dest, "1.5", wallet="w")

            pay(4)
            node.mine(1, miner)
            follower = Follower(tmp_path / "follow", rpc_url(node), poll=0.1, p2p=_peer(node))
            follower.expect(str(node.rpc("getbestblockhash")))
            follower.start()
            follower.wait()

            pay(3)
            old = node.mine(3, miner)
            follower.expect(old[-1])
            follower.wait()
            node.rpc("invalidateblock", old[0])
            other = str(node.rpc("getnewaddress", "", "legacy", wallet="w"))
            pay(2)  # the old branch's payments come back to the mempool, and two more
            new = node.mine(4, other)
            assert node.best_chain()[-4:] == new and not set(old) & set(node.best_chain())
            follower.expect(new[-1])
            snapshot = follower.wait()
            result = follower.finish()
            follower = None
            assert (result.fetch, result.reorgs, result.blocks_rolled_back) == ("p2p", 1, 3)

            with open_chain(tmp_path / "fresh", "litecoin", "regtest") as store, \
                    RpcClient(rpc_url(node)) as rpc:
                sync_rpc(UtxoIngestor(store), rpc, rest=False)
                expected = dump_chain_store(store)
            assert_same_store(expected, snapshot, "follower over P2P after the reorg")

            client = PeerClient(_peer(node), LTC_REGTEST, timeout=30)
            try:
                with pytest.raises(BlockNotServedError, match=old[0]):
                    list(client.blocks([bytes.fromhex(old[0])[::-1]]))
            finally:
                client.close()
        finally:
            if follower is not None:
                follower.stop.set()
                follower.thread.join(timeout=30)
