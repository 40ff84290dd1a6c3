"""The response and key caches: answers identical to uncached ones, recomputed after the store
changes, and a revoked key refused at once although its principal was cached."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cointrail import get_chain
from cointrail.auth.keys import create_key, revoke_key
from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.interfaces.api import cache as cache_module
from cointrail.interfaces.api.cache import ResponseCache, file_stamp, is_settled, store_stamp
from cointrail.settings import Settings, load_settings
from cointrail.store.duck import Store
from tests.unit.api.conftest import FIRST_TRANSFER, HAL, SATOSHI, Keys, auth

BTC = get_chain("bitcoin", "mainnet")
READS = [
    f"/api/v1/addresses/{HAL}",
    f"/api/v1/addresses/{SATOSHI}/neighbours?limit=3",
    f"/api/v1/addresses/{SATOSHI}/neighbours?limit=3&cursor=9",
    f"/api/v1/txs/{FIRST_TRANSFER}",
    f"/api/v1/txs/{FIRST_TRANSFER}/neighbours?limit=1",
    "/api/v1/blocks/170",
    "/api/v1/blocks/0",
    f"/api/v1/search?q={HAL}",
    "/api/v1/search?q=hal%20finney",
    "/api/v1/search?q=170",
]


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust stamps at once (the store files of these tests were written seconds ago)."""
    monkeypatch.setattr(cache_module, "SETTLE_NS", 0)


def _client(settings: Settings, cache_bytes: int) -> TestClient:
    app = create_app(settings, ApiConfig(rate_per_second=1000, burst=1000, web=False,
                                         cache_bytes=cache_bytes))
    return TestClient(app, raise_server_exceptions=False)


def _cache(app: FastAPI) -> ResponseCache:
    cache = app.state.response_cache
    assert isinstance(cache, ResponseCache)
    return cache


def test_cached_answers_equal_uncached_ones(settled: None, settings: Settings,
                                            keys: Keys) -> None:
    with _client(settings, 0) as plain, _client(settings, 1 << 20) as cached:
        for url in READS:
            expected = plain.get(url, headers=auth(keys.analyst))
            assert expected.status_code == 200, url
            for _ in range(2):  # the first fills the cache, the second is served from it
                got = cached.get(url, headers=auth(keys.analyst))
                assert got.status_code == 200 and got.content == expected.content, url
        stats = _cache(cached.app).stats()  # type: ignore[arg-type]
        assert stats.hits == len(READS) and stats.misses == len(READS)
        assert _cache(plain.app).stats().entries == 0  # type: ignore[arg-type]


@pytest.fixture
def own_store(store_root: Path, tmp_path: Path) -> Path:
    """A copy of the session store that this test may change."""
    root = tmp_path / "store"
    shutil.copytree(store_root, root)
    return root


def test_a_change_to_the_store_is_seen_on_the_next_request(
        settled: None, own_store: Path, keys: Keys) -> None:
    settings = load_settings(store=own_store, chain="bitcoin", network="mainnet")
    urls = [f"/api/v1/addresses/{HAL}", "/api/v1/blocks/200", f"/api/v1/txs/{FIRST_TRANSFER}"]
    with _client(settings, 1 << 20) as client:
        for _ in range(2):
            assert [client.get(u, headers=auth(keys.analyst)).status_code for u in urls] == \
                [200, 200, 200]
        assert _cache(client.app).stats().hits == len(urls)  # type: ignore[arg-type]
        client.app.state.anchors.release_idle(everything=True)  # type: ignore[attr-defined]
        with Store(own_store).chain(BTC) as store:  # Hal's first coins came in block 170
            assert store.rollback_to(169) > 0
        answers = [client.get(u, headers=auth(keys.analyst)) for u in urls]
        assert [r.status_code for r in answers] == [404, 404, 404]
        assert all(r.json()["error"] == "NotFoundError" for r in answers)


def test_a_revoked_key_is_refused_although_its_principal_was_cached(
        settled: None, own_store: Path) -> None:
    settings = load_settings(store=own_store, chain="bitcoin", network="mainnet")
    new = create_key(own_store, "cache-test", "analyst")
    with _client(settings, 1 << 20) as client:
        for _ in range(2):
            assert client.get("/api/v1/me", headers=auth(new.secret)).status_code == 200
        assert len(client.app.state.key_cache._held) == 1  # type: ignore[attr-defined]
        revoke_key(own_store, new.key.key_id)
        refused = client.get("/api/v1/me", headers=auth(new.secret))
        assert refused.status_code == 401 and "revoked" in refused.json()["message"]


def test_stamps_differ_after_a_write_and_fresh_files_are_not_trusted(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    assert store_stamp([db]) == (None, None)
    db.write_bytes(b"one")
    before = store_stamp([db])
    assert not is_settled(before)  # written just now
    os.utime(db, ns=(1_000_000_000, 1_000_000_000))
    old = store_stamp([db])
    assert is_settled(old) and old != before
    db.with_name("x.duckdb.wal").write_bytes(b"wal")
    assert store_stamp([db]) != old  # a write to the log alone changes the stamp
    assert file_stamp(db) == old[0]


def test_cache_keeps_only_settled_answers_and_evicts_least_recent(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    db.write_bytes(b"data")
    fresh = store_stamp([db])
    cache = ResponseCache(max_bytes=10)
    cache.put("a", fresh, b"12345")
    assert cache.get("a", fresh) is None  # the file may still change under the same stamp
    os.utime(db, ns=(1_000_000_000, 1_000_000_000))
    stamp = store_stamp([db])
    cache.put("a", stamp, b"12345")
    cache.put("b", stamp, b"67890")
    assert cache.get("a", stamp) == b"12345"  # now "b" is the least recently used
    cache.put("c", stamp, b"xy")
    assert cache.get("b", stamp) is None and cache.get("a", stamp) == b"12345"
    assert cache.get("c", stamp) == b"xy"
    assert cache.get("a", fresh) is None  # another stamp: not served
    cache.put("big", stamp, b"x" * 11)
    assert cache.get("big", stamp) is None and cache.stats().bytes <= 10


def test_errors_are_not_kept(settled: None, settings: Settings, keys: Keys) -> None:
    with _client(settings, 1 << 20) as client:
        for _ in range(2):
            r = client.get("/api/v1/blocks/99999", headers=auth(keys.analyst))
            assert r.status_code == 404
        assert _cache(client.app).stats().entries == 0  # type: ignore[arg-type]
