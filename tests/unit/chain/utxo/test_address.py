"""Address encodings: official BIP 173 / BIP 350 / cashaddr.md vectors, chain rules, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cointrail.chain.spec import ChainSpec, Family, all_chains, get_chain
from cointrail.chain.utxo.address import (
    CHARSET,
    Encoding,
    ParsedAddress,
    b58decode,
    b58encode,
    base58check_decode,
    base58check_encode,
    bech32_decode,
    bech32_decode_segwit,
    bech32_encode,
    bech32_encode_segwit,
    cashaddr_decode,
    cashaddr_decode_raw,
    cashaddr_encode,
    cashaddr_encode_raw,
    convertbits,
    encode_address,
    guess_chains,
    parse_address,
)
from cointrail.errors import AddressError, InputError

BTC = get_chain("bitcoin", "mainnet")
BTC_TEST = get_chain("bitcoin", "testnet")
LTC = get_chain("litecoin", "mainnet")
LTC_TEST = get_chain("litecoin", "testnet")
BCH = get_chain("bitcoin-cash", "mainnet")
BCH_TEST = get_chain("bitcoin-cash", "testnet")
DOGE = get_chain("dogecoin", "mainnet")
UTXO_SPECS = [s for s in all_chains() if s.family is Family.UTXO]

# ------------------------------------------------------------------ BIP 173 / BIP 350 test vectors

VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]

VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

INVALID_BECH32 = [
    " 1nwldj5",  # HRP character out of range
    "\x7f" + "1axkwrx",  # HRP character out of range
    "\x80" + "1eym55h",  # HRP character out of range
    # overall max length exceeded
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
    "pzry9x0s0muk",  # no separator character
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt" + "\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with uppercase form of HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]

INVALID_BECH32M = [
    " 1xj0phk",  # HRP character out of range
    "\x7f" + "1g6xzxy",  # HRP character out of range
    "\x80" + "1vctc34",  # HRP character out of range
    # overall max length exceeded
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",  # no separator character
    "1qyrz8wqd2c9m",  # empty HRP
    "y1b0jsk6g",  # invalid data character
    "lt1igcx5c0",  # invalid data character
    "in1muywd",  # too short checksum
    "mm1crxm3i",  # invalid character in checksum
    "au1s5cgom",  # invalid character in checksum
    "M1VUXWEZ",  # checksum calculated with uppercase form of HRP
    "16plkw9",  # empty HRP
    "1p2gdwpf",  # empty HRP
]

# BIP 350 (supersedes BIP 173's list for v1+): address -> scriptPubKey
VALID_SEGWIT = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

INVALID_SEGWIT_BIP350 = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",  # invalid HRP
    # invalid checksum algorithm (bech32 instead of bech32m)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    # invalid checksum algorithm (bech32m instead of bech32)
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",  # invalid char in checksum
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",  # invalid witness version
    "bc1pw5dgrnzv",  # invalid program length (1 byte)
    # invalid program length (41 bytes)
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # invalid program length for v0 (BIP 141)
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",  # mixed case
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",  # > 4 padding bits
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",  # non-zero padding
    "bc1gmk9yu",  # empty data section
]

INVALID_SEGWIT_BIP173 = [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",  # invalid human-readable part
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # invalid checksum
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",  # invalid witness version
    "bc1rw5uspcuh",  # invalid program length
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",  # invalid program length for v0
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",  # mixed case
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",  # zero padding of more than 4 bits
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",  # non-zero padding
    "bc1gmk9yu",  # empty data section
]

# valid under BIP 173 (v1+ with a bech32 checksum), invalid since BIP 350
BIP173_V1_PLUS_NOW_INVALID = [
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
    "BC1SW50QA3JX3S",
    "bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj",
]

INVALID_SEGWIT_ENCODE = [("BC", 0, 20), ("bc", 0, 21), ("bc", 17, 32), ("bc", 1, 1), ("bc", 16, 41)]


def _flip_first_data_char(text: str) -> str:
    pos = text.rfind("1")
    return text[: pos + 1] + chr(ord(text[pos + 1]) ^ 1) + text[pos + 2 :]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(t, Encoding.BECH32) for t in VALID_BECH32] + [(t, Encoding.BECH32M) for t in VALID_BECH32M],
)
def test_valid_bech32_strings(text: str, encoding: Encoding) -> None:
    hrp, data, got = bech32_decode(text)
    assert got is encoding
    assert hrp == text.lower()[: text.rfind("1")]
    assert bech32_encode(hrp, data, encoding) == text.lower()
    with pytest.raises(AddressError):
        bech32_decode(_flip_first_data_char(text))


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(t, Encoding.BECH32) for t in INVALID_BECH32]
    + [(t, Encoding.BECH32M) for t in INVALID_BECH32M],
)
def test_invalid_bech32_strings(text: str, encoding: Encoding) -> None:
    try:
        _, _, got = bech32_decode(text)
    except AddressError:
        return
    assert got is not encoding


@pytest.mark.parametrize(("address", "script_hex"), VALID_SEGWIT)
def test_valid_segwit_addresses(address: str, script_hex: str) -> None:
    hrp = "bc" if address.lower().startswith("bc1") else "tb"
    witver, program = bech32_decode_segwit(hrp, address)
    script = bytes.fromhex(script_hex)
    assert bytes([witver + 0x50 if witver else 0, len(program)]) + program == script
    assert bech32_encode_segwit(hrp, witver, program) == address.lower()
    parsed = parse_address(address, BTC if hrp == "bc" else BTC_TEST)
    assert parsed.script_pubkey == script
    assert parsed.text == address.lower()
    assert encode_address(parsed.spec, parsed.script_type, parsed.payload) == address.lower()


@pytest.mark.parametrize(
    "address", INVALID_SEGWIT_BIP350 + INVALID_SEGWIT_BIP173 + BIP173_V1_PLUS_NOW_INVALID
)
def test_invalid_segwit_addresses(address: str) -> None:
    for hrp in ("bc", "tb"):
        with pytest.raises(AddressError):
            bech32_decode_segwit(hrp, address)
    for spec in (BTC, BTC_TEST):
        with pytest.raises(AddressError):
            parse_address(address, spec)


@pytest.mark.parametrize(("hrp", "witver", "length"), INVALID_SEGWIT_ENCODE)
def test_invalid_segwit_encode(hrp: str, witver: int, length: int) -> None:
    with pytest.raises(AddressError):
        bech32_encode_segwit(hrp, witver, bytes(length))


def test_segwit_error_messages_name_the_rule() -> None:
    with pytest.raises(AddressError, match="bech32m"):
        bech32_decode_segwit("bc", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd")
    with pytest.raises(AddressError, match="mixes upper and lower case"):
        bech32_decode_segwit("tb", "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq")
    with pytest.raises(AddressError, match="v0 program length"):
        bech32_decode_segwit("bc", "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P")
    with pytest.raises(AddressError, match="padding"):
        bech32_decode_segwit("bc", "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du")
    with pytest.raises(AddressError, match="expected 'bc'"):
        bech32_decode_segwit("bc", "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7")


# ---------------------------------------------------------------------- cashaddr.md test vectors

CASHADDR_CHECKSUM_ONLY = [
    "prefix:x64nx6hz",
    "PREFIX:X64NX6HZ",
    "p:gpf8m4h7",
    "bitcoincash:qpzry9x8gf2tvdw0s3jn54khce6mua7lcw20ayyn",
    "bchtest:spectestnetaddressrealrealaddressqpan2k9lh",
    "bchtest:testnetaddress4d6njnut",  # Bitcoin Cash Node's cashaddr_tests.cpp
    "bchreg:555555555555555555555555555555555555555555555udxmlmrz",
]

CASHADDR_LEGACY_PAIRS = [
    (
        "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu",
        "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
    ),
    (
        "1KXrWXciRDZUpQwQmuM1DbwsKDLYAYsVLR",
        "bitcoincash:qr95sy3j9xwd2ap32xkykttr4cvcu7as4y0qverfuy",
    ),
    ("16w1D5WRVKJuZUsSRzdLp9w3YGcgoxDXb", "bitcoincash:qqq3728yw0y47sqn6l2na30mcw6zm78dzqre909m2r"),
    (
        "3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC",
        "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq",
    ),
    (
        "3LDsS579y7sruadqu11beEJoTjdFiFCdX4",
        "bitcoincash:pr95sy3j9xwd2ap32xkykttr4cvcu7as4yc93ky28e",
    ),
    (
        "31nwvkZwyPdgzjBJZXfDmSWsC4ZLKpYyUw",
        "bitcoincash:pqq3728yw0y47sqn6l2na30mcw6zm78dzq5ucqzc37",
    ),
]

_H20 = "F5BF48B397DAE70BE82B3CCA4793F8EB2B6CDAC9"
_H24 = "7ADBF6C17084BC86C1706827B41A56F5CA32865925E946EA"
_H28 = "3A84F9CF51AAE98A3BB3A78BF16A6183790B18719126325BFC0C075B"
_H32 = "3173EF6623C6B48FFD1A3DCC0CC6489B0A07BB47A37F47CFEF4FE69DE825C060"
_H40 = "C07138323E00FA4FC122D3B85B9628EA810B3F381706385E289B0B25631197D194B5C238BEB136FB"
_H48 = (
    "E361CA9A7F99107C17A622E047E3745D3E19CF804ED63C5C40C6BA763696B98241223D8CE62AD48D863F4CB18C"
    "930E4C"
)
_H56 = (
    "D9FA7C4C6EF56DC4FF423BAAE6D495DBFF663D034A72D1DC7D52CBFE7D1E6858F9D523AC0A7A5C34077638E4DD"
    "1A701BD017842789982041"
)
_H64 = (
    "D0F346310D5513D9E01E299978624BA883E6BDA8F4C60883C10F28C2967E67EC77ECC7EEEAEAFC6DA89FAD72D1"
    "1AC961E164678B868AEEEC5F2C1DA08884175B"
)

# (size, type, cashaddr, hash hex): the "Larger test vectors" table of cashaddr.md
CASHADDR_SIZES = [
    (20, 0, "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2", _H20),
    (20, 1, "bchtest:pr6m7j9njldwwzlg9v7v53unlr4jkmx6eyvwc0uz5t", _H20),
    (20, 1, "pref:pr6m7j9njldwwzlg9v7v53unlr4jkmx6ey65nvtks5", _H20),
    (24, 0, "bitcoincash:q9adhakpwzztepkpwp5z0dq62m6u5v5xtyj7j3h2ws4mr9g0", _H24),
    (24, 1, "bchtest:p9adhakpwzztepkpwp5z0dq62m6u5v5xtyj7j3h2u94tsynr", _H24),
    (24, 1, "pref:p9adhakpwzztepkpwp5z0dq62m6u5v5xtyj7j3h2khlwwk5v", _H24),
    (28, 0, "bitcoincash:qgagf7w02x4wnz3mkwnchut2vxphjzccwxgjvvjmlsxqwkcw59jxxuz", _H28),
    (28, 1, "bchtest:pgagf7w02x4wnz3mkwnchut2vxphjzccwxgjvvjmlsxqwkcvs7md7wt", _H28),
    (28, 1, "pref:pgagf7w02x4wnz3mkwnchut2vxphjzccwxgjvvjmlsxqwkcrsr6gzkn", _H28),
    (32, 0, "bitcoincash:qvch8mmxy0rtfrlarg7ucrxxfzds5pamg73h7370aa87d80gyhqxq5nlegake", _H32),
    (32, 1, "bchtest:pvch8mmxy0rtfrlarg7ucrxxfzds5pamg73h7370aa87d80gyhqxq7fqng6m6", _H32),
    (32, 1, "pref:pvch8mmxy0rtfrlarg7ucrxxfzds5pamg73h7370aa87d80gyhqxq4k9m7qf9", _H32),
    (
        40,
        0,
        "bitcoincash:qnq8zwpj8cq05n7pytfmskuk9r4gzzel8qtsvwz79zdskftrzxtar994cgutavfklv39gr3uvz",
        _H40,
    ),
    (
        40,
        1,
        "bchtest:pnq8zwpj8cq05n7pytfmskuk9r4gzzel8qtsvwz79zdskftrzxtar994cgutavfklvmgm6ynej",
        _H40,
    ),
    (
        40,
        1,
        "pref:pnq8zwpj8cq05n7pytfmskuk9r4gzzel8qtsvwz79zdskftrzxtar994cgutavfklv0vx5z0w3",
        _H40,
    ),
    (
        48,
        0,
        "bitcoincash:qh3krj5607v3qlqh5c3wq3lrw3wnuxw0sp8dv0zugrrt5a3kj6ucysfz8kxwv2k53krr7n933jfsu"
        "nqex2w82sl",
        _H48,
    ),
    (
        48,
        1,
        "bchtest:ph3krj5607v3qlqh5c3wq3lrw3wnuxw0sp8dv0zugrrt5a3kj6ucysfz8kxwv2k53krr7n933jfsunqn"
        "zf7mt6x",
        _H48,
    ),
    (
        48,
        1,
        "pref:ph3krj5607v3qlqh5c3wq3lrw3wnuxw0sp8dv0zugrrt5a3kj6ucysfz8kxwv2k53krr7n933jfsunqjntd"
        "fcwg",
        _H48,
    ),
    (
        56,
        0,
        "bitcoincash:qmvl5lzvdm6km38lgga64ek5jhdl7e3aqd9895wu04fvhlnare5937w4ywkq57juxsrhvw8ym5d8q"
        "x7sz7zz0zvcypqscw8jd03f",
        _H56,
    ),
    (
        56,
        1,
        "bchtest:pmvl5lzvdm6km38lgga64ek5jhdl7e3aqd9895wu04fvhlnare5937w4ywkq57juxsrhvw8ym5d8qx7s"
        "z7zz0zvcypqs6kgdsg2g",
        _H56,
    ),
    (
        56,
        1,
        "pref:pmvl5lzvdm6km38lgga64ek5jhdl7e3aqd9895wu04fvhlnare5937w4ywkq57juxsrhvw8ym5d8qx7sz7z"
        "z0zvcypqsammyqffl",
        _H56,
    ),
    (
        64,
        0,
        "bitcoincash:qlg0x333p4238k0qrc5ej7rzfw5g8e4a4r6vvzyrcy8j3s5k0en7calvclhw46hudk5flttj6ydvj"
        "c0pv3nchp52amk97tqa5zygg96mtky5sv5w",
        _H64,
    ),
    (
        64,
        1,
        "bchtest:plg0x333p4238k0qrc5ej7rzfw5g8e4a4r6vvzyrcy8j3s5k0en7calvclhw46hudk5flttj6ydvjc0p"
        "v3nchp52amk97tqa5zygg96mc773cwez",
        _H64,
    ),
    (
        64,
        1,
        "pref:plg0x333p4238k0qrc5ej7rzfw5g8e4a4r6vvzyrcy8j3s5k0en7calvclhw46hudk5flttj6ydvjc0pv3nc"
        "hp52amk97tqa5zygg96mg7pj3lh8",
        _H64,
    ),
]

# (type, size bits, cashaddr, data hex): a few rows of the "Undefined types" table
CASHADDR_UNDEFINED_TYPES = [
    (15, 0, "prefix:0qxsg0rgpa", ""),
    (15, 7, "prefix:0uwa85v9fp", ""),
    (
        15,
        0,
        "prefix:0zeuqqwwk0xjclsv4lzljpye09m74gv4darmzluu6g4yxxk5eja92nup8dp7p",
        "B3C001CEB3CD2C7E0CAFC5F904997977EAA1956F47B17F9CD22A431AD4CCBA55",
    ),
    (
        15,
        7,
        "prefix:07euqqwwk0xjclsv4lzljpye09m74gv4darmzluu6g4yxxk5eja922n8zkmjh",
        "B3C001CEB3CD2C7E0CAFC5F904997977EAA1956F47B17F9CD22A431AD4CCBA55",
    ),
]


@pytest.mark.parametrize("text", CASHADDR_CHECKSUM_ONLY)
def test_cashaddr_checksum_vectors(text: str) -> None:
    prefix, data = cashaddr_decode_raw(text)
    assert prefix == text.split(":", maxsplit=1)[0].lower()
    assert cashaddr_encode_raw(prefix, data) == text.lower()
    broken = text[:-1] + ("q" if text[-1].lower() != "q" else "p")
    with pytest.raises(AddressError, match="checksum"):
        cashaddr_decode_raw(broken.lower())


@pytest.mark.parametrize(("size", "kind", "address", "hash_hex"), CASHADDR_SIZES)
def test_cashaddr_size_vectors(size: int, kind: int, address: str, hash_hex: str) -> None:
    hash_ = bytes.fromhex(hash_hex)
    assert len(hash_) == size
    prefix = address.split(":", maxsplit=1)[0]
    assert cashaddr_encode(prefix, kind, hash_) == address
    assert cashaddr_decode(address) == (prefix, kind, hash_)
    assert cashaddr_decode(address.upper()) == (prefix, kind, hash_)
    payload_only = address.split(":")[1]
    assert cashaddr_decode(payload_only, default_prefix=prefix) == (prefix, kind, hash_)


@pytest.mark.parametrize(("kind", "size_bits", "address", "data_hex"), CASHADDR_UNDEFINED_TYPES)
def test_cashaddr_undefined_type_vectors(
    kind: int, size_bits: int, address: str, data_hex: str
) -> None:
    prefix, data = cashaddr_decode_raw(address)
    payload = bytes(convertbits(data, 5, 8, pad=False))
    assert payload[0] == kind << 3 | size_bits
    assert payload[1:] == bytes.fromhex(data_hex)
    assert cashaddr_encode_raw(prefix, convertbits(payload, 8, 5)) == address
    with pytest.raises(AddressError):  # size bits do not match the data length
        cashaddr_decode(address)


@pytest.mark.parametrize(("legacy", "cash"), CASHADDR_LEGACY_PAIRS)
def test_cashaddr_legacy_translation(legacy: str, cash: str) -> None:
    version, hash_ = base58check_decode(legacy)
    prefix, kind, cash_hash = cashaddr_decode(cash)
    assert (prefix, cash_hash) == ("bitcoincash", hash_)
    assert (version, kind) in ((0x00, 0), (0x05, 1))
    from_legacy = parse_address(legacy, BCH)
    from_cash = parse_address(cash, BCH)
    assert from_legacy.payload == from_cash.payload == hash_
    assert from_legacy.script_type == from_cash.script_type
    assert from_legacy.script_pubkey == from_cash.script_pubkey
    assert from_cash.text == cash
    assert encode_address(BCH, from_legacy.script_type, hash_) == cash


def test_cashaddr_known_pair_without_prefix_and_upper_case() -> None:
    hash_ = base58check_decode("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu")[1]
    for text in (
        "qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
        "QPM2QSZNHKS23Z7629MMS6S4CWEF74VCWVY22GDX6A",
        "BITCOINCASH:QPM2QSZNHKS23Z7629MMS6S4CWEF74VCWVY22GDX6A",
        "  bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a\n",
    ):
        parsed = parse_address(text, BCH)
        assert parsed.payload == hash_
        assert parsed.script_type == "pubkeyhash"
        assert parsed.script_pubkey == bytes.fromhex("76a914") + hash_ + bytes.fromhex("88ac")
        assert parsed.text == "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a"


def test_cashaddr_rejects_mixed_case_and_missing_prefix() -> None:
    with pytest.raises(AddressError, match="mixes upper and lower case"):
        cashaddr_decode("bitcoincash:QPM2QSZNHKS23Z7629MMS6S4CWEF74VCWVY22GDX6A")
    with pytest.raises(AddressError, match="mixes upper and lower case"):
        parse_address("bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6A", BCH)
    with pytest.raises(AddressError, match="no cashaddr prefix"):
        cashaddr_decode("qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a")


def test_cashaddr_other_network_is_named() -> None:
    testnet = cashaddr_encode("bchtest", 0, bytes.fromhex(_H20))
    with pytest.raises(
        AddressError, match="bitcoin-cash testnet address, not bitcoin-cash mainnet"
    ):
        parse_address(testnet, BCH)
    prefixless = testnet.split(":")[1]
    with pytest.raises(AddressError, match="--network testnet"):
        parse_address(prefixless, BCH)
    assert parse_address(prefixless, BCH_TEST).payload == bytes.fromhex(_H20)


def test_cashaddr_p2sh32_and_token_aware_types() -> None:
    h32 = bytes(range(32))
    p2sh32 = encode_address(BCH, "scripthash", h32)
    assert p2sh32 is not None and p2sh32.startswith("bitcoincash:p")
    parsed = parse_address(p2sh32, BCH)
    assert parsed.script_type == "scripthash"
    assert parsed.script_pubkey == b"\xaa\x20" + h32 + b"\x87"
    h20 = bytes(range(20))
    token = cashaddr_encode("bitcoincash", 2, h20)  # CashTokens token-aware P2PKH
    assert token.startswith("bitcoincash:z")
    parsed = parse_address(token, BCH)
    assert (parsed.script_type, parsed.payload, parsed.text) == ("pubkeyhash", h20, token)
    with pytest.raises(AddressError):  # P2PKH with a 32-byte hash pays no known script
        parse_address(cashaddr_encode("bitcoincash", 0, h32), BCH)


# ------------------------------------------------------------------------- Base58 / Base58Check


def test_genesis_address() -> None:
    text = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    hash_ = bytes.fromhex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18")
    assert base58check_decode(text) == (0, hash_)
    assert base58check_encode(0, hash_) == text
    parsed = parse_address(text, BTC)
    assert parsed == ParsedAddress(
        text, BTC, "pubkeyhash", hash_, bytes.fromhex("76a914") + hash_ + bytes.fromhex("88ac")
    )
    assert encode_address(BTC, "pubkeyhash", hash_) == text


def test_b58_leading_zeros_and_bad_characters() -> None:
    assert b58encode(b"") == ""
    assert b58decode("") == b""
    assert b58encode(b"\0\0\x01") == "112"
    assert b58decode("112") == b"\0\0\x01"
    for bad in ("0", "O", "I", "l", "1A1zP1eP5QGefi2DMPTfTL5SLmv7Div0Na"):
        with pytest.raises(AddressError, match="invalid base58 character"):
            b58decode(bad)


def test_base58check_errors() -> None:
    with pytest.raises(AddressError, match="checksum"):
        base58check_decode("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")
    with pytest.raises(AddressError, match="too short"):
        base58check_decode("1111")
    with pytest.raises(AddressError):
        base58check_encode(256, b"")


# ---------------------------------------------------------------------------------- chain rules


def test_litecoin_p2sh_m_and_legacy_3_both_accepted() -> None:
    modern = parse_address("MTf4tP1TCNBn8dNkyxeBVoPrFCcVzxJvvh", LTC)
    legacy = parse_address("3MSvaVbVFFLML86rt5eqgA9SvW23upaXdY", LTC)
    assert modern.script_type == legacy.script_type == "scripthash"
    assert modern.payload == legacy.payload
    assert modern.script_pubkey == legacy.script_pubkey == b"\xa9\x14" + modern.payload + b"\x87"
    # the node shows the M form
    assert encode_address(LTC, "scripthash", legacy.payload) == "MTf4tP1TCNBn8dNkyxeBVoPrFCcVzxJvvh"
    # and legacy 3... is no p2sh prefix of bitcoin testnet: only mainnet specs take it
    assert {s.key for s in guess_chains("3MSvaVbVFFLML86rt5eqgA9SvW23upaXdY")} == {
        "bitcoin/mainnet",
        "litecoin/mainnet",
        "bitcoin-cash/mainnet",
    }
    assert {s.key for s in guess_chains("MTf4tP1TCNBn8dNkyxeBVoPrFCcVzxJvvh")} == {
        "litecoin/mainnet"
    }


def test_litecoin_other_addresses() -> None:
    p2pkh = parse_address("LYhttvnKawAv6RcHQ4eBkNtifuiEA99PFe", LTC)
    assert p2pkh.script_type == "pubkeyhash"
    p2wpkh = parse_address("ltc1qhdhvrwe6rgqns8fz28tee0hphr5x7ulw5exv4w", LTC)
    assert p2wpkh.script_type == "witness_v0_keyhash"
    assert p2wpkh.script_pubkey == bytes.fromhex("0014bb6ec1bb3a1a01381d2251d79cbee1b8e86f73ee")
    unknown = parse_address("ltc1zjwls6j8c4u", LTC)
    assert (unknown.script_type, unknown.payload) == ("witness_unknown", bytes.fromhex("0293bf"))
    assert encode_address(LTC, "witness_unknown", unknown.payload) == "ltc1zjwls6j8c4u"


def test_dogecoin_d_address() -> None:
    text = "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L"
    version, hash_ = base58check_decode(text)
    assert version == DOGE.p2pkh_prefix == 0x1E
    parsed = parse_address(text, DOGE)
    assert (parsed.script_type, parsed.payload) == ("pubkeyhash", hash_)
    assert encode_address(DOGE, "pubkeyhash", hash_) == text
    p2sh = encode_address(DOGE, "scripthash", hash_)
    assert p2sh is not None and p2sh[0] in "9A"
    assert [s.key for s in guess_chains(text)] == ["dogecoin/mainnet"]
    with pytest.raises(AddressError, match="dogecoin mainnet address, not bitcoin mainnet"):
        parse_address(text, BTC)


def test_wrong_chain_is_named() -> None:
    bitcoin = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    with pytest.raises(AddressError) as info:
        parse_address(bitcoin, LTC)
    message = str(info.value)
    assert "bitcoin mainnet address, not litecoin mainnet" in message
    assert "--chain bitcoin" in message
    genesis = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    with pytest.raises(AddressError, match="bitcoin mainnet") as info:
        parse_address(genesis, LTC)
    assert "--chain bitcoin" in str(info.value)
    litecoin = "ltc1qhdhvrwe6rgqns8fz28tee0hphr5x7ulw5exv4w"
    with pytest.raises(AddressError, match="litecoin mainnet address, not bitcoin mainnet"):
        parse_address(litecoin, BTC)
    with pytest.raises(AddressError, match="pass --network testnet"):
        parse_address("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", BTC)
    with pytest.raises(AddressError, match="--chain bitcoin --network testnet"):
        parse_address("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", LTC)


def test_unknown_everywhere_keeps_the_precise_error() -> None:
    with pytest.raises(AddressError, match="checksum"):
        parse_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", BTC)
    with pytest.raises(AddressError, match="empty address"):
        parse_address("   ", BTC)
    with pytest.raises(AddressError, match="has no bech32"):
        parse_address("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", DOGE)
    with pytest.raises(AddressError, match="human-readable part 'tc'"):
        parse_address("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", BTC)
    with pytest.raises(AddressError, match="version byte 0x99"):
        parse_address(base58check_encode(0x99, bytes(20)), LTC_TEST)
    with pytest.raises(AddressError, match="20-byte hash"):
        parse_address(base58check_encode(0x00, bytes(21)), BTC)
    with pytest.raises(AddressError, match="too long"):
        parse_address("1" * 500, BTC)


def test_errors_are_input_errors() -> None:
    with pytest.raises(InputError):
        parse_address("nonsense", BTC)
    with pytest.raises(ValueError):
        parse_address("nonsense", BTC)


def test_account_chain_is_refused() -> None:
    eth = get_chain("ethereum", "mainnet")
    with pytest.raises(AddressError, match="not a UTXO chain"):
        parse_address("0x" + "00" * 20, eth)


# ------------------------------------------------------------------------------- Litecoin MWEB

# ltcd ltcutil/mweb keychain test, subaddresses 0, 1, 10: (scan pubkey, spend pubkey, address)
MWEB_VECTORS = [
    (
        "03acdfb78943f3330437760e37731828f9abd626a72df16fc7cd968df13b7465ab",
        "039ed000ed69ca7d593f09ad4a373200bc9711261aab56efc05b92a5eab434f864",
        "ltcmweb1qqwkdldufg0enxpphwc8rwucc9ru6h43x5uklzm78ektgmufmw3j6kqu76qqw66w204vn7zddfgmnyq9uj"
        "ugjvx4t2mhuqkuj5h4tgd8cvs6gg076",
    ),
    (
        "02516a92f3bc6025bce2911e67140dded34ac1f938df0148c9b478e577b5054e42",
        "035dad4451e4f2bfd56bb0266a12d92af4749d43a452471e52a437b9d7bbb157c1",
        "ltcmweb1qqfgk4yhnh3szt08zjy0xw9qdmmf54s0e8r0szjxfk3uw2aa4q48yyq6a44z9re8jhl2khvpxdgfdj2h5w"
        "jw58fzjgu099fphh8tmhv2hcygfr2nl",
    ),
    (
        "03f864dcaa67a74542ff9b5adc27ad2f9002626baa91372e9aee7737ecfec18cca",
        "027223f04b94617ec15d7d5c135c42242af64b2129f17080e6b10756bb6ec10073",
        "ltcmweb1qq0uxfh92v7n52shlndddcfad97gqycnt42gnwt56aemn0m87cxxv5qnjy0cyh9rp0mq46l2uzdwyyfp27"
        "e9jz203wzqwdvg826akasgqwvgs2kze",
    ),
]


@pytest.mark.parametrize(("scan", "spend", "address"), MWEB_VECTORS)
def test_mweb_addresses(scan: str, spend: str, address: str) -> None:
    assert len(address) > 90  # beyond the BIP 173 limit, which MWEB lifts
    parsed = parse_address(address, LTC)
    assert parsed.script_type == "mweb"
    assert parsed.payload == bytes.fromhex(scan + spend)
    assert parsed.script_pubkey == b""
    assert encode_address(LTC, "mweb", parsed.payload) == address
    assert parse_address(address.upper(), LTC).payload == parsed.payload
    assert [s.key for s in guess_chains(address)] == ["litecoin/mainnet"]
    with pytest.raises(AddressError, match="litecoin mainnet address, not bitcoin mainnet"):
        parse_address(address, BTC)
    with pytest.raises(AddressError, match="--network mainnet"):
        parse_address(address, LTC_TEST)
    with pytest.raises(AddressError, match="checksum"):
        parse_address(_flip_first_data_char(address), LTC)


def test_mweb_payload_size_is_checked() -> None:
    short = bech32_encode("ltcmweb", [0, *convertbits(bytes(33), 8, 5)], Encoding.BECH32)
    with pytest.raises(AddressError, match="expected 66"):
        parse_address(short, LTC)
    with pytest.raises(AddressError):
        encode_address(LTC, "mweb", bytes(65))
    assert encode_address(BTC, "mweb", bytes(66)) is None


# ----------------------------------------------------------------------------- encode_address


@pytest.mark.parametrize(
    "script_type", ["pubkey", "multisig", "nulldata", "nonstandard", "witness_mweb_hogaddr"]
)
def test_types_without_address(script_type: str) -> None:
    for spec in UTXO_SPECS:
        assert encode_address(spec, script_type, b"\x01" * 20) is None


def test_segwit_types_on_chains_without_segwit() -> None:
    for spec in (DOGE, BCH):
        assert encode_address(spec, "witness_v0_keyhash", bytes(20)) is None
        assert encode_address(spec, "witness_v1_taproot", bytes(32)) is None
        assert encode_address(spec, "witness_unknown", bytes([2, 0, 0])) is None


def test_encode_address_rejects_bad_input() -> None:
    with pytest.raises(AddressError, match="unknown script type"):
        encode_address(BTC, "p2pkh", bytes(20))
    with pytest.raises(AddressError, match="20 bytes"):
        encode_address(BTC, "pubkeyhash", bytes(32))
    with pytest.raises(AddressError, match="32 bytes"):
        encode_address(BTC, "witness_v1_taproot", bytes(20))
    with pytest.raises(AddressError):
        encode_address(BTC, "witness_unknown", b"")


def test_known_encodings() -> None:
    h = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")
    assert encode_address(BTC, "witness_v0_keyhash", h) == (
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    )
    taproot = bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    assert encode_address(BTC, "witness_v1_taproot", taproot) == (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
    )
    assert encode_address(BTC, "witness_unknown", bytes.fromhex("10751e")) == "bc1sw50qgdz25j"
    anchor = encode_address(BTC, "anchor", bytes.fromhex("4e73"))
    assert anchor == "bc1pfeessrawgf"
    parsed = parse_address(anchor, BTC)
    assert (parsed.script_type, parsed.script_pubkey) == ("anchor", bytes.fromhex("51024e73"))


# ------------------------------------------------------------------------- property-based tests

_SCRIPT_TYPES = st.sampled_from(
    [
        "pubkeyhash",
        "scripthash",
        "witness_v0_keyhash",
        "witness_v0_scripthash",
        "witness_v1_taproot",
        "witness_unknown",
        "mweb",
    ]
)


@st.composite
def _typed_payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    script_type = draw(_SCRIPT_TYPES)
    if script_type == "witness_unknown":
        version = draw(st.integers(2, 16))
        return script_type, bytes([version]) + draw(st.binary(min_size=2, max_size=40))
    size = {"witness_v0_scripthash": 32, "witness_v1_taproot": 32, "mweb": 66}.get(script_type, 20)
    return script_type, draw(st.binary(min_size=size, max_size=size))


@given(spec=st.sampled_from(UTXO_SPECS), typed=_typed_payloads())
def test_encode_parse_round_trip_every_chain(spec: ChainSpec, typed: tuple[str, bytes]) -> None:
    script_type, payload = typed
    text = encode_address(spec, script_type, payload)
    if text is None:
        assert (script_type.startswith("witness") and spec.bech32_hrp is None) or (
            script_type == "mweb" and spec.mweb_hrp is None
        )
        return
    parsed = parse_address(text, spec)
    assert (parsed.text, parsed.spec, parsed.script_type) == (text, spec, script_type)
    assert parsed.payload == payload
    assert spec in guess_chains(text)


@given(st.binary(max_size=80))
def test_b58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


@given(st.integers(0, 255), st.binary(max_size=40))
def test_base58check_round_trip(version: int, payload: bytes) -> None:
    assert base58check_decode(base58check_encode(version, payload)) == (version, payload)


@given(st.binary(max_size=80))
def test_convertbits_round_trip(data: bytes) -> None:
    assert bytes(convertbits(convertbits(data, 8, 5), 5, 8, pad=False)) == data


@given(
    hrp=st.sampled_from(["bc", "tb", "bcrt", "ltc", "tltc", "rltc"]),
    witver=st.integers(0, 16),
    program=st.binary(min_size=2, max_size=40),
)
def test_segwit_round_trip(hrp: str, witver: int, program: bytes) -> None:
    if witver == 0 and len(program) not in (20, 32):
        return
    text = bech32_encode_segwit(hrp, witver, program)
    assert bech32_decode_segwit(hrp, text) == (witver, program)
    assert bech32_decode(text)[2] is (Encoding.BECH32 if witver == 0 else Encoding.BECH32M)


@given(
    prefix=st.sampled_from(["bitcoincash", "bchtest", "bchreg", "pref"]),
    kind=st.integers(0, 15),
    hash_=st.sampled_from([20, 24, 28, 32, 40, 48, 56, 64]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    ),
)
def test_cashaddr_round_trip(prefix: str, kind: int, hash_: bytes) -> None:
    text = cashaddr_encode(prefix, kind, hash_)
    assert cashaddr_decode(text) == (prefix, kind, hash_)
    assert cashaddr_decode(text.split(":")[1], default_prefix=prefix) == (prefix, kind, hash_)


@given(
    program=st.binary(min_size=20, max_size=20),
    position=st.integers(min_value=0),
    replacement=st.sampled_from(CHARSET),
)
def test_single_substitution_is_detected(program: bytes, position: int, replacement: str) -> None:
    for text in (
        bech32_encode_segwit("bc", 0, program),
        cashaddr_encode("bitcoincash", 0, program),
    ):
        start = text.index(":") + 1 if ":" in text else 3
        pos = start + position % (len(text) - start)
        if text[pos] == replacement:
            continue
        mutated = text[:pos] + replacement + text[pos + 1 :]
        spec = BCH if ":" in text else BTC
        with pytest.raises(AddressError):
            parse_address(mutated, spec)
