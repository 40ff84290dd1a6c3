"""Clustering runs over the store: incremental, reproducible as of any height, explainable.

Invariants:
- The clustering is a function of the chain and the configuration only. Links are computed
  transaction by transaction in chain order from what was known at that transaction (its
  inputs, its outputs, addresses first seen before it), applied in that order, and stored
  (`cluster_links`). Replaying the stored links with ``height <= H`` gives exactly the
  clustering as of block H.
- The change linker's second look (when its heuristics read spenders: `WalletFingerprint`): a
  transaction T it did not link at T's height, with 2..max_outputs candidate outputs, is
  decided once more right after the transaction S that spends the last of those outputs, with
  the spenders up to S. A link it makes then is dated at S's height (with T as its
  transaction), so it too rests only on blocks up to its own height. Each T is looked at again
  exactly once, in whichever range holds S, so range and run boundaries change nothing.
- A cluster's id is its oldest address's id (the smallest `addr_id`). A merge keeps the older
  id and is recorded in `cluster_merges` (younger → older), so an id once reported stays valid:
  it either names the cluster or redirects to the one it joined.
- Each run is recorded in `cluster_runs` with the heuristics' names, versions and parameters and
  the block hash it ends on; a different configuration starts again from genesis.
- Rows are committed block range by block range together with the clustered height, so a crash
  leaves a consistent clustering; a store rollback (reorg) drops the clustering above the fork.

Account-model chains (Ethereum) have no inputs to co-spend: there the run applies the
deposit-address reuse heuristic (deposit.py) instead, into the same tables. Each account run
recomputes its links from genesis (a later sweep can reveal an earlier deposit address) and
replaces the stored ones in one transaction; every link is dated by the transaction that
completed its evidence, so replay, `--as-of`, stable ids and `explain` work unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cointrail import __version__
from cointrail.analysis.clustering import deposit as deposit_reuse
from cointrail.analysis.clustering.batches import BatchChange, BatchEvidence
from cointrail.analysis.clustering.deposits import DepositAddresses, DepositEvidence
from cointrail.analysis.clustering.heuristics import (
    CHANGE_HEURISTICS,
    ChangeLinker,
    ClusterLink,
    Heuristic,
    MultiInput,
    Tx0Outputs,
    TxContext,
    describe_run,
)
from cointrail.analysis.clustering.names import (
    DEFAULT_GUARD_SIZE,
    HEURISTIC_NAMES,
    heuristic_names,
)
from cointrail.analysis.clustering.unionfind import UnionFind
from cointrail.analysis.patterns.coinjoin import CoinJoinDetector, CoinJoinKind
from cointrail.analysis.txview import TxView, iter_tx_views, tx_views_spent_until
from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.hashes import Txid
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import InputError, NotFoundError, Problem, StoreError, ValidationError
from cointrail.inputfiles import read_text_file
from cointrail.store.duck import ChainStore
from cointrail.store.schema import (
    CLUSTER_HELD,
    CLUSTER_LINKS,
    CLUSTER_MERGES,
    CLUSTER_RUNS,
    CLUSTER_TABLES,
    LINK_EVIDENCE,
    TX_LABELS,
    Table,
)
from cointrail.textvalues import yes_no

#: Heuristic sets a run can be configured with, by name (names.HEURISTIC_NAMES, in order).
HEURISTICS: dict[str, Callable[[], Heuristic]] = {
    MultiInput.name: MultiInput,
    ChangeLinker.name: ChangeLinker,
    DepositAddresses.name: DepositAddresses,
    BatchChange.name: BatchChange,
    Tx0Outputs.name: Tx0Outputs,
}
assert tuple(HEURISTICS) == HEURISTIC_NAMES
#: Links from these heuristics are strong: the supercluster guard never holds them back.
STRONG = frozenset({MultiInput.name})
#: the `tx_labels` label of a transaction the run's configuration declares multi-owner
MULTI_OWNER_LABEL = "multi_owner"
#: Heuristics for account-model chains (Ethereum); the UTXO ones above do not apply there.
ACCOUNT_HEURISTICS: tuple[str, ...] = (deposit_reuse.HEURISTIC,)
DEPOSIT_CITATION = ("F. Victor, Address clustering heuristics for Ethereum, Financial "
                    "Cryptography and Data Security 2020, section 4.1")
RANGE_TXS = 50_000  # transactions per committed range (whole blocks)
#: a parameter a run gives a UTXO heuristic: (heuristic, parameter, value)
Setting = tuple[str, str, Any]
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def settable_params(name: str) -> dict[str, Any]:
    """The parameters of the UTXO heuristic `name` that a run may set, with their defaults:
    its dataclass fields with a scalar default (numbers, flags, names, enums) or a tuple of
    names (given as a comma-separated list). The change linker also takes its change
    heuristics' parameters as ``HEURISTIC.PARAMETER`` (``wallet_fingerprint.min_low_r``)."""
    kind = HEURISTICS.get(name)
    if not isinstance(kind, type) or not dataclasses.is_dataclass(kind):
        return {}
    own = _scalar_fields(kind)
    if kind is ChangeLinker:
        for sub in CHANGE_HEURISTICS:
            own |= {f"{sub.name}.{k}": v for k, v in _scalar_fields(sub).items()}
    return own


def _scalar_fields(kind: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(kind)
            if f.init and (isinstance(f.default, bool | int | float | str | Enum)
                           or _is_names(f.default))}


def build_heuristic(name: str, params: Mapping[str, Any]) -> Heuristic:
    """The UTXO heuristic `name` with `params` (`settable_params` names; the rest defaults)."""
    own = {k: v for k, v in params.items() if "." not in k}
    if HEURISTICS[name] is ChangeLinker:
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            if "." in key:
                sub, _, param = key.partition(".")
                nested.setdefault(sub, {})[param] = value
        if nested:
            own["heuristics"] = tuple(kind(**nested.get(kind.name, {}))
                                      for kind in CHANGE_HEURISTICS)
    return HEURISTICS[name](**own)


#: each change heuristic's parameters at their defaults, as a run record holds them
_DEFAULT_CHANGE_PARAMS: dict[str, dict[str, Any]] = {
    kind.name: kind().params() for kind in CHANGE_HEURISTICS}


def read_multi_owner(path: str | Path) -> tuple[tuple[str, ...], str]:
    """The txids a multi-owner declaration file lists, and where they came from (the file's
    name and SHA-256, recorded with the run). One txid per line, as the node prints it; the
    rest of a line after the txid is a note for people (``# ...`` lines and blank lines are
    skipped). Raises ValidationError naming every malformed line (``file:line: problem``) and
    InputError when the file cannot be read or lists no transaction."""
    source = str(path)
    text, data = read_text_file(path, "multi-owner", "a file of txids")
    txids: list[str] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(None, 1)
        if not fields or fields[0].startswith("#"):
            continue
        try:
            txids.append(Txid.from_rpc_hex(fields[0].rstrip(",")).rpc_hex)
        except InputError as exc:
            problems.append(Problem(source, number, str(exc)))
    if problems:
        raise ValidationError(f"{len(problems)} malformed multi-owner line(s)", problems)
    if not txids:
        raise InputError(f"multi-owner file {source!r} lists no transaction; one txid per line")
    digest = hashlib.sha256(data).hexdigest()
    return tuple(txids), f"{Path(path).name} (sha256 {digest})"


def _is_names(value: Any) -> bool:
    """Whether a default is a tuple of names (`ChangeLinker.decisive`)."""
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def parse_heuristic_params(texts: Sequence[str]) -> tuple[Setting, ...]:
    """``HEURISTIC.PARAMETER=VALUE`` texts (``cointrail cluster --param``) as typed settings,
    checked against the heuristic's parameters; InputError says what is wrong."""
    settings: list[Setting] = []
    for text in texts:
        key, eq, raw = text.partition("=")
        name, dot, param = key.strip().partition(".")  # param may be SUB.PARAMETER (change)
        if not eq or not dot or not name or not param:
            raise InputError(f"--param {text!r}: write HEURISTIC.PARAMETER=VALUE, e.g. "
                             "deposit_address.max_blocks=288")
        if name not in HEURISTICS:
            raise InputError(f"--param {text!r}: no UTXO heuristic {name!r}; choose from "
                             f"{', '.join(HEURISTICS)}")
        settable = settable_params(name)
        if param not in settable:
            raise InputError(f"--param {text!r}: {name} has no settable parameter {param!r}; "
                             f"it takes {', '.join(sorted(settable)) or 'none'}")
        settings.append((name, param, _typed(text, settable[param], raw.strip())))
    return tuple(settings)


def _typed(text: str, default: Any, raw: str) -> Any:
    """`raw` as a value of `default`'s type."""
    if _is_names(default):
        return tuple(n.strip() for n in raw.split(",") if n.strip())
    try:
        if isinstance(default, bool):
            answer = yes_no(raw, _TRUE, _FALSE)
            if answer is None:
                raise ValueError(raw)
            return answer
        return type(default)(raw)  # int, float, str, or an enum by its value
    except ValueError:
        expected = (f"one of {', '.join(str(e.value) for e in type(default))}"
                    if isinstance(default, Enum) else
                    "true or false" if isinstance(default, bool) else
                    f"a{'n' if isinstance(default, int) else ''} {type(default).__name__}")
        raise InputError(f"--param {text!r}: {raw!r} is not {expected}") from None

# The change linker's second look: the transactions T whose last spent candidate output
# (not OP_RETURN) is spent inside the range $1..$2 (tx ids), with that last spender S and its
# txid, in the order they are looked at (after S, T by T). A T qualifies when it has 2..$5
# candidates and every one is spent by the range's end: those spent inside the range plus
# those spent before it ($3 = the oldest T it may be, $4 = OP_RETURN's script type code), and
# S comes at most $6 blocks after T (`ChangeLinker.second_look_blocks`). $3 is the first
# transaction of the block $6 blocks before the range, so the look-back stays bounded.
_SECOND_LOOK_SQL = """
    WITH spends AS (
        SELECT prev_tx_id AS t, prev_n AS n, tx_id AS s FROM inputs WHERE tx_id BETWEEN $1 AND $2
    ), touched AS (
        SELECT t, count(DISTINCT n) AS n_here, max(s) AS s_last FROM spends GROUP BY t
    ), cand AS (
        SELECT o.tx_id AS t, count(*) AS n_cand FROM outputs o
        WHERE o.tx_id BETWEEN $3 AND $2 AND o.tx_id IN (SELECT t FROM touched)
          AND o.script_type <> $4
        GROUP BY o.tx_id HAVING count(*) BETWEEN 2 AND $5
    ), rest AS (
        SELECT c.t FROM cand c JOIN touched u USING (t) WHERE u.n_here < c.n_cand
    ), earlier AS (
        SELECT prev_tx_id AS t, count(*) AS n_before FROM inputs
        WHERE tx_id BETWEEN $3 AND $1 - 1 AND prev_tx_id IN (SELECT t FROM rest)
        GROUP BY prev_tx_id
    )
    SELECT c.t, u.s_last, s.txid FROM cand c JOIN touched u USING (t)
    LEFT JOIN earlier e USING (t)
    JOIN txs x ON x.tx_id = c.t JOIN txs s ON s.tx_id = u.s_last
    WHERE NOT x.is_coinbase AND u.n_here + coalesce(e.n_before, 0) = c.n_cand
      AND x.height >= s.height - $6
    ORDER BY u.s_last, c.t
"""


@dataclass(frozen=True)
class ClusterConfig:
    """Which heuristics run and with which parameters; recorded with every run."""

    heuristics: tuple[str, ...] = (MultiInput.name,)
    coinjoin_detection: bool = True
    guard_size: int = DEFAULT_GUARD_SIZE
    #: account chains (deposit_reuse): its parameters, and the named hot wallets (lower-case
    #: addresses; none: found by `deposit.min_deposit_addresses`) with where they came from
    deposit: deposit_reuse.DepositParams = field(default_factory=deposit_reuse.DepositParams)
    hot_wallets: tuple[str, ...] = ()
    hot_wallets_from: str = ""
    #: parameters given to UTXO heuristics, (heuristic, parameter, value); the rest keep their
    #: defaults (`parse_heuristic_params` reads them from ``--param`` texts)
    params: tuple[Setting, ...] = ()
    #: UTXO chains: transactions an analyst declares to have several owners (a PayJoin, a
    #: CoinJoin the detectors miss, a shared spend; txids as the node prints them), with where
    #: the declaration came from. No heuristic reads them as one owner's: no multi-input or
    #: change link is made at them, as at a CoinJoin (`MULTI_OWNER_LABEL` marks them).
    multi_owner: tuple[str, ...] = ()
    multi_owner_from: str = ""

    def __post_init__(self) -> None:
        try:
            declared = {Txid.from_rpc_hex(t).rpc_hex for t in self.multi_owner}
        except InputError as exc:
            raise InputError(f"{exc} (not a transaction id as the node prints it); check the "
                             "multi-owner declarations") from None
        object.__setattr__(self, "multi_owner", tuple(sorted(declared)))
        if self.multi_owner and self.is_account:
            raise InputError("multi-owner transactions apply to UTXO chains; account chains "
                             "link by deposit-address reuse, not by transaction")
        twice = sorted({h for h in self.heuristics if self.heuristics.count(h) > 1})
        if twice:
            raise InputError(f"heuristic(s) {', '.join(twice)} named more than once in "
                             "--heuristics; name each once")
        # one order whatever order they were named in: the same set is the same configuration
        order = (*HEURISTICS, *ACCOUNT_HEURISTICS)
        object.__setattr__(self, "heuristics", tuple(sorted(
            self.heuristics, key=lambda h: order.index(h) if h in order else len(order))))
        unknown = [h for h in self.heuristics if h not in (*HEURISTICS, *ACCOUNT_HEURISTICS)]
        if unknown or not self.heuristics:
            raise InputError(
                f"unknown clustering heuristic(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(HEURISTICS)} (UTXO chains) or "
                f"{', '.join(ACCOUNT_HEURISTICS)} (account chains such as Ethereum)"
            )
        if self.is_account and set(self.heuristics) - set(ACCOUNT_HEURISTICS):
            raise InputError(
                f"{', '.join(ACCOUNT_HEURISTICS)} (account chains) cannot run together with "
                f"{', '.join(HEURISTICS)} (UTXO chains): a store is one or the other"
            )
        if self.guard_size < 0:
            raise InputError("the supercluster guard size must be 0 (off) or positive")
        for name, param, value in self.params:
            settable = settable_params(name)
            if name not in self.heuristics:
                raise InputError(f"a parameter for {name} ({name}.{param}), which this run "
                                 f"does not use; add it to --heuristics or drop the parameter")
            if param not in settable or type(value) is not type(settable[param]):
                raise InputError(f"{name}.{param}={value!r} is not a parameter {name} takes; "
                                 f"it takes {', '.join(sorted(settable)) or 'none'}")

    @property
    def is_account(self) -> bool:
        """True for the account-model heuristics (deposit_reuse)."""
        return any(h in ACCOUNT_HEURISTICS for h in self.heuristics)


    def build(self) -> tuple[list[Heuristic], CoinJoinDetector | None]:
        if self.is_account:
            return [], None
        given: dict[str, dict[str, Any]] = {}
        for name, param, value in self.params:
            given.setdefault(name, {})[param] = value
        return [build_heuristic(h, given.get(h, {})) for h in self.heuristics], (
            CoinJoinDetector() if self.coinjoin_detection else None
        )

    def describe(self) -> dict[str, Any]:
        if self.is_account:
            return {
                "model": "account",
                "heuristics": [{
                    "name": deposit_reuse.HEURISTIC, "version": deposit_reuse.VERSION,
                    "cites": DEPOSIT_CITATION,
                    "parameters": self.deposit.to_dict() | {
                        "hot_wallets": sorted(self.hot_wallets),
                        "hot_wallets_from": self.hot_wallets_from
                        or ("named" if self.hot_wallets else "found by min_deposit_addresses"),
                    },
                }],
                "coinjoin_detector": None,
                "supercluster_guard": {"min_cluster_size": self.guard_size,
                                       "applies_to_weak_links": list(ACCOUNT_HEURISTICS)},
            }
        heuristics, detector = self.build()
        doc = describe_run(heuristics, detector) | {
            "supercluster_guard": {"min_cluster_size": self.guard_size, "applies_to_weak_links":
                                   sorted(set(self.heuristics) - STRONG)},
        }
        if self.multi_owner:  # absent otherwise: earlier runs keep their digests
            doc["multi_owner_transactions"] = {
                "txids": list(self.multi_owner),
                "from": self.multi_owner_from or "named",
                "effect": "no heuristic reads these transactions as one owner's"}
        return doc

    def digest(self) -> str:
        canonical = json.dumps(self.describe(), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    @classmethod
    def from_description(cls, doc: dict[str, Any]) -> ClusterConfig | None:
        """The UTXO configuration a run recorded (`describe`), or None when this version
        cannot build it again (another model, or a heuristic it no longer knows)."""
        base = cls.at_current_versions(doc)
        if base is None:
            return None
        try:
            params: list[Setting] = []
            for h in doc["heuristics"]:
                name = h["name"]
                settable = settable_params(name)
                recorded = dict(h.get("params") or {})
                for sub in recorded.pop("heuristics", None) or []:
                    if isinstance(sub, dict):  # the change linker's change heuristics: those
                        default = _DEFAULT_CHANGE_PARAMS.get(sub["name"], {})
                        recorded |= {  # set otherwise than by default
                            key: v for k, v in (sub.get("params") or {}).items()
                            if (key := f"{sub['name']}.{k}") in settable
                            and v != default.get(k)}
                for key, value in recorded.items():
                    if key in settable:
                        text = (str(value).lower() if isinstance(value, bool) else
                                ",".join(value) if isinstance(value, list) else str(value))
                        params.append((name, key, _typed(f"{name}.{key}", settable[key], text)))
            return dataclasses.replace(base, params=tuple(params))
        except (KeyError, TypeError, ValueError, InputError):
            return None

    @classmethod
    def at_current_versions(cls, doc: dict[str, Any]) -> ClusterConfig | None:
        """The recorded UTXO configuration's heuristics at this version's code, with their
        default parameters and the recorded CoinJoin detection and guard: what a stored
        clustering becomes after an upgrade changed a heuristic's version (`from_description`
        then no longer reproduces its digest). None when it names a heuristic this version
        does not know, or is an account-chain configuration."""
        try:
            if doc.get("model") == "account":
                return None
            declared = doc.get("multi_owner_transactions") or {}
            return cls(heuristics=tuple(str(h["name"]) for h in doc["heuristics"]),
                       coinjoin_detection=doc.get("coinjoin_detector") is not None,
                       guard_size=int(doc["supercluster_guard"]["min_cluster_size"]),
                       multi_owner=tuple(str(t) for t in declared.get("txids", ())),
                       multi_owner_from=str(declared.get("from", "")))
        except (KeyError, TypeError, ValueError, InputError):
            return None

    def names(self) -> str:
        """The heuristics with their versions, for people: ``multi_input v1, change v3``."""
        return heuristic_names(self.describe())


def stored_config(store: ChainStore) -> tuple[dict[str, Any], str] | None:
    """The configuration (as recorded, `ClusterConfig.describe`) and digest of the store's
    current clustering: its latest run with the digest the store holds; None without one."""
    digest = store.state().get("cluster_config_hash")
    if digest is None:
        return None
    rows = store.query("SELECT config FROM cluster_runs WHERE config_hash = ?"
                       " ORDER BY run_id DESC LIMIT 1", [digest])
    return (json.loads(str(rows[0][0])), digest) if rows else None


@dataclass
class RunResult:
    run_id: int
    from_height: int
    to_height: int
    block_hash: str
    links: int
    merges: int
    held: int
    coinjoins: int
    clusters: int
    addresses: int
    seconds: float
    restarted: bool
    config: dict[str, Any] = field(default_factory=dict)
    declared: int = 0  # multi-owner transactions met in this run (no link made at them)


class _Rows:
    """Row buffers for the clustering tables of one committed range."""

    def __init__(self) -> None:
        self.data: dict[Table, list[tuple[Any, ...]]] = {t: [] for t in CLUSTER_TABLES}

    def add(self, table: Table, *row: Any) -> None:
        self.data[table].append(row)

    def to_arrow(self) -> dict[Table, pa.Table]:
        out = {}
        for table, rows in self.data.items():
            schema = table.arrow_schema()
            columns: list[list[Any]] = (
                [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in schema]
            )
            out[table] = pa.table(
                [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                schema=schema,
            )
        return out


def _state_int(store: ChainStore, key: str, default: int) -> int:
    value = store.state().get(key)
    return default if value is None else int(value)


def _address_count(store: ChainStore, height: int) -> int:
    """Addresses first seen at or below `height` (their ids are 0 .. count-1)."""
    row = store.query("SELECT count(*) FROM addresses WHERE first_height <= ?", [height])
    return int(row[0][0]) if row else 0


def replay(store: ChainStore, height: int) -> UnionFind:
    """The union-find of the stored links up to `height`, applied in chain order."""
    uf = UnionFind(_address_count(store, height))
    if height < 0:
        return uf
    links = store.con.execute(
        "SELECT addr_a, addr_b FROM cluster_links WHERE height <= ? ORDER BY tx_id, rowid",
        [height],
    ).fetchnumpy()
    if len(links["addr_a"]):
        uf.union_batch(links["addr_a"], links["addr_b"], record_merges=False)
    return uf


class Clusterer:
    """Builds or extends the clustering of one chain's store."""

    def __init__(self, store: ChainStore, config: ClusterConfig | None = None) -> None:
        self.store = store
        self.config = config or ClusterConfig()
        self._declared: dict[int, str] = {}
        self._spent_by_declared: set[int] = set()  # txs whose outputs they spend
        self._build()

    def _declared_tx_ids(self) -> dict[int, str]:
        """tx_id -> txid of the configuration's multi-owner transactions; InputError naming
        any the store does not hold."""
        if not self.config.multi_owner:
            return {}
        rows = self.store.query(
            "SELECT tx_id, txid FROM txs WHERE txid IN (SELECT unnest(?::BLOB[]))",
            [[bytes(Txid.from_rpc_hex(t)) for t in self.config.multi_owner]])
        found = {int(t): Txid(bytes(h)).rpc_hex for t, h in rows}
        missing = sorted(set(self.config.multi_owner) - set(found.values()))
        if missing:
            raise InputError(
                f"multi-owner transaction {missing[0]} is not in the {self.store.spec.key} "
                "store; check the txid and the chain, or sync the block that holds it first")
        return found

    def _build(self) -> None:
        """Fresh heuristics; every run starts from these (stateful ones primed from the store)."""
        self.heuristics, self.detector = self.config.build()
        self._weak = np.zeros(0, dtype=np.bool_)
        self._change = next((h for h in self.heuristics if isinstance(h, ChangeLinker)), None)
        self._second_look = self._change is not None and self._change.second_look
        self._deposits = next(
            (h for h in self.heuristics if isinstance(h, DepositAddresses)), None)
        self._batches = next((h for h in self.heuristics if isinstance(h, BatchChange)), None)

    def run(
        self,
        to_height: int | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RunResult:
        """Cluster from where the last run stopped up to `to_height` (default: the tip)."""
        started = time.perf_counter()
        started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        store = self.store
        tip = store.tip()
        if tip is None:
            raise NotFoundError(f"the {store.spec.key} store holds no blocks; ingest first")
        target = tip.height if to_height is None else to_height
        if not 0 <= target <= tip.height:
            raise InputError(
                f"cannot cluster up to height {target}: the store holds 0..{tip.height}"
            )
        if store.spec.is_account_model != self.config.is_account:
            model = "an account" if store.spec.is_account_model else "a UTXO"
            fits = ACCOUNT_HEURISTICS if store.spec.is_account_model else tuple(HEURISTICS)
            raise InputError(
                f"{store.spec.key} is {model} chain: heuristic(s) "
                f"{', '.join(self.config.heuristics)} do not apply there; use "
                f"--heuristics {','.join(fits)}"
            )
        if self.config.is_account:
            return self._run_account(target, started, started_utc, on_progress)
        digest = self.config.digest()
        self._declared = self._declared_tx_ids()
        self._spent_by_declared = {int(t) for (t,) in self.store.query(
            "SELECT DISTINCT prev_tx_id FROM inputs WHERE tx_id IN (SELECT unnest(?::BIGINT[]))",
            [sorted(self._declared)])} if self._declared else set()
        restarted = False
        if store.state().get("cluster_config_hash") not in (None, digest):
            self._reset()
            restarted = True
        done = _state_int(store, "cluster_height", -1)
        if done > target:
            raise InputError(
                f"the clustering already reaches height {done}; to see it as of {target} use "
                "--as-of (runs only move forward)"
            )
        self._drop_above(done)
        uf = replay(store, done)
        self._build()  # fresh heuristics: the stateful ones are primed from the store below
        self._prime(done)
        self._weak = self._weak_addresses(done, len(uf))
        totals = {"links": 0, "merges": 0, "held": 0, "coinjoins": 0, "declared": 0}
        for lo_height, hi_height in self._ranges(done + 1, target):
            rows = self._cluster_range(uf, lo_height, hi_height, totals)
            with store.transaction():
                for table, data in rows.to_arrow().items():
                    if data.num_rows:
                        store.con.register("_rows", data)
                        cols = ", ".join(table.column_names)
                        store.con.execute(
                            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _rows"
                        )
                        store.con.unregister("_rows")
                self._set_state({"cluster_height": str(hi_height), "cluster_config_hash": digest})
            if on_progress:
                on_progress(hi_height, target)
        if done >= target and not restarted:
            self._set_state({"cluster_config_hash": digest})
        block_hash, cluster_ids, run_id, seconds = self._record_run(
            uf, done + 1, target, digest, started, started_utc, self.config,
            (totals["links"], totals["merges"], totals["held"], totals["coinjoins"]))
        return RunResult(
            run_id, done + 1, target, block_hash[::-1].hex(), totals["links"], totals["merges"],
            totals["held"], totals["coinjoins"], int(np.unique(cluster_ids).size),
            int(cluster_ids.size), seconds, restarted, self.config.describe(),
            totals["declared"],
        )

    def _run_account(
        self, target: int, started: float, started_utc: str,
        on_progress: Callable[[int, int], None] | None,
    ) -> RunResult:
        """The account-chain run: deposit-address reuse from genesis up to `target`, replacing
        the stored links in one transaction (see the module docstring)."""
        store, config = self.store, self.config
        digest = config.digest()
        restarted = store.state().get("cluster_config_hash") not in (None, digest)
        done = -1 if restarted else _state_int(store, "cluster_height", -1)
        if done > target:
            raise InputError(
                f"the clustering already reaches height {done}; to see it as of {target} use "
                "--as-of (runs only move forward)"
            )
        found = deposit_reuse.cluster_deposit_reuse(
            store, config.deposit, hot_wallets=config.hot_wallets, up_to_height=target)
        ids = {str(t): int(i) for i, t in store.query(
            "SELECT addr_id, text FROM addresses WHERE first_height <= ?", [target])}
        dated = sorted(((link.completed_by, link) for link in found.links
                        if link.completed_by is not None),
                       key=lambda x: (x[0].tx_id, ids[x[1].a], ids[x[1].b]))
        uf = UnionFind(_address_count(store, target))
        rows = _Rows()
        name = deposit_reuse.HEURISTIC
        held_n = merges_n = 0
        if dated:
            a = np.array([ids[link.a] for _, link in dated], dtype=np.int64)
            b = np.array([ids[link.b] for _, link in dated], dtype=np.int64)
            result = uf.union_batch(a, b, config.guard_size, None)
            held = {int(i) for i in result.held_link}
            for index, root_a, root_b, size_a, size_b in result.held.tolist():
                when, link = dated[index]
                rows.add(CLUSTER_HELD, when.height, when.tx_id, int(a[index]), int(b[index]),
                         name, root_a, root_b, size_a, size_b)
            for index, (when, link) in enumerate(dated):
                if index in held:
                    continue
                rows.add(CLUSTER_LINKS, when.height, when.tx_id, int(a[index]), int(b[index]),
                         name)
                rows.add(LINK_EVIDENCE, when.tx_id, name, json.dumps(
                    {"a": link.a, "b": link.b, "deposit_address": link.deposit_address,
                     "hot_wallet": link.hot_wallet,
                     "deposit_a": _evidence_tx(store, link.deposit_a),
                     "deposit_b": _evidence_tx(store, link.deposit_b),
                     "sweep": _evidence_tx(store, link.sweep)}, sort_keys=True))
            for younger, older, index in result.merges.tolist():
                when, _ = dated[index]
                rows.add(CLUSTER_MERGES, when.height, when.tx_id, younger, older, name)
            held_n, merges_n = len(held), result.n_merges
        with store.transaction():
            for table in CLUSTER_TABLES:
                store.con.execute(f"DELETE FROM {table.name}")
            for table, data in rows.to_arrow().items():
                if data.num_rows:
                    store.con.register("_rows", data)
                    cols = ", ".join(table.column_names)
                    store.con.execute(
                        f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _rows")
                    store.con.unregister("_rows")
            self._set_state({"cluster_height": str(target), "cluster_config_hash": digest})
        if on_progress:
            on_progress(target, target)
        links_n = len(dated) - held_n
        block_hash, cluster_ids, run_id, seconds = self._record_run(
            uf, 0, target, digest, started, started_utc, config,
            (links_n, merges_n, held_n, 0))
        return RunResult(
            run_id, 0, target, _tx_hex(store, block_hash), links_n, merges_n, held_n, 0,
            int(np.unique(cluster_ids).size), int(cluster_ids.size), seconds, restarted,
            config.describe() | {"deposit_addresses": len(found.deposits),
                                 "hubs": found.hubs},
        )

    # -- internals --------------------------------------------------------------------------

    def _record_run(
        self, uf: UnionFind, from_height: int, target: int, digest: str, started: float,
        started_utc: str, config: ClusterConfig, counts: tuple[int, int, int, int],
    ) -> tuple[bytes, npt.NDArray[np.int64], int, float]:
        """Save the cluster ids as of `target` and append the run to cluster_runs; returns the
        tip block hash, the ids, the run id and the seconds the run took."""
        store = self.store
        block_hash = store.block_hash_at(target) or b""
        cluster_ids = uf.find_all()
        save_cluster_ids(store, cluster_ids, target, digest)
        run_id = int(store.query("SELECT coalesce(max(run_id), 0) + 1 FROM cluster_runs")[0][0])
        seconds = time.perf_counter() - started
        links, merges, held, coinjoins = counts
        store.con.execute(
            f"INSERT INTO {CLUSTER_RUNS.name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, started_utc, from_height, target, block_hash,
             json.dumps(config.describe(), sort_keys=True, default=str), digest,
             links, merges, held, coinjoins, f"{seconds:.3f}", __version__],
        )
        return block_hash, cluster_ids, run_id, seconds

    def _set_state(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.store.con.execute("DELETE FROM sync_state WHERE key = ?", [key])
            self.store.con.execute("INSERT INTO sync_state VALUES (?, ?)", [key, value])

    def _reset(self) -> None:
        with self.store.transaction():
            for table in CLUSTER_TABLES:
                self.store.con.execute(f"DELETE FROM {table.name}")
            self.store.con.execute(
                "DELETE FROM sync_state WHERE key IN ('cluster_height', 'cluster_config_hash')"
            )

    def _drop_above(self, height: int) -> None:
        """Delete clustering rows dated above the clustered `height`. Only second-look links
        can be left there: a store rollback deletes the rows of the removed transactions, but a
        second-look link has an older transaction (T) and the height of a removed spender."""
        stale = self.store.query(
            "SELECT tx_id FROM cluster_links WHERE height > $1 AND heuristic = $2 UNION"
            " SELECT tx_id FROM cluster_held WHERE height > $1 AND heuristic = $2",
            [height, ChangeLinker.name],
        )
        if not stale:
            return
        with self.store.transaction():
            self.store.con.execute(
                f"DELETE FROM {LINK_EVIDENCE.name} WHERE heuristic = ? AND tx_id IN"
                " (SELECT unnest(?::BIGINT[]))",
                [ChangeLinker.name, [int(t) for (t,) in stale]],
            )
            for table in (CLUSTER_LINKS, CLUSTER_MERGES, CLUSTER_HELD):
                self.store.con.execute(f"DELETE FROM {table.name} WHERE height > ?", [height])

    def _weak_addresses(self, height: int, n: int) -> np.ndarray:
        """Addresses that joined their cluster through a weak (non-multi-input) link, applied
        or held back by the guard (`_guard_mask` marks both)."""
        weak = np.zeros(n, dtype=np.bool_)
        rows = self.store.con.execute(
            "SELECT addr_b FROM cluster_links WHERE height <= $1 AND heuristic NOT IN"
            " (SELECT unnest($2::VARCHAR[])) UNION ALL"
            " SELECT addr_b FROM cluster_held WHERE height <= $1 AND heuristic NOT IN"
            " (SELECT unnest($2::VARCHAR[]))",
            [height, sorted(STRONG)],
        ).fetchnumpy()["addr_b"]
        weak[rows.astype(np.int64)] = True
        return weak

    def _guard_mask(self, links: Sequence[ClusterLink], n: int) -> np.ndarray:
        """Which links the supercluster guard may hold back: every weak link, and every strong
        link touching an address that a weak link attached (its cluster membership rests on
        that weak link). Marks the addresses the weak links attach, in link order."""
        if len(self._weak) < n:
            self._weak = np.concatenate([self._weak, np.zeros(n - len(self._weak), np.bool_)])
        weak = self._weak
        mask = np.empty(len(links), dtype=np.bool_)
        for i, link in enumerate(links):
            if link.heuristic in STRONG:
                mask[i] = bool(weak[link.a] or weak[link.b])
            else:
                mask[i] = True
                weak[link.b] = True
        return mask

    def _second_looks(self, first_tx: int, last_tx: int) -> dict[int, tuple[str, list[TxView]]]:
        """The second looks due in the transactions `first_tx`..`last_tx`: by the last
        spender S, its txid and the views (chain order) of the transactions T whose candidate
        outputs S finished spending, each with its spenders up to S only."""
        assert self._change is not None
        store = self.store
        window = self._change.second_look_blocks
        row = store.query(
            "SELECT min(i.prev_tx_id), (SELECT min(b.first_tx_id) FROM blocks b WHERE"
            " b.height >= (SELECT height FROM txs WHERE tx_id = ?) - ?)"
            " FROM inputs i WHERE i.tx_id BETWEEN ? AND ?",
            [first_tx, window, first_tx, last_tx])
        if not row or row[0][0] is None:
            return {}
        oldest = max(int(row[0][0]), int(row[0][1]))
        found = store.query(_SECOND_LOOK_SQL, [
            first_tx, last_tx, oldest, ScriptType.NULLDATA.code,
            self._change.max_outputs, window])
        if found and self._declared:
            found = self._undeclared_looks(found)
        if not found:
            return {}
        bound = {int(t): int(s) for t, s, _ in found}
        due: dict[int, tuple[str, list[TxView]]] = {
            int(s): (Txid(bytes(txid)).rpc_hex, []) for _, s, txid in found}
        for view in tx_views_spent_until(store.con, bound):
            due[bound[view.tx_id]][1].append(view)
        return due

    def _undeclared_looks(self, found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The second looks (rows of transaction T, last spender S, T's txid) of transactions
        not declared multi-owner whose outputs no declared transaction spent: a multi-owner
        spender's wallet fingerprint is not the fingerprint of the wallet it spends for (BIP 78
        has the receiver copy the sender's nSequence, nLockTime and version)."""
        spent = self._spent_by_declared
        return [row for row in found if int(row[0]) not in self._declared
                and int(row[1]) not in self._declared and int(row[0]) not in spent]

    def _look_again(
        self, tx: TxView, height: int, spender_txid: str, rows: _Rows
    ) -> list[ClusterLink]:
        """The change linker's second look at `tx`, a view with its spenders up to the last
        one (mined at `height`): the links it makes now, with their evidence row; none when the
        linker already linked `tx` at its own height (decided there on the view without
        spenders, with the same CoinJoin verdict)."""
        linker = self._change
        assert linker is not None
        plain = dataclasses.replace(tx, outputs=tuple(
            dataclasses.replace(o, spent_by=None) for o in tx.outputs))
        ctx = TxContext.of(plain, self.detector)  # the verdict it had at its own height
        if linker.links_of(plain, linker.decide(plain, ctx)):
            return []  # linked (or held) at its own height already
        decision = linker.decide(tx, ctx)
        new = linker.links_of(tx, decision)
        if new:
            rows.add(LINK_EVIDENCE, tx.tx_id, linker.name, json.dumps(
                {"change_output": decision.index, "votes": dict(decision.votes),
                 "policy": str(linker.policy),
                 "second_look": {"height": height, "last_spender": spender_txid}},
                sort_keys=True))
        return new

    def _prime(self, height: int) -> None:
        """Feed the stateful heuristics the transactions up to `height` that their state rests
        on (links made there are stored already): the deposit-address heuristic every one from
        genesis, the batch-change heuristic those of its window."""
        starts: list[tuple[int, Heuristic]] = []
        if self._deposits is not None:
            starts.append((0, self._deposits))
        if self._batches is not None:
            starts.append((self._batches.replay_from(height), self._batches))
        if height < 0 or not starts:
            return
        first = min(start for start, _ in starts)
        bounds = self.store.query(
            "SELECT min(first_tx_id), max(first_tx_id + tx_count - 1) FROM blocks"
            " WHERE height BETWEEN ? AND ?", [first, height])
        if not bounds or bounds[0][1] is None:
            return
        for tx in iter_tx_views(self.store.con, int(bounds[0][0]), int(bounds[0][1])):
            ctx = TxContext.of(tx, self.detector, tx.tx_id in self._declared)
            for start, heuristic in starts:
                if tx.height >= start:
                    heuristic.links(tx, ctx)

    def _batch_evidence(self, found: list[BatchEvidence], rows: _Rows) -> None:
        """One evidence row per batch-change link: the batch, the batch that spent its change,
        the change's value and the fingerprint both carry."""
        if not found:
            return
        addrs = _text(self.store, sorted({x for e in found for x in (e.a, e.b)}))
        hexid = self._txids(sorted({t for e in found for t in (e.tx_id, e.batch_tx)}))
        for e in found:
            version, sequence, script = e.fingerprint
            rows.add(LINK_EVIDENCE, e.tx_id, BatchChange.name, json.dumps({
                "kind": "batch_change", "a": addrs[e.a], "b": addrs[e.b],
                "batch": hexid[e.batch_tx], "batch_outputs": e.outputs,
                "spent_by": hexid[e.tx_id], "spender_outputs": e.spender_outputs,
                "change_value_sat": e.value,
                "fingerprint": {"version": version, "sequence": sequence,
                                "input_script_type": script}}, sort_keys=True))

    def _txids(self, tx_ids: list[int]) -> dict[int, str]:
        txids = self.store.query(
            "SELECT tx_id, txid FROM txs WHERE tx_id IN (SELECT unnest(?::BIGINT[]))", [tx_ids])
        return {int(t): Txid(bytes(h)).rpc_hex for t, h in txids}

    def _deposit_evidence(self, found: list[DepositEvidence], rows: _Rows) -> None:
        """One evidence row per deposit-address link, with addresses and txids as users write
        them (the store's ids resolved here, once per range)."""
        if not found:
            return
        addrs = _text(self.store, sorted({x for e in found for x in (e.a, e.b, e.deposit,
                                                                      e.hot)}))
        hexid = self._txids(sorted({t for e in found for t in (e.forward_tx, e.hot_since_tx,
                                                                 *e.payments)}))
        for e in found:
            rows.add(LINK_EVIDENCE, e.tx_id, DepositAddresses.name, json.dumps({
                "kind": e.kind, "a": addrs[e.a], "b": addrs[e.b],
                "deposit_address": addrs[e.deposit], "hot_wallet": addrs[e.hot],
                "first_forward": hexid[e.forward_tx], "hot_since": hexid[e.hot_since_tx],
                "payments": [hexid[t] for t in e.payments]}, sort_keys=True))

    def _ranges(self, first: int, last: int) -> list[tuple[int, int]]:
        """Block ranges of about RANGE_TXS transactions each."""
        if first > last:
            return []
        rows = self.store.query(
            "SELECT height, tx_count FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
            [first, last],
        )
        ranges, start, count = [], first, 0
        for height, tx_count in rows:
            count += int(tx_count)
            if count >= RANGE_TXS:
                ranges.append((start, int(height)))
                start, count = int(height) + 1, 0
        if start <= last:
            ranges.append((start, last))
        return ranges

    def _cluster_range(
        self, uf: UnionFind, lo: int, hi: int, totals: dict[str, int]
    ) -> _Rows:
        store = self.store
        first_tx, last_tx = store.query(
            "SELECT min(first_tx_id), max(first_tx_id + tx_count - 1) FROM blocks"
            " WHERE height BETWEEN ? AND ?",
            [lo, hi],
        )[0]
        uf.grow(_address_count(store, hi))
        rows = _Rows()
        links: list[ClusterLink] = []
        heights: list[int] = []
        due = self._second_looks(int(first_tx), int(last_tx)) if self._second_look else {}
        found_deposits: list[DepositEvidence] = []
        found_batches: list[BatchEvidence] = []
        for tx in iter_tx_views(store.con, int(first_tx), int(last_tx)):
            ctx = TxContext.of(tx, self.detector, tx.tx_id in self._declared)
            if ctx.multi_owner:
                rows.add(TX_LABELS, tx.tx_id, tx.height, MULTI_OWNER_LABEL, "declared",
                         "analyst", json.dumps({"from": self.config.multi_owner_from or "named"}))
                totals["declared"] += 1
            if ctx.coinjoin is not None:
                match = ctx.coinjoin
                rows.add(TX_LABELS, tx.tx_id, tx.height, "coinjoin", str(match.kind),
                         f"{match.detector}@{match.version}",
                         json.dumps(dict(match.evidence), sort_keys=True, default=str))
                totals["coinjoins"] += 1
            for heuristic in self.heuristics:
                if heuristic is self._change:
                    decision = self._change.decide(tx, ctx)
                    new = self._change.links_of(tx, decision)
                else:
                    new = heuristic.links(tx, ctx)
                    if heuristic is self._deposits:
                        found_deposits.extend(self._deposits.evidence)
                    elif heuristic is self._batches:
                        found_batches.extend(self._batches.evidence)
                if new and self._change is not None and heuristic is self._change:
                    rows.add(LINK_EVIDENCE, tx.tx_id, heuristic.name, json.dumps(
                        {"change_output": decision.index, "votes": dict(decision.votes),
                         "policy": str(self._change.policy)}, sort_keys=True))
                links.extend(new)
                heights.extend([tx.height] * len(new))
            if tx.tx_id in due:
                spender_txid, looks = due[tx.tx_id]
                for view in looks:
                    new = self._look_again(view, tx.height, spender_txid, rows)
                    links.extend(new)
                    heights.extend([tx.height] * len(new))
        self._deposit_evidence(found_deposits, rows)
        self._batch_evidence(found_batches, rows)
        if not links:
            return rows
        a = np.fromiter((link.a for link in links), dtype=np.int64, count=len(links))
        b = np.fromiter((link.b for link in links), dtype=np.int64, count=len(links))
        guarded = self._guard_mask(links, len(uf))
        result = uf.union_batch(a, b, self.config.guard_size, guarded)
        held = {int(i) for i in result.held_link}
        for index, root_a, root_b, size_a, size_b in result.held.tolist():
            link = links[index]
            rows.add(CLUSTER_HELD, heights[index], link.tx_id, link.a, link.b, link.heuristic,
                     root_a, root_b, size_a, size_b)
        for index, link in enumerate(links):
            if index not in held:
                rows.add(CLUSTER_LINKS, heights[index], link.tx_id, link.a, link.b,
                         link.heuristic)
        for younger, older, index in result.merges.tolist():
            link = links[index]
            rows.add(CLUSTER_MERGES, heights[index], link.tx_id, younger, older, link.heuristic)
        totals["links"] += len(links) - len(held)
        totals["merges"] += result.n_merges
        totals["held"] += len(held)
        return rows


# -- cluster ids: cached next to the store, recomputed from links when stale ---------------------


def _cache_paths(store: ChainStore) -> tuple[Path, Path]:
    base = store.path.with_suffix("")
    return base.with_name(base.name + ".clusters.npy"), base.with_name(base.name + ".clusters.json")


def _cache_key(store: ChainStore, height: int, digest: str) -> dict[str, Any]:
    block = store.block_hash_at(height)
    return {"height": height, "block_hash": block.hex() if block else None, "config_hash": digest}


def save_cluster_ids(store: ChainStore, ids: np.ndarray, height: int, digest: str) -> None:
    """Write the cluster id of every address (index = addr_id) atomically, keyed by the
    clustered height, that block's hash and the configuration (a reorg invalidates it)."""
    array_path, meta_path = _cache_paths(store)
    tmp = array_path.with_suffix(".tmp.npy")
    np.save(tmp, ids.astype(np.int64, copy=False))
    os.replace(tmp, array_path)
    meta_tmp = meta_path.with_suffix(".tmp")
    meta_tmp.write_text(json.dumps(_cache_key(store, height, digest)))
    os.replace(meta_tmp, meta_path)


@dataclass(frozen=True)
class ClusterView:
    """The cluster id of every address as of `height` (index = addr_id)."""

    ids: np.ndarray
    height: int

    def of(self, addr_id: int) -> int | None:
        return int(self.ids[addr_id]) if 0 <= addr_id < len(self.ids) else None

    def members(self, cluster_id: int) -> np.ndarray:
        return np.flatnonzero(self.ids == cluster_id)


def cluster_view(store: ChainStore, as_of: int | None = None) -> ClusterView:
    """The clustering as the last run left it, or as of an earlier height (replayed)."""
    done = _state_int(store, "cluster_height", -1)
    if done < 0:
        raise NotFoundError(
            f"the {store.spec.key} store has no clustering yet; run `cointrail cluster`"
        )
    if as_of is not None:
        if not 0 <= as_of <= done:
            tip = store.tip()
            hint = (f"; the store reaches height {tip.height}: run `cointrail cluster` to "
                    f"cluster up to it first" if tip is not None and done < as_of <= tip.height
                    else "")
            raise InputError(f"--as-of {as_of} is outside the clustered heights 0..{done}{hint}")
        if as_of < done:
            return ClusterView(replay(store, as_of).find_all(), as_of)
    digest = store.state().get("cluster_config_hash", "")
    array_path, meta_path = _cache_paths(store)
    try:
        meta = json.loads(meta_path.read_text())
        if meta == _cache_key(store, done, digest):
            return ClusterView(np.load(array_path, mmap_mode="r"), done)
    except (OSError, ValueError):
        pass
    ids = replay(store, done).find_all()
    if not store.read_only:
        save_cluster_ids(store, ids, done, digest)
    return ClusterView(ids, done)


def _first_height(store: ChainStore, addr_id: int) -> int | None:
    row = store.query("SELECT first_height FROM addresses WHERE addr_id = ?", [addr_id])
    return int(row[0][0]) if row else None


def _unclustered_id(store: ChainStore, view: ClusterView, cluster_id: int) -> str:
    """Why id `cluster_id` (an address id) has no cluster in `view`, when the store knows it:
    its address first appears above the view's height."""
    first = _first_height(store, cluster_id) if cluster_id >= 0 else None
    if first is None:
        return ""
    done = _state_int(store, "cluster_height", -1)
    what = (f"; cluster ids are address ids, and address {cluster_id} first appears at height "
            f"{first}")
    if view.height < done:
        return what + f", after --as-of {view.height}"
    return what + f", above the clustered height {view.height}: run `cointrail cluster`"


def _tx_hex(store: ChainStore, stored: bytes) -> str:
    """A stored hash (internal order) as shown: ``0x``-prefixed on account chains."""
    text = bytes(stored)[::-1].hex()
    return "0x" + text if store.spec.is_account_model else text


def _evidence_tx(
    store: ChainStore, evidence: deposit_reuse.Evidence | None
) -> dict[str, Any] | None:
    if evidence is None:
        return None
    row = store.query("SELECT txid FROM txs WHERE tx_id = ?", [evidence.tx_id])
    return {"height": evidence.height,
            "txid": _tx_hex(store, bytes(row[0][0])) if row else None}


def _addr_id(store: ChainStore, text: str) -> tuple[int, str]:
    if store.spec.is_account_model:
        from cointrail.chain.account.address import parse_eth_address

        parsed_text = parse_eth_address(text)
    else:
        parsed_text = parse_address(text, store.spec).text
    row = store.query("SELECT addr_id FROM addresses WHERE text = ?", [parsed_text])
    if not row:
        raise NotFoundError(f"{parsed_text} has never appeared on the {store.spec.key} chain")
    return int(row[0][0]), parsed_text


def _text(store: ChainStore, addr_ids: Sequence[int]) -> dict[int, str]:
    if not addr_ids:
        return {}
    rows = store.query(
        "SELECT addr_id, text FROM addresses WHERE addr_id IN (SELECT unnest(?))",
        [list(addr_ids)],
    )
    return {int(a): str(t) for a, t in rows}


def show_cluster(
    store: ChainStore, cluster_id: int, *, offset: int = 0, limit: int = 100,
    as_of: int | None = None,
) -> dict[str, Any]:
    """Size, a page of addresses, balance and first/last seen of one cluster."""
    if offset < 0 or limit < 1:
        raise InputError(f"--offset {offset} --limit {limit}: the offset must be 0 or more and "
                         "the limit 1 or more")
    view = cluster_view(store, as_of)
    requested = cluster_id
    merged_into = None
    current = view.of(cluster_id)
    if current is not None and current != cluster_id:
        merged_into = current  # an older id took it over: follow the merge
        cluster_id = current
    members = view.members(cluster_id)
    if members.size == 0:
        raise NotFoundError(f"no cluster {requested} in the {store.spec.key} clustering"
                            + _unclustered_id(store, view, requested))
    if store.spec.is_account_model:
        return _show_account_cluster(store, view, cluster_id, requested, merged_into, members,
                                     offset, limit)
    table = pa.table({"addr_id": pa.array(members, type=pa.int64())})
    store.con.register("_members", table)
    try:
        received, sent, first, last = store.con.execute(
            """
            SELECT
              (SELECT coalesce(sum(value), 0)::BIGINT FROM outputs o JOIN txs t USING (tx_id)
               WHERE o.addr_id IN (SELECT addr_id FROM _members) AND t.height <= ?),
              (SELECT coalesce(sum(value), 0)::BIGINT FROM inputs i JOIN txs t USING (tx_id)
               WHERE i.addr_id IN (SELECT addr_id FROM _members) AND t.height <= ?),
              (SELECT min(first_height) FROM addresses
               WHERE addr_id IN (SELECT addr_id FROM _members)),
              (SELECT max(t.height) FROM (
                  SELECT tx_id FROM outputs WHERE addr_id IN (SELECT addr_id FROM _members)
                  UNION ALL
                  SELECT tx_id FROM inputs WHERE addr_id IN (SELECT addr_id FROM _members)
               ) u JOIN txs t USING (tx_id) WHERE t.height <= ?)
            """,
            [view.height, view.height, view.height],
        ).fetchone() or (0, 0, None, None)
        by_heuristic = store.con.execute(
            "SELECT heuristic, count(*) FROM cluster_links WHERE height <= ?"
            " AND addr_a IN (SELECT addr_id FROM _members) GROUP BY heuristic"
            " ORDER BY heuristic", [view.height]).fetchall()
    finally:
        store.con.unregister("_members")
    config = latest_run_config(store)
    versions = {h["name"]: h.get("version") for h in (config or {}).get("heuristics", [])}
    links: list[dict[str, Any]] = [
        {"heuristic": str(h), "version": versions.get(str(h)), "links": int(n)}
        for h, n in by_heuristic]
    page = [int(a) for a in members[offset : offset + limit]]
    texts = _text(store, page)
    return {
        "cluster_id": cluster_id,
        "requested_id": requested,
        "merged_into": merged_into,
        "chain": store.spec.chain,
        "network": store.spec.network,
        "as_of_height": view.height,
        "size": int(members.size),
        "balance_sat": int(received) - int(sent),
        "received_sat": int(received),
        "sent_sat": int(sent),
        "first_seen_height": first,
        "last_seen_height": last,
        "hot_wallets": _hot_wallets(store, view, cluster_id),
        "links": links,
        "methods": _register_entries(
            {link["heuristic"]: link["version"] for link in links}, config),
        "addresses": {"offset": offset, "limit": limit,
                      "items": [{"addr_id": a, "address": texts.get(a)} for a in page]},
    }


def latest_run_config(store: ChainStore) -> dict[str, Any] | None:
    """The configuration the latest clustering run recorded (None before any run)."""
    runs = store.query("SELECT config FROM cluster_runs ORDER BY run_id DESC LIMIT 1")
    return json.loads(runs[0][0]) if runs else None


def _hot_wallets(store: ChainStore, view: ClusterView, cluster_id: int) -> list[dict[str, Any]]:
    """The hot wallets the deposit-address heuristic recognised in a cluster (as of the view),
    each with how many deposit addresses it sweeps and when it became one: exchange-like
    behaviour, found without a tag."""
    rows = store.query(
        "SELECT json_extract_string(e.detail, '$.hot_wallet') AS hot, count(*),"
        " min(t.height) FROM link_evidence e JOIN txs t USING (tx_id)"
        " WHERE e.heuristic = ? AND t.height <= ?"
        " AND json_extract_string(e.detail, '$.kind') = 'deposit_to_hot'"
        " GROUP BY hot ORDER BY hot",
        [DepositAddresses.name, view.height])
    if not rows:
        return []
    ids = dict(store.query(
        "SELECT text, addr_id FROM addresses WHERE text IN (SELECT unnest(?::VARCHAR[]))",
        [[str(r[0]) for r in rows]]))
    return [{"address": str(hot), "deposit_addresses": int(n), "since_height": int(since)}
            for hot, n, since in rows
            if hot in ids and view.of(int(ids[hot])) == cluster_id]


def _show_account_cluster(
    store: ChainStore, view: ClusterView, cluster_id: int, requested: int,
    merged_into: int | None, members: np.ndarray, offset: int, limit: int,
) -> dict[str, Any]:
    """show_cluster on an account chain: per-asset received, sent (transfers leaving the
    cluster; those between its members cancel out) and balance, in the smallest unit."""
    store.con.register("_members", pa.table({"addr_id": pa.array(members, type=pa.int64())}))
    try:
        rows = store.con.execute(
            """
            SELECT t.asset_id, a.symbol, a.decimals, a.contract,
                   coalesce(sum(t.amount) FILTER (WHERE t.to_addr_id IN
                       (SELECT addr_id FROM _members)), 0)::VARCHAR,
                   coalesce(sum(t.amount) FILTER (WHERE t.from_addr_id IN
                       (SELECT addr_id FROM _members)), 0)::VARCHAR
            FROM transfers t LEFT JOIN assets a USING (asset_id)
            WHERE t.height <= ? AND t.amount_exact IS NULL
              AND (t.to_addr_id IN (SELECT addr_id FROM _members)
                   OR t.from_addr_id IN (SELECT addr_id FROM _members))
              AND NOT (coalesce(t.to_addr_id IN (SELECT addr_id FROM _members), false)
                       AND coalesce(t.from_addr_id IN (SELECT addr_id FROM _members), false))
            GROUP BY ALL ORDER BY t.asset_id
            """, [view.height]).fetchall()
        first, last = store.con.execute(
            "SELECT (SELECT min(first_height) FROM addresses WHERE addr_id IN"
            " (SELECT addr_id FROM _members)),"
            " (SELECT max(height) FROM transfers WHERE height <= ? AND"
            " (to_addr_id IN (SELECT addr_id FROM _members)"
            " OR from_addr_id IN (SELECT addr_id FROM _members)))",
            [view.height]).fetchone() or (None, None)
    finally:
        store.con.unregister("_members")
    page = [int(a) for a in members[offset : offset + limit]]
    texts = _text(store, page)
    return {
        "cluster_id": cluster_id, "requested_id": requested, "merged_into": merged_into,
        "chain": store.spec.chain, "network": store.spec.network,
        "as_of_height": view.height, "size": int(members.size),
        "assets": [
            {"asset_id": int(asset), "symbol": symbol, "decimals": decimals,
             "contract": None if contract is None else "0x" + bytes(contract).hex(),
             "received": int(received), "sent": int(sent),
             "balance": int(received) - int(sent)}
            for asset, symbol, decimals, contract, received, sent in rows
        ],
        "first_seen_height": first, "last_seen_height": last,
        "addresses": {"offset": offset, "limit": limit,
                      "items": [{"addr_id": a, "address": texts.get(a)} for a in page]},
    }


def address_cluster(store: ChainStore, addr_id: int) -> dict[str, Any] | None:
    """The cluster id and size of an address in the latest clustering, or None."""
    try:
        view = cluster_view(store)
    except NotFoundError:
        return None
    cluster = view.of(addr_id)
    if cluster is None:
        return {"cluster_id": None, "clustered_up_to": view.height}
    return {"cluster_id": cluster, "cluster_size": int(np.count_nonzero(view.ids == cluster)),
            "clustered_up_to": view.height}


def explain(store: ChainStore, a: str, b: str, *, as_of: int | None = None) -> dict[str, Any]:
    """The chain of evidence linking two addresses: each link a txid and its heuristic. A change
    link made by the linker's second look is dated at the last spend that completed its
    evidence (`height`); its hop also gives the transaction's own height and that spender."""
    id_a, text_a = _addr_id(store, a)
    id_b, text_b = _addr_id(store, b)
    view = cluster_view(store, as_of)
    ca, cb = view.of(id_a), view.of(id_b)
    config = latest_run_config(store)
    base: dict[str, Any] = {
        "a": text_a, "b": text_b, "cluster_a": ca, "cluster_b": cb,
        "as_of_height": view.height, "config": config,
    }
    missing = [(text, i) for text, i, c in ((text_a, id_a, ca), (text_b, id_b, cb))
               if c is None]
    if missing:  # seen by the store, but first above the clustering asked about
        done = _state_int(store, "cluster_height", -1)
        notes = []
        for text, i in dict(missing).items():
            first = _first_height(store, i)
            notes.append(f"{text} first appears at height {first}" + (
                f", after height {view.height}" if view.height < done else
                f", above the clustered height {view.height} (run `cointrail cluster`)"))
        return base | {
            "linked": False,
            "answer": f"not clustered as of height {view.height}: {'; '.join(notes)}",
            "not_clustered": [{"address": text, "first_height": _first_height(store, i)}
                              for text, i in dict(missing).items()],
            "held_back_links": [], "declared_multi_owner": [], "stonewalls": [],
        }
    assert ca is not None and cb is not None
    if ca != cb:
        candidates = store.query(
            "SELECT h.height, t.txid, h.heuristic, h.size_a, h.size_b, h.addr_a, h.addr_b"
            " FROM cluster_held h JOIN txs t USING (tx_id) WHERE h.height <= ?"
            " ORDER BY h.tx_id",
            [view.height],
        )
        pair = {ca, cb}
        held = [  # held links whose ends now lie in the two clusters asked about
            row for row in candidates
            if {view.of(int(row[5])), view.of(int(row[6]))} == pair
        ]
        ends = _text(store, sorted({int(r[k]) for r in held for k in (5, 6)}))
        return base | {
            "linked": False,
            "declared_multi_owner": _declared_between(store, view, ca, cb),
            "stonewalls": _stonewalls_between(store, view, ca, cb),
            "answer": f"{text_a} and {text_b} are not in the same cluster as of height "
                      f"{view.height}",
            "held_back_links": [
                {"height": h, "txid": _tx_hex(store, bytes(t)) if store.spec.is_account_model
                 else Txid(bytes(t)).rpc_hex, "heuristic": hh, "sizes": [sa, sb],
                 "addresses": [ends.get(int(x)), ends.get(int(y))],
                 "clusters": [view.of(int(x)), view.of(int(y))]}
                for h, t, hh, sa, sb, x, y in held
            ],
        }
    if id_a == id_b:
        return base | {"linked": True, "path": [], "answer": "the same address"}
    members = view.members(ca)
    store.con.register("_members", pa.table({"addr_id": pa.array(members, type=pa.int64())}))
    try:
        edges = store.con.execute(
            "SELECT l.addr_a, l.addr_b, l.height, t.txid, l.heuristic FROM cluster_links l"
            " JOIN txs t USING (tx_id) WHERE l.height <= ?"
            " AND l.addr_a IN (SELECT addr_id FROM _members) ORDER BY l.tx_id",
            [view.height],
        ).fetchall()
    finally:
        store.con.unregister("_members")
    adjacency: dict[int, list[tuple[int, int, bytes, str]]] = {}
    for x, y, height, txid, heuristic in edges:
        adjacency.setdefault(int(x), []).append((int(y), int(height), bytes(txid), heuristic))
        adjacency.setdefault(int(y), []).append((int(x), int(height), bytes(txid), heuristic))
    previous: dict[int, tuple[int, int, bytes, str]] = {id_a: (id_a, -1, b"", "")}
    queue = deque([id_a])
    while queue and id_b not in previous:
        node = queue.popleft()
        for nxt, height, txid, heuristic in adjacency.get(node, ()):
            if nxt not in previous:
                previous[nxt] = (node, height, txid, heuristic)
                queue.append(nxt)
    if id_b not in previous:
        raise StoreError(
            f"{text_a} and {text_b} share cluster {ca} but no stored links join them; "
            "the clustering tables are inconsistent: re-run `cointrail cluster`"
        )
    hops: list[tuple[int, int, int, bytes, str]] = []
    node = id_b
    while node != id_a:
        prev, height, txid, heuristic = previous[node]
        hops.append((prev, node, height, txid, heuristic))
        node = prev
    hops.reverse()
    texts = _text(store, sorted({h[0] for h in hops} | {h[1] for h in hops}))
    versions = {h["name"]: h["version"] for h in (config or {}).get("heuristics", [])}
    path: list[dict[str, Any]] = [
        {"from": texts[x], "to": texts[y], "height": height, "txid": _tx_hex(store, txid),
         "heuristic": heuristic, "heuristic_version": versions.get(heuristic)}
        for x, y, height, txid, heuristic in hops
    ]
    if not store.spec.is_account_model:  # what each link rests on, from its evidence row
        _add_utxo_evidence(store, path, hops)
    if store.spec.is_account_model:  # deposit_reuse: the deposits and the sweep behind a link
        details = [json.loads(str(d)) for (d,) in store.query(
            "SELECT detail FROM link_evidence WHERE heuristic = ?", [deposit_reuse.HEURISTIC])]
        by_pair = {frozenset((d["a"], d["b"])): d for d in details}
        for hop in path:
            detail = by_pair.get(frozenset((hop["from"], hop["to"])))
            if detail is not None:
                hop["evidence"] = {k: detail[k] for k in
                                   ("deposit_address", "hot_wallet", "deposit_a", "deposit_b",
                                    "sweep")} | {"a": detail["a"], "b": detail["b"]}
    return base | {
        "linked": True,
        "answer": f"{text_a} and {text_b} are linked by {len(hops)} link(s)",
        "path": path,
        "methods": measured_methods(path, config),
    }


def _labelled_between(store: ChainStore, view: ClusterView, ca: int, cb: int, label: str,
                      kind: str | None = None) -> list[tuple[int, bytes, dict[str, Any]]]:
    """(height, txid, evidence) of the transactions labelled `label` (of `kind`, when given) as
    of the view's height that spend from both clusters."""
    rows = store.query(
        "SELECT l.tx_id, l.height, t.txid, l.evidence, i.addr_id FROM tx_labels l"
        " JOIN txs t USING (tx_id) JOIN inputs i ON i.tx_id = l.tx_id"
        " WHERE l.label = ? AND (? IS NULL OR l.kind = ?) AND l.height <= ?"
        " AND i.addr_id IS NOT NULL ORDER BY l.tx_id",
        [label, kind, kind, view.height])
    spends: dict[int, tuple[int, bytes, str, set[int | None]]] = {}
    for tx_id, height, txid, evidence, addr in rows:
        entry = spends.setdefault(int(tx_id), (int(height), bytes(txid), str(evidence), set()))
        entry[3].add(view.of(int(addr)))
    return [(height, txid, json.loads(evidence) if evidence else {})
            for height, txid, evidence, clusters in spends.values() if {ca, cb} <= clusters]


def _declared_between(store: ChainStore, view: ClusterView, ca: int, cb: int
                      ) -> list[dict[str, Any]]:
    """The transactions declared multi-owner (as of the view's height) that spend from both
    clusters: what would have joined them, had they not been declared."""
    return [{"height": height, "txid": Txid(txid).rpc_hex, "declared_from": evidence.get("from")}
            for height, txid, evidence in _labelled_between(store, view, ca, cb,
                                                            MULTI_OWNER_LABEL)]


def _stonewalls_between(store: ChainStore, view: ClusterView, ca: int, cb: int
                        ) -> list[dict[str, Any]]:
    """The Stonewall-shaped transactions (as of the view's height) that spend from both
    clusters: one owner's if solo, two owners' if an X2, so multi-input did not join them."""
    return [{"height": height, "txid": Txid(txid).rpc_hex, "amount": evidence.get("amount")}
            for height, txid, evidence in _labelled_between(
                store, view, ca, cb, "coinjoin", str(CoinJoinKind.STONEWALL))]


def measured_methods(path: list[dict[str, Any]],
                     config: dict[str, Any] | None) -> dict[str, Any]:
    """What the methodology register says of each heuristic behind the links of `path` (and of
    each change heuristic that named a linked change output, at its version in the run's
    `config`): its known errors and its measured accuracy, with the register's version and
    digest, so an explanation carries the error rates its links rest on. A heuristic the
    register does not list, or lists at another version than the link's, says so."""
    wanted: dict[str, str | None] = {}
    for hop in path:
        wanted.setdefault(hop["heuristic"], hop.get("heuristic_version"))
        for name in (hop.get("change") or {}).get("named_by", []):
            wanted.setdefault(name, None)
    return _register_entries(wanted, config)


def _register_entries(wanted: dict[str, str | None],
                      config: dict[str, Any] | None) -> dict[str, Any]:
    """The register's entries for the heuristics `wanted` (name -> the version the links were
    made by; None for a change heuristic, read from the run's `config`)."""
    from cointrail.reporting.methodology import load_methodology

    register = load_methodology()
    listed = {m.name: m for section in register.sections for m in section.methods}
    linker: dict[str, Any] = next((h for h in (config or {}).get("heuristics", [])
                                   if h.get("name") == ChangeLinker.name), {})
    change_versions = {h["name"]: h.get("version")
                       for h in (linker.get("params") or {}).get("heuristics", [])}
    methods: dict[str, Any] = {}
    for name, link_version in wanted.items():
        given = link_version if link_version is not None else change_versions.get(name)
        version = None if given is None else str(given)  # account runs record an int
        method = listed.get(name)
        if method is None:
            methods[name] = {"version": version, "registered": False,
                             "note": "not in the methodology register: no measured accuracy"}
            continue
        entry: dict[str, Any] = {
            "version": version, "registered": True, "title": method.title,
            "measured_version": method.version, "known_errors": method.known_errors,
            "accuracy": [{"measure": m.measure, "value": m.value, "source": m.source}
                         for m in method.accuracy]}
        if version is not None and method.version is not None and version != method.version:
            entry["note"] = (f"measured for version {method.version}; these links were made "
                             f"by version {version}")
        methods[name] = entry
    return {"register": {"version": register.version, "sha256": register.sha256},
            "heuristics": methods}


def _add_utxo_evidence(store: ChainStore, path: list[dict[str, Any]],
                       hops: list[tuple[int, int, int, bytes, str]]) -> None:
    """Put on each hop what its link's evidence row says (one query for the path): a change
    link's output and the heuristics that named it, and when a second look decided it; a
    deposit-address or batch-change link's evidence."""
    found: dict[tuple[bytes, str], list[tuple[int, dict[str, Any]]]] = {}
    for txid, tx_height, heuristic, detail in store.query(
            "SELECT t.txid, t.height, e.heuristic, e.detail FROM link_evidence e"
            " JOIN txs t USING (tx_id) WHERE t.txid IN (SELECT unnest(?::BLOB[]))",
            [sorted({h[3] for h in hops})]):
        found.setdefault((bytes(txid), str(heuristic)), []).append(
            (int(tx_height), json.loads(str(detail))))
    for hop, (_, _, height, txid, heuristic) in zip(path, hops, strict=True):
        rows = found.get((bytes(txid), heuristic), [])
        if heuristic == ChangeLinker.name and rows:
            tx_height, detail = rows[0]
            output = detail.get("change_output")
            hop["change"] = {"output": output, "named_by": sorted(
                k for k, v in (detail.get("votes") or {}).items() if v == output)}
            if tx_height != height:
                look = detail.get("second_look") or {}
                hop["second_look"] = {"tx_height": tx_height,
                                      "last_spender": look.get("last_spender")}
        elif heuristic in (DepositAddresses.name, BatchChange.name):
            pair = frozenset((hop["from"], hop["to"]))
            evidence = next((d for _, d in rows if frozenset((d["a"], d["b"])) == pair), None)
            if evidence is not None:
                hop["evidence"] = evidence
