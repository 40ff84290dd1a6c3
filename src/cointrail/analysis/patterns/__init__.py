"""Transaction patterns recognised from a transaction's shape alone: CoinJoins and their kin."""

from __future__ import annotations

from cointrail.analysis.patterns.coinjoin import (
    CoinJoinDetector,
    CoinJoinKind,
    CoinJoinMatch,
    CoinJoinPattern,
    EqualOutputMix,
    JoinMarket,
    Stonewall,
    Wasabi1,
    Wasabi2,
    Whirlpool,
    WhirlpoolTx0,
    wabisabi_denominations,
)

__all__ = [
    "CoinJoinDetector",
    "CoinJoinKind",
    "CoinJoinMatch",
    "CoinJoinPattern",
    "EqualOutputMix",
    "JoinMarket",
    "Stonewall",
    "Wasabi1",
    "Wasabi2",
    "Whirlpool",
    "WhirlpoolTx0",
    "wabisabi_denominations",
]
