"""What an export is for: recipient, legal basis, formats, and the use restrictions every file
carries (purpose, originating state, TLP, onward-transfer consent; UNCC art 36 and 40, LEGAL.md
§2 rows 18 and 20)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cointrail.errors import InputError
from cointrail.reporting.facts import case_meta, head_time
from cointrail.reporting.tlp import Tlp, parse_tlp

FORMATS: tuple[str, ...] = ("stix", "misp", "ftm", "goaml", "csv", "xlsx")
DEFAULT_ONWARD = ("no onward transfer and no use for another purpose without the prior written "
                  "consent of the originating authority")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How to export a case. `block_times` maps block heights to header times (Unix seconds);
    MISP and goAML need a time for every transaction (the CLI reads them from the store)."""

    recipient: str
    legal_basis: str
    formats: tuple[str, ...] = FORMATS
    tlp: str | None = None  # default: the case's TLP
    goaml_profile: str = "generic"
    onward_transfer: str = DEFAULT_ONWARD
    created_at: str | None = None  # default: the snapshot's last custody time
    block_times: Mapping[int, int] = field(default_factory=dict)

    def checked(self) -> ExportOptions:
        problems = []
        if not self.recipient.strip():
            problems.append("the recipient (--to) is empty")
        if not self.legal_basis.strip():
            problems.append("the legal basis (--legal-basis) is empty")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown:
            problems.append(f"unknown format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
        if not self.formats:
            problems.append(f"no format chosen; use some of {', '.join(FORMATS)}")
        if problems:
            raise InputError("; ".join(problems))
        return self


@dataclass(frozen=True, slots=True)
class UseRestrictions:
    """The conditions under which the recipient may use the exported data."""

    case_reference: str
    purpose: str
    originating_state: str
    originating_authority: str
    recipient: str
    legal_basis: str
    tlp: Tlp
    onward_transfer: str
    created_at: str

    def text(self) -> str:
        """One paragraph, for formats that can only carry free text."""
        return (f"{self.tlp.label}: {self.tlp.meaning} Use restricted to the purpose: "
                f"{self.purpose}. Originating state: {self.originating_state} "
                f"({self.originating_authority}), case {self.case_reference}. Provided to "
                f"{self.recipient} on the legal basis: {self.legal_basis}. Onward transfer: "
                f"{self.onward_transfer}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_reference": self.case_reference, "purpose": self.purpose,
            "originating_state": self.originating_state,
            "originating_authority": self.originating_authority, "recipient": self.recipient,
            "legal_basis": self.legal_basis, "tlp": self.tlp.label,
            "onward_transfer": self.onward_transfer, "created_at": self.created_at,
        }


def use_restrictions(snapshot: Mapping[str, Any], options: ExportOptions) -> UseRestrictions:
    case = case_meta(snapshot)
    authority = case.get("authority") or {}
    purpose = str(case.get("purpose") or "").strip()
    state = str(case.get("jurisdiction") or "").strip()
    missing = [what for what, value in (("case.purpose", purpose), ("case.jurisdiction", state))
               if not value]
    if missing:
        raise InputError(f"the case has no {' or '.join(missing)}; every export states the "
                         "permitted purpose and the originating state: set them on the case")
    return UseRestrictions(
        case_reference=str(case["reference"]), purpose=purpose, originating_state=state,
        originating_authority=str(authority.get("name") or "not stated"),
        recipient=options.recipient.strip(), legal_basis=options.legal_basis.strip(),
        tlp=parse_tlp(options.tlp or case.get("tlp") or "amber"),
        onward_transfer=options.onward_transfer,
        created_at=options.created_at or head_time(snapshot))
