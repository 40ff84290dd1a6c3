"""Bundled demonstration data (real mainnet blocks 0–438; see blocks/NOTICE)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled_path(relative: str) -> Path:
    """Filesystem path of a bundled data file, e.g. ``blocks/mainnet-000000-000438.blk``."""
    return Path(str(files(__name__).joinpath(relative)))


EARLY_MAINNET_BLOCKS = "blocks/mainnet-000000-000438.blk"
