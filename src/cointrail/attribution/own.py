"""The agency's own tags: CSV and YAML files written by analysts.

CSV: a header row, then one tag per row. Columns (any order; names are case-insensitive)::

    address,chain,label,category,actor,confidence,source,author,case

Required columns and values: ``address``, ``chain``, ``label``, ``confidence``, ``source``.
Optional: ``category``, ``actor``, ``author``, ``case`` and ``network`` (default mainnet).
``chain`` is a cointrail chain name (``bitcoin``, ``ethereum``, ...) or a currency code
(``BTC``, ``ETH``, ``USDT``, ...). An unknown column is reported once and ignored.

YAML: a list of tags with the same fields, or a mapping with header fields and a ``tags`` list
(like a TagPack): header fields are defaults for every tag, a tag's own value wins. A YAML file
is taken as own tags (not a TagPack) when it is a list, or when its header or first tag names
``chain`` and neither names ``currency``.

Each row is checked: required values present, ``confidence`` on the confidence scale,
``category`` a concept of the taxonomy, the address valid for its chain and network. A bad row
is not loaded and its problem names file and line; every bad row is reported.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from cointrail.attribution.chains import (
    MAINNET,
    ZERO_EVM_ADDRESS,
    CanonicalAddress,
    canonical_on_chain,
    currency_of,
    resolve_chain,
)
from cointrail.attribution.problems import ProblemLog
from cointrail.attribution.tagpacks import TAG_COLUMNS, PackResult
from cointrail.attribution.taxonomy import Taxonomy, load_taxonomy
from cointrail.attribution.yamlevents import LineDict
from cointrail.errors import InputError

REQUIRED = ("address", "chain", "label", "confidence", "source")
OPTIONAL = ("category", "actor", "author", "case", "network")
FIELDS = REQUIRED + OPTIONAL
YAML_HEADER_ONLY = ("title", "description")


def is_own_yaml(doc: Any) -> bool:
    """Whether a parsed YAML document is an own-tags file rather than a TagPack."""
    if isinstance(doc, list):
        return True
    if not isinstance(doc, dict) or "actors" in doc:
        return False
    tags = doc.get("tags")
    first = tags[0] if isinstance(tags, list) and tags and isinstance(tags[0], dict) else {}
    named = set(doc) | set(first)
    return "chain" in named and "currency" not in named


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class OwnTagReader:
    """Validates own tags row by row into tag columns; one reader per file."""

    def __init__(
        self,
        log: ProblemLog,
        *,
        known_actors: frozenset[str] | None = None,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        self.log = log
        self.tax = taxonomy or load_taxonomy()
        self.known_actors = known_actors
        self.columns: dict[str, list[Any]] = {c: [] for c in TAG_COLUMNS}
        self.rejected = 0

    def result(self, title: str | None = None) -> PackResult:
        return PackResult("own", title, self.columns, self.log, self.rejected)

    def add(self, row: dict[str, Any], line: int | None) -> None:
        """Check one tag; append it, or report every problem it has and reject it."""
        log, tax = self.log, self.tax
        values = {name: _text(row.get(name)) for name in FIELDS}
        bad = False
        for name in REQUIRED:
            if values[name] is None:
                log.add(line, "schema", f"{name!r} is required")
                bad = True
        confidence = values["confidence"]
        if confidence is not None and confidence not in tax.confidence:
            log.add(line, "taxonomy", f"confidence {confidence!r} is not on the confidence "
                                      f"scale ({', '.join(tax.confidence)})")
            bad = True
        category = values["category"]
        if category is not None and category not in tax.concepts:
            log.add(line, "taxonomy", f"category {category!r} is not a concept of the taxonomy")
            bad = True
        actor = values["actor"]
        if actor is not None and self.known_actors is not None and actor not in self.known_actors:
            log.add(line, "actor", f"actor {actor!r} is not in any imported ActorPack (kept)")
        canon: CanonicalAddress | None = None
        address, chain = values["address"], values["chain"]
        if address is not None and chain is not None:
            try:
                canon = canonical_on_chain(resolve_chain(chain, address),
                                           values["network"] or MAINNET, address)
                if canon.text == ZERO_EVM_ADDRESS:
                    raise InputError("the zero address is a burn sink, not an attributable "
                                     "account")
            except InputError as exc:
                log.add(line, "address", f"address {address[:100]!r} on {chain}: {exc}")
                bad = True
        if bad or canon is None:
            self.rejected += 1
            return
        assert confidence is not None and chain is not None
        c = self.columns
        c["chain"].append(canon.chain)
        c["network"].append(canon.network)
        c["currency"].append(chain.upper() if chain.lower() != canon.chain
                             else currency_of(canon.chain))
        c["address"].append(canon.text)
        c["label"].append(values["label"])
        c["category"].append(category)
        c["abuse"].append(None)
        c["concepts"].append(None)
        c["actor"].append(actor)
        c["confidence"].append(confidence)
        c["confidence_level"].append(tax.confidence[confidence])
        c["source"].append(values["source"])
        c["lastmod"].append(None)
        c["is_cluster_definer"].append(None)
        c["tag_type"].append(None)
        c["context"].append(None)
        c["author"].append(values["author"])
        c["case_ref"].append(values["case"])
        c["line"].append(line)


def sniff_own_csv(head: bytes) -> bool:
    """Whether a CSV's first line is an own-tags header (names address, chain and label)."""
    first = head.decode("utf-8", "replace").lstrip("\ufeff").splitlines()[:1]
    names = {n.strip().lower() for n in first[0].split(",")} if first else set()
    return {"address", "chain", "label"} <= names


def read_own_csv(
    file: str, raw: bytes, *, known_actors: frozenset[str] | None = None
) -> PackResult:
    """Own tags from a CSV file; every bad row is a problem with its line."""
    log = ProblemLog(file)
    reader = OwnTagReader(log, known_actors=known_actors)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        log.add(None, "format", f"not UTF-8 text: {exc.reason}")
        return reader.result()
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None:
        log.add(1, "format", "empty file: expected a header row "
                             "(address,chain,label,category,actor,confidence,source,author,case)")
        return reader.result()
    names = [h.strip().lower() for h in header]
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        log.add(1, "format", f"the header lacks the required column(s) {', '.join(missing)}; "
                             "no row loaded")
        reader.rejected = sum(1 for r in rows if any(v.strip() for v in r))
        return reader.result()
    for name in names:
        if name not in FIELDS:
            log.add(1, "schema", f"unknown column {name!r} ignored")
    for row in rows:
        line = rows.line_num
        if not any(v.strip() for v in row):
            continue
        if len(row) != len(names):
            log.add(line, "format", f"{len(row)} fields, the header has {len(names)}")
            reader.rejected += 1
            continue
        reader.add(dict(zip(names, row, strict=True)), line)
    return reader.result()


def read_own_yaml(
    file: str, doc: Any, log: ProblemLog, *, known_actors: frozenset[str] | None = None
) -> PackResult:
    """Own tags from a parsed YAML document (a list of tags, or header + ``tags``)."""
    reader = OwnTagReader(log, known_actors=known_actors)
    header: dict[str, Any] = {}
    tags: Any = doc
    if isinstance(doc, dict):
        header = {k: v for k, v in doc.items() if k != "tags"}
        tags = doc.get("tags")
        head_line = doc.line if isinstance(doc, LineDict) else 1
        for name in header:
            if name not in FIELDS and name not in YAML_HEADER_ONLY:
                log.add(head_line, "schema", f"unknown header field {name!r} ignored")
    if not isinstance(tags, list):
        log.add(1, "schema", "own tags are a list of tags, or a mapping with a 'tags' list")
        return reader.result()
    defaults = {k: v for k, v in header.items() if k in FIELDS}
    for tag in tags:
        line = tag.line if isinstance(tag, LineDict) else None
        if not isinstance(tag, dict):
            log.add(line, "schema", "a tag must be a mapping")
            reader.rejected += 1
            continue
        for name in tag:
            if name not in FIELDS:
                log.add(line, "schema", f"unknown tag field {name!r} ignored")
        reader.add({**defaults, **tag}, line)
    title = _text(header.get("title"))
    return reader.result(title)
