"""The memory-mapped spend graph (CSR): its arrays, its tip key, and traces over it identical
to the set-based SQL walk (the reference) on the synthetic chains and on mainnet 0-438, for
every model, forward and backward."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cointrail import get_chain
from cointrail.analysis.tracing import Trace, TraceParams, trace
from cointrail.analysis.tracing.models import TaintModel
from cointrail.analysis.tracing.spendgraph import (
    FORMAT,
    META,
    build_arrays,
    graph_dir,
    load,
    spend_graph,
)
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles
from tests.unit.analysis.test_engine import ChainBuilder, TxRecord, make_store
from tests.unit.analysis.tracing import test_paths, test_trace

DIRECTIONS = ("forward", "backward")


def plain(result: Trace) -> Trace:
    """The trace without the record's spend-graph key (the only part allowed to differ)."""
    record = {k: v for k, v in result.record.items() if k != "spend_graph"}
    return replace(result, record=record)


def both(store: ChainStore, start: str, direction: str, params: TraceParams) -> Trace:
    """Trace twice, by the CSR and by SQL; they must be identical. Returns the CSR trace."""
    csr = trace(store, start, direction, params)
    sql = trace(store, start, direction, params, spendgraph=False)
    assert csr.record["spend_graph"] is not None
    assert sql.record["spend_graph"] is None
    assert plain(csr) == plain(sql), (start, direction, params)
    assert csr.to_dict()["nodes"] == sql.to_dict()["nodes"]
    return csr


def starts_of(store: ChainStore) -> list[str]:
    """Every address, every transaction and every outpoint of a small store."""
    addresses = [str(t) for (t,) in store.query("SELECT text FROM addresses ORDER BY addr_id")]
    txids = [bytes(h)[::-1].hex() for (h,) in store.query("SELECT txid FROM txs ORDER BY tx_id")]
    outpoints = [f"{bytes(h)[::-1].hex()}:{n}" for h, n in store.query(
        "SELECT t.txid, o.n FROM outputs o JOIN txs t USING (tx_id) ORDER BY o.tx_id, o.n")]
    return addresses + txids + outpoints


def synthetic(builder: Callable[[], tuple[ChainBuilder, dict[str, TxRecord]]],
              tmp_path: Path) -> ChainStore:
    b, _ = builder()
    return make_store(tmp_path, b.raws)


@pytest.fixture(params=[test_trace.build, test_paths.build], ids=["trace", "paths"])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChainStore]:
    store = synthetic(request.param, tmp_path)
    yield store
    store.close()


VARIANTS = [
    TraceParams(),
    TraceParams(hops=1),
    TraceParams(hops=0),
    TraceParams(min_value=2_500),
    TraceParams(since=1, until=2),
]


@pytest.mark.parametrize("model", list(TaintModel))
def test_identical_on_synthetic_chains(chain: ChainStore, model: TaintModel) -> None:
    starts = starts_of(chain)
    txids = [s for s in starts if len(s) == 64]
    for direction in DIRECTIONS:
        for start in starts:
            both(chain, start, direction, TraceParams(model=model))
        for start in txids:
            for params in VARIANTS[1:]:
                both(chain, start, direction, replace(params, model=model))


def test_identical_with_coinjoin_labels(chain: ChainStore) -> None:
    tx_id = chain.query("SELECT min(tx_id) FROM txs WHERE height = 2 AND NOT is_coinbase")[0][0]
    chain.con.execute("INSERT INTO tx_labels VALUES (?, 2, 'coinjoin', 'test', 'test@1', '{}')",
                      [tx_id])
    met = 0
    for start in [s for s in starts_of(chain) if len(s) == 64]:
        for direction in DIRECTIONS:
            for mode in ("stop", "through"):
                result = both(chain, start, direction, TraceParams(coinjoin=mode))
                met += bool(result.coinjoins)
    assert met


def test_arrays_match_the_store(chain: ChainStore) -> None:
    graph = spend_graph(chain)
    assert graph is not None
    outputs = chain.query("SELECT tx_id, n, value, coalesce(addr_id, -1) FROM outputs"
                          " ORDER BY tx_id, n")
    assert graph.tx_of_rows(np.arange(len(outputs))).tolist() == [o[0] for o in outputs]
    assert graph.out_n.tolist() == [o[1] for o in outputs]
    assert graph.out_value.tolist() == [o[2] for o in outputs]
    assert graph.out_addr.tolist() == [o[3] for o in outputs]
    row = {(o[0], o[1]): r for r, o in enumerate(outputs)}
    spends = chain.query("SELECT tx_id, n, prev_tx_id, prev_n FROM inputs ORDER BY tx_id, n")
    assert graph.in_prev.tolist() == [row[(s[2], s[3])] for s in spends]
    spent = {row[(s[2], s[3])]: (s[0], s[1]) for s in spends}
    assert [(int(t), int(i)) for t, i in zip(graph.spent_tx, graph.spent_in, strict=True)] == [
        spent.get(r, (-1, -1)) for r in range(len(outputs))]
    assert graph.rows([(0, 0), (0, 99), (10**9, 0), (-1, 0)]).tolist() == [0, -1, -1, -1]
    assert isinstance(graph.out_value, np.memmap)
    texts = {int(a): str(t) for a, t in chain.query("SELECT addr_id, text FROM addresses")}
    assert graph.texts([*texts, -1, 10**9]) == texts
    for tx_id, txid in chain.query("SELECT tx_id, txid FROM txs"):
        assert tx_id in graph.find_txid(bytes(txid))
    assert graph.find_txid(b"\xff" * 32) == []


def test_keyed_by_tip_and_rebuilt_when_stale(chain: ChainStore) -> None:
    result = trace(chain, starts_of(chain)[0], "forward")
    tip = chain.tip()
    assert tip is not None
    key = {"format": FORMAT, "tip_height": tip.height, "tip_hash": tip.hash[::-1].hex()}
    assert result.record["spend_graph"] == key
    where = graph_dir(chain)
    assert where.name.endswith(".spendgraph") and where.parent == chain.path.parent
    meta: dict[str, Any] = json.loads((where / META).read_text())
    meta["tip_hash"] = "00" * 32  # as if the store had moved to another tip since
    (where / META).write_text(json.dumps(meta))
    from cointrail.analysis.tracing import spendgraph

    spendgraph._CACHE.clear()
    graph = spend_graph(chain)
    assert graph is not None and graph.key == key
    assert load(where).key == key
    assert spend_graph(chain, build_missing=True) is graph  # cached


def test_falls_back_to_sql_when_it_cannot_write(chain: ChainStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cointrail.analysis.tracing import spendgraph

    def refuse(*_: object, **__: object) -> Path:
        raise OSError("read-only")

    monkeypatch.setattr(spendgraph, "build", refuse)
    spendgraph._CACHE.clear()
    result = trace(chain, starts_of(chain)[0], "forward")
    assert result.record["spend_graph"] is None


def test_build_arrays_sorts_unordered_rows(chain: ChainStore) -> None:
    tip = chain.tip()
    assert tip is not None
    arrays = build_arrays(chain, tip)
    assert bool(np.all(np.diff(arrays["out_start"]) >= 0))
    assert arrays["out_start"][-1] == len(arrays["out_n"])
    assert arrays["in_start"][-1] == len(arrays["in_prev"])


# --- real data -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mainnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    root = tmp_path_factory.mktemp("mainnet")
    store = Store(root).chain(get_chain("bitcoin", "mainnet"))
    ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
    yield store
    store.close()


@pytest.mark.parametrize("model", list(TaintModel))
def test_identical_on_mainnet_0_438(mainnet: ChainStore, model: TaintModel) -> None:
    """Every transaction that spends or whose outputs are spent, the first 20 coinbases, every
    outpoint of the spending transactions and every address that ever spent: forward and
    backward."""
    rows = mainnet.query(
        "SELECT DISTINCT t.tx_id, t.txid FROM txs t WHERE NOT t.is_coinbase"
        " OR t.tx_id IN (SELECT prev_tx_id FROM inputs) ORDER BY t.tx_id")
    assert len(rows) == 8  # the spends of 0-438 (block 170 onwards) and what they spend
    starts = [bytes(h)[::-1].hex() for _, h in rows]
    starts += [bytes(h)[::-1].hex() for (h,) in mainnet.query(
        "SELECT txid FROM txs WHERE is_coinbase ORDER BY tx_id LIMIT 20")]
    starts += [f"{bytes(h)[::-1].hex()}:{n}" for h, n in mainnet.query(
        "SELECT t.txid, o.n FROM outputs o JOIN txs t USING (tx_id)"
        " WHERE NOT t.is_coinbase ORDER BY o.tx_id, o.n")]
    starts += [str(a) for (a,) in mainnet.query(
        "SELECT DISTINCT a.text FROM inputs i JOIN addresses a USING (addr_id) ORDER BY 1")]
    for start in starts:
        for direction in DIRECTIONS:
            both(mainnet, start, direction, TraceParams(model=model))
    both(mainnet, starts[0], "forward", TraceParams(model=model, hops=2))
