"""Clustering heuristics: which addresses a transaction shows to belong to one owner.

Each heuristic turns one `TxView` into `ClusterLink`s (address pairs) for the union-find; a run
records every heuristic's `name`, `version` and `params()`. Two kinds:

- `MultiInput`, common-input ownership: every input of a transaction has one owner — except in
  a CoinJoin, so it takes the CoinJoin verdict through `TxContext`.
- `ChangeLinker`, which links the change output's address to the inputs' owner when the enabled
  change heuristics (`SelfChange`, `AddressTypeMatch`, `OneTimeChange`, `RoundPaymentAmount`,
  `OptimalChange`, `WalletFingerprint`) agree under a `ChangePolicy`. Change heuristics are the
  usual cause of superclusters (BlockSci #167, #220), so the linker is conservative by default:
  only transactions with two outputs, never a coinbase or a CoinJoin, never a change address
  already paid before unless the inputs spend from it.

Invariant: heuristics are pure functions of the view and the context; a link always joins two
different addresses of the same transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from cointrail.analysis.patterns.coinjoin import (
    CoinJoinDetector,
    CoinJoinKind,
    CoinJoinMatch,
    component_params,
)
from cointrail.analysis.txview import Freshness, TxStyle, TxView
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError


@dataclass(frozen=True, slots=True)
class ClusterLink:
    """Evidence that addresses `a` and `b` have one owner, from transaction `tx_id`."""

    a: int
    b: int
    tx_id: int
    heuristic: str


@dataclass(frozen=True, slots=True)
class TxContext:
    """What a heuristic knows about a transaction besides its view: the CoinJoin verdict, and
    whether the run's configuration declares it multi-owner (an analyst's knowledge: a PayJoin,
    a missed CoinJoin). No heuristic reads a multi-owner transaction as one owner's."""

    coinjoin: CoinJoinMatch | None = None
    multi_owner: bool = False

    @classmethod
    def of(cls, tx: TxView, detector: CoinJoinDetector | None,
           multi_owner: bool = False) -> TxContext:
        """The context of `tx`, with `detector`'s verdict (no detector: no CoinJoin known)."""
        return cls(detector.detect(tx) if detector is not None else None, multi_owner)

    @property
    def multi_party(self) -> bool:
        """True when the inputs have several owners: declared so, or a multi-party CoinJoin."""
        return self.multi_owner or (self.coinjoin is not None and self.coinjoin.multi_party)


class _Component(ABC):
    """Name, version and parameters (the dataclass fields), as a run records them."""

    __slots__ = ()
    name: ClassVar[str]
    version: ClassVar[str]

    def params(self) -> dict[str, object]:
        return component_params(self)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version, "params": self.params()}


class Heuristic(_Component):
    """A clustering heuristic: the links one transaction gives."""

    __slots__ = ()

    @abstractmethod
    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        """The links `tx` gives, given what `ctx` says about it."""


# --- common-input ownership -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultiInput(Heuristic):
    """Common-input ownership: all inputs of a transaction have one owner.

    Nakamoto 2008 (§10) and Meiklejohn et al. 2013 ("A Fistful of Bitcoins"); the basis of every
    clustering since (Möser & Narayanan 2022; Kappos et al. 2022). Links every other input
    address to the first input address that has one (a star); a coinbase gives nothing, nor a
    transaction declared multi-owner, nor, with `skip_coinjoin`, a transaction `ctx` marks as a
    multi-party CoinJoin. A Stonewall-shaped transaction (`Stonewall`) counts as one unless
    `stonewall_one_owner` reads it as a solo Stonewall: Stonewall and Stonewall X2 look alike,
    and the first has one owner, the second two.

    Known false positives: CoinJoins the detector misses (BlockSci #366, #174), PayJoin / P2EP
    (two owners by design, indistinguishable from one), Stonewall X2s with
    `stonewall_one_owner`, custodial services spending several customers' coins, and
    shared-key or multisig services.
    """

    name: ClassVar[str] = "multi_input"
    version: ClassVar[str] = "1"

    skip_coinjoin: bool = True
    stonewall_one_owner: bool = False

    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        if tx.is_coinbase:
            return []
        match = ctx.coinjoin
        if ctx.multi_owner or (
                self.skip_coinjoin and match is not None and match.multi_party
                and not (self.stonewall_one_owner and match.kind is CoinJoinKind.STONEWALL)):
            return []
        anchor = tx.first_input_addr_id
        if anchor is None:
            return []
        seen = {anchor}
        out: list[ClusterLink] = []
        for i in tx.inputs:
            if i.addr_id is not None and i.addr_id not in seen:
                seen.add(i.addr_id)
                out.append(ClusterLink(anchor, i.addr_id, tx.tx_id, self.name))
        return out


# --- change heuristics ------------------------------------------------------------------------


def _candidates(tx: TxView) -> list[int]:
    """Positions of the outputs that could be change (OP_RETURN outputs left out)."""
    return [k for k, o in enumerate(tx.outputs) if o.script_type is not ScriptType.NULLDATA]


class ChangeHeuristic(_Component):
    """Names the change output of a transaction, or abstains.

    `change_index` returns a position in `tx.outputs` or None. It looks at the shape only;
    which transactions it may be applied to is `ChangeLinker`'s decision.
    """

    __slots__ = ()

    @abstractmethod
    def change_index(self, tx: TxView) -> int | None:
        """The position of the change output in `tx.outputs`, or None to abstain."""


@dataclass(frozen=True, slots=True)
class SelfChange(ChangeHeuristic):
    """The one output paying an address the inputs spend from is the change ("self-change").

    Meiklejohn et al. 2013 (self-change addresses: 23% of transactions in early 2013);
    GraphSense's ``direct_change`` (assigned confidence 100). Abstains when several outputs pay
    input addresses or when the transaction has one output.

    Known false positives: none for ownership in single-owner transactions — paying oneself is
    still one owner; in a multi-owner transaction (a missed CoinJoin, PayJoin) the output may
    belong to the co-spender who owns that input address.
    """

    name: ClassVar[str] = "self_change"
    version: ClassVar[str] = "1"

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        if len(candidates) < 2:
            return None
        inputs = tx.input_addr_ids
        hits = [k for k in candidates if tx.outputs[k].addr_id in inputs]
        return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True, slots=True)
class AddressTypeMatch(ChangeHeuristic):
    """The only output whose script type is the one all inputs spend is the change.

    Möser & Narayanan 2022 ("address type" feature); BlockSci's
    ``address_type`` change heuristic; validated on ground truth by Kappos et al. 2022.
    Abstains when the inputs spend several script types or when not exactly one output matches.

    Known false positives: the payee uses the payer's script type while the wallet sends change
    to another type — e.g. Bitcoin Core with legacy inputs paying a legacy address while its
    change type is segwit; more payees share the dominant type (P2WPKH, later P2TR), so a match
    says less every year; wallets that copy the payment's type for change defeat it on purpose.
    """

    name: ClassVar[str] = "address_type"
    version: ClassVar[str] = "1"

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        types = {i.script_type for i in tx.inputs}
        if len(candidates) < 2 or len(types) != 1:
            return None
        (input_type,) = types
        hits = [k for k in candidates if tx.outputs[k].script_type is input_type]
        return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True, slots=True)
class OneTimeChange(ChangeHeuristic):
    """The only output to a never-before-seen address, when every other output's address was
    paid before, is the change (fresh / one-time change).

    Meiklejohn et al. 2013 ("A Fistful of Bitcoins"; Androulaki et al. 2013's "shadow
    addresses"); GraphSense's ``one_time_change`` (assigned confidence 50). Abstains when an
    output pays an input address (that is `SelfChange`'s case, and there the fresh output is the
    payment), when any output's freshness is unknown, and when the fresh address occurs twice.
    A reused address is never called change by this heuristic.

    Known false positives: wallets that send change to an old address (some early web wallets,
    exchanges' hot wallets) paying a payee's fresh address — the payment is then called change;
    Meiklejohn et al. also waited to see whether the address is reused later, which a view of
    one transaction cannot.
    """

    name: ClassVar[str] = "one_time_change"
    version: ClassVar[str] = "1"

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        if len(candidates) < 2:
            return None
        inputs = tx.input_addr_ids
        if any(tx.outputs[k].addr_id in inputs for k in candidates):
            return None
        fresh = [k for k in candidates if tx.freshness(tx.outputs[k]) is Freshness.FRESH]
        if len(fresh) != 1:
            return None
        others = (tx.outputs[k] for k in candidates if k != fresh[0])
        if any(tx.freshness(o) is not Freshness.REUSED for o in others):
            return None
        return fresh[0]


@dataclass(frozen=True, slots=True)
class RoundPaymentAmount(ChangeHeuristic):
    """When every output but one is a round amount, the one non-round output is the change.

    Round at `precision_sats`: a multiple of it (default 100,000 sat = 0.001 BTC). Möser &
    Narayanan 2022 (round-value features), BlockSci's ``power_of_ten_value``, GraphSense's
    "not nicely divisible". For two outputs: exactly one is round.

    Known false positives: change that is round by chance (about one in `precision_sats`),
    payments of a round amount *including* the fee ("send max minus a round sum"), and
    exchanges that round the change; amounts priced in fiat are rarely round in BTC, so the
    heuristic abstains more often over time rather than erring.
    """

    name: ClassVar[str] = "round_amount"
    version: ClassVar[str] = "1"

    precision_sats: int = 100_000

    def __post_init__(self) -> None:
        if self.precision_sats < 1:
            raise InputError(f"precision_sats must be at least 1, not {self.precision_sats}")

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        if len(candidates) < 2:
            return None
        odd = [k for k in candidates if tx.outputs[k].value % self.precision_sats != 0]
        return odd[0] if len(odd) == 1 else None


@dataclass(frozen=True, slots=True)
class OptimalChange(ChangeHeuristic):
    """Unnecessary-input heuristic: the change is the only output smaller than every input.

    Nick 2015 ("Data-Driven De-Anonymization in Bitcoin", ETH Zürich, "optimal change");
    BlockSci's ``optimal_change``; Möser & Narayanan 2022. Precisely: an output o can be change
    only if o.value < min(input values) — were the change at least as large as some input, that
    input was unnecessary, since dropping it and shrinking the change still pays the payment.
    Votes when exactly one output is below the smallest input (so never with one input, where
    every output is).

    Known false positives: wallets that spend more inputs than needed — Bitcoin Core's
    ``avoid_partial_spends`` (all coins of an address together), consolidation at low fee rates
    (waste-metric coin selection), manual coin control, fee bumps that add an input — can leave
    the payment below every input.
    """

    name: ClassVar[str] = "optimal_change"
    version: ClassVar[str] = "1"

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        if len(candidates) < 2 or not tx.inputs:
            return None
        smallest = min(i.value for i in tx.inputs)
        hits = [k for k in candidates if tx.outputs[k].value < smallest]
        return hits[0] if len(hits) == 1 else None


@dataclass(frozen=True, slots=True)
class WalletFingerprint(ChangeHeuristic):
    """The change is the only output later spent by a transaction with this one's fingerprint.

    The fingerprint (`TxView.style`) compared is the version, nLockTime style (zero,
    anti-fee-sniping tip height, other height, time), nSequence style (final 0xffffffff,
    0xfffffffe, RBF 0xfffffffd, other, mixed) and signature style: the settings and the signer
    of the wallet that signs. Möser & Narayanan 2022 (fingerprint features of the spending
    transaction); Kappos et al. 2022. Needs views built with spenders (`iter_tx_views(...,
    with_spenders=True)`, `tx_views_spent_until`) and abstains without them; with
    `require_all_spent` every candidate must be spent, otherwise unspent ones are ignored. A
    clustering run gives it a vote only in `ChangeLinker`'s second look (see there).

    Version 2 no longer compares the script type the spender's inputs spend (version 1 did,
    with `script_type=True`). A spender necessarily spends the script type of the output it
    spends, so that part of the comparison restates the outputs' own types, which is
    `AddressTypeMatch`'s evidence, with its false positive: a Bitcoin / Litecoin Core wallet
    with P2SH-P2WPKH coins pays a P2SH payee and gets bech32 change; the payee's spender then
    "matches" the payer's P2SH inputs and the change's spender does not. The same comparison
    also called a change spent together with coins of another type (a mixed-type spender) a
    mismatch. Measured against wallet ground truth (docs/accuracy.md), every wrong vote of
    version 1 was one of these two cases.

    Version 3 can compare the signature style too (`signatures`, off by default): whether the
    wallet grinds its ECDSA nonces for a low R (Bitcoin Core and Litecoin Core since 0.17 do;
    many hardware signers and older wallets do not, and then every other signature has a high
    R). A transaction with a high-R signature and one whose inputs carry at least `min_low_r`
    signatures, every one low-R, are then taken for two different signers. Only a conflict
    counts: no signature data (rows ingested before schema 3) or too few low-R inputs say
    nothing. Its known false positive: a non-grinding wallet whose `min_low_r` or more inputs
    all came out low-R by chance (probability 2^-n for n signatures) looks like a grinder, so
    its own change's spender "does not match". Measured against wallet ground truth with a
    quarter of the users on a light wallet and 15 % on hardware signers behind Core's settings
    (docs/accuracy.md), it made the change linker worse at `min_low_r` 2 (wrong links 2
    instead of 1 over three seeds, recall 0.227 instead of 0.236) and no better at 3 or 4 (the
    same precision, recall within 0.001): one transaction's signatures are too little evidence
    of a signer. Hence off by default; `--param change.wallet_fingerprint.signatures=true`
    turns it on. With `ties_only` the signature style only decides between spenders that all
    have the transaction's settings, and never takes away a lone match.

    Known false positives: the payee spends with the same wallet software and settings (likeliest
    for the dominant wallets, e.g. Bitcoin Core's v2 / tip height / RBF) while the change is
    spent after a settings change (RBF switched) or software upgrade, or in a CoinJoin (whose
    fingerprint is the coordinator's).
    """

    name: ClassVar[str] = "wallet_fingerprint"
    version: ClassVar[str] = "3"

    require_all_spent: bool = True
    script_type: bool = False
    signatures: bool = False
    min_low_r: int = 4
    ties_only: bool = False

    def __post_init__(self) -> None:
        if self.min_low_r < 1:
            raise InputError(f"wallet_fingerprint.min_low_r must be at least 1, "
                             f"not {self.min_low_r}")

    def change_index(self, tx: TxView) -> int | None:
        candidates = _candidates(tx)
        if len(candidates) < 2 or not tx.inputs:
            return None
        spenders = [(k, tx.outputs[k].spent_by) for k in candidates]
        if self.require_all_spent and any(s is None for _, s in spenders):
            return None
        style = tx.style
        hits = [(k, s) for k, s in spenders if s is not None and self.same_settings(s, style)]
        if self.signatures and (len(hits) > 1 or not self.ties_only):
            hits = [(k, s) for k, s in hits if not self.different_signers(s, style)]
        return hits[0][0] if len(hits) == 1 else None

    def same_settings(self, spender: TxStyle, style: TxStyle) -> bool:
        """Whether a spender has the transaction's settings (its script type compared only
        with `script_type`)."""
        fields = (spender.version, spender.lock_time, spender.sequence) == (
            style.version, style.lock_time, style.sequence)
        if self.script_type:
            fields = fields and spender.input_script_type == style.input_script_type
        return fields

    def different_signers(self, a: TxStyle, b: TxStyle) -> bool:
        """One has a high-R signature, the other `min_low_r` or more low-R inputs and none."""
        return ((a.high_r and not b.high_r and b.low_r >= self.min_low_r)
                or (b.high_r and not a.high_r and a.low_r >= self.min_low_r))


# --- combining change heuristics --------------------------------------------------------------


class ChangePolicy(StrEnum):
    """How `ChangeLinker` turns the change heuristics' votes into one verdict."""

    UNCONTESTED = "uncontested"  # at least min_votes votes, all for the same output
    UNANIMOUS = "unanimous"  # every enabled heuristic votes, all for the same output
    MAJORITY = "majority"  # at least min_votes, and more than half of the votes cast, for it


@dataclass(frozen=True, slots=True)
class ChangeDecision:
    """The linker's verdict on one transaction, with each heuristic's vote for explanations.

    `index` is the change's position in `tx.outputs`, set only when its address may be linked;
    `reason` says why not otherwise.
    """

    index: int | None
    votes: Mapping[str, int | None] = field(default_factory=dict, hash=False)
    reason: str = "linked"


#: the change heuristics, in the order they vote
CHANGE_HEURISTICS: tuple[type[ChangeHeuristic], ...] = (
    SelfChange, AddressTypeMatch, OneTimeChange, RoundPaymentAmount, OptimalChange,
    WalletFingerprint,
)


def default_change_heuristics() -> tuple[ChangeHeuristic, ...]:
    return tuple(kind() for kind in CHANGE_HEURISTICS)


@dataclass(frozen=True, slots=True)
class ChangeLinker(Heuristic):
    """Links the change address to the first input address when the change heuristics agree.

    Kappos et al. 2022 ("How to Peel a Million") and Möser & Narayanan 2022 show that change
    heuristics, combined and restricted, expand clusters usefully; Meiklejohn et al. 2013 and
    the supercluster reports (BlockSci #167, #220, #360) show what happens otherwise. Applies
    only to non-coinbase transactions that `ctx` does not mark as CoinJoin (any kind, Tx0
    included) with between two and `max_outputs` non-OP_RETURN outputs (two by default, as in
    the literature). The votes of `heuristics` are combined by `policy` (`min_votes` votes at
    least, two by default); a vote of a `decisive` heuristic that no other vote contradicts
    suffices alone. With `require_fresh_change`
    the change's address must be fresh or one the inputs spend from — a reused address is never
    linked as change.

    Version 2 raised the default `min_votes` from 1 to 2: measured against wallet ground truth
    (docs/accuracy.md) a lone `address_type` or `round_amount` vote caused nearly every wrong
    change link (users paying addresses of their own script type; payments with the fee
    subtracted from the amount).

    Version 3 adds the second look: in a clustering run a transaction the linker did not link
    at its own height, when its heuristics include `WalletFingerprint`, is decided again at the
    height of the last spend of its candidate outputs, with the spenders' fingerprints up to
    that spend, and a link made then is dated at that height (`engine.Clusterer`). The rules
    of `decide` are unchanged; only when, and with which view, the engine asks again. The
    second look is given only when that last spend comes at most `second_look_blocks` after
    the transaction (default 1,008, a week of Bitcoin blocks; on the regtest economy the
    longest wait was 48 blocks): it keeps the engine's look-back per block range bounded, so a
    run stays linear in the chain's length.

    Version 4 makes a lone vote of `OneTimeChange`, `OptimalChange` or `WalletFingerprint`
    (version 2) decisive, as `SelfChange`'s always was: when no other heuristic names another
    output, it links. `AddressTypeMatch` and `RoundPaymentAmount` still need a second vote: on
    one seed of the ground-truth economy their lone votes named the payment 31 times in 129
    and once in 103, while links on a lone vote of the other three were right every time
    (1,754 over three seeds, 1,033 over two held-out seeds; docs/accuracy.md). `decisive`
    restores version 3 when set to ``("self_change",)``.

    Known false positives: those of each enabled heuristic that no other heuristic contradicts;
    a wrong link merges the payer with a payee, and errors compound into superclusters, so keep
    `max_outputs` small; where the economy is unlike the measured one, `decisive` of
    self-change alone with `min_votes` 2 or more is the cautious setting.
    """

    name: ClassVar[str] = "change"
    version: ClassVar[str] = "4"

    heuristics: tuple[ChangeHeuristic, ...] = field(default_factory=default_change_heuristics)
    policy: ChangePolicy = ChangePolicy.UNCONTESTED
    min_votes: int = 2
    decisive: tuple[str, ...] = (SelfChange.name, OneTimeChange.name, OptimalChange.name,
                                 WalletFingerprint.name)
    max_outputs: int = 2
    require_fresh_change: bool = True
    second_look_blocks: int = 1008

    def __post_init__(self) -> None:
        if not self.heuristics:
            raise InputError("ChangeLinker needs at least one change heuristic")
        if self.second_look_blocks < 0:
            raise InputError(f"ChangeLinker needs second_look_blocks >= 0, not "
                             f"{self.second_look_blocks}")
        names = list(dict.fromkeys(
            [k.name for k in CHANGE_HEURISTICS] + [h.name for h in self.heuristics]))
        unknown = [d for d in self.decisive if d not in names]
        if unknown:
            raise InputError(f"no change heuristic {', '.join(map(repr, unknown))} to make "
                             f"decisive; choose from {', '.join(names)}")
        if self.min_votes < 1 or self.max_outputs < 2:
            raise InputError(
                f"ChangeLinker needs min_votes >= 1 and max_outputs >= 2, not "
                f"{self.min_votes} and {self.max_outputs}"
            )

    @property
    def second_look(self) -> bool:
        """Whether a run looks again at a transaction it did not link once its candidate
        outputs are all spent: only when a heuristic reads the spenders (`WalletFingerprint`).
        """
        return any(isinstance(h, WalletFingerprint) for h in self.heuristics)

    def decide(self, tx: TxView, ctx: TxContext) -> ChangeDecision:
        """Which output is change and whether its address may be linked, with the votes."""
        if tx.is_coinbase:
            return ChangeDecision(None, reason="coinbase")
        if ctx.coinjoin is not None:
            return ChangeDecision(None, reason=f"coinjoin ({ctx.coinjoin.kind})")
        if ctx.multi_owner:
            return ChangeDecision(None, reason="declared multi-owner")
        n = len(_candidates(tx))
        if not 2 <= n <= self.max_outputs:
            return ChangeDecision(None, reason=f"{n} outputs, outside 2..{self.max_outputs}")
        if tx.first_input_addr_id is None:
            return ChangeDecision(None, reason="no input address")
        votes = {h.name: h.change_index(tx) for h in self.heuristics}
        cast = [v for v in votes.values() if v is not None]
        sure = {votes[name] for name in self.decisive if votes.get(name) is not None}
        if len(sure) == 1 and set(cast) == sure:  # a decisive vote nobody contradicts
            index, reason = next(iter(sure)), "linked"
        else:
            index, reason = self._combine(cast)
        if index is None:
            return ChangeDecision(None, votes, reason)
        change = tx.outputs[index]
        if change.addr_id is None:
            return ChangeDecision(None, votes, "change output has no address")
        if (
            self.require_fresh_change
            and change.addr_id not in tx.input_addr_ids
            and tx.freshness(change) is not Freshness.FRESH
        ):
            return ChangeDecision(None, votes, "change address is not fresh")
        return ChangeDecision(index, votes)

    def _combine(self, cast: Sequence[int]) -> tuple[int | None, str]:
        if len(cast) < self.min_votes:
            return None, f"{len(cast)} votes, fewer than {self.min_votes}"
        top, count = Counter(cast).most_common(1)[0]
        if self.policy is ChangePolicy.UNANIMOUS and len(cast) < len(self.heuristics):
            return None, "not every heuristic voted"
        if self.policy is ChangePolicy.MAJORITY:
            return (top, "linked") if count * 2 > len(cast) else (None, "no majority")
        return (top, "linked") if count == len(cast) else (None, "votes disagree")

    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        return self.links_of(tx, self.decide(tx, ctx))

    def links_of(self, tx: TxView, decision: ChangeDecision) -> list[ClusterLink]:
        """The link a decision on `tx` makes (none when it names no change)."""
        anchor = tx.first_input_addr_id
        if decision.index is None or anchor is None:
            return []
        change = tx.outputs[decision.index].addr_id
        if change is None or change == anchor:
            return []
        return [ClusterLink(anchor, change, tx.tx_id, self.name)]


# --- Whirlpool Tx0 outputs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tx0Outputs(Heuristic):
    """A Whirlpool Tx0's premix outputs and its change belong to the owner of its inputs.

    A Tx0 (Samourai's Whirlpool) is one wallet splitting its coins into premix outputs for a
    pool, paying the coordinator's fee and keeping the rest as change (the "doxxic change");
    the premix outputs go to the same wallet's premix account, to be mixed later. Stockinger
    et al. 2021 (arXiv:2109.10229, the Tx0 pattern); Samourai's Whirlpool documentation. The
    CoinJoin detector's `WhirlpoolTx0` match names the premix value and the coordinator's
    output; this heuristic links every output but that one and the OP_RETURN to the first
    input address. With `change` false only the premix outputs are linked. It needs CoinJoin
    detection (without it no Tx0 is known) and links nothing in any other transaction; the
    mixes that follow are CoinJoins, so a premix output's later history joins nothing.

    Known false positives: a Tx0 whose premix or change outputs pay someone else — no Whirlpool
    client builds one (cascading Tx0s pay the same wallet); a batch of payments the detector
    mistakes for a Tx0 (`WhirlpoolTx0`'s known false positives), whose payees would then be
    joined to the payer.
    """

    name: ClassVar[str] = "tx0_outputs"
    version: ClassVar[str] = "1"

    change: bool = True

    def links(self, tx: TxView, ctx: TxContext) -> list[ClusterLink]:
        match = ctx.coinjoin
        if match is None or match.kind is not CoinJoinKind.WHIRLPOOL_TX0:
            return []
        anchor = tx.first_input_addr_id
        premix = match.evidence.get("premix_value")
        coordinator = match.evidence.get("coordinator_output")
        if anchor is None or premix is None:
            return []
        found: list[ClusterLink] = []
        for o in tx.outputs:
            if (o.addr_id is None or o.addr_id == anchor or o.n == coordinator
                    or o.script_type is ScriptType.NULLDATA):
                continue
            if o.value == premix or self.change:
                found.append(ClusterLink(anchor, o.addr_id, tx.tx_id, self.name))
        return list({link.b: link for link in found}.values())


# --- running heuristics over transactions -----------------------------------------------------


def iter_links(
    txs: Iterable[TxView],
    heuristics: Sequence[Heuristic],
    detector: CoinJoinDetector | None = None,
) -> Iterator[ClusterLink]:
    """The links of every heuristic over `txs`, each transaction's CoinJoin verdict computed
    once (no detector: no transaction is treated as a CoinJoin)."""
    for tx in txs:
        ctx = TxContext.of(tx, detector)
        for heuristic in heuristics:
            yield from heuristic.links(tx, ctx)


def describe_run(
    heuristics: Sequence[Heuristic], detector: CoinJoinDetector | None
) -> dict[str, object]:
    """What a clustering run records: every heuristic's and the detector's name, version, params."""
    return {
        "heuristics": [h.describe() for h in heuristics],
        "coinjoin_detector": detector.describe() if detector is not None else None,
    }


__all__ = [
    "AddressTypeMatch",
    "ChangeDecision",
    "ChangeHeuristic",
    "ChangeLinker",
    "ChangePolicy",
    "ClusterLink",
    "Heuristic",
    "MultiInput",
    "OneTimeChange",
    "OptimalChange",
    "RoundPaymentAmount",
    "SelfChange",
    "Tx0Outputs",
    "TxContext",
    "WalletFingerprint",
    "default_change_heuristics",
    "describe_run",
    "iter_links",
]
