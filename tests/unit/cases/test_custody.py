"""Tamper tests: every kind of change to a case folder is detected and named by entry; an
untouched log verifies; two processes appending at once keep one valid chain; a torn last line
blocks appends until repair quarantines it (never silently dropped)."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cointrail.auth import Principal, Role
from cointrail.cases import Case, CaseStore, ProblemKind, VerifyReport
from cointrail.cases.custody import entry_hash
from cointrail.errors import StoreError

ANA = Principal("ana", Role.ANALYST)


def new_case(root: Path, reference: str = "CT-2026-0001") -> Case:
    return CaseStore(root / "cases").create(
        ANA, reference=reference, title="Ransom payments", offence="UNCC-17",
        jurisdiction="DE", authority={"name": "LKA", "email": "cyber@lka.example"},
        investigators=["ana"], facts="Ransom paid to 1Q2T…", legal_basis="§ 100 StPO",
        purpose="criminal investigation", retention_days=3650)


@pytest.fixture
def case(tmp_path: Path) -> Case:
    """A case with 7 entries: open, 2 notes, address, finding, artefact, note."""
    c = new_case(tmp_path)
    c.note("first note")
    c.note("second note")
    c.attach_address("1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", note="Hal Finney")
    c.record_finding("trace", {"start": "x"}, {"endpoints": {"unspent": [1, 2]}})
    c.add_artefact("artefacts/letter.txt", b"dear exchange")
    c.note("third note")
    return c


def log_lines(c: Case) -> list[bytes]:
    return c.custody.path.read_bytes().splitlines(keepends=True)


def write_lines(c: Case, lines: list[bytes]) -> None:
    c.custody.path.write_bytes(b"".join(lines))


def problems(report: VerifyReport) -> list[tuple[str, int | None]]:
    return [(str(p.kind), p.seq) for p in report.problems]


def test_untouched_log_verifies(case: Case) -> None:
    report = case.verify()
    assert report.ok, report.problems
    assert report.entries == 7
    assert report.head_log == report.head_recorded
    assert report.head_log is not None and report.head_log.seq == 7
    assert report.files_checked == 2
    seqs = [e.seq for e in case.entries()]
    assert seqs == list(range(1, 8))
    entries = case.entries()
    assert all(b.prev_hash == a.hash for a, b in pairwise(entries))


def test_field_edit_is_named(case: Case) -> None:
    lines = log_lines(case)
    lines[2] = lines[2].replace(b"second note", b"altered note")
    write_lines(case, lines)
    assert problems(case.verify()) == [("edited", 3)]


def test_edit_with_recomputed_hash_is_named(case: Case) -> None:
    lines = log_lines(case)
    doc = json.loads(lines[2])
    doc["parameters"]["text"] = "altered note"
    doc["hash"] = entry_hash(doc)
    lines[2] = json.dumps(doc).encode() + b"\n"
    write_lines(case, lines)
    report = case.verify()
    assert ProblemKind.EDITED in report.kinds()
    assert [p.seq for p in report.problems if p.kind is ProblemKind.EDITED] == [3]
    assert ProblemKind.DELETED not in report.kinds()


def test_deletion_is_named(case: Case) -> None:
    lines = log_lines(case)
    del lines[3]
    write_lines(case, lines)
    assert problems(case.verify()) == [("deleted", 4)]


def test_deleting_the_first_entry_is_named(case: Case) -> None:
    write_lines(case, log_lines(case)[1:])
    kinds = problems(case.verify())
    assert ("deleted", 1) in kinds


def test_insertion_of_a_forged_linked_entry_is_named(case: Case) -> None:
    lines = log_lines(case)
    before = json.loads(lines[1])
    forged = {**before, "seq": 3, "what": "forged", "parameters": {"text": "forged"},
              "prev_hash": before["hash"]}
    forged["hash"] = entry_hash(forged)
    lines.insert(2, json.dumps(forged).encode() + b"\n")
    write_lines(case, lines)
    report = case.verify()
    assert problems(report) == [("inserted", 3)]
    assert report.problems[0].line == 3


def test_duplicated_line_is_an_insertion(case: Case) -> None:
    lines = log_lines(case)
    lines.insert(5, lines[4])
    write_lines(case, lines)
    report = case.verify()
    assert problems(report) == [("inserted", 5)]
    assert report.problems[0].line == 6


def test_reorder_is_named(case: Case) -> None:
    lines = log_lines(case)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(case, lines)
    report = case.verify()
    assert problems(report) == [("reordered", 4)]
    assert report.problems[0].line == 3


def test_truncated_tail_is_named(case: Case) -> None:
    write_lines(case, log_lines(case)[:-2])
    report = case.verify()
    assert problems(report) == [("truncated", 6), ("unlogged_file", None)]
    assert report.problems[1].path == "artefacts/letter.txt"  # its entry was cut too


def test_rewriting_the_tail_with_fresh_hashes_is_caught_by_the_head(case: Case) -> None:
    lines = log_lines(case)
    prev = json.loads(lines[4])["hash"]
    for i in range(5, len(lines)):
        doc = json.loads(lines[i])
        if i == 6:
            doc["parameters"]["text"] = "rewritten"
        doc["prev_hash"] = prev
        doc["hash"] = prev = entry_hash(doc)
        lines[i] = json.dumps(doc).encode() + b"\n"
    write_lines(case, lines)
    assert ("head_mismatch", 7) in problems(case.verify())


def test_modified_and_missing_files_are_named(case: Case) -> None:
    (case.folder / "findings" / "F0001.json").write_bytes(b'{"endpoints":{}}')
    (case.folder / "artefacts" / "letter.txt").unlink()
    (case.folder / "artefacts" / "extra.txt").write_text("dropped in by hand")
    report = case.verify()
    found = {(str(p.kind), p.seq, p.path) for p in report.problems}
    assert found == {("artefact_modified", 5, "findings/F0001.json"),
                     ("artefact_missing", 6, "artefacts/letter.txt"),
                     ("unlogged_file", None, "artefacts/extra.txt")}


def test_edited_case_json_is_named(case: Case) -> None:
    path = case.folder / "case.json"
    doc = json.loads(path.read_text())
    doc["purpose"] = "something else"
    path.write_text(json.dumps(doc))
    report = case.verify()
    assert [str(p.kind) for p in report.problems] == ["case_json"]
    assert "purpose" in report.problems[0].message


def test_update_is_logged_and_folds_into_case_json(case: Case) -> None:
    case.update(title="Ransom payments 2026", status="closed")
    entry = case.entries()[-1]
    assert entry.action == "case.update"
    assert entry.parameters["previous"]["title"] == "Ransom payments"
    assert case.meta().closed_at is not None
    assert case.verify().ok


def test_torn_line_blocks_appends_and_repair_quarantines_it(case: Case) -> None:
    whole = log_lines(case)
    torn = b'{"action":"case.note","at":"2026-11-28T'
    case.custody.path.write_bytes(b"".join(whole) + torn)
    report = case.verify()
    assert [(str(p.kind), p.line) for p in report.problems] == [("torn", 8)]
    with pytest.raises(StoreError, match="torn"):
        case.note("must not be appended")
    [entry] = case.repair()
    assert entry.action == "case.repair" and entry.seq == 8
    quarantined = case.folder / entry.parameters["file"]["path"]
    assert quarantined.read_bytes() == torn  # kept, byte for byte
    assert case.verify().ok
    case.note("appends work again")
    assert case.verify().ok


def test_interrupted_head_update_is_reported_and_repaired(case: Case) -> None:
    path = case.folder / "case.json"
    before = path.read_bytes()
    case.note("written, but case.json not updated (simulated crash)")
    path.write_bytes(before)
    report = case.verify()
    assert problems(report) == [("beyond_head", 8)]
    with pytest.raises(StoreError, match=r"case\.json records seq 7"):
        case.note("refused while the head lags")
    case.repair()
    assert case.verify().ok


def test_repair_refuses_a_tampered_log(case: Case) -> None:
    lines = log_lines(case)
    del lines[3]
    write_lines(case, lines)
    with pytest.raises(StoreError, match="repair does not fix"):
        case.repair()


APPENDER = """
import sys
from cointrail.auth import Principal, Role
from cointrail.cases import CaseStore
case = CaseStore(sys.argv[1]).open(sys.argv[2], Principal(sys.argv[3], Role.ANALYST))
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
for i in range(int(sys.argv[4])):
    case.note(f"{sys.argv[3]} note {i}")
"""


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    c = new_case(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path / "cases"),
                               "CT-2026-0001", who, "60"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for who in ("ana", "ben")]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:  # release both at once
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=120) == 0
    report = c.verify()
    assert report.ok, report.problems
    entries = c.entries()
    assert [e.seq for e in entries] == list(range(1, 122))
    assert sorted(e.who for e in entries[1:]) == ["ana"] * 60 + ["ben"] * 60
    assert c.meta().head.seq == 121


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["delete", "swap", "duplicate", "truncate", "edit"]),
       data=st.data())
def test_any_single_line_tamper_is_detected_and_named(
        case: Case, op: str, data: st.DataObject) -> None:
    """Whatever line is hit, verify fails and names the expected kind (property)."""
    pristine = case.custody.path.read_bytes()
    lines = pristine.splitlines(keepends=True)
    try:
        if op == "truncate":
            k = data.draw(st.integers(1, len(lines) - 1), label="cut")
            write_lines(case, lines[:-k])
            expected = ProblemKind.TRUNCATED
        else:
            i = data.draw(st.integers(0, len(lines) - 2), label="line")
            if op == "delete":
                del lines[i]
                expected = ProblemKind.DELETED
            elif op == "swap":
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
                expected = ProblemKind.REORDERED
            elif op == "duplicate":
                lines.insert(i + 1, lines[i])
                expected = ProblemKind.INSERTED
            else:
                lines[i] = lines[i].replace(b'"who":"ana"', b'"who":"eve"')
                expected = ProblemKind.EDITED
            write_lines(case, lines)
        report = case.verify()
        assert not report.ok
        assert expected in report.kinds(), report.problems
    finally:
        case.custody.path.write_bytes(pristine)
    assert case.verify().ok
