"""The bundled GraphSense taxonomy matches the upstream TagPack tool's files."""

from __future__ import annotations

import csv

import yaml

from cointrail.attribution.taxonomy import load_taxonomy
from tests.support.data import require_shared

TOOL = "tags/graphsense-tagpack-tool/src/tagpack"


def test_bundled_taxonomy_matches_upstream() -> None:
    tax = load_taxonomy()
    concepts = yaml.safe_load(require_shared(f"{TOOL}/db/concepts.yaml").read_text())
    assert tax.concepts == frozenset(v["id"] for k, v in concepts.items() if k != "scheme")
    with require_shared(f"{TOOL}/db/confidence.csv").open() as f:
        assert tax.confidence == {r["id"]: int(r["level"]) for r in csv.DictReader(f)}
    schema = yaml.safe_load(require_shared(f"{TOOL}/conf/tagpack_schema.yaml").read_text())
    assert set(tax.tag_fields) == set(schema["tag"])
    assert {"exchange", "mixing_service", "ransomware", "sanction", "scam", "gambling",
            "miner", "market"} <= tax.concepts
