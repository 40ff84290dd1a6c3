"""EIP-55 checksums: the EIP's own vectors, rejection of a bad checksum, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cointrail.chain.account.address import (
    keccak256,
    parse_eth_address,
    to_checksum_address,
)
from cointrail.errors import AddressError

# EIP-55 "Test Cases" (all caps, all lower, normal)
EIP55 = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("text", EIP55)
def test_eip55_vectors_parse_to_lower_case(text: str) -> None:
    assert parse_eth_address(text) == text.lower()


@pytest.mark.parametrize("text", EIP55[4:])
def test_checksum_form_is_reproduced(text: str) -> None:
    assert to_checksum_address(text.lower()) == text


def test_bad_checksum_is_an_address_error() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    bad = good[:-1] + "D"  # one letter's case flipped
    with pytest.raises(AddressError, match="EIP-55"):
        parse_eth_address(bad)


@pytest.mark.parametrize("text", ["0x1234", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                                  "0xZZaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"])
def test_malformed_is_an_address_error(text: str) -> None:
    with pytest.raises(AddressError, match="not an Ethereum address"):
        parse_eth_address(text)


def test_keccak_is_not_sha3() -> None:
    # keccak256("") as every Ethereum client has it (SHA3-256("") differs: a7ffc6f8...)
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


@given(st.binary(min_size=20, max_size=20))
def test_checksum_round_trip(raw: bytes) -> None:
    lower = "0x" + raw.hex()
    checksummed = to_checksum_address(lower)
    assert parse_eth_address(checksummed) == lower
    flipped = "".join(c.swapcase() if c.isalpha() else c for c in checksummed[2:])
    if flipped not in (flipped.lower(), flipped.upper()):  # a letter's case changed
        with pytest.raises(AddressError):
            parse_eth_address("0x" + flipped)
