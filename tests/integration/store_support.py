"""Helpers for the store tests against a real ``litecoind -regtest``.

* `dump_store` / `dump_chain_store`: every table of a store as sorted rows; `prefix_dump`: the
  rows a store must hold at a lower tip; `diff_dumps` / `assert_same_store`: two stores compared
  row for row, with a report of the divergent rows.
* `cli` / `cli_popen`: the ``cointrail`` command in a subprocess.
* `new_node` / `discard_node`: a regtest node with a small keypool, data kept in memory.
* `WalletChainBuilder`: wallets paying each other (every address type, sendmany, address reuse,
  coinbases), MWEB activation with peg-ins at height 432, peg-ins and peg-outs after it, three
  thousand raw anyone-can-spend transactions, a two-block reorganisation at the tip.
* `walk_chain` / `node_address_truth`: the node's own view of the chain and of every canonical
  wallet address (received total, balance), to compare the store with.
* `Follower`: ``sync_rpc(follow=True)`` in a thread, with a store dump at a chosen tip.
* `push_blocks`: copy one node's best chain to another with ``submitblock``.
* `RpcRelay`: a JSON-RPC relay that watches a sync's progress and can kill the node.

The node's side never goes through cointrail's code: expected values come from litecoind.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from cointrail.errors import NotFoundError
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.schema import TABLES
from tests.support.litecoind import LitecoindNode, RpcError, to_sat

CHAIN = "litecoin"
NETWORK = "regtest"
COIN = 100_000_000
MWEB_HEIGHT = 432  # MWEB is active from this height on regtest (BIP 9, always active)
ADDRESS_TYPES = ("legacy", "p2sh-segwit", "bech32")

Dump = dict[str, list[tuple[Any, ...]]]


# -- dumping and comparing stores -----------------------------------------------------------

def dump_chain_store(store: ChainStore) -> Dump:
    """Every table of an open store, rows sorted by all columns."""
    return {
        t.name: [tuple(r) for r in store.query(f"SELECT * FROM {t.name} ORDER BY ALL")]
        for t in TABLES
    }


def dump_store(root: Path | str) -> Dump:
    """Every table of the litecoin/regtest store in directory `root` (opened read-only)."""
    with open_chain(root, CHAIN, NETWORK, read_only=True) as store:
        return dump_chain_store(store)


def store_tip(root: Path | str) -> int | None:
    """The store's tip height; None when the store has no database or no block yet."""
    try:
        with open_chain(root, CHAIN, NETWORK, read_only=True, create=False) as store:
            tip = store.tip()
    except NotFoundError:  # no database yet
        return None
    return None if tip is None else tip.height


def column_index(table: str, column: str) -> int:
    """Position of `column` in the rows of `table` in a dump."""
    for t in TABLES:
        if t.name == table:
            return t.column_names.index(column)
    raise KeyError(table)


def prefix_dump(dump: Dump, height: int) -> Dump:
    """The rows a store holding `dump`'s chain must hold when its tip is `height`."""
    h = column_index("blocks", "height")
    blocks = [r for r in dump["blocks"] if r[h] <= height]
    above = [r for r in dump["blocks"] if r[h] > height]
    first_tx = min((r[column_index("blocks", "first_tx_id")] for r in above), default=None)
    first_addr = min((r[column_index("blocks", "first_addr_id")] for r in above), default=None)

    def keep(table: str, column: str, limit: int | None) -> list[tuple[Any, ...]]:
        i = column_index(table, column)
        return [r for r in dump[table] if limit is None or r[i] < limit]

    out = dict(dump)
    out["blocks"] = blocks
    for table in ("txs", "outputs", "inputs", "coinbases"):
        out[table] = keep(table, "tx_id", first_tx)
    out["addresses"] = keep("addresses", "addr_id", first_addr)
    out["transfers"] = keep("transfers", "tx_id", first_tx)
    out["sync_state"] = sorted(
        [r for r in dump["sync_state"] if r[0] != "tip_height"] + [("tip_height", str(height))]
    )
    return out


def _show(row: tuple[Any, ...]) -> str:
    parts = []
    for v in row:
        if isinstance(v, bytes | bytearray | memoryview):
            b = bytes(v)
            parts.append(b.hex() if len(b) <= 12 else f"{b[:6].hex()}..{b[-4:].hex()}")
        else:
            parts.append(repr(v))
    return "(" + ", ".join(parts) + ")"


def diff_dumps(expected: Dump, got: Dump, examples: int = 4) -> tuple[int, str]:
    """(number of divergent rows, report). A row is divergent when it is in one store and not
    the other (rows compared as multisets, every column)."""
    total = 0
    lines = []
    for table in sorted(set(expected) | set(got)):
        want = Counter(expected.get(table, []))
        have = Counter(got.get(table, []))
        missing = list((want - have).elements())
        extra = list((have - want).elements())
        if not missing and not extra:
            continue
        total += len(missing) + len(extra)
        lines.append(
            f"{table}: {len(missing)} row(s) missing, {len(extra)} unexpected "
            f"(expected {sum(want.values())} rows, store has {sum(have.values())})"
        )
        lines += [f"    missing    {_show(r)}" for r in sorted(missing, key=repr)[:examples]]
        lines += [f"    unexpected {_show(r)}" for r in sorted(extra, key=repr)[:examples]]
    return total, "\n".join(lines)


def assert_same_store(expected: Dump, got: Dump, what: str) -> None:
    count, report = diff_dumps(expected, got)
    assert count == 0, f"{what}: {count} divergent row(s)\n{report}"


def row_counts(dump: Dump) -> dict[str, int]:
    return {t: len(rows) for t, rows in dump.items()}


# -- the cointrail command ------------------------------------------------------------------

def cointrail_argv(store: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "cointrail.interfaces.cli.main", "--store", str(store),
            "--chain", CHAIN, "--network", NETWORK, *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COINTRAIL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(store: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``cointrail --store STORE --chain litecoin --network regtest ARGS``."""
    return subprocess.run(cointrail_argv(store, *args), capture_output=True, text=True,
                          timeout=timeout, env=_env(), stdin=subprocess.DEVNULL, check=False)


def cli_popen(store: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cointrail_argv(store, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(),
                            stdin=subprocess.DEVNULL)


def rpc_url(node: LitecoindNode, port: int | None = None) -> str:
    """The node's RPC URL with its credentials (loopback address only)."""
    return f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{port or node.rpc_port}/"


class ThreadRpc:
    """JSON-RPC calls for a worker thread: its own connection, closed after each request.

    The node harness's client keeps connections alive; several threads sharing it leave idle
    connections that make a later ``stop`` wait for the node's RPC server timeout."""

    def __init__(self, node: LitecoindNode, wallet: str | None = None) -> None:
        self.node = node
        self.wallet = wallet

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        if not calls:
            return []
        payload = [{"jsonrpc": "1.0", "id": i, "method": m, "params": list(p)}
                   for i, (m, p) in enumerate(calls)]
        path = f"wallet/{self.wallet}" if self.wallet else ""
        response = httpx.post(
            f"http://127.0.0.1:{self.node.rpc_port}/{path}",
            content=json.dumps(payload, default=str),
            auth=(self.node.rpc_user, self.node.rpc_password),
            headers={"connection": "close", "content-type": "text/plain"},
            timeout=120,
        )
        answers = {a["id"]: a for a in json.loads(response.text, parse_float=Decimal)}
        results = []
        for i, (method, params) in enumerate(calls):
            error = answers[i].get("error")
            if error:
                raise RpcError(method, params, error.get("code"), error.get("message"))
            results.append(answers[i]["result"])
        return results

    def call(self, method: str, *params: Any) -> Any:
        return self.batch([(method, params)])[0]


# -- raw transactions -----------------------------------------------------------------------

def _compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def raw_tx(
    inputs: Sequence[tuple[str, int]],
    outputs: Sequence[tuple[int, bytes]],
    witnesses: Sequence[Sequence[bytes]] | None = None,
) -> str:
    """A version-2 transaction, hex; inputs (txid RPC hex, vout) with empty scriptSigs."""
    parts = [(2).to_bytes(4, "little")]
    if witnesses:
        parts.append(b"\x00\x01")
    parts.append(_compact(len(inputs)))
    for txid, vout in inputs:
        parts += [bytes.fromhex(txid)[::-1], vout.to_bytes(4, "little"), b"\x00", b"\xff" * 4]
    parts.append(_compact(len(outputs)))
    for value, script in outputs:
        parts += [value.to_bytes(8, "little"), _compact(len(script)), script]
    if witnesses:
        for stack in witnesses:
            parts.append(_compact(len(stack)))
            for item in stack:
                parts += [_compact(len(item)), item]
    parts.append((0).to_bytes(4, "little"))
    return b"".join(parts).hex()


def raw_tx_and_txid(
    inputs: Sequence[tuple[str, int]],
    outputs: Sequence[tuple[int, bytes]],
    witnesses: Sequence[Sequence[bytes]],
) -> tuple[str, str]:
    """(hex with witnesses, txid): the txid hashes the serialization without witnesses."""
    stripped = bytes.fromhex(raw_tx(inputs, outputs))
    txid = hashlib.sha256(hashlib.sha256(stripped).digest()).digest()[::-1].hex()
    return raw_tx(inputs, outputs, witnesses), txid


def anyone_script(n: int) -> bytes:
    """Witness script ``<n> OP_DROP OP_TRUE``: spendable with the script as the only witness
    item; a different P2WSH address for each `n`."""
    return b"\x02" + n.to_bytes(2, "little") + b"\x75\x51"


def p2wsh(script: bytes) -> bytes:
    return b"\x00\x20" + hashlib.sha256(script).digest()


OP_RETURN = b"\x6a\x08cointrl!"


# -- nodes ----------------------------------------------------------------------------------

def is_mweb(address: str) -> bool:
    return address.startswith(("tmweb1", "ltcmweb1"))


def new_node(*extra_args: str, listen: bool = False) -> LitecoindNode:
    """A started regtest node with a small keypool (fast wallet creation); its data directory
    is in memory (/dev/shm) when that exists. `discard_node` stops it and removes the data.
    `listen`: its P2P port (`node.p2p_port`) listens on 127.0.0.1."""
    shm = Path("/dev/shm")
    datadir = None
    if shm.is_dir() and os.access(shm, os.W_OK):
        datadir = Path(tempfile.mkdtemp(prefix="cointrail-ltc-", dir=shm))
    node = LitecoindNode(extra_args=["-keypool=10", *extra_args], datadir=datadir,
                         listen=listen)
    try:
        node.start()
    except BaseException:
        discard_node(node)
        raise
    return node


def discard_node(node: LitecoindNode) -> None:
    node.cleanup()
    shutil.rmtree(node.datadir, ignore_errors=True)


@contextlib.contextmanager
def node_in_use(node: LitecoindNode) -> Iterator[LitecoindNode]:
    """A block that uses `node`: when it fails, the node's log tail goes to stderr; after it,
    either way, the node is discarded (stopped, its data directory removed)."""
    try:
        yield node
    except BaseException:
        print(f"litecoind log tail:\n{node.log_tail()}", file=sys.stderr)
        raise
    finally:
        discard_node(node)


# -- the chain ------------------------------------------------------------------------------

@dataclass
class WalletChain:
    node: LitecoindNode
    wallets: list[str]  # wallets paying each other
    miner_wallet: str = "miner"  # most coinbases; funds the raw transactions
    vault_wallet: str = "vault"  # MWEB coins only: receives peg-ins, makes peg-outs
    stale_hashes: list[str] = field(default_factory=list)
    mempool_txids: list[str] = field(default_factory=list)
    wallet_txs: int = 0
    bulk_txs: int = 0
    pegins: int = 0
    pegouts: int = 0
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def all_wallets(self) -> list[str]:
        return [self.miner_wallet, self.vault_wallet, *self.wallets]


Action = tuple[str, str, tuple[Any, ...]]  # wallet, method, params


class WalletChainBuilder:
    """Builds the chain described in the module docstring on `node` (a fresh regtest node).

    Every random choice is made in the calling thread from `seed`; the wallets of a round then
    send in parallel (one thread per wallet, in the planned order within a wallet)."""

    def __init__(self, node: LitecoindNode, seed: int, wallets: Sequence[str],
                 rounds_before: int = 18, rounds_after: int = 18) -> None:
        self.node = node
        self.rng = random.Random(seed)
        self.chain = WalletChain(node, list(wallets), seed=seed)
        self.rounds_before = rounds_before
        self.rounds_after = rounds_after
        self.pools: dict[str, list[str]] = {}
        self.mweb_pools: dict[str, list[str]] = {}
        self.miner = ""
        self.lock = threading.Lock()

    # -- small helpers
    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        return self.node.rpc(method, *params, wallet=wallet)

    def height(self) -> int:
        return int(self.rpc("getblockcount"))

    def mine(self, n: int = 1, address: str | None = None) -> list[str]:
        return self.node.mine(n, address or self.miner)

    def new_address(self, wallet: str, kind: str) -> str:
        return str(self.rpc("getnewaddress", f"{wallet}-{kind}", kind, wallet=wallet))

    def spk(self, address: str) -> bytes:
        info = self.rpc("getaddressinfo", address, wallet=self.chain.miner_wallet)
        return bytes.fromhex(info["scriptPubKey"])

    def pick_recipient(self, sender: str, allow_mweb: bool) -> str:
        others = [w for w in self.chain.wallets if w != sender] or [sender]
        wallet = self.rng.choice(others if self.rng.random() < 0.9 else [sender])
        roll = self.rng.random()
        if allow_mweb and roll < 0.06:
            return self.rng.choice(self.mweb_pools[wallet])
        if roll < 0.15:  # a fresh address, which joins the pool for reuse
            addr = self.new_address(wallet, self.rng.choice(ADDRESS_TYPES))
            self.pools[wallet].append(addr)
            return addr
        return self.rng.choice(self.pools[wallet])

    def amount(self, scale: int = 1) -> str:
        return str(Decimal(self.rng.randrange(1_000_000, 150_000_000) // scale) / COIN)

    def run(self, actions: Sequence[Action]) -> None:
        """Run wallet calls: each wallet's in order, different wallets in parallel."""
        by_wallet: dict[str, list[Action]] = {}
        for action in actions:
            by_wallet.setdefault(action[0], []).append(action)

        def work(items: list[Action]) -> None:
            for wallet, method, params in items:
                try:
                    ThreadRpc(self.node, wallet).call(method, *params)
                except RpcError as exc:
                    with self.lock:
                        self.chain.notes.append(f"{wallet} {method}: {exc.node_message}")
                    continue
                with self.lock:
                    self.chain.wallet_txs += 1

        threads = [threading.Thread(target=work, args=(items,)) for items in by_wallet.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # -- stages
    def setup(self) -> None:
        c = self.chain
        for w in c.all_wallets:
            self.rpc("createwallet", w)
        self.miner = self.new_address(c.miner_wallet, "bech32")
        # coinbases to wallet addresses of every type (received and immature coinbase count)
        for w in c.wallets:
            self.pools[w] = [self.new_address(w, k) for k in ADDRESS_TYPES for _ in range(4)]
            for addr in self.rng.sample(self.pools[w], 4):
                self.mine(1, addr)
        self.mine(101)

    def plan_round(self, allow_mweb: bool) -> list[Action]:
        c = self.chain
        actions: list[Action] = []
        for sender in c.wallets:
            for _ in range(self.rng.choice((1, 2, 2))):
                if self.rng.random() < 0.3:
                    outs: dict[str, str] = {}
                    for _ in range(self.rng.randrange(2, 9)):
                        addr = self.pick_recipient(sender, allow_mweb=False)
                        outs[addr] = self.amount(4)
                    actions.append((sender, "sendmany", ("", outs)))
                else:
                    addr = self.pick_recipient(sender, allow_mweb)
                    if is_mweb(addr):
                        c.pegins += 1
                    actions.append((sender, "sendtoaddress", (addr, self.amount())))
        return actions

    def transact_round(self, allow_mweb: bool) -> None:
        c = self.chain
        actions = self.plan_round(allow_mweb)
        if allow_mweb and self.rng.random() < 0.3:  # a peg-out from the MWEB-only wallet
            wallet = self.rng.choice(c.wallets)
            actions.append((c.vault_wallet, "sendtoaddress",
                            (self.rng.choice(self.pools[wallet]), self.amount(2))))
            c.pegouts += 1
        self.run(actions)
        roll = self.rng.random()
        if roll < 0.15:
            return  # leave the round in the mempool: the next round spends unconfirmed change
        if roll < 0.3:
            self.mine(1, self.rng.choice(self.pools[self.rng.choice(c.wallets)]))
        else:
            self.mine(1)

    def mweb_activation(self) -> None:
        c = self.chain
        for w in c.wallets:
            self.mweb_pools[w] = [self.new_address(w, "mweb") for _ in range(2)]
        vault = [self.new_address(c.vault_wallet, "mweb") for _ in range(2)]
        missing = MWEB_HEIGHT - 1 - self.height()
        assert missing >= 0, "the wallet rounds went past the MWEB activation height"
        self.mine(missing)
        # the first MWEB block needs a peg-in in the mempool: one to each wallet's and two to
        # the vault's MWEB addresses
        actions: list[Action] = [
            (sender, "sendtoaddress", (self.mweb_pools[receiver][0], "7"))
            for sender, receiver in zip(c.wallets, c.wallets[1:] + c.wallets[:1], strict=True)
        ]
        actions += [(c.wallets[0], "sendtoaddress", (vault[0], "40")),
                    (c.wallets[1], "sendtoaddress", (vault[1], "40"))]
        self.run(actions)
        c.pegins += len(actions)
        self.mine(1)
        assert self.height() == MWEB_HEIGHT
        assert "mweb" in self.rpc("getblock", self.rpc("getbestblockhash"), 1)

    def bulk(self, funding_outputs: int = 30, split: int = 50, per_block: int = 300) -> None:
        """A few thousand raw transactions between anyone-can-spend P2WSH outputs (500
        addresses, reused), some paying wallet addresses, some with an OP_RETURN."""
        c = self.chain
        n_scripts = 500
        scripts = [anyone_script(i) for i in range(n_scripts)]
        spks = [p2wsh(s) for s in scripts]
        wallet_spks = [self.spk(a) for w in c.wallets for a in self.pools[w][:6]]
        fund_value = 20 * COIN
        funded = self.rpc("fundrawtransaction",
                          raw_tx([], [(fund_value, spks[i]) for i in range(funding_outputs)]),
                          {}, False, wallet=c.miner_wallet)
        signed = self.rpc("signrawtransactionwithwallet", funded["hex"], wallet=c.miner_wallet)
        fund_txid = str(self.rpc("sendrawtransaction", signed["hex"]))
        c.bulk_txs += 1
        self.mine(1)
        by_spk = {o["scriptPubKey"]["hex"]: int(o["n"])
                  for o in self.rpc("getrawtransaction", fund_txid, True)["vout"]}
        # (txid, vout, value, script index)
        coins = [(fund_txid, by_spk[spks[i].hex()], fund_value, i) for i in range(funding_outputs)]
        txs: list[str] = []
        next_script = funding_outputs
        split_coins = []
        for j, (txid, vout, value, si) in enumerate(coins):
            each = (value - 50_000) // split
            outs = [(each, spks[(next_script + k) % n_scripts]) for k in range(split)]
            if j % 10 == 0:
                outs.append((0, OP_RETURN))
            hex_tx, tid = raw_tx_and_txid([(txid, vout)], outs, [[scripts[si]]])
            split_coins += [(tid, k, each, (next_script + k) % n_scripts) for k in range(split)]
            next_script += split
            txs.append(hex_tx)
        self._send_raw(txs, per_block)
        # one input to two outputs; every 37th pays a wallet address with its second output
        txs = []
        pair_coins = []
        for j, (txid, vout, value, si) in enumerate(split_coins):
            half = (value - 3_000) // 2
            a = (si * 7 + j) % n_scripts
            b = (si * 13 + 3 * j) % n_scripts
            second = wallet_spks[j % len(wallet_spks)] if j % 37 == 0 else spks[b]
            outs = [(half, spks[a]), (value - 3_000 - half, second)]
            if j % 101 == 0:
                outs.append((0, OP_RETURN))
            hex_tx, tid = raw_tx_and_txid([(txid, vout)], outs, [[scripts[si]]])
            pair_coins.append((tid, 0, half, a))
            if j % 37:
                pair_coins.append((tid, 1, value - 3_000 - half, b))
            txs.append(hex_tx)
        self._send_raw(txs, per_block)
        # two inputs (outputs of different transactions) to one output
        self.rng.shuffle(pair_coins)
        txs = []
        for k in range(0, len(pair_coins) - 1, 2):
            x, y = pair_coins[k], pair_coins[k + 1]
            dest = spks[(x[3] + y[3]) % n_scripts]
            hex_tx = raw_tx([(x[0], x[1]), (y[0], y[1])], [(x[2] + y[2] - 4_000, dest)],
                            [[scripts[x[3]]], [scripts[y[3]]]])
            txs.append(hex_tx)
        self._send_raw(txs, per_block)

    def _send_raw(self, txs: list[str], per_block: int) -> None:
        for i in range(0, len(txs), per_block):
            chunk = txs[i:i + per_block]
            self.node.batch([("sendrawtransaction", [t]) for t in chunk])
            self.chain.bulk_txs += len(chunk)
            self.mine(1)

    def tip_reorg(self) -> None:
        """Mine a block with wallet transactions and a peg-out, replace it by two others (its
        transactions move to the new blocks; the blk files keep the stale block); the peg-out
        stays immature (younger than its maturity of 6 blocks)."""
        c = self.chain
        pegout = (c.vault_wallet, "sendtoaddress", (self.rng.choice(self.pools[c.wallets[0]]), "1"))
        self.run([*self.plan_round(allow_mweb=False), pegout])
        c.pegouts += 1
        stale = self.mine(1)[0]
        self.rpc("invalidateblock", stale)
        self.mine(2, self.new_address(c.miner_wallet, "legacy"))
        self.rpc("reconsiderblock", stale)
        assert str(self.rpc("getbestblockhash")) != stale
        c.stale_hashes.append(stale)

    def leave_mempool(self) -> None:
        """Unconfirmed payments: the store must not count them."""
        c = self.chain
        actions: list[Action] = [
            (sender, "sendtoaddress", (self.rng.choice(self.pools[c.wallets[-1]]), "0.5"))
            for sender in c.wallets[:2]
        ]
        self.run(actions)
        c.mempool_txids = list(self.rpc("getrawmempool"))

    def build_through_mweb(self) -> None:
        """Wallets funded, `rounds_before` rounds, MWEB activated, `rounds_after` rounds (peg-ins
        and MWEB spends among them), all mined."""
        self.setup()
        for _ in range(self.rounds_before):
            self.transact_round(allow_mweb=False)
        self.mweb_activation()
        for _ in range(self.rounds_after):
            self.transact_round(allow_mweb=True)
        self.mine(1)

    def build(self) -> WalletChain:
        self.build_through_mweb()
        self.bulk()
        for _ in range(2):
            self.transact_round(allow_mweb=True)
        self.tip_reorg()
        self.leave_mempool()
        return self.chain


# -- the node's view of wallet addresses ----------------------------------------------------

@dataclass
class AddressTruth:
    wallet: str
    address: str
    received_sat: int  # confirmed receipts, coinbase included
    balance_sat: int  # confirmed unspent outputs, as the chain (not the mempool) has them
    received_minconf0_sat: int  # getreceivedbyaddress with minconf 0 (mempool included)
    coinbase_sat: int
    immature_sat: int


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def out_address(vout: dict[str, Any]) -> str | None:
    spk = vout.get("scriptPubKey", {})
    if "address" in spk:
        return str(spk["address"])
    addrs = spk.get("addresses") or []
    return str(addrs[0]) if len(addrs) == 1 else None


@dataclass
class NodeTx:
    txid: str
    height: int
    coinbase: bool
    prevouts: list[tuple[str, int]]  # (txid, vout) per input; empty for a coinbase
    outputs: list[tuple[int, str | None]]  # (value sat, address) per output


@dataclass
class ChainWalk:
    """The node's best chain from its JSON blocks (``getblock <hash> 2``)."""

    hashes: list[str]
    block_txids: list[list[str]]  # per height, in block order
    txs: dict[str, NodeTx]
    spent_by: dict[tuple[str, int], tuple[str, int]]  # outpoint -> (spending txid, vin)
    coinbase_to: dict[str, int]  # address -> coinbase sat received

    @property
    def addresses(self) -> set[str]:
        return {a for tx in self.txs.values() for _, a in tx.outputs if a}

    def hogex(self, height: int) -> NodeTx:
        """The block's HogEx transaction (its last), from MWEB activation on."""
        assert height >= MWEB_HEIGHT
        return self.txs[self.block_txids[height][-1]]

    def pegout_addresses(self, since: int = MWEB_HEIGHT) -> set[str]:
        """Canonical addresses paid by peg-outs (HogEx outputs after the first) from height
        `since` on."""
        return {a for h in range(max(since, MWEB_HEIGHT), len(self.hashes))
                for _, a in self.hogex(h).outputs[1:] if a}


def walk_chain(node: LitecoindNode) -> ChainWalk:
    hashes = node.best_chain()
    walk = ChainWalk(hashes, [], {}, {}, {})
    coinbase: Counter[str] = Counter()
    for chunk in _chunks(list(enumerate(hashes)), 40):
        blocks = node.batch([("getblock", [h, 2]) for _, h in chunk])
        for (height, _), block in zip(chunk, blocks, strict=True):
            walk.block_txids.append([tx["txid"] for tx in block["tx"]])
            for tx in block["tx"]:
                is_coinbase = bool(tx["vin"]) and "coinbase" in tx["vin"][0]
                prevouts = [] if is_coinbase else [(str(v["txid"]), int(v["vout"]))
                                                   for v in tx["vin"]]
                outputs = [(to_sat(o["value"]), out_address(o)) for o in tx["vout"]]
                walk.txs[tx["txid"]] = NodeTx(tx["txid"], height, is_coinbase, prevouts, outputs)
                for n, prevout in enumerate(prevouts):
                    walk.spent_by[prevout] = (tx["txid"], n)
                if is_coinbase:
                    for value, addr in outputs:
                        if addr:
                            coinbase[addr] += value
    walk.coinbase_to = dict(coinbase)
    return walk


def node_address_truth(
    node: LitecoindNode, wallets: Sequence[str], walk: ChainWalk | None = None
) -> list[AddressTruth]:
    """Every canonical address of the chain that one of `wallets` owns, with the node's
    received total and balance: ``getreceivedbyaddress`` (minconf 1; coinbase outputs, which
    it leaves out, added from the blocks) and ``listunspent`` (minconf 1) summed per address,
    plus the chain's unspent outputs that ``listunspent`` leaves out: immature ones (coinbase
    outputs, and peg-outs, which the wallet lists as "immature" too) and confirmed outputs
    spent by mempool transactions. Addresses paid by the mempool also get
    ``getreceivedbyaddress`` with minconf 0."""
    walk = walk or walk_chain(node)
    coinbase = walk.coinbase_to
    canonical = sorted(a for a in walk.addresses if not is_mweb(a))
    spent_in_mempool: Counter[str] = Counter()  # confirmed outputs that the mempool spends
    paid_in_mempool: set[str] = set()
    for txid in node.rpc("getrawmempool"):
        tx = node.rpc("getrawtransaction", txid, True)
        paid_in_mempool.update(a for a in map(out_address, tx["vout"]) if a)
        for vin in tx["vin"]:
            if "txid" not in vin:
                continue
            prev = node.rpc("getrawtransaction", vin["txid"], True)
            if not prev.get("confirmations"):
                continue
            out = prev["vout"][vin["vout"]]
            addr = out_address(out)
            if addr:
                spent_in_mempool[addr] += to_sat(out["value"])
    found: dict[str, list[AddressTruth]] = {}

    def one_wallet(wallet: str) -> None:
        rpc = ThreadRpc(node, wallet)
        infos = rpc.batch([("getaddressinfo", [a]) for a in canonical])
        mine = [a for a, info in zip(canonical, infos, strict=True) if info.get("ismine")]
        received = rpc.batch([("getreceivedbyaddress", [a, 1]) for a in mine])
        pending = [a for a in mine if a in paid_in_mempool]
        received0 = dict(zip(pending, rpc.batch(
            [("getreceivedbyaddress", [a, 0]) for a in pending]), strict=True))
        unspent: Counter[str] = Counter()
        for u in rpc.call("listunspent", 1, 9_999_999, mine, True):
            unspent[str(u["address"])] += to_sat(u["amount"])
        immature: Counter[str] = Counter()
        for e in rpc.call("listtransactions", "*", 1_000_000, 0, True):
            if e.get("category") == "immature":
                immature[str(e["address"])] += to_sat(e["amount"])
        rows = []
        for a, r1 in zip(mine, received, strict=True):
            cb = coinbase.get(a, 0)
            rows.append(AddressTruth(
                wallet, a,
                received_sat=to_sat(r1) + cb,
                balance_sat=unspent[a] + immature[a] + spent_in_mempool[a],
                received_minconf0_sat=to_sat(received0.get(a, r1)) + cb,
                coinbase_sat=cb,
                immature_sat=immature[a],
            ))
        found[wallet] = rows

    threads = [threading.Thread(target=one_wallet, args=(w,)) for w in wallets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [w for w in wallets if w not in found]
    assert not missing, f"reading the node's view of wallets {missing} failed (see above)"
    return [row for w in wallets for row in found[w]]


# -- following a node in a thread -----------------------------------------------------------

class Follower:
    """``sync_rpc(..., follow=True)`` in a thread, with a hook on every commit: when the
    committed tip is the block hash `expect` asked for, the store is dumped right there (in the
    follower's thread, between two polls) and `wait` returns the dump. `p2p`: the node's P2P
    address (`cointrail.chain.p2p.PeerAddress`) to fetch the blocks from."""

    def __init__(self, root: Path, url: str, *, poll: float = 0.2, batch_txs: int = 200,
                 p2p: Any = None) -> None:
        from cointrail.chain.rpc import RpcClient
        from cointrail.store.ingest import UtxoIngestor

        self.store = open_chain(root, CHAIN, NETWORK)
        self.ingestor = UtxoIngestor(self.store, batch_txs=batch_txs, on_flush=self._flushed)
        self.client = RpcClient(url)
        self.poll = poll
        self.p2p = p2p
        self.stop = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._wanted: str | None = None
        self._snapshot: Dump | None = None
        self._reached = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def expect(self, block_hash: str) -> None:
        """Ask for a dump when the store's tip becomes `block_hash` (call it before the node
        can have that tip)."""
        with self._lock:
            self._wanted = block_hash
            self._snapshot = None
            self._reached.clear()

    def _flushed(self, progress: Any) -> None:
        with self._lock:
            wanted = self._wanted
        if wanted is not None and self.ingestor.tip_hash[::-1].hex() == wanted:
            snapshot = dump_chain_store(self.store)
            with self._lock:
                self._snapshot = snapshot
                self._wanted = None
            self._reached.set()

    def _run(self) -> None:
        from cointrail.store.sync import sync_rpc

        try:
            self.result = sync_rpc(self.ingestor, self.client, follow=True,
                                   poll_seconds=self.poll, should_stop=self.stop.is_set,
                                   p2p=self.p2p)
        except BaseException as exc:  # reported by wait and finish
            self.error = exc
            self._reached.set()

    def start(self) -> Follower:
        self.thread.start()
        return self

    def wait(self, timeout: float = 120) -> Dump:
        reached = self._reached.wait(timeout)
        if self.error is not None:
            raise AssertionError(f"the follower failed: {self.error!r}") from self.error
        assert reached, (
            f"the follower did not commit the expected tip {self._wanted} within {timeout}s "
            f"(its tip: height {self.ingestor.height}, {self.ingestor.tip_hash[::-1].hex()})"
        )
        with self._lock:
            assert self._snapshot is not None
            return self._snapshot

    def wait_for_height(self, height: int, timeout: float = 120) -> None:
        """Wait until the follower's tip height is `height` (after a rollback, say)."""
        deadline = time.monotonic() + timeout
        while self.ingestor.height != height and self.error is None:
            assert time.monotonic() < deadline, (
                f"the follower did not reach height {height} within {timeout}s "
                f"(its height: {self.ingestor.height})"
            )
            time.sleep(0.02)
        if self.error is not None:
            raise AssertionError(f"the follower failed: {self.error!r}") from self.error

    def finish(self) -> Any:
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the follower did not stop"
        self.client.close()
        self.store.close()
        if self.error is not None:
            raise AssertionError(f"the follower failed: {self.error!r}") from self.error
        return self.result


# -- copying blocks, a node that dies ------------------------------------------------------

def push_blocks(src: LitecoindNode, dst: LitecoindNode) -> int:
    """Submit to `dst` the blocks of `src`'s best chain that `dst` lacks; returns how many."""
    src_chain = src.best_chain()
    dst_height = int(dst.rpc("getblockcount"))
    dst_chain = dst.batch([("getblockhash", [h]) for h in range(min(dst_height,
                                                                    len(src_chain) - 1) + 1)])
    start = 0
    while start < len(dst_chain) and dst_chain[start] == src_chain[start]:
        start += 1
    missing = src_chain[start:]
    for chunk in _chunks(missing, 50):
        raws = src.batch([("getblock", [h, 0]) for h in chunk])
        results = dst.batch([("submitblock", [r]) for r in raws])
        # "inconclusive": stored, but not (yet) the best chain
        accepted = (None, "duplicate", "inconclusive")
        bad = [(h, r) for h, r in zip(chunk, results, strict=True) if r not in accepted]
        assert not bad, f"submitblock refused blocks: {bad[:3]}"
    return len(missing)


class RpcRelay:
    """Relays JSON-RPC requests to a node and keeps the highest height asked for with
    ``getblockhash`` (`highest_height`, which a test may reset) and how many requests fetched
    raw blocks (``getblock``), so a test can act on a sync's progress.

    With `kill_node_after`, once that many block requests were relayed, the relay kills the
    node with SIGKILL before relaying the next request, which then fails as a request to a
    dead node does: the connection closes without an answer. After that it relays again (to
    the node once restarted)."""

    def __init__(self, node: LitecoindNode, kill_node_after: int | None = None) -> None:
        self.node = node
        self.kill_node_after = kill_node_after
        self.block_requests = 0
        self.highest_height = -1
        self.node_killed = threading.Event()
        self._lock = threading.Lock()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                relay._note_heights(body)
                with relay._lock:
                    kill = (relay.kill_node_after is not None
                            and relay.block_requests >= relay.kill_node_after)
                    if kill:
                        relay.kill_node_after = None
                if kill:
                    relay.kill_node()
                try:
                    answer = httpx.post(
                        f"http://127.0.0.1:{relay.node.rpc_port}/", content=body,
                        headers={"authorization": self.headers.get("authorization", ""),
                                 "content-type": "application/json"},
                        timeout=60,
                    )
                except httpx.HTTPError:
                    self.close_connection = True  # like a dead node: no answer at all
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if b'"getblock"' in body:
                    with relay._lock:
                        relay.block_requests += 1
                self.send_response(answer.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client killed mid-request: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _note_heights(self, body: bytes) -> None:
        try:
            calls = json.loads(body)
        except ValueError:
            return
        calls = calls if isinstance(calls, list) else [calls]
        heights = [int(c["params"][0]) for c in calls
                   if isinstance(c, dict) and c.get("method") == "getblockhash"]
        if heights:
            with self._lock:
                self.highest_height = max(self.highest_height, *heights)

    def kill_node(self) -> None:
        proc = self.node.process
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.node_killed.set()

    @property
    def url(self) -> str:
        return rpc_url(self.node, self.port)

    def __enter__(self) -> RpcRelay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
