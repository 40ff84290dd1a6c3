"""``cointrail case report`` and ``case export`` on a real case: the block-170 trace recorded
with ``--case``; every file lands on the custody log, the export in the transfer register."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.interfaces.cli.main import app
from tests.unit.reporting.snapshots import BLOCK_170_TX


def test_report_and_export_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COINTRAIL_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("COINTRAIL_USER", "ana")
    monkeypatch.delenv("COINTRAIL_API_KEY", raising=False)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    run("ingest", "blkfiles", str(bundled_path(EARLY_MAINNET_BLOCKS)))
    run("case", "new", "--reference", "CT-2026-0002", "--title", "First transfer",
        "--offence", "UNCC-17", "--jurisdiction", "DE", "--authority", "LKA Example",
        "--email", "a@lka.example", "--investigator", "ana", "--facts", "demo",
        "--legal-basis", "StPO § 161", "--purpose", "criminal investigation",
        "--retention-days", "365")
    run("trace", "forward", f"{BLOCK_170_TX}:1", "--model", "fifo", "--case", "CT-2026-0002")
    out = tmp_path / "out"
    report = json.loads(run("case", "report", "CT-2026-0002", "--out", str(out), "--json"))
    names = {Path(f["path"]).name for f in report["files"]}
    assert names == {"report.html", "report.pdf", "F0001.svg"}
    export = json.loads(run("case", "export", "CT-2026-0002", "--to", "FIU NL",
                            "--legal-basis", "UNCC art 40(4)", "--formats", "stix,goaml,csv",
                            "--out", str(out), "--json"))
    folder = Path(export["out"][0])
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for f in manifest["files"]:
        assert hashlib.sha256((folder / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert {f["path"] for f in manifest["files"]} == {
        "stix-bundle.json", "goaml.xml", "identifiers.csv"}
    case_dir = tmp_path / "store" / "cases" / "CT-2026-0002"
    for f in report["files"] + export["files"]:
        assert hashlib.sha256((case_dir / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    entries = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text()
               .splitlines()]
    actions = [e["action"] for e in entries]
    assert actions.count("report.write") == 3 and actions.count("export.write") == 5
    (transfer,) = [e for e in entries if e["action"] == "transfer.register"]
    assert transfer["parameters"]["to"] == "FIU NL"
    assert transfer["parameters"]["legal_basis"] == "UNCC art 40(4)"
    assert "Onward transfer" in transfer["parameters"]["conditions"]
    assert "intact" in run("case", "verify", "CT-2026-0002")
