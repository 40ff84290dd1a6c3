"""Legal request commands: ``request draft|check|approve|status|list|show`` and the contact
directory (``request contacts import|show``). Nothing is ever sent: these commands write files
into the case folder and record what people did."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cointrail.interfaces.cli.common import get_state, handle_errors, print_json

if TYPE_CHECKING:
    from cointrail.cases.case import Case
    from cointrail.interfaces.cli.common import AppState

request_app = typer.Typer(help="Legal requests: draft, approve, track. Nothing is ever sent.",
                          no_args_is_help=True)
contacts_app = typer.Typer(help="The contact directory: legal entities, 24/7 points of contact, "
                                "central authorities.", no_args_is_help=True)
request_app.add_typer(contacts_app, name="contacts")

KIND_HELP = ("preservation, production, freeze, mla, emergency, epoc (EU European Production "
             "Order Certificate), epoc-pr (EU European Preservation Order Certificate) or "
             "2ap-art7 (Second Additional Protocol Art 7 order for subscriber information)")


def _open(state: AppState, reference: str) -> Case:
    from cointrail.cases.case import CaseStore
    from cointrail.interfaces.cli.identity import cli_principal

    return CaseStore.for_store(state.settings.store).open(reference, cli_principal(state))


def _fields(pairs: list[str], fields_file: Path | None) -> dict[str, str]:
    import yaml

    from cointrail.errors import InputError, Problem, ValidationError

    out: dict[str, str] = {}
    if fields_file is not None:
        try:
            doc = yaml.safe_load(fields_file.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read fields file {fields_file}: {exc}") from exc
        if not isinstance(doc, dict):
            raise InputError(f"fields file {fields_file} must be a mapping of field: value")
        for k, v in doc.items():
            out[str(k)] = ", ".join(str(x) for x in v) if isinstance(v, list) else str(v)
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            problems.append(Problem("--field", None, f"{pair!r}: write key=value"))
            continue
        out[key.strip()] = value.strip()
    if problems:
        raise ValidationError("bad --field values", problems)
    return out


def _summary(doc: dict[str, Any]) -> str:
    entity = (doc.get("addressee") or {}).get("legal_entity") or {}
    return (f"{doc['case']['reference']} {doc['id']} {doc['kind']:<12} {doc['status']:<10} "
            f"to {entity.get('name', '?')} ({entity.get('country', '?')})")


@request_app.command("draft")
def draft_cmd(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case reference.")],
    kind: Annotated[str, typer.Option("--kind", help=KIND_HELP)],
    finding: Annotated[str, typer.Option("--finding", help="Trace finding id, e.g. F0001.")],
    exchange: Annotated[str, typer.Option(
        "--exchange", help="The service: a tag label (Binance) or an actor id (binance).")],
    field: Annotated[list[str] | None, typer.Option(
        "--field", help="A user field, key=value (repeatable).")] = None,
    fields_file: Annotated[Path | None, typer.Option(
        "--fields-file", help="YAML mapping of user fields.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print request.json.")] = False,
) -> None:
    """Draft a request from a trace finding. Every missing field is listed at once; nothing is
    written until none is missing."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.drafting import draft_request

        doc = draft_request(_open(state, case), kind, finding, exchange,
                            _fields(field or [], fields_file), store_root=state.settings.store)
        if as_json:
            print_json(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            typer.echo(f"drafted {_summary(doc)}")
            typer.echo(f"  subject: {doc['subject']}")
            for f in doc["files"].values():
                typer.echo(f"  {f['path']}  sha256 {f['sha256']}")
            typer.echo("  status draft: a second principal with the approver role must approve "
                       f"it (cointrail request approve {doc['case']['reference']} {doc['id']})")


@request_app.command("check")
def check_cmd(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case reference.")],
    state_code: Annotated[str, typer.Option("--state", help="Requested state (ISO 3166 code).")],
    decision: Annotated[str, typer.Option("--decision", help="cleared or refused.")],
    reasoning: Annotated[str, typer.Option(
        "--reasoning", help="Dual-criminality and human-rights reasoning.")],
) -> None:
    """Record a dual-criminality and human-rights check of the case's offence for a requested
    state (needed before drafting on a speech or content offence; approver role)."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.drafting import record_check

        c = record_check(_open(state, case), state_code, decision, reasoning)
        typer.echo(f"recorded check of {c.offence} for {c.state}: {c.decision} by "
                   f"{c.checked_by} at {c.checked_at} (custody entry {c.seq})")


@request_app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case reference.")],
    request: Annotated[str, typer.Argument(help="Request id, e.g. R0001.")],
    today: Annotated[str | None, typer.Option(
        "--today", help="Approval date for the deadlines (YYYY-MM-DD; default today).")] = None,
) -> None:
    """Approve a draft (approver role; never the drafter). Starts its deadlines."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.workflow import approve

        doc = approve(_open(state, case), request, store_root=state.settings.store,
                      today=_date(today))
        typer.echo(f"approved {_summary(doc)} by {doc['approved_by']}")
        for r in doc["deadlines"]["reminders"]:
            typer.echo(f"  reminder {r['due']}: {r['text']}")
        d = doc["deadlines"]
        if d.get("expires_at"):  # an urgent period counted in hours from the approval
            typer.echo(f"  period ends {d['expires_at']} ({d['period_hours']} hours: "
                       f"{d['urgent']['field']} is yes)")
        elif d["expires"]:
            typer.echo(f"  period ends {d['expires']}")
        typer.echo("  nothing was sent: submit it by hand, then "
                   f"cointrail request status {doc['case']['reference']} {doc['id']} submitted")


@request_app.command("status")
def status_cmd(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case reference.")],
    request: Annotated[str, typer.Argument(help="Request id.")],
    status: Annotated[str, typer.Argument(help="submitted, answered, expired or withdrawn.")],
    note: Annotated[str, typer.Option("--note", help="What happened (channel, answer).")] = "",
) -> None:
    """Record a status change made by hand."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.workflow import set_status

        doc = set_status(_open(state, case), request, status, note)
        typer.echo(f"{_summary(doc)}")


def _date(text: str | None) -> date | None:
    from cointrail.errors import InputError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"date {text!r}: use YYYY-MM-DD") from None


@request_app.command("list")
def list_cmd(
    ctx: typer.Context,
    case: Annotated[str | None, typer.Argument(help="Case reference (default: all).")] = None,
    due_only: Annotated[bool, typer.Option("--due", help="Show due reminders only.")] = False,
    today: Annotated[str | None, typer.Option("--today", help="YYYY-MM-DD (default today).")]
    = None,
    within: Annotated[int, typer.Option("--within", help="Also reminders due within N days.")]
    = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List requests, or with --due the reminders and expiries due."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.cases.case import CaseStore
        from cointrail.interfaces.cli.identity import cli_principal
        from cointrail.legal.workflow import due

        store = CaseStore.for_store(state.settings.store)
        principal = cli_principal(state)
        refs = [case] if case else [r for r in store.references()
                                    if principal.may_open_case(r)]
        docs: list[dict[str, Any]] = []
        for ref in refs:
            folder = store.open(ref, principal).folder / "requests"
            docs += [json.loads(p.read_bytes()) for p in sorted(folder.glob("*/request.json"))]
        if due_only:
            items = due(docs, _date(today) or date.today(), within)
            if as_json:
                print_json(json.dumps([i.to_dict() for i in items], indent=2))
            for i in [] if as_json else items:
                typer.echo(f"{i.due} {i.case} {i.request} {i.kind} ({i.status}) "
                           f"{i.reminder}: {i.text}")
            if not items and not as_json:
                typer.echo("nothing due")
            return
        if as_json:
            print_json(json.dumps(docs, indent=2, ensure_ascii=False))
            return
        for doc in docs:
            typer.echo(_summary(doc))
        if not docs:
            typer.echo("no requests")


@request_app.command("show")
def show_cmd(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="Case reference.")],
    request: Annotated[str, typer.Argument(help="Request id.")],
) -> None:
    """Print a request's request.json."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.workflow import load_request

        print_json(json.dumps(load_request(_open(state, case), request), indent=2,
                              ensure_ascii=False))


@contacts_app.command("import")
def contacts_import_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The directory YAML file.")],
) -> None:
    """Check a contact directory and store it as <store>/contacts.yaml (every problem listed
    with its line; nothing stored while one remains)."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.contacts import import_contacts

        d = import_contacts(state.settings.store, path)
        typer.echo(f"imported {len(d.entities)} legal entities and {len(d.states)} states into "
                   f"{state.settings.store / 'contacts.yaml'}")


@contacts_app.command("show")
def contacts_show_cmd(ctx: typer.Context) -> None:
    """Print the imported contact directory as JSON."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.legal.contacts import load_contacts

        d = load_contacts(state.settings.store)
        print_json(json.dumps({"entities": [e.to_dict() for e in d.entities],
                               "states": [s.to_dict() for s in d.states]}, indent=2,
                              ensure_ascii=False))
