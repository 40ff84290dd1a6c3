"""MISP event of a case (pymisp): a ``btc`` attribute per bitcoin address, a ``coin-address``
object per address of any chain, a ``btc-transaction`` object per bitcoin transaction, the TLP
tag, and the use restrictions as a tagged ``text`` attribute (LEGAL.md §4.5).

UUIDs and timestamps come from the case, so the same case exports the same event bytes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cointrail.errors import Problem, ValidationError
from cointrail.exports.options import ExportOptions, UseRestrictions
from cointrail.reporting.facts import addresses, case_meta, plain_coin_text, transactions

NAMESPACE = uuid.UUID("5e3c1d2a-7f4b-5c6d-8e9f-6d6973700000")
BTC_CHAINS = frozenset({"bitcoin"})


def _uuid(ref: str, what: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{ref}/{what}"))


def parse_time(text: str) -> datetime:
    """A snapshot time (``2026-11-28T16:40:00.123456Z``) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def missing_times(snapshot: Mapping[str, Any], block_times: Mapping[int, int]) -> list[int]:
    return sorted({t.height for t in transactions(snapshot)} - set(block_times))


def build_misp(snapshot: Mapping[str, Any], options: ExportOptions,
               restrictions: UseRestrictions) -> bytes:
    """The MISP event as JSON bytes (``{"Event": {...}}``)."""
    from pymisp import MISPEvent, MISPObject

    missing = missing_times(snapshot, options.block_times)
    if missing:
        raise ValidationError("MISP btc-transaction objects need each transaction's time", [
            Problem("block_times", None, f"no header time for block {h}; export through the "
                    "CLI (it reads them from the chain store) or pass block_times")
            for h in missing])
    ref = restrictions.case_reference
    case = case_meta(snapshot)
    at = parse_time(restrictions.created_at)
    event = MISPEvent()
    event.uuid = _uuid(ref, f"event/{restrictions.created_at}/{restrictions.recipient}")
    event.info = f"cointrail case {ref}: {case.get('title', '')}"
    event.date = at.date()
    event.timestamp = at
    event.publish_timestamp = at
    event.distribution = 0  # your organisation only; the recipient decides onward sharing
    event.threat_level_id = 2
    event.analysis = 1
    event.add_tag(restrictions.tlp.label.lower())
    stamp = {"timestamp": at}

    def finish(obj: Any, what: str) -> None:
        obj.uuid = _uuid(ref, what)
        obj.timestamp = at
        for i, attribute in enumerate(obj.attributes):
            attribute.uuid = _uuid(ref, f"{what}/{i}/{attribute.object_relation}")
            attribute.timestamp = at

    note: Any = event.add_attribute("text", restrictions.text(), category="Other",
                               comment="use restrictions", to_ids=False, **stamp)
    note.uuid = _uuid(ref, "restrictions")
    for a in addresses(snapshot):
        comment = "; ".join(filter(None, [", ".join(a.categories), ", ".join(a.labels),
                                          ", ".join(a.sources)]))
        if a.chain in BTC_CHAINS:
            attr: Any = event.add_attribute("btc", a.address, category="Financial fraud",
                                       comment=comment, to_ids=False, **stamp)
            attr.uuid = _uuid(ref, f"btc/{a.address}")
        obj = MISPObject("coin-address", standalone=False)
        if a.chain in BTC_CHAINS:
            obj.add_attribute("address", value=a.address)
        else:
            obj.add_attribute("address-crypto", value=a.address)
        obj.add_attribute("symbol", value=a.ticker)
        if a.received:
            obj.add_attribute("total-received", value=float(plain_coin_text(a.received)))
        obj.add_attribute("text", value=f"{a.chain}/{a.network}; {comment}")
        finish(obj, f"coin-address/{a.chain}/{a.network}/{a.address}")
        event.add_object(obj)
    for t in transactions(snapshot):
        if t.chain not in BTC_CHAINS:
            continue
        obj = MISPObject("btc-transaction", standalone=False)
        obj.add_attribute("transaction-number", value=t.txid)
        obj.add_attribute("time", value=datetime.fromtimestamp(options.block_times[t.height],
                                                               UTC))
        moved = sum(amount for _, vout, amount in t.outputs if vout is not None)
        obj.add_attribute("value_BTC", value=float(plain_coin_text(moved, t.decimals)))
        for address in sorted({a for a, _, _ in t.outputs if a}):
            obj.add_attribute("btc-address", value=address)
        finish(obj, f"btc-transaction/{t.txid}")
        event.add_object(obj)
    doc = json.loads(event.to_json())
    return (json.dumps({"Event": doc}, indent=2, sort_keys=True, ensure_ascii=False)
            + "\n").encode("utf-8")
