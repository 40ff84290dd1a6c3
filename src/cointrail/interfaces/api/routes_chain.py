"""Chain routes: status, search, show block/tx/address/cluster, neighbours (paged).

The show, neighbours and search answers come from the response cache (`cached_json`) while the
database files they read are unchanged: these routes are ``async`` so that an answer from the
cache is sent from the event loop, and only a miss goes to a worker thread to run DuckDB.
`status` is computed every time (it reports the tip's age).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from cointrail.chain.spec import ChainSpec
from cointrail.chain.utxo.address import parse_address
from cointrail.errors import NotFoundError
from cointrail.interfaces.api.deps import (
    cached_json,
    chain_db_path,
    chain_spec,
    hold_databases,
    json_response,
    open_chain_store,
    settings_of,
)
from cointrail.interfaces.api.security import capability

router = APIRouter(tags=["chain"])
INVESTIGATE = capability("investigate")
Spec = Annotated[ChainSpec, Depends(chain_spec)]
Limit = Annotated[int, Query(ge=1, le=500, description="Items per page (at most 500).")]
Cursor = Annotated[str | None, Query(max_length=24,
                                     description="next_cursor of the previous page.")]
AsOf = Annotated[int | None, Query(ge=0, le=10**9,
                                   description="The clustering as it stood at this height.")]


@router.get("/status", openapi_extra=INVESTIGATE)
def status_route(request: Request) -> Response:
    """The chains in the store: tip, size, finality. A chain whose database cannot be read
    (damaged, or held by a running ingest) is listed with its error, the others as usual."""
    from cointrail.errors import CointrailError
    from cointrail.store.duck import Store, StoreInUseError
    from cointrail.store.queries import status

    settings = settings_of(request)
    hold_databases(request)
    root = Store(settings.store)
    docs: list[dict[str, object]] = []
    for spec in root.chains():
        try:
            with root.chain(spec, read_only=True) as store:
                docs.append(status(store, settings.confirmations))
        except CointrailError as exc:
            docs.append({"chain": spec.chain, "network": spec.network, "error": str(exc),
                         **({"in_use": True} if isinstance(exc, StoreInUseError) else {})})
    return json_response({"chains": docs, "default_chain": settings.chain,
                          "default_network": settings.network})


@router.get("/search", openapi_extra=INVESTIGATE)
async def search_route(
    request: Request, spec: Spec,
    q: Annotated[str, Query(min_length=1, max_length=200,
                            description="Address, txid, block height or hash, cluster:ID, "
                                        "tag label or actor.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Find blocks, transactions, addresses, clusters, tags and actors by one query text."""
    from cointrail.attribution.db import ATTRIBUTION_DB
    from cointrail.interfaces.api.graph import search

    root = settings_of(request).store

    def build() -> dict[str, Any]:
        try:
            with open_chain_store(request, spec) as store:
                hits = search(store, root, q, limit=limit)
        except NotFoundError:  # no chain data: tags and actors can still match
            hits = search(None, root, q, limit=limit)
        return {"query": q, "chain": spec.chain, "network": spec.network, "results": hits}

    return await cached_json(request, ("search", spec.key, q, limit),
                             [chain_db_path(request, spec), root / ATTRIBUTION_DB], build)


@router.get("/blocks/{ident}", openapi_extra=INVESTIGATE)
async def block_route(
    request: Request, spec: Spec,
    ident: Annotated[str, Path(max_length=64, description="Height or hash.")],
) -> Response:
    """A block by height or hash, with its txids."""
    from cointrail.store.queries import show_block

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            return show_block(store, ident)

    return await cached_json(request, ("block", spec.key, ident),
                             [chain_db_path(request, spec)], build)


@router.get("/txs/{txid}", openapi_extra=INVESTIGATE)
async def tx_route(request: Request, spec: Spec,
             txid: Annotated[str, Path(max_length=64)]) -> Response:
    """A transaction: inputs with value and address, outputs with their spender."""
    from cointrail.store.queries import show_tx

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            return show_tx(store, txid)

    return await cached_json(request, ("tx", spec.key, txid), [chain_db_path(request, spec)],
                             build)


@router.get("/txs/{txid}/neighbours", openapi_extra=INVESTIGATE)
async def tx_neighbours_route(request: Request, spec: Spec,
                        txid: Annotated[str, Path(max_length=64)],
                        limit: Limit = 100, cursor: Cursor = None) -> Response:
    """A page of a transaction's inputs and outputs with the transactions on either side."""
    from cointrail.interfaces.api.graph import tx_neighbours

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            return tx_neighbours(store, txid, limit=limit, cursor=cursor)

    return await cached_json(request, ("tx_neighbours", spec.key, txid, limit, cursor),
                             [chain_db_path(request, spec)], build)


@router.get("/addresses/{address}", openapi_extra=INVESTIGATE)
async def address_route(request: Request, spec: Spec,
                  address: Annotated[str, Path(max_length=128)]) -> Response:
    """An address: balance, received, sent, transaction count, first/last seen, cluster."""
    from cointrail.analysis.clustering.engine import address_cluster
    from cointrail.store.queries import show_address

    parse_address(address, spec)  # a wrong-chain address is bad input, whatever the store holds

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            doc = show_address(store, address)
            doc["cluster"] = address_cluster(store, doc["addr_id"])
            return doc

    return await cached_json(request, ("address", spec.key, address),
                             [chain_db_path(request, spec)], build)


@router.get("/addresses/{address}/neighbours", openapi_extra=INVESTIGATE)
async def address_neighbours_route(request: Request, spec: Spec,
                             address: Annotated[str, Path(max_length=128)],
                             limit: Limit = 50, cursor: Cursor = None) -> Response:
    """A page of an address's transactions, oldest first, with the counterparties of each."""
    from cointrail.interfaces.api.graph import address_neighbours

    parse_address(address, spec)

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            return address_neighbours(store, address, limit=limit, cursor=cursor)

    return await cached_json(request, ("address_neighbours", spec.key, address, limit, cursor),
                             [chain_db_path(request, spec)], build)


@router.get("/clusters/{cluster_id}", openapi_extra=INVESTIGATE)
async def cluster_route(request: Request, spec: Spec,
                  cluster_id: Annotated[int, Path(ge=0, le=2**40)],
                  offset: Annotated[int, Query(ge=0, le=2**40)] = 0,
                  limit: Limit = 100, as_of: AsOf = None) -> Response:
    """A cluster: size, a page of its addresses, balance, first/last seen, its tags, the links
    joining it by heuristic and what each heuristic is measured to get wrong."""
    from cointrail.analysis.clustering.engine import show_cluster
    from cointrail.attribution.clusters import cluster_tags
    from cointrail.attribution.db import ATTRIBUTION_DB

    root = settings_of(request).store

    def build() -> dict[str, Any]:
        with open_chain_store(request, spec) as store:
            doc = show_cluster(store, cluster_id, offset=offset, limit=limit, as_of=as_of)
            doc["attribution"] = cluster_tags(root, spec.chain, spec.network, doc["cluster_id"],
                                              chain_store=store, as_of=as_of)
            return doc

    return await cached_json(request, ("cluster", spec.key, cluster_id, offset, limit, as_of),
                             [chain_db_path(request, spec), root / ATTRIBUTION_DB], build)
