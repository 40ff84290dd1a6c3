"""The ``cointrail`` command: global options and the command groups.

A new command group is a module with its own ``typer.Typer`` registered here with
``app.add_typer``; its commands take the global state with `common.get_state` and wrap their
work in `common.handle_errors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cointrail import __version__
from cointrail.chain.spec import CHAIN_NAMES, NETWORK_NAMES
from cointrail.interfaces.cli import api_cmds, case_output_cmds
from cointrail.interfaces.cli.api_cmds import keys_app
from cointrail.interfaces.cli.attribution_cmds import sanctions_app, screen_cmd, tags_app
from cointrail.interfaces.cli.case_cmds import case_app
from cointrail.interfaces.cli.cluster_cmds import cluster_cmd, explain_cmd, stats_cmd
from cointrail.interfaces.cli.common import handle_errors, make_state
from cointrail.interfaces.cli.decode import decode_app
from cointrail.interfaces.cli.demo_cmd import demo
from cointrail.interfaces.cli.evaluate_cmd import evaluate_cmd
from cointrail.interfaces.cli.path_cmds import exposure_cmd, path_cmd
from cointrail.interfaces.cli.request_cmds import request_app
from cointrail.interfaces.cli.rules_cmds import flags_cmd
from cointrail.interfaces.cli.store_cmds import ingest_app, show_app, status_cmd, sync_cmd
from cointrail.interfaces.cli.trace_cmds import trace_app

app = typer.Typer(
    name="cointrail",
    help="Self-hosted platform for countering the criminal use of cryptocurrency.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print investigative data in a traceback
)
app.add_typer(decode_app, name="decode")
app.add_typer(ingest_app, name="ingest")
app.add_typer(show_app, name="show")
app.command("sync")(sync_cmd)
app.command("status")(status_cmd)
app.command("demo")(demo)
app.command("cluster")(cluster_cmd)
app.command("explain")(explain_cmd)
app.command("stats")(stats_cmd)
app.command("cluster-evaluate")(evaluate_cmd)
app.add_typer(tags_app, name="tags")
app.add_typer(sanctions_app, name="sanctions")
app.command("screen")(screen_cmd)
app.add_typer(trace_app, name="trace")
app.command("path")(path_cmd)
app.command("exposure")(exposure_cmd)
app.command("flags")(flags_cmd)
app.add_typer(case_app, name="case")
for _name in ("report", "export"):
    _command = getattr(case_output_cmds, f"{_name}_cmd", None)
    if _command is not None:
        case_app.command(_name)(_command)
app.add_typer(request_app, name="request")
app.add_typer(keys_app, name="keys")
_serve = getattr(api_cmds, "serve_cmd", None)
if _serve is not None:
    app.command("serve")(_serve)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cointrail {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    *,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            metavar="DIR",
            help="Store directory (environment: COINTRAIL_STORE; default cointrail-data).",
            show_default=False,
        ),
    ] = None,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help=f"Chain: {', '.join(CHAIN_NAMES)} (environment: COINTRAIL_CHAIN; "
            "default bitcoin).",
            show_default=False,
        ),
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(
            "--network",
            help=f"Network: {', '.join(NETWORK_NAMES)} (environment: COINTRAIL_NETWORK; "
            "default mainnet).",
            show_default=False,
        ),
    ] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(
            "--confirmations",
            metavar="N",
            help="A block counts as final with N blocks above it; status reports the highest "
            "(environment: COINTRAIL_CONFIRMATIONS; default 6).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show tracebacks for expected errors (COINTRAIL_DEBUG)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """cointrail: ingest, cluster, attribute and trace; decode blocks and transactions."""
    with handle_errors(debug):
        ctx.obj = make_state(store=store, chain=chain, network=network, debug=debug,
                             confirmations=confirmations)


if __name__ == "__main__":  # pragma: no cover
    app()
