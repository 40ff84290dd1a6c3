"""The FastAPI application: routes, error mapping, audit, rate limits, the web investigator.

Public: ``/health`` and ``/openapi.json`` (and the investigator's static files, which hold no
data). Every route under ``/api/v1`` needs an API key, a role with the route's capability and
a token of the key's rate limit; every request to it is written to the audit log. Errors are
JSON ``{"error": <type>, "message": <what was wrong and what to do>}`` with the status of
`cointrail.errors.http_status_for`; bad input never yields a 500.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cointrail import __version__
from cointrail.auth import Principal
from cointrail.errors import AuthError, CointrailError, http_status_for
from cointrail.interfaces.api import routes_admin, routes_analysis, routes_cases, routes_chain
from cointrail.interfaces.api.audit import AuditLog, utc_now
from cointrail.interfaces.api.cache import ResponseCache
from cointrail.interfaces.api.config import API_PREFIX, ApiConfig
from cointrail.interfaces.api.deps import Anchors, BatchTooLargeError
from cointrail.interfaces.api.ratelimit import RateLimited, RateLimiter
from cointrail.interfaces.api.routes_cases import case_reference
from cointrail.interfaces.api.security import KeyCache, authorize, route_capability
from cointrail.settings import Settings

log = logging.getLogger("cointrail.api")
_KEY_ID = re.compile(r"ct_([0-9a-f]{12})_")
#: Request bodies up to this size are kept in the audit entry; larger ones by hash and size.
AUDIT_BODY_BYTES = 4096
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
     b"connect-src 'self'; frame-ancestors 'none'"),
]


def web_root() -> Path:
    """The packaged investigator's static files."""
    return Path(str(files("cointrail.interfaces.web").joinpath("static")))


def open_case_for(store_root: Path, reference: str, principal: Principal) -> Any:
    from cointrail.cases import CaseStore

    return CaseStore.for_store(store_root).open(reference, principal)


def error_body(error: str, message: str) -> dict[str, str]:
    return {"error": error, "message": message}


def _presented_key_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name in (b"authorization", b"x-api-key"):
            match = _KEY_ID.search(value.decode("latin-1"))
            if match:
                return match.group(1)
    return None


class AuditMiddleware:
    """Writes one audit entry per ``/api/`` request (after its answer), refuses oversized
    bodies (413), adds security headers to every answer."""

    def __init__(self, app: ASGIApp, audit: AuditLog, max_body: int) -> None:
        self.app = app
        self.audit = audit
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        audited = path.startswith("/api/")
        digest = hashlib.sha256()
        status = 0
        body = bytearray()
        body_size = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers += SECURITY_HEADERS
                if audited:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                digest.update(message.get("body", b""))
            await send(message)

        async def receive_wrapper() -> Message:
            nonlocal body_size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                body_size += len(chunk)
                if len(body) < AUDIT_BODY_BYTES + 1:
                    body.extend(chunk[: AUDIT_BODY_BYTES + 1 - len(body)])
            return message

        declared = dict(scope.get("headers", ())).get(b"content-length")
        started = time.perf_counter()
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            response = JSONResponse(error_body(
                "BatchTooLargeError", f"request body of {int(declared)} bytes; this server accepts "
                f"at most {self.max_body}: split the request"), status_code=413)
            await response(scope, receive, send_wrapper)
        else:
            await self.app(scope, receive_wrapper if audited else receive, send_wrapper)
        if audited:
            self._write(scope, status, digest.hexdigest(), bytes(body), body_size,
                        time.perf_counter() - started)

    def _write(self, scope: Scope, status: int, sha256: str, body: bytes, body_size: int,
               seconds: float) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        route = scope.get("route")
        parameters: dict[str, Any] = {}
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            from urllib.parse import parse_qs

            parameters["query"] = {k: v if len(v) > 1 else v[0]
                                   for k, v in parse_qs(query, keep_blank_values=True).items()}
        if scope.get("path_params"):
            parameters["path"] = {k: str(v) for k, v in scope["path_params"].items()}
        if body_size:
            parameters["body_sha256"] = hashlib.sha256(body).hexdigest() \
                if body_size <= AUDIT_BODY_BYTES else None
            parameters["body_bytes"] = body_size
            if body_size <= AUDIT_BODY_BYTES:
                parameters["body"] = body.decode("utf-8", "replace")
        who = principal if isinstance(principal, Principal) else None
        entry = {
            "at": utc_now(),
            "who": who.name if who else None,
            "role": str(who.role) if who else None,
            "key_id": who.key_id if who else _presented_key_id(scope),
            "authenticated": who is not None,
            "client": (scope.get("client") or (None,))[0],
            "method": scope.get("method"),
            "route": route.path if isinstance(route, APIRoute) else None,
            "path": scope["path"],
            "parameters": parameters,
            "status": status,
            "response_sha256": sha256,
            "duration_ms": round(seconds * 1000, 3),
        }
        try:
            self.audit.append(entry)
        except CointrailError:
            log.exception("cannot write the audit log entry for %s", scope["path"])
        reference = case_reference(scope)
        if (reference and who is not None and who.can("investigate")
                and scope.get("method") == "GET" and 200 <= status < 300):
            # writes in a case are on its custody log already (note, finding, report, ...);
            # reads are logged here, with the response's hash
            try:
                open_case_for(self.audit.path.parent, reference, who).log(
                    "query.api", f"{entry['method']} {entry['route']}",
                    parameters={"route": entry["route"], "parameters": parameters,
                                "status": status}, result_sha256=sha256)
            except CointrailError:
                log.exception("cannot log %s on the custody log of case %s", scope["path"],
                              reference)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = [str(p) for p in err.get("loc", ())]
        where = f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1 else ".".join(loc)
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts) + " (see /openapi.json for what each route takes)"


def _install_error_handlers(app: FastAPI) -> None:
    async def on_cointrail(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CointrailError)
        status = 413 if isinstance(exc, BatchTooLargeError) else http_status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.warning("%s on %s: %s", type(exc).__name__, request.url.path, exc)
        return JSONResponse(error_body(type(exc).__name__, str(exc)), status, headers=headers)

    async def on_rate(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        return JSONResponse(error_body("RateLimited", str(exc)), 429,
                            headers={"Retry-After": str(exc.retry_after)})

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(error_body("ValidationError", _validation_message(exc)), 422)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        message = (f"no route {request.method} {request.url.path}; see /openapi.json"
                   if exc.status_code in (404, 405) else str(exc.detail))
        return JSONResponse(error_body(names.get(exc.status_code, "HTTPError"), message),
                            exc.status_code, headers=getattr(exc, "headers", None))

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("InternalError", "the server failed on this request; "
                                       "the operator finds the details in its log"), 500)

    app.add_exception_handler(CointrailError, on_cointrail)
    app.add_exception_handler(RateLimited, on_rate)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    components = schema.setdefault("components", {})
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key from `cointrail keys create`."},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    error = {"type": "object", "required": ["error", "message"],
             "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
    components.setdefault("schemas", {})["Error"] = error
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for route in app.routes:
        if not isinstance(route, APIRoute) or route_capability(route) is None:
            continue
        for method in route.methods or ():
            op = schema["paths"][route.path_format][method.lower()]
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            for code, text in (("401", "No or unknown API key"),
                               ("403", "The key's role or case access forbids this"),
                               ("404", "Not in the store"), ("400", "Bad input"),
                               ("429", "Rate limit: retry after Retry-After seconds")):
                op.setdefault("responses", {}).setdefault(code, {"description": text, **ref})
    app.openapi_schema = schema
    return schema


def add_api_routes(app: FastAPI, router: APIRouter) -> None:
    """Add a route module's routes under ``/api/v1``, each behind `authorize`.

    Routes are added one by one (not with ``include_router``) so that ``app.routes`` lists
    every route with its full path: the access tests enumerate them from there.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: route modules hold API routes only")
        app.add_api_route(
            API_PREFIX + route.path, route.endpoint, methods=sorted(route.methods or ()),
            name=route.name, tags=list(route.tags), openapi_extra=route.openapi_extra,
            dependencies=[Depends(authorize)],
        )


def create_app(settings: Settings, config: ApiConfig | None = None) -> FastAPI:
    """The API and web investigator for the store of `settings`."""
    config = config or ApiConfig()
    anchors = Anchors()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()

        def sweep() -> None:
            while not stop.wait(1.0):
                anchors.release_idle()

        sweeper = threading.Thread(target=sweep, name="cointrail-anchors", daemon=True)
        sweeper.start()
        try:
            yield
        finally:
            stop.set()
            sweeper.join()
            anchors.release_idle(everything=True)

    app = FastAPI(
        lifespan=lifespan,
        title="cointrail", version=__version__,
        description="Blockchain investigation API: search, trace, screen, cases. Every route "
                    "but /health needs an API key (Authorization: Bearer <key>).",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.config = config
    app.state.limiter = RateLimiter(config.rate_per_second, config.burst)
    app.state.audit = AuditLog(settings.store)
    app.state.anchors = anchors
    app.state.response_cache = ResponseCache(config.cache_bytes)
    app.state.key_cache = KeyCache(settings.store)
    _install_error_handlers(app)

    @app.get("/health", tags=["public"])
    def health() -> dict[str, str]:
        """Liveness: answers without a key and reads nothing."""
        return {"status": "ok", "version": __version__}

    for module in (routes_admin, routes_chain, routes_analysis, routes_cases):
        add_api_routes(app, module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    if config.web:
        app.mount("/", StaticFiles(directory=web_root(), html=True), name="web")
    app.add_middleware(AuditMiddleware, audit=app.state.audit,
                       max_body=config.max_body_bytes)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    return app


__all__ = ["ApiConfig", "AuthError", "create_app", "web_root"]
