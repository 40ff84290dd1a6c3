"""Case outputs: ``case report`` (HTML and PDF) and ``case export`` (partner bundles).

Every file is written into the case folder through `Case.add_artefact`, so its SHA-256 is on
the custody log, and copied to ``--out`` when given; every export is also entered in the case's
transfer register. Heavy libraries (WeasyPrint, stix2, pymisp, followthemoney) load inside the
commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cointrail.interfaces.cli.case_cmds import JsonOpt, RefArg, case_app, open_case
from cointrail.interfaces.cli.common import get_state, handle_errors, print_json

OutOpt = Annotated[Path | None, typer.Option(
    "--out", metavar="DIR", help="Also copy the files into DIR.", show_default=False)]


@case_app.command("report")
def report_cmd(
    ctx: typer.Context,
    reference: RefArg,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the case report (HTML, PDF and trace figures) into the case, on the custody log."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.reporting.casefile import write_case_report

        case = open_case(state, reference)
        report = write_case_report(case)
        folder, outputs, written = report.folder, report.contents, list(report.files)
        if out is not None:
            target = out / folder.rsplit("/", 1)[1]
            for name, data in outputs.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(data)
        if as_json:
            print_json(json.dumps({"case": case.reference, "files": written,
                                   "out": None if out is None else str(out)}, indent=2))
        else:
            for w in written:
                typer.echo(f"{w['path']}  sha256 {w['sha256']}  {w['size']} bytes")
            if out is not None:
                typer.echo(f"copied to {out}")


@case_app.command("export")
def export_cmd(
    ctx: typer.Context,
    reference: RefArg,
    to: Annotated[str, typer.Option("--to", metavar="AGENCY",
                                    help="The recipient agency (transfer register).")],
    legal_basis: Annotated[str, typer.Option(
        "--legal-basis", metavar="TEXT",
        help="The legal basis of the transfer, e.g. 'UNCC art 40(4); StPO § 474'.")],
    tlp: Annotated[str | None, typer.Option(
        "--tlp", help="TLP of the export: clear, green, amber, amber+strict, red "
        "(default: the case's).", show_default=False)] = None,
    formats: Annotated[str, typer.Option(
        "--formats", help="Comma-separated: stix,misp,ftm,goaml,csv,xlsx.")] =
        "stix,misp,ftm,goaml,csv,xlsx",
    goaml_profile: Annotated[str, typer.Option(
        "--goaml-profile", metavar="NAME",
        help="goAML mapping profile: generic, de-kryptotx, or a profile YAML file.")] =
        "generic",
    onward_transfer: Annotated[str | None, typer.Option(
        "--onward-transfer", metavar="TEXT",
        help="Onward-transfer condition (default: only with the originator's written "
        "consent).", show_default=False)] = None,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the case for a partner agency: a bundle with manifest.json (per-file SHA-256,
    custody head), written into the case and entered in its transfer register."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.exports.casefile import export_case

        case = open_case(state, reference)
        done = export_case(case, state.settings.store, recipient=to, legal_basis=legal_basis,
                           formats=formats.split(","), tlp=tlp, goaml_profile=goaml_profile,
                           onward_transfer=onward_transfer)
        bundle, written = done.bundle, list(done.files)
        copied = None if out is None else [str(p) for p in bundle.write(out)]
        if as_json:
            print_json(json.dumps({"case": case.reference, "bundle": bundle.name,
                                   "files": written, "transfer_seq": done.transfer_seq,
                                   "out": copied}, indent=2))
        else:
            for w in written:
                typer.echo(f"{w['path']}  sha256 {w['sha256']}  {w['size']} bytes")
            typer.echo(f"transfer register: entry {done.transfer_seq} ({to}; {legal_basis})")
            if copied:
                typer.echo(f"copied to {copied[0]} and {copied[1]}")
