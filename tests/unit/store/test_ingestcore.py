"""The compiled ingest core against the pure-Python reference: the same rows, row for row.

- The core's tables alone: the unspent-output table behaves as `UtxoIndex` under forced
  8-byte txid-prefix collisions, BIP 30 duplicates, journal undo and hashes cut down to a few
  bits (long probe runs, backward-shift deletion, partition growth); the address map is exact
  when every address hashes alike.
- Whole ingests: real mainnet blocks 0–438 (bundled) and synthetic chains with every script
  kind (p2pk and the p2pkh of the same key, bare multisig, nulldata, nonstandard, segwit v0/v1,
  unknown witness versions, anchors, empty scripts), multi-input spends, spends inside a block,
  reused addresses, values beyond 2**51, BIP 30 duplicate coinbases and blocks that fail half
  way: both paths, any batch size, resumed, rolled back, mixed, and with a damaged record file.
- Background writes: the same rows whatever the batch, each write held open while the next
  batch is built; a full txid fetched from the batch being committed; a failed write's rows
  kept and written by the next flush.
"""

from __future__ import annotations

import gc
import itertools
import random
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cointrail import get_chain
from cointrail.chain.utxo.blkfile import iter_best_chain_blocks
from cointrail.chain.utxo.columnar import decode_block_columns
from cointrail.chain.utxo.hashes import hash160, merkle_root, sha256d
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import StoreError
from cointrail.store import ingest as ingest_mod
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import (
    HAVE_CORE,
    RECORDS_SUFFIX,
    CoreUtxoIndex,
    Spent,
    UtxoIndex,
    UtxoIngestor,
    new_core,
)
from cointrail.store.schema import TABLES
from cointrail.store.sync import ingest_blkfiles

pytestmark = pytest.mark.skipif(not HAVE_CORE, reason="the compiled ingest core is not built")

BTC = get_chain("bitcoin", "mainnet")
ALL_BITS = (1 << 64) - 1
FEW_BITS = 0xF000_0000_0000_0000  # 16 partitions, every key at the start of its partition
UTXO_MIXED = 0xC038_0000_0000_0000  # 4 partitions, 8 home slots in each: long, mixed runs
ADDR_MIXED = 0xC00E_0000_0000_0000  # 4 partitions, 8 fingerprints: homes differ, matches too


def dump(store: ChainStore) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: store.query(f"SELECT * FROM {t.name} ORDER BY ALL") for t in TABLES}


def assert_same(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert got.keys() == want.keys()
    for name, rows in want.items():
        assert got[name] == rows, f"table {name} differs"


# --- the unspent-output table ------------------------------------------------------------------


@pytest.mark.parametrize("mask", [ALL_BITS, FEW_BITS, UTXO_MIXED, 0])
def test_prefix_collision_keeps_both_transactions_apart(mask: int) -> None:
    txids = {1: b"A" * 8 + b"x" * 24, 2: b"A" * 8 + b"y" * 24}
    asked: list[int] = []

    def txid_of(tx_id: int) -> bytes:
        asked.append(tx_id)
        return txids[tx_id]

    index = CoreUtxoIndex(txid_of, hash_mask=mask)
    index.add(txids[1], 1, [(0, 100, 5, 1), (1, 200, None, 4)])
    index.add(txids[2], 2, [(0, 300, 7, 2)])
    assert asked == [1]  # only the colliding key needs the stored txid
    assert index.collisions == 1
    assert len(index) == 3
    assert index.spend(txids[2], 0) == (2, 300, 7, 2)
    assert index.spend(txids[1], 0) == (1, 100, 5, 1)
    assert index.spend(txids[1], 1) == (1, 200, None, 4)
    assert index.spend(txids[1], 1) is None  # no double spend
    assert index.spend(txids[2], 0) is None
    assert len(index) == 0
    # a third txid on the marked key goes to the side table as well
    third = b"A" * 8 + b"z" * 24
    index.add(third, 3, [(0, 1, None, 2)])
    assert index.spend(third, 0) == (3, 1, None, 2)


def test_bip30_duplicate_txid_overwrites() -> None:
    txid = bytes(range(32))
    index = CoreUtxoIndex(lambda tx_id: txid)
    index.add(txid, 10, [(0, 50, 1, 5)])
    index.add(txid, 20, [(0, 50, 2, 6)])
    assert index.collisions == 0
    assert len(index) == 1
    assert index.spend(txid, 0) == (20, 50, 2, 6)
    assert index.spend(txid, 0) is None


def test_full_width_fields() -> None:
    """Values beyond 2**51 (Dogecoin), ids up to 2**40 - 2, vouts up to 2**24 - 1."""
    txid = bytes(range(32, 64))
    for index in (UtxoIndex(lambda _: txid), CoreUtxoIndex(lambda _: txid)):
        index.add(txid, 2**40 - 1, [(2**24 - 1, 2**63 - 1, 2**40 - 2, 12), (0, 0, None, 0)])
        assert index.spend(txid, 2**24 - 1) == (2**40 - 1, 2**63 - 1, 2**40 - 2, 12)
        assert index.spend(txid, 0) == (2**40 - 1, 0, None, 0)
    with pytest.raises(OverflowError):
        CoreUtxoIndex(lambda _: txid).add(txid, 2**40, [(0, 1, None, 1)])


Op = tuple[str, int, int]  # ("add" | "spend" | "begin" | "undo" | "commit", tx, n)


@settings(max_examples=150, deadline=None)
@given(
    prefixes=st.lists(st.binary(min_size=1, max_size=1), min_size=1, max_size=12),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "add", "spend", "spend", "begin", "undo", "commit"]),
                  st.integers(0, 11), st.integers(0, 3)),
        max_size=80,
    ),
    mask=st.sampled_from([ALL_BITS, FEW_BITS, UTXO_MIXED, 0]),
)
def test_matches_the_reference(prefixes: list[bytes], ops: list[Op], mask: int) -> None:
    """Random adds, spends and journal undos on txids sharing 1-byte prefixes (so 8-byte
    prefixes collide all the time): the core answers exactly as `UtxoIndex` does."""
    txids = {i: prefixes[i % len(prefixes)].ljust(8, b"\x00") + i.to_bytes(24, "little")
             for i in range(12)}
    full: dict[int, bytes] = {}  # tx_id -> txid (a txid added twice is a BIP 30 duplicate)
    ref = UtxoIndex(full.__getitem__)
    core = CoreUtxoIndex(full.__getitem__, hash_mask=mask)
    journal = False
    for op, tx, n in ops:
        if op == "add":
            outs = [(k, (tx * 7 + k) * 2**45, None if k == 1 else tx + k, k % 13)
                    for k in range(n + 1)]
            full[len(full)] = txids[tx]
            ref.add(txids[tx], len(full) - 1, outs)
            core.add(txids[tx], len(full) - 1, outs)
        elif op == "spend":
            assert core.spend(txids[tx], n) == ref.spend(txids[tx], n)
        elif (op == "begin") != journal:  # begin, then undo or commit: one block's worth
            journal = op == "begin"
            getattr(ref, op)()
            getattr(core, op)()
        assert len(core) == len(ref)
        assert core.collisions == ref.collisions
    for tx in range(12):
        for n in range(4):
            assert core.spend(txids[tx], n) == ref.spend(txids[tx], n)
    assert len(core) == len(ref) == 0


@pytest.mark.parametrize("mask", [FEW_BITS, UTXO_MIXED, ALL_BITS])
def test_churn_with_few_hash_bits_keeps_every_entry(mask: int) -> None:
    """Backward-shift deletion and partition growth under long probe runs."""
    rng = random.Random(7)
    txids = [rng.randbytes(32) for _ in range(3000)]
    index = CoreUtxoIndex(lambda _: b"", hash_mask=mask)
    live: dict[tuple[int, int], Spent] = {}
    keys: list[tuple[int, int]] = []
    for i, txid in enumerate(txids):
        outs = [(n, rng.randrange(2**62), rng.choice([None, i]), n % 13)
                for n in range(rng.randrange(1, 4))]
        index.add(txid, i, outs)
        live |= {(i, n): Spent(i, v, a, c) for n, v, a, c in outs}
        keys += [(i, n) for n, _, _, _ in outs]
        for _ in range(rng.randrange(3)):  # spend a couple of random live outputs
            pick = rng.randrange(len(keys))
            keys[pick], keys[-1] = keys[-1], keys[pick]
            t, n = keys.pop()
            assert index.spend(txids[t], n) == live.pop((t, n))
    assert len(index) == len(live)
    for (t, n), spent in live.items():
        assert index.spend(txids[t], n) == spent
    assert len(index) == 0
    stats = index.core.stats()
    assert stats["utxo_used_slots"] == 0


def test_bulk_load_in_any_order_keeps_the_newer_duplicate() -> None:
    import numpy as np

    txid = bytes(range(32))
    core = new_core(lambda _: txid)
    # the same output twice (a BIP 30 duplicate left unspent in the store), newest first
    core.load_utxos(txid * 2, np.array([9, 3], "<i8"), np.array([0, 0], "<u4"),
                    np.array([5, 6], "<i8"), np.array([-1, 4], "<i8"), np.array([1, 2], "u1"))
    assert core.utxo_count == 1
    assert core.utxo_spend(txid, 0) == (9, 5, None, 1)


# --- the address map ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [ALL_BITS, FEW_BITS, ADDR_MIXED, 0])
def test_address_map_is_exact_whatever_the_hash(mask: int) -> None:
    """With mask 0 every address has the same hash: only the payload records tell them apart."""
    rng = random.Random(mask & 0xFFFF)
    core = new_core(addr_hash_mask=mask)
    keys = [(rng.choice([1, 2, 5, 6, 7, 8, 11]), rng.randbytes(rng.choice([2, 20, 32, 41])))
            for _ in range(3000)]
    keys = list(dict.fromkeys(keys))
    keys.append((1, keys[0][1]))  # same payload, another type: another address
    keys.append((keys[1][0], keys[1][1] + b"\x00"))  # a payload that extends another
    keys = list(dict.fromkeys(keys))
    ids = {key: core.addr_id(*key) for key in keys}
    assert list(ids.values()) == list(range(len(keys)))
    for key, addr_id in ids.items():
        assert core.addr_id(*key) == addr_id  # known: the same id, none created
        assert core.addr_lookup(*key) == addr_id
    assert core.next_addr_id == len(keys)
    assert core.addr_lookup(9, b"\x01" * 20) is None
    # forgetting the newest addresses (a failed block) keeps the rest intact
    core.addr_truncate(len(keys) // 2)
    for key, addr_id in ids.items():
        assert core.addr_lookup(*key) == (addr_id if addr_id < len(keys) // 2 else None)
    assert core.addr_id(*keys[-1]) == len(keys) // 2
    with pytest.raises(ValueError, match="payload"):
        core.addr_id(1, b"x" * 43)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=60),
       mask=st.sampled_from([ALL_BITS, ADDR_MIXED, 0]))
def test_address_map_against_a_dict(steps: list[tuple[int, int]], mask: int) -> None:
    """Inserts, and forgetting the newest ids (as a failed block does), against a dict."""
    core = new_core(addr_hash_mask=mask)
    model: dict[tuple[int, bytes], int] = {}
    for key_no, action in steps:
        key = (key_no % 3 + 1, bytes([key_no]) * (20 if key_no % 2 else 32))
        if action == 0 and model:
            keep = max(0, len(model) - 1 - key_no % 4)
            core.addr_truncate(keep)
            model = {k: v for k, v in model.items() if v < keep}
        else:
            model.setdefault(key, len(model))
            assert core.addr_id(*key) == model[key]
        for k in range(41):
            probe = (k % 3 + 1, bytes([k]) * (20 if k % 2 else 32))
            assert core.addr_lookup(*probe) == model.get(probe)


# --- synthetic chains --------------------------------------------------------------------------


def compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


def push(data: bytes) -> bytes:
    assert len(data) < 0x4C
    return bytes([len(data)]) + data


@dataclass
class Tx:
    inputs: list[tuple[bytes, int]]
    outputs: list[tuple[int, bytes]]
    script_sig: bytes = b"\x51"
    witness: bool = False
    coinbase: bool = False

    def serialize(self) -> tuple[bytes, bytes]:
        """(raw transaction, txid)."""
        ins = b"".join(
            prev + struct.pack("<I", vout) + compact(len(self.script_sig)) + self.script_sig
            + struct.pack("<I", 0xFFFFFFFE)
            for prev, vout in self.inputs
        )
        outs = b"".join(struct.pack("<q", v) + compact(len(s)) + s for v, s in self.outputs)
        body = compact(len(self.inputs)) + ins + compact(len(self.outputs)) + outs
        version, lock = struct.pack("<i", 2), struct.pack("<I", 0)
        txid = sha256d(version + body + lock)
        if not self.witness:
            return version + body + lock, txid
        stacks = b"".join(b"\x02" + push(b"\x30" * 9) + push(b"\x02" * 33) for _ in self.inputs)
        return version + b"\x00\x01" + body + stacks + lock, txid


@dataclass
class Chain:
    raws: list[bytes] = field(default_factory=list)
    bad: dict[int, bytes] = field(default_factory=dict)  # height -> a block that must fail


def _scripts(rng: random.Random) -> Iterator[bytes]:
    """Output scripts of every kind; a few are paid again and again (reused addresses)."""
    while True:
        kind = rng.randrange(16)
        h20, h32 = rng.randbytes(20), rng.randbytes(32)
        key = bytes([rng.choice([2, 3])]) + rng.randbytes(32)
        if kind == 0:
            yield b"\x76\xa9\x14" + h20 + b"\x88\xac"  # p2pkh
        elif kind == 1:
            yield b"\xa9\x14" + h20 + b"\x87"  # p2sh
        elif kind == 2:
            yield b"\x00\x14" + h20  # p2wpkh
        elif kind == 3:
            yield b"\x00\x20" + h32  # p2wsh
        elif kind == 4:
            yield b"\x51\x20" + h32  # p2tr
        elif kind == 5:
            yield push(key) + b"\xac"  # p2pk, compressed
            yield b"\x76\xa9\x14" + hash160(key) + b"\x88\xac"  # the same key's p2pkh
        elif kind == 6:
            yield push(b"\x04" + rng.randbytes(64)) + b"\xac"  # p2pk, uncompressed
        elif kind == 7:
            other = bytes([2]) + rng.randbytes(32)
            yield b"\x51" + push(key) + push(other) + b"\x52\xae"  # bare 1-of-2 multisig
        elif kind == 8:
            yield b"\x6a" + push(rng.randbytes(rng.randrange(1, 40)))  # nulldata
        elif kind == 9:
            yield rng.choice([b"", b"\x51", b"\xac\x00\x01", b"\x00\x13" + h20[:19]])
        elif kind == 10:
            yield b"\x52\x0a" + rng.randbytes(10)  # witness v2, 10-byte program
        elif kind == 11:
            yield b"\x60\x28" + rng.randbytes(40)  # witness v16, 40 bytes: the longest payload
        elif kind == 12:
            yield b"\x51\x02\x4e\x73"  # pay-to-anchor: one address, paid by everyone
        else:
            yield b"\x00\x14" + bytes([kind]) * 20  # a handful of much-reused addresses


def build_chain(seed: int, blocks: int = 36) -> Chain:
    rng = random.Random(seed)
    scripts = _scripts(rng)
    pool: list[bytes] = []

    def script() -> bytes:
        if pool and rng.random() < 0.3:
            return rng.choice(pool)
        s = next(scripts)
        pool.append(s)
        return s

    def value() -> int:
        return rng.choice([rng.randrange(1, 10**8), rng.randrange(2**52, 2**59)])

    chain = Chain()
    unspent: dict[tuple[bytes, int], None] = {}  # spendable outpoints, oldest first
    prev = bytes(32)
    coinbases: list[Tx] = []
    for height in range(blocks):
        if height in (9, 21) and coinbases:  # BIP 30: a coinbase identical to an earlier one
            cb = rng.choice(coinbases)
        else:
            cb = Tx([(bytes(32), 0xFFFFFFFF)], [(value(), script()) for _ in range(rng.randrange(
                1, 4))], script_sig=struct.pack("<I", height) + rng.randbytes(4), coinbase=True)
            coinbases.append(cb)
        txs = [cb]
        _, cb_txid = cb.serialize()
        for n, (_, s) in enumerate(cb.outputs):  # first in the block, spendable in it
            unspent.pop((cb_txid, n), None)  # a duplicate overwrites: one entry, the newest
            if not s.startswith(b"\x6a"):
                unspent[(cb_txid, n)] = None
        for _ in range(rng.randrange(0, 12)):
            if not unspent:
                break
            k = min(len(unspent), rng.randrange(1, 5))
            picked = rng.sample(list(unspent), k)
            for op in picked:
                del unspent[op]
            txs.append(Tx(picked, [(value() // 4, script()) for _ in range(rng.randrange(1, 6))],
                          witness=rng.random() < 0.4))
            _, txid = txs[-1].serialize()
            for n, (_, s) in enumerate(txs[-1].outputs):
                if not s.startswith(b"\x6a"):  # nulldata never enters the UTXO set
                    unspent[(txid, n)] = None  # spendable later in the same block, too
        serial = [t.serialize() for t in txs]
        header = struct.pack("<i", 1) + prev + merkle_root([txid for _, txid in serial]) \
            + struct.pack("<III", 1_300_000_000 + height, 0x1D00FFFF, height)
        raw_block = header + compact(len(txs)) + b"".join(raw for raw, _ in serial)
        if height % 7 == 3 and unspent:  # a block that fails: its last input spends nothing
            bad = [*txs, Tx([next(iter(unspent)), (rng.randbytes(32), 0)], [(1, script())])]
            bad_serial = [t.serialize() for t in bad]
            chain.bad[height] = header + compact(len(bad)) + b"".join(r for r, _ in bad_serial)
        chain.raws.append(raw_block)
        prev = sha256d(header)
    return chain


def ingest_chain(root: Path, chain: Chain, *, compiled: bool, batch_txs: int,
                 heights: range | None = None, python_decoder: bool = False) -> ChainStore:
    store = Store(root).chain(BTC)
    ingestor = UtxoIngestor(store, batch_txs=batch_txs, compiled=compiled)
    for height in heights if heights is not None else range(len(chain.raws)):
        if height in chain.bad:
            with pytest.raises(StoreError, match="which the store does not hold as unspent"):
                ingestor.add_block(decode_block_columns(chain.bad[height], BTC))
        use_speedups = False if python_decoder else None
        ingestor.add_block(decode_block_columns(chain.raws[height], BTC,
                                                use_speedups=use_speedups))
    ingestor.flush()
    return store


SEEDS = [1, 2, 3]


@pytest.fixture(scope="module", params=SEEDS)
def chain_and_reference(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Chain, dict[str, list[Any]]]:
    """A synthetic chain and the rows the pure-Python reference writes for it."""
    chain = build_chain(request.param)
    with ingest_chain(tmp_path_factory.mktemp("ref"), chain, compiled=False,
                      batch_txs=50_000) as store:
        return chain, dump(store)


def test_synthetic_chain_has_what_it_should(
    chain_and_reference: tuple[Chain, dict[str, list[Any]]],
) -> None:
    _, rows = chain_and_reference
    types = {r[4] for r in rows["outputs"]}
    assert {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11} <= types  # every script kind
    assert any(r[3] is None and r[5] is not None for r in rows["outputs"])  # scripts kept
    assert any(r[5] is None for r in rows["inputs"])  # spends of outputs without address
    assert any(r[2] >= 2**52 for r in rows["outputs"])
    height = {r[0]: r[2] for r in rows["txs"]}
    assert any(height[r[0]] == height[r[2]] for r in rows["inputs"])  # spent in its block
    paid = [r[3] for r in rows["outputs"] if r[3] is not None]
    assert len(paid) > len(set(paid))  # reused addresses
    assert len({r[1] for r in rows["txs"]}) < len(rows["txs"])  # BIP 30 duplicate txids


@pytest.mark.parametrize("batch_txs", [1, 9, 50_000])
def test_core_writes_the_reference_rows(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]], batch_txs: int
) -> None:
    chain, want = chain_and_reference
    with ingest_chain(tmp_path, chain, compiled=True, batch_txs=batch_txs) as store:
        assert_same(dump(store), want)


def test_core_takes_the_python_decoders_columns(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]]
) -> None:
    chain, want = chain_and_reference
    with ingest_chain(tmp_path, chain, compiled=True, batch_txs=20,
                      python_decoder=True) as store:
        assert_same(dump(store), want)


@pytest.mark.parametrize(("first", "second"), [(True, True), (False, True), (True, False)])
def test_resumed_and_mixed_ingests(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]],
    first: bool, second: bool,
) -> None:
    """Stop at a few heights and go on in a new ingestor (the indexes rebuilt from the store),
    switching between the core and the reference."""
    chain, want = chain_and_reference
    cuts = [0, 5, 17, 30, len(chain.raws)]
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        ingest_chain(tmp_path, chain, compiled=first if i % 2 == 0 else second, batch_txs=7,
                     heights=range(lo, hi)).close()
    with Store(tmp_path).chain(BTC) as store:
        assert_same(dump(store), want)


@pytest.mark.parametrize("height", [0, 8, 9, 20, 21, 34])
def test_rollback_then_reingest(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]], height: int
) -> None:
    chain, want = chain_and_reference
    store = ingest_chain(tmp_path, chain, compiled=True, batch_txs=11)
    with store:
        ingestor = UtxoIngestor(store, compiled=True)
        ingestor.rollback_to(height)
        for h in range(height + 1, len(chain.raws)):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        ingestor.flush()
        assert_same(dump(store), want)


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip", "garbage-header", "extend"])
def test_stale_record_file_is_repaired(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]], damage: str
) -> None:
    """The record file is only a cache: whatever happened to it, the next ingest checks it
    against the store's addresses and writes the same rows."""
    chain, want = chain_and_reference
    ingest_chain(tmp_path, chain, compiled=True, batch_txs=13, heights=range(20)).close()
    records = tmp_path / f"{BTC.chain}-{BTC.network}.duckdb{RECORDS_SUFFIX}"
    data = bytearray(records.read_bytes())
    assert len(data) > 64
    if damage == "delete":
        records.unlink()
    elif damage == "truncate":
        records.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        for pos in range(64 + 2, len(data), 97):
            data[pos] ^= 0xFF
        records.write_bytes(data)
    elif damage == "garbage-header":
        records.write_bytes(b"\x00" * 64 + data[64:])
    else:  # records of another fork beyond the committed count
        records.write_bytes(data + bytes(range(256)) * 5)
    with Store(tmp_path).chain(BTC) as store:
        ingestor = UtxoIngestor(store, compiled=True)
        if damage == "flip":
            assert ingestor.memory()["records_rewritten"] > 0
        assert records.stat().st_size == 64 + 44 * ingestor.next_addr_id  # truncated on load
        for h in range(20, len(chain.raws)):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        ingestor.flush()
        assert_same(dump(store), want)


def test_failed_append_keeps_the_batch(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A commit that fails leaves the batch in place (Arrow views of it stay valid while more
    blocks are added); the next flush commits everything."""
    chain, want = chain_and_reference
    store = Store(tmp_path).chain(BTC)
    original = ChainStore.append
    kept: list[Any] = []

    def failing(self: ChainStore, rows: Any, state: Any = None) -> None:
        kept.append({t.name: (data, data.to_pylist()) for t, data in rows.items()})
        raise OSError("disk full")

    with store:
        ingestor = UtxoIngestor(store, compiled=True, batch_txs=10**9)
        for h in range(12):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        monkeypatch.setattr(ChainStore, "append", failing)
        with pytest.raises(OSError, match="disk full"):
            ingestor.flush()
        monkeypatch.setattr(ChainStore, "append", original)
        for h in range(12, len(chain.raws)):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        for name, (table, rows) in kept[0].items():  # the first views still show their rows
            assert table.to_pylist() == rows, name
        ingestor.flush()
        assert_same(dump(store), want)


def test_failed_block_with_table_growth_is_undone(tmp_path: Path) -> None:
    """A block that adds thousands of outputs and addresses (the tables grow while it runs)
    and then fails leaves both indexes as they were."""
    rng = random.Random(11)
    base = build_chain(5, blocks=3)
    store = Store(tmp_path / "core").chain(BTC)
    ref = Store(tmp_path / "ref").chain(BTC)
    with store, ref:
        core_i = UtxoIngestor(store, compiled=True)
        ref_i = UtxoIngestor(ref, compiled=False)
        for raw in base.raws:
            core_i.add_block(decode_block_columns(raw, BTC))
            ref_i.add_block(decode_block_columns(raw, BTC))
        before = core_i.memory()
        cb = Tx([(bytes(32), 0xFFFFFFFF)], [(10**8, b"\x00\x14" + rng.randbytes(20))],
                script_sig=b"\x03\x33\x33", coinbase=True)
        _, cb_txid = cb.serialize()
        wide = Tx([(cb_txid, 0)], [(1, b"\x00\x14" + rng.randbytes(20)) for _ in range(20_000)])
        broken = Tx([(sha256d(b"nothing"), 0)], [(1, b"\x51")])
        serial = [t.serialize() for t in (cb, wide, broken)]
        header = struct.pack("<i", 1) + sha256d(base.raws[-1][:80]) + bytes(32) \
            + struct.pack("<III", 1, 2, 3)
        block = header + compact(3) + b"".join(r for r, _ in serial)
        for ingestor in (core_i, ref_i):
            with pytest.raises(StoreError, match="does not hold as unspent") as excinfo:
                ingestor.add_block(decode_block_columns(block, BTC))
            assert serial[2][1][::-1].hex() in str(excinfo.value)
        after = core_i.memory()
        for key in ("utxos", "addresses", "next_tx_id", "next_addr_id", "batch_txs"):
            assert after[key] == before[key], key
        assert after["utxo_slots"] > before["utxo_slots"]  # it grew, and stays grown
        core_i.flush()
        ref_i.flush()
        assert_same(dump(store), dump(ref))


# --- real blocks -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mainnet_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    store = Store(tmp_path_factory.mktemp("mainnet-ref")).chain(BTC)
    with store:
        ingest_blkfiles(UtxoIngestor(store, compiled=False), str(bundled_path(
            EARLY_MAINNET_BLOCKS)))
        return dump(store)


@pytest.mark.parametrize("batch_txs", [1, 50, 50_000])
def test_mainnet_blocks_same_rows(
    tmp_path: Path, mainnet_reference: dict[str, list[Any]], batch_txs: int
) -> None:
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store, compiled=True, batch_txs=batch_txs)
        result = ingest_blkfiles(ingestor, str(bundled_path(EARLY_MAINNET_BLOCKS)))
        assert result.tip_height == 438
        assert_same(dump(store), mainnet_reference)
        memory = ingestor.memory()
        assert memory["utxos"] == sum(1 for _ in mainnet_reference["outputs"]) - len(
            mainnet_reference["inputs"])
        assert memory["addresses"] == len(mainnet_reference["addresses"])
        assert memory["collisions"] == 0


def test_memory_figures_are_the_slots(tmp_path: Path) -> None:
    store = Store(tmp_path).chain(BTC)
    with store:
        ingestor = UtxoIngestor(store, compiled=True)
        ingest_blkfiles(ingestor, str(bundled_path(EARLY_MAINNET_BLOCKS)))
        m = ingestor.memory()
        assert m["utxo_bytes"] >= 32 * m["utxo_slots"]
        assert m["addr_bytes"] >= 8 * m["addr_slots"]
        assert m["utxo_used_slots"] == m["utxos"]  # no collisions: one slot per output
        assert m["addr_used_slots"] == m["addresses"]


# --- background writes -------------------------------------------------------------------------


@pytest.fixture
def held_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Hold every background write until the ingesting thread waits for it, so that the next
    batch is built while the previous one is not yet committed. Returns the committed tips."""
    gates: dict[threading.Thread, threading.Event] = {}
    committed: list[int] = []
    append, join = ChainStore.append, ingest_mod._Write.join

    def held_append(self: ChainStore, rows: Any, state: Any = None, *, con: Any = None) -> None:
        if con is not None:
            assert gates.setdefault(threading.current_thread(), threading.Event()).wait(30)
        append(self, rows, state, con=con)
        committed.append(int(state["tip_height"]))

    def releasing_join(self: ingest_mod._Write, timeout: float | None = None) -> None:
        gates.setdefault(self, threading.Event()).set()
        join(self, timeout)

    monkeypatch.setattr(ChainStore, "append", held_append)
    monkeypatch.setattr(ingest_mod._Write, "join", releasing_join)
    return committed


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("batch_txs", [1, 50, 50_000])
def test_background_writes_give_the_same_store(
    tmp_path: Path, mainnet_reference: dict[str, list[Any]], held_writes: list[int],
    compiled: bool, batch_txs: int,
) -> None:
    flushed: list[int] = []
    with Store(tmp_path).chain(BTC) as store:
        with UtxoIngestor(store, compiled=compiled, batch_txs=batch_txs, background_writes=True,
                          on_flush=lambda p: flushed.append(p.height)) as ingestor:
            result = ingest_blkfiles(ingestor, str(bundled_path(EARLY_MAINNET_BLOCKS)))
        assert result.tip_height == 438
        assert_same(dump(store), mainnet_reference)
    assert flushed == held_writes  # progress reports each batch once it is committed
    assert flushed[-1] == 438 and flushed == sorted(flushed)
    if batch_txs == 1:
        assert len(flushed) == 439


@pytest.mark.parametrize("seed", [1, 6])
def test_a_batch_being_committed_still_resolves_full_txids(
    tmp_path: Path, held_writes: list[int], monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:
    """A BIP 30 duplicate coinbase makes the core fetch the full txid of the unspent original
    (`txid_of`); here the original is in the previous batch, whose write is held open, so the
    store's connection cannot see it yet: the txid must come from the batch being written."""
    chain = build_chain(seed)
    with ingest_chain(tmp_path / "ref", chain, compiled=False, batch_txs=50_000) as ref:
        want = dump(ref)
    asked: list[int] = []
    lookup = ingest_mod._StoredTxids.__call__

    def recording(self: Any, tx_id: int) -> bytes:
        asked.append(tx_id)
        assert self.pending is not None and self.pending.num_rows  # a write is in flight
        return lookup(self, tx_id)

    monkeypatch.setattr(ingest_mod._StoredTxids, "__call__", recording)
    with Store(tmp_path / "bg").chain(BTC) as store:
        with UtxoIngestor(store, compiled=True, batch_txs=1, background_writes=True) as ing:
            for height, raw in enumerate(chain.raws):
                if height in chain.bad:
                    with pytest.raises(StoreError, match="does not hold as unspent"):
                        ing.add_block(decode_block_columns(chain.bad[height], BTC))
                ing.add_block(decode_block_columns(raw, BTC))
            ing.flush()
        assert asked  # the duplicate was resolved while its original's batch was in flight
        assert_same(dump(store), want)


def test_failed_background_write_keeps_its_rows(
    tmp_path: Path, chain_and_reference: tuple[Chain, dict[str, list[Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A background write that fails leaves the store at its last commit, and its rows with
    the ingestor: more blocks can be added, and the next flush writes both batches."""
    chain, want = chain_and_reference
    original = ChainStore.append
    failures = [0]

    def failing_once(self: ChainStore, rows: Any, state: Any = None, *, con: Any = None) -> None:
        if con is not None and state["tip_height"] == "20" and not failures[0]:
            failures[0] += 1
            raise OSError("disk full")
        original(self, rows, state, con=con)

    monkeypatch.setattr(ChainStore, "append", failing_once)
    with Store(tmp_path).chain(BTC) as store:
        ingestor = UtxoIngestor(store, compiled=True, batch_txs=10**9, background_writes=True)
        for h in range(10):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        ingestor.flush()
        for h in range(10, 20):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        ingestor.batch_txs = 1
        ingestor.add_block(decode_block_columns(chain.raws[20], BTC))  # hands 10..20 over
        ingestor.batch_txs = 10**9
        for h in range(21, 30):  # built while that write fails
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        with pytest.raises(OSError, match="disk full"):
            ingestor.flush()
        assert failures[0] == 1
        tip = store.tip()
        assert tip is not None and tip.height == 9
        ingestor.flush()  # the failed batch first, then 21..29
        tip = store.tip()
        assert tip is not None and tip.height == 29
        for h in range(30, len(chain.raws)):
            ingestor.add_block(decode_block_columns(chain.raws[h], BTC))
        ingestor.close()  # not flushed: 30.. are not committed
        assert store.tip() == tip
        del ingestor  # lets go of the address record file (its error traceback held it)
        gc.collect()
        with UtxoIngestor(store, compiled=True, background_writes=True) as resumed:
            for h in range(30, len(chain.raws)):
                resumed.add_block(decode_block_columns(chain.raws[h], BTC))
            resumed.flush()
        assert_same(dump(store), want)


def test_an_interrupted_wait_never_closes_the_connection_under_a_running_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while `flush` waits for the writer thread: `close` must wait for that write to
    finish before it closes the writer's connection (closing it under DuckDB's insert crashed
    the process), and the batch is committed whole."""
    release = threading.Event()
    append, join = ChainStore.append, ingest_mod._Write.join
    interrupted: list[bool] = []

    def slow_append(self: ChainStore, rows: Any, state: Any = None, *, con: Any = None) -> None:
        if con is not None:
            assert release.wait(30)
        append(self, rows, state, con=con)

    def interrupted_join(self: ingest_mod._Write, timeout: float | None = None) -> None:
        if not interrupted:  # the first wait is cut short, as by SIGINT, the write still running
            interrupted.append(True)
            raise KeyboardInterrupt
        release.set()
        join(self, timeout)

    monkeypatch.setattr(ChainStore, "append", slow_append)
    monkeypatch.setattr(ingest_mod._Write, "join", interrupted_join)
    blocks = [raw for _, raw in iter_best_chain_blocks(bundled_path(EARLY_MAINNET_BLOCKS), BTC)]
    with Store(tmp_path).chain(BTC) as store:
        ingestor = UtxoIngestor(store, background_writes=True)
        for raw in blocks[:100]:
            ingestor.add_block(decode_block_columns(raw, BTC))
        with pytest.raises(KeyboardInterrupt):
            ingestor.flush()
        assert ingestor._writer is not None and ingestor._writer.is_alive()
        ingestor.close(raise_errors=False)
        assert ingestor._writer_con is None
        tip = store.tip()
        assert tip is not None and tip.height == 99
