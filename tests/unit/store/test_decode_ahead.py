"""Blocks decoded on threads ahead of the ingest: the same columns, in order; a block that
fails to decode raises at its turn, after every good block before it; stopping early leaves
nothing running."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cointrail import get_chain
from cointrail.chain.utxo.blkfile import iter_best_chain_blocks
from cointrail.chain.utxo.columnar import BlockColumns, decode_block_columns
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import DecodeError
from cointrail.store.sync import decode_ahead

BTC = get_chain("bitcoin", "mainnet")


@pytest.fixture(scope="module")
def raws() -> list[tuple[int, bytes]]:
    return list(iter_best_chain_blocks(str(bundled_path(EARLY_MAINNET_BLOCKS)), BTC))


def same(a: BlockColumns, b: BlockColumns) -> bool:
    if bytes(a.hash) != bytes(b.hash) or a.n_tx != b.n_tx:
        return False
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("tx_size", "out_value"))


@pytest.mark.parametrize("threads", [0, 1, 2, 4])
def test_same_columns_in_the_same_order(raws: list[tuple[int, bytes]], threads: int) -> None:
    got = list(decode_ahead(raws, BTC, threads=threads))
    assert [h for h, _ in got] == [h for h, _ in raws] == list(range(439))
    assert all(same(cols, decode_block_columns(raw, BTC))
               for (_, cols), (_, raw) in zip(got, raws, strict=True))


def test_a_bad_block_raises_at_its_turn(raws: list[tuple[int, bytes]]) -> None:
    broken = [*raws[:100], (100, raws[100][1][:-7]), *raws[101:]]  # truncated block 100
    taken: list[int] = []
    with pytest.raises(DecodeError):
        for height, _ in decode_ahead(broken, BTC, threads=3):
            taken.append(height)
    assert taken == list(range(100))


def test_stopping_early_leaves_no_decoder_running(raws: list[tuple[int, bytes]]) -> None:
    stream = decode_ahead(raws, BTC, threads=2)
    for height, _ in stream:
        if height == 10:
            break
    stream.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("cointrail-decode")]
