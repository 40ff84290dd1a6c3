"""The line-keeping YAML reader agrees with yaml.safe_load on structure and keeps lines."""

from __future__ import annotations

import pytest
import yaml

from cointrail.attribution.yamlevents import LineDict, load_with_lines

PACK = b"""title: t
lastmod: 2021-11-14
tags:
- address: '0xabc'
  label: a
- address: 0x008fe40574e881e7247b50b991c0cc057d66647f
  label: no
  empty:
  nested: {a: [1, 2]}
- &anchor
  address: x
- *anchor
"""


def test_lines_of_every_mapping() -> None:
    doc = load_with_lines(PACK)
    assert isinstance(doc, LineDict) and doc.line == 1
    assert [t.line for t in doc["tags"][:3]] == [4, 6, 10]


def test_scalars_stay_text_and_nulls_are_none() -> None:
    doc = load_with_lines(PACK)
    second = doc["tags"][1]
    assert second["address"] == "0x008fe40574e881e7247b50b991c0cc057d66647f"  # not an int
    assert second["label"] == "no"  # not False
    assert second["empty"] is None
    assert second["nested"] == {"a": ["1", "2"]}
    assert doc["tags"][3] is doc["tags"][2]  # alias


def test_structure_matches_safe_load_modulo_scalar_typing() -> None:
    def text(v: object) -> object:
        if isinstance(v, dict):
            return {str(k): text(x) for k, x in v.items()}
        if isinstance(v, list):
            return [text(x) for x in v]
        return None if v is None else str(v).lower()

    ours, theirs = load_with_lines(PACK), yaml.safe_load(PACK)
    theirs["tags"][1]["address"] = "0x008fe40574e881e7247b50b991c0cc057d66647f"
    theirs["tags"][1]["label"] = "no"  # YAML 1.1 reads a plain `no` as False; we keep text
    assert text(ours) == text(theirs)


def test_syntax_error_raises_with_mark() -> None:
    with pytest.raises(yaml.YAMLError):
        load_with_lines(b"tags:\n- address: [unclosed\n")
