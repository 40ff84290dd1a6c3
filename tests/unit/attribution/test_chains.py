"""Address validation per currency code: checksums, prefixes, canonical text."""

from __future__ import annotations

import pytest

from cointrail.attribution.chains import canonical_address, chain_for, parse_evm_address
from cointrail.errors import AddressError

# EIP-55's own test vectors
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55)
def test_eip55_vectors_pass_and_are_stored_lower_case(address: str) -> None:
    assert parse_evm_address(address) == address.lower()


def test_eip55_bad_checksum_is_refused() -> None:
    bad = EIP55[0][:-1] + "D"  # flip the case of the last letter
    with pytest.raises(AddressError, match="EIP-55"):
        parse_evm_address(bad)


def test_single_case_evm_addresses_carry_no_checksum() -> None:
    assert parse_evm_address(EIP55[0].lower()) == EIP55[0].lower()
    assert parse_evm_address("0x" + EIP55[0][2:].upper()) == EIP55[0].lower()


@pytest.mark.parametrize(("code", "address", "chain"), [
    ("XBT", "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d", "bitcoin"),
    ("BTC", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", "bitcoin"),
    ("TRX", "TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR", "tron"),
    ("USDT", "TEAqwfMhXLaomXhZ8KeMhx3njGmQEDnsUR", "tron"),
    ("USDT", "0x19aa5fe80d33a56d56c78e82ea5e50e5d80b4dff", "ethereum"),
    ("USDT", "16iWn2J1McqjToYLHSsAyS6En3QA8YQ91H", "bitcoin"),
    ("ZEC", "t1MMXtBrSp1XG38Lx9cePcNUCJj5vdWfUWL", "zcash"),
    ("DASH", "XnPFsRWTaSgiVauosEwQ6dEitGYXgwznz2", "dash"),
    ("XRP", "rnXyVQzgxZe7TR1EPzTkGj2jxH4LMJYh66", "ripple"),
])
def test_real_listed_addresses_validate_for_their_chain(
    code: str, address: str, chain: str
) -> None:
    got = canonical_address(code, address)
    assert got.chain == chain
    assert got.text == (address.lower() if address[:3].lower() in ("0x1", "bc1") else address)


def test_bech32_is_canonical_lower_case() -> None:
    text = canonical_address("BTC", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ").text
    assert text == "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


@pytest.mark.parametrize(("code", "address"), [
    ("XBT", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq"),  # a Tron address OFAC lists as XBT
    ("XBT", "3F6bbvS1krsc1qR8FsbTDfYQyvkMm"),  # cut in OFAC's legacy CSV
    ("XMR", "5be5543ff73456ab9f2d207887e2af87322c651ea1a873c5b25b7ffae456c320"),  # a hash
    ("TRX", "1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"),
])
def test_invalid_addresses_are_refused(code: str, address: str) -> None:
    with pytest.raises(AddressError):
        canonical_address(code, address)


def test_unknown_currency_says_what_is_supported() -> None:
    with pytest.raises(AddressError, match="no address codec for currency 'EOS'"):
        chain_for("EOS", "vuniyuoxoeub")
