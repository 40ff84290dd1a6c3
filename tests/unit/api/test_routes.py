"""The routes on the real bundled blocks: answers match the CLI's core functions and published
facts; bad input is a 4xx JSON error; every request lands on the audit log."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cointrail import get_chain
from cointrail.interfaces.api.audit import AUDIT_FILE, verify_audit
from cointrail.store.duck import Store
from cointrail.store.queries import show_address
from tests.unit.api.conftest import (
    BLOCK_9_COINBASE,
    FIRST_TRANSFER,
    HAL,
    SATOSHI,
    TESTNET_ADDRESS,
    Keys,
    auth,
)

BTC = get_chain("bitcoin", "mainnet")


def get(client: TestClient, keys: Keys, url: str, **params: Any) -> Any:
    return client.get(url, params=params, headers=auth(keys.analyst))


def test_show_matches_the_core_functions(client: TestClient, keys: Keys, store_root: Path) -> None:
    with Store(store_root).chain(BTC, read_only=True) as store:
        expected = show_address(store, HAL)
    doc = get(client, keys, f"/api/v1/addresses/{HAL}").json()
    assert {k: doc[k] for k in expected} == expected
    assert doc["received_sat"] == 10 * 100_000_000  # block 170 sent Hal 10 BTC
    assert doc["cluster"] is not None
    tx = get(client, keys, f"/api/v1/txs/{FIRST_TRANSFER}").json()
    assert [o["address"] for o in tx["vout"]] == [HAL, SATOSHI]
    assert tx["vin"][0]["txid"] == BLOCK_9_COINBASE
    block = get(client, keys, "/api/v1/blocks/170").json()
    assert FIRST_TRANSFER in block["tx"]
    by_hash = get(client, keys, f"/api/v1/blocks/{block['hash']}").json()
    assert by_hash["height"] == 170


def test_search_finds_each_kind(client: TestClient, keys: Keys) -> None:
    def kinds(q: str) -> set[str]:
        return {h["kind"] for h in get(client, keys, "/api/v1/search", q=q).json()["results"]}

    assert kinds(HAL) == {"address"}
    assert kinds(FIRST_TRANSFER) == {"tx"}
    assert "block" in kinds("170")
    assert "tag" in kinds("hal finney")
    cluster = get(client, keys, f"/api/v1/addresses/{HAL}").json()["cluster"]["cluster_id"]
    assert "cluster" in kinds(f"cluster:{cluster}")
    assert get(client, keys, "/api/v1/search", q="nothing-like-this").json()["results"] == []


def test_neighbours_page_through_every_transaction(client: TestClient, keys: Keys) -> None:
    total = get(client, keys, f"/api/v1/addresses/{SATOSHI}").json()["tx_count"]
    seen: list[str] = []
    cursor = None
    for _ in range(total + 1):
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = get(client, keys, f"/api/v1/addresses/{SATOSHI}/neighbours", **params).json()
        seen += [item["txid"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == total
    assert seen[:2] == [BLOCK_9_COINBASE, FIRST_TRANSFER]  # oldest first
    first_spend = get(client, keys, f"/api/v1/addresses/{SATOSHI}/neighbours",
                      limit=2).json()["items"][1]
    assert first_spend["sent_sat"] == 50 * 100_000_000
    assert {o["address"] for o in first_spend["outputs"]} == {HAL, SATOSHI}
    tx = get(client, keys, f"/api/v1/txs/{FIRST_TRANSFER}/neighbours", limit=1).json()
    assert tx["inputs"][0]["prev_txid"] == BLOCK_9_COINBASE
    assert tx["outputs"][0]["address"] == HAL and tx["next_cursor"] == "1"


def test_trace_path_exposure_screen(client: TestClient, keys: Keys) -> None:
    trace = get(client, keys, "/api/v1/trace/forward", start=f"{BLOCK_9_COINBASE}:0",
                model="fifo", hops=1).json()
    assert trace["seed_amount_sat"] == 50 * 100_000_000
    reached = {o["address"] for g in trace["endpoints"].values() for o in g["outputs"]}
    assert HAL in reached
    path = get(client, keys, "/api/v1/path", **{"from": SATOSHI, "to": HAL}).json()
    assert path["found"] and path["paths"][0]["hops"] == 1
    exposure = get(client, keys, "/api/v1/exposure", subject=HAL, direction="in").json()
    assert exposure["incoming"]["total_sat"] == 10 * 100_000_000
    single = get(client, keys, "/api/v1/screen", address=HAL).json()
    assert single["addresses"][0]["categories"] == ["exchange"]
    batch = client.post("/api/v1/screen", json={"addresses": [HAL, SATOSHI]},
                        headers=auth(keys.analyst)).json()
    assert [r["tagged"] for r in [batch]] == [1]
    assert [a["address"] for a in batch["addresses"]] == [HAL, SATOSHI]
    tags = get(client, keys, "/api/v1/tags", address=HAL).json()["tags"]
    assert [t["label"] for t in tags] == ["Hal Finney (test label)"]


@pytest.mark.parametrize(("url", "params", "status", "error"), [
    (f"/api/v1/addresses/{HAL[:-1]}x", {}, 400, "AddressError"),  # checksum broken
    (f"/api/v1/addresses/{TESTNET_ADDRESS}", {}, 400, "AddressError"),  # wrong network
    ("/api/v1/addresses/bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", {"chain": "litecoin"},
     400, "AddressError"),  # bitcoin address asked on litecoin
    ("/api/v1/addresses/1BoatSLRHtKNngkdXEeobR76b53LETtpyT", {}, 404, "NotFoundError"),
    ("/api/v1/txs/" + "ab" * 32, {}, 404, "NotFoundError"),
    ("/api/v1/txs/xyz", {}, 400, "InputError"),
    ("/api/v1/blocks/999999", {}, 404, "NotFoundError"),
    ("/api/v1/clusters/99999999", {}, 404, "NotFoundError"),
    ("/api/v1/search", {"q": HAL, "chain": "dogecoin2"}, 400, "UnknownChainError"),
    (f"/api/v1/addresses/{TESTNET_ADDRESS}", {"network": "testnet"}, 404,
     "NotFoundError"),  # a valid testnet address, but the store holds no testnet data
    (f"/api/v1/addresses/{SATOSHI}/neighbours", {"cursor": "abc"}, 400, "InputError"),
    ("/api/v1/trace/forward", {"start": HAL, "hops": 51}, 422, "ValidationError"),
    ("/api/v1/trace/sideways", {"start": HAL}, 422, "ValidationError"),
    ("/api/v1/trace/forward", {"start": HAL, "since": "yesterday"}, 400, "InputError"),
    ("/api/v1/trace/forward", {"start": "nonsense"}, 400, "AddressError"),
    ("/api/v1/path", {"from": HAL, "to": HAL}, 400, "InputError"),
    ("/api/v1/screen", {"address": HAL, "as_of": "last week"}, 400, "InputError"),
    ("/api/v1/tags", {}, 400, "InputError"),
    ("/api/v1/actors/nobody", {}, 404, "NotFoundError"),
    ("/api/v1/no-such-route", {}, 404, "NotFound"),
])
def test_bad_input_is_a_4xx_json_error(client: TestClient, keys: Keys, url: str,
                                       params: dict[str, Any], status: int, error: str) -> None:
    r = get(client, keys, url, **params)
    assert (r.status_code, r.json()["error"]) == (status, error), r.text
    assert len(r.json()["message"]) > 20


def test_batch_limits(client: TestClient, keys: Keys) -> None:
    over = client.post("/api/v1/screen", json={"addresses": [HAL] * 51},
                       headers=auth(keys.analyst))
    assert over.status_code == 413 and "at most 50" in over.json()["message"]
    empty = client.post("/api/v1/screen", json={"addresses": []}, headers=auth(keys.analyst))
    assert empty.status_code == 422 and empty.json()["error"] == "ValidationError"
    garbage = client.post("/api/v1/screen", content=b"{not json",
                          headers=auth(keys.analyst) | {"Content-Type": "application/json"})
    assert garbage.status_code == 422
    huge = client.post("/api/v1/screen", content=b"x" * (2 << 20),
                       headers=auth(keys.analyst) | {"Content-Type": "application/json"})
    assert huge.status_code == 413


def test_every_request_is_audited(client: TestClient, keys: Keys, store_root: Path,
                                  tmp_path: Path) -> None:
    path = store_root / AUDIT_FILE
    before = len(path.read_text().splitlines()) if path.exists() else 0
    ok = get(client, keys, f"/api/v1/addresses/{HAL}")
    refused = client.get("/api/v1/me", headers={"X-API-Key": "ct_0123456789ab_" + "A" * 43})
    posted = client.post("/api/v1/screen", json={"addresses": [HAL]}, headers=auth(keys.admin))
    lines = path.read_text().splitlines()
    assert len(lines) == before + 3
    a, b, c = (json.loads(line) for line in lines[-3:])
    assert (a["who"], a["role"], a["route"], a["status"]) == (
        "test-analyst", "analyst", "/api/v1/addresses/{address}", 200)
    assert a["parameters"]["path"] == {"address": HAL}
    assert a["response_sha256"] == hashlib.sha256(ok.content).hexdigest()
    assert a["at"].endswith("Z")
    assert (b["who"], b["authenticated"], b["key_id"], b["status"]) == (
        None, False, "0123456789ab", 401)
    assert b["response_sha256"] == hashlib.sha256(refused.content).hexdigest()
    assert c["parameters"]["body"] == json.dumps({"addresses": [HAL]}, separators=(",", ":"))
    assert c["response_sha256"] == hashlib.sha256(posted.content).hexdigest()
    assert verify_audit(path)["ok"]
    served = client.get("/api/v1/audit/verify", headers=auth(keys.auditor)).json()
    assert served["ok"] and served["entries"] >= len(lines)
    page = client.get("/api/v1/audit", params={"limit": 2}, headers=auth(keys.auditor)).json()
    assert page["entries"][0]["route"] == "/api/v1/audit/verify"

    tampered = tmp_path / AUDIT_FILE
    shutil.copy(path, tampered)
    edited = tampered.read_text().splitlines()
    edited[-3] = edited[-3].replace('"status":200', '"status":201')
    tampered.write_text("\n".join(edited[:-2] + edited[-1:]) + "\n")  # edit one, drop one
    report = verify_audit(tampered)
    assert not report["ok"]
    problems = " ".join(p["problem"] for p in report["problems"])
    assert "edited" in problems and "prev_hash" in problems


def test_status_lists_the_good_chains_beside_a_damaged_database(
    store_root: Path, keys: Keys, tmp_path: Path
) -> None:
    """One unreadable chain database must not take the whole /status down: the good chain is
    listed as usual, the damaged one with its error."""
    from cointrail.interfaces.api import ApiConfig, create_app
    from cointrail.settings import load_settings

    root = tmp_path / "store"
    shutil.copytree(store_root, root)
    (root / "dogecoin-mainnet.duckdb").write_bytes(b"not a database " * 100)
    settings = load_settings(store=root, chain="bitcoin", network="mainnet")
    with TestClient(create_app(settings, ApiConfig()), raise_server_exceptions=False) as c:
        r = c.get("/api/v1/status", headers=auth(keys.analyst))
    assert r.status_code == 200, r.text
    chains = {(d["chain"], d["network"]): d for d in r.json()["chains"]}
    assert chains[("bitcoin", "mainnet")]["tip_height"] == 438
    bad = chains[("dogecoin", "mainnet")]
    assert "error" in bad and "tip_height" not in bad
