"""A request that finds the chain's database held by a writer (``sync --follow`` taking a new
block) waits for it, up to the `store_wait` setting, then answers 503 saying what holds it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.settings import Settings, load_settings
from tests.unit.api.conftest import Keys, auth

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def own_store(store_root: Path, tmp_path: Path) -> Settings:
    """A copy of the session's store (this test holds its database from another process)."""
    root = tmp_path / "store"
    shutil.copytree(store_root, root)
    return load_settings(store=root, chain="bitcoin", network="mainnet")


def hold(settings: Settings, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD,
                             str(settings.store / "bitcoin-mainnet.duckdb"), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_request_waits_for_a_brief_writer(own_store: Settings, keys: Keys) -> None:
    app = create_app(own_store, ApiConfig(rate_per_second=1000, burst=1000))
    with TestClient(app, raise_server_exceptions=False) as client:
        writer = hold(own_store, 1.0)
        started = time.monotonic()
        answer = client.get("/api/v1/blocks/170", headers=auth(keys.analyst))
        waited = time.monotonic() - started
        writer.wait(timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["height"] == 170
    assert waited > 0.3  # it did wait for the writer (no timing upper bound asserted)


def test_a_request_gives_up_after_the_bound_with_503(own_store: Settings, keys: Keys) -> None:
    settings = load_settings(store=own_store.store, chain="bitcoin", network="mainnet",
                             store_wait=0.3)
    app = create_app(settings, ApiConfig(rate_per_second=1000, burst=1000))
    with TestClient(app, raise_server_exceptions=False) as client:
        writer = hold(own_store, 30.0)
        try:
            answer = client.get("/api/v1/blocks/170", headers=auth(keys.analyst))
        finally:
            writer.kill()
            writer.wait(timeout=60)
    assert answer.status_code == 503, answer.text
    assert "is in use by another cointrail process" in answer.text
