"""OFAC formats: sdn_advanced.xml and sdn.xml fixtures built per LEGAL.md §4.4, the real
truncated legacy CSV, the real per-asset lists and their history; screening as of a date."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cointrail import decode_block
from cointrail.attribution import AttributionStore, import_sanctions, screen
from cointrail.interfaces.cli.attribution_cmds import sanctions_app, screen_cmd, tags_app
from cointrail.interfaces.cli.main import app
from tests.support.data import require_shared

NS = "urn:test:advanced-xml"  # the real namespace is OFAC's; parsing ignores namespaces
BLENDER = "3K35dyL85fR9ht7UgzPfd1gLRRXQtNTqE3"
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

SDN_ADVANCED = f"""<?xml version="1.0" encoding="utf-8"?>
<Sanctions xmlns="{NS}">
  <DateOfIssue><Year>2022</Year><Month>5</Month><Day>9</Day></DateOfIssue>
  <ReferenceValueSets>
    <FeatureTypeValues>
      <FeatureType ID="8">Email Address</FeatureType>
      <FeatureType ID="344">Digital Currency Address - XBT</FeatureType>
      <FeatureType ID="345">Digital Currency Address - ETH</FeatureType>
    </FeatureTypeValues>
    <SanctionsTypeValues><SanctionsType ID="1">Program</SanctionsType></SanctionsTypeValues>
  </ReferenceValueSets>
  <DistinctParties>
    <DistinctParty FixedRef="37070">
      <Profile ID="37070" PartySubTypeID="3">
        <Identity ID="1" FixedRef="37070" Primary="true">
          <Alias FixedRef="37070" AliasTypeID="1403" Primary="true">
            <DocumentedName ID="2"><DocumentedNamePart>
              <NamePartValue NamePartGroupID="3">BLENDER.IO</NamePartValue>
            </DocumentedNamePart></DocumentedName>
          </Alias>
        </Identity>
        <Feature ID="10" FeatureTypeID="8"><FeatureVersion ID="11">
          <VersionDetail DetailTypeID="1432">x@example</VersionDetail></FeatureVersion></Feature>
        <Feature ID="12" FeatureTypeID="344"><FeatureVersion ID="13">
          <VersionDetail DetailTypeID="1432">{BLENDER}</VersionDetail></FeatureVersion></Feature>
        <Feature ID="14" FeatureTypeID="345"><FeatureVersion ID="15">
          <VersionDetail DetailTypeID="1432">{ETH}</VersionDetail></FeatureVersion></Feature>
        <Feature ID="16" FeatureTypeID="344"><FeatureVersion ID="17">
          <VersionDetail DetailTypeID="1432">3F6bbvS1krsc1qR8FsbTDfYQyvkMm</VersionDetail>
        </FeatureVersion></Feature>
      </Profile>
    </DistinctParty>
  </DistinctParties>
  <SanctionsEntries>
    <SanctionsEntry ID="20" ProfileID="37070" ListID="1550">
      <EntryEvent ID="21" EntryEventTypeID="1">
        <Date CalendarTypeID="1"><Year>2022</Year><Month>5</Month><Day>6</Day></Date>
      </EntryEvent>
      <SanctionsMeasure ID="22" SanctionsTypeID="1"><Comment>CYBER2</Comment></SanctionsMeasure>
      <SanctionsMeasure ID="23" SanctionsTypeID="9"><Comment>Block</Comment></SanctionsMeasure>
    </SanctionsEntry>
  </SanctionsEntries>
</Sanctions>
"""

SDN_XML = f"""<?xml version="1.0" standalone="yes"?>
<sdnList xmlns="urn:test:sdn-list">
  <publshInformation><Publish_Date>11/08/2022</Publish_Date><Record_Count>1</Record_Count>
  </publshInformation>
  <sdnEntry>
    <uid>39796</uid><lastName>TORNADO CASH</lastName><sdnType>Entity</sdnType>
    <programList><program>CYBER2</program><program>DPRK3</program></programList>
    <idList>
      <id><uid>1</uid><idType>Website</idType><idNumber>tornado</idNumber></id>
      <id><uid>2</uid><idType>Digital Currency Address - ETH</idType>
          <idNumber>{ETH}</idNumber></id>
      <id><uid>3</uid><idType>Digital Currency Address - XBT</idType>
          <idNumber>1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53e</idNumber></id>
    </idList>
  </sdnEntry>
</sdnList>
"""


def test_sdn_advanced_links_address_to_party_programs_and_dates(
    store: AttributionStore, tmp_path: Path
) -> None:
    path = tmp_path / "sdn_advanced.xml"
    path.write_text(SDN_ADVANCED)
    report = import_sanctions(store, [path])
    assert report.totals()["records"] == 2
    assert report.files[0].problems == {"address": 1}  # the cut 3F6bbv... address
    rows = store.query("SELECT asset, chain, address, party_name, party_uid, programs, "
                       "listed_date, feature_type FROM sanctions_entries ORDER BY asset DESC")
    assert rows == [
        ("XBT", "bitcoin", BLENDER, "BLENDER.IO", "37070", "CYBER2", "2022-05-06",
         "Digital Currency Address - XBT"),
        ("ETH", "ethereum", ETH.lower(), "BLENDER.IO", "37070", "CYBER2", "2022-05-06",
         "Digital Currency Address - ETH"),
    ]
    (version,) = store.versions()
    assert version["published"] == "2022-05-09"
    assert version["kind"] == "ofac-sdn-advanced-xml" and len(version["sha256"]) == 64


def test_sdn_xml_legacy(store: AttributionStore, tmp_path: Path) -> None:
    path = tmp_path / "sdn.xml"
    path.write_text(SDN_XML)
    report = import_sanctions(store, [path])
    assert report.totals()["records"] == 1 and report.totals()["rejected"] == 1
    assert store.query("SELECT address, party_name, party_uid, programs FROM sanctions_entries"
                       ) == [(ETH.lower(), "TORNADO CASH", "39796", "CYBER2,DPRK3")]
    assert store.versions()[0]["published"] == "2022-11-08"


def test_truncated_legacy_csv_never_yields_a_cut_address(store: AttributionStore) -> None:
    path = require_shared("sanctions/ofac-sdn-csv-truncated/sdn.csv")
    report = import_sanctions(store, [path], published="2024-05-03")
    counts = report.files[0].problems
    assert counts["truncated-address"] == 6
    assert counts["truncated-remarks"] == 4
    stored = {r[0] for r in store.query("SELECT address FROM sanctions_entries")}
    for cut in ("3F6bbvS1krsc1qR8FsbTDfYQyvkMm", "1Gq", "1B64QRxf", "3", "1B11Ezqg3AXj",
                "1N6XqS"):
        assert cut not in stored
    assert BLENDER in stored  # the complete addresses of the same party are kept
    assert all(len(a) >= 26 for a in stored)


@pytest.fixture
def ofac_store(store: AttributionStore) -> AttributionStore:
    import_sanctions(store, [require_shared("sanctions/ofac-0xB10C")])
    return store


def test_0xb10c_lists_and_history_become_dated_versions(ofac_store: AttributionStore) -> None:
    history = ofac_store.query(
        "SELECT published, records FROM list_versions WHERE kind = 'ofac-address-history' "
        "ORDER BY published")
    assert len(history) == 28
    assert history[0] == ("2022-09-03", 364) and history[-1] == ("2024-09-27", 652)
    lists = ofac_store.query("SELECT scope, published, records FROM list_versions "
                             "WHERE kind = 'ofac-address-list' ORDER BY scope")
    assert ("XBT", "2024-09-27", 434) in lists  # 435 listed, one is a Tron address
    assert len(lists) == 17


def test_as_of_answers_with_the_list_in_force_then(ofac_store: AttributionStore) -> None:
    address = "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"
    (then,) = screen(ofac_store, [address], as_of="2019-05-01").to_dicts()
    assert then["sanctioned"] is False and then["sanctioned_now"] is True
    assert then["verdict"] == "not listed then, listed now"
    assert then["first_listed"] == "2022-11-10"
    (before,) = screen(ofac_store, [address], as_of="2022-11-09").to_dicts()
    assert before["sanctioned"] is False
    (after,) = screen(ofac_store, [address], as_of="2022-11-10").to_dicts()
    assert after["sanctioned"] is True
    assert {h["list_published"] for h in after["sanctions"] if h["in_force_then"]} == {
        "2022-11-10"}


def test_block_574200_pays_an_address_listed_only_in_2022(ofac_store: AttributionStore) -> None:
    block = decode_block(require_shared("btc/blocks/mainnet-574200.raw").read_bytes())
    outputs = [o.address for tx in block.transactions for o in tx.outputs if o.address]
    result = screen(ofac_store, outputs, as_of="2019-05-01").to_dicts()
    listed = [r for r in result if r["sanctioned_now"]]
    assert {r["address"] for r in listed} == {"1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"}
    assert not any(r["sanctioned"] for r in result)
    payment = [o for tx in block.transactions for o in tx.outputs
               if o.address == "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"]
    assert [o.value for o in payment] == [38_796_959]  # 0.388 BTC


def _cli() -> typer.Typer:
    """The app, with the attribution commands registered once (main.py may already do so)."""
    if not any(g.name == "tags" for g in app.registered_groups):
        app.add_typer(tags_app, name="tags")
        app.add_typer(sanctions_app, name="sanctions")
        app.command("screen")(screen_cmd)
    return app


def test_cli_import_and_screen_json(tmp_path: Path) -> None:
    import json

    cli = _cli()
    runner = CliRunner()
    store = str(tmp_path / "s")
    out = runner.invoke(cli, ["--store", store, "sanctions", "import", "--json",
                              str(require_shared("sanctions/ofac-0xB10C"))])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["records"] > 0
    addresses = tmp_path / "in.csv"
    addresses.write_text("address\n1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d\n1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n")
    out = runner.invoke(cli, ["--store", store, "screen", "--file", str(addresses),
                              "--as-of", "2019-05-01", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert [a["sanctioned"] for a in doc["addresses"]] == [False, False]
    assert [a["sanctioned_now"] for a in doc["addresses"]] == [True, False]
    bad = runner.invoke(cli, ["--store", store, "screen", "x", "--as-of", "May"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
