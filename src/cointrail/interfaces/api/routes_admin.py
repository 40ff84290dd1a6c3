"""Who am I, and the audit log (auditors and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from cointrail.auth import CAPABILITIES, Principal
from cointrail.interfaces.api.audit import AUDIT_FILE, read_entries, verify_audit
from cointrail.interfaces.api.deps import json_response, settings_of
from cointrail.interfaces.api.security import capability, current_principal

router = APIRouter(tags=["access"])


@router.get("/me", openapi_extra=capability("read"))
def me_route(principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """The caller's key: name, role, what the role may do, the cases it may open."""
    return json_response({
        "name": principal.name, "role": str(principal.role), "key_id": principal.key_id,
        "capabilities": sorted(CAPABILITIES[principal.role]),
        "cases": None if principal.cases is None else sorted(principal.cases),
    })


@router.get("/audit", openapi_extra=capability("audit"))
def audit_route(request: Request,
                offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                key_id: Annotated[str | None, Query(max_length=12)] = None) -> Response:
    """Audit log entries, newest first, optionally of one key."""
    path = settings_of(request).store / AUDIT_FILE
    return json_response(read_entries(path, offset=offset, limit=limit, key_id=key_id))


@router.get("/audit/verify", openapi_extra=capability("audit"))
def audit_verify_route(request: Request) -> Response:
    """Recompute every hash and link of the audit log and list what does not match."""
    return json_response(verify_audit(settings_of(request).store / AUDIT_FILE))
