"""CoinJoin detection on Spark: the embedded detectors themselves, run on the executors.

The detectors (`cointrail.analysis.patterns.coinjoin`) are pure functions of a `TxView`, so
instead of a second rule set in Spark SQL this job builds the same views from the Parquet layout
and calls the same `CoinJoinDetector` on them, partition by partition: one definition, so the
labels cannot drift apart. Spark SQL only narrows the candidates to the detectors' common floor
(not a coinbase, has inputs, at least three outputs) and assembles each candidate's inputs and
outputs in wire order. Executors need cointrail installed (see docs/scale-out.md).

Output rows are the store's `tx_labels` rows plus ``multi_party`` (whether multi-input skips it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from cointrail.scaleout.layout import ChainLayout

LABEL_SCHEMA = (
    "tx_id BIGINT, height INT, label STRING, kind STRING, detector STRING, evidence STRING, "
    "multi_party BOOLEAN"
)


def _views(rows: Iterable[Any]) -> Iterator[Any]:
    from cointrail.analysis.txview import InputView, OutputView, TxView
    from cointrail.chain.utxo.script import ScriptType

    types = {t.code: t for t in ScriptType}
    for row in rows:
        inputs = tuple(
            InputView(i["addr_id"], int(i["value"]), types[int(i["script_type"])],
                      int(i["sequence"]))
            for i in sorted(row["ins"], key=lambda r: r["n"]))
        outputs = tuple(
            OutputView(int(o["n"]), o["addr_id"], int(o["value"]), types[int(o["script_type"])],
                       o["first_tx_id"])
            for o in sorted(row["outs"], key=lambda r: r["n"]))
        yield TxView(int(row["tx_id"]), int(row["height"]), int(row["version"]),
                     int(row["lock_time"]), inputs, outputs, bool(row["is_coinbase"]))


def detect_partition(rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """Run the default `CoinJoinDetector` on one partition of candidate rows (executor side)."""
    from cointrail.analysis.patterns.coinjoin import CoinJoinDetector

    detector = CoinJoinDetector()
    for tx in _views(rows):
        match = detector.detect(tx)
        if match is not None:
            yield (tx.tx_id, tx.height, "coinjoin", str(match.kind),
                   f"{match.detector}@{match.version}",
                   json.dumps(dict(match.evidence), sort_keys=True, default=str),
                   bool(match.multi_party))


def candidates(layout: ChainLayout) -> DataFrame:
    """Transactions at the detectors' floor, each with its inputs and outputs as arrays."""
    from pyspark.sql import functions as sf

    txs = layout.txs.filter(~sf.col("is_coinbase") & (sf.col("output_count") >= 3)).select(
        "tx_id", "height", "version", "lock_time", "is_coinbase")
    ins = layout.inputs.join(txs.select("tx_id"), "tx_id", "left_semi").groupBy("tx_id").agg(
        sf.collect_list(sf.struct("n", "addr_id", "value", "script_type", "sequence"))
        .alias("ins"))
    firsts = layout.addresses.select("addr_id", "first_tx_id")
    outs = (layout.outputs.join(txs.select("tx_id"), "tx_id", "left_semi")
            .join(firsts, "addr_id", "left").groupBy("tx_id").agg(
                sf.collect_list(sf.struct("n", "addr_id", "value", "script_type", "first_tx_id"))
                .alias("outs")))
    return txs.join(ins, "tx_id").join(outs, "tx_id")


def detect_coinjoins(layout: ChainLayout) -> DataFrame:
    """The `tx_labels` rows (plus ``multi_party``) the embedded detector writes for `layout`."""
    rdd = candidates(layout).rdd.mapPartitions(detect_partition)
    return layout.spark.createDataFrame(rdd, LABEL_SCHEMA)


__all__ = ["LABEL_SCHEMA", "candidates", "detect_coinjoins", "detect_partition"]
