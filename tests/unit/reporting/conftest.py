"""Fixtures shared by the report and export tests: the real block-170 trace."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.reporting.snapshots import build_snapshot, mainnet_trace


@pytest.fixture(scope="session")
def mainnet_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any],
                                                                      dict[int, int]]:
    """A snapshot holding the real forward FIFO trace of block 170's change, and the header
    times of its blocks."""
    result, times = mainnet_trace(tmp_path_factory.mktemp("mainnet"))
    return build_snapshot([result], reference="CT-2026-0170"), times
