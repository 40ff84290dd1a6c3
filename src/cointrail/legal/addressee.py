"""Who a request goes to: the trace endpoints at one service, the actor behind them (attribution
store) and the legal entity and state contacts for it (contact directory).

An endpoint selector is a tag label (``Binance``) or an actor id (``binance``), matched
case-blind against each service endpoint's label, the actor of its address (or of the tagged
address it was reached ``via``), and that actor's label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cointrail.errors import NotFoundError
from cointrail.legal.contacts import ContactDirectory, LegalEntity, StateContacts

#: Endpoint categories that are not a service holding customer identity.
NOT_SERVICES: frozenset[str] = frozenset({
    "unspent", "fee", "coinbase", "coinjoin", "limit", "window", "dust", "sanctioned",
})


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    label: str
    jurisdictions: tuple[str, ...]
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "jurisdictions": list(self.jurisdictions),
                "uri": self.uri}


@dataclass(frozen=True, slots=True)
class Addressee:
    """The resolved addressee; `problems` says what could not be resolved (reported with the
    missing fields, never guessed)."""

    selector: str
    labels: tuple[str, ...]
    actor: Actor | None
    legal_entity: LegalEntity | None
    state: StateContacts | None
    problems: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "selector": self.selector, "labels": list(self.labels),
            "actor": None if self.actor is None else self.actor.to_dict(),
            "legal_entity": None if self.legal_entity is None else self.legal_entity.to_dict(),
            "state": None if self.state is None else self.state.to_dict(),
            "service": self.service,
        }

    @property
    def service(self) -> str | None:
        """The service as attributed: the actor's label, else the tag labels of the outputs."""
        if self.actor is not None and self.actor.label:
            return self.actor.label
        return ", ".join(self.labels) or None


def service_outputs(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every endpoint output of a trace result (``Trace.to_dict()``) at a service, with its
    category."""
    out = []
    for category, group in sorted((result.get("endpoints") or {}).items()):
        if category in NOT_SERVICES:
            continue
        for o in group.get("outputs", []):
            if o.get("address"):
                out.append({**o, "category": category})
    return out


def tag_actors(store_root: Path, chain: str, network: str,
               addresses: Sequence[str]) -> dict[str, tuple[str | None, str]]:
    """(actor id, tag label) by address, from the active tags of the attribution store (the
    first tag that names an actor wins). Empty without an attribution store."""
    from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore

    if not addresses or not (Path(store_root) / ATTRIBUTION_DB).exists():
        return {}
    with AttributionStore(store_root, read_only=True) as attr:
        rows = attr.query(
            "SELECT t.address, t.actor, t.label FROM tags t JOIN list_versions v"
            " USING (version_id) WHERE v.active AND t.chain = ? AND t.network = ?"
            " AND t.address IN (SELECT unnest(?)) ORDER BY t.actor IS NULL, t.tag_id",
            [chain, network, sorted(set(addresses))])
    out: dict[str, tuple[str | None, str]] = {}
    for address, actor, label in rows:
        out.setdefault(str(address), (None if actor is None else str(actor), str(label)))
    return out


def load_actor(store_root: Path, actor_id: str) -> Actor | None:
    from cointrail.attribution.db import ATTRIBUTION_DB, AttributionStore

    if not (Path(store_root) / ATTRIBUTION_DB).exists():
        return None
    with AttributionStore(store_root, read_only=True) as attr:
        rows = attr.query(
            "SELECT a.actor_id, a.label, a.jurisdictions, a.uri FROM actors a"
            " JOIN list_versions v USING (version_id) WHERE v.active AND a.actor_id = ?"
            " ORDER BY a.version_id DESC LIMIT 1", [actor_id])
    if not rows:
        return None
    aid, label, juris, uri = rows[0]
    return Actor(str(aid), str(label), tuple(j for j in str(juris or "").split(",") if j),
                 None if uri is None else str(uri))


def select_outputs(result: Mapping[str, Any], selector: str, store_root: Path, chain: str,
                   network: str) -> tuple[list[dict[str, Any]], str | None]:
    """The service outputs the selector names, and the actor id behind them (if tagged).

    NotFoundError lists the services the trace reached when the selector names none."""
    outputs = service_outputs(result)
    keys = [o["address"] for o in outputs] + [o["via"] for o in outputs if o.get("via")]
    tags = tag_actors(store_root, chain, network, keys)
    actor_labels: dict[str, str] = {}
    wanted = selector.strip().casefold()
    chosen: list[dict[str, Any]] = []
    actors: set[str] = set()
    for o in outputs:
        tag = tags.get(o.get("via") or "") or tags.get(o["address"])
        actor_id = tag[0] if tag else None
        names = {str(o.get("label") or "").casefold()}
        if actor_id is not None:
            names.add(actor_id.casefold())
            if actor_id not in actor_labels:
                found = load_actor(store_root, actor_id)
                actor_labels[actor_id] = found.label if found else actor_id
            names.add(actor_labels[actor_id].casefold())
        if wanted in names:
            chosen.append({**o, "actor": actor_id})
            if actor_id is not None:
                actors.add(actor_id)
    if not chosen:
        reached = sorted({f"{o.get('label') or '?'} ({o['category']})" for o in outputs})
        raise NotFoundError(
            f"the trace reached no service named {selector!r}; services reached: "
            f"{', '.join(reached) if reached else 'none'}")
    if len(actors) > 1:
        raise NotFoundError(f"{selector!r} matches outputs of several actors "
                            f"({', '.join(sorted(actors))}); select one actor id")
    return chosen, (next(iter(actors)) if actors else None)


def resolve_addressee(selector: str, outputs: Sequence[Mapping[str, Any]], actor_id: str | None,
                      store_root: Path, contacts: ContactDirectory | None,
                      legal_entity: str | None = None) -> Addressee:
    """The legal entity and state contacts for the chosen outputs. `legal_entity` picks one
    entity by name when the directory lists several for the actor."""
    labels = tuple(sorted({str(o["label"]) for o in outputs if o.get("label")}))
    actor = load_actor(store_root, actor_id) if actor_id else None
    problems: list[str] = []
    entity: LegalEntity | None = None
    state: StateContacts | None = None
    if contacts is None:
        problems.append("no contact directory: import one with cointrail request contacts "
                        "import FILE")
    else:
        names = set(labels) | ({actor.label} if actor else set())
        hits = contacts.entities_for(actor_id, names)
        if legal_entity is not None:
            hits = [e for e in hits if e.name.casefold() == legal_entity.casefold()]
        if not hits:
            problems.append(
                f"the contact directory has no legal entity for actor {actor_id or '-'} / "
                f"labels {', '.join(labels) or '-'}"
                + (f" named {legal_entity!r}" if legal_entity else "")
                + "; add one and re-import it")
        elif len(hits) > 1:
            problems.append(f"several legal entities answer for {selector}: "
                            f"{'; '.join(e.name + ' (' + e.country + ')' for e in hits)}; "
                            "choose one with --field legal_entity=NAME")
        else:
            entity = hits[0]
            state = contacts.state(entity.country)
    return Addressee(selector, labels, actor, entity, state, tuple(problems))
