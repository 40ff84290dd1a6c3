"""Status, approval and deadlines of legal requests.

Status flow (the software never sends anything; people do and record it)::

    draft --approve--> approved --submitted--> submitted --> answered | expired
      \\--withdrawn       \\--withdrawn

Approval is a four-eyes step: the approver needs the ``approve`` capability and may not be the
principal who drafted the request. Approval starts the clock: each template's deadlines
(period and reminders) are computed from the approval date. A template's ``deadlines.urgent``
replaces the period by a number of hours from the approval time when its yes/no field is yes
(an EPOC in an emergency: 8 hours instead of 10 days); ``period_hours`` and ``expires_at`` then
record it as such.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cointrail.auth import require
from cointrail.errors import InputError, NotFoundError, PermissionDeniedError
from cointrail.legal.docx import html_to_docx
from cointrail.legal.drafting import dump, letter_context, utc_now
from cointrail.legal.render import html_to_pdf, render_html
from cointrail.legal.template import Template, load_template

if TYPE_CHECKING:
    from cointrail.cases.case import Case

STATUSES = ("draft", "approved", "submitted", "answered", "expired", "withdrawn")
#: Status changes `set_status` makes; approval goes through `approve` only.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"withdrawn"}),
    "approved": frozenset({"submitted", "withdrawn"}),
    "submitted": frozenset({"answered", "expired"}),
}
OPEN = frozenset({"approved", "submitted"})


@dataclass(frozen=True, slots=True)
class Due:
    """A reminder or an expiry that is due."""

    case: str
    request: str
    kind: str
    status: str
    reminder: str
    due: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "request": self.request, "kind": self.kind,
                "status": self.status, "reminder": self.reminder, "due": self.due,
                "text": self.text}


def load_request(case: Case, request_id: str) -> dict[str, Any]:
    path = case.folder / "requests" / request_id.upper() / "request.json"
    if not path.is_file():
        raise NotFoundError(f"case {case.folder.name} has no request {request_id.upper()}; "
                            "`cointrail request list` shows them")
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def deadlines(template: Template, doc: Mapping[str, Any], start: date,
              started_at: datetime | None = None) -> dict[str, Any]:
    """The period and reminders of a request approved on `start` (dates as ISO text).

    When the template's urgent field is yes, the period is its hours from `started_at` (the
    approval time; midnight UTC of `start` when not given): ``period_hours``, ``expires_at``
    and ``urgent`` say so, and ``expires`` is the date it falls on."""
    domestic = bool(doc["domestic"])
    period = None
    if template.period_field is not None:
        value = doc["fields"].get(template.period_field)
        period = int(value) if value is not None else None
    if period is not None and template.minimum_days is not None and period < template.minimum_days:
        raise InputError(f"{template.period_field} {period} is below the minimum "
                         f"{template.minimum_days} days")
    expires = None if period is None else start + timedelta(days=period)
    hours, expires_at, urgent = None, None, None
    u = template.urgent
    if u is not None and doc["fields"].get(u.field) is True:
        began = started_at or datetime.combine(start, time(0), UTC)
        end = began + timedelta(hours=u.period_hours)
        period, hours, expires = None, u.period_hours, end.date()
        expires_at = end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        urgent = {"field": u.field, "started_at": began.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"), "text": u.text}
    reminders = []
    for r in template.reminders:
        if (r.when == "domestic" and not domestic) or (r.when == "international" and domestic):
            continue
        if r.day is not None:
            due = start + timedelta(days=r.day)
        elif expires is not None and r.before_expiry_days is not None:
            due = expires - timedelta(days=r.before_expiry_days)
        else:
            continue
        reminders.append({"id": r.id, "due": due.isoformat(), "text": r.text})
    return {"start": start.isoformat(), "period_days": period, "period_hours": hours,
            "expires": None if expires is None else expires.isoformat(),
            "expires_at": expires_at, "urgent": urgent,
            "reminders": sorted(reminders, key=lambda r: r["due"])}


def _write(case: Case, doc: dict[str, Any], action: str, what: str) -> None:
    case.add_artefact(f"requests/{doc['id']}/request.json", dump(doc), action=action,
                      what=what, parameters={"request": doc["id"], "status": doc["status"]},
                      replace_existing=True)


def approve(case: Case, request_id: str, *, store_root: Path | None = None,
            today: date | None = None) -> dict[str, Any]:
    """Approve a draft for the case's principal: ``approve`` capability, and not its drafter.
    Re-renders the letter without the draft banner and starts its deadlines."""
    by = case.principal
    require(by, "approve", "approve a legal request")
    doc = load_request(case, request_id)
    if doc["status"] != "draft":
        raise InputError(f"request {doc['id']} is {doc['status']}; only a draft can be approved")
    if doc["drafted_by"] == by.name:
        raise PermissionDeniedError(
            f"{by.name} drafted request {doc['id']} and may not approve it (four-eyes rule); "
            "another principal with the approver role must approve it")
    template = load_template(doc["kind"], store_root)
    if template.version != doc["template"]["version"]:
        raise InputError(f"request {doc['id']} was drafted from {template.id} "
                         f"v{doc['template']['version']}; the template is now "
                         f"v{template.version}. Draft it again before approving.")
    at = utc_now()
    start = today or date.fromisoformat(at[:10])
    approved_at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    doc["deadlines"] = deadlines(template, doc, start,
                                 datetime.combine(start, approved_at.timetz()))
    doc["status"], doc["approved_at"], doc["approved_by"] = "approved", at, by.name
    doc["history"].append({"at": at, "who": by.name, "status": "approved",
                           "note": "approved (four-eyes)"})
    html = render_html(template, letter_context(doc, template), approved=True)
    letters = (("letter.html", html.encode("utf-8")), ("letter.pdf", html_to_pdf(html)),
               ("letter.docx", html_to_docx(html, title=str(doc.get("subject", "")))))
    for name, data in letters:
        art = case.add_artefact(f"requests/{doc['id']}/{name}", data, action="request.approve",
                                what=f"request {doc['id']}: approved letter {name}",
                                parameters={"request": doc["id"]}, replace_existing=True)
        doc["files"][name] = {"path": art.path, "sha256": art.sha256, "size": art.size}
    _write(case, doc, "request.approve",
           f"approved {doc['kind']} request {doc['id']} (drafted by {doc['drafted_by']})")
    return doc


def set_status(case: Case, request_id: str, status: str, note: str = "") -> dict[str, Any]:
    """Record a status change made by hand (submitted, answered, expired, withdrawn)."""
    by = case.principal
    require(by, "draft", "change the status of a legal request")
    doc = load_request(case, request_id)
    if status == "approved":
        raise InputError("approval is its own step: cointrail request approve CASE REQUEST")
    allowed = TRANSITIONS.get(doc["status"], frozenset())
    if status not in allowed:
        raise InputError(f"request {doc['id']} is {doc['status']}; it can become "
                         f"{', '.join(sorted(allowed)) or 'nothing else'}, not {status!r}")
    at = utc_now()
    doc["status"] = status
    doc["history"].append({"at": at, "who": by.name, "status": status, "note": note})
    _write(case, doc, "request.status", f"request {doc['id']} marked {status}"
           + (f": {note}" if note else ""))
    return doc


def due(requests: Sequence[Mapping[str, Any]], today: date,
        within_days: int = 0) -> list[Due]:
    """Reminders of open (approved or submitted) requests due by `today` + `within_days`, and
    an ``expired`` line for each whose period has run out."""
    limit = today + timedelta(days=within_days)
    out = []
    for doc in requests:
        if doc.get("status") not in OPEN or not doc.get("deadlines"):
            continue
        ref = str(doc["case"]["reference"])
        d = doc["deadlines"]
        for r in d["reminders"]:
            if date.fromisoformat(r["due"]) <= limit:
                out.append(Due(ref, doc["id"], doc["kind"], doc["status"], r["id"], r["due"],
                               r["text"]))
        if d.get("expires") and date.fromisoformat(d["expires"]) <= limit:
            out.append(Due(ref, doc["id"], doc["kind"], doc["status"], "expires", d["expires"],
                           "The period ends: mark the request answered or expired."))
    return sorted(out, key=lambda x: (x.due, x.case, x.request))
