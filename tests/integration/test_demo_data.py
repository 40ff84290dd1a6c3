"""``scripts/make-demo-data.py`` regenerates the bundled scenario with the same figures.

The script runs on a real ``litecoind -regtest`` node into a temporary folder (it checks its own
output against a trace of the new data and exits non-zero on a mismatch); the figures the demo
prints must equal the bundled ``facts.json``. Keys, txids and block hashes are the node's own
randomness and are not compared (see src/cointrail/data/scenario/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.data import REPO_ROOT
from tests.support.litecoind import require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUNDLED = REPO_ROOT / "src/cointrail/data/scenario"


def stable(doc: dict[str, Any]) -> dict[str, Any]:
    """What must not change between regenerations."""
    return {
        "generator": {k: doc["generator"][k] for k in ("seed", "scale", "plan_digest",
                                                       "mocktime_start")},
        "blocks": doc["chain"]["blocks"],
        "transactions": doc["chain"]["transactions"],
        "victims": [(v["victim"], v["value_sat"], v["height"]) for v in doc["victims"]],
        "total_ransom_sat": doc["total_ransom_sat"],
        "deposits": [(d["value_sat"], d["height"]) for d in doc["exchange"]["deposits"]],
        "reaching_exchange_sat": doc["exchange"]["reaching_exchange_sat"],
        "deposit_addresses_reached": len(doc["exchange"]["deposit_addresses_reached"]),
        "actors": doc["actors"],
    }


def test_regenerated_scenario_has_the_bundled_figures(tmp_path: Path) -> None:
    require_binary()
    bundled = json.loads((BUNDLED / "facts.json").read_text("utf-8"))
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/make-demo-data.py"),
         "--seed", str(bundled["generator"]["seed"]),
         "--scale", str(bundled["generator"]["scale"]), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    fresh = json.loads((tmp_path / "facts.json").read_text("utf-8"))
    assert stable(fresh) == stable(bundled)
    assert fresh["chain"]["bytes"] < 2_000_000
    for name in ("contacts.yaml", "tags/scenario.actorpack.yaml"):
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes(), name
