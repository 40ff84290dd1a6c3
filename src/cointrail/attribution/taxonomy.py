"""The GraphSense concept taxonomy, confidence scale and pack schemas, as bundled data.

The files in ``taxonomy/`` come from the GraphSense TagPack tool (see ``taxonomy/NOTICE.md``);
`load_taxonomy` reads them once. A TagPack field's type and taxonomy come from the schema file,
so the validator follows the upstream schema instead of a copy of it in code.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

TAXONOMY_PACKAGE = "cointrail.attribution"
TAXONOMY_DIR = "taxonomy"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a pack schema: its type, whether it is mandatory, which taxonomy."""

    name: str
    type: str  # text, boolean, datetime, list, json_text
    mandatory: bool
    taxonomies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    concepts: frozenset[str]
    concept_labels: dict[str, str]
    confidence: dict[str, int]  # id -> level (0-100)
    countries: frozenset[str]
    tag_types: frozenset[str]
    tagpack_header: dict[str, FieldSpec]
    tag_fields: dict[str, FieldSpec]
    actorpack_header: dict[str, FieldSpec]
    actor_fields: dict[str, FieldSpec]

    def values(self, taxonomy: str) -> frozenset[str]:
        if taxonomy == "concept":
            return self.concepts
        if taxonomy == "confidence":
            return frozenset(self.confidence)
        if taxonomy == "country":
            return self.countries
        if taxonomy == "tag_type":
            return self.tag_types
        raise KeyError(taxonomy)


def _read(name: str) -> str:
    folder = resources.files(TAXONOMY_PACKAGE).joinpath(TAXONOMY_DIR)
    return folder.joinpath(name).read_text("utf-8")


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(_read(name).splitlines()))


def _fields(section: dict[str, Any]) -> dict[str, FieldSpec]:
    out = {}
    for name, spec in section.items():
        tax = spec.get("taxonomy")
        taxonomies = tuple(tax) if isinstance(tax, list) else ((tax,) if tax else ())
        out[name] = FieldSpec(name, str(spec["type"]), bool(spec.get("mandatory")), taxonomies)
    return out


@functools.cache
def load_taxonomy() -> Taxonomy:
    """The bundled taxonomy (read once per process)."""
    concepts = _csv("concepts.csv")
    tagpack = yaml.safe_load(_read("tagpack_schema.yaml"))
    actorpack = yaml.safe_load(_read("actorpack_schema.yaml"))
    return Taxonomy(
        concepts=frozenset(r["id"] for r in concepts),
        concept_labels={r["id"]: r["label"] for r in concepts},
        confidence={r["id"]: int(r["level"]) for r in _csv("confidence.csv")},
        countries=frozenset(r["id"] for r in _csv("countries.csv")),
        tag_types=frozenset(r["id"] for r in _csv("tag_types.csv")),
        tagpack_header=_fields(tagpack["header"]),
        tag_fields=_fields(tagpack["tag"]),
        actorpack_header=_fields(actorpack["header"]),
        actor_fields=_fields(actorpack["actor"]),
    )
