"""Traces on stores: hand-checked synthetic graphs for each model (splits, merges, an
address-reuse cycle, fees), stops and limits, and the real change chain of block 170.

The synthetic chain (bitcoin regtest, built with the clustering tests' chain builder)::

    h0  coinbase: S 10 000, T 6 000
    h1  tx1  S            -> A 6 000, B 3 000            fee 1 000   (split)
    h2  tx2  A, T         -> C 8 000, D 4 000            fee 0       (merge)
    h3  tx3  C            -> A 7 000, E 1 000            fee 0       (A again: A -> C -> A)
    h4  tx4  A (2nd coin) -> F 6 900                     fee 100
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cointrail import get_chain
from cointrail.analysis.tracing import Trace, TraceParams, parse_start, trace
from cointrail.analysis.tracing.models import TaintModel
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.errors import InputError, NotFoundError
from cointrail.interfaces.cli.trace_cmds import trace_app
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles
from tests.unit.analysis.test_engine import ChainBuilder, TxRecord, make_store, pkh

S, T, A, B, C, D, E, F = (pkh(f"trace-{n}") for n in "STABCDEF")
HAIRCUT, FIFO, POISON = TaintModel.HAIRCUT, TaintModel.FIFO, TaintModel.POISON


def build() -> tuple[ChainBuilder, dict[str, TxRecord]]:
    b = ChainBuilder()
    b.block([(S, 10_000), (T, 6_000)])
    txs = {"tx1": b.tx([S], [(A, 6_000), (B, 3_000)])}
    b.block([(pkh("trace-miner1"), 50)])
    txs["tx2"] = b.tx([A, T], [(C, 8_000), (D, 4_000)])
    b.block([(pkh("trace-miner2"), 50)])
    txs["tx3"] = b.tx([C], [(A, 7_000), (E, 1_000)])
    b.block([(pkh("trace-miner3"), 50)])
    txs["tx4"] = b.tx([A], [(F, 6_900)])
    b.block([(pkh("trace-miner4"), 50)])
    return b, txs


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[ChainStore, dict[str, TxRecord]]]:
    b, txs = build()
    store = make_store(tmp_path, b.raws)
    yield store, txs
    store.close()


def ends(result: Trace) -> dict[str, dict[str, int]]:
    """Endpoints as {category: {"address or fee@tx": amount}}, with names for addresses."""
    names = {a.text: n for n, a in zip("STABCDEF", (S, T, A, B, C, D, E, F), strict=True)}
    out: dict[str, dict[str, int]] = {}
    for e in result.endpoints:
        where = names[e.address] if e.address else f"fee@{e.height}"
        group = out.setdefault(e.category, {})
        group[where] = group.get(where, 0) + e.amount
    return out


def test_haircut_forward(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    result = trace(store, S.text, "forward", TraceParams(model=HAIRCUT))
    assert result.seed_amount == 10_000
    assert ends(result) == {"unspent": {"B": 3_000, "D": 2_000, "E": 500, "F": 3_450},
                            "fee": {"fee@1": 1_000, "fee@4": 50}}
    assert sum(e.amount for e in result.endpoints) == 10_000
    assert result.absorbed == 0
    hops = {(n.address, n.height): (n.hop, n.amount) for n in result.nodes}
    assert hops[(A.text, 3)] == (3, 3_500)  # A's second coin, via the cycle A -> C -> A


def test_fifo_forward(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    result = trace(store, S.text, "forward", TraceParams(model=FIFO))
    # tx2: A (6 000, tainted) comes first, so it fills C's first 6 000; D is clean
    assert ends(result) == {"unspent": {"B": 3_000, "F": 6_000}, "fee": {"fee@1": 1_000}}


def test_poison_forward(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    result = trace(store, S.text, "forward", TraceParams(model=POISON))
    assert ends(result) == {"unspent": {"B": 3_000, "D": 4_000, "E": 1_000, "F": 6_900},
                            "fee": {"fee@1": 1_000, "fee@4": 100}}


def test_address_reuse_cycle_counts_once(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    result = trace(store, A.text, "forward", TraceParams(model=HAIRCUT))
    assert result.seed_amount == 13_000  # both of A's coins
    # A's first coin reaches A's second through tx2 and tx3 (3 500): already fully tainted
    assert result.absorbed == 3_500
    assert ends(result) == {"unspent": {"D": 2_000, "E": 500, "F": 6_900},
                            "fee": {"fee@4": 100}}
    assert sum(e.amount for e in result.endpoints) + result.absorbed == 13_000


def test_backward_haircut_and_fifo(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    start = f"{txs['tx4'].rpc_txid}:0"
    haircut = trace(store, start, "backward", TraceParams(model=HAIRCUT))
    assert ends(haircut) == {"coinbase": {"S": 3_450, "T": 3_450}}
    fifo = trace(store, start, "backward", TraceParams(model=FIFO))
    assert ends(fifo) == {"coinbase": {"S": 6_000, "T": 900}}
    edge = next(e for e in fifo.edges if e.txid == txs["tx2"].rpc_txid
                and e.from_txid == txs["tx1"].rpc_txid)
    assert (edge.to_vout, edge.amount, edge.height) == (0, 6_000, 2)  # money-flow direction


def test_edges_conserve_per_tx(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    result = trace(store, S.text, "forward", TraceParams(model=HAIRCUT))
    into = {(n.txid, n.vout): n.amount for n in result.nodes}
    flows: dict[str, int] = {}
    for e in result.edges:
        flows[e.txid] = flows.get(e.txid, 0) + e.amount
        if e.to_vout is not None:
            assert into[(e.txid, e.to_vout)] >= e.amount
    assert flows == {txs["tx1"].rpc_txid: 10_000, txs["tx2"].rpc_txid: 6_000,
                     txs["tx3"].rpc_txid: 4_000, txs["tx4"].rpc_txid: 3_500}


def test_limits(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    one = trace(store, S.text, "forward", TraceParams(hops=1))
    assert ends(one) == {"hop_limit": {"A": 6_000}, "unspent": {"B": 3_000},
                         "fee": {"fee@1": 1_000}}
    small = trace(store, S.text, "forward", TraceParams(min_value=2_500))
    assert ends(small)["min_value"] == {"D": 2_000, "E": 500}
    window = trace(store, S.text, "forward", TraceParams(until=2))
    assert ends(window)["window"] == {"C": 4_000}
    assert window.record["parameters"]["until_height"] == 2


def test_coinjoin_stop_or_through(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    tx_id = store.query("SELECT tx_id FROM txs WHERE height = 2 AND NOT is_coinbase")[0][0]
    store.con.execute("INSERT INTO tx_labels VALUES (?, 2, 'coinjoin', 'test', 'test@1', '{}')",
                      [tx_id])
    stopped = trace(store, S.text, "forward", TraceParams(coinjoin="stop"))
    assert ends(stopped)["coinjoin"] == {"A": 6_000}
    assert stopped.coinjoins == (txs["tx2"].rpc_txid,)
    through = trace(store, S.text, "forward", TraceParams(coinjoin="through"))
    assert ends(through)["unspent"]["D"] == 2_000
    assert any(e.coinjoin for e in through.edges)


def test_stops_at_exchange_and_sanctioned(chain: tuple[ChainStore, dict[str, TxRecord]],
                                          tmp_path: Path) -> None:
    from cointrail.analysis.clustering.engine import Clusterer
    from cointrail.attribution import AttributionStore, import_tags

    store, _ = chain
    csv = tmp_path / "own.csv"
    csv.write_text("address,chain,network,label,category,confidence,source\n"
                   f"{T.text},bitcoin,regtest,Some Exchange,exchange,ownership,case notes\n")
    with AttributionStore(tmp_path) as attr:
        import_tags(attr, [csv])
        attr.con.execute(
            "INSERT INTO sanctions_entries (version_id, asset, chain, network, address,"
            " party_name, feature_type) VALUES (0, 'XBT', 'bitcoin', 'regtest', ?, 'Bad Actor',"
            " 'Digital Currency Address - XBT')", [B.text])
    direct = trace(store, S.text, "forward", TraceParams(clusters=False))
    assert ends(direct)["sanctioned"] == {"B": 3_000}
    assert direct.record["attribution"]["versions"]
    Clusterer(store).run()  # tx2 joins A and T: A is now in the exchange's cluster
    clustered = trace(store, S.text, "forward")
    assert ends(clustered) == {"exchange": {"A": 6_000}, "sanctioned": {"B": 3_000},
                               "fee": {"fee@1": 1_000}}
    hit = next(e for e in clustered.endpoints if e.category == "exchange")
    assert (hit.label, hit.via) == ("Some Exchange", T.text)
    assert clustered.record["clustering"]["height"] == 4


def test_start_forms(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    assert parse_start(txs["tx1"].rpc_txid).kind == "tx"
    assert parse_start(f"{txs['tx1'].rpc_txid}:1").kind == "outpoint"
    assert parse_start("cluster:3").cluster_id == 3
    by_tx = trace(store, txs["tx1"].rpc_txid, "forward")
    assert by_tx.seed_amount == 9_000
    by_outpoint = trace(store, f"{txs['tx1'].rpc_txid}:1", "forward")
    assert ends(by_outpoint) == {"unspent": {"B": 3_000}}
    with pytest.raises(NotFoundError):
        trace(store, "00" * 32, "forward")
    with pytest.raises(NotFoundError):
        trace(store, f"{txs['tx1'].rpc_txid}:9", "forward")
    with pytest.raises(InputError):
        trace(store, S.text, "sideways")
    with pytest.raises(InputError):
        TraceParams(coinjoin="maybe")


def test_cli_json(chain: tuple[ChainStore, dict[str, TxRecord]],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = chain
    root = store.path.parent
    store.close()
    for key, value in {"COINTRAIL_STORE": str(root), "COINTRAIL_CHAIN": "bitcoin",
                       "COINTRAIL_NETWORK": "regtest"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("COINTRAIL_DEBUG", raising=False)
    app = typer.Typer()
    app.add_typer(trace_app, name="trace")
    runner = CliRunner()
    result = runner.invoke(app, ["trace", "forward", S.text, "--model", "fifo", "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["endpoints"]["unspent"]["amount_sat"] == 9_000
    assert doc["record"]["parameters"]["model"] == "fifo"
    bad = runner.invoke(app, ["trace", "backward", S.text, "--model", "magic"])
    assert bad.exit_code == 2
    human = runner.invoke(app, ["trace", "forward", S.text, "--until", "2009-01-01"])
    assert human.exit_code == 0 and "window" in human.stdout


# --- real data -------------------------------------------------------------------------------

BLOCK_170_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


@pytest.fixture(scope="module")
def mainnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    root = tmp_path_factory.mktemp("mainnet")
    store = Store(root).chain(get_chain("bitcoin", "mainnet"))
    ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
    yield store
    store.close()


@pytest.mark.parametrize("model", list(TaintModel))
def test_block_170_change_chain(mainnet: ChainStore, model: TaintModel) -> None:
    """Satoshi's 40 BTC change from the first transfer, through the change chain to 248.

    Every transaction on the way is a plain payment + change with no fee, so all three models
    agree and every tainted output is tainted in full."""
    result = trace(mainnet, BLOCK_170_TX, "forward", TraceParams(model=model))
    got = sorted((n.height, n.vout, n.amount) for n in result.nodes)
    assert got == [
        (170, 0, 1_000_000_000), (170, 1, 4_000_000_000),  # to Hal Finney, change
        (181, 0, 1_000_000_000), (181, 1, 3_000_000_000),
        (182, 0, 100_000_000), (182, 1, 2_900_000_000),
        (183, 0, 100_000_000), (183, 1, 2_800_000_000),
        (187, 0, 100_000_000),
        (221, 0, 100_000_000),
        (248, 0, 1_000_000_000), (248, 1, 1_800_000_000),
    ]
    assert {n.height for n in result.nodes if not n.seed} == {181, 182, 183, 187, 221, 248}
    assert result.endpoint_totals() == {"unspent": 5_000_000_000}
    assert result.record["tip_height"] == 438
    assert result.record["tip_hash"] == (
        "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a")


def test_block_170_backward_reaches_coinbase(mainnet: ChainStore) -> None:
    result = trace(mainnet, f"{BLOCK_170_TX}:0", "backward", TraceParams(model=FIFO))
    (end,) = result.endpoints
    assert (end.category, end.height, end.amount) == ("coinbase", 9, 1_000_000_000)
