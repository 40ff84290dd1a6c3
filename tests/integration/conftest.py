"""Fixtures that run a real ``litecoind -regtest`` and build a chain worth decoding.

`ltc_chain` starts one node for the session and builds a chain that holds every output type the
wallet (and a few raw transactions) can make, inputs spending each kind (scriptSig only,
witness only, both, taproot script path, bare multisig, p2pk), an OP_RETURN, non-standard
outputs mined with ``generateblock``, and Litecoin's MWEB: activation, peg-ins, MWEB-to-MWEB
transactions, peg-outs, HogEx blocks, and a one-block reorganisation that leaves a stale block
in the block files.

Facts about the chain (block hashes, the stale block, MWEB transactions seen in the mempool,
the addresses made) are yielded with the node as a `ChainFacts`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.support.litecoind import LitecoindNode, RpcError, to_sat  # noqa: E402

WALLET = "w"  # canonical funds (its peg-ins leave it MWEB change)
MWEB_WALLET = "mw"  # receives peg-ins; makes MWEB-to-MWEB transactions and peg-outs
PEGIN_WALLET = "pegger"  # canonical coins only: its payments to MWEB addresses are peg-ins
FEE_SAT = 20_000
COIN = 100_000_000

#: Script types (Litecoin Core's names) the chain is built to contain.
EXPECTED_SCRIPT_TYPES = frozenset({
    "pubkey", "pubkeyhash", "scripthash", "multisig", "nulldata", "nonstandard",
    "witness_v0_keyhash", "witness_v0_scripthash", "witness_v1_taproot", "witness_unknown",
    "witness_mweb_pegin", "witness_mweb_hogaddr",
})


@dataclass
class ChainFacts:
    """What the chain builder did, for the tests to check against."""

    hashes: list[str] = field(default_factory=list)  # active chain, index = height
    stale_hashes: list[str] = field(default_factory=list)  # blocks reorganised away
    mweb_first_height: int | None = None  # first block that carries an MWEB extension block
    mempool_txs: list[dict[str, Any]] = field(default_factory=list)  # MWEB txs while unmined
    addresses: dict[str, str] = field(default_factory=dict)  # kind -> address made
    address_types_offered: list[str] = field(default_factory=list)  # getnewaddress types
    expected_script_types: frozenset[str] = EXPECTED_SCRIPT_TYPES
    build_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class LtcChain:
    node: LitecoindNode
    facts: ChainFacts


# -- raw transactions and taproot, by hand (independent of the code under test) -------------

def _compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")


def raw_tx(
    inputs: list[tuple[str, int]],
    outputs: list[tuple[int, bytes]],
    witnesses: list[list[bytes]] | None = None,
    version: int = 2,
    lock_time: int = 0,
) -> str:
    """Serialize a transaction: inputs as (txid RPC hex, vout) with empty scriptSigs."""
    parts = [version.to_bytes(4, "little")]
    if witnesses:
        parts.append(b"\x00\x01")
    parts.append(_compact(len(inputs)))
    for txid, vout in inputs:
        parts += [bytes.fromhex(txid)[::-1], vout.to_bytes(4, "little"), b"\x00", b"\xff" * 4]
    parts.append(_compact(len(outputs)))
    for value, script in outputs:
        parts += [value.to_bytes(8, "little"), _compact(len(script)), script]
    if witnesses:
        for stack in witnesses:
            parts.append(_compact(len(stack)))
            for item in stack:
                parts += [_compact(len(item)), item]
    parts.append(lock_time.to_bytes(4, "little"))
    return b"".join(parts).hex()


_P = 2**256 - 2**32 - 977
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
#: BIP 341's provably unspendable internal key ("H").
_NUMS_X = 0x50929B74C1A04954B78B4B6035E97A5E078A5A0F28EC96D547BFEE9ACE803AC0


def _point_add(
    a: tuple[int, int] | None, b: tuple[int, int] | None
) -> tuple[int, int] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % _P == 0:
        return None
    if a == b:
        lam = 3 * a[0] * a[0] * pow(2 * a[1], _P - 2, _P) % _P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], _P - 2, _P) % _P
    x = (lam * lam - a[0] - b[0]) % _P
    return x, (lam * (a[0] - x) - a[1]) % _P


def _point_mul(k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = point
    while k:
        if k & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        k >>= 1
    return result


def _lift_x(x: int) -> tuple[int, int]:
    y = pow((pow(x, 3, _P) + 7) % _P, (_P + 1) // 4, _P)
    return x, y if y % 2 == 0 else _P - y


def _tagged_hash(tag: str, msg: bytes) -> bytes:
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + msg).digest()


@dataclass(frozen=True)
class TaprootOpTrue:
    """A taproot output whose only leaf is ``OP_TRUE``: spendable by anyone, by script path,
    with no signature (witness: the script and the control block)."""

    script_pubkey: bytes
    witness: tuple[bytes, bytes]


def taproot_op_true() -> TaprootOpTrue:
    leaf_script = b"\x51"
    leaf = _tagged_hash("TapLeaf", b"\xc0" + _compact(len(leaf_script)) + leaf_script)
    internal = _lift_x(_NUMS_X)
    tweak = int.from_bytes(_tagged_hash("TapTweak", _NUMS_X.to_bytes(32, "big") + leaf), "big")
    q = _point_add(internal, _point_mul(tweak % _N, _G))
    assert q is not None
    control = bytes([0xC0 | (q[1] & 1)]) + _NUMS_X.to_bytes(32, "big")
    return TaprootOpTrue(b"\x51\x20" + q[0].to_bytes(32, "big"), (leaf_script, control))


def _uncompressed_g() -> bytes:
    return b"\x04" + _G[0].to_bytes(32, "big") + _G[1].to_bytes(32, "big")


# -- the chain builder ----------------------------------------------------------------------

class _Builder:
    def __init__(self, node: LitecoindNode, facts: ChainFacts) -> None:
        self.node = node
        self.facts = facts
        self.miner = ""  # a legacy address of WALLET, set by setup_wallets

    def w(self, method: str, *params: Any) -> Any:
        return self.node.rpc(method, *params, wallet=WALLET)

    def mw(self, method: str, *params: Any) -> Any:
        return self.node.rpc(method, *params, wallet=MWEB_WALLET)

    def mine(self, n: int = 1) -> list[str]:
        return self.node.mine(n, self.miner)

    def mine_to(self, height: int) -> None:
        missing = height - int(self.node.rpc("getblockcount"))
        if missing > 0:
            self.mine(missing)

    def spk(self, address: str) -> bytes:
        return bytes.fromhex(self.w("getaddressinfo", address)["scriptPubKey"])

    def send_raw(self, hex_tx: str) -> str:
        return str(self.node.rpc("sendrawtransaction", hex_tx))

    def fund_sign_send(self, outputs: list[tuple[int, bytes]]) -> str:
        """Pay raw scriptPubKeys from the wallet (fundrawtransaction + sign + send)."""
        funded = self.w("fundrawtransaction", raw_tx([], outputs), {}, False)
        signed = self.w("signrawtransactionwithwallet", funded["hex"])
        assert signed["complete"], signed
        return self.send_raw(signed["hex"])

    def find_vout(self, txid: str, script: bytes) -> tuple[int, int]:
        """(vout, value in sat) of the output of `txid` paying `script`."""
        tx = self.node.rpc("getrawtransaction", txid, True)
        for out in tx["vout"]:
            if out.get("scriptPubKey", {}).get("hex") == script.hex():
                return int(out["n"]), to_sat(out["value"])
        raise AssertionError(f"no output paying {script.hex()} in {txid}")

    def spend_with_wallet(self, prevouts: list[tuple[str, int, int]], dest: bytes) -> str:
        """Spend `prevouts` (txid, vout, value sat) to `dest`; the wallet signs."""
        total = sum(v for _, _, v in prevouts)
        unsigned = raw_tx([(t, n) for t, n, _ in prevouts], [(total - FEE_SAT, dest)])
        signed = self.w("signrawtransactionwithwallet", unsigned)
        assert signed["complete"], signed
        return self.send_raw(signed["hex"])

    def mempool_snapshot(self, txid: str) -> None:
        """Keep the node's view of an unmined MWEB transaction, labelled by what it does."""
        js = self.node.rpc("getrawtransaction", txid, True)
        kernels = js.get("vkern", [])
        if any(to_sat(k.get("pegin", 0)) for k in kernels):
            kind = "peg-in"
        elif any(k.get("pegout") for k in kernels):
            kind = "peg-out"
        elif not any(not x.get("ismweb") for x in js["vin"] + js["vout"]):
            kind = "mweb-to-mweb"
        else:
            kind = "other"
        self.facts.mempool_txs.append({"kind": kind, "txid": txid, "json": js})

    # -- stages ---------------------------------------------------------------------------

    def setup_wallets(self) -> None:
        self.node.rpc("createwallet", WALLET)
        self.node.rpc("createwallet", MWEB_WALLET)
        self.miner = self.w("getnewaddress", "miner", "legacy")
        self.mine(101)

    def canonical(self) -> None:
        f = self.facts
        offered = []
        for kind in ("legacy", "p2sh-segwit", "bech32", "bech32m"):
            try:
                f.addresses[kind] = self.w("getnewaddress", kind, kind)
                offered.append(kind)
            except RpcError as exc:
                f.notes.append(f"getnewaddress {kind!r}: {exc.node_message}")
        f.address_types_offered = [*offered, "mweb"]
        # multisig in p2sh, p2sh-p2wsh and p2wsh, from wallet keys
        keys = [self.w("getaddressinfo", self.w("getnewaddress", "", "legacy"))["pubkey"]
                for _ in range(3)]
        for kind in ("legacy", "p2sh-segwit", "bech32"):
            ms = self.w("addmultisigaddress", 2, keys, f"ms-{kind}", kind)
            f.addresses[f"multisig-{kind}"] = ms["address"]
        wallet_kinds = [k for k in f.addresses if k != "bech32m"]
        # raw scriptPubKeys: p2pk (compressed, own key; uncompressed, generator point), bare
        # 1-of-2 multisig of own keys, taproot with an OP_TRUE leaf, witness v2
        k1 = bytes.fromhex(keys[0])
        k2 = bytes.fromhex(keys[1])
        self.p2pk = bytes([33]) + k1 + b"\xac"
        self.p2pk_uncompressed = bytes([65]) + _uncompressed_g() + b"\xac"
        self.bare_ms = b"\x51" + bytes([33]) + k1 + bytes([33]) + k2 + b"\x52\xae"
        self.taproot = taproot_op_true()
        self.v2 = b"\x52\x14" + bytes(range(20))
        # one funding transaction: two outputs to each wallet kind (one to spend alone, one
        # for a mixed spend) and the raw scripts
        wallet_spks = {k: self.spk(f.addresses[k]) for k in wallet_kinds}
        outputs = [(COIN, s) for s in wallet_spks.values()]
        outputs += [(COIN // 2, s) for s in wallet_spks.values()]
        outputs += [
            (2 * COIN, self.p2pk), (COIN, self.p2pk_uncompressed), (2 * COIN, self.bare_ms),
            (2 * COIN, self.taproot.script_pubkey), (COIN, self.v2),
        ]
        self.raw_txid = self.fund_sign_send(outputs)
        self.mine()
        # spend each wallet kind alone, then one of each together (mixed scriptSig / witness)
        dest = self.spk(self.w("getnewaddress", "", "bech32"))
        by_output = {
            (o["scriptPubKey"]["hex"], to_sat(o["value"])): int(o["n"])
            for o in self.node.rpc("getrawtransaction", self.raw_txid, True)["vout"]
        }
        for spk in wallet_spks.values():
            vout = by_output[(spk.hex(), COIN)]
            self.spend_with_wallet([(self.raw_txid, vout, COIN)], dest)
        mixed = [(self.raw_txid, by_output[(s.hex(), COIN // 2)], COIN // 2)
                 for s in wallet_spks.values()]
        self.spend_with_wallet(mixed, dest)
        # p2pk and bare multisig spends: the wallet signs with its keys
        spends = []
        for script in (self.p2pk, self.bare_ms):
            vout, value = self.find_vout(self.raw_txid, script)
            spends.append((self.raw_txid, vout, value))
        for prevout in spends:
            self.spend_with_wallet([prevout], dest)
        # taproot script-path spend (no signature needed)
        vout, value = self.find_vout(self.raw_txid, self.taproot.script_pubkey)
        self.send_raw(raw_tx(
            [(self.raw_txid, vout)], [(value - FEE_SAT, dest)], [list(self.taproot.witness)]
        ))
        # OP_RETURN, funded after the spends so that it cannot take their coins
        op_return = self.w("createrawtransaction", [], {"data": b"cointrail".hex()})
        funded = self.w("fundrawtransaction", op_return, {}, False)
        self.send_raw(self.w("signrawtransactionwithwallet", funded["hex"])["hex"])
        self.mine()

    def nonstandard(self) -> None:
        """Consensus-valid, policy-nonstandard transactions, mined with generateblock."""
        dest = self.spk(self.w("getnewaddress", "", "bech32"))
        vout, value = self.find_vout(self.raw_txid, self.v2)
        spend_v2 = raw_tx([(self.raw_txid, vout)], [(value - FEE_SAT, b"\x51")])  # OP_TRUE out
        try:
            self.node.rpc("generateblock", self.miner, [spend_v2])
        except RpcError as exc:
            self.facts.notes.append(f"generateblock (witness v2 spend): {exc.node_message}")
            return
        txid = self.node.rpc("decoderawtransaction", spend_v2)["txid"]
        spend_true = raw_tx([(txid, 0)], [(value - 2 * FEE_SAT, dest)])
        self.node.rpc("generateblock", self.miner, [spend_true])

    def mweb(self) -> None:
        f = self.facts
        node = self.node
        self.mine_to(431)  # MWEB (BIP 9 on regtest) is active from height 432
        try:
            node.mine(1, self.miner)
        except RpcError:
            pass  # expected: the first MWEB block needs a peg-in in the mempool
        else:
            f.notes.append("mined an MWEB-active block without a peg-in")
        for i in range(2):
            f.addresses[f"mweb-{i}"] = self.mw("getnewaddress", "", "mweb")
        f.addresses["mweb"] = f.addresses["mweb-0"]
        for i, amount in enumerate((10, 3)):  # two peg-ins in the first MWEB block
            txid = self.w("sendtoaddress", f.addresses[f"mweb-{i}"], amount)
            self.mempool_snapshot(txid)
        self.mine()
        # MWEB to MWEB: the MWEB wallet holds only MWEB coins
        mweb_dest = self.mw("getnewaddress", "", "mweb")
        txid = self.mw("sendtoaddress", mweb_dest, 2)
        self.mempool_snapshot(txid)
        # a canonical payment in the same block as MWEB transactions; funds a wallet that
        # holds canonical coins only, for a peg-in later
        self.node.rpc("createwallet", PEGIN_WALLET)
        pegger = self.node.rpc("getnewaddress", "", "bech32", wallet=PEGIN_WALLET)
        self.w("sendtoaddress", pegger, 3)
        self.mine()
        # peg-outs to canonical addresses of each kind
        for kind in ("legacy", "p2sh-segwit", "bech32"):
            txid = self.mw("sendtoaddress", self.w("getnewaddress", "", kind), 1)
            self.mempool_snapshot(txid)
        # and a peg-in in the same block as peg-outs, from a wallet without MWEB coins (the
        # peg-ins above left MWEB change in WALLET, which it would spend MWEB to MWEB)
        txid = self.node.rpc("sendtoaddress", self.mw("getnewaddress", "", "mweb"), 1,
                             wallet=PEGIN_WALLET)
        self.mempool_snapshot(txid)
        self.mine()
        # a payment from WALLET in a later MWEB block (canonical or MWEB coins, as it picks)
        self.w("sendtoaddress", self.w("getnewaddress", "", "legacy"), 5)
        self.mine(2)  # the second block is empty: coinbase + HogEx only

    def reorg(self) -> None:
        """Replace the (empty) tip with two other blocks: the blk files keep a stale block."""
        tip = str(self.node.rpc("getbestblockhash"))
        self.node.rpc("invalidateblock", tip)
        self.node.mine(2, self.w("getnewaddress", "reorg", "bech32"))
        self.node.rpc("reconsiderblock", tip)  # stays stale: the new branch is longer
        self.facts.stale_hashes.append(tip)

    def build(self) -> ChainFacts:
        started = time.monotonic()
        self.setup_wallets()
        self.canonical()
        self.nonstandard()
        self.mweb()
        self.reorg()
        f = self.facts
        f.hashes = self.node.best_chain()
        assert not set(f.stale_hashes) & set(f.hashes), "reorg did not leave a stale block"
        for height in range(400, len(f.hashes)):
            if "mweb" in self.node.rpc("getblock", f.hashes[height], 1):
                f.mweb_first_height = height
                break
        f.build_seconds = time.monotonic() - started
        return f


@pytest.fixture(scope="session")
def ltc_chain() -> Iterator[LtcChain]:
    """One regtest node with the chain described in this module's docstring."""
    node = LitecoindNode()
    try:
        node.start()
        facts = _Builder(node, ChainFacts()).build()
        yield LtcChain(node, facts)
    except BaseException:
        print(f"litecoind log tail:\n{node.log_tail()}", file=sys.stderr)
        raise
    finally:
        node.cleanup()


@pytest.fixture(scope="session")
def ltc_blocks_dir(ltc_chain: LtcChain) -> Path:
    """The node's regtest ``blocks`` directory, after a restart so every file is complete and
    closed (a stop flushes the files; nothing is written again until a new block arrives)."""
    ltc_chain.node.restart()
    return ltc_chain.node.blocks_dir
