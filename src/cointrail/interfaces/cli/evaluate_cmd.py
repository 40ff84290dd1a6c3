"""``cluster-evaluate``: the stored clustering's accuracy against a ground-truth CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:  # the analysis libraries load on first use: `cointrail --help` stays fast
    from cointrail.analysis.clustering.evaluate import Evaluation
from rich.table import Table

from cointrail.interfaces.cli.cluster_cmds import AsOf
from cointrail.interfaces.cli.common import get_state, handle_errors, human_console
from cointrail.interfaces.cli.store_cmds import JsonOption, _open


def evaluate_cmd(
    ctx: typer.Context,
    ground_truth: Annotated[Path, typer.Argument(
        metavar="GROUND_TRUTH.csv", help="CSV of address,owner rows (a header line is allowed).")],
    as_of: AsOf = None,
    as_json: JsonOption = False,
) -> None:
    """Pairwise precision, recall, F1 and purity of the clustering against known owners.

    A measure with nothing to count is shown as n/a (null in JSON): precision when no pair of
    addresses shares a cluster, recall when no two addresses share an owner."""
    from cointrail.analysis.clustering.evaluate import evaluate, read_ground_truth

    state = get_state(ctx)
    with handle_errors(state.debug):
        truth = read_ground_truth(ground_truth, state.spec)
        with _open(state, read_only=True) as store:
            result = evaluate(store, truth, as_of=as_of)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print(result)


def _measure(value: float | None, undefined: str) -> str:
    """`value` to 4 decimals, or n/a and why it is undefined."""
    return f"n/a ({undefined})" if value is None else f"{value:.4f}"


def _print(result: Evaluation) -> None:
    console = human_console()
    heuristics = ", ".join(h["name"] for h in (result.config or {}).get("heuristics", []))
    console.print(
        f"clustering as of height {result.as_of_height} ({heuristics or 'unknown heuristics'}): "
        f"{result.addresses} of {result.ground_truth_addresses} ground-truth addresses "
        f"evaluated ({result.not_in_store} not in the store, {result.above_height} first seen "
        f"above the clustering)"
    )
    summary = Table("measure", "value")
    for name, value in (
        ("pairwise precision", _measure(result.precision, "no pairs predicted")),
        ("pairwise recall", _measure(result.recall, "no same-owner pairs")),
        ("F1", _measure(result.f1, "needs precision and recall")),
        ("purity", f"{result.purity:.4f}"),
        ("inverse purity", f"{result.inverse_purity:.4f}"),
        ("clusters / owners", f"{result.clusters} / {result.owners}"),
        ("pairs correct / predicted / true",
         f"{result.correct_pairs} / {result.predicted_pairs} / {result.true_pairs}"),
    ):
        summary.add_row(name, value)
    console.print(summary)
    if result.links:
        links = Table("heuristic", "links", "judged", "wrong")
        for stat in result.links:
            links.add_row(stat.heuristic, str(stat.links), str(stat.judged), str(stat.wrong))
        console.print(links)
    change = result.change_detection
    if change is not None and change.transactions:
        console.print(
            f"change detection on {change.transactions} two-output transaction(s) paid by one "
            f"owner: {change.with_change} with change, its change found in {change.found} "
            f"(coverage {_measure(change.coverage, 'none with change')}); {change.linked} "
            f"change link(s), {change.wrong} naming another owner's output (precision "
            f"{_measure(change.precision, 'no change links')})")
    for verdict in ("right", "wrong"):
        votes = result.change_votes.get(verdict, {})
        agreeing = result.change_votes.get(f"{verdict}_by_votes", {})
        if votes:
            shown = ", ".join(f"{k} {v}" for k, v in votes.items())
            by_count = ", ".join(f"{v} with {k} vote(s)" for k, v in sorted(agreeing.items()))
            console.print(f"{verdict} change links: {by_count}; votes for the change: {shown}")
        alone = result.change_votes.get(f"{verdict}_alone", {})
        if alone:
            console.print(f"{verdict} change links on one vote: "
                          + ", ".join(f"{k} {v}" for k, v in sorted(alone.items())))
    for cluster in result.impure_clusters:
        owners = ", ".join(f"{k} {v}" for k, v in cluster.owners.items())
        console.print(f"impure cluster {cluster.cluster_id} ({cluster.size} addresses): {owners}")
    for link in result.wrong_links:
        console.print(f"wrong {link.heuristic} link at height {link.height} in {link.txid}: "
                      f"{link.owner_a} / {link.owner_b}")
