"""Render a case snapshot into the case report: HTML (jinja2) and PDF (WeasyPrint).

Deterministic: the same snapshot and methodology give the same HTML bytes, and the PDF's dates
(``dcterms.created``/``modified``) and its file identifier come from the snapshot, not the
clock, so the PDF bytes are stable too for one WeasyPrint and font set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from cointrail.errors import InputError
from cointrail.reporting.facts import (
    TraceFinding,
    case_meta,
    coin_text,
    head_time,
    other_findings,
    short_id,
    trace_findings,
)
from cointrail.reporting.figure import draw_trace
from cointrail.reporting.methodology import Methodology, load_methodology
from cointrail.reporting.tlp import parse_tlp


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The rendered report: ``report.html``, ``report.pdf`` and one SVG per trace figure."""

    html: bytes
    pdf: bytes
    figures: dict[str, bytes]  # "F0001.svg" -> SVG bytes


def render_html(snapshot: Mapping[str, Any], methodology: Methodology | None = None,
                *, max_figure_nodes: int = 120) -> tuple[bytes, dict[str, bytes]]:
    """The report's HTML bytes and its figures (by file name)."""
    import jinja2
    from markupsafe import Markup

    from cointrail import __version__

    methodology = methodology or load_methodology()
    case = case_meta(snapshot)
    tlp = parse_tlp(case.get("tlp") or "amber")
    traces = trace_findings(snapshot)
    figures = {f"{t.id}.svg": draw_trace(t, max_nodes=max_figure_nodes) for t in traces}
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cointrail.reporting", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    css = files("cointrail.reporting").joinpath("templates/report.css").read_text("utf-8")
    head = snapshot.get("custody_head") or case.get("head") or {"seq": 0, "hash": ""}
    authority = case.get("authority") or {}
    offence = case.get("offence") or {}
    if isinstance(offence, str):
        offence = {"code": offence}
    html = env.get_template("report.html.j2").render(
        case=_Attrs(case),
        css=Markup(css),
        tool_version=f"cointrail {__version__}",
        generated_at=head_time(snapshot),
        head=_Attrs(head),
        tlp_text=tlp.label, tlp_meaning=tlp.meaning, tlp_colour=tlp.colour,
        authority_name=str(authority.get("name", "")),
        authority_text=", ".join(str(authority[k]) for k in
                                 ("name", "unit", "contact", "email", "poc_247")
                                 if authority.get(k)) or "not stated",
        offence_text=_offence_text(offence),
        investigators=", ".join(str(i) for i in case.get("investigators") or []) or "not stated",
        retention=(f"{case['retention_days']} days" if case.get("retention_days") is not None
                   else "not stated"),
        traces=[_trace_view(t, figures[f"{t.id}.svg"]) for t in traces],
        others=other_findings(snapshot),
        methodology=methodology,
        used_models=sorted({(t.model, t.engine_version or "?") for t in traces}),
        custody_count=len(snapshot.get("custody") or []),
        artefacts=[_Attrs(a) for a in snapshot.get("artefacts") or []],
        finding_rows=[_Attrs(f) for f in snapshot.get("findings") or []],
        transfers=[_Attrs(x) for x in snapshot.get("transfers") or []],
    )
    return html.encode("utf-8"), figures


def render_report(snapshot: Mapping[str, Any], methodology: Methodology | None = None,
                  *, max_figure_nodes: int = 120) -> ReportFiles:
    """The case report of `snapshot`: HTML, PDF and the trace figures."""
    html, figures = render_html(snapshot, methodology, max_figure_nodes=max_figure_nodes)
    return ReportFiles(html, html_to_pdf(html), figures)


def html_to_pdf(html: bytes) -> bytes:
    """The PDF of report HTML; its identifier is derived from the HTML, so it is stable."""
    import weasyprint  # type: ignore[import-untyped]

    identifier = hashlib.sha256(html).hexdigest()[:32].encode("ascii")
    document = weasyprint.HTML(string=html.decode("utf-8"), base_url=None)
    pdf = document.write_pdf(pdf_identifier=identifier)
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf() without target
        raise InputError("WeasyPrint returned no PDF bytes")
    return pdf


class _Attrs(dict[str, Any]):
    """A mapping whose keys are also attributes in templates (missing keys: None)."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)


def _offence_text(offence: Mapping[str, Any]) -> str:
    parts = [str(offence.get(k)) for k in ("code", "title") if offence.get(k)]
    if offence.get("national_law"):
        parts.append(f"national law: {offence['national_law']}")
    if offence.get("max_penalty_years") is not None:
        parts.append(f"maximum penalty {offence['max_penalty_years']} years")
    return "; ".join(parts) or "not stated"


def _trace_view(t: TraceFinding, svg: bytes) -> dict[str, Any]:
    from markupsafe import Markup

    d = t.coin.decimals
    addr = {n.key: n.address for n in t.nodes}
    drawn = svg.count(b'class="node output"')
    folded = svg.count(b'class="node more"')
    note = (f"{len(t.nodes)} tainted outputs, {len(t.flows)} flows"
            + (f"; large trace: {folded} groups of smaller outputs folded, "
               f"{drawn} outputs drawn (every output is in the tables)" if folded else ""))
    params = t.record.get("parameters", {})
    return {
        "finding": t,
        "short_start": short_id(t.start, 10),
        "seed_coin": coin_text(t.seed_amount, d),
        "totals": [(c, coin_text(a, d)) for c, a in t.totals().items()],
        "total_rows": [(c, a, coin_text(a, d)) for c, a in t.totals().items()],
        "parameters": json.dumps(params, sort_keys=True, default=str),
        "svg": Markup(svg.decode("utf-8").split("?>", 1)[1].strip()),
        "figure_note": note,
        "endpoints": [
            {"category": e.category, "label": e.label, "via": e.via, "address": e.address,
             "txid": e.txid, "vout": e.vout, "height": e.height, "amount": e.amount,
             "coin": coin_text(e.amount, d)}
            for e in sorted(t.endpoints, key=lambda e: (e.category, e.height, e.txid,
                                                        -1 if e.vout is None else e.vout))],
        "flows": [
            {"from_key": f.from_key, "txid": f.txid, "to_vout": f.to_vout,
             "to_address": addr.get(f.to_key), "coinjoin": f.coinjoin, "height": f.height,
             "amount": f.amount, "coin": coin_text(f.amount, d)}
            for f in t.flows],
    }
