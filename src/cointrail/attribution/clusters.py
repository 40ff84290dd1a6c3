"""Tags rolled up to clusters: the tags of every address in an address's cluster.

A chain store with a clustering (`cointrail cluster`) gives every address a cluster id
(`cluster_view`). Tags are per address; here they roll up: an address's **cluster tags** are the
tags of the other addresses of its cluster, each with the address that carries it (`via`). When
a cluster's tags (its addresses' own tags included) name more than one actor, the cluster is
flagged with an **actor conflict** listing each actor and the addresses tagged with it: the
conflict is reported, never resolved by dropping a tag.

Set-based throughout: one semi-join of the wanted texts against the chain's ``addresses``
table gives address ids, a NumPy gather gives their cluster ids, and DuckDB joins pair screened
addresses with tagged addresses of the same cluster. No per-address Python loop. A chain store
is used only when it exists and holds a clustering; without any, nothing here runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cointrail.analysis.clustering.engine import ClusterView, cluster_view
from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore
from cointrail.chain.spec import ChainSpec, get_chain
from cointrail.errors import NotFoundError, StoreError
from cointrail.store.duck import ChainStore, Store

TAG_FIELDS = """t.label, t.category, t.abuse, t.actor, t.confidence, t.confidence_level,
    t.source, t.licence, t.lastmod, t.author, t.case_ref, t.tag_id, t.version_id,
    v.name AS list_name"""

_EMPTY_CLUSTERS = pa.schema([
    ("pos", pa.int64()), ("chain", pa.string()), ("network", pa.string()),
    ("cluster_id", pa.int64()), ("size", pa.int64()), ("as_of_height", pa.int64()),
])


@dataclass(frozen=True, slots=True)
class ClusterHits:
    """Arrow tables of the cluster roll-up of screened addresses (`pos` = input position)."""

    clusters: pa.Table  # pos, chain, network, cluster_id, size, as_of_height
    tags: pa.Table  # pos, chain, network, cluster_id, via, tag fields
    conflicts: pa.Table  # pos, chain, network, cluster_id, actor, addresses (list)
    sources: list[dict[str, Any]]  # per chain store: chain, network, height, or why not used


def _clustered_stores(root: Path) -> list[ChainSpec]:
    return Store(root).chains() if root.is_dir() else []


def _open_view(
    root: Path, spec: ChainSpec, sources: list[dict[str, Any]]
) -> tuple[ChainStore, ClusterView] | None:
    try:
        chain_store = Store(root).chain(spec, read_only=True)
    except (StoreError, duckdb.Error) as exc:  # in use by a writer, or open here otherwise
        sources.append({"chain": spec.chain, "network": spec.network, "used": False,
                        "reason": str(exc)})
        return None
    try:
        view = cluster_view(chain_store)
    except NotFoundError:
        chain_store.close()
        return None  # no clustering on this chain: nothing to roll up, nothing to report
    except BaseException:
        chain_store.close()
        raise
    sources.append({"chain": spec.chain, "network": spec.network, "used": True,
                    "as_of_height": view.height})
    return chain_store, view


def _addr_clusters(
    chain_store: ChainStore, view: ClusterView, texts: pa.Table
) -> pa.Table:
    """`texts` (column address) that occur on the chain, with addr_id and cluster_id."""
    con = chain_store.con
    con.register("_want", texts)
    try:
        found = con.execute(
            "SELECT a.text AS address, a.addr_id FROM addresses a "
            "WHERE a.text IN (SELECT address FROM _want)"
        ).to_arrow_table()
    finally:
        con.unregister("_want")
    ids = np.asarray(found.column("addr_id").to_numpy(zero_copy_only=False), dtype=np.int64)
    known = ids < len(view.ids)  # addresses first seen above the clustered height have none
    cluster = np.full(len(ids), -1, dtype=np.int64)
    cluster[known] = np.asarray(view.ids)[ids[known]]
    return found.append_column("cluster_id", pa.array(cluster, pa.int64())).filter(
        pa.array(known, pa.bool_())
    )


def _tagged_addresses(attr: AttributionStore, spec: ChainSpec) -> pa.Table:
    return attr.con.execute(
        "SELECT DISTINCT address FROM tags WHERE chain = ? AND network = ?",
        [spec.chain, spec.network],
    ).to_arrow_table()


def cluster_sizes(view: ClusterView, cluster_ids: np.ndarray) -> np.ndarray:
    """The size of each given cluster (aligned with `cluster_ids`), one pass over the view."""
    ids = np.asarray(view.ids)
    values, counts = np.unique(ids[np.isin(ids, np.unique(cluster_ids))], return_counts=True)
    return np.asarray(counts[np.searchsorted(values, cluster_ids)], dtype=np.int64)


def screen_clusters(attr: AttributionStore, inputs: pa.Table) -> ClusterHits:
    """The cluster, cluster tags and actor conflicts of each screened address (pos, address)."""
    sources: list[dict[str, Any]] = []
    clusters: list[pa.Table] = []
    tags: list[pa.Table] = []
    conflicts: list[pa.Table] = []
    con = attr.con
    for spec in _clustered_stores(attr.root):
        opened = _open_view(attr.root, spec, sources)
        if opened is None:
            continue
        chain_store, view = opened
        try:
            tagged = _tagged_addresses(attr, spec)
            wanted = pa.table({"address": pa.concat_arrays([
                inputs.column("address").combine_chunks(),
                tagged.column("address").combine_chunks().cast(pa.string()),
            ])})
            mapped = _addr_clusters(chain_store, view, wanted)
        finally:
            chain_store.close()
        con.register("_in", inputs)
        con.register("_mapped", mapped)
        try:
            screened = con.execute(
                "SELECT i.pos, m.cluster_id FROM _in i JOIN _mapped m USING (address) "
                "ORDER BY i.pos"
            ).to_arrow_table()
            if not screened.num_rows:
                continue
            sizes = cluster_sizes(view, screened.column("cluster_id").to_numpy())
            n = screened.num_rows
            clusters.append(pa.table({
                "pos": screened.column("pos"),
                "chain": pa.array([spec.chain] * n, pa.string()),
                "network": pa.array([spec.network] * n, pa.string()),
                "cluster_id": screened.column("cluster_id"),
                "size": pa.array(sizes, pa.int64()),
                "as_of_height": pa.array([view.height] * n, pa.int64()),
            }))
            con.register("_screened", screened)
            params = [spec.chain, spec.network]
            tags.append(con.execute(f"""
                SELECT s.pos, t.chain, t.network, s.cluster_id, t.address AS via, {TAG_FIELDS}
                FROM _screened s
                JOIN _mapped m ON m.cluster_id = s.cluster_id
                JOIN _in i ON i.pos = s.pos
                JOIN tags t ON t.address = m.address AND t.chain = ? AND t.network = ?
                JOIN list_versions v ON v.version_id = t.version_id
                WHERE m.address <> i.address
                ORDER BY s.pos, t.tag_id
            """, params).to_arrow_table())
            conflicts.append(con.execute("""
                WITH actors AS (
                    SELECT s.pos, s.cluster_id, t.actor, list(DISTINCT t.address) AS addresses
                    FROM _screened s
                    JOIN _mapped m ON m.cluster_id = s.cluster_id
                    JOIN tags t ON t.address = m.address AND t.chain = ? AND t.network = ?
                    WHERE t.actor IS NOT NULL
                    GROUP BY s.pos, s.cluster_id, t.actor
                )
                SELECT pos, ? AS chain, ? AS network, cluster_id, actor,
                       list_sort(addresses) AS addresses
                FROM actors
                WHERE pos IN (SELECT pos FROM actors GROUP BY pos HAVING count(*) > 1)
                ORDER BY pos, actor
            """, params + params).to_arrow_table())
        finally:
            for name in ("_in", "_mapped", "_screened"):
                with contextlib.suppress(duckdb.Error):
                    con.unregister(name)
    return ClusterHits(
        pa.concat_tables(clusters) if clusters else _EMPTY_CLUSTERS.empty_table(),
        pa.concat_tables(tags) if tags else pa.table({"pos": pa.array([], pa.int64())}),
        pa.concat_tables(conflicts) if conflicts else pa.table({"pos": pa.array([], pa.int64())}),
        sources,
    )


def cluster_tags(
    store_root: Path | str,
    chain: str,
    network: str,
    cluster_id: int,
    *,
    chain_store: ChainStore | None = None,
    as_of: int | None = None,
) -> dict[str, Any]:
    """The tags of every address of one cluster, and its actor conflict, for ``show cluster``.

    `cluster_id` may be an id that has since merged into an older cluster: the merge is
    followed. `as_of` reads the clustering as of that height, like ``show cluster --as-of``.
    Pass an open `chain_store` to reuse it; without attribution data the tag list is empty.
    Returns ``{"cluster_id", "tags": [{address, label, ...}], "actors", "actor_conflict"}``;
    ``actor_conflict`` is None unless the tags name two or more actors.
    """
    root = Path(store_root)
    empty: dict[str, Any] = {"cluster_id": cluster_id, "tags": [], "actors": [],
                             "actor_conflict": None}
    if not (root / ATTRIBUTION_DB).exists():
        return empty
    spec = get_chain(chain, network)
    own = chain_store is None
    cs = Store(root).chain(spec, read_only=True) if chain_store is None else chain_store
    try:
        view = cluster_view(cs, as_of)
        current = view.of(cluster_id)
        if current is None:
            raise NotFoundError(f"no cluster {cluster_id} in the {spec.key} clustering")
        with AttributionStore(root, read_only=True) as attr:
            mapped = _addr_clusters(cs, view, _tagged_addresses(attr, spec))
            members = mapped.filter(pc.equal(mapped.column("cluster_id"), current))
            attr.con.register("_members", members)
            try:
                cur = attr.con.execute(f"""
                    SELECT t.address, {TAG_FIELDS}
                    FROM _members m
                    JOIN tags t ON t.address = m.address AND t.chain = ? AND t.network = ?
                    JOIN list_versions v ON v.version_id = t.version_id
                    ORDER BY t.address, t.tag_id
                """, [spec.chain, spec.network])
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
            finally:
                attr.con.unregister("_members")
    finally:
        if own:
            cs.close()
    by_actor: dict[str, set[str]] = {}
    for row in rows:
        if row["actor"]:
            by_actor.setdefault(row["actor"], set()).add(row["address"])
    return {
        "cluster_id": current,
        "tags": rows,
        "actors": sorted(by_actor),
        "actor_conflict": [{"actor": a, "addresses": sorted(by_actor[a])}
                           for a in sorted(by_actor)] if len(by_actor) > 1 else None,
    }
