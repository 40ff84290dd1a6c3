"""Who is calling: the API key from the request, its role and its rate limit.

Every route under ``/api/v1`` runs `authorize` (a router dependency, so no route can forget
it). The capability a route needs is declared once, on the route, as the OpenAPI extension
``x-capability``; a route without one is refused (fail closed).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from cointrail.auth import Principal, require
from cointrail.auth.keys import authenticate
from cointrail.errors import AuthError, PermissionDeniedError

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


async def authorize(request: Request) -> None:
    """Authenticate the caller, charge its rate limit and check the route's capability."""
    app_state = request.app.state
    principal = authenticate(app_state.settings.store, key_from_headers(request))
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
