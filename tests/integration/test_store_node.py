"""The chain store against a real ``litecoind -regtest`` node (issue 3, "Chain store and ingest").

One node builds a chain (store_support.WalletChainBuilder): four wallets paying each other
hundreds of times with addresses of every type, sendmany, address reuse and coinbases; MWEB
activation at height 432 with peg-ins, later peg-ins and peg-outs; three thousand raw
transactions; a two-block reorganisation at the tip; unconfirmed payments left in the mempool.
A clean ``cointrail sync --rpc`` of it is the reference store, and the tests show:

* every wallet address's balance and received total in the store is the node's;
* ingesting the node's blk files gives the same store, row for row, as ingesting over RPC;
* ``sync`` killed with SIGKILL at 20 random points, then run again, gives the clean store;
* a node that dies mid-sync gives one clear error, and the same command resumes after it;
* ``status``/``show`` report what the node reports.

A second pair of nodes makes reorganisations of depth 1, 2, 5 and 20 while a follower runs
(``sync_rpc(follow=True)`` in a thread); after each, the follower's store equals a fresh
ingest of the final chain, including a double-spend that rolls back spent/unspent state.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from cointrail.chain.fetch import fetch_from_genesis
from cointrail.chain.rpc import RpcClient
from cointrail.store.duck import open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.queries import show_address
from cointrail.store.sync import sync_rpc
from tests.integration.store_support import (
    MWEB_HEIGHT,
    Dump,
    Follower,
    RpcRelay,
    WalletChain,
    WalletChainBuilder,
    assert_same_store,
    cli,
    cli_popen,
    cointrail_argv,
    column_index,
    discard_node,
    dump_chain_store,
    dump_store,
    new_node,
    node_address_truth,
    node_in_use,
    out_address,
    prefix_dump,
    push_blocks,
    row_counts,
    rpc_url,
    store_tip,
    walk_chain,
)
from tests.support.apiserver import serving
from tests.support.litecoind import LitecoindNode, RpcError
from tests.support.process import wait_for

pytestmark = pytest.mark.integration

#: Seeds the chain's wallet activity and the kill points; STORE_TEST_SEED overrides it.
SEED = int(os.environ.get("STORE_TEST_SEED", "20240603"))
WALLETS = ("alice", "bob", "carol", "dave")
KILLS = 20
FEE = Decimal("0.001")


@dataclass
class CleanStore:
    path: Path
    dump: Dump
    report: dict[str, Any]
    tip_height: int
    tip_hash: str


@pytest.fixture(scope="module")
def wallet_chain() -> Iterator[WalletChain]:
    node = new_node()
    with node_in_use(node):
        started = time.monotonic()
        chain = WalletChainBuilder(node, SEED, WALLETS).build()
        print(f"\nseed {SEED}: chain to height {node.rpc('getblockcount')} in "
              f"{time.monotonic() - started:.1f}s: {chain.wallet_txs} wallet transactions, "
              f"{chain.bulk_txs} raw transactions, {chain.pegins} peg-ins, {chain.pegouts} "
              f"peg-outs, {len(chain.mempool_txids)} left in the mempool; notes {chain.notes}")
        yield chain


@pytest.fixture(scope="module")
def clean(wallet_chain: WalletChain, tmp_path_factory: pytest.TempPathFactory) -> CleanStore:
    """A clean ``cointrail sync --rpc`` of the whole chain: the reference store."""
    node = wallet_chain.node
    path = tmp_path_factory.mktemp("clean") / "store"
    result = cli(path, "sync", "--rpc", rpc_url(node), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    dump = dump_store(path)
    print(f"clean store: {row_counts(dump)}")
    tip_height, tip_hash = int(node.rpc("getblockcount")), str(node.rpc("getbestblockhash"))
    assert (report["tip_height"], report["tip_hash"]) == (tip_height, tip_hash)
    return CleanStore(path, dump, report, tip_height, tip_hash)


def _assert_node_tip_unchanged(node: LitecoindNode, clean: CleanStore) -> None:
    assert int(node.rpc("getblockcount")) == clean.tip_height
    assert str(node.rpc("getbestblockhash")) == clean.tip_hash


# -- 1. balances and received totals ---------------------------------------------------------

def test_every_wallet_address_balance_and_received_match_the_node(
    wallet_chain: WalletChain, clean: CleanStore
) -> None:
    node = wallet_chain.node
    _assert_node_tip_unchanged(node, clean)
    assert wallet_chain.wallet_txs >= 200, "the chain should hold hundreds of wallet payments"
    assert clean.tip_height > MWEB_HEIGHT
    walk = walk_chain(node)
    truths = node_address_truth(node, wallet_chain.all_wallets, walk)
    mismatches = []
    types = set()
    with open_chain(clean.path, "litecoin", "regtest", read_only=True) as store:
        for t in truths:
            doc = show_address(store, t.address)
            types.add(doc["type"])
            got = (doc["received_sat"], doc["balance_sat"])
            if got != (t.received_sat, t.balance_sat):
                mismatches.append(
                    f"{t.wallet} {t.address} ({doc['type']}): node received {t.received_sat} "
                    f"balance {t.balance_sat} (coinbase {t.coinbase_sat}); store received "
                    f"{got[0]} balance {got[1]}"
                )
    print(f"{len(truths)} wallet addresses compared, types {sorted(types)}")
    assert not mismatches, f"{len(mismatches)} of {len(truths)} addresses differ:\n" + "\n".join(
        mismatches[:30]
    )
    # the comparison covers what it should
    by_wallet = {w: sum(1 for t in truths if t.wallet == w) for w in WALLETS}
    assert all(n >= 20 for n in by_wallet.values()), by_wallet
    assert {"pubkeyhash", "scripthash", "witness_v0_keyhash"} <= types
    assert any(t.coinbase_sat for t in truths), "no wallet address received a coinbase"
    assert walk.pegout_addresses() & {t.address for t in truths}, "no peg-out to a wallet"
    recent = walk.pegout_addresses(since=clean.tip_height - 2)
    assert any(t.immature_sat for t in truths if t.address in recent), "no immature peg-out"
    assert any(t.balance_sat == 0 and t.received_sat for t in truths), "no address spent out"
    pending = [t for t in truths if t.received_minconf0_sat != t.received_sat]
    assert pending, "no wallet address was paid by the mempool (minconf 0 vs 1 untested)"


# -- 6. status and show ---------------------------------------------------------------------

def test_status_and_show_report_what_the_node_reports(
    wallet_chain: WalletChain, clean: CleanStore
) -> None:
    node = wallet_chain.node
    _assert_node_tip_unchanged(node, clean)
    walk = walk_chain(node)
    result = cli(clean.path, "status", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (chain,) = doc["chains"]
    assert (chain["chain"], chain["network"]) == ("litecoin", "regtest")
    assert chain["tip_height"] == clean.tip_height
    assert chain["tip_hash"] == clean.tip_hash
    assert chain["blocks"] == clean.tip_height + 1
    assert chain["transactions"] == len(walk.txs)

    # the transaction with inputs from the most addresses among those with outputs spent and
    # unspent, and a coinbase
    def spent(txid: str, tx: Any) -> list[bool]:
        return [(txid, n) in walk.spent_by for n in range(len(tx.outputs))]

    multi = max(
        (txid for txid, tx in walk.txs.items()
         if not tx.coinbase and any(spent(txid, tx)) and not all(spent(txid, tx))),
        key=lambda txid: (len({walk.txs[p].outputs[n][1] for p, n in walk.txs[txid].prevouts}),
                          len(walk.txs[txid].prevouts)),
    )
    assert len(walk.txs[multi].prevouts) >= 2
    coinbase = next(tx for tx in walk.txs.values() if tx.coinbase and tx.height > 200)
    hogex = max((walk.hogex(h) for h in range(MWEB_HEIGHT + 1, clean.tip_height + 1)),
                key=lambda tx: len(tx.outputs))  # with peg-outs, spending the previous HogEx
    assert len(hogex.outputs) >= 2
    for txid in (multi, coinbase.txid, hogex.txid):
        tx = walk.txs[txid]
        result = cli(clean.path, "show", "tx", txid, "--json")
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["txid"] == txid
        assert shown["height"] == tx.height
        assert shown["blockhash"] == walk.hashes[tx.height]
        assert shown["coinbase"] is tx.coinbase
        if tx.coinbase:  # the coinbase input: its scriptSig, as the node shows it
            raw = node.rpc("getrawtransaction", txid, True)
            assert shown["vin"] == [{"coinbase": raw["vin"][0]["coinbase"]}]
        else:
            expected_vin = [
                {"n": n, "txid": p, "vout": v, "value_sat": walk.txs[p].outputs[v][0],
                 "address": walk.txs[p].outputs[v][1]}
                for n, (p, v) in enumerate(tx.prevouts)
            ]
            assert [{k: i[k] for k in ("n", "txid", "vout", "value_sat", "address")}
                    for i in shown["vin"]] == expected_vin
        expected_vout = []
        for n, (value, address) in enumerate(tx.outputs):
            spender = walk.spent_by.get((txid, n))
            expected_vout.append({
                "n": n, "value_sat": value, "address": address,
                "spent_by": None if spender is None else {"txid": spender[0], "vin": spender[1]},
            })
            if address is not None:  # the node's UTXO set agrees (mempool left out)
                unspent = node.rpc("gettxout", txid, n, False) is not None
                assert unspent is (spender is None), (txid, n)
        assert [{k: o[k] for k in ("n", "value_sat", "address", "spent_by")}
                for o in shown["vout"]] == expected_vout
        if not tx.coinbase:
            in_sat = sum(v["value_sat"] for v in expected_vin)
            out_sat = sum(v for v, _ in tx.outputs)
            assert (shown["input_value_sat"], shown["fee_sat"]) == (in_sat, in_sat - out_sat)

    result = cli(clean.path, "show", "block", str(MWEB_HEIGHT), "--json")
    assert result.returncode == 0, result.stderr
    block = node.rpc("getblock", walk.hashes[MWEB_HEIGHT], 1)
    shown = json.loads(result.stdout)
    assert (shown["hash"], shown["tx"]) == (block["hash"], block["tx"])


# -- 2. blk files and RPC give the same store -----------------------------------------------

def test_blk_files_and_rpc_ingest_give_identical_stores(
    wallet_chain: WalletChain, clean: CleanStore, tmp_path: Path
) -> None:
    node = wallet_chain.node
    node.restart()  # a stop flushes and closes the block files
    _assert_node_tip_unchanged(node, clean)
    for stale in wallet_chain.stale_hashes:  # the blk files hold a block off the best chain
        assert node.rpc("getblockheader", stale)["confirmations"] == -1
    store = tmp_path / "blk"
    result = cli(store, "ingest", "blkfiles", str(node.blocks_dir), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["tip_height"], report["tip_hash"]) == (clean.tip_height, clean.tip_hash)
    assert_same_store(clean.dump, dump_store(store), "blk-file ingest vs RPC ingest")


def test_rest_and_json_rpc_fetch_give_identical_stores(
    wallet_chain: WalletChain, clean: CleanStore, tmp_path: Path
) -> None:
    """The clean store came over JSON-RPC (the node serves no REST, so the default falls back);
    asking for REST from that node is refused with what to do; with ``-rest=1`` the default
    takes REST and the store is the same, row for row."""
    node = wallet_chain.node
    assert clean.report["blocks_fetched_over"] == "rpc"
    refused = cli(tmp_path / "refused", "sync", "--rpc", rpc_url(node), "--rest", "--json")
    assert refused.returncode != 0
    assert "does not serve REST" in refused.stderr and "-rest=1" in refused.stderr
    node.extra_args.append("-rest=1")
    try:
        node.restart()
        _assert_node_tip_unchanged(node, clean)
        for args in ((), ("--rest",)):
            store = tmp_path / f"rest{len(args)}"
            result = cli(store, "sync", "--rpc", rpc_url(node), *args, "--json")
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert report["blocks_fetched_over"] == "rest"
            assert (report["tip_height"], report["tip_hash"]) == (clean.tip_height,
                                                                   clean.tip_hash)
            assert_same_store(clean.dump, dump_store(store), "REST sync vs JSON-RPC sync")
        forced = cli(tmp_path / "rpc-only", "sync", "--rpc", rpc_url(node), "--no-rest",
                     "--json")
        assert forced.returncode == 0, forced.stderr
        assert json.loads(forced.stdout)["blocks_fetched_over"] == "rpc"
    finally:
        node.extra_args.remove("-rest=1")
        node.restart()


# -- 4. kill -9 during ingest ---------------------------------------------------------------

def test_sync_killed_at_random_points_resumes_to_the_clean_store(
    wallet_chain: WalletChain, clean: CleanStore, tmp_path: Path
) -> None:
    """``sync --batch-txs 50 --batch-blocks 5`` (commits and block fetches happen often) is
    killed with SIGKILL 20 times, each time a random delay after it asked for the blocks at a
    random height, then run to the end. The heights are drawn with weight 5 + the block's
    transaction count, so that kills land in the long sparse part of the chain and in the
    few dense blocks at its end alike."""
    node = wallet_chain.node
    _assert_node_tip_unchanged(node, clean)
    rng = random.Random(SEED)
    print(f"\nkill -9 test: seed {SEED}")
    height, tx_count = column_index("blocks", "height"), column_index("blocks", "tx_count")
    blocks = clean.dump["blocks"]
    weights = [5 + int(b[tx_count]) for b in blocks]
    targets = sorted(rng.choices([int(b[height]) for b in blocks], weights=weights, k=KILLS))
    store = tmp_path / "killed"
    options = ("--batch-txs", "50", "--batch-blocks", "5", "--json")
    log = []
    with RpcRelay(node) as relay:
        for i, target in enumerate(targets):
            before = store_tip(store)
            relay.highest_height = -1
            proc = cli_popen(store, "sync", "--rpc", relay.url, *options)
            while proc.poll() is None and relay.highest_height < target:
                time.sleep(0.002)
            delay = rng.uniform(0, 0.4)
            time.sleep(delay)
            running = proc.poll() is None
            if running:
                proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            tip = store_tip(store)
            if tip is not None:  # every kill leaves the store as a clean run has it at its tip
                assert_same_store(prefix_dump(clean.dump, tip), dump_store(store),
                                  f"store after kill {i + 1} at height {tip}")
            log.append((i + 1, target, delay, before, tip,
                        "killed" if running else f"exited {proc.returncode}"))
            if not running:  # it completed before its kill
                assert proc.returncode == 0
                break
        for row in log:
            print("run {}: kill {:.3f}s after asking for height >= {}; tip {} -> {} ({})".format(
                row[0], row[2], row[1], *row[3:]))
        final = cli(store, "sync", "--rpc", relay.url, *options)
        assert final.returncode == 0, final.stderr
    assert_same_store(clean.dump, dump_store(store), "store after the kills and a final run")
    heights = {r[4] for r in log if r[5] == "killed" and r[4] is not None
               and r[4] < clean.tip_height}
    print(f"the kills left the store at {len(heights)} distinct heights below the tip")
    assert len(heights) >= KILLS // 4, f"too few kills landed mid-ingest: {log}"


# -- 3. reorganisations during --follow ------------------------------------------------------

def _signed_payments(a: LitecoindNode, wallet: str, dests: list[str]) -> tuple[list[str], Any]:
    """Payments of the wallet's largest confirmed canonical coin, one to each of `dests` (all
    spending that same coin), signed and not sent; and the coin."""
    coins = [u for u in a.rpc("listunspent", 1, wallet=wallet) if "vout" in u]
    coin = max(coins, key=lambda u: u["amount"])
    pays = []
    for dest in dests:
        raw = a.rpc("createrawtransaction", [{"txid": coin["txid"], "vout": coin["vout"]}],
                    {dest: str(coin["amount"] - FEE)})
        signed = a.rpc("signrawtransactionwithwallet", raw, wallet=wallet)
        assert signed["complete"], signed
        pays.append(signed["hex"])
    return pays, coin


def _spend_output_to(a: LitecoindNode, wallet: str, txid: str, address: str, dest: str) -> str:
    tx = a.rpc("getrawtransaction", txid, True)
    (out,) = [o for o in tx["vout"] if out_address(o) == address]
    raw = a.rpc("createrawtransaction", [{"txid": txid, "vout": out["n"]}],
                {dest: str(out["value"] - FEE)})
    signed = a.rpc("signrawtransactionwithwallet", raw, wallet=wallet)
    assert signed["complete"], signed
    return str(a.rpc("sendrawtransaction", signed["hex"]))


def _spender(dump: Dump, txid: str, n: int) -> str | None:
    """The txid spending output `n` of `txid` in a dumped store (None: unspent)."""
    by_id = {int(r[0]): bytes(r[1])[::-1].hex() for r in dump["txs"]}
    tx_id = next(i for i, t in by_id.items() if t == txid)
    assert any(int(r[0]) == tx_id and int(r[1]) == n for r in dump["outputs"])
    spenders = [by_id[int(r[0])] for r in dump["inputs"] if (int(r[2]), int(r[3])) == (tx_id, n)]
    assert len(spenders) <= 1
    return spenders[0] if spenders else None


def test_reorgs_during_follow_leave_the_store_equal_to_a_fresh_ingest(tmp_path: Path) -> None:
    a = new_node()  # the node followed, with the wallets
    b = new_node()  # the other miner: builds the competing branches
    follower: Follower | None = None
    with node_in_use(a), node_in_use(b):
        try:
            builder = WalletChainBuilder(a, SEED + 1, ("alice", "bob", "carol", "dave"),
                                         rounds_before=3, rounds_after=2)
            builder.build_through_mweb()
            b_address = builder.new_address("miner", "legacy")  # B's coinbases: other hashes

            follower = Follower(tmp_path / "follow", rpc_url(a), poll=0.2)
            follower.expect(str(a.rpc("getbestblockhash")))
            follower.start()
            follower.wait()

            total_rolled_back = 0
            for depth in (1, 2, 5, 20):
                push_blocks(a, b)  # B has A's chain; the fork point is A's tip
                fork = int(a.rpc("getblockcount"))
                # the old branch on A: a payment that B's branch double-spends, a child of it,
                # ordinary wallet payments (and a peg-in), spread over `depth` blocks
                carol = builder.new_address("carol", "bech32")
                (to_carol, to_dave), coin = _signed_payments(
                    a, "alice", [carol, builder.new_address("dave", "p2sh-segwit")])
                spent_txid = str(a.rpc("sendrawtransaction", to_carol))
                child_txid = _spend_output_to(a, "carol", spent_txid, carol,
                                              builder.new_address("bob", "legacy"))
                # and a payment the new branch leaves out: its coin must become unspent again
                (withheld,), withheld_coin = _signed_payments(
                    a, "bob", [builder.new_address("carol", "legacy")])
                withheld_txid = str(a.rpc("sendrawtransaction", withheld))
                if depth >= 5:
                    builder.run([("bob", "sendtoaddress", (builder.mweb_pools["alice"][0], "2"))])
                old: list[str] = []
                for k in range(depth):
                    if k < 3:
                        builder.run(builder.plan_round(allow_mweb=False))
                    old += builder.mine(1)
                old_txids = [t for h in old for t in a.rpc("getblock", h, 1)["tx"][1:]]
                assert {spent_txid, child_txid, withheld_txid} <= set(old_txids)
                follower.expect(old[-1])
                before = follower.wait()  # the follower holds the old branch
                assert _spender(before, coin["txid"], coin["vout"]) == spent_txid
                assert _spender(before, spent_txid, 0) == child_txid
                assert _spender(before, withheld_coin["txid"],
                                withheld_coin["vout"]) == withheld_txid

                # the new branch on B: the double-spend first, then A's other transactions that
                # B accepts (moved to other blocks), one block longer than the old branch
                b.rpc("sendrawtransaction", to_dave)
                new = b.mine(1, b_address)
                moved = []
                for txid in old_txids:
                    if txid in (spent_txid, child_txid, withheld_txid):
                        continue
                    try:
                        b.rpc("sendrawtransaction", a.rpc("getrawtransaction", txid))
                    except RpcError:  # spends what the new branch lacks, or the HogEx
                        continue
                    moved.append(txid)
                new += b.mine(depth, b_address)
                assert len(new) == depth + 1
                via_invalidate = depth in (2, 20)
                if via_invalidate:
                    # A drops the old branch first: the follower rolls back to the fork point
                    # and then sees the new branch grow from there
                    a.rpc("invalidateblock", old[0])
                    follower.wait_for_height(fork)
                # else the follower sees A switch at once from the old tip to the new branch
                follower.expect(new[-1])
                push_blocks(b, a)
                if via_invalidate:
                    a.rpc("reconsiderblock", old[0])  # valid again, but the shorter branch
                assert str(a.rpc("getbestblockhash")) == new[-1], "node A did not switch branches"
                assert not set(old) & set(a.best_chain())
                snapshot = follower.wait()
                total_rolled_back += depth

                fresh = tmp_path / f"fresh-{depth}"
                with open_chain(fresh, "litecoin", "regtest") as store, \
                        RpcClient(rpc_url(a)) as rpc:
                    sync_rpc(UtxoIngestor(store), rpc)
                    expected = dump_chain_store(store)
                assert_same_store(expected, snapshot, f"store after the depth-{depth} reorg")
                # spent/unspent state rolled back: the double-spent coin has its new spender, the
                # old spender and its child are gone, the withheld payment's coin is unspent
                txids = {bytes(r[1])[::-1].hex() for r in snapshot["txs"]}
                to_dave_txid = str(b.rpc("decoderawtransaction", to_dave)["txid"])
                assert _spender(snapshot, coin["txid"], coin["vout"]) == to_dave_txid
                assert not {spent_txid, child_txid, withheld_txid} & txids
                assert _spender(snapshot, withheld_coin["txid"], withheld_coin["vout"]) is None
                print(f"depth {depth}{' (invalidateblock)' if via_invalidate else ''}: fork at "
                      f"{fork}, {len(old_txids)} old transactions, {len(moved)} moved to the new "
                      "branch")
                assert moved, "no transaction moved to the new branch"

            result = follower.finish()
            follower = None
            assert (result.reorgs, result.blocks_rolled_back) == (4, total_rolled_back)
            assert result.tip_hash == str(a.rpc("getbestblockhash"))
        finally:
            if follower is not None:
                follower.stop.set()
                follower.thread.join(timeout=30)


# -- 5. a node that dies mid-sync ------------------------------------------------------------

def test_node_killed_mid_sync_gives_one_error_and_the_same_command_resumes(
    wallet_chain: WalletChain, clean: CleanStore, tmp_path: Path
) -> None:
    node = wallet_chain.node
    _assert_node_tip_unchanged(node, clean)
    node.rpc("gettxoutsetinfo")  # flushes the node's state, so it survives SIGKILL intact
    store = tmp_path / "store"
    # the sync fetches up to two batches (2 x 50 blocks) ahead, 10 blocks per getblock
    # request, from before the store is open: the node dies at the 15th request, once the
    # ingest has taken blocks
    with RpcRelay(node, kill_node_after=15) as relay:
        args = ("sync", "--rpc", relay.url, "--batch-blocks", "50")
        try:
            result = cli(store, *args)
            assert relay.node_killed.is_set()
            assert not node.running
        finally:
            node.stop()
            node.start()
        _assert_node_tip_unchanged(node, clean)
        assert result.returncode == 1, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        message = lines[0]
        height = store_tip(store)
        assert height is not None and 0 < height < clean.tip_height
        assert f"127.0.0.1:{relay.port}" in message  # names the node
        assert f"consistent at height {height}" in message
        assert "run the same command again" in message
        assert node.rpc_password not in message
        assert_same_store(prefix_dump(clean.dump, height), dump_store(store),
                          f"store after the node died (height {height})")
        print(f"\n{message}")

        again = cli(store, *args)
        assert again.returncode == 0, again.stderr
    assert_same_store(clean.dump, dump_store(store), "store resumed after the node came back")



# -- 6. a node that is behind, a node of another chain ----------------------------------------

def test_a_node_behind_the_store_is_not_a_reorg(tmp_path: Path) -> None:
    """A node whose best chain is a prefix of the store's (still syncing, reindexing) must not
    roll the store back: `sync` refuses with an error naming both heights and keeps every
    block; `--follow` waits for the node and ingests once it has caught up."""
    a, b = new_node(), new_node()
    try:
        a.rpc("createwallet", "miner")
        a.mine(40, str(a.rpc("getnewaddress", wallet="miner")))
        store = tmp_path / "store"
        assert cli(store, "sync", "--rpc", rpc_url(a)).returncode == 0
        before = dump_store(store)
        src = a.best_chain()
        for h in src[1:26]:  # b holds blocks 0-25 of a's chain
            b.rpc("submitblock", str(a.rpc("getblock", h, 0)))
        assert int(b.rpc("getblockcount")) == 25
        behind = cli(store, "sync", "--rpc", rpc_url(b))
        assert behind.returncode == 1, (behind.stdout, behind.stderr)
        message = " ".join(behind.stderr.split())
        assert "is at height 25, below the store's tip 40, on the same chain" in message
        assert "The store keeps its blocks" in message
        assert_same_store(before, dump_store(store), "store after syncing from a node behind")

        # --follow: waits below the store's tip, then takes the new blocks once b has them
        with open_chain(store, "litecoin", "regtest") as chain_store, \
                UtxoIngestor(chain_store) as ingestor:
            client = RpcClient(rpc_url(b))
            polls = {"n": 0}

            def catch_up() -> bool:
                polls["n"] += 1
                if polls["n"] == 3:  # b catches up and passes the store
                    a.mine(2, str(a.rpc("getnewaddress", wallet="miner")))
                    push_blocks(a, b)
                return ingestor.height >= 42

            result = sync_rpc(ingestor, client, follow=True, poll_seconds=0.05,
                              should_stop=catch_up)
        assert (result.tip_height, result.reorgs, result.blocks_rolled_back) == (42, 0, 0)
        assert result.tip_hash == str(a.rpc("getbestblockhash"))
    finally:
        discard_node(a)
        discard_node(b)


def test_blocks_fetched_before_the_store_opened_lead_to_the_nodes_tip(tmp_path: Path) -> None:
    """`sync` into a new store starts fetching from the genesis block before it opens the
    store (fetch_from_genesis). When the node mines on meanwhile, the sync goes on from the
    tip it fetched to to the node's new tip; a fetcher that does not start where the store
    ends is dropped. Both stores equal a plain sync's, row for row."""
    node = new_node("-rest=1")
    try:
        node.rpc("createwallet", "miner")
        miner = str(node.rpc("getnewaddress", wallet="miner"))
        node.mine(30, miner)
        with RpcClient(rpc_url(node)) as client:
            ahead = fetch_from_genesis(client, 8)
            assert ahead is not None and ahead.rest and ahead.last == 30
            node.mine(7, miner)  # the node moves on while the store opens
            store = tmp_path / "ahead"
            with open_chain(store, "litecoin", "regtest") as chain_store, \
                    UtxoIngestor(chain_store) as ingestor:
                result = sync_rpc(ingestor, client, batch_blocks=8, ahead=ahead)
            ahead.close()
            assert (result.tip_height, result.blocks, result.reorgs) == (37, 38, 0)
            assert result.tip_hash == str(node.rpc("getbestblockhash"))

            plain = tmp_path / "plain"
            assert cli(plain, "sync", "--rpc", rpc_url(node)).returncode == 0
            assert_same_store(dump_store(plain), dump_store(store), "sync with blocks ahead")

            node.mine(3, miner)  # a store with blocks: a fetcher from genesis is not used
            stale = fetch_from_genesis(client, 8)
            assert stale is not None
            with open_chain(store, "litecoin", "regtest") as chain_store, \
                    UtxoIngestor(chain_store) as ingestor:
                result = sync_rpc(ingestor, client, batch_blocks=8, ahead=stale)
            stale.close()
            assert (result.start_height, result.tip_height, result.blocks) == (37, 40, 3)
        assert cli(plain, "sync", "--rpc", rpc_url(node)).returncode == 0
        assert_same_store(dump_store(plain), dump_store(store), "resumed sync")
    finally:
        discard_node(node)


def test_a_node_of_another_chain_is_refused_by_its_genesis(tmp_path: Path) -> None:
    """Litecoin regtest reports network "regtest" like Bitcoin regtest; only its genesis block
    tells them apart. Without the check its blocks were stored as Bitcoin regtest."""
    node = new_node()
    try:
        node.rpc("createwallet", "miner")
        node.mine(3, str(node.rpc("getnewaddress", wallet="miner")))
        argv = cointrail_argv(tmp_path / "store", "sync", "--rpc", rpc_url(node))
        argv[argv.index("litecoin")] = "bitcoin"
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 2, (done.stdout, done.stderr)
        message = " ".join(done.stderr.split())
        assert (f"the node at http://127.0.0.1:{node.rpc_port}/: its genesis block "
                "530827f38f93b43e… is litecoin/regtest's, not bitcoin/regtest's; pass --chain "
                "litecoin --network regtest") in message, message
        assert node.rpc_password not in message
    finally:
        discard_node(node)


def test_follow_waits_out_a_node_restart(tmp_path: Path) -> None:
    """`sync --follow` is meant to run for months: a node stopped for an upgrade must not end
    it. The follower says what happened and waits, backing off, then takes the new blocks."""
    node = new_node()
    try:
        node.rpc("createwallet", "miner")
        address = str(node.rpc("getnewaddress", wallet="miner"))
        node.mine(5, address)
        notices: list[str] = []
        restart: list[threading.Thread] = []

        def back_with_blocks() -> None:
            time.sleep(1.0)
            node.start()
            node.mine(3, address)

        with open_chain(tmp_path / "store", "litecoin", "regtest") as store, \
                UtxoIngestor(store) as ingestor:

            def step() -> bool:
                if ingestor.height == 5 and not restart:
                    node.stop()  # the follower's next call finds no node
                    restart.append(threading.Thread(target=back_with_blocks))
                    restart[0].start()
                return ingestor.height >= 8

            result = sync_rpc(ingestor, RpcClient(rpc_url(node)), follow=True,
                              poll_seconds=0.2, should_stop=step, on_notice=notices.append)
        restart[0].join()
        assert result.tip_height == 8 and result.tip_hash == str(node.rpc("getbestblockhash"))
        assert notices, "the follower said nothing while the node was away"
        assert "the store is consistent at height 5; trying again in" in notices[0]
        assert node.rpc_password not in " ".join(notices)
    finally:
        discard_node(node)


def _tip_or_busy(store: Path) -> int | None:
    """The store's tip as another process reads it; None while the store is held."""
    done = cli(store, "status", "--json")
    if done.returncode != 0:
        return None
    chains = json.loads(done.stdout)["chains"]  # none before the follower creates the store
    return None if not chains or "error" in chains[0] else chains[0]["tip_height"]


def _follower_at_five(node: LitecoindNode, store: Path) -> tuple[str, subprocess.Popen[str]]:
    """Five blocks mined, `sync --follow` started on them and at their tip (as `status`, in
    another process, reads it); the miner's address and the follower."""
    node.rpc("createwallet", "miner")
    address = str(node.rpc("getnewaddress", wallet="miner"))
    node.mine(5, address)
    follower = cli_popen(store, "sync", "--rpc", rpc_url(node), "--follow", "--poll", "0.2")
    wait_for(lambda: _tip_or_busy(store) == 5, follower, "status read the tip, 5")
    return address, follower


HOLD_STORE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def test_follow_lets_other_commands_use_the_store_while_it_waits(tmp_path: Path) -> None:
    """`sync --follow` runs for months beside `status`, `show`, `cluster` and the API server.
    DuckDB lets no other process open a database one process holds for writing, so the
    follower releases the store while it waits for the node's next block: other commands
    read it meanwhile, and new blocks are taken once nobody holds it (the follower says it is
    waiting). Ctrl-C then stops the follower at its committed tip."""
    node = new_node()
    store = tmp_path / "store"
    follower: subprocess.Popen[str] | None = None
    try:
        address, follower = _follower_at_five(node, store)
        shown = cli(store, "show", "block", "5", "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["hash"] == str(node.rpc("getbestblockhash"))

        node.mine(2, address)  # taken while nobody holds the store
        wait_for(lambda: _tip_or_busy(store) == 7, follower, "the follower took blocks 6-7")

        holder = subprocess.Popen([sys.executable, "-c", HOLD_STORE,
                                   str(store / "litecoin-regtest.duckdb")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            node.mine(3, address)
            time.sleep(2.0)  # the follower sees the blocks and finds the store held
            assert follower.poll() is None
        finally:
            holder.communicate("", timeout=60)
        wait_for(lambda: _tip_or_busy(store) == 10, follower, "the follower took 8-10")

        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=120)
        code, follower = follower.returncode, None
        message = " ".join(err.split())
        assert code == 130, (code, message)
        assert "is in use by another cointrail process" in message, message
        assert "new blocks are taken once it is free" in message, message
        assert "interrupted at height 10 (the store is consistent there)" in message, message
        assert node.rpc_password not in message + out
        assert store_tip(store) == 10
    finally:
        if follower is not None:
            follower.kill()
            follower.communicate()
        discard_node(node)


def test_follow_takes_new_blocks_while_the_api_server_answers_steadily(tmp_path: Path) -> None:
    """The API server keeps a store's database open between requests (its anchor, released
    after 5 idle seconds): under steady requests it never is idle, and a follower would
    wait forever. A waiting follower leaves a marker beside the database; the server then
    holds nothing between requests, the follower gets in between two of them, and requests
    that come while it ingests wait for it instead of failing."""
    from cointrail.auth.keys import create_key
    from cointrail.interfaces.api import ApiConfig, create_app
    from cointrail.settings import load_settings

    node = new_node()
    store = tmp_path / "store"
    follower: subprocess.Popen[str] | None = None
    stack = contextlib.ExitStack()
    try:
        address, follower = _follower_at_five(node, store)
        key = create_key(store, "analyst", "analyst").secret
        app = create_app(load_settings(store=store, chain="litecoin", network="regtest"),
                         ApiConfig(rate_per_second=500, burst=1000))
        server = stack.enter_context(serving(app))

        statuses: list[int] = []
        with httpx.Client(base_url=f"{server}/api/v1",
                          headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
            assert api.get("/blocks/5").status_code == 200
            node.mine(3, address)
            deadline = time.monotonic() + 120
            while True:  # a request every 0.1 s: the anchor is never idle for 5 s
                answer = api.get("/blocks/8")
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    break
                assert follower.poll() is None, follower.communicate()
                assert time.monotonic() < deadline, (
                    f"the follower did not get blocks 6-8 within 120 s under steady API "
                    f"requests (answers: {sorted(set(statuses))})")
                time.sleep(0.1)
        assert answer.json()["hash"] == str(node.rpc("getbestblockhash"))
        assert set(statuses) <= {200, 404}, statuses  # never 503 "in use"
        assert not (store / "litecoin-regtest.duckdb.writer-waiting").exists()

        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=120)
        code, follower = follower.returncode, None
        assert code == 130, err
        assert "interrupted at height 8" in " ".join(err.split())
    finally:
        stack.close()
        if follower is not None:
            follower.kill()
            follower.communicate()
        discard_node(node)
