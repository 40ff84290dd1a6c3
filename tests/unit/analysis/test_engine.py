"""The clustering engine on real stores: stable ids, merges, replays as of any height, reorgs,
configuration changes, the supercluster guard, ``explain`` and the CLI.

Stores are built inside the tests from two sources:

- the bundled real mainnet blocks 0–438 (no transaction there spends from two addresses, so
  every address is its own cluster — checked against a walk of the decoded blocks);
- synthetic bitcoin-regtest chains made here with cointrail's encoder (headers with a ground
  nonce under the regtest target, merkle roots of the txids) paying deterministic fake hash160s,
  whose multi-input spends form known clusters.

Expected clusterings never come from the engine: `oracle` re-applies common-input ownership to
the transactions the builder wrote, with its own union-find, and takes each component's smallest
address id (ids in order of first appearance, as the store assigns them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from cointrail import decode_block, get_chain
from cointrail.analysis.clustering import engine
from cointrail.analysis.clustering.batches import BatchChange
from cointrail.analysis.clustering.engine import (
    ClusterConfig,
    Clusterer,
    cluster_view,
    explain,
    measured_methods,
    parse_heuristic_params,
    read_multi_owner,
    show_cluster,
)
from cointrail.analysis.clustering.heuristics import (
    ChangeLinker,
    MultiInput,
    OneTimeChange,
    RoundPaymentAmount,
    TxContext,
    WalletFingerprint,
    default_change_heuristics,
)
from cointrail.analysis.txview import iter_tx_views
from cointrail.chain.utxo.address import encode_address
from cointrail.chain.utxo.block import check_proof_of_work, decode_header
from cointrail.chain.utxo.columnar import decode_block_columns
from cointrail.chain.utxo.hashes import Txid, Wtxid, merkle_root, sha256d
from cointrail.chain.utxo.tx import (
    COINBASE_VOUT,
    NULL_TXID,
    Transaction,
    TxIn,
    encode_compact_size,
    encode_tx,
    make_output,
)
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import InputError, NotFoundError, ValidationError
from cointrail.interfaces.cli.cluster_cmds import cluster_text, explain_text
from cointrail.interfaces.cli.main import app
from cointrail.reporting.methodology import load_methodology
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles

SPEC = get_chain("bitcoin", "regtest")
MAINNET = get_chain("bitcoin", "mainnet")
REGTEST_BITS = 0x207FFFFF  # regtest's powLimit in compact form: about half of all hashes pass
COIN = 100_000_000
SEQUENCE = 0xFFFFFFFD  # opt-in RBF: the fingerprint of every wallet here but the "final" ones
FINAL = 0xFFFFFFFF  # another wallet's fingerprint: no RBF, no lock time
CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None,
    "COINTRAIL_NETWORK": None,
    "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None,
    "COINTRAIL_CONFIRMATIONS": None,
}
WITH_CHANGE = ClusterConfig(heuristics=("multi_input", "change"))


# --- synthetic chains -------------------------------------------------------------------------


@dataclass(frozen=True)
class Addr:
    """A fake key: its hash160 is derived from the name, so every run writes the same chain."""

    name: str
    segwit: bool = False

    @property
    def h160(self) -> bytes:
        return sha256d(b"cointrail-test-key/" + self.name.encode())[:20]

    @property
    def script(self) -> bytes:
        if self.segwit:
            return b"\x00\x14" + self.h160  # OP_0 <20>: p2wpkh
        return b"\x76\xa9\x14" + self.h160 + b"\x88\xac"  # DUP HASH160 <20> EQUALVERIFY CHECKSIG

    @property
    def text(self) -> str:
        kind = "witness_v0_keyhash" if self.segwit else "pubkeyhash"
        text = encode_address(SPEC, kind, self.h160)
        assert text is not None
        return text


def pkh(name: str) -> Addr:
    return Addr(name)


def wpkh(name: str) -> Addr:
    return Addr(name, segwit=True)


@dataclass(frozen=True)
class Coin:
    txid: bytes  # internal order
    n: int
    value: int
    addr: Addr


@dataclass(frozen=True)
class TxRecord:
    """What the builder wrote: the spent coins, the new coins, and what the test made it be."""

    txid: bytes
    height: int
    inputs: tuple[Coin, ...]
    outputs: tuple[Coin, ...]
    coinjoin: bool = False  # built as a multi-party CoinJoin: common-input ownership must skip it
    change: Addr | None = None  # built as a textbook change shape: the change linker's answer
    # built with one change vote of its own and spent so that the spenders' wallet fingerprints
    # give the second: the change the linker finds on its second look, once both are spent
    late_change: Addr | None = None

    @property
    def rpc_txid(self) -> str:
        return self.txid[::-1].hex()


@dataclass
class ChainBuilder:
    """Writes a chain block by block: `tx` queues a spend, `block` mines the queue."""

    raws: list[bytes] = field(default_factory=list)
    txs: list[TxRecord] = field(default_factory=list)
    unspent: dict[Addr, list[Coin]] = field(default_factory=dict)
    tip: bytes = b"\x00" * 32
    queue: list[tuple[bytes, TxRecord]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return len(self.raws) - 1

    def _encode(
        self, inputs: Sequence[TxIn], outputs: Sequence[tuple[Addr, int]]
    ) -> tuple[bytes, bytes]:
        outs = tuple(make_output(SPEC, n, v, a.script) for n, (a, v) in enumerate(outputs))
        for out, (addr, _) in zip(outs, outputs, strict=True):
            assert out.address == addr.text  # the encoder reads back the address we meant
        tx = Transaction(2, tuple(inputs), outs, 0, NULL_TXID, Wtxid(NULL_TXID), 0, 0)
        raw = encode_tx(tx)
        return raw, sha256d(raw)  # no witness: the txid is the hash of the whole serialization

    def tx(
        self,
        inputs: Sequence[Addr | Coin],
        outputs: Sequence[tuple[Addr, int]],
        *,
        coinjoin: bool = False,
        change: Addr | None = None,
        late_change: Addr | None = None,
        sequence: int = SEQUENCE,
    ) -> TxRecord:
        """Queue a transaction spending the oldest unspent coin of each input address, every
        input with nSequence `sequence` (the wallet fingerprint's part that these chains vary)."""
        coins = tuple(c if isinstance(c, Coin) else self.unspent[c].pop(0) for c in inputs)
        ins = [TxIn(Txid(c.txid), c.n, b"", sequence) for c in coins]
        raw, txid = self._encode(ins, outputs)
        assert sum(v for _, v in outputs) <= sum(c.value for c in coins)
        record = TxRecord(
            txid, self.height + 1, coins,
            tuple(Coin(txid, n, v, a) for n, (a, v) in enumerate(outputs)), coinjoin, change,
            late_change,
        )
        for coin in record.outputs:
            self.unspent.setdefault(coin.addr, []).append(coin)
        self.queue.append((raw, record))
        return record

    def block(self, coinbase: Sequence[tuple[Addr, int]], tag: bytes = b"") -> int:
        """Mine the queued transactions behind a coinbase paying `coinbase`; returns the height."""
        height = self.height + 1
        script_sig = b"\x04" + height.to_bytes(4, "little") + bytes([len(tag) + 1]) + b"/" + tag
        cb_raw, cb_txid = self._encode([TxIn(NULL_TXID, COINBASE_VOUT, script_sig, 0xFFFFFFFF)],
                                       coinbase)
        cb = TxRecord(cb_txid, height, (),
                      tuple(Coin(cb_txid, n, v, a) for n, (a, v) in enumerate(coinbase)))
        for coin in cb.outputs:
            self.unspent.setdefault(coin.addr, []).append(coin)
        body = [(cb_raw, cb), *self.queue]
        self.queue = []
        root = merkle_root([r.txid for _, r in body])
        prefix = (struct.pack("<i", 0x20000000) + self.tip + root
                  + struct.pack("<II", 1_700_000_000 + 600 * height, REGTEST_BITS))
        nonce = 0
        while not check_proof_of_work(decode_header(prefix + struct.pack("<I", nonce)), SPEC):
            nonce += 1
        header = prefix + struct.pack("<I", nonce)
        self.raws.append(header + encode_compact_size(len(body)) + b"".join(r for r, _ in body))
        self.txs.extend(r for _, r in body)
        self.tip = sha256d(header)
        return height


# The main synthetic chain. Address ids follow first appearance: a0..a9 are 0..9.
A = [pkh(f"a{i}") for i in range(10)]
W = [wpkh(f"w{i}") for i in range(5)]  # Whirlpool entrants
Z = [wpkh(f"z{i}") for i in range(5)]  # Whirlpool outputs
X = [pkh(f"x{i}") for i in range(10)]
C0, P0 = pkh("c0"), wpkh("p0")  # change and payment of a textbook change shape
WHIRLPOOL_DENOMINATION = 1_000_000  # the 0.01 BTC pool


def miner(height: int, tag: str = "") -> Addr:
    return pkh(f"miner{tag}{height}")


def main_block(b: ChainBuilder, height: int) -> None:
    """Block `height` of the main chain (heights 0..7)."""
    a, x = A, X
    if height == 0:
        b.block([(addr, 5 * COIN) for addr in A] * 2)  # two coins for every a_i
        return
    if height == 1:
        b.tx([a[3], a[5]], [(x[1], 10 * COIN - 1_000)])  # {a3, a5}: id 3
    elif height == 2:
        b.tx([a[1], a[7]], [(x[2], 10 * COIN - 1_000)])  # {a1, a7}: id 1
        b.tx([a[2], a[4], a[8]], [(x[3], 15 * COIN - 1_000)])  # {a2, a4, a8}: id 2
    elif height == 3:
        b.tx([a[7], a[5]], [(x[4], 10 * COIN - 1_000)])  # {a1, a7} + {a3, a5}: 3 merges into 1
    elif height == 4:
        b.tx([a[0]], [(C0, 123_456_789), (P0, 3 * COIN)], change=C0)
        b.block([(miner(4), 50 * COIN)] + [(w, WHIRLPOOL_DENOMINATION + 50) for w in W])
        return
    elif height == 5:
        b.tx(W, [(z, WHIRLPOOL_DENOMINATION) for z in Z], coinjoin=True)  # a Whirlpool 5x5 mix
    elif height == 6:
        b.tx([x[1], a[9]], [(x[5], 15 * COIN - 2_000)])  # anchor x1, but a9 is older: id 9
        # the change of height 4 is spent in its wallet's style (RBF, as every transaction
        # here), the payment in another (final nSequence, no RBF): what the wallet-fingerprint
        # heuristic would need
        b.tx([C0], [(pkh("c0-next"), 123_456_000)])
        b.tx([P0], [(wpkh("p0-next"), 3 * COIN - 1_000)], sequence=FINAL)
    elif height == 7:
        b.tx([a[9], a[2]], [(x[6], 10 * COIN - 1_000)])  # {a9, x1} + {a2, a4, a8}: 9 into 2
    b.block([(miner(height), 50 * COIN)])


MAIN_TIP = 7


def main_chain(upto: int = MAIN_TIP) -> ChainBuilder:
    b = ChainBuilder()
    for height in range(upto + 1):
        main_block(b, height)
    return b


FORK = 5  # the reorg test rolls back to here and takes another branch to height 8


def branch_chain() -> ChainBuilder:
    """Main chain to FORK, then three other blocks: a6 joins a9 and then the {a1..a7} cluster."""
    b = main_chain(FORK)
    b.tx([A[6], A[9]], [(X[7], 10 * COIN - 1_000)])
    b.block([(miner(6, "alt"), 50 * COIN)], tag=b"alt")
    b.tx([A[6], A[3]], [(X[8], 10 * COIN - 1_000)])
    b.block([(miner(7, "alt"), 50 * COIN)], tag=b"alt")
    b.tx([X[7], A[0]], [(X[9], 15 * COIN - 2_000)])
    b.block([(miner(8, "alt"), 50 * COIN)], tag=b"alt")
    return b


# --- the oracle -------------------------------------------------------------------------------


@dataclass
class Expected:
    """The clustering the test expects, computed from the builder's records alone."""

    ids: dict[str, int]  # address text -> addr_id (order of first appearance)
    cluster: dict[str, int]  # address text -> cluster id (smallest addr_id of its component)
    links: list[tuple[int, str, str, str, str]]  # (height, txid, a, b, heuristic)
    merges: list[tuple[int, str, int, int, str]]  # (height, txid, younger, older, heuristic)

    @property
    def n_clusters(self) -> int:
        return len(set(self.cluster.values()))

    def members(self, cluster_id: int) -> set[str]:
        return {t for t, c in self.cluster.items() if c == cluster_id}


def oracle(
    txs: Sequence[TxRecord],
    upto: int,
    *,
    skip_coinjoin: bool = True,
    change: bool = False,
    multi_input: bool = True,
    declared: frozenset[str] = frozenset(),
) -> Expected:
    """Common-input ownership (and, with `change`, the designed change links) in chain order:
    every input address is linked to the first one (a star), components keep their smallest id.
    Transactions whose txid is in `declared` (declared multi-owner) give no link.
    A designed `late_change` is linked right after the transaction that spends the last of its
    outputs, at that transaction's height (none while an output is unspent)."""
    ids: dict[str, int] = {}
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    links: list[tuple[int, str, str, str, str]] = []
    merges: list[tuple[int, str, int, int, str]] = []

    def link(tx: TxRecord, a: Addr, b: Addr, heuristic: str, height: int | None = None) -> None:
        at = tx.height if height is None else height
        links.append((at, tx.rpc_txid, a.text, b.text, heuristic))
        ra, rb = root(ids[a.text]), root(ids[b.text])
        if ra != rb:
            older, younger = min(ra, rb), max(ra, rb)
            parent[younger] = older  # a root is always its component's smallest id here
            merges.append((at, tx.rpc_txid, younger, older, heuristic))

    spender = {(c.txid, c.n): k for k, tx in enumerate(txs) for c in tx.inputs}
    late: dict[int, list[TxRecord]] = {}  # index of the last spender -> designed late changes
    for tx in txs:
        spends = [spender.get((c.txid, c.n)) for c in tx.outputs]
        if change and tx.late_change is not None and None not in spends:
            late.setdefault(max(k for k in spends if k is not None), []).append(tx)
    for k, tx in enumerate(txs):
        if tx.height > upto:
            break
        for coin in tx.outputs:
            if coin.addr.text not in ids:
                ids[coin.addr.text] = len(ids)
                parent[len(ids) - 1] = len(ids) - 1
        mine = tx.rpc_txid not in declared
        if multi_input and tx.inputs and not (skip_coinjoin and tx.coinjoin) and mine:
            distinct = list(dict.fromkeys(c.addr for c in tx.inputs))
            for other in distinct[1:]:
                link(tx, distinct[0], other, MultiInput.name)
        if change and tx.change is not None and mine:
            link(tx, tx.inputs[0].addr, tx.change, ChangeLinker.name)
        for looked in late.get(k, ()):
            assert looked.late_change is not None
            link(looked, looked.inputs[0].addr, looked.late_change, ChangeLinker.name, tx.height)
    cluster = {text: root(i) for text, i in ids.items()}
    return Expected(ids, cluster, links, merges)


# --- stores -----------------------------------------------------------------------------------


def ingest(store: ChainStore, raws: Sequence[bytes]) -> UtxoIngestor:
    ingestor = UtxoIngestor(store)
    for raw in raws:
        ingestor.add_block(decode_block_columns(raw, SPEC))
    ingestor.flush()
    return ingestor


def make_store(root: Path, raws: Sequence[bytes]) -> ChainStore:
    store = Store(root).chain(SPEC)
    ingest(store, raws)
    return store


def store_ids(store: ChainStore) -> dict[str, int]:
    return {str(t): int(i) for t, i in store.query("SELECT text, addr_id FROM addresses")}


def clusters_by_text(store: ChainStore, as_of: int | None = None) -> dict[str, int]:
    view = cluster_view(store, as_of)
    texts = {i: t for t, i in store_ids(store).items()}
    return {texts[i]: int(c) for i, c in enumerate(view.ids.tolist())}


def link_rows(store: ChainStore) -> list[tuple[int, str, str, str, str]]:
    """cluster_links in replay order, with txids and address texts."""
    rows = store.query(
        "SELECT l.height, t.txid, a.text, b.text, l.heuristic FROM cluster_links l"
        " JOIN txs t USING (tx_id) JOIN addresses a ON a.addr_id = l.addr_a"
        " JOIN addresses b ON b.addr_id = l.addr_b ORDER BY l.tx_id, l.rowid"
    )
    return [(int(h), bytes(t)[::-1].hex(), str(a), str(b), str(k)) for h, t, a, b, k in rows]


def merge_rows(store: ChainStore) -> list[tuple[int, str, int, int, str]]:
    rows = store.query(
        "SELECT m.height, t.txid, m.younger, m.older, m.heuristic FROM cluster_merges m"
        " JOIN txs t USING (tx_id) ORDER BY m.tx_id, m.rowid"
    )
    return [(int(h), bytes(t)[::-1].hex(), int(y), int(o), str(k)) for h, t, y, o, k in rows]


def table_rows(store: ChainStore, table: str) -> list[tuple[Any, ...]]:
    """Every row of a clustering table, in insertion order."""
    return store.query(f"SELECT * FROM {table} ORDER BY rowid")


CLUSTER_TABLE_NAMES = ("cluster_links", "cluster_merges", "cluster_held", "tx_labels",
                       "link_evidence")


def assert_matches(store: ChainStore, expected: Expected, as_of: int | None = None) -> None:
    """The store's address ids and clustering (as of `as_of`) are the expected ones."""
    ids = store_ids(store)
    for text, i in expected.ids.items():
        assert ids[text] == i
    assert clusters_by_text(store, as_of) == expected.cluster


@pytest.fixture(scope="module")
def main() -> ChainBuilder:
    return main_chain()


def closed_store(tmp_path_factory: pytest.TempPathFactory, chain: ChainBuilder,
                 name: str) -> Path:
    """A closed, unclustered store of `chain`; tests cluster copies of it."""
    root = tmp_path_factory.mktemp(name)
    make_store(root, chain.raws).close()
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, main: ChainBuilder) -> Path:
    return closed_store(tmp_path_factory, main, "pristine")


def copy_store(pristine: Path, target: Path) -> ChainStore:
    target.mkdir(parents=True, exist_ok=True)
    for db in pristine.glob("*.duckdb"):
        shutil.copy2(db, target / db.name)
    return Store(target).chain(SPEC)


@pytest.fixture
def store(pristine: Path, tmp_path: Path) -> Iterator[ChainStore]:
    s = copy_store(pristine, tmp_path / "store")
    yield s
    s.close()


# --- the chain the tests build ----------------------------------------------------------------


def test_the_synthetic_chain_is_valid_and_ingests_as_written(main: ChainBuilder) -> None:
    """Proof of work, merkle roots and linkage hold, and the store holds what was written."""
    prev = b"\x00" * 32
    for raw in main.raws:
        block = decode_block(raw, SPEC)
        assert check_proof_of_work(block.header, SPEC)
        assert block.merkle_root_valid
        assert bytes(block.header.prev_hash) == prev
        prev = bytes(block.hash)
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp), main.raws)
        try:
            txids = [bytes(t) for (t,) in store.query("SELECT txid FROM txs ORDER BY tx_id")]
            assert txids == [tx.txid for tx in main.txs]
            expected = oracle(main.txs, MAIN_TIP)
            assert store_ids(store) == expected.ids
        finally:
            store.close()


# --- the real mainnet blocks 0-438 ------------------------------------------------------------


def read_frames(path: Path) -> list[bytes]:
    data = path.read_bytes()
    blocks, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == MAINNET.magic
        (length,) = struct.unpack_from("<I", data, pos + 4)
        blocks.append(data[pos + 8 : pos + 8 + length])
        pos += 8 + length
    return blocks


def test_mainnet_438_every_address_its_own_cluster(tmp_path: Path) -> None:
    """Blocks 0–438 spend from one address per transaction: each address is a singleton whose
    cluster id is its own id, as of every height."""
    path = bundled_path(EARLY_MAINNET_BLOCKS)
    # the chain walked without the store: attributed addresses in order, and the multi-input
    # links common-input ownership would make
    first_seen: dict[str, int] = {}
    owner: dict[tuple[bytes, int], str | None] = {}
    extra_inputs = 0
    for height, raw in enumerate(read_frames(path)):
        for tx in decode_block(raw, MAINNET).transactions:
            if not tx.is_coinbase:
                spenders = {owner.pop((bytes(i.prev_txid), i.prev_vout)) for i in tx.inputs}
                extra_inputs += max(len(spenders - {None}) - 1, 0)
            for out in tx.outputs:
                owner[(bytes(tx.txid), out.n)] = out.address
                if out.address is not None:
                    first_seen.setdefault(out.address, height)
    store = Store(tmp_path).chain(MAINNET)
    try:
        ingest_blkfiles(UtxoIngestor(store), str(path))
        result = Clusterer(store).run()
        assert (result.from_height, result.to_height) == (0, 438)
        assert result.links == extra_inputs == 0
        assert (result.merges, result.held, result.coinjoins) == (0, 0, 0)
        assert result.addresses == result.clusters == len(first_seen)
        view = cluster_view(store)
        assert np.array_equal(view.ids, np.arange(len(first_seen)))
        ids = store_ids(store)
        assert sorted(ids, key=ids.__getitem__) == sorted(first_seen, key=first_seen.__getitem__)
        for height in (0, 9, 170, 300, 437):
            replayed = cluster_view(store, as_of=height)
            n = sum(h <= height for h in first_seen.values())
            assert np.array_equal(replayed.ids, np.arange(n))
        runs = store.query("SELECT run_id, from_height, to_height, block_hash FROM cluster_runs")
        tip_hash = "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"
        assert [(r, f, t, bytes(h)[::-1].hex()) for r, f, t, h in runs] == [(1, 0, 438, tip_hash)]
    finally:
        store.close()


# --- stable ids and merges --------------------------------------------------------------------


def test_cluster_ids_are_the_smallest_member_and_merges_keep_the_older(
    store: ChainStore, main: ChainBuilder
) -> None:
    expected = oracle(main.txs, MAIN_TIP)
    result = Clusterer(store).run()
    assert_matches(store, expected)
    for cluster_id in set(expected.cluster.values()):
        assert cluster_id == min(expected.ids[t] for t in expected.members(cluster_id))
    a = [expected.ids[x.text] for x in A]
    assert expected.cluster[A[5].text] == a[1]  # {a1, a3, a5, a7}: the older id 1 survives
    assert expected.members(a[2]) == {A[2].text, A[4].text, A[8].text, A[9].text, X[1].text}
    assert link_rows(store) == expected.links
    assert merge_rows(store) == expected.merges
    # the merge at height 3 joined {a3, a5} (id 3, formed first) into {a1, a7} (id 1, older)
    d_tx = next(tx for tx in main.txs if tx.height == 3 and tx.inputs)
    assert (3, d_tx.rpc_txid, a[3], a[1], "multi_input") in merge_rows(store)
    # and at height 6 the anchor x1 joined a9 under a9's id
    f_tx = next(tx for tx in main.txs if tx.height == 6 and tx.inputs)
    assert (6, f_tx.rpc_txid, expected.ids[X[1].text], a[9], "multi_input") in merge_rows(store)
    assert result.links == len(expected.links)
    assert result.merges == len(expected.merges)
    assert result.clusters == expected.n_clusters
    assert result.addresses == len(expected.ids)
    assert result.block_hash == main.tip[::-1].hex()


def test_a_younger_id_redirects_to_the_cluster_it_joined(
    store: ChainStore, main: ChainBuilder
) -> None:
    Clusterer(store).run()
    expected = oracle(main.txs, MAIN_TIP)
    a3, a1 = expected.ids[A[3].text], expected.ids[A[1].text]
    doc = show_cluster(store, a3)
    assert (doc["requested_id"], doc["cluster_id"], doc["merged_into"]) == (a3, a1, a1)
    members = expected.members(a1)
    assert doc["size"] == len(members) == 4
    assert {item["address"] for item in doc["addresses"]["items"]} == members
    assert {item["addr_id"] for item in doc["addresses"]["items"]} == {
        expected.ids[t] for t in members}
    received = sum(c.value for tx in main.txs for c in tx.outputs if c.addr.text in members)
    sent = sum(c.value for tx in main.txs for c in tx.inputs if c.addr.text in members)
    assert (doc["received_sat"], doc["sent_sat"]) == (received, sent)
    assert doc["balance_sat"] == received - sent
    assert (doc["first_seen_height"], doc["last_seen_height"]) == (0, 3)
    # what joins it: one multi-input link per stored link between its addresses, and the
    # register's word on that heuristic
    joining = [link for link in expected.links if link[2] in members and link[3] in members]
    assert doc["links"] == [{"heuristic": "multi_input", "version": "1",
                             "links": len(joining)}]
    assert len(joining) == 3  # four addresses, three links
    assert list(doc["methods"]["heuristics"]) == ["multi_input"]
    assert doc["methods"]["heuristics"]["multi_input"]["registered"] is True
    assert show_cluster(store, a3, as_of=0)["links"] == []  # a3 alone at height 0
    current = show_cluster(store, a1)
    assert (current["cluster_id"], current["merged_into"]) == (a1, None)
    page = show_cluster(store, a1, offset=1, limit=2)
    assert [i["addr_id"] for i in page["addresses"]["items"]] == sorted(
        expected.ids[t] for t in members)[1:3]
    with pytest.raises(NotFoundError):
        show_cluster(store, len(expected.ids) + 100)


# --- CoinJoins --------------------------------------------------------------------------------


def test_whirlpool_mix_is_labelled_and_not_linked(
    store: ChainStore, main: ChainBuilder, pristine: Path, tmp_path: Path
) -> None:
    result = Clusterer(store).run()
    mix = next(tx for tx in main.txs if tx.coinjoin)
    labels = store.query(
        "SELECT t.txid, l.height, l.label, l.kind, l.detector, l.evidence FROM tx_labels l"
        " JOIN txs t USING (tx_id)"
    )
    assert len(labels) == result.coinjoins == 1
    txid, height, label, kind, detector, evidence = labels[0]
    assert (bytes(txid), height, label, kind) == (mix.txid, mix.height, "coinjoin", "whirlpool")
    assert detector == "whirlpool@1"
    facts = json.loads(evidence)
    assert facts["denomination"] == WHIRLPOOL_DENOMINATION
    assert facts["equal_outputs"] == 5
    assert not [row for row in link_rows(store) if row[1] == mix.rpc_txid]
    clusters = clusters_by_text(store)
    assert len({clusters[w.text] for w in W}) == 5  # every entrant stays on its own
    # without detection the same mix would have merged its five entrants
    other = copy_store(pristine, tmp_path / "no-detection")
    try:
        Clusterer(other, ClusterConfig(coinjoin_detection=False)).run()
        assert len({clusters_by_text(other)[w.text] for w in W}) == 1
        assert clusters_by_text(other) == oracle(main.txs, MAIN_TIP, skip_coinjoin=False).cluster
        assert not table_rows(other, "tx_labels")
    finally:
        other.close()


# --- incremental runs and replays ---------------------------------------------------------------


def snapshot(store: ChainStore) -> dict[str, Any]:
    return {
        "ids": cluster_view(store).ids.tolist(),
        **{name: table_rows(store, name) for name in CLUSTER_TABLE_NAMES},
    }


@pytest.mark.parametrize("stops", [(3,), (0, 4), (1, 2, 5, 6)])
def test_incremental_runs_equal_one_run(
    pristine: Path, tmp_path: Path, main: ChainBuilder, stops: tuple[int, ...]
) -> None:
    one = copy_store(pristine, tmp_path / "one")
    parts = copy_store(pristine, tmp_path / "parts")
    try:
        Clusterer(one).run()
        heights = []
        for stop in stops:
            heights.append(Clusterer(parts).run(to_height=stop).to_height)
        last = Clusterer(parts).run()
        assert heights == list(stops)
        assert last.from_height == stops[-1] + 1
        assert snapshot(parts) == snapshot(one)
        assert_matches(parts, oracle(main.txs, MAIN_TIP))
    finally:
        one.close()
        parts.close()


def test_commit_ranges_do_not_change_the_result(
    pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Committing block by block (one transaction per range) gives the rows of one range."""
    whole = copy_store(pristine, tmp_path / "whole")
    blockwise = copy_store(pristine, tmp_path / "blockwise")
    try:
        Clusterer(whole).run()
        monkeypatch.setattr(engine, "RANGE_TXS", 1)
        progress: list[tuple[int, int]] = []
        Clusterer(blockwise).run(on_progress=lambda h, top: progress.append((h, top)))
        assert progress == [(h, MAIN_TIP) for h in range(MAIN_TIP + 1)]
        assert snapshot(blockwise) == snapshot(whole)
    finally:
        whole.close()
        blockwise.close()


def test_as_of_equals_a_fresh_run_stopped_there(
    store: ChainStore, pristine: Path, tmp_path: Path, main: ChainBuilder
) -> None:
    Clusterer(store).run()
    for height in range(MAIN_TIP + 1):
        fresh = copy_store(pristine, tmp_path / f"fresh-{height}")
        try:
            Clusterer(fresh).run(to_height=height)
            replayed = cluster_view(store, as_of=height)
            assert replayed.height == height
            assert np.array_equal(replayed.ids, cluster_view(fresh).ids)
            assert_matches(store, oracle(main.txs, height), as_of=height)
        finally:
            fresh.close()


def test_runs_only_move_forward_and_as_of_stays_in_range(store: ChainStore) -> None:
    with pytest.raises(NotFoundError):
        cluster_view(store)  # nothing clustered yet
    Clusterer(store).run(to_height=4)
    with pytest.raises(InputError, match="--as-of"):
        Clusterer(store).run(to_height=2)
    with pytest.raises(InputError):
        Clusterer(store).run(to_height=MAIN_TIP + 1)
    for bad in (5, MAIN_TIP, -1):
        with pytest.raises(InputError):
            cluster_view(store, as_of=bad)


def test_clustering_an_empty_store_says_to_ingest(tmp_path: Path) -> None:
    store = Store(tmp_path).chain(SPEC)
    try:
        with pytest.raises(NotFoundError, match="ingest"):
            Clusterer(store).run()
    finally:
        store.close()


# --- reorgs -----------------------------------------------------------------------------------


def test_reorg_drops_the_clustering_above_the_fork(tmp_path: Path, main: ChainBuilder) -> None:
    branch = branch_chain()
    assert branch.raws[: FORK + 1] == main.raws[: FORK + 1]
    assert branch.raws[FORK + 1] != main.raws[FORK + 1]
    store = Store(tmp_path / "reorged").chain(SPEC)
    fresh = make_store(tmp_path / "fresh", branch.raws)
    try:
        ingestor = ingest(store, main.raws)
        Clusterer(store).run()
        before_fork = cluster_view(store, as_of=FORK).ids.copy()
        assert ingestor.rollback_to(FORK) == MAIN_TIP - FORK
        assert store.state()["cluster_height"] == str(FORK)
        for name in CLUSTER_TABLE_NAMES:
            if name != "link_evidence":
                assert not store.query(f"SELECT * FROM {name} WHERE height > ?", [FORK])
        assert np.array_equal(cluster_view(store).ids, before_fork)
        for raw in branch.raws[FORK + 1 :]:
            ingestor.add_block(decode_block_columns(raw, SPEC))
        ingestor.flush()
        resumed = Clusterer(store).run()
        assert (resumed.from_height, resumed.to_height, resumed.restarted) == (FORK + 1, 8, False)
        Clusterer(fresh).run()
        assert snapshot(store) == snapshot(fresh)
        expected = oracle(branch.txs, 8)
        assert_matches(store, expected)
        assert link_rows(store) == expected.links
        # the new branch merged a6 and a9's cluster into a1's
        assert expected.cluster[A[6].text] == expected.cluster[A[9].text] == 1
        assert expected.cluster[A[0].text] == 0
    finally:
        store.close()
        fresh.close()


def test_a_crash_after_the_last_commit_leaves_the_new_branch_clustering(
    tmp_path: Path, main: ChainBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reorg to a branch of the same height, then a run that stops (a crash) after its last
    committed range and before it refreshes the cached cluster ids: the clustering read back
    must be the new branch's, never the cached one of the abandoned branch."""
    branch = branch_chain()
    new_tip = MAIN_TIP  # the new branch is clustered up to the height the old one reached
    store = Store(tmp_path / "crashed").chain(SPEC)
    try:
        ingestor = ingest(store, main.raws)
        Clusterer(store).run()
        ingestor.rollback_to(FORK)
        for raw in branch.raws[FORK + 1 : new_tip + 1]:
            ingestor.add_block(decode_block_columns(raw, SPEC))
        ingestor.flush()

        def crash(*_: Any) -> None:
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(engine, "save_cluster_ids", crash)
            with pytest.raises(KeyboardInterrupt):
                Clusterer(store).run()
        assert store.state()["cluster_height"] == str(new_tip)  # the ranges were committed
    finally:
        store.close()
    reopened = Store(tmp_path / "crashed").chain(SPEC, read_only=True)
    try:
        expected = oracle(branch.txs, new_tip)
        assert expected.cluster != oracle(main.txs, MAIN_TIP).cluster
        assert clusters_by_text(reopened) == expected.cluster
    finally:
        reopened.close()


# --- configuration changes --------------------------------------------------------------------


def test_a_config_change_restarts_from_genesis_and_records_both_runs(
    store: ChainStore, pristine: Path, tmp_path: Path, main: ChainBuilder
) -> None:
    first = Clusterer(store).run()
    second = Clusterer(store, WITH_CHANGE).run()
    assert (first.restarted, second.restarted) == (False, True)
    assert (second.from_height, second.to_height) == (0, MAIN_TIP)
    expected = oracle(main.txs, MAIN_TIP, change=True)
    assert_matches(store, expected)
    assert link_rows(store) == expected.links
    change_tx = next(tx for tx in main.txs if tx.change is not None)
    assert (change_tx.height, change_tx.rpc_txid, A[0].text, C0.text, "change") in expected.links
    assert expected.cluster[C0.text] == expected.cluster[A[0].text]
    evidence = store.query(
        "SELECT t.txid, e.heuristic, e.detail FROM link_evidence e JOIN txs t USING (tx_id)")
    assert [(bytes(t), h) for t, h, _ in evidence] == [(change_tx.txid, "change")]
    detail = json.loads(evidence[0][2])
    assert detail["change_output"] == 0
    assert detail["votes"]["address_type"] == detail["votes"]["round_amount"] == 0
    # at the transaction's own height the wallet fingerprint abstains: the view carries no
    # later spenders (a replay as of height 4 must not depend on the spend at height 6),
    # though a view with them votes. The second look, once both outputs are spent (height 6),
    # is only for transactions not linked at their own height: this one was, so it has one
    # evidence row and no second-look link
    assert detail["votes"]["wallet_fingerprint"] is None
    assert "second_look" not in detail
    (tx_id,) = store.query("SELECT tx_id FROM txs WHERE txid = ?", [change_tx.txid])[0]
    with_spenders = next(iter_tx_views(store.con, tx_id, tx_id, with_spenders=True))
    assert WalletFingerprint().change_index(with_spenders) == 0
    assert store.query("SELECT height FROM cluster_links WHERE heuristic = 'change'") == [
        (change_tx.height,)]
    assert len(table_rows(store, "tx_labels")) == 1  # relabelled once, not twice
    runs = store.query(
        "SELECT run_id, from_height, to_height, config, config_hash, tool_version"
        " FROM cluster_runs ORDER BY run_id")
    assert [(r, f, t) for r, f, t, *_ in runs] == [(1, 0, MAIN_TIP), (2, 0, MAIN_TIP)]
    configs = [json.loads(r[3]) for r in runs]
    assert [h["name"] for h in configs[0]["heuristics"]] == ["multi_input"]
    assert [h["name"] for h in configs[1]["heuristics"]] == ["multi_input", "change"]
    assert configs[0]["heuristics"][0] == {
        "name": "multi_input", "version": MultiInput.version,
        "params": {"skip_coinjoin": True, "stonewall_one_owner": False}}
    change = configs[1]["heuristics"][1]
    assert change["version"] == ChangeLinker.version
    assert change["params"]["policy"] == "uncontested"
    assert [h["name"] for h in change["params"]["heuristics"]] == [
        "self_change", "address_type", "one_time_change", "round_amount", "optimal_change",
        "wallet_fingerprint"]
    assert configs[0]["coinjoin_detector"]["name"] == "coinjoin"
    assert [r[4] for r in runs] == [ClusterConfig().digest(), WITH_CHANGE.digest()]
    assert runs[0][4] != runs[1][4]
    # the restarted store holds exactly what a first run with the new configuration writes
    fresh = copy_store(pristine, tmp_path / "fresh")
    try:
        Clusterer(fresh, WITH_CHANGE).run()
        assert snapshot(store) == snapshot(fresh)
    finally:
        fresh.close()
    # the same configuration again resumes instead of restarting
    again = Clusterer(store, WITH_CHANGE).run()
    assert (again.restarted, again.links) == (False, 0)


# --- the change linker's second look (wallet fingerprint) -----------------------------------

FP_PAYER, FP_OTHER, FP_R, FP_SAME = pkh("fp-payer"), pkh("fp-other"), pkh("fp-r"), pkh("fp-same")
FP_CHANGE, FP_PAY = pkh("fp-change"), wpkh("fp-pay")  # change: the inputs' type; payment: not
FP_D, FP_F = pkh("fp-d"), wpkh("fp-f")
FP_C5, FP_Y5 = pkh("fp-c5"), wpkh("fp-y5")
FP_W = wpkh("fp-w")
FP_TIP = 5


def fingerprint_chain(upto: int = FP_TIP) -> ChainBuilder:
    """Two-output payments whose own shape gives the linker one vote (`address_type`: the one
    p2pkh output of a p2pkh spend; both amounts round, every output fresh and below the input,
    so no other heuristic votes; `address_type` alone does not link). Every transaction here has
    the same version and lock time; the payers and their change's spenders signal RBF, the
    payees spend with final nSequence (another wallet's fingerprint) unless said otherwise.

    - height 1, T: the payer pays fp-pay (p2wpkh) with change fp-change; the payee spends at 2
      (final: another fingerprint), the payer spends the change at 3 together with fp-other
      (RBF: the payer's fingerprint). The change is linked on the second look at height 3, not
      before.
    - height 1, T2: fp-r pays fp-f with change fp-d; fp-f is spent at 2 and fp-d at 4 together
      with a p2wpkh coin, both with RBF: both spenders carry fp-r's fingerprint (the spenders'
      script types are not compared), so the second look abstains.
    - height 5, T5: fp-same pays fp-y5 with change fp-c5 and both are spent in the same block.

    Blocks 0..`upto` only (a reorg test takes another branch after 2).
    """
    b = ChainBuilder()
    b.block([(FP_PAYER, 10 * COIN), (FP_OTHER, 10 * COIN), (FP_R, 10 * COIN),
             (FP_SAME, 10 * COIN), (FP_W, 10 * COIN)])
    for height in range(1, upto + 1):
        if height == 1:
            b.tx([FP_PAYER], [(FP_CHANGE, 4 * COIN), (FP_PAY, 5 * COIN)],
                 late_change=FP_CHANGE)
            b.tx([FP_R], [(FP_D, 2 * COIN), (FP_F, 3 * COIN)])
        elif height == 2:
            b.tx([FP_PAY], [(wpkh("fp-pay-next"), 5 * COIN - 1_000)], sequence=FINAL)
            b.tx([FP_F], [(wpkh("fp-f-next"), 3 * COIN - 1_000)])
        elif height == 3:
            b.tx([FP_CHANGE, FP_OTHER], [(pkh("fp-next"), 14 * COIN - 1_000)])
        elif height == 4:
            b.tx([FP_D, FP_W], [(wpkh("fp-d-next"), 12 * COIN - 1_000)])
        elif height == 5:
            b.tx([FP_SAME], [(FP_C5, 4 * COIN), (FP_Y5, 5 * COIN)], late_change=FP_C5)
            b.tx([FP_Y5], [(wpkh("fp-y5-next"), 5 * COIN - 1_000)], sequence=FINAL)
            b.tx([FP_C5], [(pkh("fp-c5-next"), 4 * COIN - 1_000)])
        b.block([(miner(height, "fp"), 50 * COIN)])
    return b


@pytest.fixture(scope="module")
def fp_chain() -> ChainBuilder:
    return fingerprint_chain()


@pytest.fixture(scope="module")
def fp_pristine(tmp_path_factory: pytest.TempPathFactory, fp_chain: ChainBuilder) -> Path:
    return closed_store(tmp_path_factory, fp_chain, "fp-pristine")


def applied(store: ChainStore, table: str) -> list[tuple[Any, ...]]:
    """Links or merges in the order the run applied them, with txids and (links) texts."""
    if table == "cluster_links":
        rows = store.query(
            "SELECT l.height, t.txid, a.text, b.text, l.heuristic FROM cluster_links l"
            " JOIN txs t USING (tx_id) JOIN addresses a ON a.addr_id = l.addr_a"
            " JOIN addresses b ON b.addr_id = l.addr_b ORDER BY l.rowid")
        return [(int(h), bytes(t)[::-1].hex(), str(a), str(b), str(k))
                for h, t, a, b, k in rows]
    rows = store.query(
        "SELECT m.height, t.txid, m.younger, m.older, m.heuristic FROM cluster_merges m"
        " JOIN txs t USING (tx_id) ORDER BY m.rowid")
    return [(int(h), bytes(t)[::-1].hex(), int(y), int(o), str(k)) for h, t, y, o, k in rows]


def test_second_look_links_the_change_at_its_last_spend(
    fp_pristine: Path, fp_chain: ChainBuilder, tmp_path: Path
) -> None:
    store = copy_store(fp_pristine, tmp_path / "fp")
    try:
        Clusterer(store, WITH_CHANGE).run()
        expected = oracle(fp_chain.txs, FP_TIP, change=True)
        assert applied(store, "cluster_links") == expected.links
        assert applied(store, "cluster_merges") == expected.merges
        assert_matches(store, expected)
        t, t2 = (tx for tx in fp_chain.txs if tx.height == 1 and tx.inputs)
        last_spend = next(tx for tx in fp_chain.txs if FP_CHANGE in {c.addr for c in tx.inputs})
        assert (t.height, last_spend.height) == (1, 3)
        change_links = [r for r in link_rows(store) if r[4] == "change"]
        t5 = next(tx for tx in fp_chain.txs if tx.late_change == FP_C5)
        assert change_links == [(3, t.rpc_txid, FP_PAYER.text, FP_CHANGE.text, "change"),
                                (5, t5.rpc_txid, FP_SAME.text, FP_C5.text, "change")]
        # at T's own height the fingerprint abstains (no spenders yet) and one vote is short
        (tx_id,) = store.query("SELECT tx_id FROM txs WHERE txid = ?", [t.txid])[0]
        own = next(iter_tx_views(store.con, tx_id, tx_id))
        decision = ChangeLinker().decide(own, TxContext())
        assert decision.index is None
        assert decision.votes["wallet_fingerprint"] is None
        assert [k for k, v in decision.votes.items() if v is not None] == ["address_type"]
        # the evidence: both votes, and when and by which spend the second look decided
        evidence = {bytes(txid): json.loads(d) for txid, d in store.query(
            "SELECT t.txid, e.detail FROM link_evidence e JOIN txs t USING (tx_id)")}
        assert set(evidence) == {t.txid, t5.txid}  # T2's second look abstained: no row
        detail = evidence[t.txid]
        assert detail["change_output"] == 0
        assert detail["votes"]["address_type"] == detail["votes"]["wallet_fingerprint"] == 0
        assert detail["second_look"] == {"height": 3, "last_spender": last_spend.rpc_txid}
        assert [r for r in link_rows(store) if r[1] == t2.rpc_txid] == []
        # as of the height before the spend: not linked; from the spend on: linked
        for height in range(FP_TIP + 1):
            assert_matches(store, oracle(fp_chain.txs, height, change=True), as_of=height)
        before = explain(store, FP_PAYER.text, FP_CHANGE.text, as_of=2)
        assert before["linked"] is False
        why = explain(store, FP_PAYER.text, FP_CHANGE.text, as_of=3)
        assert [(h["height"], h["txid"], h["heuristic"], h.get("second_look")) for h in
                why["path"]] == [(3, t.rpc_txid, "change",
                                  {"tx_height": 1, "last_spender": last_spend.rpc_txid})]
        assert why["path"][0]["heuristic_version"] == ChangeLinker.version == "4"
        assert why["path"][0]["change"] == {"output": 0,
                                            "named_by": ["address_type", "wallet_fingerprint"]}
        text = explain_text(why)
        assert "output 0 is the change, named by address_type, wallet_fingerprint" in text
        assert f"the transaction is at height 1, its last output spent by {last_spend.rpc_txid}"\
            in text
        ids = store_ids(store)
        payer = ids[FP_PAYER.text]
        assert show_cluster(store, payer, as_of=2)["size"] == 1
        assert show_cluster(store, payer, as_of=3)["size"] == 3  # payer, change, fp-other
        joined = show_cluster(store, payer)
        assert joined["size"] == 3
        assert [(link["heuristic"], link["version"], link["links"])
                for link in joined["links"]] == [("change", "4", 1), ("multi_input", "1", 1)]
        assert list(joined["methods"]["heuristics"]) == ["change", "multi_input"]
        shown = cluster_text(joined)
        assert "joined by 1 change v4 link(s), 1 multi_input v1 link(s)" in shown
        assert "- change v4 (Change linker (change heuristics combined)):" in shown
    finally:
        store.close()


def test_second_look_waits_at_most_second_look_blocks(
    fp_pristine: Path, fp_chain: ChainBuilder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T (height 1) has its last candidate spent at height 3: a window of one block gives it no
    second look, a window of two does."""
    from cointrail.analysis.clustering import engine as engine_mod

    t = next(tx for tx in fp_chain.txs if tx.height == 1 and tx.inputs)
    made = {}
    for window in (1, 2):
        monkeypatch.setitem(engine_mod.HEURISTICS, "change",
                            lambda w=window: ChangeLinker(second_look_blocks=w))
        store = copy_store(fp_pristine, tmp_path / f"fp-window-{window}")
        try:
            Clusterer(store, WITH_CHANGE).run()
            made[window] = {r[1] for r in link_rows(store) if r[4] == "change"}
        finally:
            store.close()
    assert t.rpc_txid not in made[1]
    assert t.rpc_txid in made[2]
    with pytest.raises(InputError, match="second_look_blocks"):
        ChangeLinker(second_look_blocks=-1)


@pytest.mark.parametrize("stops", [(1,), (2,), (0, 1, 2, 3, 4), (3,), (4,)])
def test_second_look_incremental_runs_equal_one_run(
    fp_pristine: Path, tmp_path: Path, stops: tuple[int, ...]
) -> None:
    """Run boundaries between T and its last spend, at the spend, or after it: the rows and
    ids of one run, and every as-of replay equals a fresh run stopped there."""
    one = copy_store(fp_pristine, tmp_path / "one")
    parts = copy_store(fp_pristine, tmp_path / "parts")
    try:
        Clusterer(one, WITH_CHANGE).run()
        for stop in stops:
            Clusterer(parts, WITH_CHANGE).run(to_height=stop)
        Clusterer(parts, WITH_CHANGE).run()
        assert snapshot(parts) == snapshot(one)
        assert [r[0] for r in link_rows(parts) if r[4] == "change"] == [3, 5]  # both looks
    finally:
        one.close()
        parts.close()


def test_second_look_as_of_equals_a_fresh_run_and_ranges_do_not_matter(
    fp_pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = copy_store(fp_pristine, tmp_path / "whole")
    try:
        Clusterer(whole, WITH_CHANGE).run()
        for height in range(FP_TIP + 1):
            fresh = copy_store(fp_pristine, tmp_path / f"fresh-{height}")
            try:
                Clusterer(fresh, WITH_CHANGE).run(to_height=height)
                assert np.array_equal(cluster_view(whole, as_of=height).ids,
                                      cluster_view(fresh).ids)
                assert link_rows(fresh) == [r for r in link_rows(whole) if r[0] <= height]
            finally:
                fresh.close()
        blockwise = copy_store(fp_pristine, tmp_path / "blockwise")
        try:
            monkeypatch.setattr(engine, "RANGE_TXS", 1)
            Clusterer(blockwise, WITH_CHANGE).run()
            assert snapshot(blockwise) == snapshot(whole)
        finally:
            blockwise.close()
    finally:
        whole.close()


def test_a_reorg_of_the_last_spend_drops_the_second_look_link(
    fp_chain: ChainBuilder, tmp_path: Path
) -> None:
    """The second-look link belongs to T (height 1) but is dated at the spend (height 3): a
    rollback to 2 removes the spend, and the next run must drop the link and its evidence
    too; on the new branch the change is spent without RBF (no fingerprint match)."""
    branch = fingerprint_chain(upto=2)
    branch.tx([FP_CHANGE, FP_W], [(wpkh("fp-alt"), 14 * COIN - 1_000)], sequence=FINAL)
    branch.block([(miner(3, "fp-alt"), 50 * COIN)], tag=b"alt")
    assert branch.raws[:3] == fp_chain.raws[:3] and branch.raws[3] != fp_chain.raws[3]
    store = Store(tmp_path / "reorged").chain(SPEC)
    fresh = make_store(tmp_path / "fresh", branch.raws)
    try:
        ingestor = ingest(store, fp_chain.raws)
        Clusterer(store, WITH_CHANGE).run()
        assert [r[0] for r in link_rows(store) if r[4] == "change"] == [3, 5]
        ingestor.rollback_to(2)
        assert clusters_by_text(store) == oracle(fp_chain.txs, 2, change=True).cluster
        for raw in branch.raws[3:]:
            ingestor.add_block(decode_block_columns(raw, SPEC))
        ingestor.flush()
        Clusterer(store, WITH_CHANGE).run()
        Clusterer(fresh, WITH_CHANGE).run()
        assert snapshot(store) == snapshot(fresh)
        assert [r for r in link_rows(store) if r[4] == "change"] == []
        assert table_rows(store, "link_evidence") == []
    finally:
        store.close()
        fresh.close()


# --- transactions declared multi-owner ----------------------------------------------------------


def declared_config(main: ChainBuilder, *heights: int, change: bool = False) -> ClusterConfig:
    """The configuration declaring the first non-coinbase transaction at each of `heights`."""
    txids = tuple(next(tx.rpc_txid for tx in main.txs if tx.height == h and tx.inputs)
                  for h in heights)
    return ClusterConfig(heuristics=("multi_input", "change") if change else ("multi_input",),
                         multi_owner=txids, multi_owner_from="test declarations")


def test_a_transaction_declared_multi_owner_makes_no_link_and_is_labelled(
    store: ChainStore, main: ChainBuilder
) -> None:
    # height 3 joins {a1, a7} and {a3, a5}; height 4 is the textbook change of a0
    config = declared_config(main, 3, 4, change=True)
    result = Clusterer(store, config).run()
    expected = oracle(main.txs, MAIN_TIP, change=True, declared=frozenset(config.multi_owner))
    assert_matches(store, expected)
    assert link_rows(store) == expected.links
    assert expected.cluster[A[7].text] != expected.cluster[A[5].text]  # kept apart
    assert expected.cluster[C0.text] != expected.cluster[A[0].text]
    assert oracle(main.txs, MAIN_TIP, change=True) != expected  # the declarations matter
    assert result.declared == 2
    labels = store.query(
        "SELECT t.txid, l.height, l.label, l.kind, l.detector, l.evidence FROM tx_labels l"
        " JOIN txs t USING (tx_id) WHERE l.label = 'multi_owner' ORDER BY l.tx_id")
    assert [(bytes(t)[::-1].hex(), h, k, d, json.loads(e)) for t, h, _, k, d, e in labels] == [
        (tx.rpc_txid, tx.height, "declared", "analyst", {"from": "test declarations"})
        for tx in main.txs if tx.rpc_txid in config.multi_owner]
    assert [h for _, h, *_ in labels] == [3, 4]
    recorded = json.loads(store.query("SELECT config FROM cluster_runs")[0][0])
    assert recorded["multi_owner_transactions"] == {
        "txids": sorted(config.multi_owner), "from": "test declarations",
        "effect": "no heuristic reads these transactions as one owner's"}
    again = ClusterConfig.from_description(recorded)
    assert again is not None and again.digest() == config.digest()
    assert again.multi_owner == config.multi_owner
    # explain names the declaration that keeps the two apart
    height_3 = next(tx.rpc_txid for tx in main.txs if tx.height == 3 and tx.inputs)
    doc = explain(store, A[7].text, A[5].text)
    assert doc["linked"] is False
    assert doc["declared_multi_owner"] == [
        {"height": 3, "txid": height_3, "declared_from": "test declarations"}]
    assert (f"declared multi-owner, so not read as one owner's: tx {height_3} (height 3) "
            "spends from both clusters (declared in test declarations)") in explain_text(doc)
    assert explain(store, A[7].text, A[5].text, as_of=2)["declared_multi_owner"] == []
    assert explain(store, A[1].text, A[3].text)["declared_multi_owner"] == doc[
        "declared_multi_owner"]  # the same two clusters
    assert explain(store, A[1].text, A[2].text)["declared_multi_owner"] == []  # not spent by it


def test_explain_names_the_stonewall_that_keeps_two_clusters_apart(tmp_path: Path) -> None:
    s0, s1, pay, decoy, c0, c1 = (pkh(f"sw-{k}") for k in range(6))
    b = ChainBuilder()
    b.block([(s0, 5 * COIN), (s1, 5 * COIN)])
    # each set pays one equal output and its change: 5 = 2 + (3 - 500 sat) + 500 of fee, and
    # 5 = 2 + (3 - 700 sat) + 700
    wall = b.tx([s0, s1], [(pay, 2 * COIN), (decoy, 2 * COIN), (c0, 3 * COIN - 500),
                           (c1, 3 * COIN - 700)])
    b.block([(miner(1, "sw"), 50 * COIN)])
    store = make_store(tmp_path / "sw", b.raws)
    try:
        Clusterer(store).run()
        kinds = store.query("SELECT kind FROM tx_labels WHERE label = 'coinjoin'")
        assert kinds == [("stonewall",)]
        doc = explain(store, s0.text, s1.text)
        assert doc["linked"] is False
        assert doc["stonewalls"] == [{"height": 1, "txid": wall.rpc_txid, "amount": 2 * COIN}]
        assert (f"Stonewall-shaped, one owner's (solo) or two owners' (X2), so not read as one "
                f"owner's: tx {wall.rpc_txid} (height 1) spends from both clusters"
                ) in explain_text(doc)
        assert explain(store, s0.text, s1.text, as_of=0)["stonewalls"] == []
        assert explain(store, s0.text, pay.text)["stonewalls"] == []  # pay spends nothing
        # read as a solo Stonewall, its inputs are joined (another configuration: a rebuild)
        solo = Clusterer(store, ClusterConfig(
            params=(("multi_input", "stonewall_one_owner", True),))).run()
        assert solo.restarted
        joined = explain(store, s0.text, s1.text)
        assert joined["linked"] is True
        assert [(h["heuristic"], h["txid"]) for h in joined["path"]] == [
            ("multi_input", wall.rpc_txid)]
    finally:
        store.close()


def test_declared_runs_incrementally_and_as_of_equal_one_run(
    pristine: Path, tmp_path: Path, main: ChainBuilder
) -> None:
    config = declared_config(main, 3, 7)
    one = copy_store(pristine, tmp_path / "one")
    parts = copy_store(pristine, tmp_path / "parts")
    try:
        Clusterer(one, config).run()
        for stop in (2, 3, 5):
            Clusterer(parts, config).run(to_height=stop)
        Clusterer(parts, config).run()
        assert snapshot(parts) == snapshot(one)
        for height in (2, 3, 6, MAIN_TIP):
            assert clusters_by_text(one, height) == oracle(
                main.txs, height, declared=frozenset(config.multi_owner)).cluster
        # dropping the declarations is another configuration: the clustering is rebuilt
        undeclared = Clusterer(one).run()
        assert undeclared.restarted
        assert_matches(one, oracle(main.txs, MAIN_TIP))
    finally:
        one.close()
        parts.close()


def test_multi_owner_declarations_are_checked(store: ChainStore, main: ChainBuilder) -> None:
    txid = next(tx.rpc_txid for tx in main.txs if tx.height == 3 and tx.inputs)
    with pytest.raises(InputError, match="not a transaction id"):
        ClusterConfig(multi_owner=(txid[:-1],))
    with pytest.raises(InputError, match="UTXO chains"):
        ClusterConfig(heuristics=("deposit_reuse",), multi_owner=(txid,))
    config = ClusterConfig(multi_owner=(txid.upper(), txid))
    assert config.multi_owner == (txid,)  # one spelling, once
    plain = ClusterConfig().describe()
    assert "multi_owner_transactions" not in plain  # runs without declarations keep digests
    assert config.digest() != ClusterConfig().digest()
    unknown = "ab" * 32
    with pytest.raises(InputError, match=f"{unknown} is not in the bitcoin/regtest store"):
        Clusterer(store, ClusterConfig(multi_owner=(txid, unknown))).run()
    assert store.state().get("cluster_height") is None  # refused before anything was written


def test_read_multi_owner_takes_txids_with_notes_and_names_bad_lines(tmp_path: Path) -> None:
    a, b = "0f" * 32, "A1" * 32
    good = tmp_path / "payjoins.txt"
    good.write_text(f"# PayJoins the merchant's records name\n\n{a}  invoice 1042\n"
                    f"{b},\n{a}\n", encoding="utf-8")
    txids, source = read_multi_owner(good)
    assert txids == (a, b.lower(), a)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert source == f"payjoins.txt (sha256 {digest})"
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{a}\nnot-a-txid\n{a[:-2]}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        read_multi_owner(bad)
    assert [(p.line, p.message.split(" ")[0]) for p in caught.value.problems] == [
        (2, "'not-a-txid'"), (3, repr(a[:-2]))]
    assert f"{bad}:2:" in str(caught.value)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(InputError, match="lists no transaction"):
        read_multi_owner(empty)
    with pytest.raises(InputError, match="does not exist"):
        read_multi_owner(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="is a directory; pass a file of txids"):
        read_multi_owner(tmp_path)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(f"{a} caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="is not UTF-8 text"):
        read_multi_owner(latin)


def test_unknown_heuristics_and_bad_guards_are_refused() -> None:
    with pytest.raises(InputError, match="unknown clustering heuristic"):
        ClusterConfig(heuristics=("multi_input", "bogus"))
    with pytest.raises(InputError):
        ClusterConfig(heuristics=())
    with pytest.raises(InputError):
        ClusterConfig(guard_size=-1)


# --- explain ----------------------------------------------------------------------------------


def test_explain_gives_a_path_of_stored_transactions(store: ChainStore, main: ChainBuilder) -> None:
    Clusterer(store).run()
    inputs_of = {
        tx.rpc_txid: {c.addr.text for c in tx.inputs} for tx in main.txs
    }
    heights = {tx.rpc_txid: tx.height for tx in main.txs}
    for a, b in [(A[3], A[1]), (A[1], A[3]), (X[1], A[8]), (A[5], A[7])]:
        doc = explain(store, a.text, b.text)
        assert doc["linked"] is True
        assert doc["cluster_a"] == doc["cluster_b"]
        path = doc["path"]
        assert path[0]["from"] == a.text
        assert path[-1]["to"] == b.text
        for hop, nxt in itertools.pairwise(path):
            assert hop["to"] == nxt["from"]
        for hop in path:
            txid = hop["txid"]
            assert store.query("SELECT 1 FROM txs WHERE txid = ?", [bytes.fromhex(txid)[::-1]])
            assert hop["height"] == heights[txid]
            assert {hop["from"], hop["to"]} <= inputs_of[txid]
            assert (hop["heuristic"], hop["heuristic_version"]) == ("multi_input", "1")
        # the register's word on the heuristic behind the links, at the link's version
        register = load_methodology()
        (listed,) = [m for m in register.section("clustering").methods
                     if m.name == "multi_input"]
        assert doc["methods"]["register"] == {"version": register.version,
                                              "sha256": register.sha256}
        assert list(doc["methods"]["heuristics"]) == ["multi_input"]
        method = doc["methods"]["heuristics"]["multi_input"]
        assert (method["registered"], method["version"], method["measured_version"]) == (
            True, "1", listed.version)
        assert method["known_errors"] == listed.known_errors
        assert method["accuracy"] == [
            {"measure": m.measure, "value": m.value, "source": m.source}
            for m in listed.accuracy]
        assert "note" not in method
    # a3 -> a5 (height 1) -> a7 (height 3) -> a1 (height 2): three links
    three = explain(store, A[3].text, A[1].text)
    assert len(three["path"]) == 3
    text = explain_text(three)
    assert text.count("both spent inputs of this transaction (common-input ownership)") == 3
    assert f"1. {A[3].text} -> {three['path'][0]['to']}\n   multi_input v1, height 1, tx " \
        in text
    assert (f"what these heuristics are measured to get wrong (methodology register "
            f"{load_methodology().version}):\n- multi_input v1 (Common-input ownership):\n"
            f"  pairwise precision: ") in text
    assert text.count("  known errors: ") == 1
    same = explain(store, A[3].text, A[3].text)
    assert (same["linked"], same["path"]) == (True, [])
    apart = explain(store, A[0].text, A[1].text)
    assert apart["linked"] is False
    assert "not in the same cluster" in apart["answer"]
    assert apart["held_back_links"] == []
    assert (apart["cluster_a"], apart["cluster_b"]) == (0, 1)
    # as of height 2, a3 and a1 were still apart
    assert explain(store, A[3].text, A[1].text, as_of=2)["linked"] is False
    with pytest.raises(NotFoundError):
        explain(store, pkh("never-paid").text, A[1].text)


def test_explain_names_the_change_heuristics_and_flags_other_versions() -> None:
    """A change hop brings the change heuristics that named its output, at the versions the
    run recorded; a link made by another version than the register measured carries a note,
    and a heuristic the register does not list says it has no measured accuracy."""
    config = {"heuristics": [MultiInput().describe(), ChangeLinker().describe()]}
    path = [
        {"heuristic": "multi_input", "heuristic_version": "0"},
        {"heuristic": "change", "heuristic_version": "4",
         "change": {"output": 1, "named_by": ["one_time_change", "wallet_fingerprint"]}},
        {"heuristic": "deposit_reuse", "heuristic_version": 1},  # account runs record an int
        {"heuristic": "retired_rule", "heuristic_version": "1"},
    ]
    doc = measured_methods(path, config)["heuristics"]
    assert list(doc) == ["multi_input", "change", "one_time_change", "wallet_fingerprint",
                         "deposit_reuse", "retired_rule"]
    assert doc["multi_input"]["note"] == ("measured for version 1; these links were made by "
                                          "version 0")
    assert "note" not in doc["change"] and doc["change"]["measured_version"] == "4"
    assert doc["wallet_fingerprint"]["version"] == WalletFingerprint.version
    assert doc["one_time_change"]["registered"] is True
    assert any("votes" in a["measure"] for a in doc["one_time_change"]["accuracy"])
    assert doc["deposit_reuse"]["registered"] is True and "note" not in doc["deposit_reuse"]
    assert doc["deposit_reuse"]["version"] == "1"
    assert doc["retired_rule"] == {
        "version": "1", "registered": False,
        "note": "not in the methodology register: no measured accuracy"}
    # without the run's record the change heuristics' versions are unknown, not guessed
    bare = measured_methods(path[1:2], None)["heuristics"]
    assert bare["one_time_change"]["version"] is None
    assert "note" not in bare["one_time_change"]


# --- the supercluster guard -------------------------------------------------------------------

GA, GB = pkh("ga"), pkh("gb")
CA, CB = pkh("ca"), pkh("cb")


def guard_chain() -> ChainBuilder:
    """Two change clusters of two addresses each, then a self-change spend from both."""
    b = ChainBuilder()
    b.block([(GA, 10 * COIN), (GB, 10 * COIN)] * 2)
    # one input, a non-round p2pkh output (the change: type match, non-round) and a round p2wpkh
    b.tx([GA], [(CA, 612_345_678), (wpkh("pa"), 3 * COIN)], change=CA)
    b.tx([GB], [(CB, 712_345_678), (wpkh("pb"), 2 * COIN)], change=CB)
    b.block([(miner(1, "g"), 50 * COIN)])
    # gb is paid back (self-change, the only output below every input, non-round, p2pkh): the
    # change linker links gb to the anchor ga, joining the two clusters
    b.tx([GA, GB], [(GB, 123_456_789), (wpkh("q"), 18 * COIN)], change=GB)
    b.block([(miner(2, "g"), 50 * COIN)])
    return b


def test_guard_holds_back_a_weak_link_between_two_large_clusters(tmp_path: Path) -> None:
    """The change linker is the only heuristic here: with multi-input also enabled, the two
    input addresses of the self-change spend are joined by the strong link first, and a change
    link always attaches a fresh address (a singleton), so no change link would reach the guard.
    """
    chain = guard_chain()
    guarded = make_store(tmp_path / "guarded", chain.raws)
    open_ = make_store(tmp_path / "open", chain.raws)
    strong = make_store(tmp_path / "strong", chain.raws)
    try:
        result = Clusterer(guarded, ClusterConfig(heuristics=("change",), guard_size=2)).run()
        ids = store_ids(guarded)
        spend = next(tx for tx in chain.txs if tx.change == GB)
        assert result.held == 1
        held = guarded.query(
            "SELECT h.height, t.txid, h.addr_a, h.addr_b, h.heuristic, h.cluster_a, h.cluster_b,"
            " h.size_a, h.size_b FROM cluster_held h JOIN txs t USING (tx_id)")
        assert [(h, bytes(t), *rest) for h, t, *rest in held] == [
            (2, spend.txid, ids[GA.text], ids[GB.text], "change", ids[GA.text], ids[GB.text],
             2, 2)]
        clusters = clusters_by_text(guarded)
        assert clusters[CA.text] == clusters[GA.text] == ids[GA.text]
        assert clusters[CB.text] == clusters[GB.text] == ids[GB.text]
        assert not [r for r in link_rows(guarded) if r[1] == spend.rpc_txid]
        doc = explain(guarded, CA.text, CB.text)
        assert doc["linked"] is False
        assert doc["held_back_links"] == [
            {"height": 2, "txid": spend.rpc_txid, "heuristic": "change", "sizes": [2, 2],
             "addresses": [GA.text, GB.text], "clusters": [ids[GA.text], ids[GB.text]]}]
        # the guard's record of the run
        config = json.loads(guarded.query("SELECT config FROM cluster_runs")[0][0])
        assert config["supercluster_guard"] == {"min_cluster_size": 2,
                                                "applies_to_weak_links": ["change"]}
        # without the guard the same link joins them, and explain walks the change links
        Clusterer(open_, ClusterConfig(heuristics=("change",), guard_size=0)).run()
        expected = oracle(chain.txs, 2, change=True, multi_input=False)
        assert clusters_by_text(open_) == expected.cluster
        assert link_rows(open_) == expected.links
        path = explain(open_, CA.text, CB.text)["path"]
        assert [(h["from"], h["to"], h["heuristic"]) for h in path] == [
            (CA.text, GA.text, "change"), (GA.text, GB.text, "change"),
            (GB.text, CB.text, "change")]
        # multi-input links are strong: the guard never holds them
        ran = Clusterer(strong, ClusterConfig(heuristics=("multi_input",), guard_size=1)).run()
        assert ran.held == 0
        assert clusters_by_text(strong)[GA.text] == clusters_by_text(strong)[GB.text]
    finally:
        guarded.close()
        open_.close()
        strong.close()


ZZ = pkh("zz")


def guard_chain_then_merge() -> ChainBuilder:
    """As `guard_chain`, with an older address zz (id 0) that later takes gb's cluster over."""
    b = ChainBuilder()
    b.block([(ZZ, 10 * COIN), (GA, 10 * COIN), (GB, 10 * COIN), (GA, 10 * COIN),
             (GB, 10 * COIN)])
    b.tx([GA], [(CA, 612_345_678), (wpkh("pa"), 3 * COIN)], change=CA)
    b.tx([GB], [(CB, 712_345_678), (wpkh("pb"), 2 * COIN)], change=CB)
    b.block([(miner(1, "g"), 50 * COIN)])
    b.tx([GA, GB], [(GB, 123_456_789), (wpkh("q"), 18 * COIN)], change=GB)  # held back
    b.block([(miner(2, "g"), 50 * COIN)])
    # zz spends with gb's self-change coin and pays gb back: the change link joins zz (a
    # singleton, so the guard lets it through) and gb's cluster, which now carries zz's id 0
    b.tx([ZZ, GB], [(GB, 23_456_789), (wpkh("q2"), 10 * COIN)], change=GB)
    b.block([(miner(3, "g"), 50 * COIN)])
    return b


def test_held_back_links_are_reported_after_a_side_merged_on(tmp_path: Path) -> None:
    """The link held back at height 2 joined ga's and gb's clusters; when gb's cluster has since
    been taken over by an older one, explain still reports it for two addresses of the two
    clusters."""
    chain = guard_chain_then_merge()
    store = make_store(tmp_path, chain.raws)
    try:
        result = Clusterer(store, ClusterConfig(heuristics=("change",), guard_size=2)).run()
        assert result.held == 1
        ids = store_ids(store)
        clusters = clusters_by_text(store)
        assert clusters[CB.text] == clusters[GB.text] == ids[ZZ.text] == 0
        assert clusters[CA.text] == clusters[GA.text] == ids[GA.text]
        held_tx = next(tx for tx in chain.txs if tx.height == 2 and tx.inputs)
        # as of height 2 the held link is reported ...
        then = explain(store, CA.text, CB.text, as_of=2)
        assert [h["txid"] for h in then["held_back_links"]] == [held_tx.rpc_txid]
        # ... and still at the tip, where the two clusters are ga's and zz's
        now = explain(store, CA.text, CB.text)
        assert now["linked"] is False
        assert [h["txid"] for h in now["held_back_links"]] == [held_tx.rpc_txid]
    finally:
        store.close()


# --- random chains ----------------------------------------------------------------------------


@st.composite
def spend_plans(draw: st.DrawFn) -> list[list[list[int]]]:
    """Blocks of spends; a spend lists the indexes of the (funded) addresses it spends from."""
    n_blocks = draw(st.integers(1, 5))
    return [
        draw(st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=4), max_size=3))
        for _ in range(n_blocks)
    ]


def plan_chain(plan: list[list[list[int]]]) -> ChainBuilder:
    keys = [pkh(f"k{i}") if i % 3 else wpkh(f"k{i}") for i in range(12)]
    b = ChainBuilder()
    b.block([(k, COIN) for k in keys] * 6)  # enough coins for every spend the plan can make
    for height, block in enumerate(plan, start=1):
        for j, spend in enumerate(block):
            coins = [k for k in dict.fromkeys(keys[i] for i in spend) if b.unspent.get(k)]
            if coins:
                b.tx(coins, [(pkh(f"out{height}.{j}"), len(coins) * COIN - 500)])
        b.block([(miner(height, "r"), 50 * COIN)])
    return b


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=spend_plans(), data=st.data())
def test_random_chains_match_the_oracle_incrementally_and_as_of(
    plan: list[list[list[int]]], data: st.DataObject
) -> None:
    chain = plan_chain(plan)
    tip = chain.height
    stop = data.draw(st.integers(0, tip), label="first run stops at")
    with tempfile.TemporaryDirectory() as tmp:
        once = make_store(Path(tmp) / "once", chain.raws)
        twice = make_store(Path(tmp) / "twice", chain.raws)
        try:
            Clusterer(once).run()
            Clusterer(twice).run(to_height=stop)
            assert_matches(twice, oracle(chain.txs, stop))
            Clusterer(twice).run()
            assert snapshot(twice) == snapshot(once)
            for height in range(tip + 1):
                assert_matches(once, oracle(chain.txs, height), as_of=height)
            expected = oracle(chain.txs, tip)
            assert link_rows(once) == expected.links
            assert merge_rows(once) == expected.merges
        finally:
            once.close()
            twice.close()


# --- the command line -------------------------------------------------------------------------


def run(args: list[str]) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart
    return runner.invoke(app, args, env=CLEAN_ENV)


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, fragment: str, code: int = 2) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory, pristine: Path) -> Path:
    root = tmp_path_factory.mktemp("cli")
    copy_store(pristine, root).close()
    return root


def cli(root: Path, *args: str) -> Result:
    return run(["--store", str(root), "--chain", "bitcoin", "--network", "regtest", *args])


@pytest.fixture(scope="module")
def clustered(cli_store: Path) -> dict[str, Any]:
    return ok_json(cli(cli_store, "cluster", "--json"))  # type: ignore[no-any-return]


def test_cli_cluster(clustered: dict[str, Any], main: ChainBuilder) -> None:
    expected = oracle(main.txs, MAIN_TIP)
    assert (clustered["run_id"], clustered["from_height"], clustered["to_height"]) == (
        1, 0, MAIN_TIP)
    assert clustered["block_hash"] == main.tip[::-1].hex()
    assert clustered["addresses"] == len(expected.ids)
    assert clustered["clusters"] == expected.n_clusters
    assert clustered["links"] == len(expected.links)
    assert clustered["merges"] == len(expected.merges)
    assert (clustered["held_back"], clustered["coinjoins"], clustered["restarted"]) == (
        0, 1, False)
    assert [h["name"] for h in clustered["config"]["heuristics"]] == ["multi_input"]


def test_cli_cluster_multi_owner(pristine: Path, tmp_path: Path, main: ChainBuilder) -> None:
    root = tmp_path / "store"
    copy_store(pristine, root).close()
    txid = next(tx.rpc_txid for tx in main.txs if tx.height == 3 and tx.inputs)
    listed = tmp_path / "payjoins.txt"
    listed.write_text(f"# from the merchant\n{txid} invoice 7\n", encoding="utf-8")
    text = cli(root, "cluster", "--multi-owner", str(listed))
    assert text.exit_code == 0, text.stderr
    assert "1 declared multi-owner transactions left unlinked" in " ".join(text.stdout.split())
    # a plain run extends the stored configuration, declarations included
    doc = ok_json(cli(root, "cluster", "--json"))
    assert (doc["restarted"], doc["links"], doc["multi_owner_declared"]) == (False, 0, 0)
    assert any("extending" in note for note in doc["notes"])
    declared = frozenset({txid})
    assert doc["clusters"] == oracle(main.txs, MAIN_TIP, declared=declared).n_clusters
    assert doc["clusters"] == oracle(main.txs, MAIN_TIP).n_clusters + 1
    recorded = doc["config"]["multi_owner_transactions"]
    assert recorded["txids"] == [txid]
    digest = hashlib.sha256(listed.read_bytes()).hexdigest()
    assert recorded["from"] == f"payjoins.txt (sha256 {digest})"
    fresh = tmp_path / "fresh"
    copy_store(pristine, fresh).close()
    first = ok_json(cli(fresh, "cluster", "--multi-owner", str(listed), "--json"))
    assert (first["multi_owner_declared"], first["clusters"]) == (1, doc["clusters"])
    assert first["config_hash"] == doc["config_hash"]
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{txid}\n{txid[:10]}\n", encoding="utf-8")
    assert_one_line_error(cli(root, "cluster", "--multi-owner", str(bad)), f"{bad}:2:")
    assert_one_line_error(cli(root, "cluster", "--multi-owner", str(listed), "--engine",
                              "spark"), "--engine spark does not take multi-owner")
    assert_one_line_error(cli(root, "cluster", "--multi-owner", str(listed), "--as-of", "3"),
                          "--multi-owner")


@pytest.mark.parametrize("height", [0, 2, 3, MAIN_TIP])
def test_cli_cluster_as_of(
    cli_store: Path, clustered: dict[str, Any], main: ChainBuilder, height: int
) -> None:
    doc = ok_json(cli(cli_store, "cluster", "--as-of", str(height), "--json"))
    expected = oracle(main.txs, height)
    assert doc == {"as_of_height": height, "addresses": len(expected.ids),
                   "clusters": expected.n_clusters, "config": clustered["config"],
                   "config_hash": clustered["config_hash"]}


def test_cli_show_cluster_explain_and_address(
    cli_store: Path, clustered: dict[str, Any], main: ChainBuilder
) -> None:
    expected = oracle(main.txs, MAIN_TIP)
    a1, a3 = expected.ids[A[1].text], expected.ids[A[3].text]
    shown = ok_json(cli(cli_store, "show", "cluster", str(a3), "--json"))
    assert (shown["cluster_id"], shown["merged_into"], shown["size"]) == (a1, a1, 4)
    assert {i["address"] for i in shown["addresses"]["items"]} == expected.members(a1)
    assert (shown["chain"], shown["network"], shown["as_of_height"]) == (
        "bitcoin", "regtest", MAIN_TIP)
    then = ok_json(cli(cli_store, "show", "cluster", str(a3), "--as-of", "1", "--json"))
    assert (then["cluster_id"], then["merged_into"], then["size"]) == (a3, None, 2)
    human = cli(cli_store, "show", "cluster", str(a3), "--limit", "2")
    assert human.exit_code == 0, human.output
    lines = human.output.splitlines()
    assert lines[0] == (f"cluster {a1} (bitcoin regtest, as of height {MAIN_TIP}): 4 address(es), "
                        f"seen at heights {shown['first_seen_height']}-"
                        f"{shown['last_seen_height']}")
    assert lines[1] == f"(cluster {a3} was merged into {a1})"
    assert lines[2] == (f"balance {shown['balance_sat']:,} sat; received "
                        f"{shown['received_sat']:,}, sent {shown['sent_sat']:,}")
    assert lines[3] == "joined by 3 multi_input v1 link(s)"
    flowing = " ".join(human.output.split())  # the console wraps long lines
    assert ("what these heuristics are measured to get wrong (methodology register "
            f"{load_methodology().version}): - multi_input v1 (Common-input ownership):"
            ) in flowing
    start = lines.index("addresses 1-2 of 4:")
    assert lines[start + 1:start + 3] == [
        f"  {i['address']}" for i in shown["addresses"]["items"][:2]]
    why = ok_json(cli(cli_store, "explain", A[3].text, A[1].text, "--json"))
    assert why["linked"] is True
    assert [(h["from"], h["to"]) for h in why["path"]] == [
        (A[3].text, A[5].text), (A[5].text, A[7].text), (A[7].text, A[1].text)]
    apart = ok_json(cli(cli_store, "explain", A[0].text, A[1].text, "--json"))
    assert apart["linked"] is False
    address = ok_json(cli(cli_store, "show", "address", A[5].text, "--json"))
    assert address["cluster"]["cluster_id"] == a1
    assert address["cluster"]["cluster_size"] == 4
    assert address["cluster"]["clustered_up_to"] == MAIN_TIP


BAD_INPUT = {
    "unknown heuristic": (("cluster", "--heuristics", "multi_input,bogus", "--json"), "bogus"),
    "negative guard": (("cluster", "--guard-size", "-1", "--json"), "guard"),
    "as-of past the clustering": (("cluster", "--as-of", str(MAIN_TIP + 1), "--json"), "--as-of"),
    "explain an unseen address": (
        ("explain", pkh("never-paid").text, A[1].text, "--json"), "never appeared"),
    "explain a malformed address": (("explain", "not-an-address", A[1].text, "--json"), ""),
    "show an unknown cluster": (("show", "cluster", "100000", "--json"), "no cluster"),
    "a negative page limit": (("show", "cluster", "0", "--limit", "-1", "--json"), "limit"),
    "a negative page offset": (("show", "cluster", "0", "--offset", "-1", "--json"), "offset"),
    "a heuristic named twice": (("cluster", "--heuristics", "multi_input,multi_input"),
                                "more than once"),
    "run options with --as-of": (("cluster", "--as-of", "1", "--guard-size", "3"),
                                 "--guard-size"),
    "account-chain options on a UTXO chain": (("cluster", "--max-blocks", "5"),
                                              "--max-blocks apply to account chains"),
    "Spark options without Spark": (("cluster", "--master", "local[1]"), "--engine spark"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_cli_rejects_bad_input_with_one_line(
    cli_store: Path, clustered: dict[str, Any], case: str
) -> None:
    args, fragment = BAD_INPUT[case]
    assert_one_line_error(cli(cli_store, *args), fragment)


def test_cli_names_an_address_the_clustering_asked_about_does_not_hold_yet(
    cli_store: Path, clustered: dict[str, Any]
) -> None:
    """An address first seen above --as-of: explain says when it appears (not "not in the same
    cluster"), and show cluster with its id says why there is no such cluster."""
    late = ok_json(cli(cli_store, "show", "address", X[5].text, "--json"))  # paid at height 6
    text, first, addr_id = late["address"], late["first_seen"]["height"], late["addr_id"]
    assert first == 6
    before = first - 1
    for pair in ((text, text), (text, A[0].text)):
        doc = ok_json(cli(cli_store, "explain", *pair, "--as-of", str(before), "--json"))
        assert doc["linked"] is False
        assert doc["answer"] == (f"not clustered as of height {before}: {text} first "
                                 f"appears at height {first}, after height {before}")
        assert doc["not_clustered"][0] == {"address": text, "first_height": first}
    assert_one_line_error(
        cli(cli_store, "show", "cluster", str(addr_id), "--as-of", str(before), "--json"),
        f"address {addr_id} first appears at height {first}, after --as-of {before}")


def test_cli_cluster_extends_the_stored_configuration_and_says_when_it_rebuilds(
    tmp_path: Path,
) -> None:
    """A plain `cluster` extends the clustering with the configuration it was built with (not
    the default); the same heuristics named in another order are the same configuration; a
    different configuration rebuilds from genesis and the text output says so."""
    chain = batch_chain()
    make_store(tmp_path, chain.raws).close()
    base = ["--store", str(tmp_path), "--chain", "bitcoin", "--network", "regtest", "cluster"]
    custom = ["--heuristics", "batch_change,multi_input", "--param", "batch_change.max_blocks=2"]
    first = ok_json(CliRunner().invoke(app, [*base, *custom, "--json"]))
    assert [h["name"] for h in first["config"]["heuristics"]] == ["multi_input", "batch_change"]
    again = ok_json(CliRunner().invoke(app, [*base, "--json"]))
    assert (again["restarted"], again["config_hash"]) == (False, first["config_hash"])
    assert again["notes"] == ["extending the stored clustering's configuration (multi_input "
                              "v1, batch_change v1)"]
    reordered = ok_json(CliRunner().invoke(app, [*base, "--heuristics", "multi_input,"
                                                 "batch_change", "--param",
                                                 "batch_change.max_blocks=2", "--json"]))
    assert (reordered["restarted"], reordered["config_hash"]) == (False, first["config_hash"])
    other = CliRunner().invoke(app, [*base, "--heuristics", "multi_input"])
    assert other.exit_code == 0, other.output
    assert ("the configuration differs from the stored clustering's (multi_input v1, "
            "batch_change v1): rebuilt from genesis with multi_input v1") in " ".join(
                other.output.split())
    as_of = ok_json(CliRunner().invoke(app, [*base, "--as-of", "2", "--json"]))
    assert [h["name"] for h in as_of["config"]["heuristics"]] == ["multi_input"]


def test_cli_without_clustering_says_to_run_it(pristine: Path, tmp_path: Path) -> None:
    copy_store(pristine, tmp_path).close()
    assert_one_line_error(cli(tmp_path, "show", "cluster", "0", "--json"), "cointrail cluster")
    address = ok_json(cli(tmp_path, "show", "address", A[5].text, "--json"))
    assert address["cluster"] is None


def test_guard_holds_a_strong_link_that_rests_on_a_weak_one(tmp_path: Path) -> None:
    """The classic supercluster: a change link wrongly attaches the payee's fresh address to
    the payer's cluster; when the payee later spends it together with its own coins, the
    multi-input link would merge payer and payee. That strong link touches an address whose
    membership rests on a weak link, so the guard holds it back when both clusters are large."""
    p1, p2, y, z1, z2 = pkh("p1"), pkh("p2"), pkh("y"), pkh("z1"), pkh("z2")
    b = ChainBuilder()
    b.block([(p1, 10 * COIN), (p2, 10 * COIN), (z1, 10 * COIN), (z2, 10 * COIN)])
    # the payee's two addresses are co-spent: a strong cluster {z1, z2}
    b.tx([z1, z2], [(wpkh("elsewhere"), 19 * COIN)])
    # the payer co-spends p1, p2 and pays y: y looks like change (type match, non-round)
    b.tx([p1, p2], [(y, 712_345_678), (wpkh("pay"), 12 * COIN)], change=y)
    b.block([(miner(1, "s"), 50 * COIN), (z1, 5 * COIN)])
    # the payee spends y together with z1: strong link y - z1, resting on the weak y link
    b.tx([y, z1], [(wpkh("out"), 12 * COIN)])
    b.block([(miner(2, "s"), 50 * COIN)])
    guarded = make_store(tmp_path / "guarded", b.raws)
    unguarded = make_store(tmp_path / "unguarded", b.raws)
    try:
        config = ClusterConfig(heuristics=("multi_input", "change"), guard_size=2)
        result = Clusterer(guarded, config).run()
        clusters = clusters_by_text(guarded)
        assert clusters[y.text] == clusters[p1.text] == clusters[p2.text]  # the weak link held
        assert clusters[z1.text] == clusters[z2.text] != clusters[p1.text]  # not merged on
        assert result.held == 1
        held = guarded.query("SELECT heuristic, size_a, size_b FROM cluster_held")
        assert held == [("multi_input", 3, 2)]
        doc = explain(guarded, p1.text, z2.text)
        assert doc["linked"] is False
        assert [h["heuristic"] for h in doc["held_back_links"]] == ["multi_input"]
        # without the guard the payer and the payee become one entity
        Clusterer(unguarded, ClusterConfig(heuristics=("multi_input", "change"),
                                           guard_size=0)).run()
        open_clusters = clusters_by_text(unguarded)
        assert open_clusters[p1.text] == open_clusters[z2.text]
    finally:
        guarded.close()
        unguarded.close()


# --- the deposit-address heuristic --------------------------------------------------------------

WITH_DEPOSITS = ClusterConfig(heuristics=("multi_input", "deposit_address"))
DEP = [wpkh(f"dep{i}") for i in range(3)]
CUSTOMER = [pkh(f"cust{i}") for i in range(4)]  # 0 and 1: one customer, paying dep0 twice
CUSTOMER_0B = pkh("cust0b")  # customer 0 again, paying dep0 at height 4
HOT_W, HOT_CHANGE, WITHDRAWN = wpkh("hot"), wpkh("hot-change"), pkh("withdrawn")


def deposit_chain(upto: int = 4) -> ChainBuilder:
    """An exchange: customers pay their deposit addresses (height 1), the exchange sweeps each
    one to its hot wallet in a transaction of its own (2), then pays a withdrawal from the hot
    wallet with change (3), which shows that the hot wallet is no deposit address waiting for
    its own sweep; at 4 customer 0 pays dep0 again from another address. Blocks 0..`upto`."""
    b = ChainBuilder()
    b.block([(c, 10 * COIN) for c in (*CUSTOMER, CUSTOMER_0B)])
    pay0 = b.tx([CUSTOMER[0]], [(DEP[0], 9 * COIN)])
    pay1 = b.tx([CUSTOMER[1]], [(DEP[0], 4 * COIN), (wpkh("c1-change"), 5 * COIN)])
    pay2 = b.tx([CUSTOMER[2]], [(DEP[1], 9 * COIN)])
    pay3 = b.tx([CUSTOMER[3]], [(DEP[2], 9 * COIN)])
    b.block([(miner(1, "d"), 50 * COIN)])
    b.tx([pay0.outputs[0], pay1.outputs[0]], [(HOT_W, 13 * COIN - 1_000)])
    b.tx([pay2.outputs[0]], [(HOT_W, 9 * COIN - 1_000)])
    b.tx([pay3.outputs[0]], [(HOT_W, 9 * COIN - 1_000)])
    b.block([(miner(2, "d"), 50 * COIN)])
    if upto >= 3:
        b.tx([HOT_W], [(WITHDRAWN, 5 * COIN), (HOT_CHANGE, 8 * COIN - 2_000)])
        b.block([(miner(3, "d"), 50 * COIN)])
    if upto >= 4:
        b.tx([CUSTOMER_0B], [(DEP[0], 9 * COIN)])
        b.block([(miner(4, "d"), 50 * COIN)])
    return b


def deposit_pairs(store: ChainStore) -> set[tuple[int, frozenset[str]]]:
    return {(h, frozenset((a, b))) for h, _, a, b, k in link_rows(store)
            if k == "deposit_address"}


def test_deposit_addresses_link_customers_and_the_hot_wallet_from_the_withdrawal_on(
    tmp_path: Path,
) -> None:
    chain = deposit_chain()
    store = make_store(tmp_path / "deposits", chain.raws)
    try:
        Clusterer(store, WITH_DEPOSITS).run()
        assert deposit_pairs(store) == {
            (3, frozenset((CUSTOMER[0].text, CUSTOMER[1].text))),  # same depositor of dep0
            *((3, frozenset((HOT_W.text, d.text))) for d in DEP),  # deposit to hot wallet
            (4, frozenset((CUSTOMER[1].text, CUSTOMER_0B.text))),  # dep0's next payment
            (3, frozenset((CUSTOMER[1].text, wpkh("c1-change").text))),  # pay1's change
        }
        evidence = [json.loads(str(d)) for (d,) in store.query(
            "SELECT detail FROM link_evidence WHERE heuristic = 'deposit_address'"
            " ORDER BY tx_id")]
        first = next(d for d in evidence if d["kind"] == "same_depositor")
        assert first["deposit_address"] == DEP[0].text
        assert first["hot_wallet"] == HOT_W.text
        pay0, pay1 = [t for t in chain.txs if t.height == 1 and t.inputs][:2]
        assert first["payments"] == [pay0.rpc_txid, pay1.rpc_txid]
        withdrawal = next(t for t in chain.txs if t.height == 3 and t.inputs)
        assert first["hot_since"] == withdrawal.rpc_txid
        clusters = clusters_by_text(store)
        customer = {clusters[a.text] for a in (CUSTOMER[0], CUSTOMER[1], CUSTOMER_0B)}
        exchange = {clusters[a.text] for a in (HOT_W, *DEP)}
        assert len(customer) == len(exchange) == 1 and customer != exchange
        assert clusters[CUSTOMER[2].text] != clusters[CUSTOMER[3].text]
        hot_id = store_ids(store)[HOT_W.text]
        shown = show_cluster(store, clusters[HOT_W.text])
        assert shown["hot_wallets"] == [
            {"address": HOT_W.text, "deposit_addresses": 3, "since_height": 3}]
        assert show_cluster(store, clusters[HOT_W.text], as_of=2)["hot_wallets"] == []
        assert (f"hot wallet (by behaviour): {HOT_W.text} sweeps 3 deposit address(es), "
                f"since height 3") in cluster_text(shown | {"attribution": None})
        assert show_cluster(store, clusters[CUSTOMER[0].text])["hot_wallets"] == []
        assert hot_id in (cluster_view(store).members(clusters[HOT_W.text]).tolist())
        answer = explain(store, CUSTOMER[0].text, CUSTOMER_0B.text)
        assert [h["heuristic"] for h in answer["path"]] == ["deposit_address"] * 2
        assert all(h["evidence"]["deposit_address"] == DEP[0].text for h in answer["path"])
        text = explain_text(answer)
        assert text.count(f"both paid deposit address {DEP[0].text} (hot wallet "
                          f"{HOT_W.text})") == 2
        assert f"payments {pay0.rpc_txid}, {pay1.rpc_txid}; first sweep " in text
        # as of height 2 nothing is decided: the hot wallet had not shown that it keeps coins
        assert all(h > 2 for h, _ in deposit_pairs(store))
        before = clusters_by_text(store, as_of=2)
        assert before[CUSTOMER[0].text] != before[CUSTOMER[1].text]
        assert before[HOT_W.text] != before[DEP[0].text]
    finally:
        store.close()


@pytest.mark.parametrize("stops", [(1,), (2, 3), (0, 1, 2, 3)])
def test_deposit_incremental_runs_equal_one_run(tmp_path: Path, stops: tuple[int, ...]) -> None:
    chain = deposit_chain()
    one = make_store(tmp_path / "one", chain.raws)
    parts = make_store(tmp_path / "parts", chain.raws)
    try:
        Clusterer(one, WITH_DEPOSITS).run()
        clusterer = Clusterer(parts, WITH_DEPOSITS)  # one object, several runs
        for stop in stops:
            clusterer.run(to_height=stop)
        clusterer.run()
        assert snapshot(parts) == snapshot(one)
        assert deposit_pairs(one)
    finally:
        one.close()
        parts.close()


def test_a_reorg_of_the_withdrawal_drops_the_deposit_links(tmp_path: Path) -> None:
    """The withdrawal at 3 made the hot wallet one; on a branch without it the hot wallet
    never spends, so within the sweep window nothing links, and the rerun after the rollback
    equals a fresh run of the branch."""
    main_branch = deposit_chain()
    branch = deposit_chain(upto=2)
    branch.tx([CUSTOMER_0B], [(DEP[0], 9 * COIN)])
    branch.block([(miner(3, "alt"), 50 * COIN)], tag=b"alt")
    branch.block([(miner(4, "alt"), 50 * COIN)], tag=b"alt")
    store = Store(tmp_path / "reorged").chain(SPEC)
    fresh = make_store(tmp_path / "fresh", branch.raws)
    try:
        ingestor = ingest(store, main_branch.raws)
        Clusterer(store, WITH_DEPOSITS).run()
        assert deposit_pairs(store)
        ingestor.rollback_to(2)
        assert not deposit_pairs(store)
        assert table_rows(store, "link_evidence") == []
        for raw in branch.raws[3:]:
            ingestor.add_block(decode_block_columns(raw, SPEC))
        ingestor.flush()
        Clusterer(store, WITH_DEPOSITS).run()
        Clusterer(fresh, WITH_DEPOSITS).run()
        assert snapshot(store) == snapshot(fresh)
        assert not deposit_pairs(store)
    finally:
        store.close()
        fresh.close()


# --- the batch-change heuristic -----------------------------------------------------------------

WITH_BATCHES = ClusterConfig(heuristics=("multi_input", "batch_change"))
SERVICE = wpkh("service")
BATCH_CHANGE = [wpkh(f"batch-change{i}") for i in range(4)]
LATE_CHANGE = wpkh("late-change")
BATCH_PAYEE = [pkh(f"batch-payee{i}") for i in range(12)]


def batch_chain() -> ChainBuilder:
    """A service pays batches (three payees and its change, the largest output): its batch at
    1 pays change 0, which its batch at 2 spends alone (change 1), spent alone by its batch at 3
    (change 2). A second batch at 1 pays the late change, spent alone by a batch only at 5."""
    b = ChainBuilder()
    b.block([(SERVICE, 50 * COIN), (wpkh("service-2"), 50 * COIN)])
    payees = iter(BATCH_PAYEE)

    def batch(source: Addr, change: Addr, left: int) -> TxRecord:
        return b.tx([source], [(next(payees), COIN), (next(payees), 2 * COIN),
                               (change, left)])

    batch(SERVICE, BATCH_CHANGE[0], 45 * COIN)
    b.tx([wpkh("service-2")], [(pkh("p-a"), COIN), (pkh("p-b"), COIN), (pkh("p-c"), COIN),
                               (LATE_CHANGE, 45 * COIN)])
    b.block([(miner(1, "b"), 50 * COIN)])
    batch(BATCH_CHANGE[0], BATCH_CHANGE[1], 40 * COIN)
    b.block([(miner(2, "b"), 50 * COIN)])
    batch(BATCH_CHANGE[1], BATCH_CHANGE[2], 35 * COIN)
    b.block([(miner(3, "b"), 50 * COIN)])
    b.block([(miner(4, "b"), 50 * COIN)])
    b.tx([LATE_CHANGE], [(pkh("p-d"), COIN), (pkh("p-e"), COIN), (pkh("p-f"), COIN),
                         (BATCH_CHANGE[3], 40 * COIN)])
    b.block([(miner(5, "b"), 50 * COIN)])
    return b


def batch_pairs(store: ChainStore) -> set[tuple[int, frozenset[str]]]:
    return {(h, frozenset((a, b))) for h, _, a, b, k in link_rows(store) if k == "batch_change"}


#: batches remembered for 2 blocks: the late change (spent 4 blocks on) is missed, and a run
#: continuing a clustering replays the window it rests on
SHORT_BATCH_WINDOW = ClusterConfig(heuristics=("multi_input", "batch_change"),
                                   params=(("batch_change", "max_blocks", 2),))


def test_batch_change_links_the_chain_of_batches_dated_at_each_spend(tmp_path: Path) -> None:
    chain = batch_chain()
    store = make_store(tmp_path / "batches", chain.raws)
    try:
        Clusterer(store, WITH_BATCHES).run()
        assert batch_pairs(store) == {
            (2, frozenset((SERVICE.text, BATCH_CHANGE[0].text))),
            (3, frozenset((BATCH_CHANGE[0].text, BATCH_CHANGE[1].text))),
            (5, frozenset((wpkh("service-2").text, LATE_CHANGE.text))),
        }
        clusters = clusters_by_text(store)
        assert len({clusters[a.text] for a in (SERVICE, *BATCH_CHANGE[:2])}) == 1
        assert clusters[BATCH_CHANGE[2].text] != clusters[SERVICE.text]  # not spent yet
        assert all(clusters[p.text] != clusters[SERVICE.text] for p in BATCH_PAYEE[:6])
        assert clusters_by_text(store, as_of=2)[BATCH_CHANGE[1].text] != clusters[SERVICE.text]
        answer = explain(store, SERVICE.text, BATCH_CHANGE[1].text)
        assert [h["heuristic"] for h in answer["path"]] == ["batch_change"] * 2
        first, second = answer["path"]
        batch1, batch2, batch3 = [t for t in chain.txs if t.inputs and t.height in (1, 2, 3)
                                  and t.inputs[0].addr in (SERVICE, *BATCH_CHANGE)]
        assert first["evidence"]["batch"] == batch1.rpc_txid
        assert first["evidence"]["spent_by"] == batch2.rpc_txid == first["txid"]
        assert first["evidence"]["change_value_sat"] == 45 * COIN
        assert first["evidence"]["fingerprint"]["input_script_type"] == "witness_v0_keyhash"
        assert second["evidence"]["batch"] == batch2.rpc_txid
        assert second["evidence"]["spent_by"] == batch3.rpc_txid
        runs = store.query("SELECT config FROM cluster_runs")
        described = json.loads(str(runs[-1][0]))["heuristics"]
        assert {"name": "batch_change", "version": "1"}.items() <= described[-1].items()
    finally:
        store.close()


@pytest.mark.parametrize("stops", [(1,), (2, 3), (0, 1, 2, 3, 4)])
def test_batch_change_incremental_runs_equal_one_run(
    tmp_path: Path, stops: tuple[int, ...],
) -> None:
    chain = batch_chain()
    one = make_store(tmp_path / "one", chain.raws)
    parts = make_store(tmp_path / "parts", chain.raws)
    try:
        Clusterer(one, SHORT_BATCH_WINDOW).run()
        assert batch_pairs(one) == {  # the window: the late change is not linked
            (2, frozenset((SERVICE.text, BATCH_CHANGE[0].text))),
            (3, frozenset((BATCH_CHANGE[0].text, BATCH_CHANGE[1].text)))}
        clusterer = Clusterer(parts, SHORT_BATCH_WINDOW)
        for stop in stops:
            clusterer.run(to_height=stop)
        clusterer.run()
        assert snapshot(parts) == snapshot(one)
        Clusterer(parts, SHORT_BATCH_WINDOW).run()  # a new process continuing: no change
        assert snapshot(parts) == snapshot(one)
    finally:
        one.close()
        parts.close()


# --- heuristic parameters -------------------------------------------------------------------------


def test_heuristic_parameters_are_typed_recorded_and_rebuild_the_clustering(
    tmp_path: Path,
) -> None:
    settings = parse_heuristic_params(["batch_change.max_blocks=2", "change.policy=majority",
                                       "deposit_address.link_hot=false"])
    assert settings == (("batch_change", "max_blocks", 2), ("change", "policy", "majority"),
                        ("deposit_address", "link_hot", False))
    config = ClusterConfig(heuristics=("multi_input", "change", "deposit_address",
                                       "batch_change"), params=settings)
    heuristics, _ = config.build()
    batches = next(h for h in heuristics if isinstance(h, BatchChange))
    assert batches.max_blocks == 2 and batches.min_outputs == 3
    described = {h["name"]: h["params"] for h in config.describe()["heuristics"]}
    assert described["batch_change"] == {"min_outputs": 3, "max_blocks": 2}
    assert described["change"]["policy"] == "majority"
    assert described["deposit_address"]["link_hot"] is False
    assert config.digest() != ClusterConfig(heuristics=config.heuristics).digest()
    chain = batch_chain()
    store = make_store(tmp_path / "params", chain.raws)
    try:
        Clusterer(store, WITH_BATCHES).run()
        assert len(batch_pairs(store)) == 3
        result = Clusterer(store, SHORT_BATCH_WINDOW).run()  # another parameter: rebuilt
        assert result.restarted and len(batch_pairs(store)) == 2
    finally:
        store.close()


@pytest.mark.parametrize(("texts", "message"), [
    (["batch_change.max_blocks"], "HEURISTIC.PARAMETER=VALUE"),
    (["max_blocks=2"], "HEURISTIC.PARAMETER=VALUE"),
    (["peeling.max_blocks=2"], "no UTXO heuristic 'peeling'"),
    (["batch_change.max_block=2"], "it takes max_blocks, min_outputs"),
    (["change.heuristics=x"], "no settable parameter 'heuristics'"),
    (["batch_change.max_blocks=two"], "'two' is not an int"),
    (["batch_change.max_blocks=2.5"], "is not an int"),
    (["deposit_address.link_hot=maybe"], "not true or false"),
    (["change.policy=sometimes"], "one of uncontested, unanimous, majority"),
    (["change.decisive=self_change,round"], "no change heuristic 'round' to make decisive"),
    (["change.wallet_fingerprint.grind=no"], "no settable parameter 'wallet_fingerprint.grind'"),
    (["change.wallet_fingerprint.min_low_r=0"], "min_low_r must be at least 1"),
    (["change.fingerprint.min_low_r=2"], "wallet_fingerprint.min_low_r"),
])
def test_bad_heuristic_parameters_say_what_is_wrong(texts: list[str], message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        settings = parse_heuristic_params(texts)
        ClusterConfig(heuristics=("multi_input", "change", "batch_change", "deposit_address"),
                      params=settings).build()


def test_the_change_linkers_decisive_heuristics_are_a_list_of_names() -> None:
    """`--param change.decisive=self_change` restores version 3's rule, and a run records
    the list and can be rebuilt from its record."""
    settings = parse_heuristic_params(["change.decisive= self_change ,optimal_change"])
    assert settings == (("change", "decisive", ("self_change", "optimal_change")),)
    config = ClusterConfig(heuristics=("multi_input", "change"), params=settings)
    (linker,) = [h for h in config.build()[0] if isinstance(h, ChangeLinker)]
    assert linker.decisive == ("self_change", "optimal_change")
    (described,) = [h for h in config.describe()["heuristics"] if h["name"] == "change"]
    assert described["params"]["decisive"] == ["self_change", "optimal_change"]
    again = ClusterConfig.from_description(json.loads(json.dumps(config.describe())))
    assert again is not None and again.digest() == config.digest()
    assert [h for h in again.build()[0] if isinstance(h, ChangeLinker)] == [linker]
    default = ClusterConfig(heuristics=("multi_input", "change"))
    assert default.digest() != config.digest()
    (linker,) = [h for h in default.build()[0] if isinstance(h, ChangeLinker)]
    assert linker.decisive == ("self_change", "one_time_change", "optimal_change",
                               "wallet_fingerprint")


def test_the_change_heuristics_take_parameters_through_the_linker() -> None:
    """``--param change.wallet_fingerprint.signatures=true`` gives the linker a fingerprint
    that compares signature styles (off by default); the run records it, is rebuilt from the
    record, and differs from the default run."""
    settings = parse_heuristic_params(["change.wallet_fingerprint.signatures=true",
                                       "change.wallet_fingerprint.min_low_r=3",
                                       "change.round_amount.precision_sats=1000000"])
    assert settings == (("change", "wallet_fingerprint.signatures", True),
                        ("change", "wallet_fingerprint.min_low_r", 3),
                        ("change", "round_amount.precision_sats", 1_000_000))
    config = ClusterConfig(heuristics=("multi_input", "change"), params=settings)
    (linker,) = [h for h in config.build()[0] if isinstance(h, ChangeLinker)]
    by_name = {h.name: h for h in linker.heuristics}
    assert len(linker.heuristics) == len(default_change_heuristics())
    assert by_name["wallet_fingerprint"] == WalletFingerprint(signatures=True, min_low_r=3)
    assert by_name["round_amount"] == RoundPaymentAmount(precision_sats=1_000_000)
    assert by_name["one_time_change"] == OneTimeChange()
    again = ClusterConfig.from_description(json.loads(json.dumps(config.describe())))
    assert again is not None and again.digest() == config.digest()
    assert set(settings) <= set(again.params)
    default = ClusterConfig(heuristics=("multi_input", "change"))
    assert default.digest() != config.digest()
    again_default = ClusterConfig.from_description(json.loads(json.dumps(default.describe())))
    assert again_default is not None and again_default.digest() == default.digest()
    assert not [p for p in again_default.params if "." in p[1]]  # defaults are not settings


def test_parameters_must_fit_the_run_and_the_heuristic() -> None:
    with pytest.raises(InputError, match="which this run does not use"):
        ClusterConfig(heuristics=("multi_input",), params=(("batch_change", "max_blocks", 2),))
    with pytest.raises(InputError, match="is not a parameter batch_change takes"):
        ClusterConfig(heuristics=("multi_input", "batch_change"),
                      params=(("batch_change", "max_blocks", "2"),))
    with pytest.raises(InputError, match="min_outputs >= 3"):  # the heuristic's own check
        ClusterConfig(heuristics=("multi_input", "batch_change"),
                      params=(("batch_change", "min_outputs", 2),)).build()


def test_cli_cluster_takes_parameters(tmp_path: Path) -> None:
    chain = batch_chain()
    make_store(tmp_path, chain.raws).close()
    base = ["--store", str(tmp_path), "--chain", "bitcoin", "--network", "regtest", "cluster",
            "--heuristics", "multi_input,batch_change", "--json"]
    done = CliRunner().invoke(app, [*base, "--param", "batch_change.max_blocks=2"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    (batch,) = [h for h in doc["config"]["heuristics"] if h["name"] == "batch_change"]
    assert batch["params"]["max_blocks"] == 2
    bad = CliRunner().invoke(app, [*base, "--param", "batch_change.max_blocks=soon"])
    assert bad.exit_code != 0 and "'soon' is not an int" in bad.output
    spark = CliRunner().invoke(app, [*base[:-3], "--engine", "spark", "--param",
                                     "multi_input.skip_coinjoin=false"])
    assert spark.exit_code != 0 and "drop --param" in spark.output


def test_a_clustering_made_by_an_older_heuristic_version_is_rebuilt_with_its_heuristics(
    tmp_path: Path,
) -> None:
    """A store clustered by an earlier cointrail (here: change v3 with another parameter) is
    rebuilt by a plain `cointrail cluster` with the same heuristics at this version and their
    defaults, and the note says so; without the upgrade the stored configuration is extended."""
    chain = batch_chain()
    make_store(tmp_path, chain.raws).close()
    base = ["--store", str(tmp_path), "--chain", "bitcoin", "--network", "regtest", "cluster"]
    first = CliRunner().invoke(app, [*base, "--heuristics", "multi_input,change,batch_change",
                                     "--param", "batch_change.max_blocks=2", "--json"])
    assert first.exit_code == 0, first.output
    again = json.loads(CliRunner().invoke(app, [*base, "--json"]).stdout)
    assert again["restarted"] is False and again["notes"][0].startswith("extending")
    store = Store(tmp_path).chain(SPEC)
    try:  # what an older version recorded: change v3, whose decisive default was self-change
        (run_id, text), = store.query("SELECT run_id, config FROM cluster_runs"
                                     " ORDER BY run_id DESC LIMIT 1")
        doc = json.loads(str(text))
        (change,) = [h for h in doc["heuristics"] if h["name"] == "change"]
        change["version"], change["params"]["decisive"] = "3", ["self_change"]
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        store.con.execute("UPDATE cluster_runs SET config = ?, config_hash = ? WHERE run_id = ?",
                          [json.dumps(doc), digest, run_id])
        store.con.execute("UPDATE sync_state SET value = ? WHERE key = 'cluster_config_hash'",
                          [digest])
    finally:
        store.close()
    upgraded = CliRunner().invoke(app, [*base, "--json"])
    assert upgraded.exit_code == 0, upgraded.output
    doc = json.loads(upgraded.stdout)
    assert doc["restarted"] is True
    assert [(h["name"], h["version"]) for h in doc["config"]["heuristics"]] == [
        ("multi_input", "1"), ("change", ChangeLinker.version), ("batch_change", "1")]
    params = {h["name"]: h["params"] for h in doc["config"]["heuristics"]}
    assert params["change"]["decisive"] == list(ChangeLinker().decisive)  # the defaults
    assert params["batch_change"]["max_blocks"] == BatchChange().max_blocks
    assert any("made with multi_input v1, change v3, batch_change v1, which this cointrail "
               "cannot reproduce" in n for n in doc["notes"]), doc["notes"]
    text = CliRunner().invoke(app, base)
    assert text.exit_code == 0 and "extending the stored clustering" in text.output


def test_explain_reads_as_text_with_each_link_and_its_evidence(tmp_path: Path) -> None:
    chain = batch_chain()
    store = make_store(tmp_path, chain.raws)
    try:
        Clusterer(store, WITH_BATCHES).run()
    finally:
        store.close()
    base = ["--store", str(tmp_path), "--chain", "bitcoin", "--network", "regtest", "explain"]
    done = CliRunner().invoke(app, [*base, SERVICE.text, BATCH_CHANGE[1].text])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())  # the console wraps long lines
    batch1, batch2, batch3 = [t.rpc_txid for t in chain.txs if t.inputs
                              and t.inputs[0].addr in (SERVICE, *BATCH_CHANGE)][:3]
    assert text.startswith(f"{SERVICE.text} and {BATCH_CHANGE[1].text} are linked by 2 link(s).")
    assert f"1. {SERVICE.text} -> {BATCH_CHANGE[0].text} batch_change v1, height 2, tx {batch2}"\
        in text
    assert (f"the change of batch {batch1} (3 outputs, the largest 4,500,000,000 sat), spent as "
            f"the only input of batch {batch2} (3 outputs)") in text
    assert "same wallet fingerprint: version 2," in text
    assert f"2. {BATCH_CHANGE[0].text} -> {BATCH_CHANGE[1].text} batch_change v1, height 3, " \
           f"tx {batch3}" in text
    assert text.endswith("clustering as of height 5: multi_input v1, batch_change v1 (--json "
                         "for every parameter)")
    assert "- batch_change v1 (The change of a batch, where the next batch spends it" in text
    assert "wrong links: 0 of" in text
    apart = CliRunner().invoke(app, [*base, SERVICE.text, BATCH_PAYEE[0].text])
    assert "are not in the same cluster as of height 5." in " ".join(apart.output.split())


def test_cluster_text_of_an_account_cluster_lists_each_asset() -> None:
    doc = {"cluster_id": 7, "requested_id": 7, "merged_into": None, "chain": "ethereum",
           "network": "regtest", "as_of_height": 40, "size": 2, "first_seen_height": 3,
           "last_seen_height": 39,
           "assets": [{"symbol": "ETH", "contract": None, "balance": 5 * 10**18,
                       "received": 6 * 10**18, "sent": 10**18},
                      {"symbol": None, "contract": "0x" + "ab" * 20, "balance": 0,
                       "received": 10, "sent": 10}],
           "addresses": {"offset": 0, "limit": 100, "items": []}}
    lines = cluster_text(doc).splitlines()
    assert lines[0] == ("cluster 7 (ethereum regtest, as of height 40): 2 address(es), seen at "
                        "heights 3-39")
    assert lines[1] == ("ETH: balance 5,000,000,000,000,000,000, received "
                        "6,000,000,000,000,000,000, sent 1,000,000,000,000,000,000 "
                        "(smallest unit)")
    assert lines[2].startswith("0xabab") and lines[2].endswith("received 10, sent 10 "
                                                              "(smallest unit)")
