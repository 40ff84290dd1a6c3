"""The attribution database's tables, defined once with the store's `Table`/`Column` classes.

Attribution is cross-chain, so it lives in its own DuckDB file, ``<store>/attribution.duckdb``,
beside the per-chain databases. Every row names the list version it came from; a list version
is one import of one file (kind, name, publication date, content SHA-256, licence, counts), so a
finding can always say which list, published when, it rests on.

Addresses are stored in canonical text (`cointrail.attribution.chains`): EVM addresses lower
case, bech32 lower case, cashaddr with its prefix, base58 as written.
"""

from __future__ import annotations

from cointrail.store.schema import ColType, Column, Table

C = Column
TEXT, BOOL = ColType.TEXT, ColType.BOOL
I16, I32, I64 = ColType.INT16, ColType.INT32, ColType.INT64

LIST_VERSIONS = Table(
    "list_versions",
    (
        C("version_id", I32, doc="dense id in import order"),
        C("kind", TEXT, doc="tagpack, actorpack, ofac-sdn-advanced-xml, ofac-sdn-xml, "
                            "ofac-sdn-csv, ofac-address-list, ofac-address-history, misp, own"),
        C("name", TEXT, doc="list name: the TagPack file name, or 'OFAC SDN'"),
        C("scope", TEXT, doc="'*' for a whole list, else the asset code of a per-asset list"),
        C("path", TEXT, doc="file imported (as given)"),
        C("published", TEXT, nullable=True, doc="publication date (ISO 8601), when known"),
        C("imported_utc", TEXT, doc="when it was imported, ISO 8601 UTC"),
        C("sha256", TEXT, doc="SHA-256 of the file's bytes, hex"),
        C("licence", TEXT, nullable=True),
        C("title", TEXT, nullable=True, doc="the list's own title (TagPack title, ...)"),
        C("records", I64, doc="rows loaded"),
        C("problems", I64, doc="problems reported (see import_problems)"),
        C("rejected", I64, doc="records not loaded because of a problem"),
        C("active", BOOL, doc="false once a newer import of the same tag list replaced it"),
    ),
    "One row per import of one file: every tag, actor and sanctions entry names its version.",
    model="common",
    order_by=("version_id",),
)

ACTORS = Table(
    "actors",
    (
        C("actor_id", TEXT, doc="ActorPack id, referenced by tags' `actor`"),
        C("version_id", I32),
        C("label", TEXT),
        C("uri", TEXT, nullable=True),
        C("categories", TEXT, doc="comma-separated concepts of the taxonomy"),
        C("jurisdictions", TEXT, nullable=True, doc="comma-separated ISO 3166 codes"),
        C("aliases", TEXT, nullable=True, doc="comma-separated"),
        C("lastmod", TEXT, nullable=True, doc="ISO 8601 date"),
        C("context", TEXT, nullable=True, doc="JSON: uris, refs, legal name, ..."),
        C("line", I32, nullable=True, doc="line of the actor in its file"),
    ),
    "Actors (GraphSense ActorPacks): who stands behind tagged addresses.",
    model="common",
)

TAGS = Table(
    "tags",
    (
        C("tag_id", I64, doc="dense id in import order"),
        C("version_id", I32),
        C("chain", TEXT, doc="cointrail chain name (bitcoin, ethereum, tron, ...)"),
        C("network", TEXT),
        C("currency", TEXT, doc="currency code as the source wrote it (BTC, ETH, USDT, ...)"),
        C("address", TEXT, doc="canonical address text, validated for its chain"),
        C("label", TEXT),
        C("category", TEXT, nullable=True, doc="taxonomy concept (exchange, mixing_service, ...)"),
        C("abuse", TEXT, nullable=True, doc="abuse concept (ransomware, scam, sanction, ...)"),
        C("concepts", TEXT, nullable=True, doc="comma-separated further concepts"),
        C("actor", TEXT, nullable=True, doc="actor id (ActorPack)"),
        C("confidence", TEXT, doc="GraphSense confidence id (authority_data, forensic, ...)"),
        C("confidence_level", I16, doc="its level, 0-100 (confidence.csv)"),
        C("source", TEXT),
        C("licence", TEXT, nullable=True),
        C("lastmod", TEXT, nullable=True, doc="ISO 8601 date the tag was last modified"),
        C("is_cluster_definer", BOOL, nullable=True),
        C("tag_type", TEXT, nullable=True),
        C("context", TEXT, nullable=True, doc="JSON text as given"),
        C("author", TEXT, nullable=True, doc="who made the tag (pack creator or analyst)"),
        C("case_ref", TEXT, nullable=True, doc="agency case reference (own tags)"),
        C("line", I32, nullable=True, doc="line of the tag in its file"),
    ),
    "Attribution tags on addresses, from TagPacks, MISP and the agency's own lists.",
    model="common",
    order_by=("tag_id",),
)

SANCTIONS = Table(
    "sanctions_entries",
    (
        C("version_id", I32),
        C("asset", TEXT, doc="OFAC asset code (XBT, ETH, USDT, ...)"),
        C("chain", TEXT, doc="chain the address was validated for"),
        C("network", TEXT),
        C("address", TEXT, doc="canonical address text"),
        C("party_name", TEXT, nullable=True),
        C("party_uid", TEXT, nullable=True, doc="OFAC SDN uid / FixedRef"),
        C("programs", TEXT, nullable=True, doc="comma-separated sanctions programs (CYBER2, ...)"),
        C("listed_date", TEXT, nullable=True, doc="designation date (ISO 8601) where known"),
        C("feature_type", TEXT, doc="e.g. 'Digital Currency Address - XBT'"),
        C("line", I32, nullable=True, doc="line in the file, where the format has lines"),
    ),
    "Sanctioned addresses, one row per (list version, address): the list as published.",
    model="common",
)

IMPORT_PROBLEMS = Table(
    "import_problems",
    (
        C("version_id", I32, nullable=True, doc="NULL when the file could not be read at all"),
        C("file", TEXT),
        C("line", I32, nullable=True),
        C("kind", TEXT, doc="schema, taxonomy, address, truncated-address, duplicate, format"),
        C("message", TEXT),
    ),
    "Every problem an import found, with file and line; nothing is dropped silently.",
    model="common",
)

ATTRIBUTION_META = Table(
    "attribution_meta",
    (C("key", TEXT), C("value", TEXT)),
    "Key/value: schema version.",
    model="common",
)

ATTRIBUTION_TABLES: tuple[Table, ...] = (
    LIST_VERSIONS, ACTORS, TAGS, SANCTIONS, IMPORT_PROBLEMS, ATTRIBUTION_META,
)
ATTRIBUTION_SCHEMA_VERSION = 1
