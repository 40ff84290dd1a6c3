"""Tags roll up to clusters: a real regtest store built and clustered here, own tags on its
addresses, then screening and `cluster_tags` read the cluster, its tags and actor conflicts.

The chain (tests/unit/analysis/test_engine.py's builder): block 0 pays p, q, r, s; block 1
spends {p, q} together to t and {r, s} together to u, so common-input ownership makes the
clusters {p, q} and {r, s}; t and u stay alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.analysis.clustering.engine import Clusterer
from cointrail.attribution import AttributionStore, import_tags, screen
from cointrail.attribution.clusters import cluster_tags
from cointrail.interfaces.cli.main import app
from cointrail.store.duck import Store
from tests.unit.analysis.test_engine import COIN, SPEC, ChainBuilder, ingest, pkh

P, Q, R, S, T, U = (pkh(n) for n in ("tag-p", "tag-q", "tag-r", "tag-s", "tag-t", "tag-u"))
MAINNET_BTC = "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"


def build_chain() -> ChainBuilder:
    b = ChainBuilder()
    b.block([(a, 5 * COIN) for a in (P, Q, R, S)])
    b.tx([P, Q], [(T, 10 * COIN - 1_000)])
    b.tx([R, S], [(U, 10 * COIN - 1_000)])
    b.block([(pkh("tag-miner"), 50 * COIN)])
    return b


def own_tags(root: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{P.text},bitcoin,regtest,Exchange A hot wallet,exchange,alpha,forensic,case notes",
        f"{Q.text},bitcoin,regtest,Market B deposit,market,beta,forensic,case notes",
        f"{R.text},bitcoin,regtest,Mixer C input,mixing_service,gamma,forensic,case notes",
        f"{MAINNET_BTC},bitcoin,mainnet,same text elsewhere,exchange,delta,forensic,notes",
    ]
    path = folder / "tags.csv"
    path.write_text("address,chain,network,label,category,actor,confidence,source\n"
                    + "\n".join(rows) + "\n")
    with AttributionStore(root) as store:
        assert import_tags(store, [path]).totals()["records"] == 4


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clustered")
    with Store(root).chain(SPEC) as chain_store:
        ingest(chain_store, build_chain().raws)
        Clusterer(chain_store).run()
    own_tags(root, tmp_path_factory.mktemp("tags"))
    return root


def addr_ids(root: Path) -> dict[str, int]:
    with Store(root).chain(SPEC, read_only=True) as chain_store:
        return {str(t): int(i) for t, i in chain_store.query("SELECT text, addr_id FROM addresses")}


def test_screening_rolls_tags_up_to_the_cluster_and_flags_conflicts(root: Path) -> None:
    ids = addr_ids(root)
    with AttributionStore(root, read_only=True) as store:
        result = screen(store, [P.text, S.text, T.text, MAINNET_BTC])
        rows = result.to_dicts()
    p, s, t, elsewhere = rows

    assert p["cluster"] == {"chain": "bitcoin", "network": "regtest",
                            "cluster_id": ids[P.text], "size": 2, "as_of_height": 1}
    assert [(c["via"], c["label"], c["actor"]) for c in p["cluster_tags"]] == [
        (Q.text, "Market B deposit", "beta")]
    assert [x["label"] for x in p["tags"]] == ["Exchange A hot wallet"]
    assert p["actor_conflict"] == [
        {"chain": "bitcoin", "network": "regtest", "cluster_id": ids[P.text], "actor": "alpha",
         "addresses": [P.text]},
        {"chain": "bitcoin", "network": "regtest", "cluster_id": ids[P.text], "actor": "beta",
         "addresses": [Q.text]},
    ]
    assert p["cluster_categories"] == ["market"]

    # s carries no tag itself: its cluster mate r's tag reaches it, one actor, no conflict
    assert s["tags"] == []
    assert s["cluster"]["cluster_id"] == ids[R.text]
    assert s["cluster"]["size"] == 2
    assert [(c["via"], c["label"], c["actor"]) for c in s["cluster_tags"]] == [
        (R.text, "Mixer C input", "gamma")]
    assert s["actor_conflict"] is None

    assert t["cluster"]["size"] == 1 and t["cluster_tags"] == [] and t["actor_conflict"] is None
    # an address that never appeared on the clustered chain has no cluster, only its own tags
    assert elsewhere["cluster"] is None and elsewhere["cluster_tags"] == []
    assert [x["actor"] for x in elsewhere["tags"]] == ["delta"]
    assert result.clusterings == [{"chain": "bitcoin", "network": "regtest", "used": True,
                                   "as_of_height": 1}]


def test_cluster_tags_for_show_cluster(root: Path) -> None:
    ids = addr_ids(root)
    got = cluster_tags(root, "bitcoin", "regtest", ids[Q.text])  # q's id: merged into p's
    assert got["cluster_id"] == ids[P.text]
    assert [(x["address"], x["actor"]) for x in got["tags"]] == sorted(
        [(P.text, "alpha"), (Q.text, "beta")])
    assert got["actors"] == ["alpha", "beta"]
    assert got["actor_conflict"] == [{"actor": "alpha", "addresses": [P.text]},
                                     {"actor": "beta", "addresses": [Q.text]}]
    single = cluster_tags(root, "bitcoin", "regtest", ids[S.text])
    assert [x["address"] for x in single["tags"]] == [R.text]
    assert single["actor_conflict"] is None
    alone = cluster_tags(root, "bitcoin", "regtest", ids[T.text])
    assert alone["tags"] == [] and alone["actor_conflict"] is None
    # as of block 0 nothing was spent together yet: q is its own cluster, no conflict
    before = cluster_tags(root, "bitcoin", "regtest", ids[Q.text], as_of=0)
    assert before["cluster_id"] == ids[Q.text]
    assert [(x["address"], x["actor"]) for x in before["tags"]] == [(Q.text, "beta")]
    assert before["actor_conflict"] is None


def test_show_cluster_text_names_the_actors_and_the_conflict(root: Path) -> None:
    ids = addr_ids(root)
    out = CliRunner().invoke(app, ["--store", str(root), "--network", "regtest", "show",
                                   "cluster", str(ids[Q.text])])
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "tags: 2 on its addresses, naming alpha, beta:" in text
    assert "conflicting actor alpha: tagged on 1 address(es) of this cluster" in text
    assert "conflicting actor beta: tagged on 1 address(es) of this cluster" in text


def test_screen_cli_json_reports_cluster_and_conflict(root: Path) -> None:
    out = CliRunner().invoke(app, ["--store", str(root), "screen", P.text, U.text, "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["actor_conflicts"] == 1
    p, u = doc["addresses"]
    assert {c["actor"] for c in p["actor_conflict"]} == {"alpha", "beta"}
    assert u["cluster"]["size"] == 1 and u["actor_conflict"] is None
    human = CliRunner().invoke(app, ["--store", str(root), "screen", P.text])
    assert "ACTOR CONFLICT" in human.stdout


def test_a_chain_without_clustering_adds_no_cluster(tmp_path: Path) -> None:
    with Store(tmp_path).chain(SPEC) as chain_store:
        ingest(chain_store, build_chain().raws)
    own_tags(tmp_path, tmp_path / "tags")
    with AttributionStore(tmp_path, read_only=True) as store:
        result = screen(store, [P.text, S.text])
    rows = result.to_dicts()
    assert [r["cluster"] for r in rows] == [None, None]
    assert [r["cluster_tags"] for r in rows] == [[], []]
    assert [len(r["tags"]) for r in rows] == [1, 0]
    assert result.clusterings == []
