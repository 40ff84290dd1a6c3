"""Tracing commands: ``trace forward START`` and ``trace backward START``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from cointrail.errors import InputError
from cointrail.interfaces.cli.case_cmds import CaseOption, case_option, record_query_in_case
from cointrail.interfaces.cli.common import get_state, handle_errors, human_console, print_json
from cointrail.interfaces.cli.store_cmds import JsonOption, _open

trace_app = typer.Typer(help="Trace funds forward or backward by a taint model.",
                        no_args_is_help=True)

StartArg = Annotated[str, typer.Argument(
    metavar="START", help="An address, a txid, an outpoint (txid:n) or cluster:ID.")]
ModelOpt = Annotated[str, typer.Option("--model", help="Taint model: poison, haircut or fifo.")]
HopsOpt = Annotated[int, typer.Option("--hops", metavar="N",
                                      help="Transactions to follow at most.")]
MinOpt = Annotated[int, typer.Option("--min-value", metavar="SAT",
                                     help="Do not follow taint below this many satoshi.")]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", metavar="HEIGHT|DATE", help="Follow no transaction before this height or date.")]
UntilOpt = Annotated[str | None, typer.Option(
    "--until", metavar="HEIGHT|DATE", help="Follow no transaction after this height or date.")]
CoinJoinOpt = Annotated[str, typer.Option(
    "--coinjoin", help="At a CoinJoin: stop, or go through by the model's rule.")]
StopAtOpt = Annotated[str | None, typer.Option(
    "--stop-at", metavar="CATEGORIES",
    help="Comma-separated tag categories to stop at (default: services such as exchange).")]
NoClustersOpt = Annotated[bool, typer.Option(
    "--no-clusters", help="Stop only at tagged addresses, not at their cluster mates.")]


def parse_bound(value: str | None, option: str) -> int | date | None:
    """A height (digits) or an ISO date (YYYY-MM-DD)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise InputError(f"{option} {value!r} is neither a height nor a date (YYYY-MM-DD)") \
            from None


def _run(ctx: typer.Context, direction: str, start: str, model: str, hops: int,
         min_value: int, since: str | None, until: str | None, coinjoin: str,
         stop_at: str | None, no_clusters: bool, as_json: bool, case: str | None) -> None:
    from cointrail.analysis.tracing import SERVICE_CATEGORIES, TaintModel, TraceParams, trace

    state = get_state(ctx)
    with handle_errors(state.debug):
        try:
            taint_model = TaintModel(model.strip().lower())
        except ValueError:
            raise InputError(f"--model {model!r}: use poison, haircut or fifo") from None
        categories = (SERVICE_CATEGORIES if stop_at is None else
                      frozenset(c.strip() for c in stop_at.split(",") if c.strip()))
        params = TraceParams(
            model=taint_model, hops=hops, min_value=min_value,
            since=parse_bound(since, "--since"), until=parse_bound(until, "--until"),
            stop_categories=categories, coinjoin=coinjoin, clusters=not no_clusters,
        )
        in_case = case_option(state, case)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        doc = trace(store, start, direction, params).to_dict()
    if in_case is not None:
        from cointrail.cases.queries import bound_for_request

        request = {"chain": state.spec.chain, "network": state.spec.network,
                   "direction": direction, "start": start, "model": taint_model.value,
                   "hops": hops, "min_value": min_value,
                   "since": bound_for_request(params.since),
                   "until": bound_for_request(params.until), "coinjoin": coinjoin,
                   "stop_at": sorted(categories), "stop_sanctioned": params.stop_sanctioned,
                   "clusters": not no_clusters}
        with handle_errors(state.debug):
            record_query_in_case(in_case, "trace", "trace", request, doc,
                                 f"{direction} trace of {start}")
    if as_json:
        import json

        print_json(json.dumps(doc, indent=2))
        return
    _print_human(doc)


def _print_human(doc: dict[str, Any]) -> None:
    console = human_console()
    console.print(f"{doc['direction']} trace ({doc['model']}) of {doc['start']}: "
                  f"{doc['seed_amount_sat']} sat, {len(doc['nodes'])} tainted outputs, "
                  f"{len(doc['edges'])} flows")
    for category, group in doc["endpoints"].items():
        console.print(f"  {category}: {group['amount_sat']} sat in "
                      f"{len(group['outputs'])} endpoint(s)")
        for out in group["outputs"][:10]:
            where = "fee" if out["vout"] is None else f"{out['txid']}:{out['vout']}"
            who = f" {out['address']}" if out["address"] else ""
            console.print(f"    {where}{who} {out['amount_sat']} sat at height {out['height']}")
        if len(group["outputs"]) > 10:
            console.print(f"    … {len(group['outputs']) - 10} more (use --json for all)")
    if doc["coinjoins"]:
        console.print(f"  CoinJoins met: {', '.join(doc['coinjoins'])}")


@trace_app.command("forward")
def trace_forward_cmd(
    ctx: typer.Context, start: StartArg, model: ModelOpt = "haircut", hops: HopsOpt = 10,
    min_value: MinOpt = 0, since: SinceOpt = None, until: UntilOpt = None,
    coinjoin: CoinJoinOpt = "stop", stop_at: StopAtOpt = None,
    no_clusters: NoClustersOpt = False, as_json: JsonOption = False, case: CaseOption = None,
) -> None:
    """Where the funds of START went: tainted outputs, flows and endpoints by category."""
    _run(ctx, "forward", start, model, hops, min_value, since, until, coinjoin, stop_at,
         no_clusters, as_json, case)


@trace_app.command("backward")
def trace_backward_cmd(
    ctx: typer.Context, start: StartArg, model: ModelOpt = "haircut", hops: HopsOpt = 10,
    min_value: MinOpt = 0, since: SinceOpt = None, until: UntilOpt = None,
    coinjoin: CoinJoinOpt = "stop", stop_at: StopAtOpt = None,
    no_clusters: NoClustersOpt = False, as_json: JsonOption = False, case: CaseOption = None,
) -> None:
    """Where the funds of START came from: tainted outputs, flows and endpoints by category."""
    _run(ctx, "backward", start, model, hops, min_value, since, until, coinjoin, stop_at,
         no_clusters, as_json, case)
