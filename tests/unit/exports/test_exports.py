"""Case exports load back with their own libraries, goAML validates against the project's XSD
(and a broken document is rejected), and the manifest's hashes match the files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from cointrail.errors import InputError, ValidationError
from cointrail.exports import ExportOptions, export_bundle, validate_goaml
from cointrail.exports.ftm import validate_entity
from cointrail.reporting.facts import addresses, trace_findings, transactions
from tests.unit.reporting.snapshots import (
    BLOCK_TIMES,
    DEPOSIT,
    EXCHANGE,
    PEEL_TX,
    hand_snapshot,
)

OPTIONS = ExportOptions(recipient="FIU NL", legal_basis="UNCC art 40(4)",
                        block_times=BLOCK_TIMES)


@pytest.fixture(scope="module")
def bundle() -> Any:
    return export_bundle(hand_snapshot(), OPTIONS)


def test_stix_bundle_parses_with_wallets_transactions_identity_and_markings(
        bundle: Any) -> None:
    import stix2

    parsed = stix2.parse(bundle.files["stix-bundle.json"].decode(), allow_custom=True)
    objects = {o.id: o for o in parsed.objects}
    by_type: dict[str, list[Any]] = {}
    for o in parsed.objects:
        by_type.setdefault(o.type, []).append(o)
    snapshot = hand_snapshot()
    assert {w.address for w in by_type["cryptocurrency-wallet"]} == {
        a.address for a in addresses(snapshot)}
    assert {t.value for t in by_type["cryptocurrency-transaction"]} == {
        t.txid for t in transactions(snapshot)}
    assert {e.name for e in by_type["extension-definition"]} == {
        "cryptocurrency-wallet", "cryptocurrency-transaction"}
    for sco in by_type["cryptocurrency-wallet"] + by_type["cryptocurrency-transaction"]:
        (ext,) = sco.extensions.values()
        assert ext["extension_type"] == "new-sco"
    peel = next(t for t in by_type["cryptocurrency-transaction"] if t.value == PEEL_TX)
    outs = {objects[o["address_ref"]].address: o["amount"] for o in peel.output}
    assert outs[DEPOSIT] == 40_000_000 and peel.fee == 10_000
    exchange = next(i for i in by_type["identity"] if i.name == EXCHANGE)
    (rel,) = by_type["relationship"]
    assert rel.target_ref == exchange.id and objects[rel.source_ref].address == DEPOSIT
    (report,) = by_type["report"]
    assert all(ref in objects for ref in report.object_refs)
    tlp = next(m for m in by_type["marking-definition"] if m.get("name") == "TLP:AMBER")
    for o in parsed.objects:
        if o.type != "marking-definition":
            assert tlp.id in o.object_marking_refs, o.id
    statement = next(m for m in by_type["marking-definition"]
                     if m.get("definition_type") == "statement")
    assert "FIU NL" in statement.definition.statement
    assert "criminal investigation" in statement.definition.statement


def test_misp_event_loads_with_btc_attributes_and_objects(bundle: Any) -> None:
    from pymisp import MISPEvent

    event = MISPEvent()
    event.load(bundle.files["misp-event.json"].decode())
    snapshot = hand_snapshot()
    assert {a.value for a in event.attributes if a.type == "btc"} == {
        a.address for a in addresses(snapshot)}
    coin = [o for o in event.objects if o.name == "coin-address"]
    assert {o.get_attributes_by_relation("address")[0].value for o in coin} == {
        a.address for a in addresses(snapshot)}
    txs = [o for o in event.objects if o.name == "btc-transaction"]
    assert {o.get_attributes_by_relation("transaction-number")[0].value for o in txs} == {
        t.txid for t in transactions(snapshot)}
    assert "tlp:amber" in {t.name for t in event.tags}
    assert any(a.type == "text" and "Onward transfer" in a.value for a in event.attributes)


def test_ftm_entities_validate_through_the_model(bundle: Any) -> None:
    from followthemoney import model

    lines = bundle.files["ftm-entities.jsonl"].decode().splitlines()
    proxies = [model.get_proxy(json.loads(line)) for line in lines]
    for line in lines:
        assert validate_entity(json.loads(line)) == []
    wallets = [p for p in proxies if p.schema.name == "CryptoWallet"]
    assert {p.first("publicKey") for p in wallets} == {a.address for a in addresses(
        hand_snapshot())}
    (company,) = [p for p in proxies if p.schema.name == "Company"]
    assert company.first("name") == EXCHANGE
    deposit = next(p for p in wallets if p.first("publicKey") == DEPOSIT)
    assert deposit.first("holder") == company.id
    payments = [p for p in proxies if p.schema.name == "Payment"]
    (trace,) = trace_findings(hand_snapshot())
    assert len(payments) == sum(1 for f in trace.flows if f.to_vout is not None)
    to_exchange = [p for p in payments if p.first("beneficiary") == company.id]
    assert [p.first("amount") for p in to_exchange] == ["0.40000000"]


def test_ftm_validation_reports_a_bad_entity() -> None:
    bad = {"id": "x", "schema": "Payment", "properties": {"date": ["not a date"],
                                                          "colour": ["red"]}}
    problems = validate_entity(bad)
    assert any("colour" in p for p in problems)
    assert any("payer" in p for p in problems) and any("date" in p for p in problems)


def test_goaml_validates_and_maps_wallets_to_accounts(bundle: Any) -> None:
    import xml.etree.ElementTree as ET

    xml = bundle.files["goaml.xml"]
    validate_goaml(xml)
    root = ET.fromstring(xml)
    accounts = {a.findtext("account"): a for a in root.iter("to_account")}
    deposit = accounts[DEPOSIT]
    assert deposit.findtext("institution_name") == EXCHANGE
    assert deposit.findtext("non_bank_institution") == "true"
    assert {t.findtext("transactionnumber") for t in root.iter("transaction")} == {
        t.txid for t in transactions(hand_snapshot())}
    assert "FIU NL" in (root.findtext("reason") or "")


def test_goaml_de_profile_follows_the_kryptotx_convention() -> None:
    import xml.etree.ElementTree as ET

    options = ExportOptions(recipient="FIU", legal_basis="GwG § 43", formats=("goaml",),
                            goaml_profile="de-kryptotx", block_times=BLOCK_TIMES)
    root = ET.fromstring(export_bundle(hand_snapshot(), options).files["goaml.xml"])
    assert (root.findtext("reason") or "").startswith("KryptoTx ")
    comments = [c.text or "" for c in root.iter("comments")]
    assert comments and all(c.startswith("#") for c in comments)
    assert all(";#" in c for c in comments)


def test_a_broken_goaml_document_is_rejected_with_the_place(bundle: Any) -> None:
    broken = bundle.files["goaml.xml"].replace(b"<transactionnumber>", b"<txnumber>", 1)
    broken = broken.replace(b"</transactionnumber>", b"</txnumber>", 1)
    with pytest.raises(ValidationError) as info:
        validate_goaml(broken)
    assert "txnumber" in str(info.value) and "/report/transaction" in str(info.value)
    with pytest.raises(ValidationError, match="not well-formed"):
        validate_goaml(b"<report><rentity_id>")


def test_csv_and_xlsx_list_identifiers_under_the_restrictions(bundle: Any) -> None:
    from openpyxl import load_workbook

    text = bundle.files["identifiers.csv"].decode()
    assert text.startswith("# case_reference: CT-2026-0001")
    assert "# onward_transfer:" in text and "# tlp: TLP:AMBER" in text
    rows = list(csv.DictReader(line for line in text.splitlines()
                               if not line.startswith("# ")))
    wanted = {(a.address, str(a.received)) for a in addresses(hand_snapshot())}
    assert {(r["identifier"], r["amount_sat"]) for r in rows if r["kind"] == "address"} == wanted
    peel = next(r for r in rows if r["identifier"] == PEEL_TX)
    assert (peel["height"], peel["amount_sat"], peel["amount"]) == (
        "800001", "149990000", "1.49990000")
    wb = load_workbook(io.BytesIO(bundle.files["identifiers.xlsx"]))
    sheet = list(wb["identifiers"].iter_rows(values_only=True))
    assert sheet[0][3] == "identifier" and len(sheet) == len(rows) + 1
    restrictions = dict(wb["use restrictions"].iter_rows(values_only=True))
    assert restrictions["recipient"] == "FIU NL" and restrictions["originating_state"] == "DE"


def test_manifest_hashes_match_and_zip_holds_the_same_bytes(bundle: Any, tmp_path: Any) -> None:
    manifest = bundle.manifest
    snapshot = hand_snapshot()
    assert manifest["custody_head"] == snapshot["custody_head"]
    assert manifest["tool_version"].startswith("cointrail ")
    assert manifest["use_restrictions"]["legal_basis"] == "UNCC art 40(4)"
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == set(bundle.files) - {"manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256(bundle.files[name]).hexdigest() == digest
    folder, zipped = bundle.write(tmp_path)
    with zipfile.ZipFile(zipped) as z:
        for name, data in bundle.files.items():
            assert z.read(f"{bundle.name}/{name}") == data == (folder / name).read_bytes()
    assert export_bundle(snapshot, OPTIONS).zip_bytes() == bundle.zip_bytes()


def test_formats_needing_times_say_which_blocks_lack_them() -> None:
    options = ExportOptions(recipient="x", legal_basis="y", formats=("goaml",))
    with pytest.raises(ValidationError, match="no header time for block 800001"):
        export_bundle(hand_snapshot(), options)


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="unknown format"):
        export_bundle(hand_snapshot(), ExportOptions(recipient="x", legal_basis="y",
                                                     formats=("pdf",)))
    with pytest.raises(InputError, match="recipient"):
        export_bundle(hand_snapshot(), ExportOptions(recipient=" ", legal_basis="y"))
    with pytest.raises(InputError, match="TLP level"):
        export_bundle(hand_snapshot(), ExportOptions(recipient="x", legal_basis="y",
                                                     tlp="purple", formats=("csv",)))


def test_real_block_170_trace_exports_load_back(mainnet_case: Any) -> None:
    import stix2
    from pymisp import MISPEvent

    snapshot, times = mainnet_case
    bundle = export_bundle(snapshot, ExportOptions(recipient="FBI", legal_basis="MLAT",
                                                   block_times=times, tlp="green"))
    (trace,) = trace_findings(snapshot)
    parsed = stix2.parse(bundle.files["stix-bundle.json"].decode(), allow_custom=True)
    txids = {o.value for o in parsed.objects if o.type == "cryptocurrency-transaction"}
    assert txids == {f.txid for f in trace.flows}
    event = MISPEvent()
    event.load(bundle.files["misp-event.json"].decode())
    assert "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S" in {a.value for a in event.attributes}
    assert "tlp:green" in {t.name for t in event.tags}
    validate_goaml(bundle.files["goaml.xml"])
    first = min(f.height for f in trace.flows)  # block 181: the change is first spent
    when = datetime.fromtimestamp(times[first], UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert when.startswith("2009-01-12")
    assert f"<date_transaction>{when}</date_transaction>".encode() in bundle.files["goaml.xml"]
