"""Fixtures for legal-request tests: a real store (bundled mainnet blocks 0-438), the real
GraphSense ActorPack, own tags naming two payments of the block-170 change chain as deposits
at Binance, a real case with the forward trace of block 170 as finding F0001, and a contact
directory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cointrail import get_chain
from cointrail.analysis.tracing import TraceParams, trace
from cointrail.auth import Principal, Role
from cointrail.cases.case import Case, CaseStore
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.store.duck import Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.sync import ingest_blkfiles
from tests.support.data import require_shared

BLOCK_170_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
ANA = Principal("ana", Role.ANALYST)
BEA = Principal("bea", Role.APPROVER)
CARL = Principal("carl", Role.APPROVER)

CONTACTS = """\
version: 1
entities:
  - name: Binance Malta Operations Ltd
    country: MT
    address: Level 3, Tower Business Centre, Swatar, Malta
    actors: [binance]
    labels: [Binance]
    le_portal: https://le-portal.invalid/binance
    le_email: lawenforcement@binance.invalid
states:
  - country: MT
    poc_247: "Malta Police Cybercrime Unit (24/7), +356 0000 0000"
    central_authority: "Office of the Attorney General, Valletta"
"""

USER_FIELDS = {
    "officer_name": "Det. Ana Example",
    "officer_rank_id": "Detective Inspector, ID 4711",
    "authorising_authority": "Public Prosecutor's Office Berlin, order 12 Js 34/26",
    "proportionality": "Only the accounts credited with the traced deposits are concerned; "
                       "no less intrusive means can identify the account holder.",
    "necessity": "Exchanges delete or overwrite login logs; without preservation the data "
                 "identifying the account holder may be lost before MLA is executed.",
    "data_relation": "The account(s) credited with these deposits received proceeds of the "
                     "offence; their KYC and login data identify who controls them.",
}


@pytest.fixture(scope="package")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with blocks 0-438, the real ActorPack, and Binance tags on two outputs."""
    from cointrail.attribution import AttributionStore, import_tags

    actorpack = require_shared("tags/graphsense-tagpacks/actors/graphsense.actorpack.yaml")
    root = tmp_path_factory.mktemp("legal-store")
    with Store(root).chain(get_chain("bitcoin", "mainnet")) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        first = trace(store, BLOCK_170_TX, "forward", TraceParams())
    paid = {(n.height, n.vout): n.address for n in first.nodes}
    # the 1 BTC payments of blocks 182 and 183 become deposits at Binance
    deposits = [paid[(182, 0)], paid[(183, 0)]]
    own = root / "own-tags.csv"
    own.write_text("address,chain,label,category,actor,confidence,source\n" + "".join(
        f"{a},bitcoin,Binance,exchange,binance,ownership,test deposit {i}\n"
        for i, a in enumerate(deposits)))
    with AttributionStore(root) as attr:
        import_tags(attr, [actorpack, own])
    return root


def new_case(store_root: Path, reference: str, principal: Principal = ANA,
             offence: str = "UNCC-17", jurisdiction: str = "DE") -> Case:
    case = CaseStore.for_store(store_root).create(
        principal, reference=reference, title="First transfer laundering test",
        offence=offence, jurisdiction=jurisdiction,
        authority={"name": "Landeskriminalamt Berlin", "unit": "Cybercrime LKA 7",
                   "contact": "+49 30 0000 0000", "email": "lka7@polizei.invalid",
                   "poc_247": "DE 24/7 PoC ref 2026-17"},
        investigators=["ana"], facts="Proceeds of an extortion were moved through the "
        "change chain of block 170 and deposited at an exchange.",
        legal_basis="§ 100a StPO", purpose="criminal investigation", retention_days=3650,
        national_law="§ 261 StGB", max_penalty_years=5)
    with Store(store_root).chain(get_chain("bitcoin", "mainnet"), read_only=True) as store:
        result = trace(store, BLOCK_170_TX, "forward", TraceParams(), attribution_root=store_root)
    case.record_finding("trace", {"start": BLOCK_170_TX, "direction": "forward"},
                        result.to_dict(), record=result.record)
    return case


@pytest.fixture
def contacts_file(tmp_path: Path) -> Path:
    path = tmp_path / "contacts.yaml"
    path.write_text(CONTACTS)
    return path


_CASE_NUMBERS = itertools.count(1)


@pytest.fixture
def make_case(store_root: Path, contacts_file: Path) -> Iterator[Callable[..., Case]]:
    from cointrail.legal.contacts import import_contacts

    import_contacts(store_root, contacts_file)
    def make(**kwargs: Any) -> Case:
        # unique across the package's tests, which share one store (an object id could repeat)
        return new_case(store_root, f"LEGAL-{next(_CASE_NUMBERS):05d}", **kwargs)

    yield make


def as_principal(case: Case, principal: Principal) -> Case:
    return CaseStore(case.folder.parent).open(case.folder.name, principal)
