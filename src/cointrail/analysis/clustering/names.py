"""Names and defaults of the clustering configuration, importable without the engine."""

from __future__ import annotations

from typing import Any

#: Heuristic sets a clustering run can be configured with (see engine.HEURISTICS).
HEURISTIC_NAMES: tuple[str, ...] = ("multi_input", "change", "deposit_address",
                                   "batch_change", "tx0_outputs")
#: Supercluster guard: weak links joining two clusters of at least this many addresses wait.
DEFAULT_GUARD_SIZE = 1_000


def heuristic_names(config: dict[str, Any] | None) -> str:
    """``multi_input v1, change v3`` from a recorded configuration (`ClusterConfig.describe`);
    "" when it names no heuristic."""
    return ", ".join(f"{h['name']} v{h['version']}"
                     for h in (config or {}).get("heuristics") or [])
