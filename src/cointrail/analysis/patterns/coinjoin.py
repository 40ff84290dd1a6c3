"""CoinJoin detectors: recognise multi-party transactions from their shape alone.

A CoinJoin spends inputs of many owners in one transaction, so the common-input-ownership
heuristic must not merge its input addresses (Meiklejohn et al. 2013; Möser & Narayanan 2022,
"Resurrecting Address Clustering in Bitcoin", FC 2022; Kappos et al. 2022, "How to Peel a
Million", USENIX Security). Each detector here is one published pattern with explicit parameters;
`CoinJoinDetector` runs an enabled set and hands its verdict to the clustering heuristics.

Every detector is tuned so that ordinary payments never match: a single payer (inputs from one
address), batched payouts whose equal amounts are a small share of the outputs, outputs paying
reused addresses, and payouts sweeping one address's many coins are all rejected. The gates follow
GraphSense's CoinJoin false-positive reduction (graphsense/graphsense-lib PR #82: at least one
non-denomination output, no single address owning more than 10% of the inputs, at least three
denomination tiers), adapted and documented per detector. A detector never matches a coinbase or
a transaction with fewer than three outputs.

Invariant: detectors are pure functions of a `TxView`; the same view and parameters always give
the same match, so a run records each detector's `name`, `version` and `params()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from functools import cache
from typing import ClassVar

from cointrail.analysis.txview import Freshness, OutputView, TxView
from cointrail.chain.utxo.script import ScriptType

COIN = 100_000_000
#: Bitcoin's MAX_MONEY in satoshi (21 million BTC).
MAX_MONEY = 21_000_000 * COIN

P2WPKH = ScriptType.WITNESS_V0_KEYHASH
P2TR = ScriptType.WITNESS_V1_TAPROOT

EvidenceValue = int | float | str | tuple[int, ...]


def component_params(component: object) -> dict[str, object]:
    """The dataclass fields of a heuristic or detector as JSON-ready values, for run records.

    Enums become their values, sets sorted lists, tuples lists, nested components their
    `describe()`.
    """
    return {f.name: _jsonable(getattr(component, f.name)) for f in fields(component)}  # type: ignore[arg-type]


def _jsonable(value: object) -> object:
    describe = getattr(value, "describe", None)
    if callable(describe):
        return describe()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set):
        return sorted(_jsonable(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


class CoinJoinKind(StrEnum):
    """What a match says the transaction is."""

    WASABI_1 = "wasabi_1"  # Wasabi Wallet 1.x, ZeroLink / Chaumian CoinJoin
    WASABI_2 = "wasabi_2"  # Wasabi Wallet 2.x and other WabiSabi clients
    WHIRLPOOL = "whirlpool"  # Samourai / Sparrow Whirlpool mix
    WHIRLPOOL_TX0 = "whirlpool_tx0"  # Whirlpool premix transaction: one owner, not a CoinJoin
    JOINMARKET = "joinmarket"
    EQUAL_OUTPUT = "equal_output"  # generic equal-output mix of unknown software
    STONEWALL = "stonewall"  # Samourai Stonewall (one owner) or Stonewall X2 (two): one shape


@dataclass(frozen=True, slots=True)
class CoinJoinMatch:
    """A detector's verdict on one transaction.

    `multi_party` is False for patterns that are single-owner (Whirlpool Tx0): their inputs may be
    clustered, but change heuristics still skip them. `evidence` names what matched, e.g.
    ``denomination``, ``equal_outputs``, ``coordinator_output`` (an output index).
    """

    kind: CoinJoinKind
    detector: str
    version: str
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict, hash=False)
    multi_party: bool = True


@dataclass(frozen=True, slots=True)
class CoinJoinPattern(ABC):
    """A CoinJoin detector: `detect` returns a match or None; fields are its parameters."""

    name: ClassVar[str]
    version: ClassVar[str]
    kind: ClassVar[CoinJoinKind]

    @abstractmethod
    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        """The match if `tx` has this pattern's shape, else None."""

    def params(self) -> dict[str, object]:
        return component_params(self)

    def describe(self) -> dict[str, object]:
        """Name, version and parameters, as a run records them."""
        return {"name": self.name, "version": self.version, "params": self.params()}

    def _match(
        self, evidence: Mapping[str, EvidenceValue], *, multi_party: bool = True
    ) -> CoinJoinMatch:
        return CoinJoinMatch(self.kind, self.name, self.version, dict(evidence), multi_party)


# --- shared shape checks ----------------------------------------------------------------------


def _spendable(tx: TxView) -> list[OutputView]:
    """Outputs that can carry value to someone (OP_RETURN outputs left out)."""
    return [o for o in tx.outputs if o.script_type is not ScriptType.NULLDATA]


def _distinct_addresses(outputs: Sequence[OutputView]) -> bool:
    """Every output has an address and no two share one."""
    addrs = [o.addr_id for o in outputs]
    return None not in addrs and len(set(addrs)) == len(addrs)


def _any_reused(tx: TxView, outputs: Iterable[OutputView]) -> bool:
    return any(tx.freshness(o) is Freshness.REUSED for o in outputs)


def _pays_input_address(tx: TxView, outputs: Iterable[OutputView]) -> bool:
    inputs = tx.input_addr_ids
    return any(o.addr_id in inputs for o in outputs)


def _top_input_share(tx: TxView) -> float:
    """The largest share of inputs spending from one address (inputs without one: own owners)."""
    counts = Counter(i.addr_id for i in tx.inputs if i.addr_id is not None)
    return max(counts.values(), default=0) / len(tx.inputs) if tx.inputs else 0.0


def _count_round(outputs: Iterable[OutputView], precision: int) -> int:
    """How many outputs are a multiple of `precision` sat (none when `precision` is 0)."""
    return sum(o.value % precision == 0 for o in outputs) if precision > 0 else 0


def _shape_ok(tx: TxView) -> bool:
    """The common floor: not a coinbase, has inputs, at least three outputs."""
    return not tx.is_coinbase and bool(tx.inputs) and len(tx.outputs) >= 3


def _most_common_in(outputs: Sequence[OutputView], low: int, high: int) -> tuple[int, int] | None:
    """(value, count) of the most frequent output value in [`low`, `high`]; ties: the larger."""
    counts = Counter(o.value for o in outputs if low <= o.value <= high)
    if not counts:
        return None
    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))


@cache
def wabisabi_denominations(
    minimum: int = 5_000, maximum: int = MAX_MONEY
) -> frozenset[int]:
    """Wasabi 2's standard output amounts in satoshi between `minimum` and `maximum`.

    The published series (WalletWasabi, ``DenominationBuilder.CreateDenominations``): powers of
    2; powers of 3 and twice them; powers of 10 and twice and five times them.
    """
    values: set[int] = set()
    for base, multiples in ((2, (1,)), (3, (1, 2)), (10, (1, 2, 5))):
        power = 1
        while power <= maximum:
            values.update(m * power for m in multiples if minimum <= m * power <= maximum)
            power *= base
    return frozenset(values)


# --- Wasabi 2 (WabiSabi) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wasabi2(CoinJoinPattern):
    """Wasabi Wallet 2 / WabiSabi rounds: many inputs, outputs at standard denominations.

    Pattern (Stockinger et al. 2021, "Pinpointing and Measuring Wasabi and Samourai CoinJoins",
    arXiv:2109.10229, extended as Stütz et al., AFT 2022; denominations from WalletWasabi's
    ``DenominationBuilder``): at least `min_inputs` inputs and `min_outputs` outputs, every
    input and (but for at most `max_foreign_outputs`, the coordinator fee) every output P2WPKH
    or P2TR, no output under WabiSabi's 5,000-sat minimum, distinct output addresses, and
    outputs at the standard denominations (`wabisabi_denominations`) — at least
    `min_denominations` different ones, each on at least `min_denomination_count` outputs,
    together at least `min_denominated_share` of the outputs besides one coordinator output.
    With `require_non_denominated` at least one output is change or a coordinator fee
    (GraphSense PR #82: this removes N-way split payouts at the cost of the rare all-remix
    round). With `require_fresh_outputs` no denominated output pays a reused address (Wasabi
    never reuses).

    Known false positives: a segwit-only exchange batch of mostly round withdrawals (0.01, 0.02,
    0.05 BTC …) from ≥ 50 distinct addresses into fresh addresses; other WabiSabi coordinators'
    rounds are matched on purpose. Known misses: rounds under `min_inputs` or `min_outputs`
    (smaller coordinators after zkSNACKs closed in 2024 run rounds of 20–50 inputs; lower both
    for them), and all-remix rounds without change.
    """

    name: ClassVar[str] = "wasabi2"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.WASABI_2

    min_inputs: int = 50
    min_outputs: int = 50
    script_types: frozenset[ScriptType] = frozenset({P2WPKH, P2TR})
    max_foreign_outputs: int = 1
    min_output_value: int = 5_000
    min_denomination_count: int = 2
    min_denominations: int = 3
    min_denominated_share: float = 0.5
    max_top_input_share: float = 0.1
    require_non_denominated: bool = True
    require_fresh_outputs: bool = True

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx) or len(tx.inputs) < self.min_inputs:
            return None
        if any(i.script_type not in self.script_types for i in tx.inputs):
            return None
        outputs = _spendable(tx)
        if len(outputs) < self.min_outputs or len(outputs) != len(tx.outputs):
            return None
        if not _distinct_addresses(outputs):
            return None
        if sum(o.script_type not in self.script_types for o in outputs) > self.max_foreign_outputs:
            return None
        if min(o.value for o in outputs) < self.min_output_value:
            return None
        if _top_input_share(tx) > self.max_top_input_share:
            return None
        standard = wabisabi_denominations(self.min_output_value)
        counts = Counter(o.value for o in outputs if o.value in standard)
        used = {v for v, c in counts.items() if c >= self.min_denomination_count}
        if len(used) < self.min_denominations:
            return None
        denominated = [o for o in outputs if o.value in used]
        if len(denominated) < self.min_denominated_share * (len(outputs) - 1):
            return None
        others = [o for o in outputs if o.value not in used]
        if self.require_non_denominated and not others:
            return None
        if self.require_fresh_outputs and _any_reused(tx, denominated):
            return None
        evidence: dict[str, EvidenceValue] = {
            "denominations": tuple(sorted(used)),
            "denominated_outputs": len(denominated),
            "inputs": len(tx.inputs),
            "outputs": len(outputs),
        }
        coordinator = _coordinator_output(tx, others)
        if coordinator is not None:
            evidence["coordinator_output"] = coordinator
        return self._match(evidence)


def _coordinator_output(tx: TxView, others: Sequence[OutputView]) -> int | None:
    """The index of the one non-denominated output paying a reused address (a coordinator's
    fee address is reused round after round), if exactly one does."""
    reused = [o.n for o in others if tx.freshness(o) is Freshness.REUSED]
    return reused[0] if len(reused) == 1 else None


# --- Wasabi 1 (ZeroLink) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wasabi1(CoinJoinPattern):
    """Wasabi Wallet 1.x rounds (ZeroLink Chaumian CoinJoin): ~0.1 BTC base denomination.

    Pattern (Ficsór 2017, "ZeroLink: The Bitcoin Fungibility Framework"; Stockinger et al. 2021,
    arXiv:2109.10229): every input and output P2WPKH (Wasabi 1 is bech32-only); at least
    `min_base_outputs` outputs of one value within `tolerance` of `base_denomination`; Wasabi 1.1
    mixing levels at 2^i times that value count too when a level's value repeats; mixed outputs
    are at least `min_denominated_share` of the outputs besides the coordinator fee (each
    participant has at most one change); distinct output addresses; between one and
    `max_inputs_per_participant` (ZeroLink's 7) distinct input addresses per base output.
    The coordinator fee output is reported when exactly one non-mixed output pays a reused
    address.

    Known false positives: a bech32 exchange batch paying ten or more withdrawals of exactly the
    same amount near 0.1 BTC that make up half its outputs. Known misses: rounds below
    `min_base_outputs` (early small rounds); rounds whose base denomination drifted beyond
    `tolerance`.
    """

    name: ClassVar[str] = "wasabi1"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.WASABI_1

    base_denomination: int = 10_000_000
    tolerance: float = 0.05
    min_base_outputs: int = 10
    min_level_outputs: int = 2
    min_denominated_share: float = 0.5
    max_inputs_per_participant: int = 7
    max_top_input_share: float = 0.1
    script_types: frozenset[ScriptType] = frozenset({P2WPKH})
    require_fresh_outputs: bool = True

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx) or len(tx.inputs) < self.min_base_outputs:
            return None
        outputs = _spendable(tx)
        if len(outputs) != len(tx.outputs) or not _distinct_addresses(outputs):
            return None
        if any(i.script_type not in self.script_types for i in tx.inputs):
            return None
        if any(o.script_type not in self.script_types for o in outputs):
            return None
        slack = int(self.base_denomination * self.tolerance)
        base = _most_common_in(
            outputs, self.base_denomination - slack, self.base_denomination + slack
        )
        if base is None or base[1] < self.min_base_outputs:
            return None
        base_value, participants = base
        levels = [base_value]
        top = max(o.value for o in outputs)
        level = 1
        while (base_value << level) <= top * (1 + self.tolerance):
            target = base_value << level
            slack = int(target * self.tolerance)
            found = _most_common_in(outputs, target - slack, target + slack)
            if found is not None and found[1] >= self.min_level_outputs:
                levels.append(found[0])
            level += 1
        mixed = [o for o in outputs if o.value in levels]
        if len(mixed) < self.min_denominated_share * (len(outputs) - 1):
            return None
        distinct_inputs = len(tx.input_addr_ids)
        if not participants <= distinct_inputs <= self.max_inputs_per_participant * participants:
            return None
        if _top_input_share(tx) > self.max_top_input_share:
            return None
        if self.require_fresh_outputs and _any_reused(tx, mixed):
            return None
        evidence: dict[str, EvidenceValue] = {
            "denomination": base_value,
            "equal_outputs": participants,
            "levels": tuple(levels),
            "mixed_outputs": len(mixed),
        }
        coordinator = _coordinator_output(tx, [o for o in outputs if o.value not in levels])
        if coordinator is not None:
            evidence["coordinator_output"] = coordinator
        return self._match(evidence)


# --- Whirlpool --------------------------------------------------------------------------------

#: Whirlpool pools: (denomination, pool fee) in satoshi — 0.001, 0.01, 0.05 and 0.5 BTC.
WHIRLPOOL_POOLS: tuple[tuple[int, int], ...] = (
    (100_000, 5_000),
    (1_000_000, 50_000),
    (5_000_000, 175_000),
    (50_000_000, 1_750_000),
)


@dataclass(frozen=True, slots=True)
class Whirlpool(CoinJoinPattern):
    """Samourai / Sparrow Whirlpool mixes: 5 inputs, 5 equal outputs at a pool denomination.

    Pattern (Stockinger et al. 2021, arXiv:2109.10229): the input and output counts are equal and
    in `sizes` (5; add 6–8 for the 2023 "surge cycles"); every output pays exactly one of the
    `pools` denominations to a distinct, fresh P2WPKH address that is none of the inputs'; every
    input is worth the denomination (a remixer) or at most `max_entry_surplus` more (a new
    entrant's premix output carrying the mining fee), from distinct addresses; no OP_RETURN.

    Known false positives: none known — five identical pool-sized outputs fed by five inputs
    within 0.0011 BTC above the pool size do not arise from ordinary payments. Known misses:
    surge-cycle mixes with more than five participants under the default `sizes`.
    """

    name: ClassVar[str] = "whirlpool"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.WHIRLPOOL

    pools: tuple[int, ...] = tuple(d for d, _ in WHIRLPOOL_POOLS)
    sizes: frozenset[int] = frozenset({5})
    max_entry_surplus: int = 110_000
    script_types: frozenset[ScriptType] = frozenset({P2WPKH})
    require_fresh_outputs: bool = True

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        n = len(tx.inputs)
        if not _shape_ok(tx) or n not in self.sizes or len(tx.outputs) != n:
            return None
        denomination = tx.outputs[0].value
        if denomination not in self.pools or any(o.value != denomination for o in tx.outputs):
            return None
        if any(o.script_type not in self.script_types for o in tx.outputs):
            return None
        if any(i.script_type not in self.script_types for i in tx.inputs):
            return None
        if not _distinct_addresses(tx.outputs) or len(tx.input_addr_ids) != n:
            return None
        if _pays_input_address(tx, tx.outputs):
            return None
        if self.require_fresh_outputs and _any_reused(tx, tx.outputs):
            return None
        upper = denomination + self.max_entry_surplus
        if not all(denomination <= i.value <= upper for i in tx.inputs):
            return None
        remixers = sum(i.value == denomination for i in tx.inputs)
        return self._match(
            {
                "denomination": denomination,
                "equal_outputs": n,
                "remixers": remixers,
                "new_entrants": n - remixers,
            }
        )


@dataclass(frozen=True, slots=True)
class WhirlpoolTx0(CoinJoinPattern):
    """Whirlpool Tx0, the premix transaction: one owner splits coins into premix outputs.

    Pattern (Stockinger et al. 2021, arXiv:2109.10229, with their η₁ = 0.5, η₂ = 3): exactly one
    OP_RETURN output; `min_premix`–`max_premix` equal outputs worth a pool denomination plus
    `min_entry_surplus`–`max_entry_surplus` (the mix's mining fee), paying distinct fresh
    addresses; exactly one output between η₁ and η₂ times the pool's fee (the coordinator); at
    most `max_change_outputs` other outputs. The match is not multi-party: a Tx0 is one wallet,
    so common-input ownership still holds.

    Known false positives: a batch of equal payments slightly above a pool size with an OP_RETURN
    and one output near the pool fee — not known from ordinary wallets. Known misses: Tx0s
    whose fee was fully waived by a discount code (no fee output).
    """

    name: ClassVar[str] = "whirlpool_tx0"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.WHIRLPOOL_TX0

    pools: tuple[tuple[int, int], ...] = WHIRLPOOL_POOLS
    min_entry_surplus: int = 100
    max_entry_surplus: int = 110_000
    min_premix: int = 1
    max_premix: int = 70
    fee_ratio_low: float = 0.5
    fee_ratio_high: float = 3.0
    max_change_outputs: int = 2

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx):
            return None
        outputs = _spendable(tx)
        if len(tx.outputs) - len(outputs) != 1:
            return None
        for denomination, fee in self.pools:
            premix = _most_common_in(
                outputs,
                denomination + self.min_entry_surplus,
                denomination + self.max_entry_surplus,
            )
            if premix is None or not self.min_premix <= premix[1] <= self.max_premix:
                continue
            premix_outputs = [o for o in outputs if o.value == premix[0]]
            rest = [o for o in outputs if o.value != premix[0]]
            fees = [
                o for o in rest
                if self.fee_ratio_low * fee <= o.value <= self.fee_ratio_high * fee
            ]
            if len(fees) != 1 or len(rest) - 1 > self.max_change_outputs:
                continue
            if not _distinct_addresses(premix_outputs) or _any_reused(tx, premix_outputs):
                continue
            return self._match(
                {
                    "denomination": denomination,
                    "premix_value": premix[0],
                    "premix_outputs": premix[1],
                    "coordinator_output": fees[0].n,
                },
                multi_party=False,
            )
        return None


# --- JoinMarket -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinMarket(CoinJoinPattern):
    """JoinMarket rounds: n equal outputs (taker and makers) and n or n - 1 change outputs.

    Pattern (Goldfeder et al. 2018, "When the cookie meets the blockchain", PoPETs, the
    JoinMarket heuristic BlockSci ships as ``isCoinjoin``; Möser & Narayanan 2022): the most
    frequent output value of at least `min_denomination` sat appears n ≥ `min_participants`
    times and the other outputs number n - 1 (the taker swept) or n, each of a different value
    (every participant's own change) and none round at `round_change_precision` sat (change is
    what is left of a participant's inputs, so a round one is a payment; 0 disables); at least
    n distinct input addresses and at most `max_inputs_per_participant` inputs per participant;
    distinct output addresses, none an input's; with `require_fresh_outputs` no equal output
    pays a reused address; no OP_RETURN. With `single_script_type` every input and output has
    one script type: JoinMarket keeps native and nested segwit wallets apart (offer types
    ``sw0*offer`` and ``sw*offer``), so a taker only joins makers of its own type.

    Known false positives: a small batch whose equal payments are half its outputs, e.g. an
    exchange paying 0.01 BTC to three fresh addresses plus two non-round withdrawals and change
    from three or more of its addresses, all of one script type (GraphSense PR #82 measures
    3.7% hard false positives for a similar rule without the type and roundness gates);
    Samourai's Stonewall has two equal outputs, so `min_participants` ≥ 3 keeps it out. Known
    misses: rounds where a maker's change is missing, two changes happen to be equal, or a
    change is round by chance (one in `round_change_precision`).
    """

    name: ClassVar[str] = "joinmarket"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.JOINMARKET

    min_participants: int = 3
    min_denomination: int = 10_000
    max_inputs_per_participant: int = 20
    round_change_precision: int = 100_000
    single_script_type: bool = True
    require_fresh_outputs: bool = True

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx):
            return None
        outputs = _spendable(tx)
        if len(outputs) != len(tx.outputs):
            return None
        if self.single_script_type and (
            len({o.script_type for o in outputs} | {i.script_type for i in tx.inputs}) != 1
        ):
            return None
        counts = Counter(o.value for o in outputs if o.value >= self.min_denomination)
        if not counts:
            return None
        denomination, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        change = [o for o in outputs if o.value != denomination]
        if n < self.min_participants or len(change) not in (n - 1, n):
            return None
        if len({o.value for o in change}) != len(change):
            return None
        if _count_round(change, self.round_change_precision) > 0:
            return None
        if len(tx.input_addr_ids) < n or len(tx.inputs) > self.max_inputs_per_participant * n:
            return None
        if not _distinct_addresses(outputs) or _pays_input_address(tx, outputs):
            return None
        equal = [o for o in outputs if o.value == denomination]
        if self.require_fresh_outputs and _any_reused(tx, equal):
            return None
        return self._match(
            {
                "denomination": denomination,
                "equal_outputs": n,
                "change_outputs": len(change),
                "inputs": len(tx.inputs),
            }
        )


# --- generic equal-output mix -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EqualOutputMix(CoinJoinPattern):
    """Any mix of equal outputs: the catch-all for CoinJoin software without its own detector.

    Pattern (Möser & Narayanan 2022, after Goldfeder et al. 2018 and Kappos et al. 2022, who
    exclude such transactions before clustering): the most frequent output value of at least
    `min_value` sat appears k ≥ `min_equal_outputs` times, on at least `min_equal_share` of the
    outputs besides one (a coordinator fee); the inputs come from at least k distinct addresses
    and number at most `max_inputs_per_equal_output` per equal output; of the other outputs
    (change, a coordinator fee) at most one is round at `round_change_precision` sat (0
    disables); the equal outputs pay
    distinct addresses, none an input's and (with `require_fresh_outputs`) none reused.

    Known false positives: a payout of five or more equal amounts making up half the outputs,
    funded from as many addresses of one wallet into fresh addresses (airdrops, equal
    payroll from a consolidating wallet). Known misses: mixes with several denominations (use
    the Wasabi detectors) and mixes smaller than `min_equal_outputs`.
    """

    name: ClassVar[str] = "equal_output"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.EQUAL_OUTPUT

    min_equal_outputs: int = 5
    min_value: int = 10_000
    min_equal_share: float = 0.5
    max_inputs_per_equal_output: int = 10
    round_change_precision: int = 100_000
    require_fresh_outputs: bool = True

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx):
            return None
        outputs = _spendable(tx)
        counts = Counter(o.value for o in outputs if o.value >= self.min_value)
        if not counts:
            return None
        value, k = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if k < self.min_equal_outputs or k < self.min_equal_share * (len(outputs) - 1):
            return None
        if len(tx.input_addr_ids) < k or len(tx.inputs) > self.max_inputs_per_equal_output * k:
            return None
        equal = [o for o in outputs if o.value == value]
        if not _distinct_addresses(equal) or _pays_input_address(tx, equal):
            return None
        others = [o for o in outputs if o.value != value]
        if _count_round(others, self.round_change_precision) > 1:  # one may be a coordinator fee
            return None
        if self.require_fresh_outputs and _any_reused(tx, equal):
            return None
        return self._match(
            {
                "denomination": value,
                "equal_outputs": k,
                "inputs": len(tx.inputs),
                "outputs": len(outputs),
            }
        )


# --- Stonewall --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stonewall(CoinJoinPattern):
    """Samourai's Stonewall and Stonewall X2: a payment dressed as a two-party CoinJoin.

    Shape (Samourai Wallet's documentation, "Spend tools": STONEWALL and STONEWALLx2; the
    transaction type OXT and KYCP.org name "Stonewall"): two sets of inputs each pay one of two
    equal outputs, the payment and a decoy, and take back their own change; all coins of one
    address stay in one set, and Samourai's wallet makes the fee even and takes exactly half of
    it from each change (the match's ``fee_halves`` evidence says whether a split does so). In a
    Stonewall X2 a collaborator funds the second set and takes the decoy and its change: two
    owners. A solo Stonewall is one wallet splitting its own coins the same way: one owner. The
    two cannot be told apart on chain — that is the point of Stonewall — so a match is
    multi-party: common-input ownership is not applied (`MultiInput.stonewall_one_owner` reads
    every match as a solo Stonewall).

    Pattern: not a coinbase; at least two and at most `max_inputs` inputs; no OP_RETURN; three
    or four outputs paying distinct addresses, none an input's; two outputs of one value (at
    least `min_value` sat) and the others (the changes) of other values, distinct, or with four
    outputs equal to each other (two sets of equal size give equal changes: either pair may then
    be the payment, and each is tried); and the inputs split into two sets each covering the
    equal amount and one change (or, with three outputs, nothing: its change was dust), each
    within the transaction's fee, with every input address on one side (an address has one
    owner; inputs without an address stand alone) — a subset sum over the addresses' totals,
    found exactly over at most `max_subset_sums` partial sums. So inputs from one address never
    match.

    Known false positives: a payment of two equal amounts with one or two other outputs whose
    inputs happen to split exactly so (an exchange batch of two equal withdrawals and change
    from two coins of the right sizes) — none among the economy's 296 batches
    (docs/accuracy.md). Known misses: Stonewalls with more inputs than `max_inputs` or whose
    partial sums exceed `max_subset_sums`, Stonewalls whose change equals the amount, and
    Stonewalls whose changes were both dust (two outputs).
    """

    name: ClassVar[str] = "stonewall"
    version: ClassVar[str] = "1"
    kind: ClassVar[CoinJoinKind] = CoinJoinKind.STONEWALL

    min_value: int = 10_000
    max_inputs: int = 50
    max_subset_sums: int = 100_000

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        if not _shape_ok(tx) or not 2 <= len(tx.inputs) <= self.max_inputs:
            return None
        outputs = _spendable(tx)
        if len(outputs) != len(tx.outputs) or len(outputs) not in (3, 4):
            return None
        counts = Counter(o.value for o in outputs)
        pairs = [v for v, k in counts.items() if k == 2]
        amounts = sorted((v for v in pairs if v >= self.min_value), reverse=True)
        if max(counts.values()) != 2 or len(pairs) > len(outputs) - 2 or not amounts:
            return None
        if not _distinct_addresses(outputs) or _pays_input_address(tx, outputs):
            return None
        fee = sum(i.value for i in tx.inputs) - sum(o.value for o in outputs)
        groups: Counter[object] = Counter()
        for k, i in enumerate(tx.inputs):
            groups[i.addr_id if i.addr_id is not None else ("input", k)] += i.value
        if fee < 0 or len(groups) < 2:
            return None
        limit = amounts[0] + max(o.value for o in outputs) + fee  # above every target
        sums = self._subset_sums(list(groups.values()), limit)
        if sums is None:
            return None
        for amount in amounts:  # two pairs: two sets of equal size, so equal changes too
            changes = [o.value for o in outputs if o.value != amount]
            targets = sorted({amount + c for c in changes}
                             | ({amount} if len(changes) == 1 else set()))
            halves = [t for t in targets if fee % 2 == 0 and t + fee // 2 in sums]
            split = next(iter(halves), None) or next(
                (t for t in targets if any(t <= s <= t + fee for s in sums)), None)
            if split is not None:
                return self._match({"amount": amount, "inputs": len(tx.inputs),
                                    "outputs": len(outputs), "first_set_covers": split,
                                    "fee_halves": bool(halves)})
        return None

    def _subset_sums(self, values: Sequence[int], limit: int) -> set[int] | None:
        """Every sum of a non-empty subset of `values` up to `limit`; None past
        `max_subset_sums` partial sums."""
        sums: set[int] = set()
        for v in values:
            sums |= {s + v for s in sums if s + v <= limit}
            if v <= limit:
                sums.add(v)
            if len(sums) > self.max_subset_sums:
                return None
        return sums


# --- the composite ----------------------------------------------------------------------------


def default_patterns() -> tuple[CoinJoinPattern, ...]:
    """Every detector with default parameters, the specific ones before the generic one."""
    return (Whirlpool(), Wasabi2(), Wasabi1(), JoinMarket(), EqualOutputMix(), WhirlpoolTx0(),
            Stonewall())


@dataclass(frozen=True, slots=True)
class CoinJoinDetector:
    """Runs an enabled set of detectors; the first match (in `detectors` order) is the verdict.

    The default set is every detector here with default parameters; build another set with
    `CoinJoinDetector.enabled(...)` or by passing detectors with other parameters.
    """

    name: ClassVar[str] = "coinjoin"
    version: ClassVar[str] = "2"  # 2: with the Stonewall detector

    detectors: tuple[CoinJoinPattern, ...] = field(default_factory=default_patterns)

    @classmethod
    def enabled(cls, *kinds: CoinJoinKind) -> CoinJoinDetector:
        """The default detectors of the given kinds only."""
        wanted = set(kinds)
        return cls(tuple(d for d in default_patterns() if d.kind in wanted))

    def detect(self, tx: TxView) -> CoinJoinMatch | None:
        """The first detector's match, or None."""
        if not _shape_ok(tx):
            return None
        for detector in self.detectors:
            match = detector.detect(tx)
            if match is not None:
                return match
        return None

    def detect_all(self, tx: TxView) -> list[CoinJoinMatch]:
        """Every enabled detector's match (to compare detectors or explain a verdict)."""
        if not _shape_ok(tx):
            return []
        return [m for d in self.detectors if (m := d.detect(tx)) is not None]

    def params(self) -> dict[str, object]:
        return component_params(self)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "params": self.params()}


__all__ = [
    "WHIRLPOOL_POOLS",
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
    "component_params",
    "default_patterns",
    "wabisabi_denominations",
]
