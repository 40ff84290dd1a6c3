"""Union-find over address links; a cluster's id is its oldest (smallest) address id.

Addresses carry dense ids ``0..n-1`` in order of first appearance. `UnionFind.union_batch`
applies a batch of links (``a[i]`` and ``b[i]`` have the same owner) in order: when a link joins
two clusters, the younger root is linked under the older one, so the merged cluster keeps the
older id, and the merge is reported as (younger root, older root, link index) for the caller's
merge history. A supercluster guard can hold back links that would join two large clusters.

The compiled core (``_unionfind.c``, see its header for why it is C) is used when it is built;
the pure-Python path here gives identical results (the same arrays, even), only slower. Set
``COINTRAIL_NO_SPEEDUPS=1`` to disable the compiled core. A `UnionFind` is not thread-safe.

Storage is one C-contiguous ``(capacity, 2)`` array: column 0 the parent of each element,
column 1 the size of its cluster (valid at roots only). It is uint32 (8 bytes per address) up
to `COMPACT_LIMIT` elements and widens to int64 (16 bytes per address) past it.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["COMPACT_LIMIT", "HAVE_SPEEDUPS", "BatchResult", "UnionFind"]

_ABI_VERSION = 1
#: Most elements the compact (uint32) storage holds; `UnionFind.grow` widens to int64 past it.
COMPACT_LIMIT = 0xFFFFFFFF
_GROWTH = 1.25  # capacity growth factor: amortises `grow` without doubling the memory peak

IdArray = NDArray[np.int64]


class _Core(Protocol):
    """The interface of the compiled core (``_unionfind.c``)."""

    ABI_VERSION: int

    def union_batch(
        self,
        nodes: NDArray[Any],
        n: int,
        a: IdArray,
        b: IdArray,
        guard_size: int,
        guard_mask: NDArray[np.bool_] | None,
        merges: IdArray | None,
    ) -> tuple[int, bytes]: ...

    def find_all(self, nodes: NDArray[Any], n: int) -> None: ...

    def find_many(self, nodes: NDArray[Any], n: int, xs: IdArray, out: IdArray) -> None: ...


def _load_core() -> _Core | None:
    if os.environ.get("COINTRAIL_NO_SPEEDUPS"):
        return None
    try:
        module = importlib.import_module("cointrail.analysis.clustering._unionfind")
    except ImportError:
        return None
    if getattr(module, "ABI_VERSION", None) != _ABI_VERSION:
        warnings.warn(
            "cointrail's compiled union-find is out of date with unionfind.py and is not used; "
            "rebuild it with `pip install -e .`",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return cast(_Core, module)


_CORE = _load_core()
#: True when the compiled core is built and used.
HAVE_SPEEDUPS: bool = _CORE is not None


@dataclass(frozen=True, slots=True, eq=False)
class BatchResult:
    """What one `UnionFind.union_batch` did.

    `merges`: (k, 3) int64, one row per union that joined two clusters, in link order:
    (younger root, older root, link index in the batch); empty when merges were not recorded
    (`n_merges` still counts them). `held`: (h, 5) int64, one row per link the guard held
    back: (link index, root of a, root of b, size of a's cluster, size of b's cluster).
    """

    n_merges: int
    merges: IdArray
    held: IdArray

    @property
    def younger(self) -> IdArray:
        """The cluster ids that were merged away (column 0 of `merges`)."""
        return self.merges[:, 0]

    @property
    def older(self) -> IdArray:
        """The cluster ids they were merged into (column 1 of `merges`)."""
        return self.merges[:, 1]

    @property
    def merge_link(self) -> IdArray:
        """The link index (in the batch) of each merge (column 2 of `merges`)."""
        return self.merges[:, 2]

    @property
    def held_link(self) -> IdArray:
        """The link index (in the batch) of each held-back link (column 0 of `held`)."""
        return self.held[:, 0]


def _ids(values: ArrayLike, name: str) -> IdArray:
    arr = np.ascontiguousarray(values, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_range(values: IdArray, n: int, name: str) -> None:
    if values.size and (int(values.min()) < 0 or int(values.max()) >= n):
        bad = int(np.flatnonzero((values < 0) | (values >= n))[0])
        raise ValueError(f"{name}[{bad}] = {int(values[bad])} is not an id in [0, {n})")


class UnionFind:
    """Disjoint sets over ids ``0..len-1`` whose ids are their smallest members.

    `use_speedups`: None uses the compiled core when it is built, False the pure-Python path,
    True requires the compiled core. `wide` starts with int64 storage instead of uint32.
    """

    __slots__ = ("_core", "_n", "_nodes")

    def __init__(self, n: int = 0, *, wide: bool = False, use_speedups: bool | None = None):
        if use_speedups is True and _CORE is None:
            raise RuntimeError("cointrail's compiled union-find is not built: pip install -e .")
        self._core: _Core | None = None if use_speedups is False else _CORE
        dtype = np.int64 if wide or n > COMPACT_LIMIT else np.uint32
        self._nodes: NDArray[Any] = np.empty((0, 2), dtype=dtype)
        self._n = 0
        self.grow(n)

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"UnionFind(n={self._n}, dtype={self.dtype}, compiled={self.uses_speedups})"

    @property
    def uses_speedups(self) -> bool:
        """True when this instance runs on the compiled core."""
        return self._core is not None

    @property
    def dtype(self) -> np.dtype[Any]:
        """The storage type: uint32 (compact) or int64 (wide)."""
        return self._nodes.dtype

    @property
    def nbytes(self) -> int:
        """Bytes allocated for the storage (capacity included)."""
        return int(self._nodes.nbytes)

    @property
    def parent(self) -> NDArray[Any]:
        """Read-only view of the parent array (valid until the next `grow`)."""
        view = self._nodes[: self._n, 0]
        view.flags.writeable = False
        return view

    @property
    def sizes(self) -> NDArray[Any]:
        """Read-only view of the size array; ``sizes[r]`` is meaningful only at a root ``r``."""
        view = self._nodes[: self._n, 1]
        view.flags.writeable = False
        return view

    # ------------------------------------------------------------------ growth

    def grow(self, n: int) -> None:
        """Make the structure hold `n` elements; new ids are singletons (no-op if n <= len)."""
        old = self._n
        if n <= old:
            return
        if n > COMPACT_LIMIT and self._nodes.dtype != np.int64:
            self._nodes = self._nodes[:old].astype(np.int64)
        capacity = self._nodes.shape[0]
        if n > capacity:
            target = max(n, int(capacity * _GROWTH))
            if self._nodes.dtype != np.int64:
                target = min(target, COMPACT_LIMIT)
            self._reserve(target)
        self._nodes[old:n, 0] = np.arange(old, n, dtype=self._nodes.dtype)
        self._nodes[old:n, 1] = 1
        self._n = n

    def _reserve(self, capacity: int) -> None:
        try:  # in place (realloc, no copy of the pages) when nothing else views the array
            self._nodes.resize((capacity, 2), refcheck=True)
        except ValueError:
            nodes = np.empty((capacity, 2), dtype=self._nodes.dtype)
            nodes[: self._n] = self._nodes[: self._n]
            self._nodes = nodes

    # ------------------------------------------------------------------ unions

    def union_batch(
        self,
        a: ArrayLike,
        b: ArrayLike,
        guard_size: int = 0,
        guard_mask: ArrayLike | None = None,
        *,
        record_merges: bool = True,
    ) -> BatchResult:
        """Apply the links ``(a[i], b[i])`` in order and report the merges they made.

        With ``guard_size > 0``, a link whose `guard_mask` entry is True (every link when the
        mask is None) that would join two clusters both of size >= guard_size is not applied
        and is reported in `BatchResult.held`. Ids must be in ``[0, len)``: a ValueError is
        raised before anything changes otherwise.
        """
        a_ids, b_ids = _ids(a, "a"), _ids(b, "b")
        if a_ids.shape != b_ids.shape:
            raise ValueError(f"a and b differ in length ({a_ids.size} != {b_ids.size})")
        if guard_size < 0:
            raise ValueError("guard_size must be >= 0")
        mask = None
        if guard_mask is not None:
            mask = np.ascontiguousarray(guard_mask, dtype=np.bool_)
            if mask.shape != a_ids.shape:
                raise ValueError("guard_mask differs in length from a and b")
        m = a_ids.size
        merges = np.empty((m, 3), dtype=np.int64) if record_merges else None
        if self._core is not None:
            k, held_bytes = self._core.union_batch(
                self._nodes, self._n, a_ids, b_ids, guard_size, mask, merges
            )
            held = np.frombuffer(held_bytes, dtype=np.int64).reshape(-1, 5).copy()
        else:
            k, held = self._py_union_batch(a_ids, b_ids, guard_size, mask, merges)
        if merges is None:
            merges = np.empty((0, 3), dtype=np.int64)
        elif k < m:
            merges.resize((k, 3), refcheck=False)  # shrinks in place; nothing else refers to it
        return BatchResult(n_merges=k, merges=merges, held=held)

    def _py_union_batch(
        self,
        a: IdArray,
        b: IdArray,
        guard: int,
        mask: NDArray[np.bool_] | None,
        merges: IdArray | None,
    ) -> tuple[int, IdArray]:
        _check_range(a, self._n, "a")
        _check_range(b, self._n, "b")
        flat = self._flat()
        find = _finder(flat)
        masks: list[bool] | None = None if mask is None else mask.tolist()
        merged: list[int] = []
        held: list[int] = []
        for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            ra, rb = find(x), find(y)
            if ra == rb:
                continue
            sa, sb = flat[2 * ra + 1], flat[2 * rb + 1]
            if guard > 0 and sa >= guard and sb >= guard and (masks is None or masks[i]):
                held += (i, ra, rb, sa, sb)
                continue
            older, younger = (ra, rb) if ra < rb else (rb, ra)
            flat[2 * younger] = older
            flat[2 * older + 1] = sa + sb
            merged += (younger, older, i)
        k = len(merged) // 3
        if merges is not None:
            merges[:k] = np.array(merged, dtype=np.int64).reshape(k, 3)
        return k, np.array(held, dtype=np.int64).reshape(-1, 5)

    def _flat(self) -> memoryview:
        """The storage as a flat memoryview of Python ints (the pure-Python path)."""
        return self._nodes.reshape(-1).data  # a view: format "I" (uint32) or "l" (int64)

    # ------------------------------------------------------------------ finds

    def find(self, x: int) -> int:
        """The cluster id (smallest member) of `x`."""
        return int(self.find_many(np.array([x], dtype=np.int64))[0])

    def find_many(self, xs: ArrayLike) -> IdArray:
        """The cluster ids of `xs` (compresses the paths it walks)."""
        ids = _ids(xs, "xs")
        out = np.empty(ids.size, dtype=np.int64)
        if self._core is not None:
            self._core.find_many(self._nodes, self._n, ids, out)
        else:
            _check_range(ids, self._n, "xs")
            find = _finder(self._flat())
            out[:] = [find(x) for x in ids.tolist()]
        return out

    def find_all(self, *, copy: bool = True) -> NDArray[Any]:
        """The cluster id of every element, in the storage dtype (uint32 or int64).

        Points every element straight at its root first. ``copy=False`` returns a read-only
        view of the parent array instead of a copy (valid until the next change).
        """
        if self._core is not None:
            self._core.find_all(self._nodes, self._n)
        else:
            parent = self._nodes[: self._n, 0]
            while True:
                grand = parent[parent]
                if np.array_equal(grand, parent):
                    break
                parent[:] = grand
        return self._nodes[: self._n, 0].copy() if copy else self.parent

    def size_of(self, x: int) -> int:
        """The number of elements in the cluster of `x`."""
        return int(self._nodes[self.find(x), 1])

    # ------------------------------------------------------------------ copies

    def copy(self) -> UnionFind:
        """An independent copy (same storage type and core)."""
        other = object.__new__(UnionFind)
        other._core = self._core
        other._nodes = self._nodes[: self._n].copy()
        other._n = self._n
        return other

    @classmethod
    def from_parent(
        cls, parent: ArrayLike, *, wide: bool = False, use_speedups: bool | None = None
    ) -> UnionFind:
        """Rebuild from a saved parent (or `find_all`) array; sizes are recounted.

        Every ``parent[x]`` must be in ``[0, x]`` (true of every array this class produces).
        """
        p = np.asarray(parent)
        if p.ndim != 1 or (p.size and not np.issubdtype(p.dtype, np.integer)):
            raise ValueError("parent must be a one-dimensional integer array")
        n = p.size
        if n and (int(p.min()) < 0 or bool(np.any(p > np.arange(n)))):
            raise ValueError("every parent[x] must be in [0, x]")
        uf = cls(n, wide=wide, use_speedups=use_speedups)
        uf._nodes[:n, 0] = p
        roots = uf.find_all(copy=False)
        uf._nodes[:n, 1] = np.bincount(roots, minlength=n)
        return uf


def _finder(flat: memoryview) -> Callable[[int], int]:
    """Find with path halving over a flat storage view (the steps of the C core's find)."""

    def find(x: int) -> int:
        p = flat[2 * x]
        while p != x:
            g = flat[2 * p]
            if g == p:
                return int(p)
            flat[2 * x] = g
            x = g
            p = flat[2 * x]
        return x

    return find
