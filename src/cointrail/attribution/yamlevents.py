"""A YAML reader that keeps the line of every mapping, at libyaml speed.

`yaml.load` with the C loader spends most of its time constructing Python objects in Python and
drops the source positions; the C parser's event stream alone is ~10x faster and carries marks.
`load_with_lines` builds plain dicts, lists and strings from the events and records each
mapping's 1-based line (`LineDict.line`), so a problem in the 400,000th tag names its line.

Scalars stay text (plain ``null``/``~``/empty become None): the pack schema, not YAML 1.1's
implicit typing, decides what a field is, so an unquoted ``0x…`` address stays an address and
``no`` stays a label. Callers convert booleans and dates per field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it (the wheels are); else correct but slower
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_NO_KEY = object()


class LineDict(dict[str, Any]):
    """A mapping that remembers the line it starts on (1-based)."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line


def load_with_lines(text: str | bytes) -> Any:
    """The first document of `text`, with `LineDict` mappings; raises yaml.YAMLError."""
    root: Any = None
    have_root = False
    stack: list[Any] = []
    keys: list[Any] = []
    anchors: dict[str, Any] = {}
    scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
    m_start, s_start = yaml.MappingStartEvent, yaml.SequenceStartEvent
    m_end, s_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    doc_end = yaml.DocumentEndEvent

    events: Iterator[Any] = yaml.parse(text, Loader=_Loader)
    for event in events:
        cls = type(event)
        if cls is scalar:
            value: Any = event.value
            if event.implicit[0] and value in _NULLS:
                value = None
        elif cls is m_start:
            value = LineDict(event.start_mark.line + 1)
        elif cls is s_start:
            value = []
        elif cls is m_end or cls is s_end:
            stack.pop()
            keys.pop()
            continue
        elif cls is alias:
            if event.anchor not in anchors:
                raise yaml.YAMLError(f"unknown alias *{event.anchor}")
            value = anchors[event.anchor]
        elif cls is doc_end and have_root:
            break
        else:
            continue
        anchor = getattr(event, "anchor", None)
        if anchor is not None and cls is not alias:
            anchors[anchor] = value
        if not stack:
            root, have_root = value, True
        else:
            top = stack[-1]
            if type(top) is list:
                top.append(value)
            elif keys[-1] is _NO_KEY:
                if isinstance(value, (dict, list)):
                    raise yaml.YAMLError(
                        f"line {event.start_mark.line + 1}: a mapping or list as a mapping key"
                    )
                keys[-1] = value
            else:
                top[keys[-1]] = value
                keys[-1] = _NO_KEY
        if cls is m_start or cls is s_start:
            stack.append(value)
            keys.append(_NO_KEY)
    return root
