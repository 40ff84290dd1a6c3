"""Every route but /health refuses a missing key, a wrong key and a key of the wrong role.

Routes are enumerated from the application, so a route added later is covered by these tests
(and fails them until it declares a capability and a sample for its path parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cointrail.auth import CAPABILITIES, Role
from cointrail.auth.keys import authenticate, create_key, list_keys, revoke_key
from cointrail.errors import AuthError, InputError, NotFoundError
from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.interfaces.api.security import route_capability
from cointrail.settings import Settings
from tests.unit.api.conftest import FIRST_TRANSFER, HAL, Keys, auth

PUBLIC = {"/health", "/openapi.json"}
#: Routes every role may call (no role gets 403 there): "who am I" and reading a case, its
#: custody log and its files (the key's case restriction still applies: tested below).
FOR_EVERY_ROLE = {"/api/v1/me", "/api/v1/cases", "/api/v1/cases/{reference}",
                  "/api/v1/cases/{reference}/custody", "/api/v1/cases/{reference}/custody/verify",
                  "/api/v1/cases/{reference}/files", "/api/v1/cases/{reference}/requests"}
#: A value for each path parameter a route may have.
SAMPLES = {"ident": "170", "txid": FIRST_TRANSFER, "address": HAL, "cluster_id": "1",
           "direction": "forward", "actor_id": "someone", "reference": "CT-NONE-0001",
           "request_id": "R0001"}
BODIES = {"/api/v1/screen": {"addresses": [HAL]},
          "/api/v1/cases/{reference}/notes": {"text": "a note"},
          "/api/v1/cases/{reference}/attachments": {"address": HAL},
          "/api/v1/cases/{reference}/traces": {"start": HAL},
          "/api/v1/cases/{reference}/requests": {"kind": "preservation", "finding_id": "F0001",
                                                 "selector": "x"}}
#: A well-formed key that was never created.
FORGED = "ct_0123456789ab_" + "A" * 43


def api_routes(client: TestClient) -> list[tuple[str, str, APIRoute]]:
    out = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and route.path not in PUBLIC:
            for method in sorted(route.methods):
                out.append((method, route.path, route))
    return out


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.format(**{k: SAMPLES[k] for k in SAMPLES if "{" + k + "}" in path})
    assert "{" not in url, f"add a sample for the path parameters of {path} to SAMPLES"
    return client.request(method, url, headers=headers, json=BODIES.get(path))


def test_routes_are_enumerated(client: TestClient) -> None:
    paths = {p for _, p, _ in api_routes(client)}
    assert {"/api/v1/search", "/api/v1/trace/{direction}", "/api/v1/screen"} <= paths
    assert len(paths) >= 15


def test_every_route_declares_a_capability(client: TestClient) -> None:
    open_to_all = set()
    for method, path, route in api_routes(client):
        needed = route_capability(route)
        assert needed is not None, f"{method} {path} declares no capability"
        if not {r for r in Role if needed not in CAPABILITIES[r]}:
            open_to_all.add(path)
    assert open_to_all == FOR_EVERY_ROLE


def test_missing_key_is_401(client: TestClient) -> None:
    for method, path, _ in api_routes(client):
        r = call(client, method, path, {})
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"] == "AuthError"
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {FORGED}"},
    {"X-API-Key": FORGED},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
], ids=["forged-bearer", "forged-x-api-key", "malformed", "basic-scheme"])
def test_wrong_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    for method, path, _ in api_routes(client):
        r = call(client, method, path, headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"] == "AuthError"


def test_wrong_role_is_403_and_right_role_passes(client: TestClient, keys: Keys) -> None:
    refusals = 0
    for method, path, route in api_routes(client):
        needed = route_capability(route)
        assert needed is not None
        for role in Role:
            r = call(client, method, path, auth(keys.of(role)))
            if needed in CAPABILITIES[role]:
                assert r.status_code not in (401, 403), (role, method, path, r.text)
            else:
                assert r.status_code == 403, (role, method, path, r.text)
                assert r.json()["error"] == "PermissionDeniedError"
                assert str(role) in r.json()["message"]
                refusals += 1
    assert refusals >= len(api_routes(client)) - len(FOR_EVERY_ROLE)


def test_public_routes(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").json()["info"]["title"] == "cointrail"
    assert client.get("/docs").status_code == 404  # no docs page: it would load a CDN


def test_revoked_key_is_refused(store_root: Path, settings: Settings) -> None:
    new = create_key(store_root, "leaver", Role.ANALYST)
    app = create_app(settings)
    with TestClient(app) as c:
        assert c.get("/api/v1/me", headers=auth(new.secret)).status_code == 200
        revoke_key(store_root, new.key.key_id)
        r = c.get("/api/v1/me", headers=auth(new.secret))
    assert r.status_code == 401
    assert "revoked" in r.json()["message"]


def test_keys_are_hashed_at_rest(store_root: Path) -> None:
    new = create_key(store_root, "hash-check", "auditor", ["CT-2026-0001"])
    stored = (store_root / "auth.sqlite").read_bytes()
    wal = store_root / "auth.sqlite-wal"
    stored += wal.read_bytes() if wal.exists() else b""
    secret_part = new.secret.rsplit("_", 1)[1]
    assert secret_part.encode() not in stored
    assert new.key.key_id.encode() in stored
    principal = authenticate(store_root, new.secret)
    assert (principal.name, principal.role, principal.cases) == (
        "hash-check", Role.AUDITOR, frozenset({"CT-2026-0001"}))
    assert not principal.may_open_case("CT-2026-0002")
    listed = {k.key_id: k for k in list_keys(store_root)}
    assert listed[new.key.key_id].cases == ("CT-2026-0001",)


def test_key_store_errors(store_root: Path, tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="no API keys yet"):
        authenticate(tmp_path, FORGED)
    good = create_key(store_root, "tamper", "analyst").secret
    with pytest.raises(AuthError, match="unknown API key"):
        authenticate(store_root, good[:-1] + ("B" if good[-1] != "B" else "C"))
    with pytest.raises(InputError, match="role 'boss' does not exist"):
        create_key(store_root, "x", "boss")
    with pytest.raises(InputError, match="case reference"):
        create_key(store_root, "x", "analyst", ["bad ref!"])
    with pytest.raises(NotFoundError):
        revoke_key(store_root, "ffffffffffff")


def test_rate_limit_answers_429(settings: Settings, keys: Keys) -> None:
    app = create_app(settings, ApiConfig(rate_per_second=0.01, burst=2))
    with TestClient(app) as c:
        codes = [c.get("/api/v1/me", headers=auth(keys.analyst)).status_code for _ in range(3)]
        limited = c.get("/api/v1/me", headers=auth(keys.analyst))
        other = c.get("/api/v1/me", headers=auth(keys.auditor))
    assert codes == [200, 200, 429]
    assert limited.status_code == 429
    assert limited.json()["error"] == "RateLimited"
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200  # buckets are per key


def test_cors_is_off_by_default(settings: Settings, keys: Keys) -> None:
    origin = {"Origin": "https://evil.example", **auth(keys.analyst)}
    with TestClient(create_app(settings)) as c:
        r = c.get("/api/v1/me", headers=origin)
    assert "access-control-allow-origin" not in r.headers
    config = ApiConfig(cors_origins=("https://evil.example",))
    with TestClient(create_app(settings, config)) as c:
        r = c.get("/api/v1/me", headers=origin)
    assert r.headers["access-control-allow-origin"] == "https://evil.example"
