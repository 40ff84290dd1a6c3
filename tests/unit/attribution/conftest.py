"""Fixtures for attribution tests: a fresh attribution store in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cointrail.attribution import AttributionStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AttributionStore]:
    with AttributionStore(tmp_path / "store") as s:
        yield s
