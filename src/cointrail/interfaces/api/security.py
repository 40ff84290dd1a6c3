"""Who is calling: the API key from the request, its role and its rate limit.

Every route under ``/api/v1`` runs `authorize` (a router dependency, so no route can forget
it). The capability a route needs is declared once, on the route, as the OpenAPI extension
``x-capability``; a route without one is refused (fail closed).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from cointrail.auth import Principal, require
from cointrail.auth.keys import auth_db_path, authenticate
from cointrail.errors import AuthError, PermissionDeniedError
from cointrail.interfaces.api.cache import Stamp, files_stamp, is_settled

CAPABILITY = "x-capability"


def capability(name: str) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that needs `name` (read, investigate, audit, ...)."""
    return {CAPABILITY: name}


def route_capability(route: APIRoute) -> str | None:
    extra = route.openapi_extra or {}
    value = extra.get(CAPABILITY)
    return value if isinstance(value, str) else None


def key_from_headers(request: Request) -> str:
    """The key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; AuthError if none."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("the Authorization header must read 'Bearer <API key>'")
        return value.strip()
    key = request.headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    raise AuthError("this route needs an API key: send 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>' (an admin creates keys with `cointrail keys create`)")


class KeyCache:
    """The principals of keys that authenticated, while the key store is unchanged.

    An entry is used only while the stamp (inode, size, mtime) of ``auth.sqlite`` and of its
    ``-wal`` equals the stamp taken before the key was looked up, so creating or revoking any
    key makes every key be looked up again on its next request. Failed look-ups are never
    kept. Entries are keyed by the SHA-256 of the key, not the key. Per process."""

    MAX_KEYS = 4096

    def __init__(self, store_root: Path) -> None:
        self.store_root = Path(store_root)
        db = auth_db_path(self.store_root)
        self._files = (db, db.with_name(db.name + "-wal"))
        self._held: dict[bytes, tuple[Stamp, Principal]] = {}
        self._lock = threading.Lock()

    def authenticate(self, secret: str) -> Principal:
        """As `cointrail.auth.keys.authenticate`, from memory while the key store is
        unchanged."""
        stamp = files_stamp(self._files)
        digest = hashlib.sha256(secret.strip().encode()).digest()
        with self._lock:
            held = self._held.get(digest)
        if held is not None and held[0] == stamp:
            return held[1]
        principal = authenticate(self.store_root, secret)
        if is_settled(stamp):
            with self._lock:
                if len(self._held) >= self.MAX_KEYS:
                    self._held.clear()
                self._held[digest] = (stamp, principal)
        return principal


async def authorize(request: Request) -> None:
    """Authenticate the caller, charge its rate limit and check the route's capability."""
    app_state = request.app.state
    keys = app_state.key_cache
    assert isinstance(keys, KeyCache)
    principal = keys.authenticate(key_from_headers(request))
    request.state.principal = principal
    app_state.limiter.take(principal.key_id or principal.name)
    route = request.scope.get("route")
    needed = route_capability(route) if isinstance(route, APIRoute) else None
    if needed is None:
        raise PermissionDeniedError(f"route {request.url.path} declares no capability; "
                                    "it is refused until it does")
    require(principal, needed, f"use {request.method} {route.path if route else ''}")


def current_principal(request: Request) -> Principal:
    """The principal `authorize` put on the request."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise AuthError("the request was not authenticated")
    return principal


def check_case_access(principal: Principal, reference: str) -> None:
    """PermissionDeniedError unless the principal's key may open case `reference`."""
    if not principal.may_open_case(reference):
        raise PermissionDeniedError(
            f"key {principal.key_id} ({principal.name}) is restricted to other cases and may "
            f"not open case {reference}"
        )
