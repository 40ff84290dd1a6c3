"""yes_no reads each caller's own words for yes and no."""

from __future__ import annotations

import pytest

from cointrail.textvalues import yes_no

WORDS = ({"true", "yes", "1"}, {"false", "no", "0"})


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("yes", True), (" YES ", True), ("True", True), (1, True),
    ("no", False), ("False\n", False), (0, False),
    ("maybe", None), ("", None), ("y", None), (2, None), (None, None),
])
def test_words(value: object, expected: bool | None) -> None:
    assert yes_no(value, *WORDS) is expected


def test_the_words_are_the_callers() -> None:
    assert yes_no("1", {"true"}, {"false"}) is None  # a tag file's 1 is not a yes
    assert yes_no("on", {"on"}, {"off"}) is True
