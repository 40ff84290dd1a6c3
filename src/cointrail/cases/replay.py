"""``case replay``: re-run every finding from its request and compare result bytes.

A finding is `same` when the SHA-256 of the new result's canonical JSON equals the recorded
``result_sha256``; otherwise `different`, with the JSON paths that differ from the kept
result file (`error` when it cannot be re-run, `unsupported` for kinds with no runner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cointrail.cases.canonical import canonical_bytes, differing_paths, normalised, sha256_hex
from cointrail.cases.case import Case
from cointrail.errors import CointrailError


@dataclass(frozen=True, slots=True)
class ReplayItem:
    finding: str
    kind: str
    status: str  # same | different | error | unsupported
    recorded_sha256: str
    new_sha256: str | None
    differences: tuple[str, ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"finding": self.finding, "kind": self.kind, "status": self.status,
                "recorded_sha256": self.recorded_sha256, "new_sha256": self.new_sha256,
                "differences": list(self.differences), "message": self.message}


@dataclass(frozen=True, slots=True)
class ReplayReport:
    reference: str
    items: tuple[ReplayItem, ...]

    @property
    def ok(self) -> bool:
        return all(i.status == "same" for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "ok": self.ok,
                "findings": len(self.items),
                "same": sum(1 for i in self.items if i.status == "same"),
                "items": [i.to_dict() for i in self.items]}


def replay(case: Case, store: Path | str, *, log: bool = True) -> ReplayReport:
    """Re-run every finding of `case` against the store directory `store`. With `log` (and a
    principal that may write to the case) the run is logged as ``replay.run``."""
    from cointrail.cases.queries import RUNNERS

    root = Path(store)
    items = []
    for f in case.findings():
        runner = RUNNERS.get(f.kind)
        if runner is None:
            items.append(ReplayItem(f.id, f.kind, "unsupported", f.result_sha256, None,
                                    message=f"no runner for {f.kind} findings"))
            continue
        try:
            new = normalised(runner(root, f.request))
        except CointrailError as exc:
            items.append(ReplayItem(f.id, f.kind, "error", f.result_sha256, None,
                                    message=str(exc)))
            continue
        digest = sha256_hex(canonical_bytes(new))
        if digest == f.result_sha256:
            items.append(ReplayItem(f.id, f.kind, "same", f.result_sha256, digest))
            continue
        note = ""
        try:
            kept = case.read_finding(f)
            if sha256_hex(kept) != f.result_sha256:
                note = f"{f.path} itself no longer matches its recorded hash (run case verify)"
            diffs = tuple(differing_paths(json.loads(kept), new))
        except (OSError, ValueError):
            diffs, note = (), f"{f.path} is missing or unreadable; no field-level comparison"
        items.append(ReplayItem(f.id, f.kind, "different", f.result_sha256, digest, diffs,
                                note))
    report = ReplayReport(case.folder.name, tuple(items))
    if log and case.principal.can("investigate"):
        doc = report.to_dict()
        case.log("replay.run", f"replayed {len(items)} finding(s): "
                 f"{doc['same']} same", parameters={
                     "store": str(root), "same": [i.finding for i in items if i.status == "same"],
                     "not_same": {i.finding: i.status for i in items if i.status != "same"}},
                 result_sha256=sha256_hex(canonical_bytes(doc)))
    return report
