"""FATF red-flag rules on a hand-built synthetic chain: each rule fires on its pattern and stays
quiet on an ordinary user, who receives one coin, pays three shops with change back to the same
address every 30 blocks and keeps the rest.

The chain (bitcoin regtest, built with the clustering tests' chain builder)::

    h0        coinbase funds every actor
    h1..h5    peel chain P0 -> P1 -> ... -> P5, each hop peels 1 000 000 sat off to a shop
    h10,40,70 the user U pays a shop 1 000 000 sat, change back to U
    h20..h23  structurer S pays 9 500 000 sat four times (just under 10 000 000)
    h30, h31  R receives 9 990 000 sat from Rsrc and sends it all on a block later
    h50..h55  six unrelated sources F0..F5 pay hub H; h57 H spends all six coins at once
    h60       mixer M (tagged mixing_service) pays X; h61 a CoinJoin (labelled) pays K1, K2;
    h62       K1 pays Y (CoinJoin exposure two hops back)
    h100..103 D, untouched since h0, makes four payments in four blocks
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cointrail.analysis.risk.rules import (
    DormancyBurst,
    FanIn,
    MixerExposure,
    PassThrough,
    PeelChain,
    PriceTable,
    RuleHit,
    Structuring,
    default_rules,
    evaluate,
    resolve_subject,
)
from cointrail.errors import InputError, NotFoundError
from cointrail.interfaces.cli.rules_cmds import flags_cmd
from cointrail.store.duck import ChainStore
from tests.unit.analysis.test_engine import Addr, ChainBuilder, TxRecord, make_store, pkh

P = [pkh(f"risk-peel{i}") for i in range(6)]
U, SHOP = pkh("risk-user"), pkh("risk-shop")
S = pkh("risk-structurer")
R, RSRC, ROUT = pkh("risk-pass"), pkh("risk-pass-src"), pkh("risk-pass-out")
R2, R2REST = pkh("risk-keeps"), pkh("risk-keeps-rest")  # relays most, keeps a fresh remainder
R3 = pkh("risk-splits")  # relays everything to two known addresses
F = [pkh(f"risk-fan{i}") for i in range(6)]
H, HOUT = pkh("risk-hub"), pkh("risk-hub-out")
M, X = pkh("risk-mixer"), pkh("risk-exposed")
J = [pkh(f"risk-cj-in{i}") for i in range(2)]
K = [pkh(f"risk-cj-out{i}") for i in range(2)]
Y = pkh("risk-cj-exposed")
D = pkh("risk-dormant")

PEEL = PeelChain(min_hops=4, max_peel_share=0.2, max_gap_blocks=6)
PASS = PassThrough(min_out_share=0.9, max_blocks=6)
FAN = FanIn(min_sources=5, max_blocks=20)
DORMANT = DormancyBurst(min_dormant_blocks=50, min_burst_txs=4, burst_window_blocks=6)
STRUCT = Structuring(threshold=10_000_000, eps=0.1, min_count=3, window_blocks=10)
MIXER = MixerExposure(hops=3)
ALL = [PEEL, PASS, FAN, DORMANT, STRUCT, MIXER]


def advance(b: ChainBuilder, to_height: int) -> None:
    while b.height < to_height:
        b.block([(pkh(f"risk-miner{b.height + 1}"), 50)])


def build() -> tuple[ChainBuilder, dict[str, TxRecord]]:
    b = ChainBuilder()
    b.block([(P[0], 100_000_000), (U, 50_000_000), (RSRC, 10_000_000), (M, 5_000_000)]
            + [(S, 10_000_000)] * 4 + [(f, 100_000) for f in F] + [(j, 1_000_000) for j in J]
            + [(D, 1_000_000)] * 4 + [(RSRC, 10_000_000)] * 2)
    txs: dict[str, TxRecord] = {}

    def at(height: int, name: str, inputs: list[Any], outputs: list[tuple[Addr, int]]) -> None:
        advance(b, height - 1)
        txs[name] = b.tx(inputs, outputs)
        advance(b, height)

    left = 100_000_000
    for i in range(5):
        left -= 1_000_000 + 1_000
        at(1 + i, f"peel{i}", [P[i]], [(P[i + 1], left), (SHOP, 1_000_000)])
    change = 50_000_000
    events: list[tuple[int, str, list[Any], list[tuple[Addr, int]]]] = []
    for h in (10, 40, 70):
        change -= 1_000_000 + 1_000
        events.append((h, f"user{h}", [U], [(SHOP, 1_000_000), (U, change)]))
    for k in range(4):
        events.append((20 + k, f"struct{k}", [S],
                       [(pkh(f"risk-payee{k}"), 9_500_000), (S, 490_000)]))
    events += [(30, "pass_in", [RSRC], [(R, 9_990_000)]),
               (31, "pass_out", [R], [(ROUT, 9_980_000)]),
               (32, "keeps_in", [RSRC], [(R2, 9_990_000)]),
               (33, "keeps_out", [R2], [(SHOP, 9_500_000), (R2REST, 480_000)]),
               (34, "splits_in", [RSRC], [(R3, 9_990_000)]),
               (35, "splits_out", [R3], [(SHOP, 5_000_000), (ROUT, 4_980_000)])]
    events += [(50 + i, f"fan{i}", [f], [(H, 99_000)]) for i, f in enumerate(F)]
    events += [(57, "consolidation", [H] * 6, [(HOUT, 590_000)]),
               (60, "mixer", [M], [(X, 4_990_000)]),
               (61, "coinjoin", list(J), [(K[0], 990_000), (K[1], 990_000)]),
               (62, "cj_spend", [K[0]], [(Y, 980_000)])]
    events += [(100 + k, f"dormant{k}", [D], [(pkh(f"risk-dormant-pay{k}"), 990_000)])
               for k in range(4)]
    for height, name, inputs, outputs in sorted(events, key=lambda e: e[0]):
        at(height, name, inputs, outputs)
    return b, txs


@pytest.fixture(scope="module")
def built() -> tuple[ChainBuilder, dict[str, TxRecord]]:
    return build()


@pytest.fixture
def chain(tmp_path: Path, built: tuple[ChainBuilder, dict[str, TxRecord]]
          ) -> Iterator[tuple[ChainStore, dict[str, TxRecord]]]:
    from cointrail.attribution import AttributionStore, import_tags

    b, txs = built
    store = make_store(tmp_path, b.raws)
    cj = store.query("SELECT tx_id FROM txs WHERE txid = ?", [txs["coinjoin"].txid])[0][0]
    store.con.execute("INSERT INTO tx_labels VALUES (?, 61, 'coinjoin', 'test', 'test@1', '{}')",
                      [cj])
    csv = tmp_path / "own.csv"
    csv.write_text("address,chain,network,label,category,confidence,source\n"
                   f"{M.text},bitcoin,regtest,Some Mixer,mixing_service,ownership,case notes\n")
    with AttributionStore(tmp_path) as attr:
        import_tags(attr, [csv])
    yield store, txs
    store.close()


def run(store: ChainStore, rule: Any, addr: Addr) -> list[RuleHit]:
    hits: list[RuleHit] = rule.evaluate(store, resolve_subject(store, addr.text))
    return hits


def test_ordinary_user_raises_no_flag(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    assert evaluate(store, U.text, ALL) == []
    assert evaluate(store, SHOP.text, [PASS, DORMANT, MIXER]) == []


def test_peel_chain_scan_and_subject(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    (hit,) = evaluate(store, None, ALL)  # a scan runs the peel-chain rule only
    assert hit.rule == "peel_chain" and hit.subject is None and hit.version == 1
    assert [e.txid for e in hit.evidence] == [txs[f"peel{i}"].rpc_txid for i in range(5)]
    assert [e.height for e in hit.evidence] == [1, 2, 3, 4, 5]
    assert {e.amount for e in hit.evidence} == {1_000_000}
    assert hit.params == {"min_hops": 4, "max_peel_share": 0.2, "max_gap_blocks": 6}
    (mid,) = run(store, PEEL, P[2])
    assert mid.subject == P[2].text and mid.evidence == hit.evidence
    assert run(store, PeelChain(min_hops=6), P[2]) == []  # only five hops
    assert run(store, PeelChain(max_gap_blocks=6, max_peel_share=0.005), P[2]) == []


def test_pass_through(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    (hit,) = run(store, PASS, R)
    assert [(e.role, e.txid, e.height, e.amount) for e in hit.evidence] == [
        ("in", txs["pass_in"].rpc_txid, 30, 9_990_000),
        ("out", txs["pass_out"].rpc_txid, 31, 9_990_000)]
    assert run(store, PassThrough(max_blocks=0), R) == []
    assert run(store, PassThrough(max_seconds=60), R) == []  # blocks are 600 s apart
    assert run(store, PassThrough(max_seconds=600), R) != []
    # 95 % paid on, but beside a fresh output that may be the subject's change: kept back
    assert run(store, PASS, R2) == []
    # everything to two addresses used before: fully out (the whole coin, fee included)
    (split,) = run(store, PASS, R3)
    assert [(e.role, e.txid, e.amount) for e in split.evidence] == [
        ("in", txs["splits_in"].rpc_txid, 9_990_000),
        ("out", txs["splits_out"].rpc_txid, 9_990_000)]
    assert split.version == 4 and "fully out" in split.explanation


def test_fan_in_then_consolidation(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    from cointrail.analysis.clustering.engine import Clusterer

    store, txs = chain
    (hit,) = run(store, FAN, H)
    roles = [e.role for e in hit.evidence]
    assert roles.count("fan_in") == 6 and roles[-1] == "consolidation"
    assert hit.evidence[-1].txid == txs["consolidation"].rpc_txid
    assert "by address" in hit.explanation
    assert run(store, FanIn(min_sources=7), H) == []
    assert run(store, FanIn(max_blocks=3), H) == []  # the first payments are too old
    Clusterer(store).run()
    (clustered,) = run(store, FAN, H)
    assert "6 distinct sources (by cluster)" in clustered.explanation


def test_dormancy_then_burst(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    (hit,) = run(store, DORMANT, D)
    assert [(e.role, e.height) for e in hit.evidence] == [
        ("last_before_gap", 0), ("burst", 100), ("burst", 101), ("burst", 102),
        ("burst", 103)]
    assert run(store, DormancyBurst(min_dormant_blocks=101, min_burst_txs=4,
                                    burst_window_blocks=6), D) == []
    assert run(store, DormancyBurst(min_dormant_blocks=50, min_burst_txs=4,
                                    burst_window_blocks=2), D) == []


def test_structuring_in_sat(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, _ = chain
    (hit,) = run(store, STRUCT, S)
    assert [(e.height, e.amount) for e in hit.evidence] == [
        (20, 9_500_000), (21, 9_500_000), (22, 9_500_000), (23, 9_500_000)]
    assert hit.params["unit"] == "sat" and hit.params["threshold"] == 10_000_000
    assert run(store, Structuring(threshold=9_500_000, eps=0.1), S) == []  # not below
    assert run(store, Structuring(threshold=10_000_000, eps=0.01), S) == []  # not close
    assert run(store, Structuring(threshold=10_000_000, eps=0.1, min_count=5), S) == []
    received = Structuring(threshold=10_000_000, eps=0.1, min_count=1, direction="received")
    assert len(run(store, received, R)) == 1


def test_structuring_in_fiat(chain: tuple[ChainStore, dict[str, TxRecord]],
                             tmp_path: Path) -> None:
    store, _ = chain
    table = tmp_path / "prices.csv"
    # block times are 1 700 000 000 + 600 h: 2023-11-14 22:13 UTC at h0, the next day from h11
    table.write_text("date,price\n2023-11-13,50000\n2023-11-15,100000\n")
    prices = PriceTable.from_csv(table, "EUR")
    assert prices.price_at("2023-11-14") == 50_000 and prices.price_at("2023-11-12") is None
    rule = Structuring(threshold="10000", eps=0.1, min_count=3, window_blocks=10, prices=prices)
    (hit,) = run(store, rule, S)
    assert [e.fiat for e in hit.evidence] == ["9500.00"] * 4
    assert hit.params["prices"]["sha256"] == prices.sha256 and hit.params["unit"] == "fiat"
    assert "EUR" in hit.explanation
    table.write_text("date,price\n2023-11-13,50000\n")
    half = Structuring(threshold="10000", eps=0.1, prices=PriceTable.from_csv(table))
    assert run(store, half, S) == []  # 4 750 each
    table.write_text("day,value\n2023-11-13,1\n")
    with pytest.raises(InputError):
        PriceTable.from_csv(table)


def test_mixer_exposure(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    store, txs = chain
    (direct,) = run(store, MIXER, X)
    assert direct.evidence[0].role == "mixing_service@hop1"
    assert direct.evidence[0].amount == 4_990_000
    assert "received from" in direct.explanation and "Some Mixer" in direct.explanation
    (cj,) = run(store, MIXER, Y)
    assert [(e.role, e.txid) for e in cj.evidence] == [
        ("coinjoin@hop1", txs["coinjoin"].rpc_txid)]
    assert run(store, MixerExposure(hops=0), Y) == []


def test_cluster_subject_and_errors(chain: tuple[ChainStore, dict[str, TxRecord]]) -> None:
    from cointrail.analysis.clustering.engine import Clusterer, cluster_view

    store, _ = chain
    with pytest.raises(InputError):
        PASS.evaluate(store, None)
    with pytest.raises(InputError):
        default_rules(["peel_chain", "nonsense"])
    with pytest.raises(NotFoundError):
        resolve_subject(store, pkh("risk-never").text)
    Clusterer(store).run()
    hub = resolve_subject(store, H.text)
    cid = cluster_view(store).of(next(iter(hub.addr_ids)))
    subject = resolve_subject(store, f"cluster:{cid}")
    assert subject.kind == "cluster" and hub.addr_ids <= subject.addr_ids
    # the hub also passes most coins straight through (within 6 blocks of the consolidation)
    assert {h.rule for h in evaluate(store, subject, ALL)} == {"pass_through", "fan_in"}


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
    app.command("flags")(flags_cmd)
    app.command("other")(lambda: None)  # keep `flags` a subcommand
    runner = CliRunner()
    result = runner.invoke(app, ["flags", R.text, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [h["rule"] for h in doc["hits"]] == ["pass_through"]
    assert doc["subject"] == R.text and "pass_through" in doc["rules"]
    quiet = runner.invoke(app, ["flags", U.text])
    assert quiet.exit_code == 0 and "no red flags" in quiet.stdout
    human = runner.invoke(app, ["flags", R.text, "--rules", "pass_through,peel_chain"])
    assert human.exit_code == 0 and "pass_through" in human.stdout
    bad = runner.invoke(app, ["flags", R.text, "--rules", "magic"])
    assert bad.exit_code == 2 and "unknown rule" in bad.output
