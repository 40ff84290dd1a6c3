"""Drafting a legal request from a trace finding of a case (LEGAL.md §2 rows 1, 2, 8, 10, 12,
14; §3.1, §3.3, §3.7).

`draft_request` resolves every field of the request's template from the case metadata, the
addressee (attribution + contact directory), the trace (identifiers, block times) and the
user's input, then writes ``requests/R0001/`` through `Case.add_artefact`: ``request.json``,
``letter.html``, ``letter.pdf``, ``letter.docx`` (the editable copy addressees ask for),
``identifiers.csv``, ``identifiers.xlsx``.

Invariants:
- every missing or wrong field is reported at once (ValidationError, one Problem each) and no
  file is written while one remains;
- a request resting on a speech or content offence is held: nothing is drafted until a
  dual-criminality and human-rights check clearing that offence for the requested state is on
  the custody log (`record_check`);
- a kind's own rules come from its template, never from its name here: where it applies
  (``applies``: requesting and requested states, international or domestic), which data
  categories need a minimum penalty (``penalty_threshold``), and which fields are required when
  a yes/no field is yes (``required_if``); a breach is one more problem in the same list;
- nothing is sent: the software writes files; people send them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cointrail.auth import require
from cointrail.errors import InputError, NotFoundError, Problem, ValidationError
from cointrail.legal.addressee import Addressee, resolve_addressee, select_outputs
from cointrail.legal.contacts import ContactDirectory, load_contacts
from cointrail.legal.docx import html_to_docx
from cointrail.legal.identifiers import (
    IdentifierRow,
    block_times,
    format_amount,
    iso_utc,
    write_csv,
    write_xlsx,
)
from cointrail.legal.render import html_to_pdf, render_html, render_subject
from cointrail.legal.template import PRESERVING_KINDS, FieldSpec, Template, load_template
from cointrail.textvalues import yes_no

if TYPE_CHECKING:
    from cointrail.cases.case import Case

SCHEMA = "cointrail.request/1"
CHECK_ACTION = "request.check"
DECISIONS = ("cleared", "refused")
_TRUE = {"yes", "true", "1", "y"}
_FALSE = {"no", "false", "0", "n"}


class RequestHeldError(InputError):
    """The request rests on a speech or content offence and no dual-criminality and
    human-rights check has cleared it for the requested state (LEGAL.md §1.3)."""


@dataclass(frozen=True, slots=True)
class Check:
    """A recorded dual-criminality and human-rights check."""

    offence: str
    state: str
    decision: str
    reasoning: str
    checked_by: str
    checked_at: str
    seq: int


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checks(snapshot: Mapping[str, Any]) -> list[Check]:
    """Every check on the case's custody log, oldest first."""
    out = []
    for e in snapshot.get("custody", []):
        if e.get("action") == CHECK_ACTION:
            p = e["parameters"]
            out.append(Check(p["offence"], p["state"], p["decision"], p["reasoning"], e["who"],
                             e["at"], int(e["seq"])))
    return out


def record_check(case: Case, state: str, decision: str, reasoning: str) -> Check:
    """Record a dual-criminality and human-rights check of the case's offence for requested
    `state`, by the case's principal (who needs the ``approve`` capability)."""
    require(case.principal, "approve", "record a dual-criminality and human-rights check")
    problems = []
    state = state.strip().upper()
    if len(state) != 2 or not state.isalpha():
        problems.append(Problem("state", None, f"{state!r} is not an ISO 3166-1 alpha-2 code"))
    if decision not in DECISIONS:
        problems.append(Problem("decision", None, f"{decision!r}: use cleared or refused"))
    if len(reasoning.strip()) < 20:
        problems.append(Problem("reasoning", None, "give the reasoning (dual criminality in the "
                                                   "requested state, human-rights assessment) "
                                                   "in at least 20 characters"))
    if problems:
        raise ValidationError("check not recorded", problems)
    offence = case.meta().offence.code
    entry = case.log(CHECK_ACTION, f"dual-criminality and human-rights check of {offence} for "
                                   f"{state}: {decision}",
                     parameters={"offence": offence, "state": state, "decision": decision,
                                 "reasoning": reasoning.strip()})
    return Check(offence, state, decision, reasoning.strip(), entry.who, entry.at, entry.seq)


def _is_speech_or_content(offence: Mapping[str, Any]) -> bool:
    from cointrail.cases import offences

    flagged = bool(offence.get("speech_or_content"))
    try:
        return flagged or offences.get(str(offence.get("code", ""))).speech_or_content
    except InputError:
        return flagged


def _hold(snapshot: Mapping[str, Any], state: str | None) -> None:
    offence = snapshot["case"]["offence"]
    if not _is_speech_or_content(offence):
        return
    code = offence["code"]
    latest = None
    for c in checks(snapshot):
        if c.offence == code and c.state == state:
            latest = c
    if latest is None or latest.decision != "cleared":
        why = ("no check is recorded" if latest is None else
               f"the check of {latest.checked_at} by {latest.checked_by} refused it")
        shown = state or "(unknown: resolve the addressee first)"
        raise RequestHeldError(
            f"request held: offence {code} ({offence.get('title')}) is a speech or content "
            f"offence and {why} for requested state {shown}. A principal with approval "
            "authority must record a dual-criminality and human-rights check first: "
            f"cointrail request check {snapshot['case']['reference']} --state "
            f"{state or 'CC'} --decision cleared --reasoning \"...\"")


def _dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _convert(spec: FieldSpec, value: Any, problems: list[Problem]) -> Any:
    where = f"field {spec.name}"
    if spec.type == "int":
        try:
            number = int(str(value).strip())
        except ValueError:
            problems.append(Problem(where, None, f"{value!r} is not a whole number"))
            return None
        if spec.minimum is not None and number < spec.minimum:
            problems.append(Problem(where, None, f"{number} is below the minimum "
                                                 f"{spec.minimum} ({spec.label})"))
        return number
    if spec.type == "bool":
        answer = yes_no(value, _TRUE, _FALSE)
        if answer is None:
            problems.append(Problem(where, None, f"{value!r}: answer yes or no"))
        return answer
    if spec.type == "list" and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _trace_context(snapshot: Mapping[str, Any], finding_id: str, selector: str,
                   store_root: Path, problems: list[Problem]
                   ) -> tuple[dict[str, Any], list[IdentifierRow], list[dict[str, Any]],
                              str | None, dict[str, Any]]:
    from cointrail.chain.spec import get_chain

    wanted = finding_id.strip().upper()
    finding = next((f for f in snapshot.get("findings", []) if f["id"] == wanted), None)
    if finding is None:
        known = ", ".join(f"{f['id']} ({f['kind']})" for f in snapshot.get("findings", []))
        raise NotFoundError(f"case {snapshot['case']['reference']} has no finding {wanted}; "
                            f"findings: {known or 'none'}")
    if finding["kind"] != "trace":
        raise InputError(f"finding {wanted} is a {finding['kind']}; a request needs a trace "
                         "finding (cointrail trace ... --case)")
    result = finding["result"]
    record = result.get("record") or {}
    chain = str(record.get("chain") or snapshot["case"].get("chain", "bitcoin"))
    network = str(record.get("network") or snapshot["case"].get("network", "mainnet"))
    spec = get_chain(chain, network)
    outputs, actor_id = select_outputs(result, selector, store_root, chain, network)
    try:
        times = block_times(store_root, chain, network, [int(o["height"]) for o in outputs])
    except NotFoundError as exc:
        times = {}
        problems.append(Problem("date_range", None, f"block times unavailable: {exc}"))
    rows = [IdentifierRow(
        chain, network, spec.ticker, str(o["address"]), str(o["txid"]), o.get("vout"),
        int(o["amount_sat"]), format_amount(int(o["amount_sat"]), spec.decimals),
        int(o["height"]), iso_utc(times[int(o["height"])]) if int(o["height"]) in times
        else None, o.get("label"), o.get("via"), str(o["category"]))
        for o in sorted(outputs, key=lambda o: (o["height"], o["txid"], o.get("vout") or 0))]
    missing_times = sorted({r.height for r in rows if r.block_time_utc is None})
    if missing_times and times:
        problems.append(Problem("date_range", None, f"the store has no block at height(s) "
                                                    f"{missing_times}"))
    stamps = [r.block_time_utc for r in rows if r.block_time_utc]
    date_range = ({"start": min(stamps), "end": max(stamps)}
                  if stamps and not missing_times else None)
    total = sum(r.amount_base_units for r in rows)
    label = ", ".join(sorted({r.label for r in rows if r.label})) or selector
    span = (f"between {date_range['start']} and {date_range['end']} (UTC)"
            if date_range else "(dates unavailable)")
    summary = (
        f"A {result.get('direction', 'forward')} trace ({result.get('model', '?')} taint model; "
        f"case finding {wanted}) from {result.get('start')} followed "
        f"{format_amount(int(result.get('seed_amount_sat', 0)), spec.decimals)} {spec.ticker}; "
        f"{len(rows)} output(s) totalling {format_amount(total, spec.decimals)} {spec.ticker} "
        f"reached the service attributed as \"{label}\" in {len({r.txid for r in rows})} "
        f"transaction(s) {span}.")
    earlier = [f"{r['id']} ({r['kind']}, {r['status']}, {r['drafted_at'][:10]})"
               for r in snapshot.get("requests", []) if r.get("kind") in PRESERVING_KINDS]
    ctx = {
        "identifiers": [r.to_dict() for r in rows],
        "date_range": None if date_range is None else
        f"{date_range['start']} – {date_range['end']}",
        "total_amount": f"{format_amount(total, spec.decimals)} {spec.ticker}",
        "summary": summary,
        "preserved_refs": "; ".join(earlier) or None,
        "hash_list": [{"path": a["path"], "sha256": a["sha256"]}
                      for a in snapshot.get("artefacts", [])]
        + [{"path": f["path"], "sha256": f["result_sha256"]}
           for f in snapshot.get("findings", [])],
    }
    trace_doc = {"finding": wanted, "finding_sha256": finding["result_sha256"],
                 "chain": chain, "network": network, "date_range": date_range,
                 "total_base_units": total, "direction": result.get("direction"),
                 "model": result.get("model"), "start": result.get("start")}
    return ctx, rows, outputs, actor_id, trace_doc


def _resolve_fields(template: Template, sources: Mapping[str, Any], user: Mapping[str, str],
                    domestic: bool, problems: list[Problem]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    names = {f.name for f in template.fields}
    for key in sorted(set(user) - names - {"legal_entity"}):
        problems.append(Problem(f"field {key}", None, f"unknown field; {template.id} "
                                                      f"v{template.version} has no {key!r}"))
    for spec in template.fields:
        given = user.get(spec.name)
        if spec.source == "user":
            value: Any = given if not _empty(given) else spec.default
        elif spec.source == "template":
            value = spec.value
        else:
            value = _dig(sources[spec.source], spec.path or spec.name)
            if not _empty(given) and spec.name != "legal_entity":
                if _empty(value):
                    value = given
                else:
                    problems.append(Problem(f"field {spec.name}", None, (
                        f"comes from the {spec.source} ({value!r}); change it there, not "
                        "with --field")))
        if spec.name == "data_categories" and _empty(given):
            value = [c.id for c in template.categories if c.default]
        if _empty(value):
            if spec.is_required(domestic):
                problems.append(Problem(f"field {spec.name}", None, (
                    f"missing: {spec.label} (from the {spec.source}"
                    + ("; give it with --field "
                       f"{spec.name}=... or in --fields-file)" if spec.source in ("user",
                                                                                  "case")
                       else ")"))))
            values[spec.name] = None
            continue
        values[spec.name] = _convert(spec, value, problems)
    for spec in template.fields:
        if (spec.required_if is not None and values.get(spec.required_if) is True
                and _empty(values.get(spec.name))):
            problems.append(Problem(f"field {spec.name}", None, (
                f"missing: {spec.label} (needed because {template.field(spec.required_if).label}"
                f" is yes; give it with --field {spec.name}=... or in --fields-file)")))
    if values.get("data_categories"):
        offered = {c.id for c in template.categories}
        for cid in values["data_categories"]:
            if cid not in offered:
                problems.append(Problem("field data_categories", None, (
                    f"unknown category {cid!r}; offered: {', '.join(sorted(offered))}")))
    return values


def _rule_problems(template: Template, meta: Mapping[str, Any], state: str | None,
                   values: Mapping[str, Any]) -> list[Problem]:
    """The template's own rules: where the kind applies (``applies``) and which data
    categories the case's maximum penalty allows (``penalty_threshold``)."""
    out: list[Problem] = []
    if template.applies is not None:
        title = f"{template.title} ({template.kind})"
        out += [Problem("applies", None, m) for m in
                template.applies.problems(title, str(meta["jurisdiction"]), state)]
    if template.penalty_threshold is not None:
        labels = {c.id: c.label for c in template.categories}
        out += [Problem("field data_categories", None, m) for m in
                template.penalty_threshold.problems(
                    values.get("data_categories") or [], values.get("max_penalty_years"),
                    values.get("offence_code") or meta["offence"].get("code"), labels)]
    return out


def next_request_id(snapshot: Mapping[str, Any], folder: Path | None = None) -> str:
    used = {str(r.get("id")) for r in snapshot.get("requests", [])}
    if folder is not None and (folder / "requests").is_dir():
        used |= {p.name for p in (folder / "requests").iterdir()}
    n = 1
    while f"R{n:04d}" in used:
        n += 1
    return f"R{n:04d}"


def letter_context(doc: Mapping[str, Any], template: Template) -> dict[str, Any]:
    """What the letter templates see, rebuilt from a request document."""
    cats = {c.id: c for c in template.categories}
    return {
        "request": {"id": doc["id"], "date": (doc.get("approved_at") or doc["drafted_at"])[:10],
                    "drafted_by": doc["drafted_by"], "approved_by": doc.get("approved_by"),
                    "approved_at": doc.get("approved_at"),
                    "custody_head": doc["custody_head_at_drafting"]},
        "template": doc["template"], "case": doc["case"], "f": doc["fields"],
        "identifiers": doc["identifiers"], "addressee": doc["addressee"],
        "categories": [{"id": c, "label": cats[c].label if c in cats else c}
                       for c in doc["fields"].get("data_categories") or []],
        "legal_basis": doc["legal_basis_text"], "domestic": doc["domestic"],
    }


def draft_request(case: Case, kind: str, finding_id: str, selector: str,
                  user_fields: Mapping[str, str], *, store_root: Path,
                  contacts: ContactDirectory | None = None) -> dict[str, Any]:
    """Draft a request of `kind` to the service `selector` names among the endpoints of trace
    finding `finding_id`, for the case's principal (who needs the ``draft`` capability).

    Returns the request document (``request.json``). Raises RequestHeldError for a held
    offence, ValidationError listing every missing or wrong field (nothing written then)."""
    by = case.principal
    require(by, "draft", "draft a legal request")
    template = load_template(kind, store_root)
    if contacts is None:
        try:
            contacts = load_contacts(store_root)
        except NotFoundError:
            contacts = None
    snapshot = case.snapshot()
    meta = snapshot["case"]
    problems: list[Problem] = []
    trace_ctx, rows, outputs, actor_id, trace_doc = _trace_context(
        snapshot, finding_id, selector, store_root, problems)
    addressee: Addressee = resolve_addressee(selector, outputs, actor_id, store_root, contacts,
                                             user_fields.get("legal_entity"))
    state = addressee.legal_entity.country if addressee.legal_entity else None
    _hold(snapshot, state)
    problems.extend(Problem("addressee", None, p) for p in addressee.problems)
    domestic = state is not None and state == meta["jurisdiction"]
    addr_doc = addressee.to_dict()
    sources = {"case": meta, "addressee": addr_doc, "trace": trace_ctx}
    values = _resolve_fields(template, sources, user_fields, domestic, problems)
    problems.extend(_rule_problems(template, meta, state, values))
    if problems:
        raise ValidationError(
            f"{kind} request not drafted ({len(problems)} problem(s); nothing was written)",
            problems)
    request_id = next_request_id(snapshot, case.folder)
    doc: dict[str, Any] = {
        "schema": SCHEMA, "id": request_id, "kind": kind, "status": "draft",
        "case": {"reference": meta["reference"], "title": meta["title"],
                 "jurisdiction": meta["jurisdiction"], "offence": meta["offence"]},
        "template": template.describe(), "legal_basis_text": template.basis(domestic),
        "domestic": domestic, "drafted_at": utc_now(), "drafted_by": by.name,
        "drafted_role": str(by.role), "custody_head_at_drafting": snapshot["custody_head"],
        "finding": trace_doc, "selector": selector, "addressee": addr_doc,
        "fields": values, "field_sources": {f.name: f.source for f in template.fields},
        "identifiers": [r.to_dict() for r in rows], "date_range": trace_doc["date_range"],
        "approved_at": None, "approved_by": None, "deadlines": None,
        "history": [], "files": {}, "sent_by_software": False,
    }
    context = letter_context(doc, template)
    doc["subject"] = render_subject(template, context)
    html = render_html(template, context, approved=False)
    files = {
        "letter.html": html.encode("utf-8"),
        "letter.pdf": html_to_pdf(html),
        "letter.docx": html_to_docx(html, title=doc["subject"]),
        "identifiers.csv": write_csv(rows),
        "identifiers.xlsx": write_xlsx(rows, f"{meta['reference']} {request_id} identifiers"),
    }
    base = f"requests/{request_id}"
    for name, data in files.items():
        art = case.add_artefact(f"{base}/{name}", data, action="request.draft",
                                what=f"request {request_id}: wrote {name}",
                                parameters={"request": request_id, "kind": kind})
        doc["files"][name] = {"path": art.path, "sha256": art.sha256, "size": art.size}
    doc["history"].append({"at": doc["drafted_at"], "who": by.name, "status": "draft",
                           "note": f"drafted from {template.id} v{template.version}"})
    case.add_artefact(f"{base}/request.json", dump(doc), action="request.draft",
                      what=f"drafted {kind} request {request_id} to "
                           f"{values.get('legal_entity')}",
                      parameters={"request": request_id, "kind": kind,
                                  "template": template.describe(),
                                  "addressee": values.get("legal_entity")})
    return doc


def dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8") + b"\n"
