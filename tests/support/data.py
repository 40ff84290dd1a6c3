"""Where the shared real-data folder is, for tests and benchmarks.

Invariant: tests read real data in place from ``<repo>/../shared/data`` (never a copy inside the
repository) and skip, saying which file is missing, only when that data is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data() -> Path:
    """The shared real-data folder, ``<repo root>/../shared/data`` (it may not exist)."""
    return (REPO_ROOT / ".." / "shared" / "data").resolve()


def require_shared(relpath: str) -> Path:
    """The path of `relpath` inside the shared data folder.

    Skips the test when the whole shared folder is absent (a checkout without the data); fails
    when the folder is there but the file is not, since that is a broken or renamed data set.
    """
    root = shared_data()
    if not root.is_dir():
        pytest.skip(
            f"shared real-data folder {root} is absent; place the shared data beside the "
            "repository (../shared/data) to run this test"
        )
    path = root / relpath
    if not path.exists():
        pytest.fail(
            f"shared data file {relpath} is missing from {root} although the folder exists; "
            "restore the file (see ../shared/data/README.md) or fix the path in the test"
        )
    return path
