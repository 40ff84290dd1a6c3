"""Taint models on single transactions: hand-checked splits and the exact-sum invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cointrail.analysis.tracing.models import (
    Taint,
    TaintModel,
    allocate,
    largest_remainder,
    span_total,
    subtract_spans,
    union_spans,
)


def test_largest_remainder_by_hand() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]  # tie: the earlier target
    assert largest_remainder(100, [1, 2]) == [33, 67]  # remainders 1 and 2 of 3
    assert largest_remainder(7, [0, 5, 0]) == [0, 7, 0]
    assert largest_remainder(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        largest_remainder(1, [0, 0])


@given(st.integers(0, 10**16),
       st.lists(st.integers(0, 10**15), min_size=1, max_size=30).filter(lambda w: sum(w) > 0))
def test_largest_remainder_sums_exactly(amount: int, weights: list[int]) -> None:
    shares = largest_remainder(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    for share, w in zip(shares, weights, strict=True):
        assert amount * w // total <= share <= amount * w // total + 1


def test_spans() -> None:
    assert union_spans(((0, 3), (5, 7)), ((2, 6),)) == ((0, 7),)
    assert subtract_spans(((0, 10),), ((2, 4), (6, 7))) == ((0, 2), (4, 6), (7, 10))
    assert span_total(((0, 2), (4, 6))) == 4


def test_haircut_split_and_fee() -> None:
    # one tainted input of 10 000 (6 000 tainted) and an untainted one of 2 000;
    # outputs 8 000 + 3 000 and a fee of 1 000
    sent = allocate(TaintModel.HAIRCUT, [Taint(6_000), None], [10_000, 2_000],
                    [8_000, 3_000, 1_000])
    assert sent == [[(0, Taint(4_000)), (1, Taint(1_500)), (2, Taint(500))], []]


def test_fifo_follows_positions() -> None:
    # inputs 3 | 5 (second fully tainted) onto outputs 4 | 4: positions 3..8
    sent = allocate(TaintModel.FIFO, [None, Taint(5, ((0, 5),))], [3, 5], [4, 4])
    assert sent == [[], [(0, Taint(1, ((3, 4),))), (1, Taint(4, ((0, 4),)))]]
    # a partly tainted first input: only its spans move, at their positions
    sent = allocate(TaintModel.FIFO, [Taint(2, ((1, 3),)), None], [3, 5], [2, 6])
    assert sent == [[(0, Taint(1, ((1, 2),))), (1, Taint(1, ((0, 1),)))], []]


def test_poison_taints_every_target_fully() -> None:
    sent = allocate(TaintModel.POISON, [None, Taint(1)], [5, 5], [7, 0, 3])
    assert sent == [[], [(0, Taint(7)), (2, Taint(3))]]


def test_targets_must_cover_sources() -> None:
    with pytest.raises(ValueError):
        allocate(TaintModel.HAIRCUT, [Taint(1)], [10], [5])


@given(st.data())
def test_haircut_and_fifo_conserve(data: st.DataObject) -> None:
    sources = data.draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=8))
    targets = data.draw(st.lists(st.integers(0, 10**9), min_size=1, max_size=8))
    targets[-1] += max(0, sum(sources) - sum(targets))  # targets cover the line
    taints = []
    for v in sources:
        lo = data.draw(st.integers(0, v))
        hi = data.draw(st.integers(lo, v))
        taints.append(Taint(hi - lo, ((lo, hi),) if hi > lo else ()))
    for model in (TaintModel.HAIRCUT, TaintModel.FIFO):
        sent = allocate(model, taints, sources, targets)
        for taint, shares in zip(taints, sent, strict=True):
            assert sum(t.amount for _, t in shares) == taint.amount
        received = [0] * len(targets)
        for shares in sent:
            for k, t in shares:
                received[k] += t.amount
        if model is TaintModel.FIFO:  # positions never overlap: no target over-filled
            assert all(r <= v for r, v in zip(received, targets, strict=True))
