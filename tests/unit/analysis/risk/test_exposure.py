"""Exposure on the paths tests' hand-built chain, with G tagged an exchange and B a mixer::

    h0  coinbase: S 10 000, Z 1 000, G 2 001
    h1  tx1  S     -> A 6 000, B 3 000           fee 1 000
    h2  tx2  A     -> C 6 000
        tx3  B     -> C 1 000, D 1 900           fee 100
    h3  tx4  C, G  -> T 5 000, C 2 900           fee 101
        tx5  D     -> E 1 900
    h4  tx6  E     -> T 1 400, F 500

Incoming to T (6 400): tx4:0's 5 000 splits over tx4's inputs 6 000 / 2 001 (line 8 001):
C 3 749 + 1 left over by largest remainder = 3 750, G 1 250 — the exchange, direct (hop 1);
C's 3 750 goes back through A to S's coinbase (hop 3, indirect). tx6:0's 1 400 goes back
through E and D to B's coin: the mixer, indirect (hop 3).

Outgoing from S (10 000): B 3 000 (the mixer, direct), fee 1 000 (direct); A's 6 000 goes
through C into tx4, where it splits T 3 749, C 2 175, fee 76 (indirect).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cointrail.analysis.risk.exposure import exposure
from cointrail.errors import InputError
from cointrail.interfaces.cli.path_cmds import exposure_cmd
from cointrail.store.duck import ChainStore
from tests.unit.analysis.test_engine import TxRecord, make_store
from tests.unit.analysis.tracing.test_paths import B, C, D, E, G, S, T, build


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[ChainStore, dict[str, TxRecord]]]:
    from cointrail.attribution import AttributionStore, import_tags

    b, txs = build()
    store = make_store(tmp_path, b.raws)
    csv = tmp_path / "own.csv"
    csv.write_text("address,chain,network,label,category,confidence,source\n"
                   f"{G.text},bitcoin,regtest,Some Exchange,exchange,ownership,case notes\n"
                   f"{B.text},bitcoin,regtest,Some Mixer,mixing_service,ownership,case notes\n")
    with AttributionStore(tmp_path) as attr:
        import_tags(attr, [csv])
    yield store, txs
    store.close()


def split(part: dict[str, object]) -> dict[str, tuple[int, int, int]]:
    cats = part["categories"]
    assert isinstance(cats, dict)
    return {c: (g["amount_sat"], g["direct_sat"], g["indirect_sat"]) for c, g in cats.items()}


def test_incoming(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    result = exposure(store, T.text, direction="in", hops=6)
    assert result.outgoing is None
    inc = result.incoming
    assert inc is not None and inc["total_sat"] == 6_400
    assert split(inc) == {"exchange": (1_250, 1_250, 0), "mixing_service": (1_400, 0, 1_400),
                          "coinbase": (3_750, 0, 3_750)}
    assert list(inc["categories"])[:2] == ["mixing_service", "exchange"]  # attribution first
    ex = inc["categories"]["exchange"]
    assert ex["kind"] == "attribution" and ex["amount_share"] == 1_250 / 6_400
    assert inc["categories"]["coinbase"]["kind"] == "chain"
    (hit,) = ex["endpoints"]
    assert (hit["address"], hit["label"], hit["hop"], hit["direct"]) == (
        G.text, "Some Exchange", 1, True)
    (mix,) = inc["categories"]["mixing_service"]["endpoints"]
    assert [p["address"] for p in mix["path"]] == [T.text, E.text, D.text, B.text]
    assert [p["txid"] for p in mix["path"]] == [
        txs[t].rpc_txid for t in ("tx6", "tx5", "tx3", "tx1")]
    assert sum(g["amount_share"] for g in inc["categories"].values()) == pytest.approx(1.0)


def test_outgoing_and_hop_bound(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    out = exposure(store, S.text, direction="out").outgoing
    assert out is not None and out["total_sat"] == 10_000
    assert split(out) == {"mixing_service": (3_000, 3_000, 0), "unspent": (5_924, 0, 5_924),
                          "fee": (1_076, 1_000, 76)}
    unspent = {e["address"]: e["amount_sat"] for e in out["categories"]["unspent"]["endpoints"]}
    assert unspent == {T.text: 3_749, C.text: 2_175}
    near = exposure(store, T.text, direction="in", hops=1).incoming
    assert near is not None
    assert split(near) == {"exchange": (1_250, 1_250, 0), "hop_limit": (5_150, 5_150, 0)}
    both = exposure(store, T.text)
    assert both.incoming is not None and both.outgoing is not None
    assert both.outgoing["total_sat"] == 0  # T never spent anything
    with pytest.raises(InputError):
        exposure(store, T.text, direction="sideways")
    with pytest.raises(InputError):
        exposure(store, "00" * 32)


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
    app.command("exposure")(exposure_cmd)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    res = runner.invoke(app, ["exposure", T.text, "--direction", "in", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["incoming"]["categories"]["exchange"]["amount_sat"] == 1_250
    assert doc["outgoing"] is None
    human = runner.invoke(app, ["exposure", S.text])
    assert human.exit_code == 0 and "mixing_service" in human.stdout
    bad = runner.invoke(app, ["exposure", S.text, "--direction", "up"])
    assert bad.exit_code != 0
