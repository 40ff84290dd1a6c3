"""Cases and chain of custody (ADR 0004): case folders, the hash-chained custody log,
findings that can be replayed, verification, retention and the transfer register.

    store = CaseStore.for_store(settings.store)          # <store>/cases
    case = store.create(principal, reference="CT-2026-0001", ...)
    case.record_query("trace", "trace", request, result_dict, record=result_dict["record"])
    case.verify().ok
    case.snapshot()                                      # what reports and exports read
"""

from cointrail.cases.canonical import canonical_bytes, differing_paths, sha256_hex
from cointrail.cases.case import FINDING_KINDS, Case, CaseStore
from cointrail.cases.models import (
    Artefact,
    Authority,
    CaseMeta,
    CaseStatus,
    CustodyEntry,
    Finding,
    Head,
    OffenceRef,
    Tlp,
)
from cointrail.cases.replay import ReplayItem, ReplayReport, replay
from cointrail.cases.verify import CustodyProblem, ProblemKind, VerifyReport

__all__ = [
    "FINDING_KINDS",
    "Artefact",
    "Authority",
    "Case",
    "CaseMeta",
    "CaseStatus",
    "CaseStore",
    "CustodyEntry",
    "CustodyProblem",
    "Finding",
    "Head",
    "OffenceRef",
    "ProblemKind",
    "ReplayItem",
    "ReplayReport",
    "Tlp",
    "VerifyReport",
    "canonical_bytes",
    "differing_paths",
    "replay",
    "sha256_hex",
]
