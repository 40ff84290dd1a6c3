"""The queries a case records, each re-runnable from its `request` dict alone.

One function per finding kind turns a request into the result dict the CLI prints with
``--json``; `--case` on the query commands records that dict, and replay calls the same
function, so a replay on an unchanged store yields the same bytes. Requests hold every input
explicitly (stop categories, rule names, thresholds, the price table's SHA-256), never a
default that a later release could change.

What is hashed: the whole result dict, as canonical JSON. None of the results holds a clock
reading: the trace and path records name the store tip (height and block hash), the spend
graph key (format, tip height and hash; its ``build_seconds`` stays in the graph's own
``meta.json``), the attribution list versions and the clustering height, all of which are
store state. The records also hold ``cointrail_version``: a replay under another release
reports that field as a difference, on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from cointrail.cases.canonical import sha256_hex
from cointrail.errors import InputError, StoreError

Request = Mapping[str, Any]


def _chain_store(store_root: Path, request: Request) -> Any:
    from cointrail.chain.spec import get_chain
    from cointrail.store.duck import Store

    return Store(store_root).chain(get_chain(request["chain"], request["network"]),
                                   read_only=True)


def _bound(value: int | str | None) -> int | date | None:
    if value is None or isinstance(value, int):
        return value
    return date.fromisoformat(value)


def bound_for_request(value: int | date | None) -> int | str | None:
    """A --since/--until bound as the request keeps it: a height or an ISO date."""
    return value.isoformat() if isinstance(value, date) else value


def run_trace(store_root: Path, request: Request) -> dict[str, Any]:
    from cointrail.analysis.tracing import TaintModel, TraceParams, trace

    params = TraceParams(
        model=TaintModel(request["model"]), hops=int(request["hops"]),
        min_value=int(request["min_value"]), since=_bound(request["since"]),
        until=_bound(request["until"]), stop_categories=frozenset(request["stop_at"]),
        stop_sanctioned=bool(request["stop_sanctioned"]),
        coinjoin=request["coinjoin"], clusters=bool(request["clusters"]))
    with _chain_store(store_root, request) as store:
        result: dict[str, Any] = trace(store, request["start"], request["direction"],
                                       params).to_dict()
    return result


def run_path(store_root: Path, request: Request) -> dict[str, Any]:
    from cointrail.analysis.tracing.paths import find_paths

    with _chain_store(store_root, request) as store:
        result: dict[str, Any] = find_paths(store, request["from"], request["to"],
                                            hops=int(request["hops"]),
                                            k=int(request["k"])).to_dict()
    return result


def run_exposure(store_root: Path, request: Request) -> dict[str, Any]:
    from cointrail.analysis.risk.exposure import exposure

    with _chain_store(store_root, request) as store:
        result: dict[str, Any] = exposure(store, request["subject"],
                                          direction=request["direction"],
                                          hops=int(request["hops"])).to_dict()
    return result


def screening_doc(result: Any) -> dict[str, Any]:
    """The document ``cointrail screen --json`` prints for a ScreenResult."""
    rows = result.to_dicts()
    return {"as_of": result.as_of, "screened": len(rows),
            "sanctioned": sum(1 for r in rows if r["sanctioned"]),
            "tagged": sum(1 for r in rows if r["tags"]),
            "actor_conflicts": sum(1 for r in rows if r["actor_conflict"]),
            "clusterings": result.clusterings, "addresses": rows}


def run_screening(store_root: Path, request: Request) -> dict[str, Any]:
    from cointrail.attribution import AttributionStore, screen

    with AttributionStore(store_root, read_only=True) as store:
        return screening_doc(screen(store, list(request["addresses"]),
                                    as_of=request["as_of"]))


def flags_rules(request: Request) -> list[Any]:
    """The rule instances a flags request names (structuring with its threshold and prices)."""
    from cointrail.analysis.risk.rules import PriceTable, Structuring, default_rules

    structuring = None
    spec = request.get("structuring")
    if spec is not None:
        prices = None
        table = spec.get("price_table")
        if table is not None:
            path = Path(table["path"])
            try:
                digest = sha256_hex(path.read_bytes())
            except OSError as exc:
                raise InputError(f"the price table {path} of this flags query is not readable "
                                 f"({exc.strerror}); restore it to replay") from exc
            if digest != table["sha256"]:
                raise StoreError(f"the price table {path} changed since the query "
                                 f"(SHA-256 {digest}, recorded {table['sha256']})")
            prices = PriceTable.from_csv(path, spec.get("currency", ""))
        structuring = Structuring(threshold=spec["threshold"], prices=prices)
    return default_rules(list(request["rules"]), structuring=structuring)


def flags_doc(target: Any, chosen: list[Any], hits: list[Any]) -> dict[str, Any]:
    """The document ``cointrail flags --json`` prints."""
    return {"subject": target.text, "kind": target.kind,
            "rules": {r.name: {"version": r.version, "params": r.params()} for r in chosen},
            "hits": [h.to_dict() for h in hits]}


def run_flags(store_root: Path, request: Request) -> dict[str, Any]:
    from cointrail.analysis.risk.rules import evaluate, resolve_subject

    chosen = flags_rules(request)
    with _chain_store(store_root, request) as store:
        target = resolve_subject(store, request["subject"])
        return flags_doc(target, chosen, evaluate(store, target, chosen))


def clustered_height(store: Any) -> int | None:
    """The height the store's clustering reaches (None before the first `cluster` run): what
    a cluster or explain finding pins as its ``as_of`` so that it replays exactly while the
    clustering moves on."""
    value = store.state().get("cluster_height")
    return None if value is None or int(value) < 0 else int(value)


def run_cluster(store_root: Path, request: Request) -> dict[str, Any]:
    """``show cluster ID`` as of the pinned height: members page, balance, tags."""
    from cointrail.analysis.clustering.engine import show_cluster
    from cointrail.attribution.clusters import cluster_tags

    as_of = request["as_of"]
    with _chain_store(store_root, request) as store:
        doc = show_cluster(store, int(request["cluster_id"]), offset=int(request["offset"]),
                           limit=int(request["limit"]), as_of=as_of)
        doc["attribution"] = cluster_tags(store_root, store.spec.chain, store.spec.network,
                                          doc["cluster_id"], chain_store=store, as_of=as_of)
    return doc


def run_explain(store_root: Path, request: Request) -> dict[str, Any]:
    """``explain A B`` as of the pinned height: the links joining two addresses, or not."""
    from cointrail.analysis.clustering.engine import explain

    with _chain_store(store_root, request) as store:
        result: dict[str, Any] = explain(store, request["a"], request["b"],
                                         as_of=request["as_of"])
    return result


RUNNERS: dict[str, Callable[[Path, Request], dict[str, Any]]] = {
    "trace": run_trace, "path": run_path, "exposure": run_exposure,
    "screening": run_screening, "flags": run_flags, "cluster": run_cluster,
    "explain": run_explain,
}
