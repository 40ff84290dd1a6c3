"""Tracing funds forward and backward over the spend graph, by a taint model.

    from cointrail.analysis.tracing import TaintModel, TraceParams, trace
    result = trace(store, "txid:0", "forward", TraceParams(model=TaintModel.FIFO, hops=6))
    result.to_dict()  # nodes, edges, endpoints by category, reproducibility record
"""

from cointrail.analysis.tracing.engine import (
    BACKWARD,
    COINJOIN_STOP,
    COINJOIN_THROUGH,
    DEFAULT_HOPS,
    FORWARD,
    Start,
    TraceParams,
    parse_start,
    trace,
)
from cointrail.analysis.tracing.models import Taint, TaintModel, allocate, largest_remainder
from cointrail.analysis.tracing.result import Endpoint, Trace, TraceEdge, TraceNode
from cointrail.analysis.tracing.stops import SERVICE_CATEGORIES

__all__ = [
    "BACKWARD",
    "COINJOIN_STOP",
    "COINJOIN_THROUGH",
    "DEFAULT_HOPS",
    "FORWARD",
    "SERVICE_CATEGORIES",
    "Endpoint",
    "Start",
    "Taint",
    "TaintModel",
    "Trace",
    "TraceEdge",
    "TraceNode",
    "TraceParams",
    "allocate",
    "largest_remainder",
    "parse_start",
    "trace",
]
