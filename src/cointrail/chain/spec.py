"""The ChainSpec registry: every chain and network cointrail knows, and their constants.

Invariant: code outside this module never compares chain names (no ``chain == "bitcoin"``);
it asks the spec for the property it needs (``spec.bech32_hrp``, ``spec.has_mweb`` ...).

Sources for the constants: each project's ``chainparams.cpp`` (Bitcoin Core, Litecoin Core,
Bitcoin Cash Node, Dogecoin Core).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cointrail.errors import InputError, UnknownChainError


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
    #: hashes (RPC order) of the genesis blocks this network has had (testnet: 3 and 4)
    genesis_hashes: tuple[str, ...] = ()
    #: the P2P message start when it is not `magic` (Bitcoin Cash Node's ``netMagic``)
    net_magic: bytes = b""

    @property
    def key(self) -> str:
        """``chain/network``, e.g. ``bitcoin/mainnet``."""
        return f"{self.chain}/{self.network}"

    @property
    def p2p_magic(self) -> bytes:
        """The message start of the node's P2P protocol."""
        return self.net_magic or self.magic

    @property
    def has_segwit(self) -> bool:
        return self.bech32_hrp is not None

    @property
    def is_account_model(self) -> bool:
        """Account-model chain (Ethereum): transfers between accounts, not spent outputs."""
        return self.family is Family.ACCOUNT


_B, _L, _C, _D = "bitcoin", "litecoin", "bitcoin-cash", "dogecoin"
# genesis block hashes (RPC order) from each node's chainparams.cpp
_BTC_MAIN = ("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",)
_BTC_TEST = ("000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",  # testnet3
             "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043")  # testnet4
_BTC_REG = ("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",)
_BCH_TEST = (_BTC_TEST[0], "000000001dd410c49a788668ce26751718cc797474d3152a5fc073dd44fd9f7b")

_REGISTRY: dict[tuple[str, str], ChainSpec] = {
    (s.chain, s.network): s
    for s in (
        # Bitcoin Core src/kernel/chainparams.cpp
        ChainSpec(_B, "mainnet", Family.UTXO, "BTC", bytes.fromhex("f9beb4d9"), 0x00, 0x05, "bc",
                  genesis_hashes=_BTC_MAIN),
        ChainSpec(_B, "testnet", Family.UTXO, "BTC", bytes.fromhex("0b110907"), 0x6F, 0xC4, "tb",
                  default_rpc_port=18332, genesis_hashes=_BTC_TEST),
        ChainSpec(_B, "regtest", Family.UTXO, "BTC", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, "bcrt",
                  default_rpc_port=18443, genesis_hashes=_BTC_REG),
        # Litecoin Core src/chainparams.cpp (0.21: MWEB)
        ChainSpec(_L, "mainnet", Family.UTXO, "LTC", bytes.fromhex("fbc0b6db"), 0x30, 0x32, "ltc",
                  mweb_hrp="ltcmweb", has_mweb=True, legacy_p2sh_prefixes=(0x05,),
                  pow_algorithm="scrypt",
                  default_rpc_port=9332,
                  genesis_hashes=("12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2",)),
        ChainSpec(_L, "testnet", Family.UTXO, "LTC", bytes.fromhex("fdd2c8f1"), 0x6F, 0x3A, "tltc",
                  mweb_hrp="tmweb", has_mweb=True, legacy_p2sh_prefixes=(0xC4,),
                  pow_algorithm="scrypt",
                  default_rpc_port=19332,
                  genesis_hashes=("4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0",)),
        ChainSpec(_L, "regtest", Family.UTXO, "LTC", bytes.fromhex("fabfb5da"), 0x6F, 0x3A, "rltc",
                  mweb_hrp="tmweb", has_mweb=True, legacy_p2sh_prefixes=(0xC4,),
                  pow_algorithm="scrypt",
                  default_rpc_port=19443,
                  genesis_hashes=("530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9",)),
        # Bitcoin Cash Node src/chainparams.cpp (diskMagic, netMagic), cashaddr prefixes
        ChainSpec(_C, "mainnet", Family.UTXO, "BCH", bytes.fromhex("f9beb4d9"), 0x00, 0x05, None,
                  cashaddr_prefix="bitcoincash", genesis_hashes=_BTC_MAIN,
                  net_magic=bytes.fromhex("e3e1f3e8")),
        ChainSpec(_C, "testnet", Family.UTXO, "BCH", bytes.fromhex("0b110907"), 0x6F, 0xC4, None,
                  cashaddr_prefix="bchtest", default_rpc_port=18332, genesis_hashes=_BCH_TEST,
                  net_magic=bytes.fromhex("f4e5f3f4")),
        ChainSpec(_C, "regtest", Family.UTXO, "BCH", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, None,
                  cashaddr_prefix="bchreg", default_rpc_port=18443, genesis_hashes=_BTC_REG,
                  net_magic=bytes.fromhex("dab5bffa")),
        # Dogecoin Core src/chainparams.cpp (AuxPoW from block 371337 on mainnet)
        ChainSpec(_D, "mainnet", Family.UTXO, "DOGE", bytes.fromhex("c0c0c0c0"), 0x1E, 0x16, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=22555,
                  genesis_hashes=("1a91e3dace36e2be3bf030a65679fe821aa1d6ef92e7c9902eb318182c355691",)),
        ChainSpec(_D, "testnet", Family.UTXO, "DOGE", bytes.fromhex("fcc1b7dc"), 0x71, 0xC4, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=44555,
                  genesis_hashes=("bb0a78264637406b6360aad926284d544d7049f45189db5664f3c4d07350559e",)),
        ChainSpec(_D, "regtest", Family.UTXO, "DOGE", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, None,
                  has_auxpow=True, pow_algorithm="scrypt", default_rpc_port=18332,
                  genesis_hashes=("3d2160a3b5dc4a9d62e7e66a295f70313ac808440ef7400d6c0772171ce973a5",)),
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


def check_genesis(spec: ChainSpec, genesis: str, where: str) -> None:
    """Refuse a chain whose genesis block (`genesis`, RPC order) is another network's, not
    `spec`'s; a genesis no network claims (a private test chain) passes. `where` names the
    source (a node, files) in the message."""
    genesis = genesis.lower()
    if not spec.genesis_hashes or genesis in spec.genesis_hashes:
        return
    owners = [s for s in _REGISTRY.values() if genesis in s.genesis_hashes]
    if not owners:
        return
    names = " or ".join(s.key for s in owners)
    first = owners[0]
    raise InputError(
        f"{where}: its genesis block {genesis[:16]}… is {names}'s, not {spec.key}'s; pass "
        f"--chain {first.chain} --network {first.network}, or use {spec.key}'s node or files"
    )


def all_chains() -> tuple[ChainSpec, ...]:
    """Every registered chain/network pair."""
    return tuple(_REGISTRY.values())


def chains_with_magic(magic: bytes) -> tuple[ChainSpec, ...]:
    """UTXO specs whose blk-file magic is `magic` (several share regtest's ``fabfb5da``)."""
    return tuple(s for s in _REGISTRY.values() if s.magic == magic)


def chains_with_chain_id(chain_id: int) -> tuple[ChainSpec, ...]:
    """Account-model specs whose EIP-155 chain id is `chain_id` (a node's ``eth_chainId``)."""
    return tuple(s for s in _REGISTRY.values() if s.chain_id == chain_id)
