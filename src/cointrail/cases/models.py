"""Case records: metadata (``case.json``), custody entries, findings, and the rules that check
new case metadata (every missing or wrong field listed at once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from cointrail.errors import Problem, ValidationError

REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{2,63}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SCHEMA_VERSION = 1


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0 markings."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Authority:
    """The investigating authority: `poc_247` is its 24/7 point of contact (UNCC art 41)."""

    name: str
    unit: str = ""
    contact: str = ""
    email: str = ""
    poc_247: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class OffenceRef:
    """The case's offence: a taxonomy `code` with its taxonomy fields copied in, plus the
    national provision and its maximum penalty (drives the UNCC serious-crime test)."""

    code: str
    instrument: str
    article: str
    title: str
    speech_or_content: bool
    national_law: str = ""
    max_penalty_years: int | None = None
    taxonomy_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Head:
    """The last custody entry: its `seq` and `hash` (seq 0 and 64 zeros for an empty log)."""

    seq: int
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class CaseMeta:
    """The content of ``case.json`` (ADR 0004)."""

    reference: str
    title: str
    offence: OffenceRef
    jurisdiction: str
    authority: Authority
    investigators: tuple[str, ...]
    facts: str
    legal_basis: str
    purpose: str
    retention_days: int
    tlp: Tlp
    opened_at: str
    opened_by: str
    chain: str
    network: str
    status: CaseStatus = CaseStatus.OPEN
    closed_at: str | None = None
    head: Head = field(default_factory=lambda: Head(0, "0" * 64))
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "reference": self.reference, "title": self.title,
            "offence": self.offence.to_dict(), "jurisdiction": self.jurisdiction,
            "authority": self.authority.to_dict(), "investigators": list(self.investigators),
            "facts": self.facts, "legal_basis": self.legal_basis, "purpose": self.purpose,
            "retention_days": self.retention_days, "tlp": str(self.tlp),
            "opened_at": self.opened_at, "opened_by": self.opened_by, "chain": self.chain,
            "network": self.network, "status": str(self.status), "closed_at": self.closed_at,
            "head": self.head.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CaseMeta:
        return cls(
            reference=doc["reference"], title=doc["title"],
            offence=OffenceRef(**doc["offence"]), jurisdiction=doc["jurisdiction"],
            authority=Authority(**doc["authority"]),
            investigators=tuple(doc["investigators"]), facts=doc["facts"],
            legal_basis=doc["legal_basis"], purpose=doc["purpose"],
            retention_days=int(doc["retention_days"]), tlp=Tlp(doc["tlp"]),
            opened_at=doc["opened_at"], opened_by=doc["opened_by"], chain=doc["chain"],
            network=doc["network"], status=CaseStatus(doc["status"]),
            closed_at=doc.get("closed_at"), head=Head(**doc["head"]),
            schema=int(doc.get("schema", SCHEMA_VERSION)),
        )


@dataclass(frozen=True, slots=True)
class CustodyEntry:
    """One line of ``custody.jsonl``. `hash` is the SHA-256 of the canonical JSON of every
    other field; `prev_hash` is the previous entry's `hash` (64 zeros for seq 1)."""

    seq: int
    at: str
    who: str
    role: str
    action: str
    what: str
    parameters: dict[str, Any]
    result_sha256: str | None
    tool_version: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CustodyEntry:
        return cls(**{f.name: doc[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Finding:
    """A query result kept for evidence; its raw bytes are in `path` (``findings/F0001.json``)."""

    id: str
    kind: str
    created_at: str
    created_by: str
    request: dict[str, Any]
    record: dict[str, Any]
    result_sha256: str
    path: str
    seq: int = 0  # the custody entry that recorded it

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "created_at": self.created_at,
                "created_by": self.created_by, "request": self.request, "record": self.record,
                "result_sha256": self.result_sha256, "path": self.path, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Artefact:
    """A file under the case folder, as recorded on the custody log."""

    path: str
    sha256: str
    size: int
    action: str
    at: str
    who: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: Fields `case new` must be given, with the option that sets each.
REQUIRED_FIELDS: dict[str, str] = {
    "reference": "--reference", "title": "--title", "offence": "--offence",
    "jurisdiction": "--jurisdiction", "authority.name": "--authority",
    "investigators": "--investigator", "facts": "--facts", "legal_basis": "--legal-basis",
    "purpose": "--purpose", "retention_days": "--retention-days",
}


def check_reference(reference: str) -> str:
    """`reference` upper-cased if it matches ``^[A-Z0-9][A-Z0-9._-]{2,63}$``; else
    ValidationError. References name folders, so nothing else is accepted."""
    text = reference.strip().upper()
    if not REFERENCE.fullmatch(text):
        raise ValidationError("invalid case reference", [Problem(
            "reference", None, f"{reference!r} must be 3-64 characters of A-Z, 0-9, '.', '_' "
            "or '-', starting with a letter or digit (e.g. CT-2026-0001)")])
    return text


def validation_problems(values: Mapping[str, Any]) -> list[Problem]:
    """Every problem of new case metadata `values` (flat keys as in REQUIRED_FIELDS, plus
    ``authority.email``, ``tlp``, ``max_penalty_years``), all at once."""
    from cointrail.cases import offences

    problems: list[Problem] = []
    for name, option in REQUIRED_FIELDS.items():
        value = values.get(name)
        if value is None or (isinstance(value, str | list | tuple) and not value):
            problems.append(Problem(name, None, f"missing; give {option}"))
    ref = values.get("reference")
    if ref and not REFERENCE.fullmatch(str(ref).strip().upper()):
        problems.append(Problem("reference", None, f"{ref!r} must be 3-64 characters of A-Z, "
                                "0-9, '.', '_' or '-', starting with a letter or digit"))
    code = values.get("offence")
    if code:
        try:
            offences.get(str(code))
        except ValueError as exc:
            problems.append(Problem("offence", None, str(exc)))
    country = values.get("jurisdiction")
    if country and not COUNTRY.fullmatch(str(country).strip().upper()):
        problems.append(Problem("jurisdiction", None,
                                f"{country!r} is not an ISO 3166-1 alpha-2 code (e.g. DE)"))
    days = values.get("retention_days")
    if days is not None and (not isinstance(days, int) or days <= 0):
        problems.append(Problem("retention_days", None, f"{days!r} must be a whole number of "
                                "days above 0"))
    years = values.get("max_penalty_years")
    if years is not None and (not isinstance(years, int) or years < 0):
        problems.append(Problem("max_penalty_years", None, f"{years!r} must be whole years"))
    email = values.get("authority.email")
    if email and not EMAIL.fullmatch(str(email)):
        problems.append(Problem("authority.email", None, f"{email!r} is not an e-mail address"))
    tlp = values.get("tlp")
    if tlp is not None:
        try:
            Tlp(str(tlp).strip().lower())
        except ValueError:
            problems.append(Problem("tlp", None, f"{tlp!r}: use one of "
                                    f"{', '.join(t.value for t in Tlp)}"))
    return problems
