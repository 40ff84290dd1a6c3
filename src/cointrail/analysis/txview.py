"""What a heuristic sees of a transaction: a store-independent, read-only view.

Heuristics and CoinJoin detectors take `TxView` records, never store rows, so they can be tested
on synthetic transactions and run on any engine that can produce the same records.
`iter_tx_views` builds them from a DuckDB store in chain order with a few set-based queries per
batch of transactions (never a query per transaction).

Invariants: a view's inputs and outputs are in wire order (vin, vout); amounts are satoshi;
`OutputView.address_first_tx_id` is the id of the first transaction that paid the output's
address, so it is never greater than the view's own `tx_id` in a consistent store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import duckdb
import pyarrow as pa

from cointrail.chain.utxo.script import ScriptType
from cointrail.chain.utxo.sigstyle import SIG_ECDSA, SIG_HIGH_R
from cointrail.errors import InputError

#: nSequence of an input that opts out of both relative lock-time and RBF.
SEQUENCE_FINAL = 0xFFFFFFFF
#: nSequence that enables nLockTime but not RBF (Bitcoin Core before 24 without -walletrbf).
SEQUENCE_LOCKTIME = 0xFFFFFFFE
#: nSequence that signals replace-by-fee (BIP 125); Bitcoin Core's wallet default since 24.
SEQUENCE_RBF = 0xFFFFFFFD
#: nLockTime values at or above this are Unix times, below it block heights (BIP 65 / Core).
LOCKTIME_THRESHOLD = 500_000_000
#: How far below the mined height a height lock-time may lie and still count as anti-fee-sniping
#: (Core sets the tip height, sometimes up to 99 blocks less; a transaction may wait in the
#: mempool for days before it is mined).
ANTI_FEE_SNIPING_WINDOW = 1_000

DEFAULT_BATCH_SIZE = 100_000


class Freshness(StrEnum):
    """Whether an output's address was first paid by this transaction."""

    FRESH = "fresh"  # first paid here: never seen before this transaction
    REUSED = "reused"  # paid by an earlier transaction
    UNKNOWN = "unknown"  # no address, or its first transaction is not known


class LockTimeStyle(StrEnum):
    """How a wallet sets nLockTime."""

    ZERO = "zero"  # nLockTime 0: most wallets before anti-fee-sniping
    TIP_HEIGHT = "tip_height"  # a height just below the mined height: anti-fee-sniping
    OTHER_HEIGHT = "other_height"  # any other block height
    TIME = "time"  # a Unix time


class SequenceStyle(StrEnum):
    """How a wallet sets nSequence, over all inputs of a transaction."""

    FINAL = "final"  # every input 0xffffffff
    LOCKTIME = "locktime"  # every input 0xfffffffe: lock-time enabled, no RBF
    RBF = "rbf"  # every input 0xfffffffd: BIP 125 opt-in RBF
    OTHER = "other"  # every input below 0xfffffffd (relative lock-times, 0, ...)
    MIXED = "mixed"  # inputs differ
    NONE = "none"  # no inputs (coinbase)


def sequence_class(sequence: int) -> SequenceStyle:
    """The style one input's nSequence belongs to."""
    if sequence == SEQUENCE_FINAL:
        return SequenceStyle.FINAL
    if sequence == SEQUENCE_LOCKTIME:
        return SequenceStyle.LOCKTIME
    if sequence == SEQUENCE_RBF:
        return SequenceStyle.RBF
    return SequenceStyle.OTHER


def lock_time_style(lock_time: int, height: int) -> LockTimeStyle:
    """Classify nLockTime relative to the height the transaction was mined at."""
    if lock_time == 0:
        return LockTimeStyle.ZERO
    if lock_time >= LOCKTIME_THRESHOLD:
        return LockTimeStyle.TIME
    if 0 <= height - lock_time <= ANTI_FEE_SNIPING_WINDOW:
        return LockTimeStyle.TIP_HEIGHT
    return LockTimeStyle.OTHER_HEIGHT


def sequence_style(min_sequence: int | None, max_sequence: int | None) -> SequenceStyle:
    """The transaction-wide sequence style from its inputs' smallest and largest nSequence."""
    if min_sequence is None or max_sequence is None:
        return SequenceStyle.NONE
    low, high = sequence_class(min_sequence), sequence_class(max_sequence)
    if low is high:
        return low
    return SequenceStyle.MIXED


@dataclass(frozen=True, slots=True)
class TxStyle:
    """A wallet fingerprint of one transaction (after Möser & Narayanan 2022's features).

    `input_script_type` is the one script type all inputs spend, or None when they differ or
    there are no inputs. The signature style (`cointrail.chain.utxo.sigstyle`): `low_r` counts
    the inputs that carry ECDSA signatures, all with a low R; `high_r` says whether any input
    has a signature with a high R (a wallet that does not grind for low R). Both are 0 / False
    when the store does not know (rows ingested before schema 3).
    """

    version: int
    lock_time: LockTimeStyle
    sequence: SequenceStyle
    input_script_type: ScriptType | None
    low_r: int = 0
    high_r: bool = False


@dataclass(frozen=True, slots=True)
class InputView:
    """One input, resolved to the output it spends.

    `script_type` is the spent output's script type; `sequence` is nSequence; `prev_tx_id` the
    transaction of the spent output (-1 when the view was built without it); `sig_flags` the
    signature style (`cointrail.chain.utxo.sigstyle` flags; None when unknown).
    """

    addr_id: int | None
    value: int
    script_type: ScriptType
    sequence: int
    prev_tx_id: int = -1
    sig_flags: int | None = None


@dataclass(frozen=True, slots=True)
class OutputView:
    """One output.

    `address_first_tx_id` is the first transaction that paid `addr_id` (None without an
    address). `spent_by` is the wallet fingerprint of the transaction that spends this output,
    when the view was built with spenders (`iter_tx_views(..., with_spenders=True)`) and the
    output is spent; None otherwise.
    """

    n: int
    addr_id: int | None
    value: int
    script_type: ScriptType
    address_first_tx_id: int | None
    spent_by: TxStyle | None = None


@dataclass(frozen=True, slots=True)
class TxView:
    """One transaction with its inputs (vin order) and outputs (vout order).

    A coinbase has no inputs: its coinbase input spends nothing and is not listed.
    """

    tx_id: int
    height: int
    version: int
    lock_time: int
    inputs: tuple[InputView, ...]
    outputs: tuple[OutputView, ...]
    is_coinbase: bool

    def freshness(self, output: OutputView) -> Freshness:
        """FRESH when this transaction first paid the output's address, REUSED when an earlier
        one did, UNKNOWN without an address or first-seen transaction."""
        first = output.address_first_tx_id
        if output.addr_id is None or first is None:
            return Freshness.UNKNOWN
        if first == self.tx_id:
            return Freshness.FRESH
        if first < self.tx_id:
            return Freshness.REUSED
        return Freshness.UNKNOWN  # a later first payment: the store is inconsistent

    @property
    def input_addr_ids(self) -> frozenset[int]:
        """The addresses the inputs spend from (inputs without an address left out)."""
        return frozenset(i.addr_id for i in self.inputs if i.addr_id is not None)

    @property
    def first_input_addr_id(self) -> int | None:
        """The address of the first input that has one."""
        return next((i.addr_id for i in self.inputs if i.addr_id is not None), None)

    @property
    def style(self) -> TxStyle:
        """This transaction's wallet fingerprint."""
        sequences = [i.sequence for i in self.inputs]
        types = {i.script_type for i in self.inputs}
        return TxStyle(
            version=self.version,
            lock_time=lock_time_style(self.lock_time, self.height),
            sequence=sequence_style(min(sequences, default=None), max(sequences, default=None)),
            input_script_type=types.pop() if len(types) == 1 else None,
            low_r=sum(1 for i in self.inputs
                      if i.sig_flags is not None
                      and i.sig_flags & (SIG_ECDSA | SIG_HIGH_R) == SIG_ECDSA),
            high_r=any(i.sig_flags is not None and i.sig_flags & SIG_HIGH_R
                       for i in self.inputs),
        )


# --- reading views from the store -------------------------------------------------------------

# `{where}` selects the transactions: a tx_id range, or a list of ids within a range.
_TXS_SQL = """
    SELECT tx_id, height, version, lock_time, is_coinbase
    FROM txs WHERE {where} ORDER BY tx_id
"""
_INPUTS_SQL = """
    SELECT tx_id, addr_id, value, script_type, sequence, prev_tx_id, sig_flags
    FROM inputs WHERE {where} ORDER BY tx_id, n
"""
_OUTPUTS_SQL = """
    SELECT o.tx_id, o.n, o.addr_id, o.value, o.script_type, a.first_tx_id
    FROM outputs o LEFT JOIN addresses a ON a.addr_id = o.addr_id
    WHERE {where} ORDER BY o.tx_id, o.n
"""
_RANGE = "{col}tx_id BETWEEN ? AND ?"
# the wanted transactions of `tx_views_spent_until`: registered as an Arrow table (a list
# parameter of thousands of ids costs DuckDB far more than a registered table)
_WANT = "_txview_want"
_LISTED = "{col}tx_id BETWEEN ? AND ? AND {col}tx_id IN (SELECT tx_id FROM " + _WANT + ")"
# Each spending transaction's fingerprint parts, aggregated over its inputs (`_styles` reads
# them): nSequence and script type ranges, inputs whose ECDSA signatures are all low-R, any
# high-R signature
_STYLE_AGG = f"""min(sequence) AS seq_min, max(sequence) AS seq_max,
               min(script_type) AS type_min, max(script_type) AS type_max,
               count(*) FILTER (WHERE sig_flags & {SIG_ECDSA | SIG_HIGH_R} = {SIG_ECDSA}) AS low_r,
               coalesce(bool_or(sig_flags & {SIG_HIGH_R} = {SIG_HIGH_R}), false) AS high_r"""
_STYLE_SELECT = """SELECT sp.prev_tx_id, sp.prev_n, t.version, t.lock_time, t.height,
           agg.seq_min, agg.seq_max, agg.type_min, agg.type_max, agg.low_r, agg.high_r
    FROM sp JOIN txs t ON t.tx_id = sp.spender JOIN agg ON agg.tx_id = sp.spender"""
# The wallet fingerprint of each spender of an output of the wanted transactions (`want`: each
# with the last spending transaction it may see). Spenders come after the first wanted
# transaction and not after the last bound, which lets DuckDB skip row groups on tx_id.
_SPENDERS_SQL = f"""
    WITH want AS (
        SELECT tx_id, bound FROM _txview_want
    ), sp AS (
        SELECT i.prev_tx_id, i.prev_n, i.tx_id AS spender FROM inputs i
        JOIN want w ON w.tx_id = i.prev_tx_id
        WHERE i.prev_tx_id BETWEEN ? AND ? AND i.tx_id > ? AND i.tx_id <= ?
          AND i.tx_id <= w.bound
    ), agg AS (
        SELECT tx_id, {_STYLE_AGG}
        FROM inputs WHERE tx_id IN (SELECT spender FROM sp) AND tx_id > ? AND tx_id <= ?
        GROUP BY tx_id
    )
    {_STYLE_SELECT}
"""
# The same for every output of a tx_id range, with no bound on the spenders.
_RANGE_SPENDERS_SQL = f"""
    WITH sp AS (
        SELECT prev_tx_id, prev_n, tx_id AS spender FROM inputs
        WHERE prev_tx_id BETWEEN ? AND ? AND tx_id > ?
    ), agg AS (
        SELECT tx_id, {_STYLE_AGG}
        FROM inputs WHERE tx_id IN (SELECT spender FROM sp) AND tx_id > ?
        GROUP BY tx_id
    )
    {_STYLE_SELECT}
"""


def _columns(con: duckdb.DuckDBPyConnection, sql: str, params: list[int]) -> list[list[Any]]:
    """Run a query; its result as Python lists, one per column."""
    result = con.execute(sql, params)
    # DuckDB >= 1.4 names it to_arrow_table and deprecates fetch_arrow_table
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    table = fetch()
    return [table.column(i).to_pylist() for i in range(table.num_columns)]


def _styles(columns: list[list[Any]]) -> dict[tuple[int, int], TxStyle]:
    """The spender fingerprints of a spenders query, by spent outpoint (tx_id, n)."""
    prev_tx, prev_n, version, lock_time, height, smin, smax, tmin, tmax, low_r, high_r = columns
    styles: dict[tuple[int, int], TxStyle] = {}
    for k in range(len(prev_tx)):
        styles[(prev_tx[k], prev_n[k])] = TxStyle(
            version=version[k],
            lock_time=lock_time_style(lock_time[k], height[k]),
            sequence=sequence_style(smin[k], smax[k]),
            input_script_type=ScriptType.from_code(tmin[k]) if tmin[k] == tmax[k] else None,
            low_r=low_r[k],
            high_r=bool(high_r[k]),
        )
    return styles


def _views(
    con: duckdb.DuckDBPyConnection,
    where: str,
    params: list[Any],
    spent: dict[tuple[int, int], TxStyle],
) -> Iterator[TxView]:
    """The views of the transactions `where` selects (a template over `{col}`), in chain order,
    with `spent` as the outputs' spender fingerprints."""
    plain, on_outputs = where.format(col=""), where.format(col="o.")
    tx_ids, heights, versions, lock_times, coinbases = _columns(
        con, _TXS_SQL.format(where=plain), params)
    in_tx, in_addr, in_value, in_type, in_seq, in_prev, in_sig = _columns(
        con, _INPUTS_SQL.format(where=plain), params)
    out_tx, out_n, out_addr, out_value, out_type, out_first = _columns(
        con, _OUTPUTS_SQL.format(where=on_outputs), params)
    types = {t.code: t for t in ScriptType}
    i = o = 0
    n_in, n_out = len(in_tx), len(out_tx)
    for k, tx_id in enumerate(tx_ids):
        inputs: list[InputView] = []
        while i < n_in and in_tx[i] == tx_id:
            inputs.append(InputView(in_addr[i], in_value[i], types[in_type[i]], in_seq[i],
                                    in_prev[i], in_sig[i]))
            i += 1
        outputs: list[OutputView] = []
        while o < n_out and out_tx[o] == tx_id:
            outputs.append(
                OutputView(
                    out_n[o], out_addr[o], out_value[o], types[out_type[o]],
                    out_first[o],
                    spent.get((tx_id, out_n[o])),
                )
            )
            o += 1
        yield TxView(
            tx_id, heights[k], versions[k], lock_times[k], tuple(inputs), tuple(outputs),
            bool(coinbases[k]),
        )


def _batch(
    con: duckdb.DuckDBPyConnection, lo: int, hi: int, with_spenders: bool
) -> Iterator[TxView]:
    spent = _styles(_columns(con, _RANGE_SPENDERS_SQL, [lo, hi, lo, lo])) if with_spenders else {}
    return _views(con, _RANGE, [lo, hi], spent)


def iter_tx_views(
    con: duckdb.DuckDBPyConnection,
    first_tx_id: int,
    last_tx_id: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    with_spenders: bool = False,
) -> Iterator[TxView]:
    """The views of transactions `first_tx_id` … `last_tx_id` (inclusive), in chain order.

    Reads `batch_size` transactions at a time with three queries (txs, inputs, outputs joined
    to addresses for `address_first_tx_id`), four with `with_spenders`, which also fills
    `OutputView.spent_by` (it scans the inputs that follow the batch, so it costs more).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    row = con.execute(
        "SELECT min(tx_id), max(tx_id) FROM txs WHERE tx_id BETWEEN ? AND ?",
        [first_tx_id, last_tx_id],
    ).fetchone()
    if row is None or row[0] is None:
        return
    lo, last = int(row[0]), int(row[1])
    while lo <= last:
        hi = min(lo + batch_size - 1, last)
        yield from _batch(con, lo, hi, with_spenders)
        lo = hi + 1


def tx_views_spent_until(
    con: duckdb.DuckDBPyConnection, spent_until: Mapping[int, int]
) -> list[TxView]:
    """The views of the transactions `spent_until` names, in chain order, each with the
    spenders of its outputs up to a bound: ``{tx_id: last spending tx_id it may see}``.

    `OutputView.spent_by` is filled only from spending transactions whose tx_id is at most the
    transaction's bound; an output spent later shows as unspent. This is how a clustering run
    looks at a transaction again with what the chain showed as of a given transaction, never
    with anything after it (the engine's second look for `WalletFingerprint`).
    """
    if not spent_until:
        return []
    ids = sorted(spent_until)
    bounds = [spent_until[t] for t in ids]
    lo, hi, top = ids[0], ids[-1], max(bounds)
    con.register(_WANT, pa.table({"tx_id": pa.array(ids, type=pa.int64()),
                                  "bound": pa.array(bounds, type=pa.int64())}))
    try:
        spent = _styles(_columns(con, _SPENDERS_SQL, [lo, hi, lo, top, lo, top]))
        return list(_views(con, _LISTED, [lo, hi], spent))
    finally:
        con.unregister(_WANT)


__all__ = [
    "ANTI_FEE_SNIPING_WINDOW",
    "Freshness",
    "InputView",
    "LockTimeStyle",
    "OutputView",
    "SequenceStyle",
    "TxStyle",
    "TxView",
    "iter_tx_views",
    "lock_time_style",
    "sequence_class",
    "sequence_style",
    "tx_views_spent_until",
]
