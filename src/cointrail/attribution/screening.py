"""Screening addresses against tags and sanctions lists, set-based.

`screen` takes any number of addresses, normalises them with Arrow compute (EVM and bech32
lower case, prefix-less cashaddr given its prefix), and answers with three DuckDB joins against
the attribution database — direct tags, the sanctions list in force at `as_of`, and the list in
force now — so a million addresses cost three hash joins, not a million queries.

"In force at D" (per list name and scope; a per-asset list is its own scope): the version with
the latest publication date on or before D. Versions without a publication date count only for
"now". A 2019 payment to an address first listed in 2022 reads ``sanctioned: false`` as of
2019 and ``sanctioned_now: true``, with the date of the first list version naming it.

Where a chain store in the same folder holds a clustering, tags also roll up to clusters:
each address gets its cluster, its cluster mates' tags and any actor conflict
(`cointrail.attribution.clusters`, also set-based).

This is the reference. One address, or a few, are answered from memory by
`cointrail.attribution.fastscreen` (the REST API's path), which must give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cointrail.attribution.db import AttributionStore
from cointrail.errors import InputError

_LOWER = r"^(0[xX][0-9a-fA-F]{40}|(bc|tb|bcrt|ltc|tltc|rltc|BC|TB|BCRT|LTC|TLTC)1.*|" \
         r"(bitcoincash|BITCOINCASH|bchtest|bchreg):.*)$"
_CASHADDR_BARE = r"^[qpQP][qpzry9x8gf2tvdw0s3jn54khce6mua7lQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{41}$"

#: Columns of a direct tag hit (after `pos`), from ``tags t JOIN list_versions v``.
TAG_HIT_FIELDS = """t.address, t.chain, t.label, t.category, t.abuse, t.actor, t.confidence,
    t.confidence_level, t.source, t.licence, t.lastmod, t.author, t.case_ref, t.network,
    t.context, t.tag_id, t.version_id, v.name AS list_name"""
#: Columns of a sanctions hit (after `pos`), from ``sanctions_entries e JOIN list_versions v``;
#: hits of one address are ordered by list version, then by the entry's row.
SANCTION_HIT_FIELDS = """e.address, e.asset, e.chain, e.party_name, e.party_uid, e.programs,
    e.listed_date, e.feature_type, e.version_id, v.kind AS list_kind,
    v.published AS list_published"""

_IN_FORCE = """
    SELECT version_id, name, published FROM (
        SELECT version_id, name, published, row_number() OVER (
            PARTITION BY name, regexp_replace(scope, '@.*', '')
            ORDER BY published DESC NULLS LAST, version_id DESC) AS rn
        FROM list_versions
        WHERE kind LIKE 'ofac-%' AND (CAST(? AS VARCHAR) IS NULL OR published <= ?)
    ) WHERE rn = 1
"""


def normalise(addresses: pa.Array) -> pa.Array:
    """Canonical lookup text: strip; lower-case EVM/bech32/cashaddr; prefix bare cashaddr."""
    text = pc.utf8_trim_whitespace(addresses.cast(pa.string()))
    lower = pc.match_substring_regex(text, _LOWER)
    text = pc.if_else(lower, pc.utf8_lower(text), text)
    bare = pc.match_substring_regex(text, _CASHADDR_BARE)
    return pc.if_else(bare, pc.binary_join_element_wise("bitcoincash:", pc.utf8_lower(text), ""),
                      text)


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """Arrow tables: `addresses` (one row per input, in order), `tags` and `sanctions` hits."""

    addresses: pa.Table  # pos, input, address, sanctioned, sanctioned_now, first_listed, tags
    tags: pa.Table  # pos + tag columns + list version
    sanctions: pa.Table  # pos + entry columns + list version, published, in_force_then/now
    as_of: str | None
    clusters: pa.Table | None = None  # pos, chain, network, cluster_id, size, as_of_height
    cluster_tags: pa.Table | None = None  # pos, chain, network, cluster_id, via + tag columns
    conflicts: pa.Table | None = None  # pos, chain, network, cluster_id, actor, addresses
    clusterings: list[dict[str, Any]] = field(default_factory=list)  # chain stores consulted

    def to_dicts(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per input address (for the CLI and the REST API)."""
        tags_by: dict[int, list[dict[str, Any]]] = {}
        for row in self.tags.to_pylist():
            tags_by.setdefault(row.pop("pos"), []).append(row)
        for rows in tags_by.values():
            rows.sort(key=lambda t: t["tag_id"])
        hits_by: dict[int, list[dict[str, Any]]] = {}
        for row in self.sanctions.to_pylist():
            hits_by.setdefault(row.pop("pos"), []).append(row)
        clusters_by = _by_pos(self.clusters)
        ctags_by = _by_pos(self.cluster_tags)
        conflicts_by = _by_pos(self.conflicts)
        out = []
        for row in self.addresses.to_pylist():
            pos = row["pos"]
            tags = tags_by.get(pos, [])
            categories = sorted({c for t in tags for c in (t["category"], t["abuse"]) if c})
            clusters = clusters_by.get(pos, [])
            ctags = ctags_by.get(pos, [])
            out.append({
                "input": row["input"],
                "address": row["address"],
                "sanctioned": row["sanctioned"],
                "sanctioned_now": row["sanctioned_now"],
                "first_listed": row["first_listed"],
                "verdict": _verdict(row, self.as_of),
                "categories": categories,
                "actors": sorted({t["actor"] for t in tags if t["actor"]}),
                "max_confidence": max((t["confidence_level"] for t in tags), default=None),
                "sources": sorted({t["source"] for t in tags}),
                "tags": tags,
                "sanctions": hits_by.get(pos, []),
                "cluster": clusters[0] if clusters else None,
                "more_clusters": clusters[1:],
                "cluster_tags": ctags,
                "cluster_categories": sorted(
                    {c for t in ctags for c in (t["category"], t["abuse"]) if c}),
                "actor_conflict": conflicts_by.get(pos) or None,
            })
        return out


def _by_pos(table: pa.Table | None) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if table is None or not table.num_rows:
        return out
    for row in table.to_pylist():
        out.setdefault(row.pop("pos"), []).append(row)
    return out


def _verdict(row: dict[str, Any], as_of: str | None) -> str:
    if as_of is None:
        return "listed" if row["sanctioned_now"] else "not listed"
    then = "listed then" if row["sanctioned"] else "not listed then"
    now = "listed now" if row["sanctioned_now"] else "not listed now"
    return f"{then}, {now}"


def parse_as_of(value: str | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(value.strip()[:10]).isoformat()
    except ValueError:
        raise InputError(f"--as-of {value!r} is not a date; use YYYY-MM-DD") from None


def screen(
    store: AttributionStore,
    addresses: Sequence[str] | pa.Array,
    *,
    as_of: str | date | None = None,
    clusters: bool = True,
) -> ScreenResult:
    """Screen `addresses` against every tag and the sanctions lists (as of a date, and now).

    With `clusters` (default), each chain store in the store folder that holds a clustering
    adds the address's cluster, its cluster tags and any actor conflict (`attribution.clusters`).
    """
    day = parse_as_of(as_of)
    raw = addresses if isinstance(addresses, pa.Array) else pa.array(list(addresses), pa.string())
    inputs = pa.table({
        "pos": pa.array(range(len(raw)), pa.int64()),
        "input": raw,
        "address": normalise(raw),
    })
    con = store.con
    con.register("_screen_in", inputs)
    try:
        tags = con.execute(f"""
            SELECT i.pos, {TAG_HIT_FIELDS}
            FROM _screen_in i JOIN tags t ON t.address = i.address
            JOIN list_versions v ON v.version_id = t.version_id
        """).to_arrow_table()
        hits = con.execute(f"""
            WITH then_v AS ({_IN_FORCE}), now_v AS ({_IN_FORCE})
            SELECT i.pos, {SANCTION_HIT_FIELDS},
                   e.version_id IN (SELECT version_id FROM then_v) AS in_force_then,
                   e.version_id IN (SELECT version_id FROM now_v) AS in_force_now
            FROM _screen_in i JOIN sanctions_entries e ON e.address = i.address
            JOIN list_versions v ON v.version_id = e.version_id
            WHERE e.version_id IN (SELECT version_id FROM then_v)
               OR e.version_id IN (SELECT version_id FROM now_v)
            ORDER BY i.pos, e.version_id, e.rowid
        """, [day, day, None, None]).to_arrow_table()
        con.register("_screen_hits", hits)
        summary = con.execute("""
            WITH first AS (
                SELECT e.address, min(v.published) AS first_listed
                FROM sanctions_entries e JOIN list_versions v USING (version_id)
                WHERE e.address IN (SELECT address FROM _screen_in)
                GROUP BY e.address
            ), flags AS (
                SELECT pos, bool_or(in_force_then) AS then_, bool_or(in_force_now) AS now_
                FROM _screen_hits GROUP BY pos
            )
            SELECT i.pos, i.input, i.address,
                   coalesce(f.then_, false) AS sanctioned_then,
                   coalesce(f.now_, false) AS sanctioned_now,
                   fl.first_listed
            FROM _screen_in i LEFT JOIN flags f USING (pos) LEFT JOIN first fl USING (address)
            ORDER BY i.pos
        """).to_arrow_table()
    finally:
        con.unregister("_screen_in")
        con.unregister("_screen_hits")
    then = summary.column("sanctioned_then") if day else summary.column("sanctioned_now")
    table = pa.table({
        "pos": summary.column("pos"), "input": summary.column("input"),
        "address": summary.column("address"), "sanctioned": then,
        "sanctioned_now": summary.column("sanctioned_now"),
        "first_listed": summary.column("first_listed"),
    })
    if not clusters:
        return ScreenResult(table, tags, hits, day)
    from cointrail.attribution.clusters import screen_clusters

    rolled = screen_clusters(store, inputs.select(["pos", "address"]))
    return ScreenResult(table, tags, hits, day, rolled.clusters, rolled.tags, rolled.conflicts,
                        rolled.sources)
