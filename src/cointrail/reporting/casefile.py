"""Writing a case's report into the case: the one function the CLI, the demo and the API call.

The files go under ``artefacts/reports/<REF>-report-<custody seq>/`` through
`Case.add_artefact`, so each one's SHA-256 is on the custody log (action ``report.write``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cointrail.cases import Case


@dataclass(frozen=True, slots=True)
class WrittenReport:
    """The report's folder inside the case and every file written, with its hash."""

    folder: str
    files: tuple[dict[str, Any], ...]  # {"path", "sha256", "size"}; the report first
    contents: dict[str, bytes]  # by name inside the folder ("report.pdf", "figures/F0001.svg")

    @property
    def html_path(self) -> str:
        return f"{self.folder}/report.html"

    @property
    def pdf_path(self) -> str:
        return f"{self.folder}/report.pdf"


def write_case_report(case: Case) -> WrittenReport:
    """Render the case's report (HTML, PDF, trace figures) as of its custody head and write it
    into the case."""
    from cointrail.reporting.methodology import load_methodology
    from cointrail.reporting.render import render_report

    snapshot = case.snapshot()
    methodology = load_methodology()
    files = render_report(snapshot, methodology)
    head = snapshot["custody_head"]
    folder = f"artefacts/reports/{case.reference}-report-{int(head['seq']):04d}"
    params = {"custody_head": head, "methodology_version": methodology.version,
              "methodology_sha256": methodology.sha256}
    contents: dict[str, bytes] = {"report.html": files.html, "report.pdf": files.pdf}
    contents |= {f"figures/{name}": svg for name, svg in sorted(files.figures.items())}
    written = []
    for name, data in contents.items():
        artefact = case.add_artefact(
            f"{folder}/{name}", data, action="report.write",
            what=f"case report {name} as of custody entry {head['seq']}", parameters=params)
        written.append({"path": artefact.path, "sha256": artefact.sha256, "size": artefact.size})
    return WrittenReport(folder, tuple(written), contents)
