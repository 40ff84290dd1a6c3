"""STIX 2.1 bundle of a case (stix2): wallets and transactions as new SCOs defined by this
module's extension-definitions (core STIX 2.1 has no cryptocurrency object; LEGAL.md §4.6),
the services they were attributed to as `identity` objects with relationships, one `report`
holding everything, and the TLP 2.0 and use-restriction markings on every object.

Ids are deterministic: SCOs by their ID-contributing properties (STIX 2.1 §2.9), every other
object by a UUIDv5 of the case reference and what it stands for, so the same case exports the
same bundle bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import stix2  # type: ignore[import-untyped]
from stix2.properties import (  # type: ignore[import-untyped]
    DictionaryProperty,
    IntegerProperty,
    ListProperty,
    StringProperty,
    TimestampProperty,
)

from cointrail.exports.options import ExportOptions, UseRestrictions
from cointrail.reporting.facts import addresses, services, transactions

#: Namespace of cointrail's deterministic STIX ids.
NAMESPACE = uuid.UUID("2f1f7a5e-8c0a-5b0e-9a0b-636f696e7472")
WALLET_EXTENSION = "extension-definition--7d3a4f8e-5b1c-5e2a-9d6f-2a8c1b4e6f01"
TRANSACTION_EXTENSION = "extension-definition--7d3a4f8e-5b1c-5e2a-9d6f-2a8c1b4e6f02"
EXTENSION_CREATED = "2026-12-01T00:00:00.000Z"
#: TLP 2.0 marking definitions as published by OASIS (extension-definition--60a3c5c5-…).
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}


@stix2.v21.CustomObservable(
    "cryptocurrency-wallet",
    [("address", StringProperty(required=True)),
     ("chain", StringProperty()), ("network", StringProperty()), ("symbol", StringProperty())],
    id_contrib_props=["address"], extension_name=WALLET_EXTENSION)
class CryptocurrencyWallet:
    """A cryptocurrency address (`address` required; the ID-contributing property)."""


@stix2.v21.CustomObservable(
    "cryptocurrency-transaction",
    [("symbol", StringProperty(required=True)), ("value", StringProperty(required=True)),
     ("chain", StringProperty()), ("network", StringProperty()),
     ("block_height", IntegerProperty(min=0)), ("execution_time", TimestampProperty()),
     ("fee", IntegerProperty(min=0)),
     ("input", ListProperty(DictionaryProperty())),
     ("output", ListProperty(DictionaryProperty()))],
    id_contrib_props=["symbol", "value"], extension_name=TRANSACTION_EXTENSION)
class CryptocurrencyTransaction:
    """A transaction: `value` is the txid, amounts are integers in the smallest unit."""


def _new(cls: Any, **properties: Any) -> Any:
    """An instance of a custom observable class (its properties are made by stix2)."""
    return cls(**properties)


def sdo_id(kind: str, reference: str, what: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, f'{reference}/{kind}/{what}')}"


def _extension_definitions(creator: str, markings: list[str]) -> list[Any]:
    common = {"created_by_ref": creator, "created": EXTENSION_CREATED,
              "modified": EXTENSION_CREATED, "version": "1.0", "extension_types": ["new-sco"],
              "object_marking_refs": markings}
    return [
        stix2.v21.ExtensionDefinition(
            id=WALLET_EXTENSION, name="cryptocurrency-wallet",
            description="A cryptocurrency address. Properties: address (required, "
            "ID-contributing), chain, network, symbol.",
            schema="Plain text: see cointrail docs/reports-and-exports.md, section 'STIX "
            "cryptocurrency objects'. Modelled on the community cryptocurrency-wallet SCO.",
            **common),
        stix2.v21.ExtensionDefinition(
            id=TRANSACTION_EXTENSION, name="cryptocurrency-transaction",
            description="A cryptocurrency transaction. Properties: symbol and value (the txid; "
            "both required and ID-contributing), chain, network, block_height, execution_time "
            "(block header time), fee, input and output: lists of {address_ref -> "
            "cryptocurrency-wallet, amount (integer, smallest unit, e.g. satoshi), vout}. "
            "Only the traced (tainted) parts are listed.",
            schema="Plain text: see cointrail docs/reports-and-exports.md, section 'STIX "
            "cryptocurrency objects'. Modelled on the community cryptocurrency-transaction SCO.",
            **common),
    ]


def build_stix(snapshot: Mapping[str, Any], options: ExportOptions,
               restrictions: UseRestrictions) -> bytes:
    """The STIX 2.1 bundle as JSON bytes."""
    from cointrail.reporting.facts import case_meta

    ref = restrictions.case_reference
    at = restrictions.created_at
    case = case_meta(snapshot)
    authority = case.get("authority") or {}
    tlp = restrictions.tlp
    tlp_marking = stix2.v21.MarkingDefinition(
        id=TLP2_IDS[tlp.level], created="2022-10-01T00:00:00.000Z", name=tlp.label,
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension",
                                     "tlp_2_0": tlp.level}}, allow_custom=True)
    statement = stix2.v21.MarkingDefinition(
        id=sdo_id("marking-definition", ref, f"restrictions/{at}/{restrictions.recipient}"),
        created=at, name=f"Use restrictions, case {ref}", definition_type="statement",
        definition=stix2.v21.StatementMarking(statement=restrictions.text()))
    markings = [tlp_marking.id, statement.id]
    creator = stix2.v21.Identity(
        id=sdo_id("identity", ref, "originating-authority"), created=at, modified=at,
        name=str(authority.get("name") or restrictions.originating_authority),
        identity_class="organization",
        description=f"{authority.get('unit', '')} ({restrictions.originating_state})".strip(),
        contact_information=", ".join(str(authority[k]) for k in ("contact", "email", "poc_247")
                                      if authority.get(k)) or None,
        object_marking_refs=markings)
    objects: list[Any] = [tlp_marking, statement, creator,
                          *_extension_definitions(creator.id, markings)]

    wallet_ids: dict[tuple[str, str, str], str] = {}
    for a in addresses(snapshot):
        w = _new(CryptocurrencyWallet,address=a.address, chain=a.chain, network=a.network,
                                 symbol=a.ticker, object_marking_refs=markings)
        wallet_ids[(a.chain, a.network, a.address)] = w.id
        objects.append(w)
    for t in transactions(snapshot):
        def side(rows: Any, with_vout: bool, t: Any = t) -> list[dict[str, Any]]:
            out = []
            for row in rows:
                address, amount = row[0], row[-1]
                if address is None:
                    continue
                entry: dict[str, Any] = {"address_ref": wallet_ids[(t.chain, t.network, address)],
                                         "amount": amount}
                if with_vout:
                    entry["vout"] = row[1]
                out.append(entry)
            return out
        fee = sum(amount for address, vout, amount in t.outputs if vout is None)
        when = options.block_times.get(t.height)
        objects.append(_new(CryptocurrencyTransaction,
            symbol=t.ticker, value=t.txid, chain=t.chain, network=t.network,
            block_height=t.height,
            execution_time=None if when is None else _iso(when),
            fee=fee or None, input=side(t.inputs, False) or None,
            output=side(t.outputs, True) or None, object_marking_refs=markings))
    by_address = {a: v for (_, _, a), v in wallet_ids.items()}
    for s in services(snapshot):
        ident = stix2.v21.Identity(
            id=sdo_id("identity", ref, f"service/{s.label}"), created=at, modified=at,
            name=s.legal_entity or s.label, identity_class="organization",
            sectors=["financial-services"] if s.category == "exchange" else None,
            description=f"{s.category} (attribution label {s.label!r})"
            + (f", jurisdiction {s.jurisdiction}" if s.jurisdiction else ""),
            created_by_ref=creator.id, object_marking_refs=markings)
        objects.append(ident)
        for address in s.addresses:
            source = by_address[address]
            objects.append(stix2.v21.Relationship(
                id=sdo_id("relationship", ref, f"{address}->{s.label}"), created=at,
                modified=at, relationship_type="related-to", source_ref=source,
                target_ref=ident.id, created_by_ref=creator.id,
                description=f"trace endpoint attributed to {s.label} ({s.category})",
                object_marking_refs=markings))
    report = stix2.v21.Report(
        id=sdo_id("report", ref, f"export/{at}/{restrictions.recipient}"), created=at,
        modified=at, published=at, name=f"cointrail case {ref}: {case.get('title', '')}",
        description=f"Traced funds of case {ref}. {restrictions.text()}",
        report_types=["investigation"], created_by_ref=creator.id,
        object_refs=[o.id for o in objects if o.type != "marking-definition"],
        object_marking_refs=markings, allow_custom=True)
    objects.append(report)
    bundle = stix2.v21.Bundle(
        id=f"bundle--{uuid.uuid5(NAMESPACE, f'{ref}/bundle/{at}/{restrictions.recipient}')}",
        objects=objects, allow_custom=True)
    text: str = bundle.serialize(pretty=True)
    return (text + "\n").encode("utf-8")


def _iso(unix_seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
