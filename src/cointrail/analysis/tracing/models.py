"""Taint models: how the tainted part of a transaction's sources reaches its targets.

A transaction is read as one line of satoshis. Forward, the *sources* are its inputs (in input
order) and the *targets* its outputs (in output order) followed by the fee; backward, the
sources are its outputs and the targets its inputs. Sources and targets are laid end to end
from position 0, so both sides cover the same satoshis (forward: inputs = outputs + fee;
backward: the outputs cover the first part of the inputs' line, the fee the rest).

- **poison**: any taint on any source taints every target fully (amount = target value).
- **haircut**: each source's tainted amount is split across the targets in proportion to their
  values. Rounding is *largest remainder*: every target first gets ``floor(a * v / V)``; the
  satoshis left over go one each to the targets with the largest remainders
  ``(a * v) mod V``, ties to the earlier target. The shares of one source sum exactly to its
  tainted amount.
- **fifo**: first in, first out through the transaction. The tainted satoshis of a source are
  kept as exact spans (offsets within that output); on the line they land in whichever target
  covers the same positions. A fully tainted first input thus taints the first outputs first.

Amounts are integers throughout; no float is involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

Spans = tuple[tuple[int, int], ...]
"""Disjoint, sorted half-open ``[start, end)`` offsets within one output."""


class TaintModel(Enum):
    POISON = "poison"
    HAIRCUT = "haircut"
    FIFO = "fifo"


@dataclass(frozen=True, slots=True)
class Taint:
    """The tainted part of one output: an amount, and for FIFO the exact spans."""

    amount: int
    spans: Spans = ()


def largest_remainder(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights`; the shares sum exactly to `amount`."""
    total = sum(weights)
    if amount < 0 or any(w < 0 for w in weights):
        raise ValueError("amount and weights must not be negative")
    if total == 0:
        if amount:
            raise ValueError("cannot split a positive amount over zero weights")
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda k: (-(amount * weights[k] % total), k))
    for k in order[:left]:
        shares[k] += 1
    return shares


def span_total(spans: Spans) -> int:
    return sum(end - start for start, end in spans)


def union_spans(a: Spans, b: Spans) -> Spans:
    """The union of two span sets, merged and sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((*a, *b)):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def subtract_spans(a: Spans, b: Spans) -> Spans:
    """The parts of `a` not covered by `b`."""
    out: list[tuple[int, int]] = []
    for start, end in a:
        at = start
        for b0, b1 in b:
            if b1 <= at or b0 >= end:
                continue
            if b0 > at:
                out.append((at, b0))
            at = max(at, b1)
        if at < end:
            out.append((at, end))
    return tuple(out)


def _offsets(values: Sequence[int]) -> list[int]:
    out, at = [], 0
    for v in values:
        out.append(at)
        at += v
    return out


def allocate(
    model: TaintModel,
    sources: Sequence[Taint | None],
    source_values: Sequence[int],
    target_values: Sequence[int],
) -> list[list[tuple[int, Taint]]]:
    """For each source, the (target index, taint) pairs it sends; untainted sources send none.

    `sources` is aligned with `source_values` (None: not tainted); `target_values` must cover
    at least the sources' line (``sum(target_values) >= sum(source_values)``).
    """
    if sum(target_values) < sum(source_values):
        raise ValueError("the targets must cover the sources' line")
    out: list[list[tuple[int, Taint]]] = []
    src_at = _offsets(source_values)
    tgt_at = _offsets(target_values)
    for i, taint in enumerate(sources):
        sent: list[tuple[int, Taint]] = []
        if taint is not None and taint.amount > 0:
            if model is TaintModel.POISON:
                sent = [(k, Taint(v)) for k, v in enumerate(target_values) if v > 0]
            elif model is TaintModel.HAIRCUT:
                shares = largest_remainder(taint.amount, target_values)
                sent = [(k, Taint(s)) for k, s in enumerate(shares) if s > 0]
            else:
                sent = _fifo(taint.spans, src_at[i], tgt_at, target_values)
        out.append(sent)
    return out


def _fifo(
    spans: Spans, at: int, tgt_at: Sequence[int], target_values: Sequence[int]
) -> list[tuple[int, Taint]]:
    per_target: dict[int, list[tuple[int, int]]] = {}
    for start, end in spans:
        lo, hi = at + start, at + end
        for k, (t0, tv) in enumerate(zip(tgt_at, target_values, strict=True)):
            a, b = max(lo, t0), min(hi, t0 + tv)
            if a < b:
                per_target.setdefault(k, []).append((a - t0, b - t0))
    return [(k, Taint(span_total(tuple(s)), union_spans(tuple(s), ())))
            for k, s in sorted(per_target.items())]
