"""What every CLI command shares: the global state, error handling, input and output helpers."""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.errors import CointrailError, InputError, exit_code_for
from cointrail.settings import Settings, load_settings

STDIN = "-"

# Options every command with a Spark engine takes (cluster, stats, exposure); default master
# local[2] is `cointrail.scaleout.session.DEFAULT_MASTER`, not imported here to keep start-up light.
SparkMasterOpt = Annotated[str, typer.Option(
    "--master", metavar="URL", help="Spark master: local[N], spark://HOST:PORT, yarn, k8s://...")]
SparkParquetOpt = Annotated[str | None, typer.Option(
    "--parquet", metavar="DIR|URL",
    help="Spark: read this exported Parquet layout instead of exporting the store.")]
SparkWorkDirOpt = Annotated[Path | None, typer.Option(
    "--work-dir", metavar="DIR",
    help="Spark: folder for the export and results (default: temporary).")]
_HEX_TEXT = re.compile(rb"\s*[0-9a-fA-F][0-9a-fA-F\s]*")


@dataclass(frozen=True, slots=True)
class AppState:
    """Settings and chain resolved once from the global options; kept in ``ctx.obj``."""

    settings: Settings
    spec: ChainSpec

    @property
    def debug(self) -> bool:
        return self.settings.debug


def make_state(
    *, store: Path | None, chain: str | None, network: str | None, debug: bool,
    confirmations: int | None = None,
) -> AppState:
    """Resolve the global options (CLI over environment over defaults) into an AppState."""
    settings = load_settings(  # SettingsError (an InputError) names each bad value
        store=store, chain=chain, network=network, debug=True if debug else None,
        confirmations=confirmations,
    )
    return AppState(settings, get_chain(settings.chain, settings.network))


def get_state(ctx: typer.Context) -> AppState:
    """The AppState of the running command (defaults when the group callback did not run)."""
    state = ctx.find_object(AppState)
    if state is None:
        state = make_state(store=None, chain=None, network=None, debug=False)
        ctx.obj = state
    return state


def one_line(text: str) -> str:
    """`text` with its line breaks folded, so an error stays on one line."""
    return " ".join(text.split())


def error_line(message: str) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)


def warning_line(message: str) -> None:
    typer.echo(f"warning: {one_line(message)}", err=True)


@contextmanager
def handle_errors(debug: bool) -> Iterator[None]:
    """Turn a CointrailError into ``error: <message>`` on stderr and its exit code.

    With `debug` the traceback is printed first. Other exceptions are bugs and propagate.
    """
    try:
        yield
    except CointrailError as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        error_line(str(exc))
        raise typer.Exit(exit_code_for(exc)) from None


def path_exists(text: str) -> bool:
    """True if `text` names an existing path (False for text no file system accepts as a name)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # e.g. a long hex string: "File name too long"
        return False


def read_source(source: str, what: str) -> bytes:
    """The bytes of file `source`, or of stdin for ``-``; InputError when unreadable or empty."""
    if source == STDIN:
        data = sys.stdin.buffer.read()
        name = "stdin"
    else:
        path = Path(source)
        if not path_exists(source):
            raise InputError(f"{what} file {source!r} does not exist; check the path")
        if path.is_dir():
            raise InputError(f"{source!r} is a directory; pass a {what} file or - for stdin")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {what} file {source!r}: {exc.strerror}") from exc
        name = repr(source)
    if not data.strip():
        raise InputError(f"{name} is empty; pass a {what} as raw bytes or hex")
    return data


def looks_like_hex(data: bytes) -> bool:
    """True if `data` is hex text (surrounding and embedded whitespace allowed)."""
    return _HEX_TEXT.fullmatch(data) is not None


def hex_or_raw(data: bytes, what: str) -> bytes:
    """`data` decoded from hex text when it is hex text, else unchanged (raw bytes)."""
    if not looks_like_hex(data):
        return data
    try:
        return bytes.fromhex(data.decode("ascii"))
    except ValueError as exc:
        digits = len(b"".join(data.split()))
        raise InputError(
            f"{what} hex has {digits} hex digits; it needs an even number (is it cut short?)"
        ) from exc


def print_json(text: str, nl: bool = True) -> None:
    """Write a JSON document (or line) to stdout, plainly: no markup, no wrapping."""
    typer.echo(text, nl=nl)


def human_console() -> Console:
    """A Rich console on stdout for human-readable output."""
    return Console(highlight=False)
