"""Bundled demonstration data: real mainnet blocks 0–438 (see blocks/NOTICE) and the demo
scenario chain made on a litecoind regtest node (see scenario/README.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def bundled_path(relative: str) -> Path:
    """Filesystem path of a bundled data file, e.g. ``blocks/mainnet-000000-000438.blk``."""
    return Path(str(files(__name__).joinpath(relative)))


EARLY_MAINNET_BLOCKS = "blocks/mainnet-000000-000438.blk"
SCENARIO_DIR = "scenario"
SCENARIO_BLOCKS = "scenario/litecoin-regtest-scenario.blk"
SCENARIO_TAGS = "scenario/tags"
SCENARIO_CONTACTS = "scenario/contacts.yaml"
SCENARIO_FACTS = "scenario/facts.json"
SCENARIO_CHAIN = ("litecoin", "regtest")
