"""GraphSense TagPacks and ActorPacks: read, validate against schema and taxonomy, yield rows.

Rules (the TagPack tool's schema in ``taxonomy/tagpack_schema.yaml``):

- header fields that are also tag fields (``currency``, ``confidence``, ``category``, ...) are
  defaults for every tag of the pack; a tag's own value wins;
- mandatory tag fields: ``label``, ``source``, ``currency``, ``confidence`` and an ``address``
  (``network`` is mandatory in the newer schema, but no published pack sets it: a missing one
  means the currency's mainnet);
- ``confidence`` from the confidence scale, ``category``/``abuse``/``concepts`` from the concept
  taxonomy, ``tag_type`` from the tag types, ``lastmod`` a date, ``is_cluster_definer`` a boolean;
- header fields that are actor fields (``lastmod``) are likewise defaults for every actor;
- the address must be valid for the currency's chain (`chains.canonical_address`); the zero EVM
  address is refused (it is a burn sink, not an attributable account).

A tag that breaks a rule is not loaded and the problem names file, line and rule; an unknown
field is reported and ignored (the tag still loads). Nothing is dropped without a problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import yaml

from cointrail.attribution.chains import ZERO_EVM_ADDRESS, CanonicalAddress, canonical_address
from cointrail.attribution.problems import ProblemLog
from cointrail.attribution.taxonomy import FieldSpec, Taxonomy, load_taxonomy
from cointrail.attribution.yamlevents import LineDict, load_with_lines
from cointrail.errors import AddressError
from cointrail.textvalues import yes_no

_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

TAG_COLUMNS = (
    "chain", "network", "currency", "address", "label", "category", "abuse", "concepts", "actor",
    "confidence", "confidence_level", "source", "lastmod", "is_cluster_definer", "tag_type",
    "context", "author", "case_ref", "line",
)
ACTOR_COLUMNS = (
    "actor_id", "label", "uri", "categories", "jurisdictions", "aliases", "lastmod", "context",
    "line",
)


@dataclass(slots=True)
class PackResult:
    """What one pack file gave: column lists ready for Arrow, and its problems."""

    kind: str  # "tagpack" or "actorpack"
    title: str | None
    columns: dict[str, list[Any]]
    problems: ProblemLog
    rejected: int = 0
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> int:
        first = next(iter(self.columns.values()), [])
        return len(first)


def parse_bool(value: Any) -> bool:
    answer = yes_no(value, _TRUE, _FALSE)
    if answer is None:
        raise ValueError(f"{value!r} is not a boolean (true or false)")
    return answer


def parse_date(value: Any) -> str:
    """An ISO 8601 date (``YYYY-MM-DD``) from a date, datetime or date/datetime text."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if _DATE.fullmatch(text):
        return date.fromisoformat(text).isoformat()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def sniff_pack_kind(data: dict[str, Any]) -> str | None:
    if "actors" in data:
        return "actorpack"
    if "tags" in data:
        return "tagpack"
    return None


def load_pack(file: str, raw: bytes) -> tuple[Any, ProblemLog]:
    """The parsed YAML document of a pack, or None with a problem when it is not YAML."""
    log = ProblemLog(file)
    try:
        return load_with_lines(raw), log
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        log.add(line, "format", f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return None, log
    except UnicodeDecodeError as exc:
        log.add(None, "format", f"not UTF-8 text: {exc.reason}")
        return None, log


def _check_header(
    doc: dict[str, Any], spec: dict[str, FieldSpec], extra: Iterable[str], log: ProblemLog
) -> bool:
    ok = True
    allowed = set(spec) | set(extra)
    line = doc.line if isinstance(doc, LineDict) else 1
    for name, fs in spec.items():
        if fs.mandatory and doc.get(name) in (None, ""):
            log.add(line, "schema", f"header field {name!r} is mandatory")
            ok = False
    for name in doc:
        if name not in allowed:
            log.add(line, "schema", f"unknown header field {name!r} ignored")
    return ok


class _TagValidator:
    """Validates tags of one pack; caches address checks (packs repeat addresses)."""

    def __init__(
        self,
        tax: Taxonomy,
        known_actors: frozenset[str] | None,
        cache: dict[tuple[str, str], CanonicalAddress | str] | None,
    ) -> None:
        self.tax = tax
        self.fields = tax.tag_fields
        self.known_actors = known_actors
        self.address_cache = {} if cache is None else cache

    def address(self, currency: str, text: str) -> CanonicalAddress | str:
        key = (currency, text)
        hit = self.address_cache.get(key)
        if hit is None:
            try:
                hit = canonical_address(currency, text)
                if hit.text == ZERO_EVM_ADDRESS:
                    hit = "the zero address is a burn sink, not an attributable account"
            except AddressError as exc:
                hit = str(exc)
            self.address_cache[key] = hit
        return hit


def read_tagpack(
    file: str,
    doc: Any,
    log: ProblemLog,
    *,
    known_actors: frozenset[str] | None = None,
    taxonomy: Taxonomy | None = None,
    address_cache: dict[tuple[str, str], CanonicalAddress | str] | None = None,
) -> PackResult:
    """Validate a parsed TagPack; valid tags as columns, every problem in `log`.

    `address_cache` may be shared between packs of one import (packs repeat addresses).
    """
    tax = taxonomy or load_taxonomy()
    columns: dict[str, list[Any]] = {c: [] for c in TAG_COLUMNS}
    result = PackResult("tagpack", None, columns, log)
    if not isinstance(doc, dict):
        log.add(None, "schema", "a TagPack is a mapping with a 'tags' list")
        return result
    header_ok = _check_header(doc, tax.tagpack_header, tax.tag_fields, log)
    result.title = str(doc.get("title")) if doc.get("title") is not None else None
    tags = doc.get("tags")
    if not isinstance(tags, list):
        log.add(getattr(doc, "line", 1), "schema", "'tags' must be a list of tags")
        return result
    if not header_ok:
        result.rejected = len(tags)
        log.add(getattr(doc, "line", 1), "schema",
                f"header invalid: none of its {len(tags)} tags loaded")
        return result
    defaults = {k: v for k, v in doc.items() if k in tax.tag_fields}
    result.header = {k: v for k, v in doc.items() if k != "tags"}
    author = result.header.get("creator")
    validator = _TagValidator(tax, known_actors, address_cache)
    fields = tax.tag_fields
    concepts, confidence = tax.concepts, tax.confidence
    append = {c: columns[c].append for c in TAG_COLUMNS}
    for tag in tags:
        line = tag.line if isinstance(tag, LineDict) else None
        if not isinstance(tag, dict):
            log.add(line, "schema", "a tag must be a mapping")
            result.rejected += 1
            continue
        merged = {**defaults, **tag} if defaults else tag
        bad = False
        for name in tag:
            if name not in fields:
                log.add(line, "schema", f"unknown tag field {name!r} ignored")
        for name in ("label", "source", "currency", "confidence"):
            if merged.get(name) in (None, ""):
                log.add(line, "schema", f"tag field {name!r} is mandatory")
                bad = True
        address = merged.get("address")
        if address in (None, ""):
            kind = "transaction tags are not supported" if merged.get("tx_hash") else "missing"
            log.add(line, "schema", f"tag field 'address' is mandatory ({kind})")
            bad = True
        conf = merged.get("confidence")
        if conf is not None and conf not in confidence:
            log.add(line, "taxonomy", f"confidence {conf!r} is not on the confidence scale")
            bad = True
        category, abuse = merged.get("category"), merged.get("abuse")
        for name, value in (("category", category), ("abuse", abuse)):
            if value is not None and value not in concepts:
                log.add(line, "taxonomy", f"{name} {value!r} is not a concept of the taxonomy")
                bad = True
        extra = _as_list(merged.get("concepts"))
        for value in extra:
            if value not in concepts:
                log.add(line, "taxonomy", f"concept {value!r} is not in the taxonomy")
                bad = True
        tag_type = merged.get("tag_type")
        if tag_type is not None and tag_type not in tax.tag_types:
            log.add(line, "taxonomy", f"tag_type {tag_type!r} is not a known tag type")
            bad = True
        lastmod = merged.get("lastmod")
        if lastmod is not None:
            try:
                lastmod = parse_date(lastmod)
            except ValueError as exc:
                log.add(line, "schema", f"lastmod: {exc}")
                bad = True
        definer = merged.get("is_cluster_definer")
        if definer is not None:
            try:
                definer = parse_bool(definer)
            except ValueError as exc:
                log.add(line, "schema", f"is_cluster_definer: {exc}")
                bad = True
        actor = merged.get("actor")
        if (actor is not None and validator.known_actors is not None
                and actor not in validator.known_actors):
            log.add(line, "actor", f"actor {actor!r} is not in any imported ActorPack (kept)")
        canon: CanonicalAddress | str | None = None
        if address not in (None, "") and merged.get("currency") not in (None, ""):
            canon = validator.address(str(merged["currency"]), str(address))
            if isinstance(canon, str):
                log.add(line, "address", f"address {str(address)[:100]!r}: {canon}")
                bad = True
        if bad:
            result.rejected += 1
            continue
        assert isinstance(canon, CanonicalAddress)
        context = merged.get("context")
        append["chain"](canon.chain)
        append["network"](merged.get("network") or canon.network)
        append["currency"](str(merged["currency"]).upper())
        append["address"](canon.text)
        append["label"](str(merged["label"]))
        append["category"](category)
        append["abuse"](abuse)
        append["concepts"](",".join(extra) if extra else None)
        append["actor"](None if actor is None else str(actor))
        append["confidence"](conf)
        append["confidence_level"](confidence[str(conf)])
        append["source"](str(merged["source"]))
        append["lastmod"](lastmod)
        append["is_cluster_definer"](definer)
        append["tag_type"](tag_type)
        append["context"](context if context is None or isinstance(context, str)
                          else json.dumps(context, sort_keys=True))
        append["author"](None if author is None else str(author))
        append["case_ref"](None)
        append["line"](line)
    return result


def read_actorpack(
    file: str, doc: Any, log: ProblemLog, *, taxonomy: Taxonomy | None = None
) -> PackResult:
    """Validate a parsed ActorPack; valid actors as columns, every problem in `log`."""
    tax = taxonomy or load_taxonomy()
    columns: dict[str, list[Any]] = {c: [] for c in ACTOR_COLUMNS}
    result = PackResult("actorpack", None, columns, log)
    if not isinstance(doc, dict):
        log.add(None, "schema", "an ActorPack is a mapping with an 'actors' list")
        return result
    header_ok = _check_header(doc, tax.actorpack_header, ("lastmod",), log)
    result.title = str(doc.get("title")) if doc.get("title") is not None else None
    actors = doc.get("actors")
    if not isinstance(actors, list):
        log.add(getattr(doc, "line", 1), "schema", "'actors' must be a list")
        return result
    if not header_ok:
        result.rejected = len(actors)
        return result
    result.header = {k: v for k, v in doc.items() if k != "actors"}
    fields = tax.actor_fields
    defaults = {k: v for k, v in doc.items() if k in fields}
    seen: set[str] = set()
    for own in actors:
        line = own.line if isinstance(own, LineDict) else None
        if not isinstance(own, dict):
            log.add(line, "schema", "an actor must be a mapping")
            result.rejected += 1
            continue
        bad = False
        for name in own:
            if name not in fields:
                log.add(line, "schema", f"unknown actor field {name!r} ignored")
        actor = {**defaults, **own}
        for name, fs in fields.items():
            if fs.mandatory and actor.get(name) in (None, ""):
                log.add(line, "schema", f"actor field {name!r} is mandatory")
                bad = True
        categories = [str(c) for c in _as_list(actor.get("categories"))]
        for value in categories:
            if value not in tax.concepts:
                log.add(line, "taxonomy", f"category {value!r} is not a concept of the taxonomy")
                bad = True
        jurisdictions = [str(c) for c in _as_list(actor.get("jurisdictions"))]
        for value in jurisdictions:
            if value not in tax.countries:
                log.add(line, "taxonomy", f"jurisdiction {value!r} is not an ISO 3166 code")
                bad = True
        lastmod = actor.get("lastmod")
        if lastmod is not None:
            try:
                lastmod = parse_date(lastmod)
            except ValueError as exc:
                log.add(line, "schema", f"lastmod: {exc}")
                bad = True
        actor_id = actor.get("id")
        if actor_id is not None and str(actor_id) in seen:
            log.add(line, "duplicate", f"actor id {actor_id!r} appears twice; first one kept")
            bad = True
        if bad:
            result.rejected += 1
            continue
        seen.add(str(actor_id))
        context = actor.get("context")
        columns["actor_id"].append(str(actor_id))
        columns["label"].append(str(actor["label"]))
        columns["uri"].append(None if actor.get("uri") is None else str(actor["uri"]))
        columns["categories"].append(",".join(categories))
        columns["jurisdictions"].append(",".join(jurisdictions) or None)
        columns["aliases"].append(",".join(str(a) for a in _as_list(actor.get("aliases"))) or None)
        columns["lastmod"].append(lastmod)
        columns["context"].append(
            None if context is None else
            context if isinstance(context, str) else json.dumps(context, sort_keys=True)
        )
        columns["line"].append(line)
    return result
