"""UnionFind: both paths (compiled core, pure Python) against a set-merging reference.

The reference keeps each cluster as a Python set and merges the sets link by link, so it shares
no code or data structure with `UnionFind`: partitions, cluster ids (the smallest member),
sizes, the merge records (younger, older, link) and the supercluster guard's held-back links
must all agree. The compiled core and the pure-Python path must leave identical arrays.
"""

from __future__ import annotations

import importlib
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cointrail.analysis.clustering import unionfind
from cointrail.analysis.clustering.unionfind import HAVE_SPEEDUPS, BatchResult, UnionFind

needs_core = pytest.mark.skipif(
    not HAVE_SPEEDUPS,
    reason="compiled union-find not built (pip install -e .); "
    "test_compiled_core_is_built_in_ci makes CI fail instead",
)
BACKENDS = [pytest.param(True, marks=needs_core, id="compiled"), pytest.param(False, id="python")]
WIDTHS = [pytest.param(False, id="uint32"), pytest.param(True, id="int64")]


def test_compiled_core_is_built_in_ci() -> None:
    if os.environ.get("CI"):
        assert HAVE_SPEEDUPS, "CI must build cointrail.analysis.clustering._unionfind"
    else:
        pytest.skip("only enforced when CI is set")


# ----------------------------------------------------------------------------- reference


@dataclass
class Reference:
    """Clusters as sets, merged link by link; a cluster's id is min(set)."""

    cluster: list[set[int]] = field(default_factory=list)  # element -> its (shared) set

    def grow(self, n: int) -> None:
        self.cluster += [{x} for x in range(len(self.cluster), n)]

    def union_batch(
        self, a: list[int], b: list[int], guard: int, mask: list[bool] | None
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int, int, int]]]:
        merges: list[tuple[int, int, int]] = []
        held: list[tuple[int, int, int, int, int]] = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            sx, sy = self.cluster[x], self.cluster[y]
            if sx is sy:
                continue
            ra, rb = min(sx), min(sy)
            guarded = guard > 0 and (mask is None or mask[i])
            if guarded and len(sx) >= guard and len(sy) >= guard:
                held.append((i, ra, rb, len(sx), len(sy)))
                continue
            merges.append((max(ra, rb), min(ra, rb), i))
            big, small = (sx, sy) if len(sx) >= len(sy) else (sy, sx)
            big |= small
            for z in small:
                self.cluster[z] = big
        return merges, held

    def ids(self) -> list[int]:
        return [min(s) for s in self.cluster]


def rows(array: np.ndarray[Any, Any]) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in row) for row in array.tolist()]


def check_state(uf: UnionFind, ref: Reference) -> None:
    ids = ref.ids()
    assert uf.find_all().tolist() == ids
    assert len(uf) == len(ids)
    for x in range(len(ids)):
        assert uf.size_of(x) == len(ref.cluster[x])
        if ids[x] == x:  # a root: its size entry is the cluster's size
            assert int(uf.sizes[x]) == len(ref.cluster[x])


# ----------------------------------------------------------------------------- strategies


@st.composite
def scenarios(draw: st.DrawFn) -> list[tuple[int, list[int], list[int], int, list[bool] | None]]:
    """A list of steps: (n after growing, a, b, guard_size, guard_mask)."""
    n = draw(st.integers(1, 12))
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        n += draw(st.integers(0, 8))
        m = draw(st.integers(0, 30))
        a = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
        b = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
        guard = draw(st.sampled_from([0, 0, 1, 2, 3, 5]))
        mask = draw(st.none() | st.lists(st.booleans(), min_size=m, max_size=m))
        steps.append((n, a, b, guard, mask))
    return steps


Steps = list[tuple[int, list[int], list[int], int, list[bool] | None]]


def run_steps(uf: UnionFind, steps: Steps, ref: Reference | None = None) -> list[BatchResult]:
    results = []
    for n, a, b, guard, mask in steps:
        uf.grow(n)
        result = uf.union_batch(a, b, guard, mask)
        results.append(result)
        if ref is not None:
            ref.grow(n)
            merges, held = ref.union_batch(a, b, guard, mask)
            assert rows(result.merges) == merges
            assert result.n_merges == len(merges)
            assert rows(result.held) == held
            check_state(uf, ref)
    return results


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("wide", WIDTHS)
@pytest.mark.parametrize("compiled", BACKENDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=scenarios())
def test_matches_reference(compiled: bool, wide: bool, steps: Steps) -> None:
    uf = UnionFind(0, wide=wide, use_speedups=compiled)
    assert uf.uses_speedups is compiled
    assert uf.dtype == (np.int64 if wide else np.uint32)
    run_steps(uf, steps, Reference())


@needs_core
@pytest.mark.parametrize("wide", WIDTHS)
@settings(max_examples=300, deadline=None)
@given(steps=scenarios(), probes=st.lists(st.integers(0, 200), max_size=10))
def test_compiled_equals_python(wide: bool, steps: Steps, probes: list[int]) -> None:
    """Same steps, same arrays (path halving included), same results."""
    c, py = UnionFind(wide=wide, use_speedups=True), UnionFind(wide=wide, use_speedups=False)
    for step in steps:
        rc, rp = run_steps(c, [step]), run_steps(py, [step])
        assert rows(rc[0].merges) == rows(rp[0].merges)
        assert rows(rc[0].held) == rows(rp[0].held)
        assert c._nodes[: len(c)].tolist() == py._nodes[: len(py)].tolist()
        xs = [p % len(c) for p in probes]
        assert c.find_many(xs).tolist() == py.find_many(xs).tolist()
        assert c._nodes[: len(c)].tolist() == py._nodes[: len(py)].tolist()
    assert c.find_all().tolist() == py.find_all().tolist()
    assert c._nodes[: len(c)].tolist() == py._nodes[: len(py)].tolist()


@pytest.mark.parametrize("compiled", BACKENDS)
@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 30),
    links=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29), st.booleans()), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    guard=st.sampled_from([0, 2, 3]),
)
def test_batches_equal_one_batch(
    compiled: bool, n: int, links: list[tuple[int, int, bool]], cuts: list[int], guard: int
) -> None:
    a = [x % n for x, _, _ in links]
    b = [y % n for _, y, _ in links]
    mask = [g for _, _, g in links]
    whole = UnionFind(n, use_speedups=compiled)
    one = whole.union_batch(a, b, guard, mask)
    parts = UnionFind(n, use_speedups=compiled)
    bounds = [0, *sorted(c for c in cuts if c <= len(links)), len(links)]
    merges: list[tuple[int, ...]] = []
    held: list[tuple[int, ...]] = []
    for lo, hi in itertools.pairwise(bounds):
        result = parts.union_batch(a[lo:hi], b[lo:hi], guard, mask[lo:hi])
        merges += [(y, o, i + lo) for y, o, i in rows(result.merges)]
        held += [(i + lo, *rest) for i, *rest in rows(result.held)]
    assert merges == rows(one.merges)
    assert held == rows(one.held)
    assert parts.find_all().tolist() == whole.find_all().tolist()


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("compiled", BACKENDS)
def test_example_merges_keep_the_older_id(compiled: bool) -> None:
    uf = UnionFind(6, use_speedups=compiled)
    result = uf.union_batch([4, 2, 5, 1], [5, 4, 3, 2])
    # 4+5 -> 4; 2+4 -> 2 (4 merged into 2); 5 (root 2) + 3 -> 2 absorbs 3; 1+2 -> 1
    assert rows(result.merges) == [(5, 4, 0), (4, 2, 1), (3, 2, 2), (2, 1, 3)]
    assert result.younger.tolist() == [5, 4, 3, 2]
    assert result.older.tolist() == [4, 2, 2, 1]
    assert result.merge_link.tolist() == [0, 1, 2, 3]
    assert uf.find_all().tolist() == [0, 1, 1, 1, 1, 1]
    assert uf.size_of(5) == 5 and uf.find(5) == 1 and uf.size_of(0) == 1


@pytest.mark.parametrize("compiled", BACKENDS)
def test_guard_holds_back_only_masked_links_between_big_clusters(compiled: bool) -> None:
    uf = UnionFind(8, use_speedups=compiled)
    uf.union_batch([0, 1, 4, 5], [1, 2, 5, 6])  # {0,1,2} and {4,5,6}
    result = uf.union_batch([2, 6, 3, 2], [6, 2, 0, 4], guard_size=3, guard_mask=[1, 0, 1, 1])
    # link 0 is held (both size 3); link 1 is not guarded and merges; link 2 joins a singleton;
    # link 3 finds a and b already joined
    assert rows(result.held) == [(0, 0, 4, 3, 3)]
    assert result.held_link.tolist() == [0]
    assert rows(result.merges) == [(4, 0, 1), (3, 0, 2)]
    assert uf.size_of(6) == 7
    # without a mask every link is guarded
    uf.grow(12)
    uf.union_batch([8, 10], [9, 11])
    held = uf.union_batch([9, 0], [11, 8], guard_size=2).held
    assert rows(held) == [(0, 8, 10, 2, 2), (1, 0, 8, 7, 2)]


@pytest.mark.parametrize("compiled", BACKENDS)
def test_record_merges_false_still_counts(compiled: bool) -> None:
    uf = UnionFind(4, use_speedups=compiled)
    result = uf.union_batch([0, 1, 2], [1, 0, 3], record_merges=False)
    assert result.n_merges == 2
    assert result.merges.shape == (0, 3)
    assert uf.find_all().tolist() == [0, 0, 2, 2]


@pytest.mark.parametrize("wide", WIDTHS)
@pytest.mark.parametrize("compiled", BACKENDS)
def test_empty(compiled: bool, wide: bool) -> None:
    uf = UnionFind(0, wide=wide, use_speedups=compiled)
    result = uf.union_batch([], [], 3)
    assert (result.n_merges, result.merges.shape, result.held.shape) == (0, (0, 3), (0, 5))
    assert uf.find_all().size == 0 and uf.find_many([]).size == 0
    assert len(UnionFind.from_parent([], use_speedups=compiled)) == 0


@pytest.mark.parametrize("compiled", BACKENDS)
def test_deep_chain_is_resolved(compiled: bool) -> None:
    """Links from the youngest down build one long path; find_all still resolves it."""
    n = 20_000 if compiled else 2_000
    uf = UnionFind(n, use_speedups=compiled)
    a = np.arange(n - 2, -1, -1)
    result = uf.union_batch(a, a + 1)
    assert result.n_merges == n - 1
    assert result.younger.tolist() == list(range(n - 1, 0, -1))
    assert uf.size_of(n - 1) == n
    assert not uf.find_all().any()


@pytest.mark.parametrize("compiled", BACKENDS)
def test_random_graph_matches_reference(compiled: bool) -> None:
    rng = np.random.default_rng(7)
    n, m = (20_000, 60_000) if compiled else (2_000, 6_000)
    uf, ref = UnionFind(use_speedups=compiled), Reference()
    n_held = 0
    for size in (n // 2, n):
        uf.grow(size)
        ref.grow(size)
        # mostly links between nearby ids (like a chain's), some far ones
        a = rng.integers(0, size, m // 2)
        b = np.where(rng.random(a.size) < 0.8, a + rng.integers(-20, 20, a.size), 0) % size
        b = np.where(b == 0, rng.integers(0, size, a.size), b)
        mask = rng.random(a.size) < 0.5
        result = uf.union_batch(a, b, 50, mask)
        merges, held = ref.union_batch(a.tolist(), b.tolist(), 50, mask.tolist())
        assert rows(result.merges) == merges
        assert rows(result.held) == held
        n_held += len(held)
    assert n_held > 0
    assert uf.find_all().tolist() == ref.ids()


# ----------------------------------------------------------------------------- growth, copies


@pytest.mark.parametrize("compiled", BACKENDS)
def test_grow_keeps_state_and_widens(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    uf = UnionFind(3, use_speedups=compiled)
    uf.union_batch([2], [1])
    view = uf.parent  # a live view: growth must then copy instead of resizing in place
    uf.grow(2)  # never shrinks
    assert len(uf) == 3
    uf.grow(100)
    assert uf.nbytes >= 100 * 8
    assert view.tolist() == [0, 1, 1]
    monkeypatch.setattr(unionfind, "COMPACT_LIMIT", 150)
    uf.grow(151)
    assert uf.dtype == np.int64
    assert uf.find_all().tolist() == [0, 1, 1, *range(3, 151)]
    uf.union_batch([150, 1], [1, 0])
    assert uf.find(150) == 0 and uf.size_of(150) == 4


@pytest.mark.parametrize("compiled", BACKENDS)
def test_copy_and_from_parent(compiled: bool) -> None:
    uf = UnionFind(10, use_speedups=compiled)
    uf.union_batch([9, 8, 3, 5], [8, 7, 5, 4])
    twin = uf.copy()
    twin.union_batch([0], [9])
    assert uf.find(9) == 7 and twin.find(9) == 0
    for parent in (uf.parent.copy(), uf.find_all()):
        back = UnionFind.from_parent(parent, use_speedups=compiled)
        assert back.find_all().tolist() == uf.find_all().tolist()
        assert [back.size_of(x) for x in range(10)] == [uf.size_of(x) for x in range(10)]
    with pytest.raises(ValueError, match=r"parent\[x\] must be in \[0, x\]"):
        UnionFind.from_parent([0, 2, 1])
    with pytest.raises(ValueError, match="one-dimensional integer"):
        UnionFind.from_parent([[0]])


@pytest.mark.parametrize("compiled", BACKENDS)
def test_find_all_view_is_read_only(compiled: bool) -> None:
    uf = UnionFind(3, use_speedups=compiled)
    uf.union_batch([1], [2])
    ids = uf.find_all(copy=False)
    assert ids.tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="read-only"):
        ids[0] = 5


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("compiled", BACKENDS)
def test_bad_input_changes_nothing(compiled: bool) -> None:
    uf = UnionFind(5, use_speedups=compiled)
    uf.union_batch([1], [2])
    before = uf._nodes[:5].tolist()
    with pytest.raises(ValueError, match=r"b\[2\] = 5 is not an id in \[0, 5\)"):
        uf.union_batch([0, 3, 4], [4, 0, 5])
    with pytest.raises(ValueError, match=r"a\[1\] = -1 is not an id"):
        uf.union_batch([3, -1], [4, 0])
    with pytest.raises(ValueError, match=r"xs\[0\] = 7"):
        uf.find_many([7])
    with pytest.raises(ValueError, match="differ in length"):
        uf.union_batch([0, 1], [2])
    with pytest.raises(ValueError, match="guard_mask differs"):
        uf.union_batch([0, 1], [2, 3], 2, [True])
    with pytest.raises(ValueError, match="guard_size"):
        uf.union_batch([0], [1], -1)
    with pytest.raises(ValueError, match="one-dimensional"):
        uf.union_batch([[0]], [[1]])
    assert uf._nodes[:5].tolist() == before


@needs_core
def test_core_rejects_wrong_element_types() -> None:
    core = unionfind._CORE
    assert core is not None
    nodes = np.zeros((4, 2), dtype=np.int32)
    ids = np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="nodes: unexpected element type"):
        core.union_batch(nodes, 4, ids, ids, 0, None, None)
    with pytest.raises(TypeError, match="a: unexpected element type"):
        core.union_batch(nodes.astype(np.uint32), 4, ids.astype(np.int32), ids, 0, None, None)
    with pytest.raises(ValueError, match="fewer than n"):
        core.find_all(nodes.astype(np.int64), 5)


def test_use_speedups_true_needs_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unionfind, "_CORE", None)
    with pytest.raises(RuntimeError, match="not built"):
        UnionFind(use_speedups=True)
    assert not UnionFind(2).uses_speedups


@needs_core
def test_stale_core_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    core = importlib.import_module("cointrail.analysis.clustering._unionfind")
    monkeypatch.setattr(core, "ABI_VERSION", -1)
    with pytest.warns(RuntimeWarning, match="out of date"):
        assert unionfind._load_core() is None
    monkeypatch.setenv("COINTRAIL_NO_SPEEDUPS", "1")
    assert unionfind._load_core() is None
