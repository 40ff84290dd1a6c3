"""Case outputs: ``case report`` (HTML and PDF) and ``case export`` (partner bundles).

Every file is written into the case folder through `Case.add_artefact`, so its SHA-256 is on
the custody log, and copied to ``--out`` when given; every export is also entered in the case's
transfer register. Heavy libraries (WeasyPrint, stix2, pymisp, followthemoney) load inside the
commands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cointrail.errors import CointrailError
from cointrail.interfaces.cli.case_cmds import JsonOpt, RefArg, open_case
from cointrail.interfaces.cli.common import AppState, get_state, handle_errors, print_json

if TYPE_CHECKING:
    from cointrail.cases import Case

OutOpt = Annotated[Path | None, typer.Option(
    "--out", metavar="DIR", help="Also copy the files into DIR.", show_default=False)]


def _times(state: AppState, snapshot: Mapping[str, Any]) -> dict[int, int]:
    """Header times of the blocks the case's traced transactions are in, from the chain store
    (empty when the store is absent: the formats that need times then say so)."""
    from cointrail.reporting.facts import transactions
    from cointrail.store.duck import open_chain

    wanted: dict[tuple[str, str], set[int]] = {}
    for t in transactions(snapshot):
        wanted.setdefault((t.chain, t.network), set()).add(t.height)
    times: dict[int, int] = {}
    for (chain, network), heights in sorted(wanted.items()):
        try:
            store = open_chain(state.settings.store, chain, network, read_only=True,
                               create=False)
        except CointrailError:  # no store for that chain: the formats needing times say so
            continue
        try:
            low, high = min(heights), max(heights)
            for height, time in store.query(
                    "SELECT height, time FROM blocks WHERE height BETWEEN ? AND ?",
                    [low, high]):
                if int(height) in heights:
                    times[int(height)] = int(time)
        finally:
            store.close()
    return times


def _write(case: Case, relpath: str, data: bytes, action: str, what: str,
           parameters: Mapping[str, Any]) -> dict[str, Any]:
    artefact = case.add_artefact(relpath, data, action=action, what=what, parameters=parameters)
    return {"path": artefact.path, "sha256": artefact.sha256, "size": artefact.size}


def report_cmd(
    ctx: typer.Context,
    reference: RefArg,
    out: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the case report (HTML, PDF and trace figures) into the case, on the custody log."""
    state = get_state(ctx)
    with handle_errors(state.debug):
        from cointrail.reporting import load_methodology, render_report

        case = open_case(state, reference)
        snapshot = case.snapshot()
        methodology = load_methodology()
        files = render_report(snapshot, methodology)
        head = snapshot["custody_head"]
        folder = f"artefacts/reports/{case.reference}-report-{int(head['seq']):04d}"
        params = {"custody_head": head, "methodology_version": methodology.version,
                  "methodology_sha256": methodology.sha256}
        outputs: dict[str, bytes] = {"report.html": files.html, "report.pdf": files.pdf}
        outputs |= {f"figures/{name}": svg for name, svg in sorted(files.figures.items())}
        written = [
            _write(case, f"{folder}/{name}", data, "report.write",
                   f"case report {name} as of custody entry {head['seq']}", params)
            for name, data in outputs.items()]
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
        from cointrail.cases.custody import utc_now
        from cointrail.exports import ExportOptions, export_bundle
        from cointrail.exports.options import DEFAULT_ONWARD

        case = open_case(state, reference)
        snapshot = case.snapshot()
        chosen = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
        options = ExportOptions(
            recipient=to, legal_basis=legal_basis, formats=chosen, tlp=tlp,
            goaml_profile=goaml_profile, onward_transfer=onward_transfer or DEFAULT_ONWARD,
            created_at=utc_now(), block_times=_times(state, snapshot))
        bundle = export_bundle(snapshot, options)
        folder = f"artefacts/exports/{bundle.name}"
        params = {"to": to, "legal_basis": legal_basis, "formats": list(chosen),
                  "tlp": bundle.restrictions.tlp.label, "custody_head": snapshot["custody_head"]}
        written = [
            _write(case, f"{folder}/{name}", data, "export.write",
                   f"export {bundle.name}: {name} for {to}", params)
            for name, data in sorted(bundle.files.items())]
        written.append(_write(case, f"{folder}.zip", bundle.zip_bytes(), "export.write",
                              f"export {bundle.name} as zip for {to}", params))
        manifest_sha = next(w["sha256"] for w in written if w["path"].endswith("manifest.json"))
        transfer = case.register_transfer(
            case.principal.name,
            f"case export {bundle.name} ({', '.join(chosen)}; manifest.json sha256 "
            f"{manifest_sha})", to, legal_basis, bundle.restrictions.text())
        copied = None if out is None else [str(p) for p in bundle.write(out)]
        if as_json:
            print_json(json.dumps({"case": case.reference, "bundle": bundle.name,
                                   "files": written, "transfer_seq": transfer.seq,
                                   "out": copied}, indent=2))
        else:
            for w in written:
                typer.echo(f"{w['path']}  sha256 {w['sha256']}  {w['size']} bytes")
            typer.echo(f"transfer register: entry {transfer.seq} ({to}; {legal_basis})")
            if copied:
                typer.echo(f"copied to {copied[0]} and {copied[1]}")
