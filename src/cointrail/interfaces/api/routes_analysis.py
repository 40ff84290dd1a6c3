"""Analysis routes: trace, path, exposure, screening (single and batch), tags and actors."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cointrail.chain.spec import ChainSpec
from cointrail.errors import InputError, NotFoundError
from cointrail.interfaces.api.deps import (
    ANALYSIS_LOCK,
    BatchTooLargeError,
    chain_spec,
    hold_databases,
    json_response,
    open_chain_store,
    settings_of,
)
from cointrail.interfaces.api.security import capability

router = APIRouter(tags=["analysis"])
INVESTIGATE = capability("investigate")
Spec = Annotated[ChainSpec, Depends(chain_spec)]
Subject = Annotated[str, Query(min_length=1, max_length=140,
                               description="An address, a txid, txid:n or cluster:ID.")]
AsOfDate = Annotated[str | None, Query(max_length=32, description="YYYY-MM-DD.")]


class Direction(StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"


class Model(StrEnum):
    POISON = "poison"
    HAIRCUT = "haircut"
    FIFO = "fifo"


class CoinJoin(StrEnum):
    STOP = "stop"
    THROUGH = "through"


class Side(StrEnum):
    IN = "in"
    OUT = "out"
    BOTH = "both"


@router.get("/trace/{direction}", openapi_extra=INVESTIGATE)
def trace_route(
    request: Request, spec: Spec, direction: Direction, start: Subject,
    model: Model = Model.HAIRCUT,
    hops: Annotated[int, Query(ge=0, le=50, description="Transactions to follow at most.")] = 10,
    min_value: Annotated[int, Query(ge=0, le=21 * 10**14)] = 0,
    since: Annotated[str | None, Query(max_length=32, description="Height or YYYY-MM-DD.")] = None,
    until: Annotated[str | None, Query(max_length=32, description="Height or YYYY-MM-DD.")] = None,
    coinjoin: CoinJoin = CoinJoin.STOP,
    stop_at: Annotated[str | None, Query(max_length=500,
                                         description="Comma-separated tag categories.")] = None,
    clusters: bool = True,
) -> Response:
    """Trace the funds of START forward or backward by a taint model (as `cointrail trace`)."""
    from cointrail.analysis.tracing import SERVICE_CATEGORIES, TaintModel, TraceParams, trace
    from cointrail.interfaces.cli.trace_cmds import parse_bound

    categories = (SERVICE_CATEGORIES if stop_at is None else
                  frozenset(c.strip() for c in stop_at.split(",") if c.strip()))
    params = TraceParams(model=TaintModel(model.value), hops=hops, min_value=min_value,
                         since=parse_bound(since, "since"), until=parse_bound(until, "until"),
                         stop_categories=categories, coinjoin=coinjoin.value, clusters=clusters)
    with open_chain_store(request, spec) as store, ANALYSIS_LOCK:
        result = trace(store, start, direction.value, params)
    return json_response(result.to_dict())


@router.get("/path", openapi_extra=INVESTIGATE)
def path_route(
    request: Request, spec: Spec,
    source: Annotated[str, Query(alias="from", min_length=1, max_length=140)],
    target: Annotated[str, Query(alias="to", min_length=1, max_length=140)],
    hops: Annotated[int, Query(ge=1, le=12)] = 6,
    k: Annotated[int, Query(ge=1, le=10)] = 3,
) -> Response:
    """The K shortest fund-flow paths FROM → TO within N hops (as `cointrail path`)."""
    from cointrail.analysis.tracing.paths import find_paths

    with open_chain_store(request, spec) as store, ANALYSIS_LOCK:
        return json_response(find_paths(store, source, target, hops=hops, k=k).to_dict())


@router.get("/exposure", openapi_extra=INVESTIGATE)
def exposure_route(
    request: Request, spec: Spec, subject: Subject, direction: Side = Side.BOTH,
    hops: Annotated[int, Query(ge=1, le=12)] = 6,
) -> Response:
    """Shares of incoming/outgoing value by counterparty category (as `cointrail exposure`)."""
    from cointrail.analysis.risk.exposure import exposure

    with open_chain_store(request, spec) as store, ANALYSIS_LOCK:
        return json_response(exposure(store, subject, direction=direction.value,
                                      hops=hops).to_dict())


def _screen(request: Request, addresses: list[str], as_of: str | None) -> dict[str, Any]:
    from cointrail.attribution import AttributionStore, screen
    from cointrail.attribution.fastscreen import FAST_LIMIT, screen_fast
    from cointrail.cases.queries import screening_doc

    hold_databases(request)
    if len(addresses) <= FAST_LIMIT:  # from the process's index: same answer, no fixed cost
        return screening_doc(screen_fast(settings_of(request).store, addresses, as_of=as_of))
    with AttributionStore(settings_of(request).store, read_only=True) as store:
        return screening_doc(screen(store, addresses, as_of=as_of))


@router.get("/screen", openapi_extra=INVESTIGATE)
async def screen_route(request: Request,
                       address: Annotated[str, Query(min_length=1, max_length=140)],
                       as_of: AsOfDate = None) -> Response:
    """Screen one address: tags, cluster tags, categories, sanctions (as `cointrail screen`)."""
    from cointrail.attribution.fastscreen import IndexUnavailableError, ready_index
    from cointrail.attribution.screening import parse_as_of
    from cointrail.cases.queries import screening_doc

    index = ready_index(settings_of(request).store)
    if index is not None:  # built and current: about a millisecond, answered on the loop
        try:
            day = parse_as_of(as_of)
            hold_databases(request)
            return json_response(screening_doc(index.screen([address], as_of=day)))
        except IndexUnavailableError:
            pass  # a chain store is held by a writer: the thread pool path copes
    return json_response(await run_in_threadpool(_screen, request, [address], as_of))


class ScreenBatch(BaseModel):
    """Addresses to screen at once (at most the server's batch size; 413 beyond)."""

    addresses: list[Annotated[str, Field(max_length=140)]] = Field(min_length=1)
    as_of: Annotated[str | None, Field(max_length=32)] = None


@router.post("/screen", openapi_extra=INVESTIGATE)
def screen_batch_route(request: Request, body: ScreenBatch) -> Response:
    """Screen a list of addresses in one set-based pass."""
    limit = request.app.state.config.max_batch
    if len(body.addresses) > limit:
        raise BatchTooLargeError(f"{len(body.addresses)} addresses in one batch; this server "
                            f"screens at most {limit} at once: split the list")
    return json_response(_screen(request, body.addresses, body.as_of))


@router.get("/tags", openapi_extra=INVESTIGATE)
def tags_route(
    request: Request,
    address: Annotated[str | None, Query(max_length=140, description="Tags on this address.")]
    = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200,
                                   description="Tags whose label contains this text.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Attribution tags on an address (normalised as in screening) or by label."""
    from cointrail.attribution import AttributionStore
    from cointrail.attribution.screening import normalise
    from cointrail.interfaces.api.graph import like_pattern

    if (address is None) == (q is None):
        raise InputError("give exactly one of address= (tags on an address) or q= (tags by "
                         "label)")
    import pyarrow as pa

    hold_databases(request)
    with AttributionStore(settings_of(request).store, read_only=True) as store:
        if address is not None:
            key = normalise(pa.array([address], pa.string()))[0].as_py()
            cur = store.con.execute(
                "SELECT t.*, v.name AS list_name FROM tags t JOIN list_versions v USING"
                " (version_id) WHERE t.address = ? ORDER BY t.tag_id LIMIT ?", [key, limit])
        else:
            cur = store.con.execute(
                "SELECT t.*, v.name AS list_name FROM tags t JOIN list_versions v USING"
                " (version_id) WHERE t.label ILIKE ? ESCAPE '\\' ORDER BY t.tag_id LIMIT ?",
                [like_pattern(q or ""), limit])
        cols = [d[0] for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return json_response({"address": address, "q": q, "tags": rows})


@router.get("/actors", openapi_extra=INVESTIGATE)
def actors_route(request: Request,
                 q: Annotated[str | None, Query(max_length=200)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """Actors (ActorPacks), optionally those whose id or name contains `q`."""
    from cointrail.attribution import AttributionStore
    from cointrail.interfaces.api.graph import like_pattern

    hold_databases(request)
    with AttributionStore(settings_of(request).store, read_only=True) as store:
        cur = store.con.execute(
            "SELECT a.*, v.name AS list_name FROM actors a JOIN list_versions v USING"
            " (version_id) WHERE (? IS NULL OR a.actor_id ILIKE ? ESCAPE '\\'"
            " OR a.label ILIKE ? ESCAPE '\\') ORDER BY a.actor_id LIMIT ?",
            [q, like_pattern(q or ""), like_pattern(q or ""), limit])
        cols = [d[0] for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return json_response({"q": q, "actors": rows})


@router.get("/actors/{actor_id}", openapi_extra=INVESTIGATE)
def actor_route(request: Request, actor_id: Annotated[str, Path(max_length=200)]) -> Response:
    """One actor with its jurisdictions and the number of addresses tagged with it."""
    from cointrail.attribution import AttributionStore

    hold_databases(request)
    with AttributionStore(settings_of(request).store, read_only=True) as store:
        cur = store.con.execute(
            "SELECT a.*, v.name AS list_name FROM actors a JOIN list_versions v USING"
            " (version_id) WHERE a.actor_id = ? ORDER BY a.version_id DESC LIMIT 1", [actor_id])
        cols = [d[0] for d in cur.description or ()]
        row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"no actor {actor_id!r}; GET /api/v1/actors?q=... lists actors")
        tagged = store.query("SELECT count(DISTINCT address) FROM tags WHERE actor = ?",
                             [actor_id])[0][0]
    return json_response(dict(zip(cols, row, strict=True)) | {"tagged_addresses": int(tagged)})
