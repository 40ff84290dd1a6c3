"""A store built from the bundled real mainnet blocks 0–438, clustered and tagged, with one
API key per role, and a TestClient over the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cointrail import get_chain
from cointrail.auth import Role
from cointrail.auth.keys import create_key
from cointrail.data import EARLY_MAINNET_BLOCKS, bundled_path
from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.settings import Settings, load_settings

#: Published facts of the bundled blocks: the first bitcoin transfer (block 170) spends
#: Satoshi's block-9 coinbase to Hal Finney.
SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
HAL = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
FIRST_TRANSFER = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
BLOCK_9_COINBASE = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
TESTNET_ADDRESS = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"


def build_store(root: Path) -> None:
    """Ingest the bundled blocks, cluster them, tag Hal's address as an own tag."""
    from cointrail.analysis.clustering.engine import Clusterer
    from cointrail.attribution import AttributionStore, import_tags
    from cointrail.store.duck import Store
    from cointrail.store.ingest import UtxoIngestor
    from cointrail.store.sync import ingest_blkfiles

    with Store(root).chain(get_chain("bitcoin", "mainnet")) as store:
        ingest_blkfiles(UtxoIngestor(store), str(bundled_path(EARLY_MAINNET_BLOCKS)))
        Clusterer(store).run()
    tags = root / "own-tags.csv"
    tags.write_text("address,chain,label,category,actor,confidence,source\n"
                    f"{HAL},bitcoin,Hal Finney (test label),exchange,,ownership,api tests\n")
    with AttributionStore(root) as attr:
        import_tags(attr, [tags])


@dataclass(frozen=True, slots=True)
class Keys:
    analyst: str
    approver: str
    auditor: str
    admin: str

    def of(self, role: Role) -> str:
        return str(getattr(self, role.value))


@pytest.fixture(scope="session")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api-store")
    build_store(root)
    return root


@pytest.fixture(scope="session")
def keys(store_root: Path) -> Keys:
    made = {r.value: create_key(store_root, f"test-{r.value}", r).secret for r in Role}
    return Keys(**made)


@pytest.fixture(scope="session")
def settings(store_root: Path) -> Settings:
    return load_settings(store=store_root, chain="bitcoin", network="mainnet")


@pytest.fixture
def client(settings: Settings, keys: Keys) -> Iterator[TestClient]:
    app = create_app(settings, ApiConfig(rate_per_second=1000, burst=1000, max_batch=50))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


CASE = {
    "reference": "CT-2026-0042", "title": "First transfer (API test)", "offence": "UNCC-9",
    "jurisdiction": "DE", "authority": {"name": "Test Unit", "email": "unit@example.org"},
    "investigators": ["test-analyst"], "facts": "Funds left block 9's coinbase.",
    "legal_basis": "StPO § 100a (test)", "purpose": "API tests", "retention_days": 365,
}
