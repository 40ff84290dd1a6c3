"""Fund-flow commands: ``path FROM TO`` (k shortest paths) and ``exposure SUBJECT``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cointrail.errors import InputError
from cointrail.interfaces.cli.case_cmds import CaseOption, case_option, record_query_in_case
from cointrail.interfaces.cli.common import (
    SparkMasterOpt,
    SparkParquetOpt,
    SparkWorkDirOpt,
    get_state,
    handle_errors,
    human_console,
    print_json,
)
from cointrail.interfaces.cli.store_cmds import JsonOption, _open

HopsOpt = Annotated[int, typer.Option("--hops", metavar="N", help="Hops (transactions) at most.")]


def path_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="FROM", help="An address or cluster:ID.")],
    target: Annotated[str, typer.Argument(metavar="TO", help="An address or cluster:ID.")],
    hops: HopsOpt = 6,
    k: Annotated[int, typer.Option("--k", metavar="K", help="How many paths to list.")] = 3,
    as_json: JsonOption = False,
    case: CaseOption = None,
) -> None:
    """The K shortest fund-flow paths FROM → TO within N hops, with amounts and txids."""
    from cointrail.analysis.tracing.paths import find_paths

    state = get_state(ctx)
    with handle_errors(state.debug):
        in_case = case_option(state, case)
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        doc = find_paths(store, source, target, hops=hops, k=k).to_dict()
    if in_case is not None:
        with handle_errors(state.debug):
            record_query_in_case(in_case, "path", "path", {
                "chain": state.spec.chain, "network": state.spec.network, "from": source,
                "to": target, "hops": hops, "k": k}, doc, f"paths from {source} to {target}")
    if as_json:
        print_json(json.dumps(doc, indent=2))
        return
    console = human_console()
    if not doc["found"]:
        console.print(doc["message"])
        return
    console.print(f"{len(doc['paths'])} path(s) from {doc['from']} to {doc['to']} "
                  f"({doc['level']} level, at most {doc['hops']} hops):")
    for i, p in enumerate(doc["paths"], 1):
        order = "" if p["time_ordered"] else " (not in time order)"
        console.print(f"  {i}. {p['hops']} hop(s), bottleneck {p['bottleneck_sat']} sat{order}")
        for e in p["edges"]:
            txids = ", ".join(t["txid"] for t in e["txs"][:3])
            more = f" … +{len(e['txs']) - 3}" if len(e["txs"]) > 3 else ""
            console.print(f"     {e['from']} → {e['to']}: {e['amount_sat']} sat in {txids}{more}")


def exposure_cmd(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(metavar="ADDRESS|cluster:ID",
                                           help="An address or cluster:ID.")],
    direction: Annotated[str, typer.Option(
        "--direction", help="in (sources), out (destinations) or both.")] = "both",
    hops: HopsOpt = 6,
    engine: Annotated[str, typer.Option(
        "--engine", help="embedded, or spark (one hop: --hops 1; see docs/scale-out.md).")
    ] = "embedded",
    master: SparkMasterOpt = "local[2]",
    parquet: SparkParquetOpt = None,
    work_dir: SparkWorkDirOpt = None,
    as_json: JsonOption = False,
    case: CaseOption = None,
) -> None:
    """Shares of incoming/outgoing value by counterparty category within N hops."""
    from cointrail.analysis.risk.exposure import exposure

    state = get_state(ctx)
    with handle_errors(state.debug):
        in_case = case_option(state, case)
        if engine not in ("embedded", "spark"):
            raise InputError(f"--engine {engine!r}: use embedded or spark")
        if engine == "spark" and in_case is not None:
            raise InputError("--case keeps findings that replay on the embedded engine; run "
                             "the exposure with --engine embedded to keep it in a case")
    with handle_errors(state.debug), _open(state, read_only=True) as store:
        if engine == "spark":
            from cointrail.scaleout.jobs import exposure_with_spark

            doc = exposure_with_spark(store, subject, direction=direction.strip().lower(),
                                      hops=hops, master=master, parquet=parquet,
                                      work_dir=work_dir)
        else:
            doc = exposure(store, subject, direction=direction.strip().lower(),
                           hops=hops).to_dict()
    if in_case is not None:
        with handle_errors(state.debug):
            record_query_in_case(in_case, "exposure", "exposure", {
                "chain": state.spec.chain, "network": state.spec.network, "subject": subject,
                "direction": direction.strip().lower(), "hops": hops}, doc,
                f"exposure of {subject}")
    if as_json:
        print_json(json.dumps(doc, indent=2))
        return
    console = human_console()
    for name in ("incoming", "outgoing"):
        part: dict[str, Any] | None = doc[name]
        if part is None:
            continue
        console.print(f"{name} exposure of {doc['subject']} within {doc['hops']} hops: "
                      f"{part['total_sat']} sat")
        for category, g in part["categories"].items():
            console.print(f"  {category} ({g['kind']}): {g['amount_sat']} sat "
                          f"{g['amount_share']:.2%} (direct {g['direct_sat']}, indirect "
                          f"{g['indirect_sat']})")
            for ep in g["endpoints"]:
                where = "fee" if ep["vout"] is None else f"{ep['txid']}:{ep['vout']}"
                who = f" {ep['address']}" if ep["address"] else ""
                label = f" [{ep['label']}]" if ep["label"] else ""
                console.print(f"    {where}{who}{label} {ep['amount_sat']} sat, hop {ep['hop']}")
