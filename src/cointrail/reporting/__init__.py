"""Case reports: HTML and PDF from a case snapshot, with drawn trace figures, tables of flows
and endpoints, the methodology register and the custody manifest.

    from cointrail.reporting import render_report, load_methodology
    files = render_report(case.snapshot(), load_methodology())
    files.html, files.pdf, files.figures  # bytes; figures by name ("F0001.svg")
"""

from cointrail.reporting.figure import draw_trace
from cointrail.reporting.methodology import Methodology, code_methods, load_methodology
from cointrail.reporting.render import ReportFiles, html_to_pdf, render_html, render_report
from cointrail.reporting.tlp import LEVELS as TLP_LEVELS
from cointrail.reporting.tlp import Tlp, parse_tlp

__all__ = [
    "TLP_LEVELS",
    "Methodology",
    "ReportFiles",
    "Tlp",
    "code_methods",
    "draw_trace",
    "html_to_pdf",
    "load_methodology",
    "parse_tlp",
    "render_html",
    "render_report",
]
