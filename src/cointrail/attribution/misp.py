"""MISP events: ``btc`` and ``xmr`` attributes and ``coin-address`` objects, read with pymisp.

A file is a MISP event export when its JSON is ``{"Event": {...}}``, a list of those, or a
search answer ``{"response": [{"Event": {...}}, ...]}``. Each event is loaded with
``pymisp.MISPEvent``; from it come

- top-level attributes of type ``btc`` (currency BTC) and ``xmr`` (XMR);
- objects named ``coin-address``: the ``address`` attribute, with its currency from the
  object's ``symbol`` attribute (or, without one, from the address attribute's ``btc``/``xmr``
  type).

Each address becomes a tag: label = the event's info, source = the creating organisation
(``Orgc``), lastmod = the event date, confidence = the one given to the import (MISP carries no
GraphSense confidence; default ``trusted_provider``). The context (JSON) keeps the event uuid,
info, date, threat level, all event tags, the TLP tag(s), and the attribute's uuid, category,
comment and ``to_ids``. Addresses are validated for their chain like every other tag; a bad one
is reported with the line of its uuid in the file. Deleted attributes and objects are skipped,
as MISP itself hides them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cointrail.attribution.chains import ZERO_EVM_ADDRESS, canonical_address
from cointrail.attribution.problems import ProblemLog
from cointrail.attribution.tagpacks import TAG_COLUMNS, PackResult
from cointrail.attribution.taxonomy import load_taxonomy
from cointrail.errors import AddressError, InputError

MISP_CONFIDENCE = "trusted_provider"
ATTRIBUTE_CURRENCY = {"btc": "BTC", "xmr": "XMR"}
THREAT_LEVELS = {"1": "high", "2": "medium", "3": "low", "4": "undefined"}


def misp_events(raw: bytes) -> list[dict[str, Any]] | None:
    """The ``{"Event": ...}`` documents of a MISP export, or None when it is not one."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    items = doc if isinstance(doc, list) else [doc]
    if items and all(isinstance(i, dict) and isinstance(i.get("Event"), dict) for i in items):
        return items
    return None


@dataclass(slots=True)
class _Located:
    text: str

    def line_of(self, needle: str | None) -> int | None:
        """The line of the first occurrence of `needle` (an uuid) in the file."""
        if not needle:
            return None
        at = self.text.find(needle)
        return None if at < 0 else self.text.count("\n", 0, at) + 1


def read_misp(
    file: str,
    raw: bytes,
    events: list[dict[str, Any]],
    *,
    confidence: str = MISP_CONFIDENCE,
) -> PackResult:
    """Tags from the events of one MISP export file; every problem in the result's log."""
    from pymisp import MISPEvent

    tax = load_taxonomy()
    log = ProblemLog(file)
    columns: dict[str, list[Any]] = {c: [] for c in TAG_COLUMNS}
    result = PackResult("misp", None, columns, log)
    if confidence not in tax.confidence:
        raise InputError(f"MISP confidence {confidence!r} is not on the confidence scale")
    where = _Located(raw.decode("utf-8", "replace"))
    dates: list[str] = []
    infos: list[str] = []
    for item in events:
        event = MISPEvent()
        try:
            event.load(item)
        except Exception as exc:  # pymisp raises its own and plain errors for bad events
            uuid = item["Event"].get("uuid")
            log.add(where.line_of(uuid), "format", f"event {uuid}: not a MISP event: {exc}")
            continue
        context = _event_context(event)
        if context["date"]:
            dates.append(context["date"])
        infos.append(str(event.info or ""))
        source = _org(event)
        found: list[tuple[str, str, Any, Any]] = []  # currency, address, attribute, object
        for attr in event.attributes:
            code = ATTRIBUTE_CURRENCY.get(str(attr.type))
            if code is not None and not getattr(attr, "deleted", False):
                found.append((code, str(attr.value), attr, None))
        for obj in event.objects:
            if obj.name != "coin-address" or getattr(obj, "deleted", False):
                continue
            relations = {str(a.object_relation): a for a in obj.attributes
                         if not getattr(a, "deleted", False)}
            addr = relations.get("address")
            if addr is None:
                log.add(where.line_of(obj.uuid), "schema",
                        f"coin-address object {obj.uuid} has no address attribute")
                result.rejected += 1
                continue
            symbol = relations.get("symbol")
            code = str(symbol.value).strip().upper() if symbol is not None else \
                ATTRIBUTE_CURRENCY.get(str(addr.type))
            if not code:
                log.add(where.line_of(obj.uuid), "schema",
                        f"coin-address object {obj.uuid} has no symbol and its address type "
                        f"{addr.type!r} names no currency")
                result.rejected += 1
                continue
            found.append((code, str(addr.value), addr, obj))
        for code, value, attr, obj in found:
            try:
                canon = canonical_address(code, value)
                if canon.text == ZERO_EVM_ADDRESS:
                    raise AddressError("the zero address is a burn sink, not an attributable "
                                       "account")
            except AddressError as exc:
                log.add(where.line_of(attr.uuid), "address",
                        f"event {event.uuid} attribute {attr.uuid}: {value[:100]!r} "
                        f"({code}): {exc}")
                result.rejected += 1
                continue
            own = {
                **context,
                "attribute_uuid": attr.uuid,
                "attribute_category": getattr(attr, "category", None),
                "comment": getattr(attr, "comment", None) or None,
                "to_ids": bool(getattr(attr, "to_ids", False)),
            }
            if obj is not None:
                own["object_uuid"] = obj.uuid
            columns["chain"].append(canon.chain)
            columns["network"].append(canon.network)
            columns["currency"].append(code)
            columns["address"].append(canon.text)
            columns["label"].append(str(event.info or "MISP event"))
            columns["category"].append(None)
            columns["abuse"].append(None)
            columns["concepts"].append(None)
            columns["actor"].append(None)
            columns["confidence"].append(confidence)
            columns["confidence_level"].append(tax.confidence[confidence])
            columns["source"].append(source)
            columns["lastmod"].append(context["date"])
            columns["is_cluster_definer"].append(None)
            columns["tag_type"].append(None)
            columns["context"].append(json.dumps(own, sort_keys=True, default=str))
            columns["author"].append(_org(event, "Org"))
            columns["case_ref"].append(None)
            columns["line"].append(where.line_of(attr.uuid))
    result.title = infos[0] if len(infos) == 1 else f"{len(infos)} MISP events"
    result.header = {"lastmod": max(dates) if dates else None}
    return result


def _org(event: Any, key: str = "Orgc") -> str:
    org = getattr(event, key, None)
    name = org.get("name") if org is not None else None
    return str(name) if name else "MISP"


def _event_context(event: Any) -> dict[str, Any]:
    tags = [str(t.name) for t in event.tags]
    day = getattr(event, "date", None)
    level = getattr(event, "threat_level_id", None)
    return {
        "misp_event_uuid": event.uuid,
        "misp_event_info": event.info,
        "date": day.isoformat() if day is not None else None,
        "threat_level": THREAT_LEVELS.get(str(level)) if level is not None else None,
        "tags": tags,
        "tlp": [t for t in tags if t.lower().startswith("tlp:")],
    }
