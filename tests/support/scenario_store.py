"""A scenario acted out on a fresh ``litecoind -regtest`` and synced into a store, for the
integration tests that cluster one chain several ways (PayJoins, Stonewalls)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cointrail.analysis.clustering.engine import ClusterConfig, Clusterer, cluster_view
from cointrail.chain.rpc import RpcClient
from cointrail.store.duck import ChainStore, open_chain
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import sync_rpc
from tests.support.litecoind import LitecoindNode
from tests.support.scenario import NODE_ARGS, ScenarioFacts, build_scenario

CHAIN, NETWORK = "litecoin", "regtest"
DB = f"{CHAIN}-{NETWORK}.duckdb"


@dataclass
class ScenarioStore:
    """The scenario's facts and a synced, unclustered store (`pristine`) to copy from."""

    facts: ScenarioFacts
    root: Path
    pristine: Path

    def clustered(self, name: str, config: ClusterConfig) -> ChainStore:
        """A copy of the pristine store named `name`, clustered with `config` (open: close it)."""
        target = self.root / name
        target.mkdir()
        shutil.copy(self.pristine / DB, target / DB)
        store = open_chain(target, CHAIN, NETWORK)
        Clusterer(store, config).run()
        return store


def build_scenario_store(root: Path, seed: int, scale: int, **shares: Any) -> ScenarioStore:
    """Act out `build_scenario(node, seed, scale, **shares)` on a fresh node and sync it into
    ``root / "pristine"``."""
    with LitecoindNode(extra_args=NODE_ARGS) as node:
        facts = build_scenario(node, seed, scale, **shares)
        url = f"http://{node.rpc_user}:{node.rpc_password}@127.0.0.1:{node.rpc_port}/"
        with open_chain(root / "pristine", CHAIN, NETWORK) as store, RpcClient(url) as client:
            sync_rpc(UtxoIngestor(store), client)
    return ScenarioStore(facts, root, root / "pristine")


def clusters_of(store: ChainStore) -> list[list[str]]:
    """The store's clustering as sorted lists of address texts, in a canonical order."""
    view = cluster_view(store)
    texts = dict(store.query("SELECT addr_id, text FROM addresses"))
    groups: dict[int, set[str]] = {}
    for addr_id, cluster in enumerate(view.ids.tolist()):
        groups.setdefault(int(cluster), set()).add(str(texts[addr_id]))
    return sorted(map(sorted, groups.values()))


def partition_of(keys: Mapping[str, object]) -> list[list[str]]:
    """A partition given as address text -> key, in `clusters_of`'s form."""
    groups: dict[object, set[str]] = {}
    for text, key in keys.items():
        groups.setdefault(key, set()).add(text)
    return sorted(map(sorted, groups.values()))
