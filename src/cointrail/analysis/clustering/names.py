"""Names and defaults of the clustering configuration, importable without the engine."""

from __future__ import annotations

#: Heuristic sets a clustering run can be configured with (see engine.HEURISTICS).
HEURISTIC_NAMES: tuple[str, ...] = ("multi_input", "change", "deposit_address",
                                   "batch_change")
#: Supercluster guard: weak links joining two clusters of at least this many addresses wait.
DEFAULT_GUARD_SIZE = 1_000
