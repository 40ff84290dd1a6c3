"""Where a trace stops by attribution: outputs paid to a service or a sanctioned entity.

Services are the places where fiat identity exists (an exchange knows its customer), so a trace
ends there and reports it; sanctioned entities end it too. The lists come from the attribution
database beside the chain store (``<store>/attribution.duckdb``) when there is one: tags of
this chain and network whose list version is active and whose category is a stop category, and
every address any imported sanctions list version names (listed once, reported always). With a
clustering, a stop also applies to every address of a tagged address's cluster (``via`` names
the tagged address). Lookups are one join per trace and a dict/NumPy gather per hop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cointrail.errors import NotFoundError
from cointrail.store.duck import ChainStore

SERVICE_CATEGORIES: frozenset[str] = frozenset({
    "service", "exchange", "wallet_service", "escrow_wallet", "ico_wallet", "payment_processor",
    "atm", "market", "gambling", "shop", "mining_service", "hosting", "vpn", "faucet",
})
"""Default stop categories: GraphSense taxonomy services that hold customer identity
(mixing services are left out: a trace goes through them by its model)."""

SANCTIONED = "sanctioned"


@dataclass(frozen=True, slots=True)
class Stop:
    category: str
    label: str | None
    via: str | None = None  # the tagged address, when the stop comes from its cluster


@dataclass(frozen=True, slots=True)
class StopList:
    """Stops by address id and, with a clustering, by cluster id."""

    by_addr: dict[int, Stop]
    by_cluster: dict[int, Stop]
    cluster_ids: np.ndarray | None
    record: dict[str, Any]

    def lookup(self, addr_ids: Iterable[int]) -> dict[int, Stop]:
        out: dict[int, Stop] = {}
        ids = np.asarray(self.cluster_ids) if self.cluster_ids is not None else None
        for a in addr_ids:
            hit = self.by_addr.get(a)
            if hit is None and ids is not None and 0 <= a < len(ids):
                hit = self.by_cluster.get(int(ids[a]))
            if hit is not None:
                out[a] = hit
        return out


EMPTY = StopList({}, {}, None, {"attribution": None, "clustering": None})


def load_stops(
    store: ChainStore,
    categories: frozenset[str],
    *,
    sanctioned: bool = True,
    clusters: bool = True,
    attribution_root: Path | None = None,
) -> StopList:
    """The stop list for `store`'s chain from the attribution database in `attribution_root`
    (default: the store directory); empty when there is none."""
    from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore

    root = store.path.parent if attribution_root is None else Path(attribution_root)
    record: dict[str, Any] = {"attribution": None, "clustering": None}
    if not (root / ATTRIBUTION_DB).exists():
        return StopList({}, {}, None, record)
    spec = store.spec
    with AttributionStore(root, read_only=True) as attr:
        rows: list[tuple[str, str, str | None]] = []
        if categories:
            rows += [(str(a), str(c), lbl) for a, c, lbl in attr.query(
                "SELECT t.address, t.category, t.label FROM tags t"
                " JOIN list_versions v USING (version_id)"
                " WHERE t.chain = ? AND t.network = ? AND v.active"
                " AND t.category IN (SELECT unnest(?)) ORDER BY t.tag_id",
                [spec.chain, spec.network, sorted(categories)])]
        if sanctioned:
            rows += [(str(a), SANCTIONED, lbl) for a, lbl in attr.query(
                "SELECT address, party_name FROM sanctions_entries"
                " WHERE chain = ? AND network = ? ORDER BY version_id",
                [spec.chain, spec.network])]
            rows += [(str(a), SANCTIONED, lbl) for a, lbl in attr.query(
                "SELECT t.address, t.label FROM tags t JOIN list_versions v USING (version_id)"
                " WHERE t.chain = ? AND t.network = ? AND v.active AND t.abuse = 'sanction'"
                " ORDER BY t.tag_id", [spec.chain, spec.network])]
        versions = attr.query(
            "SELECT version_id, kind, name, published, sha256 FROM list_versions"
            " WHERE active ORDER BY version_id")
    record["attribution"] = {"versions": [
        {"version_id": int(v), "kind": k, "name": n, "published": p, "sha256": h}
        for v, k, n, p, h in versions
    ]}
    texts = sorted({r[0] for r in rows})
    ids: dict[str, int] = {}
    if texts:
        store.con.register("_trace_stop_texts", pa.table({"text": pa.array(texts, pa.string())}))
        try:
            ids = {str(t): int(i) for t, i in store.query(
                "SELECT text, addr_id FROM addresses"
                " WHERE text IN (SELECT text FROM _trace_stop_texts)")}
        finally:
            store.con.unregister("_trace_stop_texts")
    by_addr: dict[int, Stop] = {}
    for text, category, label in rows:
        if text not in ids:
            continue
        current = by_addr.get(ids[text])
        if current is None or (category == SANCTIONED and current.category != SANCTIONED):
            by_addr[ids[text]] = Stop(category, label)
    cluster_ids = None
    by_cluster: dict[int, Stop] = {}
    if clusters and by_addr:
        from cointrail.analysis.clustering.engine import cluster_view

        try:
            view = cluster_view(store)
        except NotFoundError:
            view = None
        if view is not None:
            cluster_ids = np.asarray(view.ids)
            record["clustering"] = {
                "height": view.height,
                "config_hash": store.state().get("cluster_config_hash"),
            }
            text_of = {i: t for t, i in ids.items()}
            for a in sorted(by_addr):
                if a < len(cluster_ids):
                    stop = by_addr[a]
                    c = int(cluster_ids[a])
                    if c not in by_cluster or stop.category == SANCTIONED:
                        by_cluster[c] = Stop(stop.category, stop.label, text_of[a])
    return StopList(by_addr, by_cluster, cluster_ids, record)
