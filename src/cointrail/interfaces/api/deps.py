"""What the route modules share: the chain asked for, the open stores, JSON answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import duckdb
from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.errors import InputError
from cointrail.interfaces.api.cache import ResponseCache, store_stamp
from cointrail.settings import Settings
from cointrail.store.defaults import DB_SUFFIX
from cointrail.store.duck import ChainStore, Store, open_when_free, writer_waiting

ChainQuery = Annotated[str | None, Query(
    max_length=40, description="Chain name (default: the server's chain, e.g. bitcoin).")]
NetworkQuery = Annotated[str | None, Query(
    max_length=40, description="Network name (default: the server's network, e.g. mainnet).")]

#: Analyses that walk the graph run one at a time: they are CPU-bound, and a spend graph built
#: for a new tip is written once, not by two threads at the same moment.
ANALYSIS_LOCK = threading.Lock()


class BatchTooLargeError(InputError):
    """A request body or batch larger than the server accepts (HTTP 413)."""


def settings_of(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


async def chain_spec(request: Request, chain: ChainQuery = None,
                     network: NetworkQuery = None) -> ChainSpec:
    """The chain and network asked for, or the server's defaults (UnknownChainError: 400).
    ``async``: it only reads settings, so it runs on the event loop, not a worker thread."""
    settings = settings_of(request)
    return get_chain(chain or settings.chain, network or settings.network)


class Anchors:
    """Read-only DuckDB connections kept open while requests come, so that each request's own
    connection reuses the open database (under a millisecond) instead of opening the file
    (about 20 ms). An anchor idle for `idle_seconds` is closed, which lets a writer (sync,
    cluster, tags import) take the database between busy periods."""

    def __init__(self, idle_seconds: float = 5.0) -> None:
        self.idle_seconds = idle_seconds
        self._open: dict[Path, tuple[duckdb.DuckDBPyConnection, float]] = {}
        self._lock = threading.Lock()

    def hold(self, root: Path) -> None:
        """Keep every database of the store folder `root` open a while longer."""
        now = time.monotonic()
        try:
            paths = [p for p in root.iterdir() if p.suffix == DB_SUFFIX]
        except OSError:
            return
        with self._lock:
            for path in paths:
                if writer_waiting(path):  # sync --follow waits for it: hold nothing open
                    dropped = self._open.pop(path, None)
                    if dropped is not None:
                        dropped[0].close()
                    continue
                held = self._open.get(path)
                if held is not None:
                    self._open[path] = (held[0], now)
                    continue
                try:
                    con = duckdb.connect(str(path), read_only=True)
                except duckdb.Error:  # locked by a writer: the request's own open says so
                    continue
                self._open[path] = (con, now)

    def release_idle(self, *, everything: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            for path, (con, used) in list(self._open.items()):
                if everything or now - used > self.idle_seconds:
                    con.close()
                    del self._open[path]


def hold_databases(request: Request) -> None:
    anchors = request.app.state.anchors
    assert isinstance(anchors, Anchors)
    anchors.hold(settings_of(request).store)


@contextmanager
def open_chain_store(request: Request, spec: ChainSpec) -> Iterator[ChainStore]:
    """The chain's store, read-only, for one request (NotFoundError when it holds no data).
    While a writer holds it (``sync --follow`` taking a new block: about a second), the
    request waits up to the `store_wait` setting before it answers 503."""
    hold_databases(request)
    settings = settings_of(request)
    with open_when_free(lambda: Store(settings.store).chain(spec, read_only=True),
                        wait_seconds=settings.store_wait) as store:
        yield store


def json_body(doc: Any) -> bytes:
    """The JSON text of an answer (dates and other values as text)."""
    return json.dumps(doc, default=str, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(doc: Any, status_code: int = 200) -> Response:
    """A JSON answer, serialised once."""
    return Response(json_body(doc), status_code=status_code, media_type="application/json")


def chain_db_path(request: Request, spec: ChainSpec) -> Path:
    """The database file of a chain in the server's store (it may not exist)."""
    return Store(settings_of(request).store).db_path(spec)


async def cached_json(request: Request, key: Hashable, databases: list[Path],
                      build: Callable[[], Any]) -> Response:
    """The answer for `key` from the response cache while `databases` are unchanged, else
    `build()` it (and keep it if it succeeds). `key` must name the route and every parameter
    the answer depends on; `databases` every DuckDB file `build` reads. A hit is answered on
    the event loop; `build` runs in a worker thread."""
    cache = request.app.state.response_cache
    assert isinstance(cache, ResponseCache)
    stamp = store_stamp(databases)  # before building: a write meanwhile changes it
    body = cache.get(key, stamp)
    if body is None:
        body = await run_in_threadpool(lambda: json_body(build()))
        cache.put(key, stamp, body)
    return Response(body, media_type="application/json")
