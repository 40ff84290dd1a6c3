"""The local columnar store: DuckDB (embedded default) plus a Parquet layout for Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cointrail.store.duck import ChainStore, Store


def __getattr__(name: str) -> Any:
    # DuckDB and Arrow load on first use, so that light submodules (defaults) and the
    # command line's start-up do not pay for them.
    if name in ("ChainStore", "Store"):
        from cointrail.store import duck

        return getattr(duck, name)
    raise AttributeError(f"module 'cointrail.store' has no attribute {name!r}")


__all__ = ["ChainStore", "Store"]
