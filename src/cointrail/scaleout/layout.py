"""The store's Parquet layout as Spark DataFrames, cut at a height; input resolution from it.

`ChainStore.export_parquet(DIR)` writes ``DIR/<table>/part-*.parquet`` with the Arrow schemas of
`cointrail.store.schema`; any copy of that tree (a local folder, ``s3a://bucket/prefix``,
``hdfs://...``) is a valid `root`. Every job reads the tables through `ChainLayout`, which cuts
them at `height` the way the embedded engine does: transactions (and their inputs and outputs)
of blocks up to `height`, addresses first seen up to `height`.

Input resolution (`resolve_inputs`) rebuilds the value, address and script type of every input
from the raw outpoints (`prev_tx_id`, `prev_n`) joined to `outputs`, as the ingest did; the
export already carries the ingest's resolved columns, so `check_resolution` proves the two agree
and `derive_addresses` does the same for the first-seen columns of `addresses`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cointrail.errors import NotFoundError, StoreError
from cointrail.store.schema import ADDRESSES, BLOCKS, INPUTS, OUTPUTS, TX_LABELS, TXS, Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Tables every job needs; tx_labels is optional (an export from an unclustered store has none).
REQUIRED: tuple[Table, ...] = (BLOCKS, TXS, OUTPUTS, INPUTS, ADDRESSES)


def _read(spark: SparkSession, root: str, table: Table) -> DataFrame:
    from pyspark.errors import AnalysisException

    path = f"{root.rstrip('/')}/{table.name}"
    try:
        return spark.read.schema(_spark_schema(table)).parquet(path)
    except AnalysisException as exc:
        raise NotFoundError(
            f"no Parquet table {table.name!r} under {root}: export the store first "
            "(ChainStore.export_parquet, or `cointrail cluster --engine spark` does it)"
        ) from exc


def _spark_schema(table: Table) -> str:
    """The table's columns as a Spark DDL schema string (from the one schema definition)."""
    from cointrail.store.schema import ColType

    names = {
        ColType.INT8: "TINYINT", ColType.INT16: "SMALLINT", ColType.INT32: "INT",
        ColType.INT64: "BIGINT", ColType.BOOL: "BOOLEAN", ColType.HASH: "BINARY",
        ColType.BYTES: "BINARY", ColType.TEXT: "STRING", ColType.AMOUNT256: "DECIMAL(38,0)",
    }
    return ", ".join(f"`{c.name}` {names[c.type]}" for c in table.columns)


@dataclass(frozen=True)
class ChainLayout:
    """The exported tables, cut at `height` (every column as the schema defines it)."""

    spark: SparkSession
    root: str
    height: int
    blocks: DataFrame
    txs: DataFrame
    outputs: DataFrame
    inputs: DataFrame
    addresses: DataFrame
    tx_labels: DataFrame | None

    def cached(self) -> ChainLayout:
        """The same layout with every table kept in executor memory once read (for several
        jobs over a layout that fits the cluster's memory, e.g. tests and small chains)."""
        frames = {name: getattr(self, name).cache()
                  for name in ("blocks", "txs", "outputs", "inputs", "addresses")}
        labels = self.tx_labels.cache() if self.tx_labels is not None else None
        return ChainLayout(self.spark, self.root, self.height, tx_labels=labels, **frames)

    def register(self, prefix: str = "") -> None:
        """Register the cut tables as temporary views ``<prefix>txs`` etc. for Spark SQL."""
        for name in ("blocks", "txs", "outputs", "inputs", "addresses"):
            frame: DataFrame = getattr(self, name)
            frame.createOrReplaceTempView(f"{prefix}{name}")


def load_layout(spark: SparkSession, root: str, height: int | None = None) -> ChainLayout:
    """The layout under `root`, cut at `height` (default: the highest exported block)."""
    from pyspark.sql import functions as sf

    frames = {t.name: _read(spark, root, t) for t in REQUIRED}
    blocks = frames["blocks"]
    top = blocks.agg(sf.max("height").alias("h"), sf.count("*").alias("n")).first()
    if top is None or not top["n"]:
        raise NotFoundError(f"the Parquet layout under {root} holds no blocks; ingest first")
    tip = int(top["h"])
    if height is None:
        height = tip
    if not 0 <= height <= tip:
        raise NotFoundError(f"height {height} is outside the exported blocks 0..{tip}")
    bound = blocks.filter(sf.col("height") <= height).agg(
        sf.max(sf.col("first_tx_id") + sf.col("tx_count") - 1).alias("last")).first()
    last_tx = int(bound["last"]) if bound is not None and bound["last"] is not None else -1
    labels: DataFrame | None
    try:
        labels = _read(spark, root, TX_LABELS).filter(sf.col("tx_id") <= last_tx)
    except NotFoundError:
        labels = None
    return ChainLayout(
        spark, root, height,
        blocks.filter(sf.col("height") <= height),
        frames["txs"].filter(sf.col("tx_id") <= last_tx),
        frames["outputs"].filter(sf.col("tx_id") <= last_tx),
        frames["inputs"].filter(sf.col("tx_id") <= last_tx),
        frames["addresses"].filter(sf.col("first_height") <= height),
        labels,
    )


def resolve_inputs(layout: ChainLayout) -> DataFrame:
    """Every input resolved from its outpoint: the raw columns of `inputs` (``tx_id``, ``n``,
    ``prev_tx_id``, ``prev_n``, ``sequence``) joined to the output each spends for ``value``,
    ``addr_id`` and ``script_type``. An outpoint with no output is kept with NULLs (left join)
    so that `check_resolution` can count it."""
    from pyspark.sql import functions as sf

    raw = layout.inputs.select("tx_id", "n", "prev_tx_id", "prev_n", "sequence")
    spent = layout.outputs.select(
        sf.col("tx_id").alias("o_tx_id"), sf.col("n").alias("o_n"), "value", "addr_id",
        "script_type")
    joined = raw.join(spent, (raw.prev_tx_id == spent.o_tx_id) & (raw.prev_n == spent.o_n),
                      "left")
    return joined.select("tx_id", "n", "prev_tx_id", "prev_n", "value", "addr_id",
                         "script_type", "sequence", sf.col("o_tx_id").isNotNull().alias("found"))


@dataclass(frozen=True, slots=True)
class ResolutionCheck:
    """How the resolved inputs compare with the ingest's resolved columns."""

    inputs: int
    unresolved: int  # outpoints that name no output in the layout
    mismatched: int  # resolved, but value, addr_id or script_type differ from the export
    examples: tuple[tuple[int, int], ...]  # (tx_id, n) of a few mismatches

    @property
    def ok(self) -> bool:
        return self.unresolved == 0 and self.mismatched == 0


def check_resolution(layout: ChainLayout, examples: int = 5) -> ResolutionCheck:
    """Resolve every input from the outpoints and compare with the exported columns."""
    from pyspark.sql import functions as sf

    resolved = resolve_inputs(layout).alias("r")
    stored = layout.inputs.alias("s")
    both = resolved.join(stored, ["tx_id", "n"])
    bad = both.filter(
        sf.col("r.found") & ~(
            (sf.col("r.value") == sf.col("s.value"))
            & sf.col("r.addr_id").eqNullSafe(sf.col("s.addr_id"))
            & (sf.col("r.script_type") == sf.col("s.script_type"))))
    counts = resolved.agg(sf.count("*").alias("n"),
                          sf.sum(sf.when(~sf.col("found"), 1).otherwise(0)).alias("u")).first()
    assert counts is not None
    some = bad.select("tx_id", "n").orderBy("tx_id", "n").limit(examples).collect()
    return ResolutionCheck(int(counts["n"]), int(counts["u"] or 0), bad.count(),
                           tuple((int(r["tx_id"]), int(r["n"])) for r in some))


def require_resolution(layout: ChainLayout) -> None:
    """Raise StoreError unless every input resolves to the exported columns."""
    check = check_resolution(layout)
    if not check.ok:
        raise StoreError(
            f"the Parquet layout under {layout.root} is inconsistent: {check.unresolved} "
            f"input(s) spend no exported output and {check.mismatched} resolve differently "
            f"from the exported inputs (e.g. tx_id/n {list(check.examples)}); re-export the store"
        )


def derive_addresses(layout: ChainLayout) -> DataFrame:
    """``addr_id``, ``first_tx_id`` and ``first_height`` of every address, from the outputs
    that pay it (the first transaction that paid it, and that transaction's height)."""
    from pyspark.sql import functions as sf

    first = layout.outputs.filter(sf.col("addr_id").isNotNull()).groupBy("addr_id").agg(
        sf.min("tx_id").alias("first_tx_id"))
    heights = layout.txs.select(sf.col("tx_id").alias("first_tx_id"),
                                sf.col("height").alias("first_height"))
    return first.join(heights, "first_tx_id").select("addr_id", "first_tx_id", "first_height")


def check_addresses(layout: ChainLayout) -> int:
    """How many addresses differ between `derive_addresses` and the exported table (0: none)."""
    derived = derive_addresses(layout)
    stored = layout.addresses.select("addr_id", "first_tx_id", "first_height")
    return derived.exceptAll(stored).count() + stored.exceptAll(derived).count()


__all__ = [
    "ChainLayout",
    "ResolutionCheck",
    "check_addresses",
    "check_resolution",
    "derive_addresses",
    "load_layout",
    "require_resolution",
    "resolve_inputs",
]
