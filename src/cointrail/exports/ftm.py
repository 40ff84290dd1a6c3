"""FollowTheMoney entities of a case (followthemoney): a `CryptoWallet` per address, a
`Company` per attributed service (the exchange), a `Payment` per traced flow between two
addresses, and a `LegalEntity` standing for each wallet's unidentified holder, because FtM's
Payment links legal entities, not wallets (LEGAL.md §4.7). Written as JSON lines, one entity per
line; every entity passes the model's validation before it is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cointrail.errors import Problem, ValidationError
from cointrail.exports.options import ExportOptions, UseRestrictions
from cointrail.reporting.facts import (
    addresses,
    plain_coin_text,
    services,
    trace_findings,
)


def _id(ref: str, *parts: str) -> str:
    from followthemoney.util import make_entity_id

    entity_id = make_entity_id("cointrail", ref, *parts)
    assert entity_id is not None
    return entity_id


def build_ftm(snapshot: Mapping[str, Any], options: ExportOptions,
              restrictions: UseRestrictions) -> bytes:
    """The entities as JSON lines (UTF-8)."""
    from followthemoney import model

    ref = restrictions.case_reference
    notes = restrictions.text()
    entities: dict[str, Any] = {}

    def make(schema: str, entity_id: str, **props: Any) -> Any:
        proxy = model.make_entity(schema)
        proxy.id = entity_id
        for key, value in props.items():
            if value is None:
                continue
            for v in value if isinstance(value, list | tuple) else [value]:
                proxy.add(key, v)
        proxy.add("notes" if proxy.schema.get("notes") else "description", notes)
        entities[entity_id] = proxy
        return proxy

    companies: dict[str, Any] = {}
    for s in services(snapshot):
        companies[s.label] = make(
            "Company", _id(ref, "service", s.label), name=s.legal_entity or s.label,
            alias=s.label if s.legal_entity else None, jurisdiction=s.jurisdiction,
            sector=s.category, description=f"{s.category} attributed in case {ref}")
    service_of = {a: s.label for s in services(snapshot) for a in s.addresses}
    holders: dict[str, str] = {}
    for a in addresses(snapshot):
        label = service_of.get(a.address)
        if label is not None:
            holder = companies[label].id
        else:
            holder = make("LegalEntity", _id(ref, "holder", a.chain, a.address),
                          name=f"unidentified holder of {a.chain} address {a.address}",
                          description="placeholder: the holder of this address is not "
                          "identified").id
        holders[a.address] = holder
        make("CryptoWallet", _id(ref, "wallet", a.chain, a.network, a.address),
             publicKey=a.address, currencySymbol=a.ticker, currency=a.ticker,
             blockchain=a.chain, holder=holder, managingExchange=label,
             amount=plain_coin_text(a.received) if a.received else None,
             summary=f"{', '.join(a.categories) or 'traced'}; {', '.join(a.sources)}")
    for t in trace_findings(snapshot):
        addr = {n.key: n.address for n in t.nodes}
        addr |= {p.key: p.address for p in t.endpoints if p.address}
        for f in t.flows:
            payer, payee = addr.get(f.from_key), addr.get(f.to_key)
            if payer is None or payee is None:
                continue  # fees and address-less outputs have no beneficiary
            when = options.block_times.get(f.height)
            make("Payment", _id(ref, "payment", t.chain, f.txid, f.from_key, f.to_key),
                 payer=holders[payer], beneficiary=holders[payee],
                 amount=plain_coin_text(f.amount, t.coin.decimals), currency=t.coin.ticker,
                 transactionNumber=f.txid,
                 date=None if when is None else
                 datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                 summary=f"{payer} -> {payee}, {f.amount} sat in {f.txid} at height "
                 f"{f.height} (trace {t.id}, {t.model})",
                 purpose=f"traced flow, case {ref}")
    problems = []
    lines = []
    for entity_id in sorted(entities):
        proxy = entities[entity_id]
        errors = validate_entity(proxy.to_dict())
        problems += [Problem(f"{proxy.schema.name} {entity_id}", None, e) for e in errors]
        lines.append(json.dumps(proxy.to_dict(), sort_keys=True, ensure_ascii=False))
    if problems:
        raise ValidationError("FollowTheMoney entities fail the model's validation", problems)
    return ("\n".join(lines) + "\n").encode("utf-8")


def validate_entity(data: Mapping[str, Any]) -> list[str]:
    """Problems of one entity dict against the FtM model: unknown schema, unknown property,
    values the property type rejects, missing required properties."""
    from followthemoney import model

    schema = model.get(data.get("schema") or "")
    if schema is None:
        return [f"unknown schema {data.get('schema')!r}"]
    from followthemoney.exc import InvalidData

    problems = []
    props = data.get("properties") or {}
    problems += [f"{schema.name} has no property {name!r}" for name in sorted(props)
                 if schema.get(name) is None]
    try:
        schema.validate(data)  # type: ignore[arg-type]
    except InvalidData as exc:
        errors = (exc.errors or {}).get("properties", {})
        problems += [f"{name}: {error}" for name, error in sorted(errors.items())]
    problems += [f"missing required property {p!r}" for p in sorted(schema.required)
                 if not props.get(p)]
    return problems
