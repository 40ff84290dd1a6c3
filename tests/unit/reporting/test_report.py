"""Case reports: PDF text (pdftotext) holds the endpoints, amounts and txids; the figure is
SVG with a node per trace node; output is byte-for-byte deterministic."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from cointrail.errors import InputError
from cointrail.reporting import draw_trace, load_methodology, render_report
from cointrail.reporting.facts import coin_text, trace_findings
from tests.unit.reporting.snapshots import (
    DEPOSIT,
    EXCHANGE,
    FINAL,
    PEEL_TX,
    SWEEP_TX,
    build_snapshot,
    hand_snapshot,
)

SVG = "{http://www.w3.org/2000/svg}"
PDFTOTEXT = shutil.which("pdftotext") or "/usr/bin/pdftotext"


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if not Path(PDFTOTEXT).exists():
        pytest.fail("pdftotext is missing: install poppler-utils")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run([PDFTOTEXT, str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def squeezed(text: str) -> str:
    """Text without whitespace: long ids wrap inside table cells."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def hand_report() -> Any:
    return render_report(hand_snapshot())


def test_pdf_holds_summary_endpoints_amounts_and_txids(hand_report: Any,
                                                        tmp_path: Path) -> None:
    text = pdf_text(hand_report.pdf, tmp_path)
    flat = squeezed(text)
    assert "CT-2026-0001" in text and "TLP:AMBER" in text
    assert "UNCC-17" in text and "Landeskriminalamt Example" in text
    for needle in (DEPOSIT, FINAL, PEEL_TX, SWEEP_TX, EXCHANGE.replace(" ", "")):
        assert needle in flat
    for amount in (40_000_000, 109_980_000, 20_000):  # exchange, unspent, fees
        assert str(amount) in flat and coin_text(amount) in flat


def test_pdf_has_methodology_and_custody_manifest(hand_report: Any, tmp_path: Path) -> None:
    snapshot = hand_snapshot()
    flat = squeezed(pdf_text(hand_report.pdf, tmp_path))
    for section in load_methodology().sections:
        for method in section.methods:
            assert method.name.replace("_", "") in flat.replace("_", ""), method.name
    assert "Möser,Böhme&Breuker2014" in flat
    assert snapshot["custody_head"]["hash"] in flat
    for artefact in snapshot["artefacts"]:
        assert artefact["sha256"] in flat and artefact["path"] in flat
    assert "peel_chain" in flat and "example_exchange" in flat  # the other findings' tables


def test_figure_has_a_node_per_trace_node_and_a_box_per_transaction(hand_report: Any) -> None:
    (trace,) = trace_findings(hand_snapshot())
    root = ET.fromstring(hand_report.figures["F0001.svg"])
    keys = {g.get("data-key") for g in root.iter(f"{SVG}g")
            if g.get("class") == "node output"}
    expected = {n.key for n in trace.nodes} | {e.key for e in trace.endpoints}
    assert keys == expected
    txids = {g.get("data-txid") for g in root.iter(f"{SVG}g") if g.get("class") == "node tx"}
    assert txids == {f.txid for f in trace.flows}
    flows = [p for p in root.iter(f"{SVG}path") if p.get("class") == "flow"]
    assert len(flows) == len({(f.from_key, f.txid) for f in trace.flows}) + len(trace.flows)


def test_a_large_trace_is_folded_but_keeps_seeds_and_attributed_endpoints() -> None:
    """A seed fanned out into 300 outputs, 5 of them at an exchange."""
    seed = "11" * 32
    fan = "22" * 32
    outputs = [{"txid": fan, "vout": i, "address": f"addr{i:03d}", "value_sat": 1000 + i,
                "amount_sat": 1000 + i, "height": 2, "hop": 1, "seed": False}
               for i in range(300)]
    result = {
        "direction": "forward", "model": "poison", "start": f"{seed}:0",
        "seed_amount_sat": sum(o["amount_sat"] for o in outputs), "absorbed_sat": 0,
        "nodes": [{"txid": seed, "vout": 0, "address": "seed", "value_sat": 1,
                   "amount_sat": 1, "height": 1, "hop": 0, "seed": True}, *outputs],
        "edges": [{"from_txid": seed, "from_vout": 0, "txid": fan, "to_vout": o["vout"],
                   "amount_sat": o["amount_sat"], "height": 2, "coinjoin": False}
                  for o in outputs],
        "endpoints": {"exchange": {"amount_sat": 0, "outputs": [
            {"txid": fan, "vout": i, "address": f"addr{i:03d}", "amount_sat": 1000 + i,
             "height": 2, "label": "X", "via": None} for i in (0, 1, 2, 3, 4)]}},
        "coinjoins": [], "record": {"chain": "bitcoin", "network": "mainnet"},
    }
    (trace,) = trace_findings(build_snapshot([result]))
    root = ET.fromstring(draw_trace(trace, max_nodes=60))
    groups = [g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("node ")]
    assert len(groups) <= 60
    drawn = {g.get("data-key") for g in groups if g.get("class") == "node output"}
    assert f"{seed}:0" in drawn
    assert {f"{fan}:{i}" for i in range(5)} <= drawn
    folded = sum(int(g.get("data-folded", "0")) for g in groups)
    assert folded + len(drawn) == 301


def test_html_and_pdf_are_deterministic(hand_report: Any) -> None:
    again = render_report(hand_snapshot())
    assert again.html == hand_report.html
    assert again.figures == hand_report.figures
    assert again.pdf == hand_report.pdf  # stable for one WeasyPrint and font set


def test_pdf_dates_come_from_the_snapshot(hand_report: Any, tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    path.write_bytes(hand_report.pdf)
    info = subprocess.run(["/usr/bin/pdfinfo", "-isodates", str(path)], check=True,
                          capture_output=True, text=True).stdout
    assert "2026-11-28T16:53:00" in info  # the last custody entry of the snapshot


def test_a_snapshot_without_a_case_is_refused() -> None:
    with pytest.raises(InputError, match=r"case\.reference"):
        render_report({"findings": []})


def test_real_block_170_trace_report(mainnet_case: Any, tmp_path: Path) -> None:
    snapshot, _ = mainnet_case
    files = render_report(snapshot)
    flat = squeezed(pdf_text(files.pdf, tmp_path))
    (trace,) = trace_findings(snapshot)
    # the five unspent endpoints of the change chain, each with its amount and txid
    assert len(trace.endpoints) == 5
    for e in trace.endpoints:
        assert e.address is not None and e.address in flat
        assert e.txid in flat and coin_text(e.amount) in flat
    assert "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S" in flat  # Satoshi's address, 18 BTC left
    assert coin_text(1_800_000_000) in flat and coin_text(4_000_000_000) in flat
    root = ET.fromstring(files.figures["F0001.svg"])
    keys = {g.get("data-key") for g in root.iter(f"{SVG}g") if g.get("class") == "node output"}
    assert keys == {n.key for n in trace.nodes}
