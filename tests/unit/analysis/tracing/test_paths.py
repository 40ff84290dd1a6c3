"""Paths on a hand-built flow graph (bitcoin regtest, the clustering tests' chain builder)::

    h0  coinbase: S 10 000, Z 1 000, G 2 001
    h1  tx1  S     -> A 6 000, B 3 000           fee 1 000
    h2  tx2  A     -> C 6 000
        tx3  B     -> C 1 000, D 1 900           fee 100
    h3  tx4  C, G  -> T 5 000, C 2 900           fee 101
        tx5  D     -> E 1 900
    h4  tx6  E     -> T 1 400, F 500

Edge amounts (haircut share of the payer's inputs on the payee's outputs): S→A 6 000, S→B
3 000, A→C 6 000, B→C 1 000, B→D 1 900, D→E 1 900, E→T 1 400, and in tx4 (line 8 001):
C→T ``6 000·5 000/8 001`` = 3 749 (the left-over satoshis go to the fee and C's change by
largest remainder), G→T ``2 001·5 000/8 001`` = 1 250 + 1 left over = 1 251.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cointrail.analysis.tracing.paths import find_paths
from cointrail.errors import InputError, NotFoundError
from cointrail.interfaces.cli.path_cmds import path_cmd
from cointrail.store.duck import ChainStore
from tests.unit.analysis.test_engine import ChainBuilder, TxRecord, make_store, pkh

S, Z, G, A, B, C, D, E, F, T = (pkh(f"paths-{n}") for n in "SZGABCDEFT")


def build() -> tuple[ChainBuilder, dict[str, TxRecord]]:
    b = ChainBuilder()
    b.block([(S, 10_000), (Z, 1_000), (G, 2_001)])
    txs = {"tx1": b.tx([S], [(A, 6_000), (B, 3_000)])}
    b.block([(pkh("paths-m1"), 50)])
    txs["tx2"] = b.tx([A], [(C, 6_000)])
    txs["tx3"] = b.tx([B], [(C, 1_000), (D, 1_900)])
    b.block([(pkh("paths-m2"), 50)])
    txs["tx4"] = b.tx([C, G], [(T, 5_000), (C, 2_900)])
    txs["tx5"] = b.tx([D], [(E, 1_900)])
    b.block([(pkh("paths-m3"), 50)])
    txs["tx6"] = b.tx([E], [(T, 1_400), (F, 500)])
    b.block([(pkh("paths-m4"), 50)])
    return b, txs


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[ChainStore, dict[str, TxRecord]]]:
    b, txs = build()
    store = make_store(tmp_path, b.raws)
    yield store, txs
    store.close()


NAMES = {a.text: n for n, a in zip("SZGABCDEFT", (S, Z, G, A, B, C, D, E, F, T), strict=True)}


def short(nodes: tuple[str, ...] | list[str]) -> str:
    return "".join(NAMES.get(n, "?") for n in nodes)


def test_k_shortest_with_amounts(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    result = find_paths(store, S.text, T.text, hops=6, k=3)
    assert result.found
    assert [(short(p.nodes), p.bottleneck) for p in result.paths] == [
        ("SACT", 3_749), ("SBCT", 1_000), ("SBDET", 1_400)]
    first = result.paths[0]
    assert [(e.amount, [(t.txid, t.height, t.amount) for t in e.txs]) for e in first.edges] == [
        (6_000, [(txs["tx1"].rpc_txid, 1, 6_000)]),
        (6_000, [(txs["tx2"].rpc_txid, 2, 6_000)]),
        (3_749, [(txs["tx4"].rpc_txid, 3, 3_749)]),
    ]
    assert all(p.time_ordered for p in result.paths)
    doc = result.to_dict()
    assert doc["found"] and doc["message"] is None
    assert doc["paths"][2]["edges"][2] == {
        "from": D.text, "to": E.text, "amount_sat": 1_900,
        "txs": [{"txid": txs["tx5"].rpc_txid, "height": 3, "amount_sat": 1_900}]}


def test_hop_bound_and_k(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    three = find_paths(store, S.text, T.text, hops=3, k=5)
    assert [short(p.nodes) for p in three.paths] == ["SACT", "SBCT"]
    one = find_paths(store, S.text, T.text, hops=6, k=1)
    assert [short(p.nodes) for p in one.paths] == ["SACT"]
    g = find_paths(store, G.text, T.text, hops=1)
    assert [(short(p.nodes), p.bottleneck) for p in g.paths] == [("GT", 1_251)]


def test_no_path_is_an_answer(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    near = find_paths(store, S.text, T.text, hops=2)
    assert not near.found and near.paths == ()
    assert near.to_dict()["message"] == f"no path from {S.text} to {T.text} within 2 hops"
    assert not find_paths(store, S.text, Z.text).found
    assert not find_paths(store, T.text, S.text).found  # money does not flow backward
    with pytest.raises(InputError):
        find_paths(store, S.text, S.text)
    with pytest.raises(InputError):
        find_paths(store, S.text, T.text, hops=0)
    with pytest.raises(NotFoundError):
        find_paths(store, S.text, pkh("paths-never").text)


def test_cluster_level(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    from cointrail.analysis.clustering.engine import Clusterer, cluster_view

    store, _ = chain
    Clusterer(store).run()  # tx4 joins C and G
    ids = {t: int(cluster_view(store).ids[i])
           for t, i in store.query("SELECT text, addr_id FROM addresses")}
    assert ids[C.text] == ids[G.text]
    result = find_paths(store, f"cluster:{ids[S.text]}", T.text, hops=3, k=3)
    assert result.level == "cluster"
    first = result.paths[0]
    assert first.nodes[2] == f"cluster:{ids[C.text]}"
    assert first.edges[2].amount == 3_749 + 1_251  # C and G are one node now
    assert result.record["clustering"]["height"] == 4


def test_cli(chain: tuple[ChainStore, dict[str, TxRecord]],
             monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = chain
    root = store.path.parent
    store.close()
    for key, value in {"COINTRAIL_STORE": str(root), "COINTRAIL_CHAIN": "bitcoin",
                       "COINTRAIL_NETWORK": "regtest"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("COINTRAIL_DEBUG", raising=False)
    app = typer.Typer()
    app.command("path")(path_cmd)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    res = runner.invoke(app, ["path", S.text, T.text, "--k", "2", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [short(p["nodes"]) for p in doc["paths"]] == ["SACT", "SBCT"]
    none = runner.invoke(app, ["path", S.text, T.text, "--hops", "2"])
    assert none.exit_code == 0 and "no path" in none.stdout
    human = runner.invoke(app, ["path", S.text, T.text])
    assert human.exit_code == 0 and "3749 sat" in human.stdout
    bad = runner.invoke(app, ["path", S.text, S.text])
    assert bad.exit_code != 0
