"""Legal request commands: ``request draft|approve|list|show|status`` and the contact directory."""

from __future__ import annotations

import typer

request_app = typer.Typer(help="Legal requests: draft, approve, track. Nothing is ever sent.",
                          no_args_is_help=True)
