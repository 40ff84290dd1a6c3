"""The web investigator in Debian's Chromium, driven by Playwright, against a real server.

uvicorn serves the app on a free 127.0.0.1 port (in a thread) over a store built from the
bundled mainnet blocks 0–438. An investigator signs in with an API key, finds Satoshi's block-9
address, expands it in the graph (the first bitcoin transfer appears, Hal Finney's address with
it), runs a trace and reads its endpoints, keeps the trace in a case, writes the case report
and downloads its PDF, verifies the custody log, and screens a list. Screenshots are written to
``test-artifacts/web/`` as test artefacts.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from cointrail.auth.keys import create_key
from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.settings import load_settings
from tests.support.apiserver import serving
from tests.support.data import REPO_ROOT
from tests.unit.api.conftest import BLOCK_9_COINBASE, CASE, HAL, SATOSHI, build_store

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:

    root = tmp_path_factory.mktemp("web-store")
    build_store(root)
    key = create_key(root, "web-investigator", "analyst").secret
    from cointrail.auth import Principal, Role
    from cointrail.cases import CaseStore

    CaseStore.for_store(root).create(Principal("web-investigator", Role.ANALYST), **CASE)
    app = create_app(load_settings(store=root, chain="bitcoin", network="mainnet"),
                     ApiConfig(rate_per_second=200, burst=400))
    with serving(app) as base:
        yield base, key


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is absent; scripts/install-services.sh installs Debian's "
                    "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_investigator_finds_expands_and_traces(server: tuple[str, str], browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    base, key = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else external.append(r.url))
    page.goto(base + "/")

    # a wrong key is refused with the server's message
    page.fill("#api-key", "ct_0123456789ab_" + "A" * 43)
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_contain_text("unknown API key")
    page.fill("#api-key", key)
    page.click("#login-form button")
    expect(page.locator("#who")).to_contain_text("web-investigator (analyst)")
    page.screenshot(path=str(ARTIFACTS / "01-signed-in.png"))

    # find Satoshi's block-9 address and put it on the graph
    page.fill("#search-q", SATOSHI)
    page.click("#search-form button[type=submit]")
    hit = page.locator("#search-results li.hit-address")
    expect(hit).to_contain_text(SATOSHI)
    hit.click()
    expect(page.locator("#detail-address")).to_have_text(SATOSHI)
    assert page.evaluate("() => document.querySelector('#graph canvas') !== null")

    # expand its neighbours: the block-9 coinbase and the first transfer, to Hal
    page.click("#expand")
    expect(page.locator("#expand")).to_have_text("All neighbours shown", timeout=30_000)
    assert page.evaluate("hal => window.__explorerHas(hal)", HAL)
    count = page.evaluate("() => window.__explorerCount()")
    assert count["tx"] >= 2 and count["address"] >= 2
    page.screenshot(path=str(ARTIFACTS / "02-expanded.png"))

    # trace the block-9 coinbase forward: Hal's 10 BTC is among the endpoints
    page.click("#tabs button[data-tab=trace]")
    page.fill("#trace-form input[name=start]", f"{BLOCK_9_COINBASE}:0")
    page.select_option("#trace-form select[name=model]", "fifo")
    page.fill("#trace-form input[name=hops]", "1")
    page.click("#trace-form button[type=submit]")
    expect(page.locator("#trace-summary")).to_contain_text("forward fifo trace")
    expect(page.locator("#trace-endpoints")).to_contain_text(f"{HAL} 10")
    page.screenshot(path=str(ARTIFACTS / "03-trace.png"))

    # open the case, keep the trace in it, write the report and download the PDF
    ref = str(CASE["reference"])
    page.click("#tabs button[data-tab=case]")
    page.select_option("#case-select", ref)
    page.click("#case-open-form button")
    expect(page.locator("#case-current")).to_contain_text(ref)
    page.click("#tabs button[data-tab=trace]")
    page.click("#trace-keep")
    expect(page.locator("#trace-kept")).to_contain_text(f"kept in case {ref} as finding F0001")
    page.click("#tabs button[data-tab=case]")
    page.fill("#attach-form input[name=address]", HAL)
    page.click("#attach-form button")
    expect(page.locator("#custody-list li[data-action='attach.address']")).to_have_count(1)
    page.click("#case-report")
    expect(page.locator("#case-status")).to_contain_text("report written", timeout=120_000)
    pdf_link = page.locator("a.case-file[data-path$='report.pdf']")
    with page.expect_download() as download_info:
        pdf_link.click()
    download = download_info.value
    saved = ARTIFACTS / "case-report.pdf"
    download.save_as(str(saved))
    assert saved.read_bytes().startswith(b"%PDF")
    page.click("#case-verify")
    expect(page.locator("#case-status")).to_contain_text("custody log verified")
    actions = page.locator("#custody-list li").evaluate_all(
        "items => items.map(i => i.dataset.action)")
    assert {"query.trace", "finding.record", "report.write", "query.api"} <= set(actions)
    page.screenshot(path=str(ARTIFACTS / "04-case.png"))

    # screen a pasted list
    page.click("#tabs button[data-tab=screen]")
    page.fill("#screen-form textarea[name=addresses]", f"{HAL}\n{SATOSHI}\n")
    page.click("#screen-form button[type=submit]")
    expect(page.locator("#screen-table")).to_contain_text("Hal Finney (test label)")
    page.screenshot(path=str(ARTIFACTS / "05-screening.png"))

    assert errors == []
    assert external == []  # nothing fetched from anywhere but the server: no CDN


@pytest.fixture(scope="module")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`cointrail demo` into a fresh store, then the server over it (litecoin regtest)."""
    import json
    import os

    from typer.testing import CliRunner

    from cointrail.data import SCENARIO_FACTS, bundled_path
    from cointrail.interfaces.cli.main import app

    root = tmp_path_factory.mktemp("web-demo") / "store"
    env = {k: None for k in os.environ if k.startswith("COINTRAIL_")}
    ran = CliRunner().invoke(app, ["demo", "--store", str(root), "--json"], env=env)
    assert ran.exit_code == 0, ran.output
    figures = json.loads(ran.stdout)
    facts = json.loads(bundled_path(SCENARIO_FACTS).read_text("utf-8"))
    key = create_key(root, "demo-investigator", "analyst").secret
    server_app = create_app(load_settings(store=root, chain="litecoin", network="regtest"),
                            ApiConfig(rate_per_second=200, burst=400))
    with serving(server_app) as base:
        yield base, key, {"facts": facts, "figures": figures}


def test_investigator_works_the_demo_case(demo_server: tuple[str, str, dict[str, Any]],
                                          browser: object) -> None:
    """The demo's ransomware case in the browser: find a reported ransom address, expand it,
    trace the operator's cluster to the exchange, keep the trace in CT-DEMO-0001, write the
    report and download it."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    base, key, data = demo_server
    facts = data["facts"]
    ransom = facts["operator"]["ransom_addresses"][0]
    deposit = facts["exchange"]["deposits"][-1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    page.fill("#api-key", key)
    page.click("#login-form button")
    expect(page.locator("#who")).to_contain_text("demo-investigator (analyst)")

    page.fill("#search-q", ransom)
    page.click("#search-form button[type=submit]")
    hit = page.locator("#search-results li.hit-address")
    expect(hit).to_contain_text(ransom)
    hit.click()
    expect(page.locator("#detail-address")).to_have_text(ransom)
    page.click("#expand")
    expect(page.locator("#expand")).to_have_text("All neighbours shown", timeout=30_000)
    assert page.evaluate("() => window.__explorerCount()")["tx"] >= 1
    page.screenshot(path=str(ARTIFACTS / "demo-01-ransom-address.png"))

    ref = "CT-DEMO-0001"
    page.click("#tabs button[data-tab=case]")
    page.select_option("#case-select", ref)
    page.click("#case-open-form button")
    expect(page.locator("#case-current")).to_contain_text(ref)

    start = data["figures"]["scenario"]["trace_start"]  # the ransom addresses' cluster
    assert start.startswith("cluster:")
    page.click("#tabs button[data-tab=trace]")
    page.fill("#trace-form input[name=start]", start)
    page.select_option("#trace-form select[name=model]", "haircut")
    page.fill("#trace-form input[name=hops]", "20")
    page.click("#trace-form button[type=submit]")
    expect(page.locator("#trace-summary")).to_contain_text("forward haircut trace",
                                                           timeout=60_000)
    expect(page.locator("#trace-endpoints")).to_contain_text(deposit["address"])
    page.screenshot(path=str(ARTIFACTS / "demo-02-trace.png"))
    page.click("#trace-keep")
    expect(page.locator("#trace-kept")).to_contain_text(f"kept in case {ref}")

    page.click("#tabs button[data-tab=case]")
    page.click("#case-report")
    expect(page.locator("#case-status")).to_contain_text("report written", timeout=120_000)
    with page.expect_download() as download_info:
        page.locator("a.case-file[data-path$='report.pdf']").last.click()
    saved = ARTIFACTS / "demo-case-report.pdf"
    download_info.value.save_as(str(saved))
    assert saved.read_bytes().startswith(b"%PDF")
    page.click("#case-verify")
    expect(page.locator("#case-status")).to_contain_text("custody log verified")
    page.screenshot(path=str(ARTIFACTS / "demo-03-case.png"))
    assert errors == []
