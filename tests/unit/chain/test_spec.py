"""The ChainSpec registry and its invariant: no chain-name comparisons outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cointrail.chain.spec import CHAIN_NAMES, Family, all_chains, chains_with_magic, get_chain
from cointrail.errors import UnknownChainError

SRC = Path(__file__).resolve().parents[3] / "src" / "cointrail"


def test_every_utxo_chain_on_every_network() -> None:
    for chain in ("bitcoin", "litecoin", "bitcoin-cash", "dogecoin"):
        for network in ("mainnet", "testnet", "regtest"):
            spec = get_chain(chain, network)
            assert spec.family is Family.UTXO
            assert len(spec.magic) == 4
            assert 0 <= spec.p2pkh_prefix < 256 and 0 <= spec.p2sh_prefix < 256


def test_known_constants() -> None:
    assert get_chain("bitcoin").magic.hex() == "f9beb4d9"
    assert get_chain("bitcoin", "regtest").bech32_hrp == "bcrt"
    assert get_chain("litecoin").bech32_hrp == "ltc"
    assert get_chain("litecoin").p2pkh_prefix == 0x30
    assert get_chain("litecoin", "regtest").has_mweb
    assert get_chain("bitcoin-cash").cashaddr_prefix == "bitcoincash"
    assert get_chain("bitcoin-cash").bech32_hrp is None
    assert get_chain("dogecoin").p2pkh_prefix == 0x1E
    assert get_chain("dogecoin").has_auxpow
    assert get_chain("ethereum", "regtest").chain_id == 31337


def test_unknown_chain_names_the_choices() -> None:
    with pytest.raises(UnknownChainError, match="use one of chains bitcoin, litecoin"):
        get_chain("bitcon")
    with pytest.raises(UnknownChainError, match="networks mainnet, testnet, regtest"):
        get_chain("bitcoin", "signet2")


def test_magic_lookup() -> None:
    regtest = {s.key for s in chains_with_magic(bytes.fromhex("fabfb5da"))}
    assert {"bitcoin/regtest", "litecoin/regtest", "dogecoin/regtest"} <= regtest
    assert {s.key for s in chains_with_magic(bytes.fromhex("fbc0b6db"))} == {"litecoin/mainnet"}


def test_keys_are_unique() -> None:
    keys = [s.key for s in all_chains()]
    assert len(keys) == len(set(keys))


def test_no_chain_name_comparisons_outside_the_registry() -> None:
    names = "|".join(re.escape(n) for n in CHAIN_NAMES)
    pattern = re.compile(rf"""[=!]=\s*["']({names})["']|["']({names})["']\s*[=!]=""")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "spec.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []
