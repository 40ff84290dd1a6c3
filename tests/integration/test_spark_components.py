"""Connected components by large-star / small-star on Spark (local mode), against the
embedded union-find, and the iteration bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cointrail.analysis.clustering.unionfind import UnionFind
from cointrail.scaleout.components import (
    ComponentsNotConverged,
    connected_components,
    large_star,
    normalise,
    small_star,
)
from cointrail.scaleout.session import spark_session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def spark() -> Any:
    return spark_session("local[2]", shuffle_partitions=2)


def _labels(spark: Any, edges: np.ndarray, max_rounds: int = 40) -> tuple[dict[int, int], int]:
    frame = spark.createDataFrame([(int(a), int(b)) for a, b in edges], "src BIGINT, dst BIGINT")
    run = connected_components(frame, max_rounds=max_rounds)
    return {int(r["node"]): int(r["component"]) for r in run.labels().collect()}, run.rounds


@pytest.mark.parametrize("seed", [1, 2])
def test_components_equal_the_union_find_on_random_graphs(spark: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3_000
    edges = rng.integers(0, n, size=(2_000, 2))
    # a long path too, so that several rounds are needed
    path = np.stack([np.arange(n, n + 300), np.arange(n + 1, n + 301)], axis=1)
    edges = np.concatenate([edges, path[rng.permutation(len(path))]])
    labels, rounds = _labels(spark, edges)
    uf = UnionFind(n + 301)
    uf.union_batch(edges[:, 0], edges[:, 1], record_merges=False)
    roots = uf.find_all()
    touched = np.unique(edges[edges[:, 0] != edges[:, 1]])
    assert labels == {int(a): int(roots[a]) for a in touched}
    assert rounds > 1
    assert labels[n + 300] == n  # the path's smallest node is its id


def test_a_star_forest_is_a_fixed_point_of_both_steps(spark: Any) -> None:
    stars = spark.createDataFrame([(5, 1), (9, 1), (7, 3)], "src BIGINT, dst BIGINT")
    edges = normalise(stars)
    want = sorted(tuple(r) for r in edges.collect())
    assert sorted(tuple(r) for r in large_star(edges).collect()) == want
    assert sorted(tuple(r) for r in small_star(edges).collect()) == want


def test_the_iteration_bound_raises_a_typed_error(spark: Any) -> None:
    n = 200
    rng = np.random.default_rng(7)
    order = rng.permutation(n)  # a path visiting the nodes in random order
    edges = np.stack([order[:-1], order[1:]], axis=1)
    with pytest.raises(ComponentsNotConverged) as caught:
        _labels(spark, edges, max_rounds=1)
    assert caught.value.rounds == 1
    assert caught.value.changed > 0
    assert "--max-rounds" in str(caught.value)
    labels, rounds = _labels(spark, edges)  # with room, the same graph converges
    assert rounds > 1
    assert set(labels.values()) == {0}
