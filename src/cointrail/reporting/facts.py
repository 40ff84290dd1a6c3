"""What reports and exports read from a case snapshot (ADR 0004), as typed records.

The snapshot is a plain dict; this module is the one place that knows its shape, so that the
report, every export format and the tests read the same facts the same way. Amounts stay integer
(satoshi); `coin_text` writes them in coin units as exact decimal text, never through a float.

Invariant: every function here is a pure function of the snapshot (no clock, no store), so the
same snapshot always gives the same facts in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cointrail.errors import InputError, Problem, ValidationError

FEE = "fee"
UNKNOWN_TICKER = "?"


@dataclass(frozen=True, slots=True)
class Coin:
    """The unit of a chain: ticker and decimals (``BTC``, 8)."""

    ticker: str
    decimals: int


@dataclass(frozen=True, slots=True)
class FlowNode:
    """A tainted output of a trace (``txid:vout``)."""

    txid: str
    vout: int
    address: str | None
    value: int
    amount: int
    height: int
    hop: int
    seed: bool

    @property
    def key(self) -> str:
        return f"{self.txid}:{self.vout}"


@dataclass(frozen=True, slots=True)
class Flow:
    """`amount` moved from ``from_txid:from_vout`` through `txid` to `to_vout` (None: fee)."""

    from_txid: str
    from_vout: int
    txid: str
    to_vout: int | None
    amount: int
    height: int
    coinjoin: bool

    @property
    def from_key(self) -> str:
        return f"{self.from_txid}:{self.from_vout}"

    @property
    def to_key(self) -> str:
        return f"{self.txid}:{FEE}" if self.to_vout is None else f"{self.txid}:{self.to_vout}"


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """Where taint stopped: category (exchange, sanctioned, unspent, fee, ...) and amount."""

    category: str
    txid: str
    vout: int | None
    address: str | None
    amount: int
    height: int
    label: str | None
    via: str | None

    @property
    def key(self) -> str:
        return f"{self.txid}:{FEE}" if self.vout is None else f"{self.txid}:{self.vout}"


@dataclass(frozen=True, slots=True)
class TraceFinding:
    """One trace finding of the case, with its flows and endpoints."""

    id: str
    chain: str
    network: str
    coin: Coin
    direction: str
    model: str
    start: str
    seed_amount: int
    nodes: tuple[FlowNode, ...]
    flows: tuple[Flow, ...]
    endpoints: tuple[EndpointRow, ...]
    coinjoins: tuple[str, ...]
    created_at: str
    created_by: str
    result_sha256: str
    record: Mapping[str, Any]

    def totals(self) -> dict[str, int]:
        """Endpoint amount per category, sorted by category."""
        out: dict[str, int] = {}
        for e in self.endpoints:
            out[e.category] = out.get(e.category, 0) + e.amount
        return dict(sorted(out.items()))

    @property
    def engine_version(self) -> str | None:
        version = self.record.get("cointrail_version")
        return None if version is None else str(version)


@dataclass(frozen=True, slots=True)
class OtherFinding:
    """A non-trace finding (screening, flags, exposure, path, cluster) shown as a table."""

    id: str
    kind: str
    created_at: str
    created_by: str
    result_sha256: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def coin_of(chain: str, network: str) -> Coin:
    """The ticker and decimals of `chain`/`network` from the ChainSpec registry."""
    from cointrail.chain.spec import get_chain

    try:
        spec = get_chain(chain, network)
    except InputError:
        return Coin(UNKNOWN_TICKER, 8)
    return Coin(spec.ticker, spec.decimals)


def coin_text(amount: int, decimals: int = 8) -> str:
    """`amount` base units as exact coin text: ``coin_text(150_000_000) == "1.50000000"``."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole:,}.{frac:0{decimals}d}" if decimals else f"{sign}{whole:,}"


def plain_coin_text(amount: int, decimals: int = 8) -> str:
    """Like `coin_text` without thousands separators (for machine-readable files)."""
    return coin_text(amount, decimals).replace(",", "")


def short_id(text: str, keep: int = 8) -> str:
    """``f4184fc5…9e16`` for a long id; short text unchanged."""
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-4:]}"


# --- reading the snapshot -----------------------------------------------------------------------


def case_meta(snapshot: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``case`` part of the snapshot; InputError when absent."""
    case = snapshot.get("case")
    if not isinstance(case, Mapping) or not case.get("reference"):
        raise InputError("the case snapshot has no case.reference; pass Case.snapshot() output")
    return case


def head_time(snapshot: Mapping[str, Any]) -> str:
    """The UTC time of the last custody entry (the snapshot's own clock), or the case's
    opening time; a fixed time for reports and exports so their bytes do not depend on when
    they were rendered."""
    custody = snapshot.get("custody") or []
    if custody:
        return str(custody[-1]["at"])
    opened = case_meta(snapshot).get("opened_at")
    if not opened:
        raise InputError("the case snapshot has neither custody entries nor case.opened_at")
    return str(opened)


def trace_findings(snapshot: Mapping[str, Any]) -> list[TraceFinding]:
    """Every trace finding, in finding order; ValidationError listing every malformed one."""
    out: list[TraceFinding] = []
    problems: list[Problem] = []
    for f in snapshot.get("findings") or []:
        if f.get("kind") != "trace":
            continue
        try:
            out.append(_trace_finding(f))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(Problem(f"finding {f.get('id', '?')}", None,
                                    f"not a Trace.to_dict() result: {exc!r}"))
    if problems:
        raise ValidationError("the case snapshot holds malformed trace findings", problems)
    return out


def _trace_finding(f: Mapping[str, Any]) -> TraceFinding:
    result = f["result"]
    record = result.get("record") or f.get("record") or {}
    chain = str(record.get("chain", "bitcoin"))
    network = str(record.get("network", "mainnet"))
    nodes = tuple(
        FlowNode(str(n["txid"]), int(n["vout"]), n.get("address"), int(n["value_sat"]),
                 int(n["amount_sat"]), int(n["height"]), int(n["hop"]), bool(n.get("seed")))
        for n in result["nodes"])
    flows = tuple(
        Flow(str(e["from_txid"]), int(e["from_vout"]), str(e["txid"]),
             None if e["to_vout"] is None else int(e["to_vout"]), int(e["amount_sat"]),
             int(e["height"]), bool(e.get("coinjoin")))
        for e in result["edges"])
    endpoints = tuple(
        EndpointRow(str(category), str(o["txid"]),
                    None if o.get("vout") is None else int(o["vout"]), o.get("address"),
                    int(o["amount_sat"]), int(o["height"]), o.get("label"), o.get("via"))
        for category, group in sorted(result["endpoints"].items())
        for o in group["outputs"])
    return TraceFinding(
        id=str(f["id"]), chain=chain, network=network, coin=coin_of(chain, network),
        direction=str(result["direction"]), model=str(result["model"]),
        start=str(result["start"]), seed_amount=int(result["seed_amount_sat"]),
        nodes=nodes, flows=flows, endpoints=endpoints,
        coinjoins=tuple(str(t) for t in result.get("coinjoins") or ()),
        created_at=str(f.get("created_at", "")), created_by=str(f.get("created_by", "")),
        result_sha256=str(f.get("result_sha256", "")), record=record)


def other_findings(snapshot: Mapping[str, Any]) -> list[OtherFinding]:
    """Every non-trace finding as a table (screening hits, flags, anything else)."""
    out: list[OtherFinding] = []
    for f in snapshot.get("findings") or []:
        kind = str(f.get("kind", ""))
        if kind == "trace":
            continue
        result = f.get("result")
        if kind == "screening":
            columns, rows = _screening_table(result)
        elif kind == "flags":
            columns, rows = _flags_table(result)
        else:
            columns, rows = _generic_table(result)
        out.append(OtherFinding(str(f.get("id", "?")), kind, str(f.get("created_at", "")),
                                str(f.get("created_by", "")), str(f.get("result_sha256", "")),
                                columns, rows))
    return out


def _rows_of(result: Any, key: str) -> list[Mapping[str, Any]]:
    if isinstance(result, Mapping):
        result = result.get(key, result.get("results", []))
    return [r for r in result or [] if isinstance(r, Mapping)]


def _screening_table(result: Any) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    columns = ("address", "verdict", "categories", "actors", "sanctions")
    rows = []
    for r in _rows_of(result, "addresses"):
        sanctions = "; ".join(
            str(s.get("name") or s.get("uid") or s.get("entry") or "listed")
            for s in r.get("sanctions") or [])
        rows.append((str(r.get("address") or r.get("input") or ""), str(r.get("verdict", "")),
                     ", ".join(str(c) for c in r.get("categories") or []),
                     ", ".join(str(a) for a in r.get("actors") or []), sanctions))
    return columns, tuple(rows)


def _flags_table(result: Any) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    columns = ("rule", "version", "subject", "explanation", "evidence")
    rows = []
    for r in _rows_of(result, "hits"):
        evidence = "; ".join(
            f"{e.get('role', '')} {e.get('txid', '')} @{e.get('height', '')} "
            f"{e.get('amount', '')} sat" for e in r.get("evidence") or [])
        rows.append((str(r.get("rule", "")), str(r.get("version", "")),
                     str(r.get("subject") or "(whole store)"), str(r.get("explanation", "")),
                     evidence))
    return columns, tuple(rows)


def _generic_table(result: Any) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    if isinstance(result, Mapping):
        items = sorted(result.items())
        return ("field", "value"), tuple((str(k), _short_json(v)) for k, v in items)
    rows = [r for r in result or [] if isinstance(r, Mapping)]
    columns = tuple(sorted({str(k) for r in rows for k in r}))
    return columns, tuple(tuple(_short_json(r.get(c)) for c in columns) for r in rows)


def _short_json(value: Any, limit: int = 200) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- identifiers and services, for exports ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressFact:
    """An address met in the case, with what is known of it."""

    chain: str
    network: str
    ticker: str
    address: str
    received: int  # tainted amount it received in the traces
    heights: tuple[int, ...]
    categories: tuple[str, ...]  # endpoint categories ("exchange", "unspent", ...)
    labels: tuple[str, ...]  # tag labels (the service it belongs to)
    sources: tuple[str, ...]  # "trace F0001", "attached"


@dataclass(frozen=True, slots=True)
class TxFact:
    """A transaction of a trace with its tainted flows."""

    chain: str
    network: str
    ticker: str
    decimals: int
    txid: str
    height: int
    inputs: tuple[tuple[str | None, int], ...]  # (address, tainted amount) per spent output
    outputs: tuple[tuple[str | None, int | None, int], ...]  # (address, vout, amount)


def addresses(snapshot: Mapping[str, Any]) -> list[AddressFact]:
    """Every address of the traces and the attachments, sorted by chain and address."""
    acc: dict[tuple[str, str, str], dict[str, Any]] = {}

    def entry(chain: str, network: str, ticker: str, address: str) -> dict[str, Any]:
        return acc.setdefault((chain, network, address), {
            "ticker": ticker, "received": 0, "heights": set(), "categories": set(),
            "labels": set(), "sources": set()})

    for t in trace_findings(snapshot):
        for n in t.nodes:
            if n.address:
                e = entry(t.chain, t.network, t.coin.ticker, n.address)
                e["received"] += n.amount
                e["heights"].add(n.height)
                e["sources"].add(f"trace {t.id}")
        for p in t.endpoints:
            if p.address:
                e = entry(t.chain, t.network, t.coin.ticker, p.address)
                e["heights"].add(p.height)
                e["categories"].add(p.category)
                if p.label:
                    e["labels"].add(p.label)
                e["sources"].add(f"trace {t.id}")
    for a in (snapshot.get("attachments") or {}).get("addresses") or []:
        chain, network = str(a.get("chain", "bitcoin")), str(a.get("network", "mainnet"))
        e = entry(chain, network, coin_of(chain, network).ticker, str(a["address"]))
        e["sources"].add("attached")
    return [
        AddressFact(chain, network, e["ticker"], address, e["received"],
                    tuple(sorted(e["heights"])), tuple(sorted(e["categories"])),
                    tuple(sorted(e["labels"])), tuple(sorted(e["sources"])))
        for (chain, network, address), e in sorted(acc.items())
    ]


def transactions(snapshot: Mapping[str, Any]) -> list[TxFact]:
    """Every transaction of the traces' flows (one entry per chain and txid), by height."""
    acc: dict[tuple[str, str, str], dict[str, Any]] = {}
    names_of: dict[tuple[str, str], dict[str, str | None]] = {}
    for t in trace_findings(snapshot):
        names = names_of.setdefault((t.chain, t.network), {})
        names.update({n.key: n.address for n in t.nodes})
        names.update({p.key: p.address for p in t.endpoints if p.address})
        for f in t.flows:
            e = acc.setdefault((t.chain, t.network, f.txid), {
                "coin": t.coin, "height": f.height, "in": {}, "out": {}})
            e["in"][f.from_key] = e["in"].get(f.from_key, 0) + f.amount
            e["out"][f.to_key] = e["out"].get(f.to_key, 0) + f.amount
    out = []
    for (chain, network, txid), e in acc.items():
        names = names_of[(chain, network)]
        outputs = []
        for key, amount in sorted(e["out"].items(), key=lambda kv: _vout_order(kv[0])):
            vout = _vout_of(key)
            outputs.append((names.get(key), vout, amount))
        out.append(TxFact(chain, network, e["coin"].ticker, e["coin"].decimals, txid,
                          e["height"],
                          tuple((names.get(k), a) for k, a in sorted(e["in"].items())),
                          tuple(outputs)))
    return sorted(out, key=lambda x: (x.chain, x.network, x.height, x.txid))


def _vout_of(key: str) -> int | None:
    tail = key.rsplit(":", 1)[1]
    return None if tail == FEE else int(tail)


def _vout_order(key: str) -> tuple[int, int]:
    vout = _vout_of(key)
    return (1, 0) if vout is None else (0, vout)


@dataclass(frozen=True, slots=True)
class Service:
    """A service (exchange, ...) that trace endpoints were attributed to."""

    label: str
    category: str
    addresses: tuple[str, ...]
    jurisdiction: str | None
    legal_entity: str | None


def services(snapshot: Mapping[str, Any]) -> list[Service]:
    """The labelled endpoint services of the traces (by label), with the jurisdiction and
    legal entity of a request addressed to them when the case holds one."""
    acc: dict[str, dict[str, Any]] = {}
    for t in trace_findings(snapshot):
        for p in t.endpoints:
            if p.label and p.category not in ("unspent", FEE, "coinbase"):
                e = acc.setdefault(p.label, {"category": p.category, "addresses": set()})
                if p.address:
                    e["addresses"].add(p.address)
    known = _addressees(snapshot.get("requests") or [])
    return [
        Service(label, e["category"], tuple(sorted(e["addresses"])),
                known.get(label, {}).get("jurisdiction"), known.get(label, {}).get("legal_entity"))
        for label, e in sorted(acc.items())
    ]


def _addressees(requests: Iterable[Any]) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for r in requests:
        if not isinstance(r, Mapping):
            continue
        a = r.get("addressee")
        if not isinstance(a, Mapping):
            continue
        for key in ("label", "actor", "name"):
            if a.get(key):
                out[str(a[key])] = {"jurisdiction": a.get("jurisdiction"),
                                    "legal_entity": a.get("legal_entity")}
    return out
