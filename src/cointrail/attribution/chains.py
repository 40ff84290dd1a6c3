"""Address validation for every chain a tag or sanctions list names, and canonical text.

Attribution is cross-chain: lists name currencies by code (``BTC``, ``XBT``, ``ETH``,
``USDT``...). `canonical_address` maps a code and an address to the chain it belongs to and
the canonical text cointrail stores and screens with, after checking checksum and prefix:

- the registered UTXO chains (Bitcoin, Litecoin, Bitcoin Cash, Dogecoin) through
  `cointrail.chain.utxo.address.parse_address`;
- EVM chains: 20 bytes hex, EIP-55 checksum verified when the text is mixed case, stored lower
  case;
- other base58check chains by their version bytes (Tron, Dash, Zcash transparent, Bitcoin Gold,
  Bitcoin SV, Verge), the XRP Ledger (base58check in Ripple's alphabet) and Monero (Monero's
  block base58 with a Keccak-256 checksum). These few codecs are written here because no
  registry package covers them without pulling in a whole wallet stack.

Codes that carry no chain (``USDT``, ``USDC``; LEGAL.md §4.4) take the chain from the address
form: ``0x…`` is EVM, ``T…`` Tron, else a Bitcoin (Omni) address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cointrail.chain.account.address import keccak256 as _keccak256
from cointrail.chain.account.address import parse_eth_address
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.address import (
    B58_ALPHABET,
    b58decode,
    base58check_decode,
    parse_address,
)
from cointrail.errors import AddressError

MAINNET = "mainnet"
ZERO_EVM_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True, slots=True)
class CanonicalAddress:
    """An address checked for `chain`, in the text cointrail stores (`text`)."""

    chain: str
    network: str
    text: str


keccak256 = _keccak256  # one implementation, in the chain layer


def parse_evm_address(text: str) -> str:
    """Lower-case ``0x`` + 40 hex digits; the EIP-55 checksum is checked on mixed-case input.

    One implementation for the store and attribution: `cointrail.chain.account.address`."""
    return parse_eth_address(text)


def _base58check_versions(
    name: str, versions: dict[bytes, int]
) -> Callable[[str], str]:
    """A validator for base58check addresses with the given version prefixes → payload sizes."""

    def check(text: str) -> str:
        cleaned = text.strip()
        version, payload = base58check_decode(cleaned)
        raw = bytes([version]) + payload
        for prefix, size in versions.items():
            if raw.startswith(prefix) and len(raw) - len(prefix) == size:
                return cleaned
        known = ", ".join(p.hex() for p in versions)
        raise AddressError(
            f"{cleaned!r} is base58check with version 0x{raw[:2].hex()} and {len(payload)} "
            f"bytes, which is no {name} address (version bytes {known}); check the currency"
        )

    return check


_RIPPLE_ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"
_TO_BITCOIN_ALPHABET = str.maketrans(_RIPPLE_ALPHABET, B58_ALPHABET)


def parse_xrp_address(text: str) -> str:
    """An XRP Ledger classic address (``r…``): base58check in Ripple's alphabet, version 0."""
    cleaned = text.strip()
    if any(c not in _RIPPLE_ALPHABET for c in cleaned):
        raise AddressError(f"{cleaned!r} has characters outside the XRP Ledger base58 alphabet")
    version, payload = base58check_decode(cleaned.translate(_TO_BITCOIN_ALPHABET))
    if version != 0 or len(payload) != 20:
        raise AddressError(f"{cleaned!r} is not an XRP Ledger account address")
    return cleaned


_XMR_BLOCK_SIZES = {0: 0, 2: 1, 3: 2, 5: 3, 6: 4, 7: 5, 9: 6, 10: 7, 11: 8}
_XMR_PREFIXES = {18: 69, 42: 69, 19: 77}  # standard, subaddress, integrated → decoded length


def _monero_b58decode(text: str) -> bytes:
    out = bytearray()
    for start in range(0, len(text), 11):
        block = text[start:start + 11]
        size = _XMR_BLOCK_SIZES.get(len(block))
        if size is None:
            raise AddressError(f"{text[:20]!r}...: not Monero base58 (bad block length)")
        value = int.from_bytes(b58decode(block).rjust(8, b"\0"), "big") if block else 0
        if value >> (8 * size):
            raise AddressError(f"{text[:20]!r}...: not Monero base58 (block overflow)")
        out += value.to_bytes(size, "big")
    return bytes(out)


def parse_monero_address(text: str) -> str:
    """A Monero mainnet address (standard ``4…``, subaddress ``8…``, integrated), checked."""
    cleaned = text.strip()
    raw = _monero_b58decode(cleaned)
    if not raw or _XMR_PREFIXES.get(raw[0]) != len(raw):
        raise AddressError(
            f"{cleaned[:64]!r} is not a Monero mainnet address (standard 95 characters "
            "starting 4, subaddress starting 8, or integrated)"
        )
    if keccak256(raw[:-4])[:4] != raw[-4:]:
        raise AddressError(f"{cleaned[:64]!r}: bad Monero checksum; the address is mistyped")
    return cleaned


def _utxo(chain: str) -> Callable[[str], str]:
    spec = get_chain(chain, MAINNET)
    base58_versions = {spec.p2pkh_prefix, spec.p2sh_prefix, *spec.legacy_p2sh_prefixes}

    def check(text: str) -> str:
        # fast path for the common legacy form: parse_address first rules out bech32 forms,
        # which costs more than the base58check itself; any failure takes the full path
        cleaned = text.strip()
        if 25 <= len(cleaned) <= 35:
            try:
                version, payload = base58check_decode(cleaned)
            except AddressError:
                pass
            else:
                if version in base58_versions and len(payload) == 20:
                    return cleaned
        return parse_address(cleaned, spec).text

    return check


_B58 = _base58check_versions
_VALIDATORS: dict[str, tuple[str, Callable[[str], str]]] = {
    "bitcoin": ("bitcoin", _utxo("bitcoin")),
    "litecoin": ("litecoin", _utxo("litecoin")),
    "bitcoin-cash": ("bitcoin-cash", _utxo("bitcoin-cash")),
    "dogecoin": ("dogecoin", _utxo("dogecoin")),
    "ethereum": ("ethereum", parse_evm_address),
    "ethereum-classic": ("ethereum-classic", parse_evm_address),
    "bsc": ("bsc", parse_evm_address),
    "arbitrum": ("arbitrum", parse_evm_address),
    "polygon": ("polygon", parse_evm_address),
    "avalanche": ("avalanche", parse_evm_address),
    "tron": ("tron", _B58("Tron", {b"\x41": 20})),
    "dash": ("dash", _B58("Dash", {b"\x4c": 20, b"\x10": 20})),
    "zcash": ("zcash", _B58("Zcash transparent", {b"\x1c\xb8": 20, b"\x1c\xbd": 20})),
    "bitcoin-gold": ("bitcoin-gold", _B58("Bitcoin Gold", {b"\x26": 20, b"\x17": 20})),
    "bitcoin-sv": ("bitcoin-sv", _B58("Bitcoin SV", {b"\x00": 20, b"\x05": 20})),
    "verge": ("verge", _B58("Verge", {b"\x1e": 20, b"\x21": 20})),
    "ripple": ("ripple", parse_xrp_address),
    "monero": ("monero", parse_monero_address),
}

CURRENCY_CHAINS: dict[str, str] = {
    "BTC": "bitcoin", "XBT": "bitcoin", "LTC": "litecoin", "BCH": "bitcoin-cash",
    "DOGE": "dogecoin", "ETH": "ethereum", "ETC": "ethereum-classic", "BSC": "bsc",
    "BEP20": "bsc", "BNB": "bsc", "ARB": "arbitrum", "MATIC": "polygon", "AVAX": "avalanche",
    "TRX": "tron", "DASH": "dash", "ZEC": "zcash", "BTG": "bitcoin-gold", "BSV": "bitcoin-sv",
    "XVG": "verge", "XRP": "ripple", "RIPPLE": "ripple", "XMR": "monero",
}
_CHAINLESS_TOKENS = frozenset({"USDT", "USDC"})


def chain_for(currency: str, address: str) -> str:
    """The chain name a currency code (and, for tokens, the address form) points to."""
    code = currency.strip().upper()
    if code in _CHAINLESS_TOKENS:
        stripped = address.strip()
        if stripped[:2].lower() == "0x":
            return "ethereum"
        if stripped.startswith("T"):
            return "tron"
        return "bitcoin"  # Omni Layer tokens ride on Bitcoin addresses
    chain = CURRENCY_CHAINS.get(code)
    if chain is None:
        raise AddressError(
            f"cointrail has no address codec for currency {currency!r}; supported: "
            f"{', '.join(sorted(CURRENCY_CHAINS))}, USDT, USDC"
        )
    return chain


def canonical_address(currency: str, address: str) -> CanonicalAddress:
    """Validate `address` for the chain of `currency`; AddressError says what is wrong."""
    if not isinstance(address, str) or not address.strip():
        raise AddressError("empty address")
    chain, check = _VALIDATORS[chain_for(currency, address)]
    return CanonicalAddress(chain, MAINNET, check(address))


def supported_chains() -> tuple[str, ...]:
    return tuple(_VALIDATORS)


_UTXO_CHAINS = frozenset({"bitcoin", "litecoin", "bitcoin-cash", "dogecoin"})
_EVM_CHAINS = frozenset({
    "ethereum", "ethereum-classic", "bsc", "arbitrum", "polygon", "avalanche",
})


def resolve_chain(value: str, address: str) -> str:
    """A chain named by its cointrail name (``bitcoin``) or by a currency code (``BTC``)."""
    name = value.strip().lower()
    if name in _VALIDATORS:
        return name
    try:
        return chain_for(value, address)
    except AddressError:
        raise AddressError(
            f"{value!r} is neither a chain ({', '.join(sorted(_VALIDATORS))}) nor a currency "
            "code cointrail has a codec for"
        ) from None


def canonical_on_chain(chain: str, network: str, address: str) -> CanonicalAddress:
    """Validate `address` for a named chain and network (own tags name them directly).

    Mainnet uses the same validators as `canonical_address`; other networks are known for the
    UTXO chains (through their chain specs: testnet, regtest, ...) and the EVM chains (one
    address form on every network).
    """
    if not isinstance(address, str) or not address.strip():
        raise AddressError("empty address")
    if chain not in _VALIDATORS:
        raise AddressError(f"cointrail has no address codec for chain {chain!r}")
    net = network.strip().lower() or MAINNET
    if net == MAINNET:
        return CanonicalAddress(chain, MAINNET, _VALIDATORS[chain][1](address))
    if chain in _UTXO_CHAINS:
        return CanonicalAddress(chain, net, parse_address(address.strip(),
                                                          get_chain(chain, net)).text)
    if chain in _EVM_CHAINS:
        return CanonicalAddress(chain, net, parse_evm_address(address))
    raise AddressError(f"cointrail knows only the mainnet addresses of {chain}, not {net!r}")


def currency_of(chain: str) -> str:
    """The usual currency code of a chain (``bitcoin`` → ``BTC``)."""
    for code, name in CURRENCY_CHAINS.items():
        if name == chain:
            return code
    return chain.upper()
