"""Connected components of an edge DataFrame by large-star / small-star iterations.

Kiveris, Lattanzi, Mirrokni, Rastogi, Vassilvitskii 2014, "Connected Components in MapReduce
and Beyond" (SoCC '14). Edges are kept undirected as ``(hi, lo)`` with ``hi > lo``:

- *large-star*: every node u links each neighbour v > u to m(u), the smallest of u and its
  neighbours;
- *small-star*: every node u links itself and each neighbour v < u to the smallest of those.

A round is one large-star and one small-star. Both keep the components and shrink the graph
towards one star per component whose centre is its smallest node; once a round leaves the edge
set unchanged, every edge is ``(member, centre)``. The number of rounds is O(log² n) in theory
and about log n in practice; `max_rounds` bounds it and `ComponentsNotConverged` says so when the
bound is hit. Each round's edges are checkpointed, so the plan does not grow with the rounds.

Invariant: a component's id is its smallest node, the same id the embedded union-find gives a
cluster (its oldest address), so the two engines' results compare row for row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cointrail.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DEFAULT_MAX_ROUNDS = 40


class ComponentsNotConverged(InputError):  # noqa: N818 - reads as a sentence at the raise site
    """The iteration bound was reached before the edge set stopped changing."""

    def __init__(self, rounds: int, changed: int) -> None:
        super().__init__(
            f"connected components did not converge within {rounds} round(s) ({changed} edge(s) "
            "still changing); raise the bound (--max-rounds) and run again"
        )
        self.rounds = rounds
        self.changed = changed


@dataclass(frozen=True, slots=True)
class ComponentsRun:
    """The converged star edges and how many rounds it took."""

    stars: DataFrame  # (hi, lo): node `hi` belongs to the component whose smallest node is `lo`
    rounds: int

    def labels(self) -> DataFrame:
        """``(node, component)`` for every node that has an edge (centres map to themselves)."""
        from pyspark.sql import functions as sf

        members = self.stars.select(sf.col("hi").alias("node"), sf.col("lo").alias("component"))
        centres = self.stars.select(sf.col("lo").alias("node"), sf.col("lo").alias("component"))
        return members.unionByName(centres).distinct()


def checkpoint(frame: DataFrame) -> DataFrame:
    """Cut the lineage: a reliable checkpoint when a checkpoint dir is set, else a local one."""
    if frame.sparkSession.sparkContext.getCheckpointDir():
        return frame.checkpoint(eager=True)
    return frame.localCheckpoint(eager=True)


def normalise(edges: DataFrame, a: str = "src", b: str = "dst") -> DataFrame:
    """The distinct undirected edges ``(hi, lo)`` of `edges`, self-loops dropped."""
    from pyspark.sql import functions as sf

    return (edges.select(sf.greatest(a, b).alias("hi"), sf.least(a, b).alias("lo"))
            .filter(sf.col("hi") != sf.col("lo")).distinct())


def large_star(edges: DataFrame) -> DataFrame:
    """One large-star step on normalised edges."""
    from pyspark.sql import functions as sf

    both = edges.select(sf.col("hi").alias("u"), sf.col("lo").alias("v")).unionByName(
        edges.select(sf.col("lo").alias("u"), sf.col("hi").alias("v")))
    smallest = both.groupBy("u").agg(sf.least(sf.min("v"), sf.col("u")).alias("m"))
    out = both.filter(sf.col("v") > sf.col("u")).join(smallest, "u")
    return out.select(sf.col("v").alias("hi"), sf.col("m").alias("lo")).distinct()


def small_star(edges: DataFrame) -> DataFrame:
    """One small-star step on normalised edges."""
    from pyspark.sql import functions as sf

    smallest = edges.groupBy("hi").agg(sf.min("lo").alias("m"))
    joined = edges.join(smallest, "hi")
    neighbours = joined.filter(sf.col("lo") != sf.col("m")).select(
        sf.col("lo").alias("hi"), sf.col("m").alias("lo"))
    itself = smallest.select(sf.col("hi"), sf.col("m").alias("lo"))
    return neighbours.unionByName(itself).distinct()


def connected_components(
    edges: DataFrame,
    *,
    a: str = "src",
    b: str = "dst",
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    on_round: Callable[[int, int], None] | None = None,
) -> ComponentsRun:
    """Components of the undirected graph `edges` (columns `a`, `b`, integer node ids).

    Raises `ComponentsNotConverged` when `max_rounds` rounds leave edges still changing.
    `on_round(round, changed)` is called after each round.
    """
    from pyspark.sql import functions as sf

    if max_rounds < 1:
        raise InputError(f"--max-rounds {max_rounds}: give 1 or more")
    current = checkpoint(normalise(edges, a, b))
    changed = -1
    for rounds in range(1, max_rounds + 1):
        nxt = checkpoint(small_star(checkpoint(large_star(current))))
        # unchanged when neither side holds an edge the other lacks
        changed = (nxt.join(current, ["hi", "lo"], "left_anti").count()
                   + current.join(nxt, ["hi", "lo"], "left_anti").count())
        if on_round is not None:
            on_round(rounds, changed)
        current = nxt
        if changed == 0:
            return ComponentsRun(current.select(sf.col("hi"), sf.col("lo")), rounds)
    raise ComponentsNotConverged(max_rounds, changed)


__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "ComponentsNotConverged",
    "ComponentsRun",
    "checkpoint",
    "connected_components",
    "large_star",
    "normalise",
    "small_star",
]
