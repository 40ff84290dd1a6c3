"""A case on the real ``litecoind -regtest`` ransomware scenario, through the CLI (issue 7).

The investigator opens a case, traces the ransom forward with ``--case``, writes the report and
drafts a preservation request to the tagged exchange, which a second person approves. The
checks read the PDFs back with ``pdftotext`` and compare them with what the node itself says
the scenario did (deposit outputs, amounts, txids: `World` from the trace scenario tests),
never with figures taken from cointrail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.auth.keys import create_key
from cointrail.interfaces.cli.main import app
from tests.integration.test_trace_scenario import (
    CHAIN,
    EXCHANGE_LABEL,
    NETWORK,
    World,
    _address,
    build_world,
    cluster_of,
    opened,
)

pytestmark = pytest.mark.integration

REF = "RANSOM-2026-001"
CONTACTS = f"""\
version: 1
entities:
  - name: Scenario Exchange Operations B.V.
    country: NL
    address: Keizersgracht 1, Amsterdam
    actors: [exchange]
    labels: ["{EXCHANGE_LABEL}"]
    le_email: law-enforcement@exchange.invalid
states:
  - country: NL
    poc_247: "NL High Tech Crime Unit 24/7 desk"
    central_authority: "Ministry of Justice and Security, IRC"
"""
USER_FIELDS = {
    "officer_name": "Det. Ana Example",
    "officer_rank_id": "Detective Inspector, ID 4711",
    "authorising_authority": "Public Prosecutor's Office Berlin, order 12 Js 34/26",
    "proportionality": "Only the accounts credited with the traced deposits are concerned.",
    "necessity": "Exchanges overwrite login logs; the data may be lost before MLA is executed.",
    "data_relation": "The accounts credited with these deposits received the ransom.",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed; scripts/install-services.sh "
                    "installs it")
    yield build_world(tmp_path_factory.mktemp("case"))


def cli(world: World, *args: str, key: str | None = None) -> str:
    env = {"COINTRAIL_USER": "ana"}
    if key is not None:
        env["COINTRAIL_API_KEY"] = key
    result = CliRunner().invoke(
        app, ["--store", str(world.store), "--chain", CHAIN, "--network", NETWORK, *args],
        env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def squeeze(text: str) -> str:
    return "".join(text.split())


def test_case_report_and_preservation_request(world: World, tmp_path: Path) -> None:
    facts = world.facts
    cli(world, "case", "new", "--reference", REF, "--title", "Ransomware scenario",
        "--offence", "UNCC-17", "--national-law", "§ 261 StGB", "--max-penalty-years", "5",
        "--jurisdiction", "DE", "--authority", "Landeskriminalamt Berlin", "--unit", "LKA 7",
        "--contact", "Ana Example", "--email", "lka7@polizei.invalid", "--poc-247",
        "DE 24/7 PoC", "--investigator", "ana", "--facts",
        "Victims paid a ransom; the operator consolidated and peeled it into an exchange.",
        "--legal-basis", "§ 100a StPO", "--purpose", "criminal investigation",
        "--retention-days", "3650")
    with opened(world) as store:
        operator = cluster_of(store, facts.operator_addresses[0])
    doc = json.loads(cli(world, "trace", "forward", operator, "--hops", "20", "--model",
                         "haircut", "--case", REF, "--json"))
    found = {(o["txid"], o["vout"]): o["amount_sat"]
             for o in doc["endpoints"]["exchange"]["outputs"]}
    assert found == world.deposits  # every deposit, exactly, as the node made it

    out = tmp_path / "report"
    cli(world, "case", "report", REF, "--out", str(out))
    (pdf,) = out.glob("*/report.pdf")
    text = squeeze(pdf_text(pdf))
    for (txid, _), amount in found.items():
        assert txid in text
        assert f"{amount:,}".replace(",", "") in text.replace(",", "").replace(" ", "")
    assert REF in text

    contacts = tmp_path / "contacts.yaml"
    contacts.write_text(CONTACTS)
    cli(world, "request", "contacts", "import", str(contacts))
    fields: list[str] = []
    for key, value in USER_FIELDS.items():
        fields += ["--field", f"{key}={value}"]
    request = json.loads(cli(world, "request", "draft", REF, "--kind", "preservation",
                             "--finding", "F0001", "--exchange", EXCHANGE_LABEL, *fields,
                             "--json"))
    assert request["status"] == "draft"
    secret = create_key(world.store, "bea", "approver").secret
    cli(world, "request", "approve", REF, request["id"], key=secret)

    folder = world.store / "cases" / REF / "requests" / request["id"]
    letter = squeeze(pdf_text(folder / "letter.pdf"))
    assert "ScenarioExchangeOperationsB.V." in letter
    deposit_addresses = {_address(world.txs[t]["vout"][n]) for t, n in found}
    for address in deposit_addresses:
        assert address in letter
    for txid, _ in found:
        assert txid in letter
    assert "DRAFT" not in letter.upper().split("REQUEST")[0]  # approved: no draft banner
    with (folder / "identifiers.csv").open() as f:
        listed = f.read()
    for address in deposit_addresses:
        assert address in listed

    verdict = cli(world, "case", "verify", REF)
    assert "intact" in verdict.lower()
