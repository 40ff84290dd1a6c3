"""The ``cointrail`` command: global options and the command groups.

A new command, or group of commands (a module with its own ``typer.Typer``), is an entry of
`COMMANDS`; its commands take the global state with `common.get_state` and wrap their work in
`common.handle_errors`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Annotated

import typer

from cointrail import __version__
from cointrail.chain.spec import CHAIN_NAMES, NETWORK_NAMES
from cointrail.interfaces.cli.common import handle_errors, make_state

#: Every top-level command, in the order of ``cointrail --help``: name -> (module, attribute,
#: whether it is a group of subcommands). A command's module is imported only when the app
#: that runs it is built: `run` builds just the command on its command line, so ``cointrail
#: status`` does not import (and typer does not inspect) the other 50 commands.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "decode": ("decode", "decode_app", True),
    "ingest": ("store_cmds", "ingest_app", True),
    "show": ("store_cmds", "show_app", True),
    "sync": ("store_cmds", "sync_cmd", False),
    "status": ("store_cmds", "status_cmd", False),
    "demo": ("demo_cmd", "demo", False),
    "cluster": ("cluster_cmds", "cluster_cmd", False),
    "explain": ("cluster_cmds", "explain_cmd", False),
    "stats": ("cluster_cmds", "stats_cmd", False),
    "cluster-evaluate": ("evaluate_cmd", "evaluate_cmd", False),
    "tags": ("attribution_cmds", "tags_app", True),
    "sanctions": ("attribution_cmds", "sanctions_app", True),
    "screen": ("attribution_cmds", "screen_cmd", False),
    "trace": ("trace_cmds", "trace_app", True),
    "path": ("path_cmds", "path_cmd", False),
    "exposure": ("path_cmds", "exposure_cmd", False),
    "flags": ("rules_cmds", "flags_cmd", False),
    "case": ("case_cmds", "case_app", True),
    "request": ("request_cmds", "request_app", True),
    "keys": ("api_cmds", "keys_app", True),
    "serve": ("api_cmds", "serve_cmd", False),
}
#: Other modules that add subcommands to a group when imported (``show cluster``, ``case
#: report`` and ``case export``): imported whenever the group is built
_GROUP_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "show": ("cluster_cmds",),
    "case": ("case_output_cmds",),
}
#: Global options that take a value (the command name is the first other word)
_VALUE_OPTIONS = {"--store", "--chain", "--network", "--confirmations"}


def _cli_module(name: str) -> object:
    return import_module(f"cointrail.interfaces.cli.{name}")


def build_app(names: Sequence[str] | None = None) -> typer.Typer:
    """The ``cointrail`` app with the commands `names` (default: all)."""
    built = typer.Typer(
        name="cointrail",
        help="Self-hosted platform for countering the criminal use of cryptocurrency.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # never print investigative data in a traceback
    )
    built.callback()(main)
    for name in COMMANDS if names is None else names:
        module, attribute, group = COMMANDS[name]
        target = getattr(_cli_module(module), attribute)
        if group:
            for extension in _GROUP_EXTENSIONS.get(name, ()):
                _cli_module(extension)
            built.add_typer(target, name=name)
        else:
            built.command(name)(target)
    return built


def command_name(argv: Sequence[str]) -> str | None:
    """The command `argv` (without the program name) runs: its first word that is neither
    a global option nor an option's value."""
    words = iter(argv)
    for word in words:
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def run(argv: Sequence[str] | None = None) -> None:
    """The ``cointrail`` program: builds only the command it is asked for (all of them for
    ``--help``, an unknown command, or shell completion)."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = command_name(args)
    completing = any(key.startswith("_COINTRAIL_COMPLETE") for key in os.environ)
    only = [name] if name in COMMANDS and not completing else None
    try:
        build_app(only)(args=args, prog_name="cointrail")
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    if code is None or isinstance(code, int):
        exit_now(code or 0)
    sys.exit(code)


def exit_now(code: int) -> None:
    """End the program without tearing the interpreter down: the command is done, its output
    written and its store closed; freeing every object and module of DuckDB, Arrow and numpy
    one by one took 0.04-0.06 s of each run. What a normal exit does that can matter still
    happens first: threads that are not daemons finish (the normal exit path is taken when
    any is left running), atexit handlers run (logging, temporary files, weakref finalizers),
    and standard output and error are flushed."""
    main = threading.main_thread()
    if any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed (a closed pipe): nothing to say
            stream.flush()
    os._exit(code)


def __getattr__(attribute: str) -> typer.Typer:
    """``app``: the app with every command, built on first use (tests drive it directly)."""
    if attribute != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
    full = build_app()
    globals()["app"] = full
    return full


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cointrail {__version__}")
        raise typer.Exit()


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
    run()
