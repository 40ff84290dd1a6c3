"""``cointrail case ...`` and ``--case`` end to end on the bundled real mainnet blocks 0–438:
a trace of the block-170 transfer recorded in a case, verified, replayed byte for byte, then
tampered with and caught."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cointrail.cases import canonical_bytes
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.interfaces.cli.main import app

FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
PAID_AT_181 = "1DUDsfc23Dv9sPMEk5RsrtfzCw5ofi5sVW"  # 10 BTC of Satoshi's change, one hop on
ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None, "COINTRAIL_NETWORK": None, "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None, "COINTRAIL_API_KEY": None, "COINTRAIL_USER": "ana",
}
NEW_CASE = ["--title", "Block 170", "--offence", "UNCC-17", "--jurisdiction", "DE",
            "--authority", "LKA", "--investigator", "ana", "--facts", "first transfer",
            "--legal-basis", "§ 100 StPO", "--purpose", "test", "--retention-days", "365"]


def run(store: Path, *args: str) -> Result:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart
    return runner.invoke(app, ["--store", str(store), *args], env=ENV)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def ingest(root: Path) -> Path:
    ok(run(root, "ingest", "blkfiles", str(bundled_path(EARLY_MAINNET_BLOCKS)), "--json"))
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest(tmp_path_factory.mktemp("case-store"))


def custody(store: Path, ref: str) -> list[dict[str, Any]]:
    path = store / "cases" / ref / "custody.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_case_new_lists_every_missing_field(tmp_path: Path) -> None:
    result = run(tmp_path, "case", "new", "--reference", "CT-1", "--tlp", "purple")
    assert result.exit_code == 2
    for option in ("--title", "--offence", "--jurisdiction", "--authority", "--investigator",
                   "--facts", "--legal-basis", "--purpose", "--retention-days", "tlp"):
        assert option in result.stderr
    assert not (tmp_path / "cases" / "CT-1").exists()


def test_trace_in_a_case_verifies_replays_and_catches_tampering(store: Path) -> None:
    ok(run(store, "case", "new", "--reference", "CT-170", *NEW_CASE))
    traced = ok(run(store, "trace", "forward", FIRST_TRANSFER, "--case", "CT-170", "--json"))
    doc = json.loads(traced.stdout)
    assert "recorded finding F0001" in traced.stderr
    entries = custody(store, "CT-170")
    query, finding = entries[-2], entries[-1]
    assert query["action"] == "query.trace" and query["who"] == "ana"
    assert query["parameters"]["start"] == FIRST_TRANSFER
    assert query["parameters"]["model"] == "haircut"
    assert finding["action"] == "finding.record"
    raw = (store / "cases" / "CT-170" / "findings" / "F0001.json").read_bytes()
    assert raw == canonical_bytes(doc)  # the printed result, kept byte for byte
    assert query["result_sha256"] == finding["result_sha256"] == hashlib.sha256(raw).hexdigest()
    assert json.loads(raw)["record"]["tip_hash"] == doc["record"]["tip_hash"]
    hal = [o for g in doc["endpoints"].values() for o in g["outputs"] if o["address"] == HAL]
    assert [(o["amount_sat"], o["height"]) for o in hal] == [(1_000_000_000, 170)]

    verified = ok(run(store, "case", "verify", "CT-170"))
    assert "intact" in verified.stdout
    replayed = json.loads(ok(run(store, "case", "replay", "CT-170", "--json")).stdout)
    assert replayed["ok"] is True
    assert [(i["finding"], i["status"]) for i in replayed["items"]] == [("F0001", "same")]
    assert custody(store, "CT-170")[-1]["action"] == "replay.run"
    ok(run(store, "case", "verify", "CT-170"))

    tampered = json.loads(raw)
    tampered["endpoints"]["unspent"]["amount_sat"] += 1
    (store / "cases" / "CT-170" / "findings" / "F0001.json").write_bytes(
        canonical_bytes(tampered))
    caught = run(store, "case", "verify", "CT-170", "--json")
    assert caught.exit_code == 1
    report = json.loads(caught.stdout)
    assert [(p["kind"], p["path"]) for p in report["problems"]] == [
        ("artefact_modified", "findings/F0001.json")]
    assert report["problems"][0]["seq"] == finding["seq"]


def test_path_exposure_flags_in_a_case_replay_the_same(store: Path) -> None:
    ok(run(store, "case", "new", "--reference", "CT-FLOWS", *NEW_CASE))
    ok(run(store, "path", SATOSHI, HAL, "--case", "CT-FLOWS"))
    ok(run(store, "exposure", SATOSHI, "--case", "CT-FLOWS"))
    ok(run(store, "flags", SATOSHI, "--rules", "peel_chain,fan_in", "--case", "CT-FLOWS"))
    ok(run(store, "trace", "backward", f"{FIRST_TRANSFER}:0", "--model", "fifo",
           "--since", "2009-01-03", "--until", "200", "--case", "CT-FLOWS"))
    actions = [e["action"] for e in custody(store, "CT-FLOWS")]
    assert [a for a in actions if a.startswith("query.")] == [
        "query.path", "query.exposure", "query.flags", "query.trace"]
    replayed = json.loads(ok(run(store, "case", "replay", "CT-FLOWS", "--json")).stdout)
    assert [(i["kind"], i["status"]) for i in replayed["items"]] == [
        ("path", "same"), ("exposure", "same"), ("flags", "same"), ("trace", "same")]


def test_cluster_and_explain_findings_pin_the_clustering_and_replay_the_same(
        store: Path, tmp_path: Path) -> None:
    own = tmp_path / "store"
    shutil.copytree(store, own, ignore=shutil.ignore_patterns("cases"))
    from cointrail.analysis.clustering.engine import Clusterer
    from cointrail.store.duck import open_chain

    with open_chain(own, "bitcoin", "mainnet") as chain_store:
        Clusterer(chain_store).run(to_height=200)  # clustered part of the way
    ok(run(own, "case", "new", "--reference", "CT-CLU", *NEW_CASE))
    cid = json.loads(ok(run(own, "show", "address", SATOSHI, "--json")).stdout)["cluster"][
        "cluster_id"]
    shown = json.loads(ok(run(own, "show", "cluster", str(cid), "--case", "CT-CLU",
                              "--json")).stdout)
    assert shown["cluster_id"] == cid and SATOSHI in json.dumps(shown)
    ok(run(own, "explain", SATOSHI, HAL, "--case", "CT-CLU"))
    queries = {e["action"]: e["parameters"] for e in custody(own, "CT-CLU")
               if e["action"].startswith("query.")}
    assert set(queries) == {"query.cluster", "query.explain"}
    for request in queries.values():  # the clustering height at query time, pinned
        assert request["as_of"] == 200
    ok(run(own, "cluster"))  # the clustering moves on to the tip (438)
    replayed = json.loads(ok(run(own, "case", "replay", "CT-CLU", "--json")).stdout)
    assert [(i["kind"], i["status"]) for i in replayed["items"]] == [
        ("cluster", "same"), ("explain", "same")]
    # the report and the exports take these findings too
    ok(run(own, "case", "report", "CT-CLU"))
    ok(run(own, "case", "export", "CT-CLU", "--to", "Politie NL", "--legal-basis", "UNCC art 40",
           "--formats", "stix,misp,ftm,csv,xlsx",  # goAML needs a traced flow
           "--out", str(tmp_path / "export")))
    ok(run(own, "case", "verify", "CT-CLU"))


def test_acquire_node_records_the_tip_and_file_hashes(store: Path) -> None:
    ok(run(store, "case", "new", "--reference", "CT-NODE", *NEW_CASE))
    ok(run(store, "case", "acquire-node", "CT-NODE"))
    entry = custody(store, "CT-NODE")[-1]
    assert entry["action"] == "acquire.node"
    p = entry["parameters"]
    assert (p["chain"], p["network"], p["tip_height"]) == ("bitcoin", "mainnet", 438)
    assert p["tip_hash"] == "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"
    db = store / "bitcoin-mainnet.duckdb"
    assert p["files"][db.name]["sha256"] == hashlib.sha256(db.read_bytes()).hexdigest()


def test_imported_tags_are_acquired_and_a_changed_store_replays_different(
        store: Path, tmp_path: Path) -> None:
    own = tmp_path / "store"
    shutil.copytree(store, own, ignore=shutil.ignore_patterns("cases"))
    ok(run(own, "case", "new", "--reference", "CT-TAGS", *NEW_CASE))
    header = b"address,chain,label,category,actor,confidence,source,author,case\r\n"
    first = tmp_path / "unrelated.csv"
    first.write_bytes(header + b"1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d,bitcoin,Seized wallet,"
                      b"exchange,,forensic_investigation,warrant 7,ana,CT-TAGS\r\n")
    ok(run(own, "tags", "import", str(first), "--case", "CT-TAGS"))
    ok(run(own, "trace", "forward", FIRST_TRANSFER, "--case", "CT-TAGS"))
    ok(run(own, "screen", PAID_AT_181, "--case", "CT-TAGS"))
    csv = tmp_path / "exchange.csv"
    csv.write_bytes(header + f"{PAID_AT_181},bitcoin,exchange deposit,exchange,,"
                    "forensic_investigation,production order 7,ana,CT-TAGS\r\n".encode())
    ok(run(own, "tags", "import", str(csv), "--case", "CT-TAGS"))
    acquired = custody(own, "CT-TAGS")[-1]
    assert acquired["action"] == "acquire.tags"
    assert acquired["result_sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    copy = own / "cases" / "CT-TAGS" / acquired["parameters"]["file"]["path"]
    assert copy.read_bytes() == csv.read_bytes()
    assert acquired["parameters"]["import"]["records"] == 1

    result = run(own, "case", "replay", "CT-TAGS", "--json")
    assert result.exit_code == 1
    items = {i["kind"]: i for i in json.loads(result.stdout)["items"]}
    assert items["trace"]["status"] == "different"
    assert any(d.startswith("$.endpoints.exchange") for d in items["trace"]["differences"]), \
        items["trace"]["differences"]
    assert items["screening"]["status"] == "different"
    assert "$.tagged" in items["screening"]["differences"]
    ok(run(own, "case", "verify", "CT-TAGS"))


def test_a_wrong_case_fails_before_the_query_runs(store: Path) -> None:
    result = run(store, "trace", "forward", FIRST_TRANSFER, "--case", "CT-NONE", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no case CT-NONE" in result.stderr


def test_api_key_identity_is_used_and_its_role_enforced(tmp_path: Path) -> None:
    from cointrail.auth.keys import create_key

    ok(run(tmp_path, "case", "new", "--reference", "CT-KEYS", *NEW_CASE))
    analyst = create_key(tmp_path, "Bea Berger", "analyst").secret
    auditor = create_key(tmp_path, "Audit Office", "auditor").secret
    runner_env = {**ENV, "COINTRAIL_API_KEY": analyst}
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()
    ok(runner.invoke(app, ["--store", str(tmp_path), "case", "note", "CT-KEYS", "by key"],
                     env=runner_env))
    entry = custody(tmp_path, "CT-KEYS")[-1]
    assert (entry["who"], entry["role"]) == ("Bea Berger", "analyst")
    denied = runner.invoke(app, ["--store", str(tmp_path), "case", "note", "CT-KEYS", "no"],
                           env={**ENV, "COINTRAIL_API_KEY": auditor})
    assert denied.exit_code == 3
    assert "may not" in denied.stderr
    ok(runner.invoke(app, ["--store", str(tmp_path), "case", "verify", "CT-KEYS"],
                     env={**ENV, "COINTRAIL_API_KEY": auditor}))
    bad = runner.invoke(app, ["--store", str(tmp_path), "case", "show", "CT-KEYS"],
                        env={**ENV, "COINTRAIL_API_KEY": "ct_not_a_key"})
    assert bad.exit_code == 3
