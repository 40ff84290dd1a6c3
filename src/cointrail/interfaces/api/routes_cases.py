"""Case routes: cases, notes, attachments, findings (a trace kept as evidence), the custody
log and its verification, the report and its files, legal request drafts and approval.

Every route opens the case for the caller's principal (`CaseStore.open` checks the key's case
restriction: 403), and every write goes through `cointrail.cases`, so it is on the custody
log with the caller's name and role. Reads inside a case are logged there too (``query.api``,
by the audit middleware).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cointrail.auth import Principal
from cointrail.cases import Case, CaseStore
from cointrail.errors import InputError, NotFoundError
from cointrail.interfaces.api.deps import ANALYSIS_LOCK, json_response, settings_of
from cointrail.interfaces.api.routes_analysis import CoinJoin, Direction, Model
from cointrail.interfaces.api.security import capability, current_principal

router = APIRouter(tags=["cases"])
READ = capability("read")  # every role; the key's case restriction still applies
INVESTIGATE = capability("investigate")
Ref = Annotated[str, Path(max_length=64, description="Case reference, e.g. CT-2026-0001.")]
Who = Annotated[Principal, Depends(current_principal)]


def open_case(request: Request, reference: str, principal: Principal) -> Case:
    return CaseStore.for_store(settings_of(request).store).open(reference, principal)


@router.get("/cases", openapi_extra=READ)
def cases_route(request: Request, principal: Who) -> Response:
    """The cases this key may open: reference, title, status, opened."""
    store = CaseStore.for_store(settings_of(request).store)
    metas = [m.to_dict() for m in store.list_cases() if principal.may_open_case(m.reference)]
    return json_response({"cases": [
        {k: m.get(k) for k in ("reference", "title", "status", "opened_at", "tlp", "chain",
                               "network")} for m in metas]})


class Authority(BaseModel):
    name: Annotated[str, Field(max_length=200)]
    email: Annotated[str, Field(max_length=200)]
    unit: Annotated[str, Field(max_length=200)] = ""
    contact: Annotated[str, Field(max_length=200)] = ""
    poc_247: Annotated[str, Field(max_length=200)] = ""


class NewCase(BaseModel):
    """The fields of `cointrail case new`; every missing or wrong one is listed at once."""

    reference: Annotated[str, Field(max_length=64)]
    title: Annotated[str, Field(max_length=500)]
    offence: Annotated[str, Field(max_length=64)]
    jurisdiction: Annotated[str, Field(max_length=8)]
    authority: Authority
    investigators: list[Annotated[str, Field(max_length=200)]] = Field(max_length=50)
    facts: Annotated[str, Field(max_length=20_000)]
    legal_basis: Annotated[str, Field(max_length=2_000)]
    purpose: Annotated[str, Field(max_length=2_000)]
    retention_days: Annotated[int, Field(ge=1, le=100_000)]
    tlp: Annotated[str, Field(max_length=20)] = "amber"
    national_law: Annotated[str, Field(max_length=500)] = ""
    max_penalty_years: Annotated[int | None, Field(ge=0, le=1000)] = None
    chain: Annotated[str, Field(max_length=40)] = "bitcoin"
    network: Annotated[str, Field(max_length=40)] = "mainnet"


@router.post("/cases", openapi_extra=INVESTIGATE, status_code=201)
def create_case_route(request: Request, principal: Who, body: NewCase) -> Response:
    """Open a case (logged as ``case.open``)."""
    fields = body.model_dump()
    fields["authority"] = {k: v for k, v in fields["authority"].items() if v}
    case = CaseStore.for_store(settings_of(request).store).create(principal, **fields)
    return json_response(case.meta().to_dict(), status_code=201)


@router.get("/cases/{reference}", openapi_extra=READ)
def case_route(request: Request, principal: Who, reference: Ref) -> Response:
    """The case snapshot: metadata, notes, attachments, findings, artefacts, custody, requests."""
    return json_response(open_case(request, reference, principal).snapshot())


class Note(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=20_000)]


@router.post("/cases/{reference}/notes", openapi_extra=INVESTIGATE, status_code=201)
def note_route(request: Request, principal: Who, reference: Ref, body: Note) -> Response:
    """Add a note (``case.note``)."""
    entry = open_case(request, reference, principal).note(body.text)
    return json_response(entry.to_dict(), status_code=201)


class Attachment(BaseModel):
    """An address or a cluster to attach, on the case's chain unless named."""

    address: Annotated[str | None, Field(max_length=140)] = None
    cluster_id: Annotated[int | None, Field(ge=0, le=2**40)] = None
    chain: Annotated[str | None, Field(max_length=40)] = None
    network: Annotated[str | None, Field(max_length=40)] = None
    note: Annotated[str, Field(max_length=2_000)] = ""


@router.post("/cases/{reference}/attachments", openapi_extra=INVESTIGATE, status_code=201)
def attach_route(request: Request, principal: Who, reference: Ref,
                 body: Attachment) -> Response:
    """Attach an address or a cluster (``attach.address`` / ``attach.cluster``)."""
    from cointrail.errors import InputError

    case = open_case(request, reference, principal)
    if (body.address is None) == (body.cluster_id is None):
        raise InputError("give exactly one of address or cluster_id")
    if body.address is not None:
        entry = case.attach_address(body.address, chain=body.chain, network=body.network,
                                    note=body.note)
    else:
        assert body.cluster_id is not None
        entry = case.attach_cluster(body.cluster_id, chain=body.chain, network=body.network,
                                    note=body.note)
    return json_response(entry.to_dict(), status_code=201)


class CaseTrace(BaseModel):
    """A trace to run and keep as a finding (as `cointrail trace --case`)."""

    start: Annotated[str, Field(min_length=1, max_length=140)]
    direction: Direction = Direction.FORWARD
    model: Model = Model.HAIRCUT
    hops: Annotated[int, Field(ge=0, le=50)] = 10
    min_value: Annotated[int, Field(ge=0, le=21 * 10**14)] = 0
    since: Annotated[str | None, Field(max_length=32)] = None
    until: Annotated[str | None, Field(max_length=32)] = None
    coinjoin: CoinJoin = CoinJoin.STOP
    stop_at: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None,
                                                                        max_length=100)
    clusters: bool = True


@router.post("/cases/{reference}/traces", openapi_extra=INVESTIGATE, status_code=201)
def case_trace_route(request: Request, principal: Who, reference: Ref,
                     body: CaseTrace) -> Response:
    """Run a trace on the case's chain and keep it as a finding (``query.trace`` and
    ``finding.record``); the answer holds the finding and the trace."""
    from cointrail.analysis.tracing import SERVICE_CATEGORIES, TraceParams
    from cointrail.cases.queries import bound_for_request, run_trace
    from cointrail.interfaces.cli.trace_cmds import parse_bound

    case = open_case(request, reference, principal)
    meta = case.meta()
    since, until = parse_bound(body.since, "since"), parse_bound(body.until, "until")
    params = TraceParams(stop_categories=SERVICE_CATEGORIES if body.stop_at is None
                         else frozenset(body.stop_at))
    trace_request = {
        "chain": meta.chain, "network": meta.network, "direction": body.direction.value,
        "start": body.start.strip(), "model": body.model.value, "hops": body.hops,
        "min_value": body.min_value, "since": bound_for_request(since),
        "until": bound_for_request(until), "coinjoin": body.coinjoin.value,
        "stop_at": sorted(params.stop_categories), "stop_sanctioned": params.stop_sanctioned,
        "clusters": body.clusters}
    with ANALYSIS_LOCK:
        doc = run_trace(settings_of(request).store, trace_request)
    record = doc.get("record")
    finding = case.record_query("trace", "trace", trace_request, doc,
                                record=record if isinstance(record, dict) else None,
                                what=f"{body.direction.value} trace of {body.start.strip()}")
    return json_response({"finding": {"id": finding.id, "sha256": finding.result_sha256,
                                      "seq": finding.seq}, "result": doc}, status_code=201)


@router.get("/cases/{reference}/custody", openapi_extra=READ)
def custody_route(request: Request, principal: Who, reference: Ref,
                  offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Response:
    """Custody log entries, oldest first, a page at a time."""
    entries = open_case(request, reference, principal).entries()
    return json_response({"total": len(entries), "offset": offset, "limit": limit,
                          "entries": [e.to_dict() for e in entries[offset:offset + limit]]})


@router.get("/cases/{reference}/custody/verify", openapi_extra=READ)
def custody_verify_route(request: Request, principal: Who, reference: Ref) -> Response:
    """Recompute every hash and link of the custody log; list what does not match."""
    return json_response(open_case(request, reference, principal).verify().to_dict())


@router.post("/cases/{reference}/report", openapi_extra=INVESTIGATE, status_code=201)
def report_route(request: Request, principal: Who, reference: Ref) -> Response:
    """Write the case report (HTML, PDF, figures) into the case (``report.write``); the answer
    lists the files, each downloadable from ``/files``."""
    from cointrail.reporting.casefile import write_case_report

    case = open_case(request, reference, principal)
    with ANALYSIS_LOCK:
        written = list(write_case_report(case).files)
    return json_response({"case": case.reference, "files": written}, status_code=201)


class ExportBody(BaseModel):
    """A case export for a partner: recipient, legal basis, formats and use restrictions."""

    to: Annotated[str, Field(min_length=1, max_length=200, description="Recipient agency.")]
    legal_basis: Annotated[str, Field(min_length=1, max_length=500)]
    formats: list[Annotated[str, Field(max_length=16)]] = Field(
        default=["stix", "misp", "ftm", "goaml", "csv", "xlsx"], min_length=1, max_length=6)
    tlp: Annotated[str | None, Field(max_length=16)] = None
    goaml_profile: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = \
        "generic"
    onward_transfer: Annotated[str | None, Field(max_length=500)] = None


@router.post("/cases/{reference}/exports", openapi_extra=INVESTIGATE, status_code=201)
def export_route(request: Request, principal: Who, reference: Ref, body: ExportBody) -> Response:
    """Export the case for a partner (STIX 2.1, MISP, FollowTheMoney, goAML, CSV, XLSX, with a
    manifest of SHA-256 hashes): written into the case (``export.write``) and entered in its
    transfer register; each file downloadable from ``/files``."""
    from cointrail.exports.casefile import export_case
    from cointrail.exports.goaml import profile_names

    if body.goaml_profile not in profile_names():
        raise InputError(f"goaml_profile {body.goaml_profile!r}: use one of "
                         f"{', '.join(profile_names())}")
    case = open_case(request, reference, principal)
    with ANALYSIS_LOCK:
        done = export_case(case, settings_of(request).store, recipient=body.to,
                           legal_basis=body.legal_basis, formats=body.formats, tlp=body.tlp,
                           goaml_profile=body.goaml_profile,
                           onward_transfer=body.onward_transfer)
    return json_response({"case": case.reference, **done.to_dict()}, status_code=201)


_MEDIA = {".pdf": "application/pdf", ".html": "text/html; charset=utf-8",
          ".svg": "image/svg+xml", ".json": "application/json", ".csv": "text/csv",
          ".zip": "application/zip", ".xml": "application/xml",
          ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/cases/{reference}/files", openapi_extra=READ)
def file_route(request: Request, principal: Who, reference: Ref,
               path: Annotated[str, Query(min_length=1, max_length=500)]) -> Response:
    """Download a file of the case that is on its custody log (report, export, finding,
    request letter); its SHA-256 is in the ``X-Content-SHA256`` header."""
    case = open_case(request, reference, principal)
    known = {a.path: a.sha256 for a in case.artefacts()}
    known |= {f.path: f.result_sha256 for f in case.findings()}
    if path not in known:
        raise NotFoundError(f"case {case.reference} has no file {path!r} on its custody log; "
                            f"GET /api/v1/cases/{case.reference} lists its artefacts")
    data = (case.folder / path).read_bytes()
    suffix = path[path.rfind("."):].lower() if "." in path else ""
    name = path.rsplit("/", 1)[-1]
    disposition = "inline" if suffix in (".svg", ".json") else "attachment"
    # the report's HTML is served as a download, never rendered inside the investigator
    return Response(data, media_type=_MEDIA.get(suffix, "application/octet-stream"),
                    headers={"X-Content-SHA256": known[path],
                             "Content-Disposition": f'{disposition}; filename="{name}"'})


@router.get("/cases/{reference}/requests", openapi_extra=READ)
def requests_route(request: Request, principal: Who, reference: Ref) -> Response:
    """The case's legal requests (drafts, approved, sent, answered)."""
    return json_response({"requests": open_case(request, reference, principal)
                          .snapshot()["requests"]})


class Draft(BaseModel):
    """A request drafted from a trace finding (as `cointrail request draft`)."""

    kind: Annotated[str, Field(max_length=40, description="preservation, production, ...")]
    finding_id: Annotated[str, Field(max_length=16)]
    selector: Annotated[str, Field(max_length=200, description="The service, by label.")]
    fields: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=5_000)]] \
        = Field(default_factory=dict, max_length=100)


@router.post("/cases/{reference}/requests", openapi_extra=capability("draft"),
             status_code=201)
def draft_route(request: Request, principal: Who, reference: Ref, body: Draft) -> Response:
    """Draft a legal request (``request.draft``); an approver approves it."""
    from cointrail.legal import draft_request

    case = open_case(request, reference, principal)
    doc = draft_request(case, body.kind, body.finding_id, body.selector, body.fields,
                        store_root=settings_of(request).store)
    return json_response(doc, status_code=201)


@router.post("/cases/{reference}/requests/{request_id}/approve",
             openapi_extra=capability("approve"))
def approve_route(request: Request, principal: Who, reference: Ref,
                  request_id: Annotated[str, Path(max_length=16)]) -> Response:
    """Approve a draft (``request.approve``): an approver who did not draft it."""
    from cointrail.legal import approve

    case = open_case(request, reference, principal)
    return json_response(approve(case, request_id, store_root=settings_of(request).store))


def case_reference(scope: Mapping[str, Any]) -> str | None:
    """The case reference of a request's route, if it has one."""
    params = scope.get("path_params") or {}
    ref = params.get("reference")
    return ref if isinstance(ref, str) else None
