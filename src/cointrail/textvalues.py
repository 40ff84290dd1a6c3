"""Yes/no words in text people write: settings, tag files, request forms, heuristic parameters.

Each caller keeps its own words (a tag file's ``1`` is not a yes, a setting's is); this is the
one place that reads them.
"""

from __future__ import annotations

from collections.abc import Collection


def yes_no(value: object, true: Collection[str], false: Collection[str]) -> bool | None:
    """A bool as is; a word of `true` or `false` (case and surrounding space ignored) as
    True or False; None for anything else, for the caller to report in its own terms."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in true:
        return True
    if text in false:
        return False
    return None
