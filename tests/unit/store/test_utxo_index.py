"""The packed UTXO index: exact resolution, prefix collisions, BIP 30 duplicates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cointrail.store.ingest import UtxoIndex


def test_prefix_collision_keeps_both_transactions_apart() -> None:
    txids = {1: b"A" * 8 + b"x" * 24, 2: b"A" * 8 + b"y" * 24}
    index = UtxoIndex(txids.__getitem__)
    index.add(txids[1], 1, [(0, 100, 5, 1), (1, 200, None, 4)])
    index.add(txids[2], 2, [(0, 300, 7, 2)])
    assert index.collisions == 1
    assert len(index) == 3
    assert index.spend(txids[2], 0) == (2, 300, 7, 2)
    assert index.spend(txids[1], 0) == (1, 100, 5, 1)
    assert index.spend(txids[1], 1) == (1, 200, None, 4)
    assert index.spend(txids[1], 1) is None  # no double spend
    assert len(index) == 0


def test_bip30_duplicate_txid_overwrites() -> None:
    txid = bytes(range(32))
    index = UtxoIndex(lambda tx_id: txid)
    index.add(txid, 10, [(0, 50, 1, 5)])
    index.add(txid, 20, [(0, 50, 2, 6)])
    assert index.collisions == 0
    assert len(index) == 1
    assert index.spend(txid, 0) == (20, 50, 2, 6)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=2),  # short prefixes force collisions
            st.lists(st.tuples(st.integers(0, 2**51 - 1), st.none() | st.integers(0, 2**40 - 2)),
                     min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_matches_a_plain_dict(txs: list[tuple[bytes, list[tuple[int, int | None]]]]) -> None:
    full: dict[int, bytes] = {}
    index = UtxoIndex(full.__getitem__)
    expected: dict[tuple[bytes, int], tuple[int, int, int | None]] = {}
    for tx_id, (prefix, outs) in enumerate(txs):
        txid = prefix.ljust(8, b"\x00") + tx_id.to_bytes(24, "little")
        full[tx_id] = txid
        index.add(txid, tx_id, [(n, v, a, n % 11) for n, (v, a) in enumerate(outs)])
        expected |= {(txid, n): (tx_id, v, a, n % 11) for n, (v, a) in enumerate(outs)}
    assert len(index) == len(expected)
    for (txid, n), entry in expected.items():
        assert index.spend(txid, n) == entry
    assert len(index) == 0
