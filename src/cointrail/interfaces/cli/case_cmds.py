"""Case commands: ``case new|list|show|note|add|verify|replay|retention|transfer``."""

from __future__ import annotations

import typer

case_app = typer.Typer(help="Cases: metadata, attachments, custody log, replay, retention.",
                       no_args_is_help=True)
