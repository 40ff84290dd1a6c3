"""The contact directory (LEGAL.md §2 row 13): legal entities behind attributed services, and
each state's 24/7 point of contact and central authority.

The agency keeps it as a YAML file and imports it with ``cointrail request contacts import
FILE``; the checked file is stored as ``<store>/contacts.yaml``. Format::

    version: 1
    entities:                       # legal entities that receive requests
      - name: Example Exchange Europe Ltd     # required
        country: MT                            # required, ISO 3166-1 alpha-2
        address: 1 Harbour St, Valletta        # required
        actors: [binance]                      # actor ids (ActorPacks) and/or
        labels: [Binance]                      # tag labels it answers for (one of the two)
        le_portal: https://...                 # at least one of le_portal, le_email
        le_email: lawenforcement@example.com
    states:
      - country: MT                            # required
        poc_247: "Malta Police Cybercrime Unit, +356 ..., 247@example.mt"
        central_authority: "Office of the Attorney General, ..."

Invariant: a directory that loads has no problem; every problem of a file is reported at once
with its line. Only what the agency is entitled to store belongs here (the CoE keeps the
restricted 24/7 directory; SIRIUS notes are never redistributed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cointrail.errors import InputError, NotFoundError, Problem, ValidationError

CONTACTS_FILE = "contacts.yaml"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class LegalEntity:
    name: str
    country: str
    address: str
    actors: tuple[str, ...]
    labels: tuple[str, ...]
    le_portal: str | None
    le_email: str | None
    line: int | None = None

    @property
    def le_contact(self) -> str:
        return " / ".join(x for x in (self.le_portal, self.le_email) if x)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "country": self.country, "address": self.address,
                "actors": list(self.actors), "labels": list(self.labels),
                "le_portal": self.le_portal, "le_email": self.le_email,
                "le_contact": self.le_contact}


@dataclass(frozen=True, slots=True)
class StateContacts:
    country: str
    poc_247: str | None
    central_authority: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"country": self.country, "poc_247": self.poc_247,
                "central_authority": self.central_authority}


@dataclass(frozen=True, slots=True)
class ContactDirectory:
    entities: tuple[LegalEntity, ...]
    states: tuple[StateContacts, ...]
    source: str

    def entities_for(self, actor_id: str | None, labels: set[str]) -> list[LegalEntity]:
        """Entities registered for the actor id, or else for one of the labels (case-blind)."""
        if actor_id is not None:
            hits = [e for e in self.entities if actor_id in e.actors]
            if hits:
                return hits
        wanted = {label.casefold() for label in labels}
        return [e for e in self.entities if wanted & {x.casefold() for x in e.labels}]

    def state(self, country: str) -> StateContacts | None:
        for s in self.states:
            if s.country == country:
                return s
        return None


def _str(v: Any) -> str | None:
    return None if v is None or str(v).strip() == "" else str(v).strip()


def _list(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, list):
        return tuple(str(x) for x in v if x is not None)
    return (str(v),)


def parse_contacts(text: str | bytes, source: str) -> ContactDirectory:
    """A checked directory from YAML text; ValidationError listing every problem with its line."""
    import yaml

    from cointrail.attribution.taxonomy import load_taxonomy
    from cointrail.attribution.yamlevents import load_with_lines

    try:
        doc = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValidationError("the contact directory is not valid YAML", [Problem(
            source, None if mark is None else int(mark.line) + 1,
            str(exc).splitlines()[0])]) from exc
    if not isinstance(doc, dict):
        raise ValidationError("invalid contact directory", [Problem(
            source, 1, "the file must be a mapping with 'entities' and 'states'")])
    countries = load_taxonomy().countries
    problems: list[Problem] = []
    known = {"version", "entities", "states", "updated", "title"}
    for key in doc:
        if key not in known:
            problems.append(Problem(source, getattr(doc, "line", None), f"unknown key {key!r}; use "
                                                      "entities, states, version, updated"))
    entities: list[LegalEntity] = []
    raw_entities = doc.get("entities") or []
    if not isinstance(raw_entities, list):
        problems.append(Problem(source, getattr(doc, "line", None), "'entities' must be a list"))
        raw_entities = []
    seen: set[tuple[str, str]] = set()
    for e in raw_entities:
        line = getattr(e, "line", None)
        if not isinstance(e, dict):
            problems.append(Problem(source, line, "an entity must be a mapping"))
            continue
        for key in e:
            if key not in {"name", "country", "address", "actors", "labels", "le_portal",
                           "le_email", "note"}:
                problems.append(Problem(source, line, f"unknown entity field {key!r}"))
        name, country, address = _str(e.get("name")), _str(e.get("country")), \
            _str(e.get("address"))
        who = name or "an entity"
        for key, value in (("name", name), ("country", country), ("address", address)):
            if value is None:
                problems.append(Problem(source, line, f"{who}: {key!r} is required"))
        if country is not None and country not in countries:
            problems.append(Problem(source, line, f"{who}: country {country!r} is not an "
                                                  "ISO 3166-1 alpha-2 code"))
        actors, labels = _list(e.get("actors")), _list(e.get("labels"))
        if not actors and not labels:
            problems.append(Problem(source, line, f"{who}: give 'actors' (actor ids) or "
                                                  "'labels' (tag labels) it answers for"))
        portal, email = _str(e.get("le_portal")), _str(e.get("le_email"))
        if portal is None and email is None:
            problems.append(Problem(source, line, f"{who}: give 'le_portal' or 'le_email' "
                                                  "(where law-enforcement requests go)"))
        if email is not None and not _EMAIL.fullmatch(email):
            problems.append(Problem(source, line, f"{who}: le_email {email!r} is not an "
                                                  "e-mail address"))
        if name is not None and country is not None:
            if (name, country) in seen:
                problems.append(Problem(source, line, f"{who} ({country}) is listed twice"))
            seen.add((name, country))
        if name and country and address:
            entities.append(LegalEntity(name, country, address, actors, labels, portal, email,
                                        line))
    states: list[StateContacts] = []
    raw_states = doc.get("states") or []
    if not isinstance(raw_states, list):
        problems.append(Problem(source, getattr(doc, "line", None), "'states' must be a list"))
        raw_states = []
    seen_states: set[str] = set()
    for s in raw_states:
        line = getattr(s, "line", None)
        if not isinstance(s, dict):
            problems.append(Problem(source, line, "a state must be a mapping"))
            continue
        for key in s:
            if key not in {"country", "poc_247", "central_authority", "note"}:
                problems.append(Problem(source, line, f"unknown state field {key!r}"))
        country = _str(s.get("country"))
        if country is None or country not in countries:
            problems.append(Problem(source, line, f"state country {country!r} is not an "
                                                  "ISO 3166-1 alpha-2 code"))
            continue
        if country in seen_states:
            problems.append(Problem(source, line, f"state {country} is listed twice"))
        seen_states.add(country)
        poc, central = _str(s.get("poc_247")), _str(s.get("central_authority"))
        if poc is None and central is None:
            problems.append(Problem(source, line, f"state {country}: give 'poc_247' or "
                                                  "'central_authority'"))
        states.append(StateContacts(country, poc, central))
    if problems:
        raise ValidationError(f"the contact directory has {len(problems)} problem(s)", problems)
    return ContactDirectory(tuple(entities), tuple(states), source)


def import_contacts(store_root: Path, path: Path) -> ContactDirectory:
    """Check `path` and, when it has no problem, store its bytes as ``<store>/contacts.yaml``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read contact directory {path}: {exc.strerror}") from exc
    directory = parse_contacts(data, str(path))
    Path(store_root).mkdir(parents=True, exist_ok=True)
    target = Path(store_root) / CONTACTS_FILE
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return directory


def load_contacts(store_root: Path) -> ContactDirectory:
    """The imported directory; NotFoundError when none was imported."""
    target = Path(store_root) / CONTACTS_FILE
    if not target.exists():
        raise NotFoundError(f"no contact directory in {store_root}; import one with "
                            "cointrail request contacts import FILE")
    return parse_contacts(target.read_bytes(), str(target))
