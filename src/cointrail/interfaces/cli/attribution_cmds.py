"""Attribution commands: ``tags import``, ``sanctions import``, ``screen``.

Register in main.py with ``app.add_typer(tags_app, name="tags")``,
``app.add_typer(sanctions_app, name="sanctions")`` and ``app.command("screen")(screen_cmd)``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cointrail.interfaces.cli.case_cmds import (
    CaseOption,
    case_option,
    read_acquisitions,
    record_acquisitions,
    record_query_in_case,
)
from cointrail.interfaces.cli.common import get_state, handle_errors, human_console

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
Paths = Annotated[list[Path], typer.Argument(metavar="PATH...",
                                             help="Files or directories (read recursively).")]

tags_app = typer.Typer(help="Attribution tags: TagPacks, ActorPacks, MISP events, own tags.",
                       no_args_is_help=True)
sanctions_app = typer.Typer(help="Sanctions lists (OFAC SDN).", no_args_is_help=True)


def _print_report(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = human_console()
    console.print(
        f"imported {doc['imported']} of {doc['files']} files: {doc['records']} records loaded, "
        f"{doc['rejected']} rejected, {doc['problems']} problems {doc['problems_by_kind']} "
        f"({doc['seconds']} s); `cointrail tags problems` lists them"
    )


@tags_app.command("import")
def tags_import_cmd(
    ctx: typer.Context,
    paths: Paths,
    licence: Annotated[str | None, typer.Option(
        help="Licence of the packs (default: the nearest LICENSE file's first line).")] = None,
    misp_confidence: Annotated[str, typer.Option(
        help="Confidence (GraphSense scale) given to tags from MISP events.")
    ] = "trusted_provider",
    as_json: JsonOption = False,
    case: CaseOption = None,
) -> None:
    """Import tags: GraphSense TagPacks and ActorPacks (YAML), MISP event exports (JSON), and
    the agency's own tags (CSV or YAML), each validated against the taxonomy and its chain."""
    from cointrail.attribution import AttributionStore, import_tags

    state = get_state(ctx)
    with handle_errors(state.debug):
        in_case = case_option(state, case)
        acquired = read_acquisitions(paths) if in_case is not None else []
        with AttributionStore(state.settings.store) as store:
            report = import_tags(store, paths, licence=licence,
                                 misp_confidence=misp_confidence)
        if in_case is not None:
            record_acquisitions(in_case, "acquire.tags", acquired, _summary(report))
        _print_report(report.as_dict(), as_json)


@tags_app.command("problems")
def tags_problems_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many problems.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Problems found by imports (tags and sanctions), with file and line."""
    from cointrail.attribution import AttributionStore
    from cointrail.attribution.importer import problems_of

    state = get_state(ctx)
    with handle_errors(state.debug), AttributionStore(state.settings.store, read_only=True) as s:
        problems = problems_of(s, limit)
        if as_json:
            typer.echo(json.dumps([{"file": p.file, "line": p.line, "kind": p.kind,
                                    "message": p.message} for p in problems], indent=2))
        else:
            for p in problems:
                typer.echo(str(p))


@sanctions_app.command("import")
def sanctions_import_cmd(
    ctx: typer.Context,
    paths: Paths,
    published: Annotated[str | None, typer.Option(
        metavar="DATE", help="Publication date for lists that do not carry one (YYYY-MM-DD).")
    ] = None,
    as_json: JsonOption = False,
    case: CaseOption = None,
) -> None:
    """Import OFAC lists: sdn_advanced.xml, sdn.xml, sdn.csv, per-asset lists and history."""
    from cointrail.attribution import AttributionStore, import_sanctions
    from cointrail.attribution.screening import parse_as_of

    state = get_state(ctx)
    with handle_errors(state.debug):
        day = parse_as_of(published)
        in_case = case_option(state, case)
        acquired = read_acquisitions(paths) if in_case is not None else []
        with AttributionStore(state.settings.store) as store:
            report = import_sanctions(store, paths, published=day)
        if in_case is not None:
            record_acquisitions(in_case, "acquire.sanctions", acquired, _summary(report))
        _print_report(report.as_dict(), as_json)


def _summary(report: Any) -> dict[str, Any]:
    """What a custody entry keeps of an import report (counts, not timings)."""
    doc = report.as_dict()
    return {k: doc[k] for k in ("files", "imported", "records", "rejected", "problems")
            if k in doc}


def _addresses_from_csv(path: Path) -> list[str]:
    from cointrail.errors import InputError

    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip()]
    if rows and rows[0][0].strip().lower() == "address":
        rows = rows[1:]
    return [r[0].strip() for r in rows]


def screen_cmd(
    ctx: typer.Context,
    addresses: Annotated[list[str] | None, typer.Argument(metavar="ADDRESS...")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", metavar="CSV", help="CSV whose first column holds the addresses.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", metavar="DATE", help="Answer with the sanctions lists in force then.")] = None,
    as_json: JsonOption = False,
    case: CaseOption = None,
) -> None:
    """Screen addresses: direct tags, cluster tags (where the chain is clustered), categories,
    confidence, sources, sanctions hits; conflicting actors in a cluster are flagged."""
    from cointrail.attribution import AttributionStore, screen
    from cointrail.attribution.screening import parse_as_of
    from cointrail.cases.queries import screening_doc
    from cointrail.errors import InputError

    state = get_state(ctx)
    with handle_errors(state.debug):
        items = list(addresses or [])
        if file is not None:
            items += _addresses_from_csv(file)
        if not items:
            raise InputError("no address to screen; pass ADDRESS... or --file CSV")
        in_case = case_option(state, case)
        with AttributionStore(state.settings.store, read_only=True) as store:
            doc = screening_doc(screen(store, items, as_of=as_of))
        if in_case is not None:
            record_query_in_case(in_case, "screen", "screening", {
                "addresses": items, "as_of": parse_as_of(as_of)}, doc,
                f"screening of {len(items)} address(es)")
    rows = doc["addresses"]
    if as_json:
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    console = human_console()
    for r in rows:
        flag = "SANCTIONED" if r["sanctioned"] else "-"
        cats = ",".join(r["categories"]) or "-"
        cluster = r["cluster"]
        where = (f"  cluster={cluster['chain']}:{cluster['cluster_id']} (size {cluster['size']}, "
                 f"{len(r['cluster_tags'])} cluster tags)" if cluster else "")
        conflict = r["actor_conflict"]
        clash = ("  ACTOR CONFLICT: " + ", ".join(
            f"{c['actor']} ({len(c['addresses'])} addr)" for c in conflict)) if conflict else ""
        console.print(f"{r['address']}  {flag}  {r['verdict']}  categories={cats}  "
                      f"tags={len(r['tags'])}  first_listed={r['first_listed'] or '-'}"
                      f"{where}{clash}")
