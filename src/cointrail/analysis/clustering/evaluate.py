"""Measured clustering accuracy: a stored clustering against ground truth (address → owner).

Pair-counting measures over the addresses present in both the clustering and the ground truth:
a pair of addresses is *predicted* when both share a cluster and *true* when both share an
owner. Precision is correct / predicted pairs, recall correct / true pairs, F1 their
harmonic mean. Purity is the share of addresses that belong to their cluster's majority owner;
inverse purity the share that sit in their owner's largest cluster. Everything is counted from
the contingency table of (cluster, owner) sizes, Σ n(n - 1) / 2 per cell, row and column — linear
in the number of addresses, never a loop over pairs.

Besides the totals, an `Evaluation` judges every stored link whose two addresses both have an
owner (per heuristic: links, judged, wrong), tallies which change heuristics voted for the
change output on right and on wrong change links (``change_votes["right"]`` / ``["wrong"]``)
and how many agreed on each (``["right_by_votes"]`` / ``["wrong_by_votes"]``; the links made
on one vote, by its heuristic: ``["right_alone"]`` / ``["wrong_alone"]``), and lists the
largest impure clusters and a few wrong links with their txids, so an error can be traced to
the heuristic that made it.

`change_detection` judges the change linker transaction by transaction, the way change
detection is reported in the literature (Möser & Narayanan 2022; Kappos et al. 2022): of the
two-output transactions (OP_RETURN aside; no coinbase, no detected CoinJoin) whose inputs all
belong to one owner and whose outputs' owners are known, how many pay exactly one output back to
that owner (*with change*), how many of those the stored change links name correctly
(*coverage*), and how many change links name an output of someone else (*wrong*).

Conventions: a measure whose denominator is 0 is undefined (None, ``null`` in JSON): precision
when no pair is predicted, recall when no pair is true (one address, or one address per owner),
F1 when either is; likewise an owner's recall when it has one address. Ground-truth addresses
the store never saw, or first saw above the clustering's height, are counted and left out; when
that leaves none, `evaluate` raises InputError rather than report a score of nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cointrail.analysis.clustering.engine import cluster_view, latest_run_config
from cointrail.chain.spec import ChainSpec
from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import AddressError, InputError, Problem, ValidationError
from cointrail.inputfiles import read_text_file
from cointrail.store.duck import ChainStore

#: Column names of a ground-truth CSV file.
GROUND_TRUTH_HEADER = ("address", "owner")
DEFAULT_DETAIL = 10


@dataclass(frozen=True, slots=True)
class OwnerStats:
    """How one owner's addresses are spread over clusters."""

    owner: str
    addresses: int
    clusters: int  # clusters holding at least one of its addresses
    largest_cluster_share: float  # share of its addresses in the cluster holding most of them
    recall: float | None  # pairwise recall within this owner; None when it has one address


@dataclass(frozen=True, slots=True)
class ImpureCluster:
    """A cluster holding addresses of several owners (evaluated addresses only)."""

    cluster_id: int
    size: int
    owners: dict[str, int]  # the largest owners in it, by address count


@dataclass(frozen=True, slots=True)
class LinkStats:
    """The stored links of one heuristic, judged where both addresses have an owner."""

    heuristic: str
    links: int
    judged: int
    wrong: int  # judged links joining two different owners


@dataclass(frozen=True, slots=True)
class WrongLink:
    """One link joining addresses of two different owners."""

    height: int
    txid: str
    heuristic: str
    owner_a: str
    owner_b: str
    detail: dict[str, Any] | None  # the link's evidence (change votes), when stored


@dataclass(frozen=True, slots=True)
class ChangeDetection:
    """The change linker judged on single-owner two-output transactions (module docstring).

    `by_owner` gives, for each owner that paid such transactions, (with change, change found,
    wrong links), so a report can split the figures by kind of owner."""

    transactions: int  # judged: two outputs, one owner behind the inputs, both outputs' known
    with_change: int  # exactly one output to the inputs' owner
    without_change: int  # no output to the inputs' owner (two payments)
    to_self: int  # both outputs to the inputs' owner
    linked: int  # judged transactions with a change link in effect
    found: int  # with change, and the link names that change output
    wrong: int  # links naming an output of another owner
    coverage: float | None  # found / with_change; None without such transactions
    precision: float | None  # links naming the inputs' owner / linked; None without links
    by_owner: dict[str, tuple[int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """Pairwise precision / recall / F1 and purity of a clustering against ground truth."""

    as_of_height: int
    addresses: int  # evaluated: in the clustering and in the ground truth
    owners: int
    clusters: int  # clusters the evaluated addresses fall into
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float | None  # None when no pair is predicted
    recall: float | None  # None when no pair is true
    f1: float | None  # None when precision or recall is
    purity: float
    inverse_purity: float
    ground_truth_addresses: int
    not_in_store: int  # ground-truth addresses the store never saw
    above_height: int  # seen by the store, but first above the clustering's height
    config: dict[str, Any] | None = None
    links: tuple[LinkStats, ...] = ()
    change_votes: dict[str, dict[str, int]] = field(default_factory=dict)
    largest_owners: tuple[OwnerStats, ...] = ()
    impure_clusters: tuple[ImpureCluster, ...] = ()
    wrong_links: tuple[WrongLink, ...] = ()
    change_detection: ChangeDetection | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- ground truth files ------------------------------------------------------------------------


def read_ground_truth(path: str | Path, spec: ChainSpec | None = None) -> dict[str, str]:
    """Read a ground-truth CSV of ``address,owner`` rows (an ``address,owner`` header line,
    blank lines and ``#`` comment lines are allowed). With `spec`, every address must be one of
    that chain and network, and is returned in its canonical spelling.

    Raises ValidationError listing every malformed row as ``file:line: problem`` (wrong number
    of fields, an empty address or owner, an address given two different owners, with `spec` an
    address of another chain), and InputError when the file cannot be read or holds no rows.
    """
    source = str(path)
    text, _ = read_text_file(path, "ground-truth", "a ground-truth CSV file")
    rows = _read_rows(io.StringIO(text, newline=""), source)
    truth: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[Problem] = []
    for line, fields in rows:
        if len(fields) != 2:
            problems.append(Problem(source, line, f"expected 2 fields (address,owner), found "
                                                  f"{len(fields)}"))
            continue
        address, owner = fields[0].strip(), fields[1].strip()
        if not address or not owner:
            problems.append(Problem(source, line, "empty " + ("address" if not address
                                                               else "owner")))
            continue
        if spec is not None:
            try:
                address = parse_address(address, spec).text
            except AddressError as exc:
                problems.append(Problem(source, line, str(exc)))
                continue
        known = truth.get(address)
        if known is not None and known != owner:
            problems.append(Problem(
                source, line, f"address {address} was given owner {known!r} on line "
                              f"{first_line[address]} and {owner!r} here"))
            continue
        truth[address] = owner
        first_line.setdefault(address, line)
    if problems:
        raise ValidationError(f"{len(problems)} malformed ground-truth row(s)", problems)
    if not truth:
        raise InputError(f"ground-truth file {source!r} holds no address,owner rows")
    return truth


def _read_rows(handle: Any, source: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(handle)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if fields[0].lstrip().startswith("#"):
                continue
            if not rows and tuple(f.strip().lower() for f in fields) == GROUND_TRUTH_HEADER:
                continue
            rows.append((line, fields))
    except csv.Error as exc:
        raise ValidationError("malformed ground-truth CSV",
                              [Problem(source, reader.line_num, str(exc))]) from exc
    return rows


def write_ground_truth(path: str | Path, truth: Mapping[str, str]) -> None:
    """Write `truth` as the CSV `read_ground_truth` reads (header, rows sorted by address)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GROUND_TRUTH_HEADER)
        for address in sorted(truth):
            writer.writerow((address, truth[address]))


# -- evaluation --------------------------------------------------------------------------------


def _pairs(counts: np.ndarray) -> int:
    """Σ n(n - 1)/2 over `counts`."""
    c = counts.astype(np.int64, copy=False)
    return int((c * (c - 1) // 2).sum())


def _lookup(store: ChainStore, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(position in `texts`, addr_id) of every text the store holds as written."""
    table = pa.table({"row": pa.array(range(len(texts)), type=pa.int64()),
                      "text": pa.array(texts, type=pa.string())})
    store.con.register("_gt_text", table)
    try:
        found = store.con.execute(
            "SELECT g.row, a.addr_id FROM _gt_text g JOIN addresses a ON a.text = g.text"
        ).fetchnumpy()
    finally:
        store.con.unregister("_gt_text")
    return (np.asarray(found["row"], dtype=np.int64),
            np.asarray(found["addr_id"], dtype=np.int64))


def _resolve(
    store: ChainStore, texts: list[str], limit: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(position in `texts`, addr_id) of every ground-truth address the store holds with an id
    below `limit`, and how many the store does not hold and holds at or above `limit`.

    Texts not found as written are parsed and looked up in their canonical spelling; a text
    that is no address of the store's chain raises ValidationError."""
    rows, ids = _lookup(store, texts)
    missing = np.ones(len(texts), dtype=np.bool_)
    missing[rows] = False
    retry_rows: list[int] = []
    canonical: list[str] = []
    problems: list[Problem] = []
    for r in np.flatnonzero(missing).tolist():
        try:
            parsed = parse_address(texts[r], store.spec)
        except AddressError as exc:
            problems.append(Problem("ground truth", None, str(exc)))
            continue
        if parsed.text != texts[r]:
            retry_rows.append(r)
            canonical.append(parsed.text)
    if problems:
        raise ValidationError(
            f"{len(problems)} ground-truth address(es) are not {store.spec.key} addresses",
            problems)
    if canonical:
        more_rows, more_ids = _lookup(store, canonical)
        rows = np.concatenate([rows, np.asarray(retry_rows, dtype=np.int64)[more_rows]])
        ids = np.concatenate([ids, more_ids])
    below = ids < limit
    return rows[below], ids[below], len(texts) - len(rows), int((~below).sum())


def _one_owner_per_address(
    texts: list[str], rows: np.ndarray, addr_ids: np.ndarray, owners: np.ndarray,
    owner_names: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(addr_ids, owners) with each address once; two spellings of one address (e.g. bech32 in
    upper and lower case) must name the same owner."""
    order = np.argsort(addr_ids, kind="stable")
    addr_ids, owners, rows = addr_ids[order], owners[order], rows[order]
    dup = addr_ids[1:] == addr_ids[:-1]
    if not dup.any():
        return addr_ids, owners
    clash = np.flatnonzero(dup & (owners[1:] != owners[:-1]))
    if clash.size:
        problems = [
            Problem("ground truth", None,
                    f"{texts[rows[k]]} ({owner_names[owners[k]]}) and {texts[rows[k + 1]]} "
                    f"({owner_names[owners[k + 1]]}) are one address with two owners")
            for k in clash.tolist()
        ]
        raise ValidationError("the ground truth gives an address two owners", problems)
    keep = np.concatenate([[True], ~dup])
    return addr_ids[keep], owners[keep]


def evaluate(
    store: ChainStore,
    ground_truth: Mapping[str, str],
    *,
    as_of: int | None = None,
    detail: int = DEFAULT_DETAIL,
) -> Evaluation:
    """Evaluate the store's clustering (as the last run left it, or `as_of` a height) against
    `ground_truth` (address text → owner); `detail` bounds the lists of largest owners, impure
    clusters and wrong links.

    Raises InputError when no ground-truth address can be evaluated (none is in the store at or
    below the clustering's height)."""
    view = cluster_view(store, as_of)
    texts = list(ground_truth)
    owner_names, owner_of_row = np.unique(
        np.asarray([ground_truth[t] for t in texts], dtype=object), return_inverse=True)
    rows, addr_ids, not_in_store, above = _resolve(store, texts, len(view.ids))
    addr_ids, owners = _one_owner_per_address(
        texts, rows, addr_ids, owner_of_row[rows].astype(np.int64), owner_names)
    n = int(addr_ids.size)
    if n == 0:
        raise _nothing_to_evaluate(store, len(texts), not_in_store, above, view.height)
    n_owners = len(owner_names)
    cluster_ids, cluster_of = np.unique(
        np.asarray(view.ids)[addr_ids].astype(np.int64), return_inverse=True)
    # the contingency table: one cell per (cluster, owner) that holds addresses
    cells, cell_counts = np.unique(cluster_of.astype(np.int64) * n_owners + owners,
                                   return_counts=True)
    cell_cluster, cell_owner = cells // n_owners, cells % n_owners
    cluster_sizes = np.bincount(cluster_of, minlength=len(cluster_ids))
    owner_sizes = np.bincount(owners, minlength=n_owners)
    correct, predicted, true = _pairs(cell_counts), _pairs(cluster_sizes), _pairs(owner_sizes)
    precision = correct / predicted if predicted else None
    recall = correct / true if true else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    top_in_cluster = np.zeros(len(cluster_ids), dtype=np.int64)
    np.maximum.at(top_in_cluster, cell_cluster, cell_counts)
    top_in_owner = np.zeros(n_owners, dtype=np.int64)
    np.maximum.at(top_in_owner, cell_owner, cell_counts)
    owner_pairs = np.zeros(n_owners, dtype=np.int64)
    np.add.at(owner_pairs, cell_owner, cell_counts * (cell_counts - 1) // 2)
    owner_clusters = np.bincount(cell_owner, minlength=n_owners)
    present = owner_sizes > 0
    largest = [int(g) for g in np.argsort(-owner_sizes, kind="stable")[:detail] if present[g]]
    owner_stats = tuple(
        OwnerStats(
            owner=str(owner_names[g]),
            addresses=int(owner_sizes[g]),
            clusters=int(owner_clusters[g]),
            largest_cluster_share=float(top_in_owner[g] / owner_sizes[g]),
            recall=float(owner_pairs[g] / _pairs(owner_sizes[g:g + 1]))
            if owner_sizes[g] > 1 else None,
        )
        for g in largest
    )
    impure = np.flatnonzero(top_in_cluster < cluster_sizes)
    impure = impure[np.argsort(-cluster_sizes[impure], kind="stable")][:detail]
    impure_clusters = []
    for c in impure.tolist():
        mask = cell_cluster == c
        by_owner = sorted(zip(cell_counts[mask].tolist(), cell_owner[mask].tolist(),
                              strict=True), key=lambda ko: (-ko[0], ko[1]))[:detail]
        impure_clusters.append(ImpureCluster(
            cluster_id=int(cluster_ids[c]), size=int(cluster_sizes[c]),
            owners={str(owner_names[o]): int(k) for k, o in by_owner}))
    links, votes, wrong, change = _judge_links(store, addr_ids, owners, owner_names,
                                               view.height, detail)
    return Evaluation(
        as_of_height=view.height,
        addresses=n,
        owners=int(present.sum()),
        clusters=len(cluster_ids),
        true_pairs=true,
        predicted_pairs=predicted,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=f1,
        purity=float(top_in_cluster.sum() / n),
        inverse_purity=float(top_in_owner.sum() / n),
        ground_truth_addresses=len(texts),
        not_in_store=not_in_store,
        above_height=above,
        config=latest_run_config(store),
        links=links,
        change_votes=votes,
        largest_owners=owner_stats,
        impure_clusters=tuple(impure_clusters),
        wrong_links=wrong,
        change_detection=change,
    )


def _nothing_to_evaluate(
    store: ChainStore, given: int, not_in_store: int, above: int, height: int
) -> InputError:
    """The error for a ground truth of which no address is in the clustering."""
    if not given:
        return InputError("the ground truth holds no address; give address → owner pairs")
    advice = []
    if not_in_store:
        advice.append(f"check that the file holds {store.spec.key} addresses (--chain/--network) "
                      "and that the store is synced past them")
    if above:
        advice.append("run `cointrail cluster` to extend the clustering, or pass a later "
                      "--as-of")
    return InputError(
        f"none of the {given} ground-truth address(es) can be evaluated: {not_in_store} not in "
        f"the {store.spec.key} store, {above} first seen above the clustering's height "
        f"{height}; {'; or '.join(advice)}")


def _judge_links(
    store: ChainStore,
    addr_ids: np.ndarray,
    owners: np.ndarray,
    owner_names: np.ndarray,
    height: int,
    detail: int,
) -> tuple[tuple[LinkStats, ...], dict[str, dict[str, int]], tuple[WrongLink, ...],
           ChangeDetection]:
    truth = pa.table({"addr_id": pa.array(addr_ids, type=pa.int64()),
                      "owner": pa.array(owners, type=pa.int64())})
    store.con.register("_truth", truth)
    try:
        per_heuristic = store.con.execute(
            """
            SELECT l.heuristic, count(*),
                   count(*) FILTER (WHERE ta.owner IS NOT NULL AND tb.owner IS NOT NULL),
                   count(*) FILTER (WHERE ta.owner <> tb.owner)
            FROM cluster_links l
            LEFT JOIN _truth ta ON ta.addr_id = l.addr_a
            LEFT JOIN _truth tb ON tb.addr_id = l.addr_b
            WHERE l.height <= ? GROUP BY l.heuristic ORDER BY l.heuristic
            """,
            [height],
        ).fetchall()
        judged_change = store.con.execute(
            """
            SELECT ta.owner <> tb.owner, e.detail
            FROM cluster_links l
            JOIN _truth ta ON ta.addr_id = l.addr_a
            JOIN _truth tb ON tb.addr_id = l.addr_b
            JOIN link_evidence e ON e.tx_id = l.tx_id AND e.heuristic = l.heuristic
            WHERE l.height <= ? AND l.heuristic = 'change'
            """,
            [height],
        ).fetchall()
        wrong_rows = store.con.execute(
            """
            SELECT l.height, t.txid, l.heuristic, ta.owner, tb.owner, e.detail
            FROM cluster_links l
            JOIN _truth ta ON ta.addr_id = l.addr_a
            JOIN _truth tb ON tb.addr_id = l.addr_b
            JOIN txs t ON t.tx_id = l.tx_id
            LEFT JOIN link_evidence e ON e.tx_id = l.tx_id AND e.heuristic = l.heuristic
            WHERE l.height <= ? AND ta.owner <> tb.owner
            ORDER BY l.tx_id, l.addr_a, l.addr_b LIMIT ?
            """,
            [height, detail],
        ).fetchall()
        per_owner = store.con.execute(
            _CHANGE_DETECTION_SQL, [height, ScriptType.NULLDATA.code]).fetchall()
    finally:
        store.con.unregister("_truth")
    links = tuple(LinkStats(str(h), int(n), int(j), int(w)) for h, n, j, w in per_heuristic)
    votes: dict[str, Counter[str]] = {
        "right": Counter(), "wrong": Counter(), "right_by_votes": Counter(),
        "wrong_by_votes": Counter(), "right_alone": Counter(), "wrong_alone": Counter(),
    }
    for is_wrong, evidence in judged_change:
        decision = json.loads(evidence)
        chosen = decision.get("change_output")
        verdict = "wrong" if is_wrong else "right"
        agreeing = [name for name, vote in decision.get("votes", {}).items()
                    if vote is not None and vote == chosen]
        votes[verdict].update(agreeing)
        votes[f"{verdict}_by_votes"][str(len(agreeing))] += 1
        if len(agreeing) == 1:
            votes[f"{verdict}_alone"][agreeing[0]] += 1
    wrong = tuple(
        WrongLink(int(h), bytes(t)[::-1].hex(), str(heur), str(owner_names[a]),
                  str(owner_names[b]), json.loads(d) if d else None)
        for h, t, heur, a, b, d in wrong_rows
    )
    return (links, {k: dict(sorted(v.items())) for k, v in votes.items()}, wrong,
            _change_detection(per_owner, owner_names))


# The change linker judged on single-owner two-output transactions, per owner of the inputs
# (`_truth`: addr_id -> owner index; $1 the clustering's height, $2 OP_RETURN's script type
# code). `payer`: transactions whose every input address has the one same owner; `outs`: their
# outputs other than OP_RETURN with the owner of each; `link`: the change output each change
# link in effect names (its evidence's `change_output`, a vout).
_CHANGE_DETECTION_SQL = """
    WITH payer AS (
        SELECT i.tx_id, min(tr.owner) AS owner FROM inputs i
        JOIN txs t ON t.tx_id = i.tx_id
        LEFT JOIN _truth tr ON tr.addr_id = i.addr_id
        WHERE i.tx_id IN (SELECT i2.tx_id FROM inputs i2 JOIN _truth t2 ON t2.addr_id = i2.addr_id)
          AND t.height <= $1
          AND i.tx_id NOT IN (SELECT tx_id FROM tx_labels
                              WHERE label = 'coinjoin' AND height <= $1)
        GROUP BY i.tx_id
        HAVING count(tr.owner) = count(*) AND min(tr.owner) = max(tr.owner)
    ), outs AS (
        SELECT o.tx_id, o.n, tr.owner FROM outputs o
        LEFT JOIN _truth tr ON tr.addr_id = o.addr_id
        WHERE o.tx_id IN (SELECT tx_id FROM payer) AND o.script_type <> $2
    ), link AS (
        SELECT l.tx_id,
               min(CAST(json_extract(e.detail, '$.change_output') AS INTEGER)) AS n
        FROM cluster_links l
        JOIN link_evidence e ON e.tx_id = l.tx_id AND e.heuristic = l.heuristic
        WHERE l.heuristic = 'change' AND l.height <= $1
          AND l.tx_id IN (SELECT tx_id FROM payer)
        GROUP BY l.tx_id
    ), judged AS (
        SELECT p.tx_id, p.owner,
               count(*) FILTER (WHERE o.owner = p.owner) AS own,
               any_value(k.n) AS chosen,
               coalesce(bool_or(o.n = k.n AND o.owner = p.owner), false) AS chose_own
        FROM payer p JOIN outs o USING (tx_id) LEFT JOIN link k USING (tx_id)
        GROUP BY p.tx_id, p.owner
        HAVING count(*) = 2 AND count(o.owner) = 2
    )
    SELECT owner,
           count(*) FILTER (WHERE own = 1),
           count(*) FILTER (WHERE own = 0),
           count(*) FILTER (WHERE own = 2),
           count(chosen),
           count(*) FILTER (WHERE own = 1 AND chose_own),
           count(*) FILTER (WHERE chosen IS NOT NULL AND NOT chose_own),
           count(*)
    FROM judged GROUP BY owner ORDER BY owner
"""


def _change_detection(rows: list[tuple[Any, ...]], owner_names: np.ndarray) -> ChangeDetection:
    """Sum `_CHANGE_DETECTION_SQL`'s rows per owner into the totals."""
    totals = [0] * 7
    by_owner: dict[str, tuple[int, int, int]] = {}
    for owner, *counts in rows:
        with_change, without, to_self, linked, found, wrong, judged = map(int, counts)
        for k, value in enumerate((judged, with_change, without, to_self, linked, found,
                                   wrong)):
            totals[k] += value
        by_owner[str(owner_names[owner])] = (with_change, found, wrong)
    judged, with_change, without, to_self, linked, found, wrong = totals
    return ChangeDetection(
        transactions=judged, with_change=with_change, without_change=without, to_self=to_self,
        linked=linked, found=found, wrong=wrong,
        coverage=found / with_change if with_change else None,
        precision=(linked - wrong) / linked if linked else None,
        by_owner=by_owner,
    )


__all__ = [
    "GROUND_TRUTH_HEADER",
    "ChangeDetection",
    "Evaluation",
    "ImpureCluster",
    "LinkStats",
    "OwnerStats",
    "WrongLink",
    "evaluate",
    "read_ground_truth",
    "write_ground_truth",
]
