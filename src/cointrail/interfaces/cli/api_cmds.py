"""``cointrail serve`` (REST API and web investigator) and ``cointrail keys`` (API keys)."""

from __future__ import annotations

import typer

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
