"""A synthetic economy acted out on a real ``litecoind -regtest`` node, with its ground truth.

Every actor is a wallet of the node (``createwallet``), so ownership is the node's own answer
(``getaddressinfo`` → ``ismine``), never a guess. The actors:

* ``miner`` mines every block to one address and sells coins at the exchange;
* ``exchange`` gives each customer one deposit address (reused for every deposit), sweeps
  confirmed deposits to its hot address (coin control, one output), and pays the step's
  withdrawals in one ``sendmany`` batch;
* ``user-NN``: ordinary users with a profile drawn from the seed — receive address type
  (legacy, p2sh-segwit, bech32), one reused receive address or a fresh one per payment, opt-in
  RBF or not, fee rate, and whether they tick "subtract fee from amount". They buy at the
  exchange, pay each other and merchants, sell, and some pay a ransom. Most run Litecoin Core
  and pay with ``sendtoaddress``; a quarter of them (`LIGHT_SHARE`, a fixed sample drawn with a
  random stream of its own, so the plan's actions do not depend on it) run a *light wallet*
  (``software == "light"``, think of an older Electrum or a mobile wallet): the scenario builds
  their payments itself — version 1, nLockTime 0, every nSequence final (no RBF signal whatever
  the profile says), oldest coins first, change (none below 10,000 litoshi) to an address of
  the user's own receive type, inputs and outputs in BIP 69 order, and signatures made with
  embit without low-R grinding (about half have a 33-byte DER r) — where Core's payments are
  version 2 with anti-fee-sniping nLockTime, random change position, bech32 change and
  low-R-ground signatures. Another 15 % (`HARDWARE_SHARE`, drawn from the same stream after
  the light users) sign with a *hardware signer* behind Core-like settings (``software ==
  "hardware"``, think of a desktop wallet with a hardware device): the same transactions as
  the light wallet's but with Core's version 2, anti-fee-sniping nLockTime, Core's nSequence
  for the profile's RBF choice and outputs in random order, so only the signatures (no low-R
  grinding) and the change type tell them from Core;
* ``merchant-NN`` take every payment on a fresh invoice address and now and then cash everything
  out to their deposit address; ``employer-NN`` buy coins and pay monthly salaries (fixed fiat
  amounts at the month's price) with ``sendmany``;
* ``whirlpool-NN`` make Tx0s (``walletcreatefundedpsbt``: premix outputs of pool denomination
  plus the mix's mining fee, the pool fee to ``whirlpool-coordinator``, an OP_RETURN, change) and
  mix: 5 inputs from 5 wallets (new entrants' premix coins and remixers' postmix coins), 5 equal
  outputs to fresh P2WPKH addresses, no change;
* ``wasabi-NN`` register 1–4 coins each in WabiSabi-like rounds of at least 50 inputs: each
  participant's coins, less its mining fee and the 0.3 % coordination fee on coins above
  0.01 LTC, are decomposed into the round's frequent standard denominations (at most 8 outputs),
  the rest is change when it is worth an output; the fee goes to ``wasabi-coordinator``'s
  reused address; mixed coins are remixed in later rounds;
* ``ransomware``: victims pay fresh operator addresses; the operator consolidates every ransom
  into one address, then peels it hop by hop to deposit addresses at the exchange.

With ``payjoin_share`` (none by default) that share of the payments Litecoin Core wallets make
to merchants are BIP 78 PayJoins (`PayJoin`, `_Actor.payjoin`): the merchant adds one of its
coins to the payment and takes it back in the invoice output, so the transaction has two
owners' inputs; `ScenarioFacts.payjoins` lists them. With ``stonewall_share`` (none by
default) that share of the payments and deposits of the Whirlpool users (Samourai wallets) are
Stonewalls (`Stonewall`, `_Actor.stonewall`): two equal outputs, the payment and a decoy, and
two changes, from two sets of inputs. Half of those drawn are Stonewall X2s, where a second
Whirlpool user funds the other set and takes the decoy and its change, so the transaction has two
owners' inputs; a solo Stonewall has one. `ScenarioFacts.stonewalls` lists them.

A CoinJoin is built the way a coordinator builds it: ``createpsbt`` with every participant's
inputs and outputs, ``walletprocesspsbt`` in each participant's wallet (each signs only its own
inputs), ``combinepsbt``, ``finalizepsbt``, ``sendrawtransaction``.

Determinism: `plan_scenario(seed, scale)` is a pure function — the same seed and scale give the
same actions, amounts, schedule and wallet software (`Plan.digest`); the software is drawn apart
from everything else, so ``plan_scenario(seed, scale, light_share=0, hardware_share=0)`` differs
from the default plan only in the profiles' `software`. `build_scenario` then acts the plan out;
the node adds its own randomness (keys, change positions, coin selection), so txids differ
between runs while the actions do not. The planner keeps a conservative ledger (confirmed funds
only, a generous fee allowance per transaction) so every action is affordable.

The node should run with a small key pool (``-keypool=16``, `NODE_ARGS`): a legacy wallet with
the default pool of 1000 keys takes over a second to create. Chains stay far below height 431
at small scales; should a scenario reach it, a peg-in is made first so that block 432 (MWEB
activation on regtest) can be mined.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from embit.ec import PrivateKey  # type: ignore[import-untyped]
from embit.hashes import hash160  # type: ignore[import-untyped]
from embit.script import Script, Witness  # type: ignore[import-untyped]
from embit.transaction import (  # type: ignore[import-untyped]
    Transaction,
    TransactionInput,
    TransactionOutput,
)

from cointrail.chain.utxo.script import ScriptType
from tests.support.litecoind import LitecoindNode, RpcError, to_sat

COIN = 100_000_000
#: Arguments the node should run with (see the module docstring).
NODE_ARGS = ("-keypool=16",)
#: Whirlpool pools (denomination, pool fee) in litoshi: the numbers of Samourai's BTC pools
#: (0.001, 0.01, 0.05 and 0.5) taken as litoshi.
WHIRLPOOL_POOLS: tuple[tuple[int, int], ...] = (
    (100_000, 5_000),
    (1_000_000, 50_000),
    (5_000_000, 175_000),
    (50_000_000, 1_750_000),
)
WHIRLPOOL_SIZE = 5
#: vbytes a P2WPKH input / output adds to a transaction.
P2WPKH_INPUT_VB = 68
P2WPKH_OUTPUT_VB = 31
#: WabiSabi's smallest output, and the coordination fee (0.3 %) charged on coins above 0.01.
WABISABI_MIN_OUTPUT = 5_000
WABISABI_FEE_PER_MILLE = 3
WABISABI_FREE_BELOW = 1_000_000
WABISABI_MAX_OUTPUTS = 8
WABISABI_MIN_INPUTS = 50
#: Smallest coin a WabiSabi client registers (smaller ones cost more in fees than they add).
WABISABI_MIN_COIN = 50_000
#: Signed PSBT copies per ``combinepsbt`` call (the node refuses requests above 32 MiB).
COMBINE_CHUNK = 4
#: The planner's fee allowance per wallet-funded transaction (far above the real fee).
FEE_ALLOWANCE = 300_000
REGTEST_HALVING = 150  # Litecoin regtest halves the block subsidy every 150 blocks
UNPAID = 1 << 30  # the creation step of a coin whose withdrawal is still queued
MWEB_HEIGHT = 432  # regtest activates MWEB here; the block needs a peg-in in the mempool
ADDRESS_TYPES = ("legacy", "p2sh-segwit", "bech32")
#: Litecoin Core's wallet refuses fee rates below -mintxfee (10 sat/vB by default).
FEE_RATES = (10, 11, 12, 15, 20, 25, 40)
ROUND_AMOUNTS = tuple(COIN * c // 100 for c in (
    1, 2, 5, 10, 20, 25, 50, 75, 100, 150, 200, 250, 300, 500, 1000))
#: Wallet software (`Profile.software`): Litecoin Core, a light wallet, or a hardware signer
#: behind Core-like settings; the scenario builds and signs the last two's transactions itself
#: (see the module docstring).
SOFTWARE = ("core", "light", "hardware")
#: The share of ordinary users (Role.USER) who run the light wallet (`plan_scenario`).
LIGHT_SHARE = 0.25
#: The share of ordinary users who sign with a hardware signer (`plan_scenario`).
HARDWARE_SHARE = 0.15
SEQUENCE_LOCKTIME = 0xFFFFFFFE  # final for replacement, lets nLockTime count
SEQUENCE_RBF = 0xFFFFFFFD
#: The share of the Stonewalls drawn (`plan_scenario`'s ``stonewall_share``) that are Stonewall
#: X2s, funded by the payer and a second Whirlpool user together.
STONEWALL_X2_SHARE = 0.5
#: A Stonewall makes no change output below this (litoshi); the rest goes to the fee.
STONEWALL_DUST = 2_000
#: A light wallet makes no change output below this (litoshi); the rest goes to the fee.
LIGHT_MIN_CHANGE = 10_000
SEQUENCE_FINAL = 0xFFFFFFFF
SIGHASH_ALL = 1


def standard_denominations(minimum: int = WABISABI_MIN_OUTPUT, maximum: int = 1_000 * COIN
                           ) -> tuple[int, ...]:
    """WabiSabi's standard amounts (WalletWasabi's DenominationBuilder), largest first: powers of
    2, powers of 3 and twice them, powers of 10 and twice and five times them."""
    values: set[int] = set()
    for base, multiples in ((2, (1,)), (3, (1, 2)), (10, (1, 2, 5))):
        power = 1
        while power <= maximum:
            values.update(m * power for m in multiples if minimum <= m * power <= maximum)
            power *= base
    return tuple(sorted(values, reverse=True))


def ltc(sat: int) -> str:
    """An RPC amount string for `sat` litoshi (exact)."""
    if sat < 0:
        raise ValueError(f"negative amount {sat}")
    return f"{sat // COIN}.{sat % COIN:08d}"


class Role(StrEnum):
    MINER = "miner"
    EXCHANGE = "exchange"
    USER = "user"
    MERCHANT = "merchant"
    EMPLOYER = "employer"
    RANSOMWARE = "ransomware"
    WHIRLPOOL_USER = "whirlpool_user"
    WHIRLPOOL_COORDINATOR = "whirlpool_coordinator"
    WASABI_USER = "wasabi_user"
    WASABI_COORDINATOR = "wasabi_coordinator"


@dataclass(frozen=True)
class Profile:
    """How one actor's wallet behaves."""

    wallet: str
    role: Role
    address_type: str = "bech32"  # receive addresses; a light wallet's change is of this type
    reuse: bool = False  # one receive address handed out again and again
    replaceable: bool = False  # opt-in RBF (nSequence 0xfffffffd); a light wallet never signals
    fee_rate: int = 10  # sat/vB
    subtract_fee: bool = False  # ticks "subtract fee from amount" on payments
    software: str = "core"  # "core" (change: the node's default type, bech32) or "light"


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pay:
    """``sendtoaddress`` from `payer`: to `payee`'s receive address (purpose "payment"), to the
    deposit address of `payer`'s account at the exchange ("deposit"), or to a fresh operator
    address ("ransom")."""

    payer: str
    payee: str
    amount: int
    purpose: str
    subtract_fee: bool = False


@dataclass(frozen=True)
class PayJoin:
    """A BIP 78 PayJoin: `payer` (a Litecoin Core wallet) pays `amount` to merchant `payee`'s
    invoice address, and the merchant adds one coin of its own to the payment as an input, paid
    back to it in the invoice output. Both sign; the transaction has two owners' inputs."""

    payer: str
    payee: str
    amount: int
    subtract_fee: bool = False


@dataclass(frozen=True)
class Stonewall:
    """A Samourai Stonewall from `payer` (a Whirlpool user): `amount` to `payee` (purpose as
    for `Pay`) and a decoy output of the same amount, each of two input sets paying one of them
    and getting its change. With a `collaborator` it is a Stonewall X2: the collaborator funds
    the second set and receives the decoy and that set's change."""

    payer: str
    payee: str
    amount: int
    purpose: str
    collaborator: str | None = None


@dataclass(frozen=True)
class Withdrawal:
    """One line of an exchange batch; `coin` names the output when the plan tracks it."""

    customer: str
    amount: int
    coin: str | None = None


@dataclass(frozen=True)
class WithdrawalBatch:
    items: tuple[Withdrawal, ...]


@dataclass(frozen=True)
class Payroll:
    employer: str
    items: tuple[tuple[str, int], ...]  # (employee, amount)


@dataclass(frozen=True)
class Sweep:
    """The exchange moves every confirmed deposit to its hot address (one output)."""


@dataclass(frozen=True)
class CashOut:
    """`wallet` sends everything confirmed to its deposit address (one output)."""

    wallet: str


@dataclass(frozen=True)
class Tx0:
    wallet: str
    denomination: int
    premix_value: int
    coins: tuple[str, ...]  # one per premix output
    pool_fee: int
    op_return: str  # hex


@dataclass(frozen=True)
class RoundInput:
    wallet: str
    coin: str
    value: int


@dataclass(frozen=True)
class RoundOutput:
    wallet: str
    value: int
    coin: str | None  # None: the coordinator's fee output (paid to its reused address)


@dataclass(frozen=True)
class CoinJoinRound:
    kind: str  # "whirlpool" or "wasabi_2" (cointrail's CoinJoinKind values)
    label: str
    inputs: tuple[RoundInput, ...]
    outputs: tuple[RoundOutput, ...]


@dataclass(frozen=True)
class Consolidate:
    """The operator spends every confirmed coin to one fresh address of its own."""

    wallet: str
    coin: str


@dataclass(frozen=True)
class Peel:
    """Spend `source` alone: `amount` to `account`'s deposit address, the rest back as change
    (`change`); the last hop (`amount` None) sends everything."""

    wallet: str
    source: str
    account: str
    amount: int | None
    change: str | None


@dataclass(frozen=True)
class Release:
    """Mixing is over: the mixers' tracked coins become ordinary funds (unlocked)."""


Action = (Pay | PayJoin | Stonewall | WithdrawalBatch | Payroll | Sweep | CashOut | Tx0
          | CoinJoinRound | Consolidate | Peel | Release)


@dataclass(frozen=True)
class Plan:
    seed: int
    scale: int
    initial_blocks: int
    profiles: tuple[Profile, ...]
    steps: tuple[tuple[Action, ...], ...]  # one block is mined after each step

    @property
    def digest(self) -> str:
        """A fingerprint of every action: equal plans have equal digests. A Litecoin Core
        wallet's profile is written as before profiles named their software, so a plan whose
        wallets all run Core keeps the digest it had then (the bundled demonstration chain's
        `plan_digest`)."""
        profiles = ", ".join(repr(p).removesuffix(", software='core')") + ")"
                             if p.software == "core" else repr(p) for p in self.profiles)
        text = (f"({self.seed!r}, {self.scale!r}, {self.initial_blocks!r}, ({profiles}), "
                f"{self.steps!r})")  # as repr() of that tuple wrote it
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def actions(self) -> int:
        return sum(len(s) for s in self.steps)


# -- planning ----------------------------------------------------------------------------------


@dataclass
class _Coin:
    wallet: str
    value: int
    created: int  # step
    kind: str
    spent: bool = False


class _Planner:
    def __init__(self, seed: int, scale: int, light_share: float = LIGHT_SHARE,
                 hardware_share: float = HARDWARE_SHARE, payjoin_share: float = 0.0,
                 stonewall_share: float = 0.0) -> None:
        if scale < 1:
            raise ValueError(f"scale must be at least 1, not {scale}")
        for name, share in (("light_share", light_share), ("hardware_share", hardware_share),
                            ("payjoin_share", payjoin_share),
                            ("stonewall_share", stonewall_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {share}")
        self.light_share, self.hardware_share = light_share, hardware_share
        self.payjoin_share = payjoin_share
        self.rng = random.Random(seed)
        # which merchant payments are PayJoins: a stream of its own, drawn for every payment a
        # Core wallet makes to a merchant, so the rest of the plan does not depend on the share
        # and a smaller share's PayJoins are among a larger share's
        self.payjoin_rng = random.Random(f"{seed}/payjoin")
        # which Whirlpool users' payments are Stonewalls, which of those are X2s and with whom:
        # likewise a stream of its own, three draws for every such payment
        self.stonewall_share = stonewall_share
        self.stonewall_rng = random.Random(f"{seed}/stonewall")
        self.seed, self.scale = seed, scale
        self.n_steps = 44 + 6 * scale
        self.initial_blocks = 101 + 20 * scale
        self.profiles: dict[str, Profile] = {}
        self.balance: dict[str, int] = defaultdict(int)
        self.pending: list[tuple[int, str, int]] = []  # (step available, wallet, amount)
        self.coins: dict[str, _Coin] = {}
        self.unswept: list[tuple[int, int]] = []  # (step deposited, amount)
        self.requests: dict[str, Withdrawal] = {}
        self.queue: list[Withdrawal] = []
        self.busy: set[str] = set()  # wallets that already spent this step
        self.step = 0
        self.actions: list[Action] = []
        self._make_actors()
        self._choose_software()

    # -- actors ---------------------------------------------------------------------------

    def _add(self, profile: Profile) -> None:
        self.profiles[profile.wallet] = profile

    def _make_actors(self) -> None:
        rng, s = self.rng, self.scale
        self._add(Profile("miner", Role.MINER, rng.choice(ADDRESS_TYPES), reuse=True,
                          fee_rate=rng.choice(FEE_RATES)))
        self._add(Profile("exchange", Role.EXCHANGE, rng.choice(("p2sh-segwit", "bech32")),
                          fee_rate=rng.choice(FEE_RATES)))
        self._add(Profile("wasabi-coordinator", Role.WASABI_COORDINATOR, reuse=True))
        self._add(Profile("whirlpool-coordinator", Role.WHIRLPOOL_COORDINATOR))
        self._add(Profile("ransomware", Role.RANSOMWARE, fee_rate=rng.choice(FEE_RATES)))
        self.employers = [f"employer-{i:02d}" for i in range(s)]
        self.merchants = [f"merchant-{i:02d}" for i in range(2 + 2 * s)]
        self.users = [f"user-{i:02d}" for i in range(20 * s)]
        self.whirlpoolers = [f"whirlpool-{i:02d}" for i in range(6 + 2 * s)]
        self.wasabis = [f"wasabi-{i:02d}" for i in range(20 + 10 * s)]
        for name in self.employers:
            self._add(Profile(name, Role.EMPLOYER, rng.choice(ADDRESS_TYPES),
                              replaceable=rng.random() < 0.5, fee_rate=rng.choice(FEE_RATES)))
        for name in self.merchants:
            self._add(Profile(name, Role.MERCHANT, rng.choice(("p2sh-segwit", "bech32")),
                              replaceable=rng.random() < 0.5, fee_rate=rng.choice(FEE_RATES)))
        for name in self.users:
            self._add(Profile(
                name, Role.USER,
                rng.choices(ADDRESS_TYPES, weights=(2, 3, 5))[0],
                reuse=rng.random() < 0.3,
                replaceable=rng.random() < 0.5,
                fee_rate=rng.choice(FEE_RATES),
                subtract_fee=rng.random() < 0.15,
            ))
        for name in self.whirlpoolers:
            self._add(Profile(name, Role.WHIRLPOOL_USER, fee_rate=rng.choice(FEE_RATES),
                              replaceable=rng.random() < 0.5))
        for name in self.wasabis:
            self._add(Profile(name, Role.WASABI_USER, fee_rate=rng.choice(FEE_RATES),
                              replaceable=rng.random() < 0.5))
        # employees, salary levels (fiat), victims, pools
        self.staff = {
            e: sorted(rng.sample(self.users, rng.randint(4, 8))) for e in self.employers
        }
        self.salary = {u: rng.choice((1_500, 1_800, 2_200, 2_500, 3_000, 4_000))
                       for e in self.employers for u in self.staff[e]}
        self.victims = sorted(rng.sample(self.users, 3 + 2 * s))
        self.pool_members = {
            d: sorted(rng.sample(self.whirlpoolers, rng.randint(WHIRLPOOL_SIZE,
                                                                len(self.whirlpoolers))))
            for d, _ in WHIRLPOOL_POOLS
        }

    def _choose_software(self) -> None:
        """A fixed sample of the ordinary users (`light_share` of them, rounded) runs the light
        wallet. It is drawn from a random stream of its own, so every other draw of the plan —
        actors, actions, amounts, schedule — is the same whatever the share."""
        rng = random.Random(f"{self.seed}/software")
        count = round(len(self.users) * self.light_share)
        light = set(rng.sample(self.users, count))
        for name in sorted(light):
            self.profiles[name] = dataclasses.replace(self.profiles[name], software="light")
        # then the hardware signers among the others, from the same stream (so the light users
        # are the same whatever `hardware_share` is)
        rest = [u for u in self.users if u not in light]
        count = min(len(rest), round(len(self.users) * self.hardware_share))
        for name in sorted(rng.sample(rest, count)):
            self.profiles[name] = dataclasses.replace(self.profiles[name], software="hardware")

    # -- ledger ---------------------------------------------------------------------------

    def _credit(self, wallet: str, amount: int, delay: int = 1) -> None:
        self.pending.append((self.step + delay, wallet, amount))

    def _debit(self, wallet: str, amount: int) -> None:
        self.balance[wallet] -= amount
        if self.balance[wallet] < 0:
            raise AssertionError(f"planner overspent {wallet}")

    def _can_spend(self, wallet: str, amount: int) -> bool:
        return wallet not in self.busy and self.balance[wallet] >= amount + FEE_ALLOWANCE

    def _incoming(self, wallet: str) -> int:
        """What `wallet` is owed: requested, queued or paid but not yet confirmed."""
        owed = sum(a for _, w, a in self.pending if w == wallet)
        owed += sum(i.amount for i in self.queue if i.customer == wallet)
        return owed + (self.requests[wallet].amount if wallet in self.requests else 0)

    def _coin(self, name: str, wallet: str, value: int, kind: str) -> str:
        self.coins[name] = _Coin(wallet, value, self.step, kind)
        return name

    def _available(self, wallet: str, kinds: Iterable[str], minimum: int = 0) -> list[str]:
        wanted = set(kinds)
        return sorted(c for c, coin in self.coins.items()
                      if coin.wallet == wallet and not coin.spent and coin.kind in wanted
                      and coin.created < self.step and coin.value >= minimum)

    def _amount(self, low: int, high: int, round_share: float) -> int:
        """A payment amount: round (0.01, 0.5, 2 LTC ...) with `round_share`, else fiat-priced
        (any litoshi amount)."""
        if self.rng.random() < round_share:
            choices = [a for a in ROUND_AMOUNTS if low <= a <= high]
            if choices:
                return self.rng.choice(choices)
        return self.rng.randint(low, high)

    # -- actions --------------------------------------------------------------------------

    def _do(self, action: Action) -> None:
        self.actions.append(action)

    def _pay(self, payer: str, payee: str, amount: int, purpose: str,
             subtract_fee: bool | None = None) -> None:
        profile = self.profiles[payer]
        subtract = profile.subtract_fee if subtract_fee is None else subtract_fee
        self._debit(payer, amount + FEE_ALLOWANCE)
        self.busy.add(payer)
        stonewall = collaborator = None
        if profile.role is Role.WHIRLPOOL_USER and purpose in ("payment", "deposit"):
            # the collaborator is a Whirlpool user that already spent this step, so it spends
            # nothing after the X2 in this block (the node's wallet does not spend the
            # unconfirmed outputs of a transaction it signed only in part). It is not booked
            # in the ledger: its coins come back to it, less a share of the fee far below the
            # fee allowance, and a collaborator without a large enough set of confirmed coins
            # makes the payer fall back to a solo Stonewall
            srng = self.stonewall_rng
            stonewall = srng.random() < self.stonewall_share
            x2 = srng.random() < STONEWALL_X2_SHARE
            partners = [w for w in self.whirlpoolers if w != payer and w in self.busy]
            if partners:
                collaborator = srng.choice(partners) if x2 else None
        if (purpose == "payment" and self.profiles[payee].role is Role.MERCHANT
                and profile.software == "core"
                and self.payjoin_rng.random() < self.payjoin_share):
            self._do(PayJoin(payer, payee, amount, subtract))
        elif stonewall:
            self._do(Stonewall(payer, payee, amount, purpose, collaborator))
        else:
            self._do(Pay(payer, payee, amount, purpose, subtract))
        received = amount - FEE_ALLOWANCE if subtract else amount
        if purpose == "deposit":
            self.unswept.append((self.step, received))
        elif purpose == "payment":
            self._credit(payee, received)

    def _request(self, customer: str, amount: int, track: bool = False) -> None:
        if customer in self.requests:
            return
        coin = None
        if track:  # not available before its withdrawal batch is paid
            coin = self._coin(f"wd{self.step}:{customer}", customer, amount, "funding")
            self.coins[coin].created = UNPAID
        self.requests[customer] = Withdrawal(customer, amount, coin)

    # -- the plan -------------------------------------------------------------------------

    def plan(self) -> Plan:
        rng, n = self.rng, self.n_steps
        # coinbases at heights 1 .. initial_blocks - 100 are mature when the steps begin
        mature = sum(50 * COIN >> (h // REGTEST_HALVING)
                     for h in range(1, self.initial_blocks - 99))
        self.balance["miner"] = mature
        tx0_steps = {}
        for d, members in self.pool_members.items():
            for w in members:
                tx0_steps[(w, d)] = rng.randint(n * 20 // 100, n * 28 // 100)
        wasabi_rounds = [n * 32 // 100 + k * (n * 42 // 100) // (1 + self.scale)
                         for k in range(1 + self.scale)]
        whirlpool_target = {d: 2 + self.scale for d, _ in WHIRLPOOL_POOLS}
        ransom_step = {v: rng.randint(n * 15 // 100, n * 40 // 100) for v in self.victims}
        ransom_amount = {v: rng.randint(COIN * 3 // 10, COIN * 5 // 2) for v in self.victims}
        consolidation_step = n * 48 // 100
        peel_hops = 4 + self.scale
        release_step = n * 78 // 100
        price = rng.randint(600_00, 1_200_00)  # fiat cents per LTC
        payday = {e: rng.randint(3, 8) for e in self.employers}
        cashout_every = {m: rng.randint(5, 10) for m in self.merchants}
        steps: list[tuple[Action, ...]] = []
        consolidated: str | None = None
        peel_source: str | None = None
        peel_left = 0
        hops_done = 0
        for k in range(n):
            self.step, self.actions, self.busy = k, [], set()
            for _, wallet, amount in [p for p in self.pending if p[0] <= k]:
                self.balance[wallet] += amount
            self.pending = [p for p in self.pending if p[0] > k]
            if k == release_step:
                self._do(Release())
                self._release()
            if k == 0:
                self._pay("miner", "exchange", mature - 50 * COIN, "deposit", subtract_fee=False)
            # the exchange sweeps confirmed deposits first
            ready = [a for s, a in self.unswept if s < k]
            if ready:
                self._do(Sweep())
                self._credit("exchange", sum(ready) - FEE_ALLOWANCE)
                self.unswept = [(s, a) for s, a in self.unswept if s >= k]
            if k >= 2:
                self._funding(k)
                self._employers(k, payday, price)
                if k % 10 == 0:
                    price = max(300_00, price + rng.randint(-150_00, 150_00))
                for (w, d), when in sorted(tx0_steps.items()):
                    if when <= k and self._tx0(w, d):
                        del tx0_steps[(w, d)]
                if k in wasabi_rounds:
                    self._wasabi_round(k)
                if n * 30 // 100 < k < release_step:
                    for d, _ in WHIRLPOOL_POOLS:
                        if whirlpool_target[d] > 0 and rng.random() < 0.7 and self._whirlpool(d):
                            whirlpool_target[d] -= 1
                for v, when in sorted(ransom_step.items()):
                    if when <= k and v not in self.busy:
                        if self._can_spend(v, ransom_amount[v]):
                            self._pay(v, "ransomware", ransom_amount[v], "ransom",
                                      subtract_fee=False)
                            self._credit("ransomware", ransom_amount[v])
                            del ransom_step[v]
                        else:
                            self._request(v, ransom_amount[v] + COIN // 2)
                if (k >= consolidation_step and consolidated is None and not ransom_step
                        and self._incoming("ransomware") == 0):
                    total = self.balance["ransomware"]
                    if total > 0:
                        consolidated = self._coin("ransom:consolidated", "ransomware",
                                                  total - FEE_ALLOWANCE, "operator")
                        self.balance["ransomware"] = 0
                        self._do(Consolidate("ransomware", consolidated))
                        peel_source, peel_left = consolidated, total - FEE_ALLOWANCE
                elif peel_source is not None and self.coins[peel_source].created < k:
                    peel_source, peel_left = self._peel(
                        peel_source, peel_left, hops_done, last=hops_done == peel_hops - 1)
                    hops_done += 1
                for m in self.merchants:
                    if k % cashout_every[m] == 0 and self.balance[m] > 2 * FEE_ALLOWANCE:
                        self._do(CashOut(m))
                        self.balance[m] = 0
                        self.busy.add(m)
                self._economy(k, release_step)
            self._withdrawals()
            steps.append(tuple(self.actions))
        if ransom_step or consolidated is None or peel_source is not None:
            raise AssertionError("the ransomware story did not finish; lengthen the scenario")
        return Plan(self.seed, self.scale, self.initial_blocks,
                    tuple(self.profiles.values()), tuple(steps))

    def _funding(self, k: int) -> None:
        """Mixers and employers buy their coins at the exchange early on."""
        rng, n = self.rng, self.n_steps
        if k < n * 28 // 100:
            last = k == n * 28 // 100 - 1  # nobody is left without coins to mix
            for w in self.wasabis:
                have = len([c for c in self.coins.values() if c.wallet == w])
                if have < 4 and (rng.random() < 0.35 or (last and have == 0)):
                    amount = self._amount(COIN // 20, 3 * COIN, 0.3)
                    self._request(w, amount, track=True)
        if k < n * 20 // 100:
            last = k == n * 20 // 100 - 1
            for w in self.whirlpoolers:
                need = sum(4 * (d + max(FEE_RATES) * 300) + fee for d, fee in WHIRLPOOL_POOLS
                           if w in self.pool_members[d]) + 4 * FEE_ALLOWANCE
                have = self.balance[w] + self._incoming(w)
                if have < need and (rng.random() < 0.5 or last):
                    self._request(w, need - have + self._amount(COIN // 10, COIN, 0.5))

    def _employers(self, k: int, payday: dict[str, int], price: int) -> None:
        for e in self.employers:
            items = tuple((u, self.salary[u] * COIN * 100 // price) for u in self.staff[e])
            total = sum(a for _, a in items)
            if self.balance[e] + self._incoming(e) < 2 * total + FEE_ALLOWANCE:
                self._request(e, 6 * total)
            if k >= payday[e] and self._can_spend(e, total):
                self._debit(e, total + FEE_ALLOWANCE)
                self.busy.add(e)
                self._do(Payroll(e, items))
                for u, a in items:
                    self._credit(u, a)
                payday[e] = k + 8

    def _tx0(self, wallet: str, denomination: int) -> bool:
        pool_fee = dict(WHIRLPOOL_POOLS)[denomination]
        count = self.rng.randint(2, 4)
        surplus = self.rng.choice(FEE_RATES) * 300  # the mix's mining fee, carried by entrants
        premix = denomination + surplus
        total = count * premix + pool_fee
        if not self._can_spend(wallet, total):
            return False
        self._debit(wallet, total + FEE_ALLOWANCE)
        self.busy.add(wallet)
        coins = tuple(self._coin(f"premix{denomination}:{wallet}:{self.step}:{i}", wallet,
                                 premix, f"premix{denomination}") for i in range(count))
        self._do(Tx0(wallet, denomination, premix, coins, pool_fee,
                     self.rng.randbytes(46).hex()))
        return True

    def _whirlpool(self, denomination: int) -> bool:
        """One mix of the pool if 5 wallets can join, at least one of them a new entrant."""
        rng = self.rng
        entrants: dict[str, str] = {}
        remixers: dict[str, str] = {}
        for w in self.pool_members[denomination]:
            premix = self._available(w, [f"premix{denomination}"])
            postmix = self._available(w, [f"postmix{denomination}"])
            if premix:
                entrants[w] = premix[0]
            if postmix:
                remixers[w] = postmix[0]
        if not entrants:
            return False
        n_entrants = rng.choice((1, 2, 2, 3))
        chosen: dict[str, str] = {}
        for w in rng.sample(sorted(entrants), min(n_entrants, len(entrants))):
            chosen[w] = entrants[w]
        others = [w for w in sorted(remixers) if w not in chosen]
        for w in rng.sample(others, min(WHIRLPOOL_SIZE - len(chosen), len(others))):
            chosen[w] = remixers[w]
        extra = [w for w in sorted(entrants) if w not in chosen]
        rng.shuffle(extra)
        while len(chosen) < WHIRLPOOL_SIZE and extra:
            w = extra.pop()
            chosen[w] = entrants[w]
        if len(chosen) < WHIRLPOOL_SIZE:
            return False
        label = f"whirlpool{denomination}:{self.step}"
        inputs = [RoundInput(w, c, self.coins[c].value) for w, c in sorted(chosen.items())]
        for i in inputs:
            self.coins[i.coin].spent = True
        outputs = [RoundOutput(w, denomination, self._coin(f"{label}:{w}", w, denomination,
                                                            f"postmix{denomination}"))
                   for w in sorted(chosen)]
        rng.shuffle(inputs)
        rng.shuffle(outputs)
        self._do(CoinJoinRound("whirlpool", label, tuple(inputs), tuple(outputs)))
        return True

    def _wasabi_round(self, k: int) -> None:
        rng = self.rng
        kinds = ("funding", "wasabi")
        candidates = [w for w in self.wasabis
                      if self._available(w, kinds, WABISABI_MIN_COIN)]
        rng.shuffle(candidates)
        target = rng.randint(55, 75) + 15 * (self.scale - 1)
        registrations: list[tuple[str, list[str]]] = []
        for w in candidates:
            coins = self._available(w, kinds, WABISABI_MIN_COIN)
            registrations.append((w, rng.sample(coins, min(len(coins), rng.randint(1, 4)))))
            if sum(len(c) for _, c in registrations) >= target:
                break
        if sum(len(c) for _, c in registrations) < WABISABI_MIN_INPUTS:
            raise AssertionError(f"too few coins for a WabiSabi round at step {k}")
        fee_rate = rng.choice(FEE_RATES[:4])
        out_cost = P2WPKH_OUTPUT_VB * fee_rate
        coordinator = 0
        effective: list[int] = []
        for _, coins in registrations:
            values = [self.coins[c].value for c in coins]
            fee = sum(v * WABISABI_FEE_PER_MILLE // 1000 for v in values
                      if v > WABISABI_FREE_BELOW)
            coordinator += fee
            effective.append(sum(values) - fee - len(values) * P2WPKH_INPUT_VB * fee_rate)
        denominations = _frequent_denominations(effective)
        label = f"wasabi:{k}"
        inputs: list[RoundInput] = []
        outputs: list[RoundOutput] = []
        for (w, coins), amount in zip(registrations, effective, strict=True):
            for c in coins:
                inputs.append(RoundInput(w, c, self.coins[c].value))
                self.coins[c].spent = True
            parts = _decompose(amount, denominations, out_cost)
            for i, value in enumerate(parts):
                outputs.append(RoundOutput(w, value, self._coin(f"{label}:{w}:{i}", w, value,
                                                                "wasabi")))
        if coordinator >= WABISABI_MIN_OUTPUT:
            outputs.append(RoundOutput("wasabi-coordinator", coordinator, None))
        inputs.sort(key=lambda i: (-i.value, i.coin))
        outputs.sort(key=lambda o: (-o.value, o.coin or ""))
        self._do(CoinJoinRound("wasabi_2", label, tuple(inputs), tuple(outputs)))

    def _peel(self, source: str, left: int, hop: int, *, last: bool) -> tuple[str | None, int]:
        account = ("ransomware", "ransomware-mule")[hop % 2]
        if last:
            self._do(Peel("ransomware", source, account, None, None))
            self.coins[source].spent = True
            return None, 0
        amount = self.rng.randint(left * 8 // 100, left * 20 // 100)
        change = self._coin(f"peel:{hop}", "ransomware", left - amount - FEE_ALLOWANCE,
                            "operator")
        self.coins[source].spent = True
        self._do(Peel("ransomware", source, account, amount, change))
        return change, left - amount - FEE_ALLOWANCE

    def _release(self) -> None:
        """Mixing is over: the mixers' unspent coins become ordinary funds."""
        mixers = set(self.whirlpoolers) | set(self.wasabis)
        for coin in self.coins.values():
            if coin.wallet in mixers and not coin.spent and coin.created != UNPAID:
                coin.spent = True
                self.balance[coin.wallet] += coin.value

    def _economy(self, k: int, release_step: int) -> None:
        """Ordinary activity: buy, pay a merchant or a user, sell."""
        rng = self.rng
        spenders = list(self.users)
        if k > release_step:
            spenders += self.whirlpoolers + self.wasabis
        for w in spenders:
            if w in self.busy:
                continue
            bal = self.balance[w]
            roll = rng.random()
            if self.profiles[w].role is Role.USER and roll < 0.08 + (0.2 if bal < COIN // 5
                                                                         else 0.0):
                self._request(w, self._amount(COIN // 5, 8 * COIN, 0.5))
            elif roll < 0.3 and bal > COIN // 20 + FEE_ALLOWANCE:
                amount = self._amount(COIN // 100, (bal - FEE_ALLOWANCE) // 2, 0.25)
                if rng.random() < 0.6:
                    payee = rng.choice(self.merchants)
                else:
                    payee = rng.choice([u for u in self.users if u != w])
                self._pay(w, payee, amount, "payment")
            elif roll < 0.36 and bal > COIN // 2 + FEE_ALLOWANCE:
                amount = self._amount(COIN // 10, (bal - FEE_ALLOWANCE) * 8 // 10, 0.5)
                self._pay(w, "exchange", amount, "deposit")

    def _withdrawals(self) -> None:
        """The step's withdrawal requests, paid in one batch as far as the hot wallet allows."""
        self.queue.extend(self.requests[c] for c in sorted(self.requests))
        self.requests = {}
        batch: list[Withdrawal] = []
        left = self.balance["exchange"] - FEE_ALLOWANCE
        waiting: list[Withdrawal] = []
        for item in self.queue:
            if item.amount <= left and item.customer not in {b.customer for b in batch}:
                batch.append(item)
                left -= item.amount
            else:
                waiting.append(item)
        self.queue = waiting
        if batch:
            self._debit("exchange", sum(i.amount for i in batch) + FEE_ALLOWANCE)
            self._do(WithdrawalBatch(tuple(batch)))
            for item in batch:
                if item.coin is None:
                    self._credit(item.customer, item.amount)
                else:
                    self.coins[item.coin].created = self.step


def _frequent_denominations(amounts: Sequence[int]) -> tuple[int, ...]:
    """The standard denominations a greedy breakdown of at least two participants' amounts
    uses (WalletWasabi keeps a round's frequent denominations), largest first."""
    standard = standard_denominations()
    used: dict[int, int] = defaultdict(int)
    for amount in amounts:
        seen = set()
        remaining = amount
        for d in standard:
            if d <= remaining:
                seen.add(d)
                remaining -= d
        for d in seen:
            used[d] += 1
    frequent = tuple(d for d in standard if used[d] >= 2)
    return frequent or standard


def _decompose(amount: int, denominations: Sequence[int], out_cost: int) -> list[int]:
    """Up to WABISABI_MAX_OUTPUTS outputs: denominations greedily, largest first, then the rest
    as change when it is worth an output (else it is left to the miners)."""
    parts: list[int] = []
    remaining = amount
    for d in denominations:
        while len(parts) < WABISABI_MAX_OUTPUTS - 1 and remaining >= d + out_cost:
            parts.append(d)
            remaining -= d + out_cost
    change = remaining - out_cost
    if change >= WABISABI_MIN_OUTPUT:
        parts.append(change)
    return parts


def plan_scenario(seed: int, scale: int = 1, *, light_share: float = LIGHT_SHARE,
                  hardware_share: float = HARDWARE_SHARE, payjoin_share: float = 0.0,
                  stonewall_share: float = 0.0) -> Plan:
    """The scenario's actions for `seed` and `scale` (a pure function of them). `light_share` of
    the ordinary users run the light wallet and `hardware_share` sign with a hardware signer;
    they change the profiles' `software` and nothing else of the plan. `payjoin_share` of the
    payments Litecoin Core wallets make to merchants are PayJoins (`PayJoin`); they replace
    those payments and change nothing else (none by default). `stonewall_share` of the Whirlpool
    users' payments and deposits are Stonewalls (`Stonewall`), half of them drawn as X2s; they
    likewise replace those payments and change nothing else (none by default)."""
    return _Planner(seed, scale, light_share, hardware_share, payjoin_share,
                    stonewall_share).plan()


# -- facts -------------------------------------------------------------------------------------


@dataclass
class RoundFact:
    """A CoinJoin the scenario made."""

    txid: str
    kind: str  # cointrail CoinJoinKind value: "whirlpool" or "wasabi_2"
    label: str
    inputs: int
    outputs: int
    participants: tuple[str, ...]
    height: int = -1


@dataclass
class ScenarioFacts:
    """What the scenario did, and the ground truth."""

    seed: int
    scale: int
    plan_digest: str
    actors: dict[str, str] = field(default_factory=dict)  # wallet -> role
    owners: dict[str, str] = field(default_factory=dict)  # address -> wallet (ground truth)
    coinjoins: list[RoundFact] = field(default_factory=list)
    tx0s: list[str] = field(default_factory=list)
    batched_payments: dict[str, str] = field(default_factory=dict)  # txid -> kind
    tx_heights: dict[str, int] = field(default_factory=dict)  # every scenario tx -> height
    exchange: str = "exchange"
    hot_address: str = ""
    exchange_deposits: dict[str, str] = field(default_factory=dict)  # account -> address
    operator: str = "ransomware"
    victims: list[str] = field(default_factory=list)
    ransom_payments: dict[str, str] = field(default_factory=dict)  # txid -> victim
    operator_addresses: list[str] = field(default_factory=list)  # addresses victims paid
    total_ransom_sat: int = 0
    consolidation_txid: str = ""
    consolidation_address: str = ""
    peel_txids: list[str] = field(default_factory=list)
    peel_deposit_addresses: list[str] = field(default_factory=list)
    software: dict[str, str] = field(default_factory=dict)  # wallet -> one of SOFTWARE
    light_transactions: dict[str, str] = field(default_factory=dict)  # txid -> light payer
    hardware_transactions: dict[str, str] = field(default_factory=dict)  # txid -> its payer
    payjoins: dict[str, tuple[str, str]] = field(default_factory=dict)  # txid -> payer, merchant
    #: planned PayJoins sent as the original payment: the merchant had no coin of the payer's
    #: input type confirmed (BIP 78's fallback)
    payjoin_fallbacks: list[str] = field(default_factory=list)
    #: Stonewalls: txid -> (payer, collaborator); the collaborator is None in a solo Stonewall
    #: (one owner) and a second Whirlpool user in a Stonewall X2 (two owners)
    stonewalls: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: planned X2s sent as solo Stonewalls (the collaborator had no coin large enough), and
    #: planned Stonewalls sent as ordinary payments (the payer had no two sets of coins)
    stonewall_solo_fallbacks: list[str] = field(default_factory=list)
    stonewall_fallbacks: list[str] = field(default_factory=list)
    start_height: int = 0
    tip_height: int = 0
    transactions: int = 0
    actions: int = 0
    seconds: float = 0.0

    def addresses_of(self, wallet: str) -> list[str]:
        return sorted(a for a, w in self.owners.items() if w == wallet)

    @property
    def stonewall_x2s(self) -> list[str]:
        """The Stonewalls with a collaborator: two owners."""
        return sorted(t for t, (_, partner) in self.stonewalls.items() if partner)

    @property
    def multi_owner(self) -> list[str]:
        """The transactions whose inputs belong to two owners by design: PayJoins and
        Stonewall X2s (CoinJoins apart)."""
        return sorted([*self.payjoins, *self.stonewall_x2s])

    @property
    def light_wallets(self) -> list[str]:
        """The wallets that run the light wallet software."""
        return sorted(w for w, software in self.software.items() if software == "light")

    @property
    def hardware_wallets(self) -> list[str]:
        """The wallets that sign with a hardware signer."""
        return sorted(w for w, software in self.software.items() if software == "hardware")


# -- acting the plan out -----------------------------------------------------------------------


#: (non-witness bytes, witness bytes) one input of each kind adds to a light wallet's
#: transaction, counted with the longest signature (72-byte DER and the sighash byte): the
#: estimate is at most a few vbytes above the real size.
_LIGHT_INPUT_BYTES = {
    "p2pkh": (32 + 4 + 1 + (1 + 73 + 1 + 33) + 4, 0),
    "p2sh-p2wpkh": (32 + 4 + 1 + 23 + 4, 1 + (1 + 73) + (1 + 33)),
    "p2wpkh": (32 + 4 + 1 + 4, 1 + (1 + 73) + (1 + 33)),
}
#: vbytes one input of each kind (`_spk_kind`) adds to a transaction the scenario builds from
#: a PSBT (PayJoin, Stonewall): a 72-byte signature, rounded up.
_INPUT_VB = {"p2pkh": 148, "p2sh": 91, "p2wpkh": 68}


def _coin_vb(coin: Mapping[str, Any]) -> int:
    """`_INPUT_VB` of a ``listunspent`` coin (an unknown kind counted as the largest)."""
    return _INPUT_VB[_spk_kind(str(coin["scriptPubKey"])) or "p2pkh"]
#: scriptPubKey length of a change address of each receive type.
_SCRIPT_LENGTH = {"legacy": 25, "p2sh-segwit": 23, "bech32": 22}


def _compact_size_length(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def light_vsize(inputs: Sequence[str], output_scripts: Sequence[bytes]) -> int:
    """The virtual size (rounded up) of a light wallet's transaction spending `inputs` (kinds:
    "p2pkh", "p2sh-p2wpkh", "p2wpkh") to outputs with `output_scripts`, with the longest
    signatures."""
    base = 4 + 4 + _compact_size_length(len(inputs)) + _compact_size_length(len(output_scripts))
    base += sum(_LIGHT_INPUT_BYTES[kind][0] for kind in inputs)
    base += sum(8 + _compact_size_length(len(s)) + len(s) for s in output_scripts)
    witness = 0
    if any(_LIGHT_INPUT_BYTES[kind][1] for kind in inputs):  # marker, flag, one stack each
        witness = 2 + sum(_LIGHT_INPUT_BYTES[kind][1] or 1 for kind in inputs)
    return -(-(4 * base + witness) // 4)


def light_split(total: int, amount: int, subtract_fee: bool, fee_alone: int,
                fee_with_change: int) -> tuple[int, int] | None:
    """(paid to the payee, change; 0 for none) when a light wallet spends inputs worth `total`
    on a payment of `amount`, or None when `total` is too little. `fee_alone` and
    `fee_with_change` are the fees without and with a change output. Change below
    `LIGHT_MIN_CHANGE` is left to the fee; with `subtract_fee` the payee gets `amount` less the
    fee and the inputs need only cover `amount`."""
    if subtract_fee:
        if total < amount:
            return None
        rest = total - amount
        if rest >= LIGHT_MIN_CHANGE:
            return amount - fee_with_change, rest
        return amount - fee_alone, 0
    if total - amount - fee_with_change >= LIGHT_MIN_CHANGE:
        return amount, total - amount - fee_with_change
    if total >= amount + fee_alone:
        return amount, 0
    return None


def _coin_kind(coin: Mapping[str, Any]) -> str | None:
    """The input kind a light wallet can sign for a ``listunspent`` entry, or None."""
    spk = bytes.fromhex(str(coin["scriptPubKey"]))
    if not coin.get("spendable", False):
        return None
    if len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return "p2pkh"
    if len(spk) == 22 and spk[:2] == b"\x00\x14":
        return "p2wpkh"
    redeem = bytes.fromhex(str(coin.get("redeemScript", "")))
    if (len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87 and len(redeem) == 22
            and redeem[:2] == b"\x00\x14"):
        return "p2sh-p2wpkh"
    return None


def _spk_kind(script_hex: str) -> str | None:
    """p2pkh, p2sh or p2wpkh for a scriptPubKey of that type (the kind a BIP 78 receiver
    matches), else None."""
    spk = bytes.fromhex(script_hex)
    if len(spk) == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return "p2pkh"
    if len(spk) == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
        return "p2sh"
    if len(spk) == 22 and spk[:2] == b"\x00\x14":
        return "p2wpkh"
    return None


def _push(data: bytes) -> bytes:
    """A script push of `data` (shorter than OP_PUSHDATA1's 76 bytes)."""
    assert len(data) < 0x4C
    return bytes([len(data)]) + data


def _light_sign(tx: Any, index: int, coin: Mapping[str, Any], key: Any) -> None:
    """Sign input `index` of `tx` (an embit Transaction), which spends `coin` (a ``listunspent``
    entry) with `key` (its compressed private key), SIGHASH_ALL, without low-R grinding."""
    assert key.compressed, f"{coin['address']}: an uncompressed key"
    public = key.get_public_key().sec()
    key_hash = hash160(public)
    code = Script(b"\x76\xa9\x14" + key_hash + b"\x88\xac")  # P2PKH script and script code
    spk = bytes.fromhex(str(coin["scriptPubKey"]))
    kind = _coin_kind(coin)
    program = b"\x00\x14" + key_hash
    if kind == "p2pkh":
        assert spk == code.data, f"{coin['address']}: not the key's P2PKH script"
        digest = tx.sighash_legacy(index, code, SIGHASH_ALL)
    elif kind == "p2wpkh":
        assert spk == program, f"{coin['address']}: not the key's P2WPKH script"
        digest = tx.sighash_segwit(index, code, to_sat(coin["amount"]), SIGHASH_ALL)
    elif kind == "p2sh-p2wpkh":
        assert spk == b"\xa9\x14" + hash160(program) + b"\x87", (
            f"{coin['address']}: not the key's P2SH-P2WPKH script")
        digest = tx.sighash_segwit(index, code, to_sat(coin["amount"]), SIGHASH_ALL)
    else:
        raise AssertionError(f"a light wallet cannot sign {coin['address']}")
    signature = key.sign(digest, grind=False).serialize() + bytes([SIGHASH_ALL])
    if kind == "p2pkh":
        tx.vin[index].script_sig = Script(_push(signature) + _push(public))
    else:
        tx.vin[index].witness = Witness([signature, public])
        if kind == "p2sh-p2wpkh":
            tx.vin[index].script_sig = Script(_push(program))


def _out_address(vout: dict[str, Any]) -> str | None:
    spk = vout.get("scriptPubKey", {})
    if "address" in spk:
        return str(spk["address"])
    addresses = spk.get("addresses") or []
    return str(addresses[0]) if len(addresses) == 1 else None


class _Actor:
    """Runs a plan against a node."""

    def __init__(self, node: LitecoindNode, plan: Plan) -> None:
        self.node = node
        self.plan = plan
        self.profiles = {p.wallet: p for p in plan.profiles}
        self.issued: dict[str, str] = {}  # address -> wallet that handed it out
        self.reused: dict[str, str] = {}  # wallet -> its one receive address
        self.coins: dict[str, tuple[str, int, int]] = {}  # plan coin -> (txid, vout, value)
        self.step_txids: list[str] = []
        self.pegged_in = False
        self.facts = ScenarioFacts(plan.seed, plan.scale, plan.digest,
                                   actors={p.wallet: str(p.role) for p in plan.profiles},
                                   software={p.wallet: p.software for p in plan.profiles},
                                   actions=plan.actions)

    # -- node helpers ---------------------------------------------------------------------

    def w(self, wallet: str, method: str, *params: Any) -> Any:
        return self.node.rpc(method, *params, wallet=wallet)

    def new_address(self, wallet: str, kind: str | None = None) -> str:
        kind = kind or self.profiles[wallet].address_type
        address = str(self.w(wallet, "getnewaddress", "", kind))
        self.issued[address] = wallet
        return address

    def receive_address(self, wallet: str) -> str:
        if self.profiles[wallet].reuse:
            if wallet not in self.reused:
                self.reused[wallet] = self.new_address(wallet)
            return self.reused[wallet]
        return self.new_address(wallet)

    def deposit_address(self, account: str) -> str:
        deposits = self.facts.exchange_deposits
        if account not in deposits:
            address = str(self.w("exchange", "getnewaddress", account,
                                 self.profiles["exchange"].address_type))
            self.issued[address] = "exchange"
            deposits[account] = address
        return deposits[account]

    def outputs(self, txid: str) -> list[tuple[int, str | None, int]]:
        tx = self.node.rpc("getrawtransaction", txid, True)
        return [(int(v["n"]), _out_address(v), to_sat(v["value"])) for v in tx["vout"]]

    def vout_of(self, txid: str, address: str) -> tuple[int, int]:
        for n, a, value in self.outputs(txid):
            if a == address:
                return n, value
        raise AssertionError(f"{txid} pays nothing to {address}")

    def sent(self, txid: str) -> str:
        self.step_txids.append(txid)
        return txid

    def lock(self, wallet: str, coins: Iterable[str], unlock: bool = False) -> None:
        """Keep tracked coins out of (or put them back into) the wallet's coin selection."""
        outpoints = [{"txid": self.coins[c][0], "vout": self.coins[c][1]} for c in coins]
        if outpoints:
            # wallets learn of mempool transactions asynchronously: wait until they have
            self.node.rpc("syncwithvalidationinterfacequeue")
            assert self.w(wallet, "lockunspent", unlock, outpoints)

    def finish_psbt(self, psbt: str, signers: Sequence[str]) -> str:
        """Each signer signs its own inputs of a copy; the copies are combined (a few at a time:
        each carries the transactions its inputs spend), finalised and sent."""
        signed = [self.w(self.core(s), "walletprocesspsbt", psbt)["psbt"] for s in signers]
        combined = signed[0]
        for start in range(1, len(signed), COMBINE_CHUNK):
            combined = self.node.rpc("combinepsbt",
                                     [combined, *signed[start:start + COMBINE_CHUNK]])
        final = self.node.rpc("finalizepsbt", combined)
        assert final["complete"], f"PSBT not complete after signing by {list(signers)}"
        return self.sent(str(self.node.rpc("sendrawtransaction", final["hex"])))

    def fund_and_send(self, wallet: str, inputs: list[dict[str, Any]],
                      outputs: list[dict[str, str]], *, subtract_fee: bool) -> str:
        """``walletcreatefundedpsbt`` with exactly `inputs` (all if `inputs` is empty and
        `subtract_fee`), signed by `wallet` and sent."""
        profile = self.profiles[wallet]
        options: dict[str, Any] = {
            "add_inputs": not inputs, "fee_rate": profile.fee_rate,
            "replaceable": profile.replaceable,
        }
        if subtract_fee:
            options["subtractFeeFromOutputs"] = list(range(len(outputs)))
        funded = self.w(self.core(wallet), "walletcreatefundedpsbt", inputs, outputs, 0,
                        options)
        return self.finish_psbt(funded["psbt"], [wallet])

    def unspent(self, wallet: str, addresses: Sequence[str] | None = None
                ) -> list[dict[str, Any]]:
        args: list[Any] = [1, 9_999_999]
        if addresses is not None:
            args.append(list(addresses))
        return list(self.w(wallet, "listunspent", *args))

    def mine(self) -> None:
        height = int(self.node.rpc("getblockcount"))
        if height + 1 == MWEB_HEIGHT and not self.pegged_in:
            # the first MWEB block needs a peg-in in the mempool (tests/integration/conftest.py)
            mweb = self.w("miner", "getnewaddress", "", "mweb")
            self.sent(str(self.w("miner", "sendtoaddress", mweb, "1")))
            self.pegged_in = True
        self.node.mine(1, self.reused["miner"])
        for txid in self.step_txids:
            self.facts.tx_heights[txid] = height + 1
        self.step_txids = []

    # -- running --------------------------------------------------------------------------

    def act(self, action: Action) -> None:
        if isinstance(action, Pay):
            self.pay(action)
        elif isinstance(action, PayJoin):
            self.payjoin(action)
        elif isinstance(action, Stonewall):
            self.stonewall(action)
        elif isinstance(action, WithdrawalBatch):
            self.withdrawals(action)
        elif isinstance(action, Payroll):
            self.payroll(action)
        elif isinstance(action, Sweep):
            self.sweep()
        elif isinstance(action, CashOut):
            self.cash_out(action)
        elif isinstance(action, Tx0):
            self.tx0(action)
        elif isinstance(action, CoinJoinRound):
            self.coinjoin(action)
        elif isinstance(action, Consolidate):
            self.consolidate(action)
        elif isinstance(action, Peel):
            self.peel(action)
        elif isinstance(action, Release):
            self.release()
        else:  # pragma: no cover - every action type is handled above
            raise TypeError(action)

    def core(self, wallet: str) -> str:
        """`wallet`, checked to run Litecoin Core (its node wallet builds the transaction)."""
        if self.profiles[wallet].software != "core":
            raise AssertionError(f"{wallet} runs {self.profiles[wallet].software} wallet "
                                 "software: the node cannot spend for it")
        return wallet

    def send(self, wallet: str, address: str, amount: int, subtract_fee: bool) -> str:
        p = self.profiles[wallet]
        if p.software != "core":
            return self.light_send(wallet, address, amount, subtract_fee)
        return self.sent(str(self.w(self.core(wallet), "sendtoaddress", address, ltc(amount),
                                    "", "", subtract_fee, p.replaceable, None, "unset", None,
                                    p.fee_rate)))

    def light_send(self, wallet: str, address: str, amount: int, subtract_fee: bool) -> str:
        """Pay `amount` to `address` from `wallet` the way the light wallet does: version 1,
        nLockTime 0, final nSequence (no RBF signal), the oldest confirmed coins first (ties by
        txid and vout; ``listunspent`` leaves locked coins out) until they cover the payment and
        the fee (profile fee rate × `light_vsize`), change of the wallet's receive type unless
        below `LIGHT_MIN_CHANGE`, inputs and outputs in BIP 69 order, signed with embit without
        low-R grinding. The wallet sees its spend (its keys) once the node has it.

        A hardware signer's wallet (``software == "hardware"``) builds the same transaction
        with Core's settings instead: version 2, nLockTime at the tip height (anti-fee-sniping),
        nSequence 0xfffffffd with RBF and 0xfffffffe without, and the outputs in random order
        (inputs oldest first); only its signatures (no low-R grinding) and its change type tell
        it from Core."""
        p = self.profiles[wallet]
        payee = bytes.fromhex(str(self.node.rpc("validateaddress", address)["scriptPubKey"]))
        placeholder = bytes(_SCRIPT_LENGTH[p.address_type])  # the change script's length
        coins = sorted((c for c in self.unspent(wallet) if _coin_kind(c) is not None),
                       key=lambda c: (-int(c["confirmations"]), str(c["txid"]), int(c["vout"])))
        chosen: list[dict[str, Any]] = []
        split = None
        for coin in coins:
            chosen.append(coin)
            kinds = [str(_coin_kind(c)) for c in chosen]
            total = sum(to_sat(c["amount"]) for c in chosen)
            split = light_split(total, amount, subtract_fee,
                                p.fee_rate * light_vsize(kinds, [payee]),
                                p.fee_rate * light_vsize(kinds, [payee, placeholder]))
            if split is not None:
                break
        if split is None:
            raise AssertionError(f"{wallet} cannot pay {amount} from {len(coins)} coins")
        paid, change = split
        if paid < LIGHT_MIN_CHANGE:
            raise AssertionError(f"{wallet} would pay {paid} litoshi after the fee")
        outputs = [(paid, payee)]
        if change:
            change_address = str(self.w(wallet, "getrawchangeaddress", p.address_type))
            outputs.append((change, bytes.fromhex(str(
                self.node.rpc("validateaddress", change_address)["scriptPubKey"]))))
        hardware = p.software == "hardware"
        if hardware:
            random.Random(f"{wallet}/{chosen[0]['txid']}").shuffle(outputs)
            version, lock_time = 2, int(self.node.rpc("getblockcount"))
            sequence = SEQUENCE_RBF if p.replaceable else SEQUENCE_LOCKTIME
        else:
            chosen.sort(key=lambda c: (str(c["txid"]), int(c["vout"])))  # BIP 69
            outputs.sort()  # BIP 69: by value, then scriptPubKey bytes
            version, lock_time, sequence = 1, 0, SEQUENCE_FINAL
        tx = Transaction(
            version=version,
            vin=[TransactionInput(bytes.fromhex(str(c["txid"])), int(c["vout"]),
                                  sequence=sequence) for c in chosen],
            vout=[TransactionOutput(value, Script(script)) for value, script in outputs],
            locktime=lock_time)
        wifs = self.node.batch([("dumpprivkey", [c["address"]]) for c in chosen], wallet=wallet)
        for index, (coin, wif) in enumerate(zip(chosen, wifs, strict=True)):
            _light_sign(tx, index, coin, PrivateKey.from_wif(str(wif)))
        txid = str(self.node.rpc("sendrawtransaction", tx.serialize().hex()))
        assert txid == tx.txid().hex(), (txid, tx.txid().hex())
        (self.facts.hardware_transactions if hardware else self.facts.light_transactions)[
            txid] = wallet
        return self.sent(txid)

    def pay(self, action: Pay) -> None:
        if action.purpose == "deposit":
            address = self.deposit_address(action.payer)
        elif action.purpose == "ransom":
            address = self.new_address(action.payee, "bech32")
            self.facts.operator_addresses.append(address)
        else:
            address = self.receive_address(action.payee)
        txid = self.send(action.payer, address, action.amount, action.subtract_fee)
        if action.purpose == "ransom":
            self.facts.ransom_payments[txid] = action.payer
            self.facts.victims.append(action.payer)
            self.facts.total_ransom_sat += action.amount

    def payjoin(self, action: PayJoin) -> None:
        """A PayJoin as BIP 78 makes it. The payer's wallet funds the *original* payment to the
        merchant's fresh invoice address (``walletcreatefundedpsbt``: its coin selection, fee
        rate, RBF choice and change, and nLockTime at the tip as ``sendtoaddress`` sets it).
        The merchant, as a BIP 78 receiver, adds one of its confirmed coins of the same script
        type as the payer's inputs at a random position (with the payer's nSequence, keeping
        the payer's nLockTime and version) and takes it back in the invoice output, less the
        fee of the added input at the payer's fee rate; the payer's outputs are otherwise
        unchanged. Each signs its own inputs. When the merchant has no such coin, the original
        payment is sent (the receiver's fallback)."""
        payer, merchant = self.core(action.payer), self.core(action.payee)
        p = self.profiles[payer]
        address = self.receive_address(merchant)
        options: dict[str, Any] = {"fee_rate": p.fee_rate, "replaceable": p.replaceable}
        if action.subtract_fee:
            options["subtractFeeFromOutputs"] = [0]
        # the payer's wallet sets nLockTime to the tip as its payments do (anti-fee-sniping)
        tip = int(self.node.rpc("getblockcount"))
        funded = self.w(payer, "walletcreatefundedpsbt", [], [{address: ltc(action.amount)}],
                        tip, options)
        original = self.node.rpc("decodepsbt", funded["psbt"])["tx"]
        kinds = set()
        for vin in original["vin"]:
            out = self.node.rpc("gettxout", vin["txid"], vin["vout"], True)
            kinds.add(_spk_kind(str(out["scriptPubKey"]["hex"])))
        self.node.rpc("syncwithvalidationinterfacequeue")  # the merchant's mempool spends
        coins = []
        kind = kinds.pop() if len(kinds) == 1 else None
        if kind is not None:
            coins = [c for c in self.unspent(merchant)
                     if c.get("spendable") and _spk_kind(str(c["scriptPubKey"])) == kind
                     and to_sat(c["amount"]) > 4 * p.fee_rate * _INPUT_VB[kind]]
        if kind is None or not coins:
            txid = self.finish_psbt(funded["psbt"], [payer])
            self.facts.payjoin_fallbacks.append(txid)
            return
        rng = random.Random(f"{merchant}/{original['vin'][0]['txid']}")
        coin = rng.choice(sorted(coins, key=lambda c: (str(c["txid"]), int(c["vout"]))))
        sequence = int(original["vin"][0]["sequence"])
        inputs = [{"txid": v["txid"], "vout": int(v["vout"]), "sequence": int(v["sequence"])}
                  for v in original["vin"]]
        inputs.insert(rng.randint(0, len(inputs)),
                      {"txid": coin["txid"], "vout": int(coin["vout"]), "sequence": sequence})
        added = to_sat(coin["amount"]) - p.fee_rate * _INPUT_VB[kind]
        outputs = []
        for vout in original["vout"]:
            value, to = to_sat(vout["value"]), _out_address(vout)
            assert to is not None, vout
            outputs.append({to: ltc(value + added if to == address else value)})
        psbt = self.node.rpc("createpsbt", inputs, outputs, int(original["locktime"]))
        txid = self.finish_psbt(psbt, [payer, merchant])
        self.facts.payjoins[txid] = (payer, merchant)

    def _stonewall_set(self, coins: list[dict[str, Any]], amount: int, fee_rate: int
                       ) -> list[dict[str, Any]] | None:
        """Coins, drawn in `coins`' order and all the coins of an address together (Samourai
        keeps an address's coins in one set), until they pay `amount` and their half of the
        Stonewall's fee (estimated high); None when they cannot."""
        by_address: dict[str, list[dict[str, Any]]] = {}
        for coin in coins:
            by_address.setdefault(str(coin.get("address") or coin["scriptPubKey"]), []).append(
                coin)
        chosen: list[dict[str, Any]] = []
        total = vsize = 0
        for group in by_address.values():
            for coin in group:
                chosen.append(coin)
                total += to_sat(coin["amount"])
                vsize += _coin_vb(coin)
            if total >= amount + fee_rate * (vsize + 100) + STONEWALL_DUST:
                return chosen
        return None

    def stonewall(self, action: Stonewall) -> None:
        """A Stonewall as Samourai's wallet makes it. Two disjoint sets of confirmed coins each
        cover the amount and half the fee (the fee is made even, and each change pays exactly
        half): the first set pays the payee, the second a decoy of the same amount to a fresh
        address, and each set gets its change to a fresh address (none below `STONEWALL_DUST`;
        the sets are drawn so that a change is far above it). Inputs and outputs in BIP 69
        order, version 2, nLockTime at the tip, the payer's nSequence for its RBF choice. In a
        Stonewall X2 the collaborator's wallet funds the second set and takes the decoy and its
        change; each signs its own inputs. A collaborator without a large enough set makes it a
        solo Stonewall, and a payer without two sets (one, in an X2) an ordinary payment."""
        payer = self.core(action.payer)
        p = self.profiles[payer]
        if action.purpose == "deposit":
            address = self.deposit_address(payer)
        else:
            address = self.receive_address(action.payee)
        self.node.rpc("syncwithvalidationinterfacequeue")  # this step's spends are known

        def coins_of(wallet: str) -> list[dict[str, Any]]:
            coins = sorted((c for c in self.unspent(wallet) if c.get("spendable")),
                           key=lambda c: (str(c["txid"]), int(c["vout"])))
            random.Random(f"{wallet}/{address}").shuffle(coins)
            return coins

        mine = coins_of(payer)
        first = self._stonewall_set(mine, action.amount, p.fee_rate)
        second = partner = None
        if first is not None and action.collaborator is not None:
            partner = self.core(action.collaborator)
            second = self._stonewall_set(coins_of(partner), action.amount, p.fee_rate)
            if second is None:
                partner = None
        if first is not None and second is None:
            rest = [c for c in mine if c not in first]
            second = self._stonewall_set(rest, action.amount, p.fee_rate)
        if first is None or second is None:
            txid = self.send(payer, address, action.amount, False)
            self.facts.stonewall_fallbacks.append(txid)
            return
        other = partner or payer
        payees = [(address, action.amount, None), (self.new_address(other, "bech32"),
                                                   action.amount, None)]
        vsize = 11 + 4 * P2WPKH_OUTPUT_VB + sum(_coin_vb(c) for c in first + second)
        fee = p.fee_rate * vsize
        fee += fee % 2  # Samourai's wallet makes the fee even: each set pays exactly half
        for coins, owner in ((first, payer), (second, other)):
            change = sum(to_sat(c["amount"]) for c in coins) - action.amount - fee // 2
            if change >= STONEWALL_DUST:
                payees.append((self.new_address(owner, "bech32"), change, None))
        scripts = {a: bytes.fromhex(str(self.node.rpc("validateaddress", a)["scriptPubKey"]))
                   for a, _, _ in payees}
        sequence = SEQUENCE_RBF if p.replaceable else SEQUENCE_LOCKTIME
        inputs = [{"txid": c["txid"], "vout": int(c["vout"]), "sequence": sequence}
                  for c in sorted(first + second, key=lambda c: (str(c["txid"]),
                                                                  int(c["vout"])))]
        outputs = [{a: ltc(v)} for a, v, _ in sorted(payees,
                                                     key=lambda o: (o[1], scripts[o[0]]))]
        tip = int(self.node.rpc("getblockcount"))
        psbt = self.node.rpc("createpsbt", inputs, outputs, tip)
        txid = self.finish_psbt(psbt, [payer] if partner is None else [payer, partner])
        self.facts.stonewalls[txid] = (payer, partner)
        if action.collaborator is not None and partner is None:
            self.facts.stonewall_solo_fallbacks.append(txid)

    def withdrawals(self, action: WithdrawalBatch) -> None:
        addresses = []
        for item in action.items:
            fresh = item.coin is not None or self.profiles[item.customer].role in (
                Role.WASABI_USER, Role.WHIRLPOOL_USER)
            addresses.append(self.new_address(item.customer, "bech32") if fresh
                             else self.receive_address(item.customer))
        amounts = {a: ltc(i.amount) for a, i in zip(addresses, action.items, strict=True)}
        assert len(amounts) == len(action.items), "a batch pays one address twice"
        txid = self.sendmany("exchange", amounts)
        if len(action.items) > 1:
            self.facts.batched_payments[txid] = "exchange_withdrawal"
        paid = {a: (n, v) for n, a, v in self.outputs(txid) if a is not None}
        for item, address in zip(action.items, addresses, strict=True):
            if item.coin is not None:
                n, value = paid[address]
                self.coins[item.coin] = (txid, n, value)
                self.lock(item.customer, [item.coin])

    def sendmany(self, wallet: str, amounts: dict[str, str]) -> str:
        p = self.profiles[wallet]
        return self.sent(str(self.w(self.core(wallet), "sendmany", "", amounts, None, "", [],
                                    p.replaceable, None, "unset", p.fee_rate)))

    def payroll(self, action: Payroll) -> None:
        amounts = {self.receive_address(u): ltc(a) for u, a in action.items}
        assert len(amounts) == len(action.items)
        txid = self.sendmany(action.employer, amounts)
        if len(action.items) > 1:
            self.facts.batched_payments[txid] = "payroll"

    def sweep(self) -> None:
        deposits = sorted(set(self.facts.exchange_deposits.values()))
        coins = self.unspent("exchange", deposits)
        assert coins, "the plan sweeps, but no confirmed deposit is waiting"
        total = sum(to_sat(c["amount"]) for c in coins)
        inputs = [{"txid": c["txid"], "vout": c["vout"]} for c in coins]
        self.fund_and_send("exchange", inputs, [{self.facts.hot_address: ltc(total)}],
                           subtract_fee=True)

    def cash_out(self, action: CashOut) -> None:
        coins = self.unspent(action.wallet)
        assert coins, f"{action.wallet} has nothing confirmed to cash out"
        total = sum(to_sat(c["amount"]) for c in coins)
        inputs = [{"txid": c["txid"], "vout": c["vout"]} for c in coins]
        self.fund_and_send(action.wallet, inputs,
                           [{self.deposit_address(action.wallet): ltc(total)}],
                           subtract_fee=True)

    def tx0(self, action: Tx0) -> None:
        premix = [self.new_address(action.wallet, "bech32") for _ in action.coins]
        fee_address = self.new_address("whirlpool-coordinator", "bech32")
        outputs: list[dict[str, str]] = [{a: ltc(action.premix_value)} for a in premix]
        outputs += [{fee_address: ltc(action.pool_fee)}, {"data": action.op_return}]
        p = self.profiles[action.wallet]
        funded = self.w(self.core(action.wallet), "walletcreatefundedpsbt", [], outputs, 0,
                        {"fee_rate": p.fee_rate, "change_type": "bech32",
                         "replaceable": p.replaceable})
        txid = self.finish_psbt(funded["psbt"], [action.wallet])
        self.facts.tx0s.append(txid)
        paid = {a: (n, v) for n, a, v in self.outputs(txid) if a is not None}
        for coin, address in zip(action.coins, premix, strict=True):
            n, value = paid[address]
            self.coins[coin] = (txid, n, value)
        self.lock(action.wallet, action.coins)

    def coinjoin(self, action: CoinJoinRound) -> None:
        inputs = []
        for i in action.inputs:
            txid, n, value = self.coins[i.coin]
            assert value == i.value, f"{i.coin}: planned {i.value}, on chain {value}"
            inputs.append({"txid": txid, "vout": n})
        addresses = []
        for o in action.outputs:
            if o.coin is None:
                addresses.append(self.receive_address(o.wallet))  # the coordinator's
            else:
                addresses.append(self.new_address(o.wallet, "bech32"))
        outputs = [{a: ltc(o.value)} for a, o in zip(addresses, action.outputs, strict=True)]
        psbt = self.node.rpc("createpsbt", inputs, outputs, 0, False)
        signers = list(dict.fromkeys(i.wallet for i in action.inputs))
        for wallet in signers:  # a participant's coins leave its locked set as it signs
            self.lock(wallet, [i.coin for i in action.inputs if i.wallet == wallet], unlock=True)
        txid = self.finish_psbt(psbt, signers)
        for n, o in enumerate(action.outputs):
            if o.coin is not None:
                self.coins[o.coin] = (txid, n, o.value)
                self.lock(o.wallet, [o.coin])
        self.facts.coinjoins.append(RoundFact(
            txid, action.kind, action.label, len(inputs), len(outputs), tuple(signers)))

    def consolidate(self, action: Consolidate) -> None:
        coins = self.unspent(action.wallet)
        total = sum(to_sat(c["amount"]) for c in coins)
        address = self.new_address(action.wallet, "bech32")
        inputs = [{"txid": c["txid"], "vout": c["vout"]} for c in coins]
        txid = self.fund_and_send(action.wallet, inputs, [{address: ltc(total)}],
                                  subtract_fee=True)
        n, value = self.vout_of(txid, address)
        self.coins[action.coin] = (txid, n, value)
        self.facts.consolidation_txid = txid
        self.facts.consolidation_address = address

    def peel(self, action: Peel) -> None:
        txid, n, value = self.coins[action.source]
        deposit = self.deposit_address(action.account)
        source = [{"txid": txid, "vout": n}]
        if action.amount is None:
            peel = self.fund_and_send(action.wallet, source, [{deposit: ltc(value)}],
                                      subtract_fee=True)
        else:
            peel = self.fund_and_send(action.wallet, source, [{deposit: ltc(action.amount)}],
                                      subtract_fee=False)
            change = [(k, v) for k, a, v in self.outputs(peel) if a != deposit]
            assert len(change) == 1 and action.change is not None, "a peel without change"
            self.coins[action.change] = (peel, change[0][0], change[0][1])
        self.facts.peel_txids.append(peel)
        if deposit not in self.facts.peel_deposit_addresses:
            self.facts.peel_deposit_addresses.append(deposit)

    def release(self) -> None:
        """Unlock every coin the plan tracked (used once mixing is over)."""
        by_wallet: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for wallet in self.profiles:
            for locked in self.w(wallet, "listlockunspent"):
                by_wallet[wallet].append(locked)
        for wallet, outpoints in by_wallet.items():
            self.w(wallet, "lockunspent", True, outpoints)

    # -- ground truth ---------------------------------------------------------------------

    def chain_addresses(self) -> list[str]:
        """Every address an output of the active chain pays, in order of first appearance."""
        node = self.node
        height = int(node.rpc("getblockcount"))
        hashes = node.batch([("getblockhash", [h]) for h in range(height + 1)])
        seen: dict[str, None] = {}
        for start in range(0, len(hashes), 50):
            for block in node.batch([("getblock", [h, 2]) for h in hashes[start:start + 50]]):
                for tx in block["tx"]:
                    for vout in tx["vout"]:
                        address = _out_address(vout)
                        if address is not None:
                            seen.setdefault(address)
        return list(seen)

    def ground_truth(self) -> dict[str, str]:
        """address -> the wallet whose ``getaddressinfo`` says ``ismine``. Addresses the
        scenario asked a wallet for are confirmed in that wallet; every other address (change,
        the peg-in's) is asked of every wallet, and must be owned by at most one."""
        owners: dict[str, str] = {}
        addresses = self.chain_addresses()
        by_wallet: dict[str, list[str]] = defaultdict(list)
        for a in addresses:
            if a in self.issued:
                by_wallet[self.issued[a]].append(a)
        for wallet, mine in by_wallet.items():
            infos = self.node.batch([("getaddressinfo", [a]) for a in mine], wallet=wallet)
            for a, info in zip(mine, infos, strict=True):
                assert info["ismine"], f"{wallet} handed out {a} but does not own it"
                owners[a] = wallet
        unknown = [a for a in addresses if a not in owners]
        for wallet in self.profiles:
            infos = self.node.batch([("getaddressinfo", [a]) for a in unknown], wallet=wallet)
            for a, info in zip(unknown, infos, strict=True):
                if info["ismine"]:
                    assert a not in owners, f"{a} is owned by {owners.get(a)} and {wallet}"
                    owners[a] = wallet
        return owners


def build_scenario(node: LitecoindNode, seed: int, scale: int = 1, *,
                   light_share: float = LIGHT_SHARE,
                   hardware_share: float = HARDWARE_SHARE,
                   payjoin_share: float = 0.0,
                   stonewall_share: float = 0.0) -> ScenarioFacts:
    """Act out `plan_scenario(seed, scale, light_share=..., hardware_share=...,
    payjoin_share=..., stonewall_share=...)` on `node` (a fresh regtest node, ideally started
    with `NODE_ARGS`) and return what happened with the ground truth."""
    started = time.perf_counter()
    plan = plan_scenario(seed, scale, light_share=light_share, hardware_share=hardware_share,
                         payjoin_share=payjoin_share, stonewall_share=stonewall_share)
    actor = _Actor(node, plan)
    loaded = set(node.rpc("listwallets"))
    for p in plan.profiles:
        if p.wallet in loaded:
            raise AssertionError(f"the node already has a wallet {p.wallet!r}")
        node.rpc("createwallet", p.wallet)
    facts = actor.facts
    facts.start_height = int(node.rpc("getblockcount"))
    if facts.start_height != 0:
        raise AssertionError("build_scenario needs a fresh regtest node (no blocks yet)")
    facts.hot_address = actor.new_address("exchange", "bech32")
    node.mine(plan.initial_blocks, actor.receive_address("miner"))
    for k, actions in enumerate(plan.steps):
        for action in actions:
            try:
                actor.act(action)
            except RpcError as exc:
                raise AssertionError(f"step {k}: {repr(action)[:300]} failed: {exc}") from exc
        actor.mine()
    facts.tip_height = int(node.rpc("getblockcount"))
    for fact in facts.coinjoins:
        fact.height = facts.tx_heights[fact.txid]
    facts.transactions = len(facts.tx_heights)
    facts.owners = actor.ground_truth()
    facts.seconds = time.perf_counter() - started
    return facts


# -- scoring partitions independently of cointrail, and the ceiling of what can be linked ------


@dataclass(frozen=True)
class PairScores:
    """Pairwise precision and recall of a partition against the ground truth."""

    addresses: int
    clusters: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def pair_scores(cluster_of: Mapping[str, object], owners: Mapping[str, str]) -> PairScores:
    """Score a partition (address -> cluster key) over the addresses it shares with `owners`,
    counting pairs per cluster, owner and (cluster, owner) cell with Counters — written apart
    from cointrail's `evaluate` so each checks the other."""
    common = [a for a in cluster_of if a in owners]

    def pairs(counts: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    clusters = Counter(cluster_of[a] for a in common)
    return PairScores(
        addresses=len(common),
        clusters=len(clusters),
        true_pairs=pairs(Counter(owners[a] for a in common)),
        predicted_pairs=pairs(clusters),
        correct_pairs=pairs(Counter((cluster_of[a], owners[a]) for a in common)),
    )


def oracle_partitions(con: Any, facts: ScenarioFacts) -> dict[str, dict[str, int]]:
    """Two ceilings over a store's transactions (`con`: its DuckDB connection), from the ground
    truth rather than heuristics:

    * ``inputs``: the input addresses of every transaction that is not one of the scenario's
      CoinJoins, PayJoins or Stonewall X2s joined — common-input ownership with a perfect
      CoinJoin (and PayJoin, and X2) detector;
    * ``inputs+self``: also every output address owned by the owner of the transaction's first
      input — perfect change detection, self-transfers included: the most that any heuristic
      looking at one transaction's inputs and outputs could join;
    * ``inputs+change2``: as ``inputs+self`` but only in transactions with exactly two outputs
      (cointrail's `ChangeLinker` scope by default) — a perfect change detector there.

    Returns address text -> cluster key for every address of the store."""
    texts = dict(con.execute("SELECT addr_id, text FROM addresses").fetchall())
    joins = {bytes.fromhex(t)[::-1] for t in [f.txid for f in facts.coinjoins]
             + facts.multi_owner}
    skip = {int(t) for t, h in con.execute("SELECT tx_id, txid FROM txs").fetchall()
            if bytes(h) in joins}
    inputs: dict[int, list[int]] = defaultdict(list)
    for tx_id, addr in con.execute(
            "SELECT tx_id, addr_id FROM inputs WHERE addr_id IS NOT NULL ORDER BY tx_id, n"
    ).fetchall():
        inputs[int(tx_id)].append(int(addr))
    outputs: dict[int, list[int]] = defaultdict(list)
    for tx_id, addr in con.execute(
            "SELECT tx_id, addr_id FROM outputs WHERE addr_id IS NOT NULL").fetchall():
        outputs[int(tx_id)].append(int(addr))
    n_out = dict(con.execute("SELECT tx_id, count(*) FROM outputs WHERE script_type <> ?"
                             " GROUP BY tx_id", [ScriptType.NULLDATA.code]).fetchall())
    owner = {a: facts.owners.get(t) for a, t in texts.items()}
    result = {}
    for name in ("inputs", "inputs+self", "inputs+change2"):
        parent = {a: a for a in texts}
        for tx_id, addrs in inputs.items():
            if tx_id in skip:
                continue
            members = list(addrs)
            if name == "inputs+self" or (name == "inputs+change2" and n_out[tx_id] == 2):
                members += [o for o in outputs[tx_id]
                            if owner[o] is not None and owner[o] == owner[addrs[0]]]
            root = _find(parent, members[0])
            for a in members[1:]:
                parent[_find(parent, a)] = root
        result[name] = {texts[a]: _find(parent, a) for a in texts}
    return result


def _find(parent: dict[int, int], a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


__all__ = [
    "HARDWARE_SHARE",
    "LIGHT_MIN_CHANGE",
    "LIGHT_SHARE",
    "NODE_ARGS",
    "SOFTWARE",
    "WHIRLPOOL_POOLS",
    "PairScores",
    "PayJoin",
    "Plan",
    "Profile",
    "Role",
    "RoundFact",
    "ScenarioFacts",
    "build_scenario",
    "light_split",
    "light_vsize",
    "ltc",
    "oracle_partitions",
    "pair_scores",
    "plan_scenario",
    "standard_denominations",
]
