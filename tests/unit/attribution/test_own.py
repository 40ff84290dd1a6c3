"""The agency's own tags (CSV and YAML): required columns, every bad row a problem with its line,
a list version per file, and YAML files told apart from TagPacks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cointrail.attribution import AttributionStore, import_tags, screen
from cointrail.attribution.chains import canonical_on_chain
from cointrail.attribution.own import is_own_yaml
from cointrail.interfaces.cli.main import app

BTC = "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

CSV = f"""address,chain,label,category,actor,confidence,source,author,case
{BTC},bitcoin,Seized wallet,exchange,,forensic_investigation,warrant 7,J. Doe,CASE-1
{ETH},ETH,Mule,,mule-1,forensic_investigation,interview,J. Doe,CASE-1
{BTC[:-1]}e,bitcoin,typo,,,forensic,notes,,
{BTC},bitcoin,bad category,black_list,,forensic,notes,,
{BTC},bitcoin,bad confidence,,,pretty_sure,notes,,
{ETH},solana,no codec,,,forensic,notes,,
,bitcoin,no address,,,forensic,notes,,
{BTC},bitcoin,short row
"""

YAML_LIST = f"""- address: {BTC}
  chain: BTC
  label: from a list
  confidence: forensic
  source: notes
  case: CASE-2
- address: {ETH}
  chain: ethereum
  label: bad confidence
  confidence: 2
  source: notes
"""

YAML_HEADER = f"""title: Case 3 tags
chain: bitcoin
confidence: forensic_investigation
source: search warrant
author: A. Analyst
case: CASE-3
tags:
- address: {BTC}
  label: suspect wallet
  actor: suspect-1
- address: {ETH}
  label: wrong chain
- address: {REGTEST}
  network: regtest
  label: test wallet
  colour: red
"""


def test_csv_loads_good_rows_and_names_the_line_of_each_bad_one(
    store: AttributionStore, tmp_path: Path
) -> None:
    path = tmp_path / "case1.csv"
    path.write_text(CSV)
    report = import_tags(store, [path])
    assert report.totals()["records"] == 2
    assert report.totals()["rejected"] == 6
    rows = store.query("SELECT address, chain, currency, label, category, actor, confidence, "
                       "confidence_level, source, author, case_ref, line FROM tags ORDER BY line")
    assert rows == [
        (BTC, "bitcoin", "BTC", "Seized wallet", "exchange", None, "forensic_investigation",
         70, "warrant 7", "J. Doe", "CASE-1", 2),
        (ETH.lower(), "ethereum", "ETH", "Mule", None, "mule-1", "forensic_investigation", 70,
         "interview", "J. Doe", "CASE-1", 3),
    ]
    problems = store.query("SELECT file, line, kind FROM import_problems ORDER BY line")
    assert problems == [
        (str(path), 4, "address"),
        (str(path), 5, "taxonomy"),
        (str(path), 6, "taxonomy"),
        (str(path), 7, "address"),
        (str(path), 8, "schema"),
        (str(path), 9, "format"),
    ]
    versions = store.versions()
    assert [(v["kind"], v["name"], v["records"], v["rejected"]) for v in versions] == [
        ("own", "case1.csv", 2, 6)]
    assert len(versions[0]["sha256"]) == 64


def test_csv_without_a_required_column_loads_nothing_and_says_which(
    store: AttributionStore, tmp_path: Path
) -> None:
    path = tmp_path / "partial.csv"
    path.write_text(f"address,chain,label,source\n{BTC},bitcoin,x,notes\n")
    report = import_tags(store, [path])
    assert report.totals()["records"] == 0
    assert report.totals()["rejected"] == 1
    [(line, kind, message)] = store.query("SELECT line, kind, message FROM import_problems")
    assert (line, kind) == (1, "format")
    assert "confidence" in message


def test_csv_of_another_kind_is_skipped_not_misread(
    store: AttributionStore, tmp_path: Path
) -> None:
    path = tmp_path / "other.csv"
    path.write_text("txid,value\nab,1\n")
    report = import_tags(store, [path])
    assert report.files[0].skipped is not None
    assert store.query("SELECT count(*) FROM list_versions") == [(0,)]


def test_yaml_list_and_header_forms(store: AttributionStore, tmp_path: Path) -> None:
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "list.yaml").write_text(YAML_LIST)
    (folder / "case3.yml").write_text(YAML_HEADER)
    report = import_tags(store, [folder])
    assert {Path(f.path).name: f.kind for f in report.files} == {
        "list.yaml": "own", "case3.yml": "own"}
    rows = store.query("SELECT address, network, label, actor, confidence, source, author, "
                       "case_ref, line FROM tags ORDER BY version_id, line")
    assert rows == [
        (BTC, "mainnet", "suspect wallet", "suspect-1", "forensic_investigation",
         "search warrant", "A. Analyst", "CASE-3", 8),
        (REGTEST, "regtest", "test wallet", None, "forensic_investigation", "search warrant",
         "A. Analyst", "CASE-3", 13),
        (BTC, "mainnet", "from a list", None, "forensic", "notes", None, "CASE-2", 1),
    ]
    problems = store.query("SELECT f, line, kind FROM (SELECT regexp_extract(file, '[^/]+$') f,"
                           " line, kind FROM import_problems) ORDER BY f, line")
    assert problems == [
        ("case3.yml", 11, "address"),  # an Ethereum address on the header's bitcoin
        ("case3.yml", 13, "schema"),  # unknown field 'colour' (tag kept)
        ("list.yaml", 7, "taxonomy"),  # confidence 2
    ]
    titles = {v["name"]: v["title"] for v in store.versions()}
    assert titles == {"case3.yml": "Case 3 tags", "list.yaml": None}


def test_own_yaml_is_told_from_a_tagpack() -> None:
    assert is_own_yaml([{"address": BTC}])
    assert is_own_yaml({"chain": "bitcoin", "tags": [{"address": BTC}]})
    assert is_own_yaml({"tags": [{"address": BTC, "chain": "bitcoin"}]})
    assert not is_own_yaml({"currency": "BTC", "tags": [{"address": BTC}]})
    assert not is_own_yaml({"tags": [{"address": BTC, "currency": "BTC", "chain": "x"}]})
    assert not is_own_yaml({"actors": [], "chain": "bitcoin"})


def test_non_mainnet_addresses_are_checked_for_their_network() -> None:
    assert canonical_on_chain("bitcoin", "regtest", REGTEST.upper()).text == REGTEST
    assert canonical_on_chain("ethereum", "sepolia", ETH).text == ETH.lower()


def test_reimport_of_a_changed_file_replaces_its_tags(
    store: AttributionStore, tmp_path: Path
) -> None:
    path = tmp_path / "case1.csv"
    path.write_text(CSV)
    import_tags(store, [path])
    path.write_text(CSV.replace("Seized wallet", "Seized wallet (confirmed)"))
    import_tags(store, [path])
    assert store.query("SELECT label FROM tags ORDER BY line") == [
        ("Seized wallet (confirmed)",), ("Mule",)]
    assert [(v["version_id"], v["active"]) for v in store.versions()] == [(0, False), (1, True)]


def test_screen_shows_author_and_case_of_own_tags(tmp_path: Path) -> None:
    root = tmp_path / "s"
    (tmp_path / "case1.csv").write_text(CSV)
    runner = CliRunner()
    out = runner.invoke(app, ["--store", str(root), "tags", "import", "--json",
                              str(tmp_path / "case1.csv")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["records"] == 2
    with AttributionStore(root, read_only=True) as store:
        [row] = screen(store, [BTC]).to_dicts()
    assert [(t["label"], t["author"], t["case_ref"]) for t in row["tags"]] == [
        ("Seized wallet", "J. Doe", "CASE-1")]
