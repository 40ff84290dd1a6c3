"""The in-memory screening index answers exactly as the set-based `screen`, and never stale.

Two stores: one built here (a regtest chain clustered with `Clusterer`, own tags with an actor
conflict, OFAC-format lists with dated versions written here) and one from the real data
(TagPacks with the ActorPack, the 0xB10C OFAC lists and their dated history). Each compares
`screen_fast` with `screen` over tagged, sanctioned, clustered, unknown and malformed
addresses, mixed-case EVM and bech32 input, with and without `as_of`; then tags, sanctions and
a new clustering are written and the fast path must see each at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest

from cointrail.analysis.clustering.engine import Clusterer
from cointrail.attribution import AttributionStore, import_sanctions, import_tags, screen
from cointrail.attribution.fastscreen import ScreeningIndex, screen_fast, screening_index
from cointrail.attribution.screening import ScreenResult
from cointrail.store.duck import Store
from tests.support.data import require_shared
from tests.unit.analysis.test_engine import COIN, SPEC, ChainBuilder, ingest, pkh, wpkh

P, Q, R, S, T, U, V = (pkh(n) for n in ("fs-p", "fs-q", "fs-r", "fs-s", "fs-t", "fs-u", "fs-v"))
W = wpkh("fs-w")  # bech32 (bcrt1...), screened upper case too
GENESIS = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
EVM = "0x8589427373d6d84e98730d7795d8f6f8731fda16"
TAGS = "address,chain,network,label,category,actor,confidence,source\n"
PACKS = ("tornado_cash", "lazarus", "lazarus2", "blender_io", "binance_hack", "hydra",
         "ofac", "richest_addresses", "etherscan-wordcloud-mixing_service",
         "exchange-wallets-binance")


def assert_same(root: Path, addresses: Sequence[str], as_of: str | None = None) -> ScreenResult:
    """`screen_fast` equals `screen`: the dicts, the clusterings and every table."""
    with AttributionStore(root, read_only=True) as store:
        ref = screen(store, addresses, as_of=as_of)
    fast = screen_fast(root, addresses, as_of=as_of)
    assert fast.to_dicts() == ref.to_dicts()
    assert fast.clusterings == ref.clusterings and fast.as_of == ref.as_of
    # `screen` leaves direct tag hits unordered (to_dicts sorts them by tag_id)
    order = [("pos", "ascending"), ("tag_id", "ascending")]
    assert fast.tags.equals(ref.tags.sort_by(order), check_metadata=True)
    for name in ("addresses", "sanctions", "clusters", "cluster_tags", "conflicts"):
        mine, theirs = getattr(fast, name), getattr(ref, name)
        assert isinstance(mine, pa.Table) and isinstance(theirs, pa.Table)
        assert mine.schema == theirs.schema, name
        assert mine.equals(theirs), name
    return fast


def write_tags(root: Path, rows: list[str], name: str) -> None:
    path = root.parent / f"{root.name}-{name}.csv"
    path.write_text(TAGS + "\n".join(rows) + "\n")
    with AttributionStore(root) as store:
        import_tags(store, [path])


def write_lists(folder: Path, history: list[tuple[str, str, str]], latest: dict[str, str]
                ) -> None:
    """0xB10C layout: the first-seen history and the per-asset lists in force now."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["asset,address,first_seen_commit,first_seen_date,last_seen_commit,"
             "last_seen_date,in_latest"]
    for asset, address, day in history:
        lines.append(f"{asset},{address},c0,{day}T00:00:00+00:00,c1,"
                     "2024-09-27T00:00:00+00:00,True")
    (folder / "derived_first_seen_history.csv").write_text("\n".join(lines) + "\n")
    for asset, text in latest.items():
        (folder / f"sanctioned_addresses_{asset}.txt").write_text(text)


def chain() -> ChainBuilder:
    """Block 1 spends {p, q} and {r, s} together; block 2 (ingested later) {t, u}."""
    b = ChainBuilder()
    b.block([(a, 5 * COIN) for a in (P, Q, R, S, W)])
    b.tx([P, Q], [(T, 10 * COIN - 1_000)])
    b.tx([R, S], [(U, 10 * COIN - 1_000)])
    b.block([(pkh("fs-miner"), 50 * COIN)])
    b.tx([T, U], [(V, 20 * COIN - 3_000)])
    b.block([(pkh("fs-miner"), 50 * COIN)])
    return b


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    with Store(root).chain(SPEC) as chain_store:
        ingest(chain_store, chain().raws[:2])
        Clusterer(chain_store).run()
    write_tags(root, [
        f"{P.text},bitcoin,regtest,Exchange A hot wallet,exchange,alpha,forensic,notes",
        f"{Q.text},bitcoin,regtest,Market B deposit,market,beta,forensic,notes",
        f"{Q.text},bitcoin,regtest,Market B again,market,,forensic,other notes",
        f"{R.text},bitcoin,regtest,Mixer C input,mixing_service,gamma,forensic,notes",
        f"{W.text},bitcoin,regtest,Segwit wallet,exchange,,forensic,notes",
        f"{HAL},bitcoin,mainnet,Hal,exchange,delta,forensic,notes",
        f"{EVM},ethereum,mainnet,Mixer contract,mixing_service,,forensic,notes",
    ], "tags")
    lists = tmp_path / "lists"
    write_lists(lists, [("XBT", GENESIS, "2022-01-05"), ("XBT", HAL, "2023-03-01"),
                        ("ETH", EVM, "2022-08-08")],
                {"XBT": f"{GENESIS}\n{HAL}\n", "ETH": f"{EVM}\n"})
    # a later import of an older list: in force is the latest publication, not the latest import
    newer, older = tmp_path / "newer", tmp_path / "older"
    write_lists(newer, [], {"XBT": f"{GENESIS}\n{HAL}\n"})
    write_lists(older, [], {"XBT": f"{GENESIS}\n"})
    with AttributionStore(root) as store:
        import_sanctions(store, [lists])
        import_sanctions(store, [newer / "sanctioned_addresses_XBT.txt"], published="2023-06-01")
        import_sanctions(store, [older / "sanctioned_addresses_XBT.txt"], published="2022-06-01")
    return root


def inputs_of_built() -> list[str]:
    return [P.text, Q.text, R.text, S.text, T.text, U.text, V.text, W.text, W.text.upper(),
            f"  {P.text} ", GENESIS, HAL, EVM, EVM.upper().replace("0X", "0x"),
            "0X" + EVM[2:].upper(), "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "not an address",
            "", "bc1" + "q" * 60, P.text]


@pytest.mark.parametrize("as_of", [None, "2021-12-31", "2022-01-05", "2022-09-01",
                                   "2023-03-01", "2030-01-01"])
def test_built_store_fast_equals_set_based(built: Path, as_of: str | None) -> None:
    rows = assert_same(built, inputs_of_built(), as_of).to_dicts()
    assert rows[0]["actor_conflict"] is not None  # p's cluster names alpha and beta
    assert rows[3]["cluster_tags"] and rows[3]["tags"] == []  # s: r's tag via the cluster
    assert rows[7]["tags"] and rows[8]["tags"] == rows[7]["tags"]  # bech32 upper case
    assert rows[13]["tags"] and rows[14]["sanctions"] == rows[12]["sanctions"]
    assert rows[10]["sanctioned_now"] is True
    for i, address in enumerate(inputs_of_built()):  # one address at a time, as the API asks
        if i % 3 == 0:
            assert_same(built, [address], as_of)


def test_fast_path_sees_new_tags_sanctions_and_clustering(built: Path, tmp_path: Path) -> None:
    first = assert_same(built, [T.text, U.text, S.text]).to_dicts()
    assert first[0]["cluster"]["size"] == 1 and first[0]["cluster_tags"] == []
    index = screening_index(built)

    write_tags(built, [f"{U.text},bitcoin,regtest,Payout U,exchange,epsilon,forensic,n"], "u")
    after_tags = assert_same(built, [U.text, S.text]).to_dicts()
    assert [t["label"] for t in after_tags[0]["tags"]] == ["Payout U"]
    assert screening_index(built) is not index

    lists = tmp_path / "lists-2"
    write_lists(lists, [("XBT", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "2024-01-02")],
                {"XBT": "1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n"})
    with AttributionStore(built) as store:
        import_sanctions(store, [lists])
    (boat,) = assert_same(built, ["1BoatSLRHtKNngkdXEeobR76b53LETtpyT"],
                          "2024-06-01").to_dicts()
    assert boat["sanctioned"] is True and boat["first_listed"] == "2024-01-02"

    with Store(built).chain(SPEC) as chain_store:  # block 2 spends t and u together
        ingest(chain_store, chain().raws[2:])
        Clusterer(chain_store).run()
    t, u = assert_same(built, [T.text, U.text]).to_dicts()
    assert t["cluster"]["size"] == 2 and t["cluster"]["as_of_height"] == 2
    assert [c["via"] for c in t["cluster_tags"]] == [U.text]
    assert u["cluster"] == t["cluster"]


def test_a_store_without_clustering_or_lists(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write_tags(root, [f"{HAL},bitcoin,mainnet,Hal,exchange,,forensic,notes"], "t")
    (hal, miss) = assert_same(root, [HAL, GENESIS], "2020-01-01").to_dicts()
    assert hal["tags"] and not miss["tags"] and hal["cluster"] is None


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    packs = require_shared("tags/graphsense-tagpacks/packs")
    actors = require_shared("tags/graphsense-tagpacks/actors/graphsense.actorpack.yaml")
    root = tmp_path_factory.mktemp("real")
    with AttributionStore(root) as store:
        import_tags(store, [actors, *(packs / f"{name}.yaml" for name in PACKS)])
        import_sanctions(store, [require_shared("sanctions/ofac-0xB10C")])
    return root


def real_inputs(root: Path) -> list[str]:
    with AttributionStore(root, read_only=True) as store:
        tagged = sorted(r[0] for r in store.query("SELECT DISTINCT address FROM tags"))
        listed = sorted(r[0] for r in store.query(
            "SELECT DISTINCT address FROM sanctions_entries"))
    rng = random.Random(8)
    picked = rng.sample(tagged, min(400, len(tagged))) + listed
    evm = [a for a in picked if a.startswith("0x")][:50]
    return (picked + [a.upper().replace("0X", "0x") for a in evm] + [f" {a} " for a in evm[:5]]
            + ["1Miss" + "1" * 29, "0xzz", "", "bc1qnotreal"])


@pytest.mark.parametrize("as_of", [None, "2019-05-01", "2022-11-10", "2023-06-30"])
def test_real_data_fast_equals_set_based(real: Path, as_of: str | None) -> None:
    addresses = real_inputs(real)
    rows = assert_same(real, addresses, as_of).to_dicts()
    assert sum(1 for r in rows if r["tags"]) > 300
    assert sum(1 for r in rows if r["sanctioned_now"]) > 100
    if as_of == "2019-05-01":
        assert not any(r["sanctioned"] for r in rows if r["address"].startswith("0x"))
    for address in addresses[::37]:
        assert_same(real, [address], as_of)


def test_real_index_memory_is_reported(real: Path) -> None:
    index = screening_index(real)
    assert isinstance(index, ScreeningIndex)
    with AttributionStore(real, read_only=True) as store:
        (tags,) = store.query("SELECT count(*) FROM tags")[0]
    assert index.tags.table.num_rows == tags
    assert 0 < index.memory < 400 * tags + 50_000_000  # bytes; a few hundred per tag at most
