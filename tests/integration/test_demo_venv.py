"""The README's first command on a fresh machine: install cointrail into a clean virtualenv
(a real, non-editable install of the working tree) and run ``cointrail demo --json``.

The figures are checked against the scenario's ground truth (``facts.json`` of the working tree,
read from the node that made the chain). The install uses pip's configured indexes and cache;
the working tree is copied first so the build leaves nothing behind in the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest

from tests.support.data import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SOURCES = ("pyproject.toml", "setup.py", "README.md", "src")
BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", "build", "dist")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_demo_in_a_clean_virtualenv(tmp_path: Path) -> None:
    tree = tmp_path / "cointrail"
    tree.mkdir()
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=BUILD_LEFTOVERS)
        elif source.exists():
            shutil.copy2(source, tree / name)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COINTRAIL_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([str(python), "-m", "pip", "install", "--quiet", str(tree)], tmp_path, env, 900)

    work = tmp_path / "work"  # not the repository: nothing may import from the working tree
    work.mkdir()
    out = _run([str(env_dir / "bin" / "cointrail"), "demo", "--store", str(work / "store"),
                "--json"], work, env, 300)
    doc: dict[str, Any] = json.loads(out)

    site = _run([str(python), "-c", "import cointrail, sys; sys.stdout.write(cointrail.__file__)"],
                work, env, 60)
    assert Path(site).is_relative_to(env_dir), f"cointrail imported from {site}, not the venv"
    assert Path(doc["scenario"]["ingested"]["file"]).is_relative_to(env_dir)
    assert doc["store"] == str(work / "store")

    truth = json.loads((REPO_ROOT / "src/cointrail/data/scenario/facts.json").read_text("utf-8"))
    s = doc["scenario"]
    assert s["victims"] == len(truth["victims"])
    assert s["total_ransom_sat"] == truth["total_ransom_sat"]
    assert s["reaching_exchange_sat"] == {
        m: truth["exchange"]["reaching_exchange_sat"][m] for m in s["reaching_exchange_sat"]}
    assert sorted(d["address"] for d in s["deposit_addresses"]) == (
        truth["exchange"]["deposit_addresses_reached"])
    assert s["ingested"]["tip_hash"] == truth["chain"]["tip_hash"]
    assert doc["mainnet"]["all_merkle_roots_and_pow_verified"] is True
