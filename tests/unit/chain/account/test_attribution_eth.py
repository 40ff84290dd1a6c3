"""Ethereum addresses in attribution: the real OFAC ETH list and the Tornado Cash TagPack are
stored lower-case, and screening finds them whatever case the investigator types."""

from __future__ import annotations

import pytest

from cointrail.attribution import AttributionStore, import_sanctions, import_tags, screen
from cointrail.attribution.chains import canonical_address
from cointrail.chain.account.address import to_checksum_address
from cointrail.errors import AddressError
from tests.support.data import require_shared

# Tornado Cash: Router, on OFAC's SDN list since 2022-08-08 (EIP-55 form, as OFAC writes it)
TORNADO_ROUTER = "0xd90e2f925DA726b50C4Ed8D0Fb90Ad053324F31b"


@pytest.fixture(scope="module")
def attribution(tmp_path_factory: pytest.TempPathFactory) -> AttributionStore:
    folder = require_shared("sanctions/ofac-0xB10C")
    root = tmp_path_factory.mktemp("attr")
    store = AttributionStore(root)
    import_sanctions(store, [folder / "sanctioned_addresses_ETH.txt"])
    import_tags(store, [require_shared("tags/graphsense-tagpacks/packs/tornado_cash.yaml")])
    return store


def test_ofac_eth_addresses_are_stored_lower_case(attribution: AttributionStore) -> None:
    listed = require_shared("sanctions/ofac-0xB10C/sanctioned_addresses_ETH.txt")
    written = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    stored = {a for (a,) in attribution.query("SELECT DISTINCT address FROM sanctions_entries")}
    assert stored == {w.lower() for w in written}
    assert any(w != w.lower() for w in written)  # the list itself is in EIP-55 mixed case


@pytest.mark.parametrize("typed", [TORNADO_ROUTER, TORNADO_ROUTER.lower(),
                                   "0x" + TORNADO_ROUTER[2:].upper()])
def test_sanctioned_eth_address_is_found_in_any_case(attribution: AttributionStore,
                                                     typed: str) -> None:
    (hit,) = screen(attribution, [typed], clusters=False).to_dicts()
    assert hit["sanctioned"] is True
    assert hit["address"] == TORNADO_ROUTER.lower()


def test_tornado_tagpack_tags_are_lower_case_and_screened(
        attribution: AttributionStore) -> None:
    rows = attribution.query("SELECT address, chain FROM tags")
    assert rows and all(a == a.lower() and c == "ethereum" for a, c in rows)
    tagged = rows[0][0]
    (hit,) = screen(attribution, [to_checksum_address(tagged)], clusters=False).to_dicts()
    assert hit["tags"], "the TagPack's tag is found from the checksummed form"


def test_an_unlisted_address_is_not_sanctioned(attribution: AttributionStore) -> None:
    (hit,) = screen(attribution, ["0x" + "12" * 20], clusters=False).to_dicts()
    assert hit["sanctioned"] is False and not hit["tags"]


def test_import_validates_the_eip55_checksum() -> None:
    assert canonical_address("ETH", TORNADO_ROUTER).text == TORNADO_ROUTER.lower()
    broken = TORNADO_ROUTER[:-1] + "B"  # last letter's case flipped
    with pytest.raises(AddressError, match="EIP-55"):
        canonical_address("ETH", broken)


def test_attribution_uses_the_chain_codec() -> None:
    from cointrail.attribution import chains
    from cointrail.chain.account import address

    assert chains.keccak256 is address.keccak256
