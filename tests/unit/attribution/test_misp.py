"""MISP event exports: btc/xmr attributes and coin-address objects become tags with the event as
context (TLP kept, organisation as source); bad addresses are problems with the line of their
uuid. The fixtures follow MISP's JSON event export (Event with Orgc, Tag, Attribute, Object)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cointrail.attribution import AttributionStore, import_tags, screen
from cointrail.attribution.chains import keccak256
from cointrail.chain.utxo.address import B58_ALPHABET

BTC = "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
EVENT_UUID = "5f3a1c2e-8b4d-4e6f-9a1b-2c3d4e5f6a01"
ORG = {"id": "7", "name": "CERT-Example", "uuid": "5f3a1c2e-8b4d-4e6f-9a1b-2c3d4e5f6a99",
       "local": True}


def monero_address(seed: bytes) -> str:
    """A standard Monero address (prefix 18) with a correct Keccak checksum, encoded in
    Monero's block base58 (8-byte blocks → 11 characters, the 5-byte tail → 7)."""
    keys = keccak256(seed) + keccak256(seed + b"view")
    raw = bytes([18]) + keys
    raw += keccak256(raw)[:4]
    sizes = {8: 11, 5: 7}
    out = ""
    for start in range(0, len(raw), 8):
        block = raw[start:start + 8]
        value = int.from_bytes(block, "big")
        chars = ""
        while value:
            value, digit = divmod(value, 58)
            chars = B58_ALPHABET[digit] + chars
        out += chars.rjust(sizes[len(block)], B58_ALPHABET[0])
    return out


XMR = monero_address(b"cointrail-test")


def attribute(uuid: str, type_: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(int(uuid[-4:], 16)), "type": type_, "category": "Financial fraud",
        "to_ids": True, "uuid": uuid, "event_id": "42", "distribution": "5",
        "timestamp": "1700000000", "comment": "", "sharing_group_id": "0", "deleted": False,
        "disable_correlation": False, "object_id": "0", "object_relation": None,
        "first_seen": None, "last_seen": None, "value": value, "Galaxy": [],
        "ShadowAttribute": [], **extra,
    }


def coin_object(uuid: str, attrs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "3", "name": "coin-address", "meta-category": "financial",
        "description": "An address used in a cryptocurrency",
        "template_uuid": "d0e6997e-78da-4815-a6a1-cfc1c1cb8a46", "template_version": "5",
        "event_id": "42", "uuid": uuid, "timestamp": "1700000000", "distribution": "5",
        "sharing_group_id": "0", "comment": "", "deleted": False, "first_seen": None,
        "last_seen": None, "ObjectReference": [], "Attribute": attrs,
    }


def relation(uuid: str, name: str, type_: str, value: str) -> dict[str, Any]:
    return attribute(uuid, type_, value, object_relation=name, object_id="3",
                     category="Financial fraud" if name == "address" else "Other")


def event(uuid: str, info: str, day: str, attributes: list[dict[str, Any]],
          objects: list[dict[str, Any]], tags: list[str]) -> dict[str, Any]:
    return {"Event": {
        "id": "42", "orgc_id": "7", "org_id": "7", "date": day, "threat_level_id": "1",
        "info": info, "published": True, "uuid": uuid, "attribute_count": str(len(attributes)),
        "analysis": "2", "timestamp": "1700000000", "distribution": "1",
        "proposal_email_lock": False, "locked": False, "publish_timestamp": "1700000100",
        "sharing_group_id": "0", "disable_correlation": False, "extends_uuid": "",
        "event_creator_email": "analyst@example.invalid",
        "Org": ORG, "Orgc": ORG,
        "Attribute": attributes, "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [],
        "Object": objects, "EventReport": [],
        "Tag": [{"id": str(i), "name": name, "colour": "#ffffff", "exportable": True,
                 "user_id": "0", "hide_tag": False, "numerical_value": None,
                 "is_galaxy": False, "is_custom_galaxy": False, "local_only": False,
                 "local": 0} for i, name in enumerate(tags)],
    }}


RANSOM = event(
    EVENT_UUID, "Ransomware campaign payments", "2023-04-05",
    [
        attribute("a0000000-0000-4000-8000-000000000001", "btc", BTC),
        attribute("a0000000-0000-4000-8000-000000000002", "xmr", XMR, comment="ransom note"),
        attribute("a0000000-0000-4000-8000-000000000003", "btc", BTC[:-1] + "e"),  # typo
        attribute("a0000000-0000-4000-8000-000000000004", "ip-dst", "192.0.2.7"),
        attribute("a0000000-0000-4000-8000-000000000005", "btc", BTC, deleted=True),
    ],
    [
        coin_object("b0000000-0000-4000-8000-000000000001", [
            relation("c0000000-0000-4000-8000-000000000001", "address", "btc", ETH),
            relation("c0000000-0000-4000-8000-000000000002", "symbol", "text", "ETH"),
        ]),
        coin_object("b0000000-0000-4000-8000-000000000002", [
            relation("c0000000-0000-4000-8000-000000000003", "address", "btc", ETH),
            relation("c0000000-0000-4000-8000-000000000004", "symbol", "text", "BTC"),
        ]),
    ],
    ["tlp:amber", "misp-galaxy:ransomware=\"Example\""],
)
SCAM = event("5f3a1c2e-8b4d-4e6f-9a1b-2c3d4e5f6a02", "Investment scam", "2023-06-01",
             [attribute("a0000000-0000-4000-8000-000000000009", "btc", BTC)], [],
             ["tlp:green"])


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_event_attributes_and_coin_address_objects_become_tags(
    store: AttributionStore, tmp_path: Path
) -> None:
    folder = tmp_path / "misp"
    folder.mkdir()
    single = folder / "ransom.json"
    single.write_text(json.dumps(RANSOM, indent=2))
    both = folder / "export.json"
    both.write_text(json.dumps([RANSOM, SCAM], indent=1))
    (folder / "other.json").write_text(json.dumps({"not": "misp"}))
    report = import_tags(store, [folder])
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["other.json"].skipped is not None
    assert by_name["ransom.json"].kind == "misp"
    assert by_name["ransom.json"].records == 3  # btc, xmr, the ETH coin-address
    assert by_name["ransom.json"].rejected == 2  # the typo, ETH given symbol BTC
    assert by_name["export.json"].records == 4

    rows = store.query(
        "SELECT address, chain, currency, label, source, lastmod, confidence, line, context "
        "FROM tags JOIN list_versions USING (version_id) WHERE name = 'ransom.json' "
        "ORDER BY tag_id")
    text = single.read_text()
    assert [r[:8] for r in rows] == [
        (BTC, "bitcoin", "BTC", "Ransomware campaign payments", "CERT-Example", "2023-04-05",
         "trusted_provider", _line_of(text, "a0000000-0000-4000-8000-000000000001")),
        (XMR, "monero", "XMR", "Ransomware campaign payments", "CERT-Example", "2023-04-05",
         "trusted_provider", _line_of(text, "a0000000-0000-4000-8000-000000000002")),
        (ETH.lower(), "ethereum", "ETH", "Ransomware campaign payments", "CERT-Example",
         "2023-04-05", "trusted_provider",
         _line_of(text, "c0000000-0000-4000-8000-000000000001")),
    ]
    context = json.loads(rows[1][8])
    assert context["tlp"] == ["tlp:amber"]
    assert context["threat_level"] == "high"
    assert context["misp_event_uuid"] == EVENT_UUID
    assert context["comment"] == "ransom note"
    assert context["to_ids"] is True
    assert "object_uuid" in json.loads(rows[2][8])

    problems = store.query(
        "SELECT line, kind FROM import_problems WHERE file = ? ORDER BY line", [str(single)])
    assert problems == [
        (_line_of(text, "a0000000-0000-4000-8000-000000000003"), "address"),
        (_line_of(text, "c0000000-0000-4000-8000-000000000003"), "address"),
    ]
    versions = {v["name"]: v for v in store.versions()}
    assert versions["ransom.json"]["kind"] == "misp"
    assert versions["ransom.json"]["title"] == "Ransomware campaign payments"
    assert versions["ransom.json"]["published"] == "2023-04-05"
    assert versions["export.json"]["published"] == "2023-06-01"
    assert versions["export.json"]["title"] == "2 MISP events"
    assert versions["ransom.json"]["sha256"] != versions["export.json"]["sha256"]


def test_screening_shows_the_event_and_its_tlp(store: AttributionStore, tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"response": [SCAM]}))
    import_tags(store, [path], misp_confidence="forensic")
    [row] = screen(store, [BTC]).to_dicts()
    [tag] = row["tags"]
    assert (tag["label"], tag["confidence"], tag["source"]) == (
        "Investment scam", "forensic", "CERT-Example")
    assert json.loads(tag["context"])["tlp"] == ["tlp:green"]


def test_a_broken_monero_checksum_is_refused(store: AttributionStore, tmp_path: Path) -> None:
    flipped = XMR[:-1] + ("2" if XMR[-1] != "2" else "3")
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event(EVENT_UUID, "x", "2023-01-01", [
        attribute("a0000000-0000-4000-8000-0000000000aa", "xmr", flipped)], [], [])))
    report = import_tags(store, [path])
    assert report.totals()["rejected"] == 1
    [(kind, message)] = store.query("SELECT kind, message FROM import_problems")
    assert kind == "address" and "a0000000-0000-4000-8000-0000000000aa" in message
