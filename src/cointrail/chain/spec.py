"""The ChainSpec registry: every chain and network cointrail knows, and their constants.

Invariant: code outside this module never compares chain names (no ``chain == "bitcoin"``);
it asks the spec for the property it needs (``spec.bech32_hrp``, ``spec.has_mweb`` ...).

Sources for the constants: each project's ``chainparams.cpp`` (Bitcoin Core, Litecoin Core,
Bitcoin Cash Node, Dogecoin Core).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cointrail.errors import UnknownChainError


class Family(StrEnum):
    """The data model a chain uses."""

    UTXO = "utxo"
    ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """Constants of one chain on one network.

    `magic` is the 4-byte message start that frames blocks in the node's ``blk*.dat`` files
    (``pchMessageStart``; Bitcoin Cash Node's ``diskMagic``).
    """

    chain: str
    network: str
    family: Family
    ticker: str
    magic: bytes
    p2pkh_prefix: int
    p2sh_prefix: int
    bech32_hrp: str | None  # segwit chains only (BIP 173)
    cashaddr_prefix: str | None = None  # Bitcoin Cash only
    mweb_hrp: str | None = None  # Litecoin MWEB addresses
    has_mweb: bool = False  # Litecoin: blocks may carry the MWEB extension block
    has_auxpow: bool = False  # Dogecoin: merged-mined headers carry an AuxPoW proof
    legacy_p2sh_prefixes: tuple[int, ...] = ()  # older p2sh version bytes still accepted on input
    pow_algorithm: str = "sha256d"  # "scrypt" for Litecoin and Dogecoin
    decimals: int = 8
    default_rpc_port: int = 8332
    chain_id: int | None = None  # account chains (EIP-155)

    @property
    def key(self) -> str:
        """``chain/network``, e.g. ``bitcoin/mainnet``."""
        return f"{self.chain}/{self.network}"

    @property
    def has_segwit(self) -> bool:
        return self.bech32_hrp is not None

    @property
    def is_account_model(self) -> bool:
        """Account-model chain (Ethereum): transfers between accounts, not spent outputs."""
        return self.family is Family.ACCOUNT


_B, _L, _C, _D = "bitcoin", "litecoin", "bitcoin-cash", "dogecoin"

_REGISTRY: dict[tuple[str, str], ChainSpec] = {
    (s.chain, s.network): s
    for s in (
        # Bitcoin Core src/kernel/chainparams.cpp
        ChainSpec(_B, "mainnet", Family.UTXO, "BTC", bytes.fromhex("f9beb4d9"), 0x00, 0x05, "bc"),
        ChainSpec(_B, "testnet", Family.UTXO, "BTC", bytes.fromhex("0b110907"), 0x6F, 0xC4, "tb",
                  default_rpc_port=18332),
        ChainSpec(_B, "regtest", Family.UTXO, "BTC", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, "bcrt",
                  default_rpc_port=18443),
        # Litecoin Core src/chainparams.cpp (0.21: MWEB)
        ChainSpec(_L, "mainnet", Family.UTXO, "LTC", bytes.fromhex("fbc0b6db"), 0x30, 0x32, "ltc",
                  mweb_hrp="ltcmweb", has_mweb=True, legacy_p2sh_prefixes=(0x05,),
                  pow_algorithm="scrypt",
                  default_rpc_port=9332),
        ChainSpec(_L, "testnet", Family.UTXO, "LTC", bytes.fromhex("fdd2c8f1"), 0x6F, 0x3A, "tltc",
                  mweb_hrp="tmweb", has_mweb=True, legacy_p2sh_prefixes=(0xC4,),
                  pow_algorithm="scrypt",
                  default_rpc_port=19332),
        ChainSpec(_L, "regtest", Family.UTXO, "LTC", bytes.fromhex("fabfb5da"), 0x6F, 0x3A, "rltc",
                  mweb_hrp="tmweb", has_mweb=True, legacy_p2sh_prefixes=(0xC4,),
                  pow_algorithm="scrypt",
                  default_rpc_port=19443),
        # Bitcoin Cash Node src/chainparams.cpp (diskMagic), cashaddr prefixes
        ChainSpec(_C, "mainnet", Family.UTXO, "BCH", bytes.fromhex("f9beb4d9"), 0x00, 0x05, None,
                  cashaddr_prefix="bitcoincash"),
        ChainSpec(_C, "testnet", Family.UTXO, "BCH", bytes.fromhex("0b110907"), 0x6F, 0xC4, None,
                  cashaddr_prefix="bchtest", default_rpc_port=18332),
        ChainSpec(_C, "regtest", Family.UTXO, "BCH", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, None,
                  cashaddr_prefix="bchreg", default_rpc_port=18443),
        # Dogecoin Core src/chainparams.cpp (AuxPoW from block 371337 on mainnet)
        ChainSpec(_D, "mainnet", Family.UTXO, "DOGE", bytes.fromhex("c0c0c0c0"), 0x1E, 0x16, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=22555),
        ChainSpec(_D, "testnet", Family.UTXO, "DOGE", bytes.fromhex("fcc1b7dc"), 0x71, 0xC4, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=44555),
        ChainSpec(_D, "regtest", Family.UTXO, "DOGE", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=18332),
        # Ethereum (account model); chain ids per EIP-155, regtest = anvil / hardhat dev chains
        ChainSpec("ethereum", "mainnet", Family.ACCOUNT, "ETH", b"", 0, 0, None, decimals=18,
                  default_rpc_port=8545, chain_id=1),
        ChainSpec("ethereum", "testnet", Family.ACCOUNT, "ETH", b"", 0, 0, None, decimals=18,
                  default_rpc_port=8545, chain_id=11155111),
        ChainSpec("ethereum", "regtest", Family.ACCOUNT, "ETH", b"", 0, 0, None, decimals=18,
                  default_rpc_port=8545, chain_id=31337),
    )
}

CHAIN_NAMES: tuple[str, ...] = tuple(dict.fromkeys(c for c, _ in _REGISTRY))
NETWORK_NAMES: tuple[str, ...] = ("mainnet", "testnet", "regtest")


def get_chain(chain: str | ChainSpec = "bitcoin", network: str = "mainnet") -> ChainSpec:
    """The spec for `chain` on `network`; a ChainSpec passes through unchanged.

    Raises UnknownChainError naming the known chains and networks.
    """
    if isinstance(chain, ChainSpec):
        return chain
    spec = _REGISTRY.get((chain.lower(), network.lower()))
    if spec is None:
        raise UnknownChainError(
            f"unknown chain {chain!r} on network {network!r}; "
            f"use one of chains {', '.join(CHAIN_NAMES)} and networks {', '.join(NETWORK_NAMES)}"
        )
    return spec


def all_chains() -> tuple[ChainSpec, ...]:
    """Every registered chain/network pair."""
    return tuple(_REGISTRY.values())


def chains_with_magic(magic: bytes) -> tuple[ChainSpec, ...]:
    """UTXO specs whose blk-file magic is `magic` (several share regtest's ``fabfb5da``)."""
    return tuple(s for s in _REGISTRY.values() if s.magic == magic)


def chains_with_chain_id(chain_id: int) -> tuple[ChainSpec, ...]:
    """Account-model specs whose EIP-155 chain id is `chain_id` (a node's ``eth_chainId``)."""
    return tuple(s for s in _REGISTRY.values() if s.chain_id == chain_id)
