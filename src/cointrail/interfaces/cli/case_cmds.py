"""Case commands: ``case new|list|show|note|add|update|verify|replay|retention|dispose|disposals|
transfer|repair|acquire-node``, and the helpers the query commands use for ``--case REF``.

``case report`` and ``case export`` live in `case_output_cmds`. Heavy modules are imported
inside the commands so that ``cointrail --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cointrail.errors import InputError
from cointrail.interfaces.cli.common import (
    AppState,
    get_state,
    handle_errors,
    human_console,
    print_json,
)

if TYPE_CHECKING:
    from cointrail.cases import Case, CaseStore

case_app = typer.Typer(help="Cases: metadata, attachments, custody log, replay, retention.",
                       no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(metavar="REF", help="The case reference.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
#: ``--case REF`` for the query and import commands.
CaseOption = Annotated[str | None, typer.Option(
    "--case", metavar="REF",
    help="Record this in case REF: a custody entry with the parameters and the SHA-256 of the "
         "result, and the result kept as a finding (or the file as an artefact).")]


def case_store(state: AppState) -> CaseStore:
    from cointrail.cases import CaseStore

    return CaseStore.for_store(state.settings.store)


def open_case(state: AppState, reference: str) -> Case:
    from cointrail.interfaces.cli.identity import cli_principal

    return case_store(state).open(reference, cli_principal(state))


def case_option(state: AppState, reference: str | None) -> Case | None:
    """The case named by ``--case`` (None without it), opened before the query runs so that a
    wrong reference or a forbidden case fails first."""
    return None if reference is None else open_case(state, reference)


def record_query_in_case(case: Case, action_kind: str, finding_kind: str,
                         request: Mapping[str, Any], result: Mapping[str, Any],
                         what: str) -> None:
    """For ``--case``: log ``query.<action_kind>`` and keep `result` as a finding; a note on
    stderr says where it went."""
    record = result.get("record")
    finding = case.record_query(action_kind, finding_kind, request, result,
                                record=record if isinstance(record, Mapping) else None,
                                what=what)
    typer.echo(f"case {case.folder.name}: recorded finding {finding.id} "
               f"(SHA-256 {finding.result_sha256})", err=True)


def _files_under(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            found.append(p)
    return found


def read_acquisitions(paths: Sequence[Path]) -> list[tuple[Path, bytes]]:
    """The raw bytes of every file under `paths`, read before an import uses them."""
    out = []
    for f in _files_under(paths):
        try:
            out.append((f, f.read_bytes()))
        except OSError as exc:
            raise InputError(f"cannot read {f}: {exc.strerror}") from exc
    return out


def record_acquisitions(case: Case, action: str, files: Sequence[tuple[Path, bytes]],
                        summary: Mapping[str, Any]) -> None:
    """For ``--case`` on imports: one `action` entry per file, with its SHA-256 over the raw
    bytes and a copy under ``artefacts/acquired/<kind>/``."""
    from cointrail.cases import sha256_hex

    kind = action.split(".", 1)[1]
    for path, data in files:
        digest = sha256_hex(data)
        rel = f"artefacts/acquired/{kind}/{digest[:12]}-{path.name}"
        params = {"source": str(path.resolve()), "import": dict(summary)}
        what = f"acquired {path.name} ({kind})"
        if (case.folder / rel).exists():
            case.log(action, what, parameters=params | {"file": {"path": rel,
                                                                 "size": len(data)}},
                     result_sha256=digest)
        else:
            case.add_artefact(rel, data, action=action, what=what, parameters=params)
    typer.echo(f"case {case.folder.name}: recorded {len(files)} acquired file(s)", err=True)


# --- commands -------------------------------------------------------------------------------


@case_app.command("new")
def new_cmd(
    ctx: typer.Context,
    reference: Annotated[str | None, typer.Option(
        "--reference", metavar="REF", help="Case reference, e.g. CT-2026-0001.")] = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    offence: Annotated[str | None, typer.Option(
        "--offence", metavar="CODE", help="Offence code, e.g. UNCC-17 (see `case offences`).")
    ] = None,
    national_law: Annotated[str, typer.Option(
        "--national-law", metavar="TEXT", help="The national provision, e.g. '§ 261 StGB'.")
    ] = "",
    max_penalty_years: Annotated[int | None, typer.Option(
        "--max-penalty-years", metavar="N", help="Maximum penalty under national law.")
    ] = None,
    jurisdiction: Annotated[str | None, typer.Option(
        "--jurisdiction", metavar="CC", help="ISO 3166-1 alpha-2 country code.")] = None,
    authority: Annotated[str | None, typer.Option(
        "--authority", metavar="NAME", help="Investigating authority.")] = None,
    unit: Annotated[str, typer.Option("--unit")] = "",
    contact: Annotated[str, typer.Option("--contact", help="Contact person.")] = "",
    email: Annotated[str, typer.Option("--email")] = "",
    poc_247: Annotated[str, typer.Option("--poc-247", help="24/7 point of contact.")] = "",
    investigator: Annotated[list[str] | None, typer.Option(
        "--investigator", metavar="NAME", help="Investigator (repeat for several).")] = None,
    facts: Annotated[str | None, typer.Option("--facts", help="Summary of the facts.")] = None,
    legal_basis: Annotated[str | None, typer.Option(
        "--legal-basis", help="Legal basis of the investigation.")] = None,
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="Purpose the data is processed for (UNCC art 36).")] = None,
    retention_days: Annotated[int | None, typer.Option(
        "--retention-days", metavar="N", help="Keep the case data this many days.")] = None,
    tlp: Annotated[str, typer.Option(
        "--tlp", help="clear, green, amber, amber+strict or red.")] = "amber",
    as_json: JsonOpt = False,
) -> None:
    """Open a case; every missing or wrong field is listed at once."""
    from cointrail.errors import ValidationError
    from cointrail.interfaces.cli.identity import cli_principal

    state = get_state(ctx)
    with handle_errors(state.debug):
        try:
            case = case_store(state).create(
                cli_principal(state), reference=reference or "", title=title or "",
                offence=offence or "", jurisdiction=jurisdiction or "",
                authority={"name": authority or "", "unit": unit, "contact": contact,
                           "email": email, "poc_247": poc_247},
                investigators=list(investigator or []), facts=facts or "",
                legal_basis=legal_basis or "", purpose=purpose or "",
                retention_days=retention_days, tlp=tlp, national_law=national_law,
                max_penalty_years=max_penalty_years, chain=state.spec.chain,
                network=state.spec.network)
        except ValidationError as exc:
            typer.echo(f"error: case not opened: {len(exc.problems)} field(s) to fix:", err=True)
            for problem in exc.problems:
                typer.echo(f"  {problem}", err=True)
            raise typer.Exit(2) from None
        meta = case.meta()
        if as_json:
            print_json(json.dumps(meta.to_dict(), indent=2, ensure_ascii=False))
        else:
            typer.echo(f"opened case {meta.reference} in {case.folder}")


@case_app.command("offences")
def offences_cmd(as_json: JsonOpt = False) -> None:
    """The offence taxonomy (UNCC arts 7–17, Budapest arts 2–11, flagged speech/content)."""
    from cointrail.cases import offences

    items = [o.to_dict() for o in offences.all()]
    if as_json:
        print_json(json.dumps({"version": offences.version(), "offences": items}, indent=2))
        return
    for o in items:
        flag = "  [speech/content: dual-criminality and human-rights check]" \
            if o["speech_or_content"] else ""
        typer.echo(f"{o['code']:<26} {o['title']}{flag}")


@case_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The cases in this store."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        metas = case_store(state).list_cases()
    if as_json:
        print_json(json.dumps([m.to_dict() for m in metas], indent=2, ensure_ascii=False))
        return
    for m in metas:
        typer.echo(f"{m.reference}  {m.status}  {m.offence.code}  {m.jurisdiction}  "
                   f"opened {m.opened_at[:10]} by {m.opened_by}  {m.title}")


@case_app.command("show")
def show_cmd(ctx: typer.Context, reference: RefArg, as_json: JsonOpt = False) -> None:
    """The case: metadata, notes, attachments, findings, artefacts, custody head."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        snap = open_case(state, reference).snapshot()
    if as_json:
        print_json(json.dumps(snap, indent=2, ensure_ascii=False))
        return
    c = snap["case"]
    console = human_console()
    console.print(f"[bold]{c['reference']}[/bold] ({c['status']}, TLP:{c['tlp'].upper()}) "
                  f"{c['title']}")
    off = c["offence"]
    console.print(f"  offence {off['code']} {off['title']}"
                  f"{' / ' + off['national_law'] if off['national_law'] else ''}"
                  f"{'  [speech/content offence]' if off['speech_or_content'] else ''}")
    console.print(f"  {c['jurisdiction']}, {c['authority']['name']}; investigators "
                  f"{', '.join(c['investigators'])}; purpose: {c['purpose']}; retention "
                  f"{c['retention_days']} days")
    for n in snap["notes"]:
        console.print(f"  note {n['at'][:19]} {n['who']}: {n['text']}")
    for a in snap["attachments"]["addresses"]:
        console.print(f"  address {a['chain']}/{a['network']} {a['address']} {a['note']}")
    for cl in snap["attachments"]["clusters"]:
        console.print(f"  cluster {cl['chain']}/{cl['network']} {cl['cluster_id']} "
                      f"{cl['note']}")
    for f in snap["findings"]:
        console.print(f"  finding {f['id']} {f['kind']} {f['created_at'][:19]} "
                      f"{f['created_by']} sha256 {f['result_sha256'][:16]}…")
    for art in snap["artefacts"]:
        console.print(f"  file {art['path']} ({art['size']} bytes, {art['action']})")
    for t in snap["transfers"]:
        console.print(f"  transfer {t['at'][:10]} {t['what']} → {t['to']} ({t['legal_basis']})")
    head = snap["custody_head"]
    console.print(f"  custody log: {len(snap['custody'])} entries, head seq {head['seq']} "
                  f"{head['hash'][:16]}…")


@case_app.command("note")
def note_cmd(ctx: typer.Context, reference: RefArg,
             text: Annotated[str, typer.Argument(metavar="TEXT")]) -> None:
    """Add a note to the case."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        entry = open_case(state, reference).note(text)
        typer.echo(f"note recorded as custody entry {entry.seq}")


@case_app.command("add")
def add_cmd(
    ctx: typer.Context, reference: RefArg,
    kind: Annotated[str, typer.Argument(metavar="address|cluster")],
    values: Annotated[list[str], typer.Argument(metavar="VALUE...",
                                                help="Addresses, or cluster ids.")],
    note: Annotated[str, typer.Option("--note", help="Why it is attached.")] = "",
) -> None:
    """Attach addresses (checked for the chain of --chain/--network, default the case's) or
    clusters to the case."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        case = open_case(state, reference)
        chosen = kind.strip().lower()
        given = ctx.find_root().params  # --chain/--network given: check against them
        explicit = bool(given.get("chain") or given.get("network"))
        chain = state.spec.chain if explicit else None
        network = state.spec.network if explicit else None
        if chosen == "address":
            for v in values:
                case.attach_address(v, chain=chain, network=network, note=note)
        elif chosen == "cluster":
            for v in values:
                text = v.strip().removeprefix("cluster:")
                if not text.isdigit():
                    raise InputError(f"cluster id {v!r} is not a number")
                case.attach_cluster(int(text), chain=chain, network=network, note=note)
        else:
            raise InputError(f"{kind!r}: attach an address or a cluster")
        typer.echo(f"attached {len(values)} {chosen}(es) to {case.folder.name}"
                   if chosen == "address" else
                   f"attached {len(values)} cluster(s) to {case.folder.name}")


@case_app.command("update")
def update_cmd(
    ctx: typer.Context, reference: RefArg,
    title: Annotated[str | None, typer.Option("--title")] = None,
    facts: Annotated[str | None, typer.Option("--facts")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    retention_days: Annotated[int | None, typer.Option("--retention-days")] = None,
    tlp: Annotated[str | None, typer.Option("--tlp")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open or closed.")] = None,
) -> None:
    """Change case metadata; the old and new values go on the custody log."""
    changes = {k: v for k, v in {"title": title, "facts": facts, "purpose": purpose,
                                 "retention_days": retention_days, "tlp": tlp,
                                 "status": status}.items() if v is not None}
    state = get_state(ctx)
    with handle_errors(state.debug):
        if not changes:
            raise InputError("nothing to change; give at least one option")
        entry = open_case(state, reference).update(**changes)
        typer.echo(f"{entry.what} (custody entry {entry.seq})")


@case_app.command("verify")
def verify_cmd(ctx: typer.Context, reference: RefArg, as_json: JsonOpt = False) -> None:
    """Check the custody chain, its head, the metadata and every recorded file; exit 1 on any
    problem, each named by kind and entry."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        report = open_case(state, reference).verify()
    if as_json:
        print_json(json.dumps(report.to_dict(), indent=2))
    elif report.ok:
        head = report.head_log
        typer.echo(f"{report.reference}: custody log intact: {report.entries} entries, head "
                   f"seq {head.seq if head else 0}, {report.files_checked} files match")
    else:
        typer.echo(f"{report.reference}: {len(report.problems)} problem(s):")
        for p in report.problems:
            typer.echo(f"  {p}")
    if not report.ok:
        raise typer.Exit(1)


@case_app.command("repair")
def repair_cmd(ctx: typer.Context, reference: RefArg) -> None:
    """Quarantine a torn last line or record entries an interrupted write left out of
    case.json; every repair is itself a custody entry."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        done = open_case(state, reference).repair()
    if not done:
        typer.echo("nothing to repair")
    for e in done:
        typer.echo(f"{e.what} (custody entry {e.seq})")


@case_app.command("replay")
def replay_cmd(ctx: typer.Context, reference: RefArg, as_json: JsonOpt = False) -> None:
    """Re-run every finding from its request; exit 1 unless every result is byte-identical."""
    from cointrail.cases import replay

    state = get_state(ctx)
    with handle_errors(state.debug):
        report = replay(open_case(state, reference), state.settings.store)
    if as_json:
        print_json(json.dumps(report.to_dict(), indent=2))
    else:
        for item in report.items:
            typer.echo(f"{item.finding} {item.kind}: {item.status}"
                       f"{' — ' + item.message if item.message else ''}")
            for d in item.differences[:20]:
                typer.echo(f"    differs at {d}")
            if len(item.differences) > 20:
                typer.echo(f"    … {len(item.differences) - 20} more (use --json)")
    if not report.ok:
        raise typer.Exit(1)


@case_app.command("retention")
def retention_cmd(
    ctx: typer.Context,
    today: Annotated[str | None, typer.Option(
        "--today", metavar="DATE", help="Report as of this day (YYYY-MM-DD; default today).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cases whose retention period has run out (UNCC art 36): due for deletion or review."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        day = _day(today)
        due = case_store(state).due_for_deletion(day)
    if as_json:
        print_json(json.dumps({"today": day.isoformat(), "due": due}, indent=2))
        return
    if not due:
        typer.echo(f"no case is due for deletion on {day.isoformat()}")
    for d in due:
        typer.echo(f"{d['reference']}: due {d['due_on']} ({d['overdue_days']} days ago; "
                   f"{d['retention_days']} days from {d['counted_from']}, {d['status']}); "
                   f"purpose: {d['purpose']}")
    if due:
        typer.echo("dispose of a case (approver role): cointrail case dispose REF --action "
                   "delete|archive [--to DIR] --authority TEXT")


def _day(text: str | None) -> date:
    try:
        return date.today() if text is None else date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--today {text!r} is not a date; use YYYY-MM-DD") from None


@case_app.command("dispose")
def dispose_cmd(
    ctx: typer.Context, reference: RefArg,
    action: Annotated[str, typer.Option(
        "--action", help="delete, or archive (a verified zip in --to DIR, then delete).")],
    authority: Annotated[str, typer.Option(
        "--authority", help="The rule or decision that orders the disposal.")] = "",
    to: Annotated[Path | None, typer.Option(
        "--to", metavar="DIR", help="Where archive writes REF-archive-DATE.zip.")] = None,
    early: Annotated[bool, typer.Option(
        "--early", help="Dispose before the retention period has run out (say why in "
                        "--authority).")] = False,
    today: Annotated[str | None, typer.Option(
        "--today", metavar="DATE", help="Decide as of this day (YYYY-MM-DD; default today).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete or archive a case whose retention has run out (needs the approver role: set
    COINTRAIL_API_KEY); the store's disposal register records it."""
    from cointrail.cases.disposal import dispose
    from cointrail.interfaces.cli.identity import cli_principal

    state = get_state(ctx)
    with handle_errors(state.debug):
        entry = dispose(case_store(state), reference, cli_principal(state),
                        action=action.strip().lower(), authority=authority,
                        today=_day(today), archive_dir=to, early=early)
    if as_json:
        print_json(json.dumps(entry, indent=2))
        return
    params = entry["parameters"]
    typer.echo(f"{entry['what']} ({params['files']} files, {params['bytes']} bytes; custody head "
               f"seq {params['custody_head']['seq']}); disposal register entry {entry['seq']}")
    if params.get("archive"):
        typer.echo(f"  archive {params['archive']['path']} sha256 {params['archive']['sha256']}")


@case_app.command("disposals")
def disposals_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The disposal register: every case deleted or archived, checked link by link."""
    from cointrail.cases.disposal import read_register

    state = get_state(ctx)
    with handle_errors(state.debug):
        report = read_register(case_store(state))
    if as_json:
        print_json(json.dumps(report.to_dict(), indent=2))
    else:
        if not report.entries:
            typer.echo("no case has been disposed of")
        for e in report.entries:
            p = e.parameters
            typer.echo(f"{e.seq}. {e.at[:19]} {p.get('reference')}: {e.action} by {e.who} "
                       f"({e.role}) under {p.get('authority')!r}; due {p.get('due_on')}"
                       f"{' (early)' if p.get('early') else ''}; {p.get('files')} files"
                       + (f"; archive {p['archive']['path']}" if p.get("archive") else ""))
        typer.echo(f"register chain: {'verified' if report.ok else 'BROKEN'}")
        for problem in report.problems:
            typer.echo(f"  {problem}")
    if not report.ok:
        raise typer.Exit(1)


@case_app.command("transfer")
def transfer_cmd(
    ctx: typer.Context, reference: RefArg,
    what: Annotated[str, typer.Option("--what", help="What was transferred.")] = "",
    to: Annotated[str, typer.Option("--to", help="The recipient.")] = "",
    legal_basis: Annotated[str, typer.Option("--legal-basis")] = "",
    conditions: Annotated[str, typer.Option(
        "--conditions", help="Conditions imposed (use, onward transfer).")] = "",
    by: Annotated[str | None, typer.Option(
        "--by", help="Who authorised it (default: you).")] = None,
) -> None:
    """Register a transfer of case data in the transfer register (UNCC art 36)."""
    from cointrail.interfaces.cli.identity import cli_principal

    state = get_state(ctx)
    with handle_errors(state.debug):
        case = open_case(state, reference)
        entry = case.register_transfer(by or cli_principal(state).name, what, to,
                                       legal_basis, conditions)
        typer.echo(f"transfer registered as custody entry {entry.seq}")


@case_app.command("acquire-node")
def acquire_node_cmd(ctx: typer.Context, reference: RefArg) -> None:
    """Record the store's chain, tip (height and block hash) and the SHA-256 of its database
    files as an ``acquire.node`` entry."""
    import hashlib

    from cointrail.attribution.db import ATTRIBUTION_DB
    from cointrail.cases import canonical_bytes, sha256_hex
    from cointrail.interfaces.cli.store_cmds import _open

    state = get_state(ctx)
    with handle_errors(state.debug):
        case = open_case(state, reference)
        with _open(state, read_only=True) as store:
            tip = store.tip()
            db = store.path
            state_doc = store.state()
        files = {}
        for path in (db, state.settings.store / ATTRIBUTION_DB):
            if path.exists():
                with path.open("rb") as f:
                    files[path.name] = {"sha256": hashlib.file_digest(f, "sha256").hexdigest(),
                                        "size": path.stat().st_size}
        doc = {"chain": state.spec.chain, "network": state.spec.network,
               "tip_height": None if tip is None else tip.height,
               "tip_hash": None if tip is None else tip.hash[::-1].hex(),
               "store_state": state_doc, "files": files}
        entry = case.log("acquire.node", f"store {state.spec.key} at height "
                         f"{doc['tip_height']}", parameters=doc,
                         result_sha256=sha256_hex(canonical_bytes(doc)))
        typer.echo(f"recorded {state.spec.key} tip {doc['tip_height']} {doc['tip_hash']} "
                   f"as custody entry {entry.seq}")
