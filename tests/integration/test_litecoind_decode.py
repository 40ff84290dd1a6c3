"""cointrail's decoder against a real Litecoin Core 0.21 node (regtest, MWEB active).

Every block of the chain built in conftest.py is fetched raw (``getblock <hash> 0``) and as
JSON (``getblock <hash> 2``); the decoded block must agree with the node on every field. The
node's own ``blk*.dat`` files must read back as the same chain.

Each test collects every disagreement before failing, and prints them grouped by field with the
block, the transaction and its hex, so one run shows everything that is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cointrail import decode_block, decode_tx
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.address import encode_address
from cointrail.chain.utxo.block import Block
from cointrail.chain.utxo.hashes import hash160
from cointrail.chain.utxo.script import classify_script, multisig_keys
from cointrail.chain.utxo.tx import Transaction, TxIn, TxOut, encode_tx
from cointrail.errors import DecodeError
from tests.support.litecoind import LitecoindNode, to_sat

pytestmark = pytest.mark.integration

SPEC = get_chain("litecoin", "regtest")
BATCH = 50
EXAMPLES_PER_FIELD = 3
HEX_SHOWN = 600  # hex characters of a failing transaction or block shown in the report


@dataclass
class CoreBlock:
    height: int
    hash: str
    raw: bytes
    json: dict[str, Any]


@dataclass
class Mismatches:
    """Disagreements with the node, grouped by field for the failure message."""

    by_field: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    count: int = 0

    def add(self, field_name: str, where: str, expected: Any, got: Any, hex_: str = "") -> None:
        self.count += 1
        self.by_field[field_name].append((f"{where}: node {expected!r}, cointrail {got!r}", hex_))

    def check(self, field_name: str, where: str, expected: Any, got: Any, hex_: str = "") -> None:
        if expected != got:
            self.add(field_name, where, expected, got, hex_)

    def report(self) -> str:
        lines = [f"{self.count} disagreement(s) with litecoind, by field:"]
        for name, items in sorted(self.by_field.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  {name}: {len(items)}")
            for i, (text, hex_) in enumerate(items[:EXAMPLES_PER_FIELD]):
                lines.append(f"    - {text}")
                if hex_ and i == 0:  # the hex of the first example only
                    cut = hex_ if len(hex_) <= HEX_SHOWN else f"{hex_[:HEX_SHOWN]}..."
                    lines.append(f"      hex ({len(hex_) // 2} bytes) {cut}")
        return "\n".join(lines)

    def assert_none(self) -> None:
        assert self.count == 0, self.report()


def _chunks(items: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def fetch_blocks(node: LitecoindNode, hashes: list[str]) -> list[CoreBlock]:
    blocks: list[CoreBlock] = []
    for chunk in _chunks(list(enumerate(hashes))):
        calls = [("getblock", [h, 0]) for _, h in chunk] + [("getblock", [h, 2]) for _, h in chunk]
        answers = node.batch(calls)
        raws, jsons = answers[: len(chunk)], answers[len(chunk) :]
        for (height, h), raw, js in zip(chunk, raws, jsons, strict=True):
            blocks.append(CoreBlock(height, h, bytes.fromhex(raw), js))
    return blocks


@pytest.fixture(scope="module")
def core_blocks(ltc_chain: Any) -> list[CoreBlock]:
    return fetch_blocks(ltc_chain.node, ltc_chain.facts.hashes)


def p2pkh_of(key: bytes) -> str | None:
    return encode_address(SPEC, "pubkeyhash", hash160(key))


def core_addresses(spk: dict[str, Any]) -> list[str]:
    """Litecoin 0.21 prints ``addresses`` (and ``reqSigs``); later versions ``address``."""
    if "addresses" in spk:
        return list(spk["addresses"])
    if "address" in spk:
        return [spk["address"]]
    return []


# -- comparisons ----------------------------------------------------------------------------

def compare_input(m: Mismatches, where: str, core: dict[str, Any], ours: TxIn, hex_: str) -> None:
    if "coinbase" in core:
        m.check("vin.coinbase", where, True, ours.is_coinbase, hex_)
        m.check("vin.coinbase hex", where, core["coinbase"], ours.script_sig.hex(), hex_)
    else:
        m.check("vin.txid", where, core.get("txid"), str(ours.prev_txid), hex_)
        m.check("vin.vout", where, core.get("vout"), ours.prev_vout, hex_)
        m.check("vin.scriptSig", where, core.get("scriptSig", {}).get("hex"),
                ours.script_sig.hex(), hex_)
    m.check("vin.txinwitness", where, core.get("txinwitness", []),
            [item.hex() for item in ours.witness], hex_)
    m.check("vin.sequence", where, core["sequence"], ours.sequence, hex_)


def compare_output(
    m: Mismatches, where: str, core: dict[str, Any], ours: TxOut, hex_: str
) -> None:
    spk = core.get("scriptPubKey", {})
    m.check("vout.n", where, core.get("n"), ours.n, hex_)
    m.check("vout.value (sat)", where, to_sat(core["value"]), ours.value, hex_)
    m.check("vout.scriptPubKey", where, spk.get("hex"), ours.script_pubkey.hex(), hex_)
    core_type = spk.get("type")
    m.check(f"vout.type ({core_type})", where, core_type, ours.script_type.value, hex_)
    addresses = core_addresses(spk)
    if core_type == "pubkey":
        # ours: the p2pkh of the key (attribution), whether or not the node prints it
        _, key = classify_script(ours.script_pubkey, SPEC.has_mweb)
        expected = addresses[0] if addresses else p2pkh_of(key)
        m.check("vout.address (pubkey)", where, expected, ours.address, hex_)
    elif core_type == "multisig":
        # ours: no address; the node lists the p2pkh of every key
        m.check("vout.address (multisig)", where, None, ours.address, hex_)
        parsed = multisig_keys(ours.script_pubkey)
        keys = parsed[1] if parsed else []
        m.check("vout.multisig keys", where, addresses, [p2pkh_of(k) for k in keys], hex_)
    else:
        expected = addresses[0] if len(addresses) == 1 else None
        if len(addresses) > 1:
            m.add(f"vout.addresses ({core_type})", where, addresses, "several", hex_)
        m.check(f"vout.address ({core_type})", where, expected, ours.address, hex_)


def compare_tx(
    m: Mismatches,
    where: str,
    core: dict[str, Any],
    ours: Transaction,
    *,
    check_weight: bool = True,
    kind: str | None = None,
) -> None:
    hex_ = core.get("hex", "")
    where = f"{where} tx {core['txid']}"
    if kind is None:
        kind = "hogex" if ours.is_hogex else "mweb" if ours.mweb_data else "tx"
    m.check(f"tx.txid ({kind})", where, core["txid"], str(ours.txid), hex_)
    m.check(f"tx.hash ({kind})", where, core["hash"], str(ours.wtxid), hex_)
    m.check("tx.version", where, core["version"], ours.version, hex_)
    m.check("tx.locktime", where, core["locktime"], ours.lock_time, hex_)
    m.check(f"tx.size ({kind})", where, core["size"], ours.size, hex_)
    if check_weight:
        m.check(f"tx.vsize ({kind})", where, core["vsize"], ours.vsize, hex_)
        m.check(f"tx.weight ({kind})", where, core["weight"], ours.weight, hex_)
    # MWEB inputs and outputs (standalone MWEB transactions) are not in the canonical lists
    vin = [i for i in core["vin"] if not i.get("ismweb")]
    vout = [o for o in core["vout"] if not o.get("ismweb")]
    m.check("tx.vin count", where, len(vin), len(ours.inputs), hex_)
    m.check("tx.vout count", where, len(vout), len(ours.outputs), hex_)
    for i, (c_in, o_in) in enumerate(zip(vin, ours.inputs, strict=False)):
        compare_input(m, f"{where} vin {i}", c_in, o_in, hex_)
    for c_out, o_out in zip(vout, ours.outputs, strict=False):
        compare_output(m, f"{where} vout {c_out.get('n')}", c_out, o_out, hex_)
    if hex_:
        m.check("tx hex re-encoded", where, hex_, encode_tx(ours).hex(), hex_)


def compare_block(m: Mismatches, cb: CoreBlock, ours: Block) -> None:
    js = cb.json
    where = f"block {cb.height} {cb.hash}"
    mweb = "mweb" if ours.mweb_data is not None else "plain"
    m.check("block.hash", where, js["hash"], str(ours.hash))
    m.check("block.merkleroot", where, js["merkleroot"], ours.merkle_root[::-1].hex())
    m.check("block.merkle_root_valid", where, True, ours.merkle_root_valid)
    m.check(f"block.size ({mweb})", where, js["size"], ours.size, cb.raw.hex())
    m.check(f"block.strippedsize ({mweb})", where, js["strippedsize"], ours.stripped_size,
            cb.raw.hex())
    m.check(f"block.weight ({mweb})", where, js["weight"], ours.weight, cb.raw.hex())
    m.check("block.version", where, js["version"], ours.header.version)
    m.check("block.time", where, js["time"], ours.header.time)
    m.check("block.bits", where, js["bits"], f"{ours.header.bits:08x}")
    m.check("block.nonce", where, js["nonce"], ours.header.nonce)
    m.check("block.previousblockhash", where, js.get("previousblockhash", "0" * 64),
            str(ours.header.prev_hash))
    m.check("block.nTx", where, js["nTx"], len(ours.transactions))
    m.check("block.mweb present", where, "mweb" in js, ours.mweb_data is not None)
    for core_tx, tx in zip(js["tx"], ours.transactions, strict=False):
        compare_tx(m, where, core_tx, tx)


def decode_or_record(m: Mismatches, cb: CoreBlock) -> Block | None:
    try:
        return decode_block(cb.raw, SPEC)
    except DecodeError as exc:
        m.add("block decode", f"block {cb.height} {cb.hash}", "decodes", str(exc), cb.raw.hex())
        return None


# -- tests ----------------------------------------------------------------------------------

def test_every_block_matches_getblock(core_blocks: list[CoreBlock]) -> None:
    m = Mismatches()
    for cb in core_blocks:
        ours = decode_or_record(m, cb)
        if ours is not None:
            compare_block(m, cb, ours)
    m.assert_none()


def test_getrawtransaction_roundtrips(ltc_chain: Any, core_blocks: list[CoreBlock]) -> None:
    """``getrawtransaction <txid>`` of every transaction: decode_tx gives the node's txid, and
    re-encoding gives the node's bytes back."""
    node = ltc_chain.node
    # the genesis coinbase is not in the node's transaction index
    txids = [tx["txid"] for cb in core_blocks[1:] for tx in cb.json["tx"]]
    m = Mismatches()
    for chunk in _chunks(txids):
        for txid, hex_ in zip(chunk, node.batch(("getrawtransaction", [t]) for t in chunk),
                              strict=True):
            try:
                tx = decode_tx(hex_, SPEC)
            except DecodeError as exc:
                m.add("decode_tx", f"tx {txid}", "decodes", str(exc), hex_)
                continue
            m.check("txid", f"tx {txid}", txid, str(tx.txid), hex_)
            m.check("re-encoded hex", f"tx {txid}", hex_, encode_tx(tx).hex(), hex_)
    m.assert_none()


def test_mempool_mweb_transactions(ltc_chain: Any) -> None:
    """MWEB transactions as the node showed them before they were mined (peg-ins carry their
    MWEB body; MWEB-to-MWEB and peg-out transactions are MWEB only): decode_tx must give the
    node's txid, weight (with Litecoin's peg-in and peg-out weight) and canonical fields."""
    txs = ltc_chain.facts.mempool_txs
    assert {t["kind"] for t in txs} >= {"peg-in", "peg-out", "mweb-to-mweb"}
    m = Mismatches()
    for t in txs:
        js = t["json"]
        where = f"mempool {t['kind']}"
        try:
            tx = decode_tx(js["hex"], SPEC)
        except DecodeError as exc:
            m.add(f"decode_tx ({t['kind']})", where, "decodes", str(exc), js["hex"])
            continue
        compare_tx(m, where, js, tx, kind=t["kind"])
    m.assert_none()


def test_chain_covers_every_kind(ltc_chain: Any, core_blocks: list[CoreBlock]) -> None:
    """The chain the other tests walk really holds what it is meant to."""
    facts = ltc_chain.facts
    types: set[str] = set()
    paid: set[str] = set()
    inputs = {"scriptSig only": 0, "witness only": 0, "scriptSig and witness": 0, "taproot": 0}
    hogex_blocks = 0
    for cb in core_blocks:
        txs = cb.json["tx"]
        if "mweb" in cb.json:
            hogex_blocks += 1
            assert cb.height >= 432, f"MWEB data before activation in block {cb.height}"
            last = txs[-1]["vout"][0]["scriptPubKey"]["type"]
            assert last == "witness_mweb_hogaddr", f"block {cb.height} does not end in a HogEx"
        for tx in txs:
            for out in tx["vout"]:
                spk = out.get("scriptPubKey", {})
                types.add(spk.get("type", "?"))
                paid.update(core_addresses(spk))
            for vin in tx["vin"]:
                if "coinbase" in vin:
                    continue
                sig, wit = vin["scriptSig"]["hex"], vin.get("txinwitness", [])
                if len(wit) == 2 and len(wit[1]) == 66 and wit[1][:2] in ("c0", "c1"):
                    inputs["taproot"] += 1
                elif sig and wit:
                    inputs["scriptSig and witness"] += 1
                elif wit:
                    inputs["witness only"] += 1
                elif sig:
                    inputs["scriptSig only"] += 1
    expected = facts.expected_script_types
    assert types >= expected, f"missing {sorted(expected - types)}"
    assert all(inputs.values()), inputs
    assert hogex_blocks >= 3 and facts.mweb_first_height == 432, (hogex_blocks, facts)
    canonical = {k: a for k, a in facts.addresses.items() if not k.startswith("mweb")}
    unpaid = {k: a for k, a in canonical.items() if a not in paid}
    assert not unpaid, f"no output pays the {sorted(unpaid)} address(es) made"
    assert facts.stale_hashes, "the chain has no stale block"


def test_blk_files_read_back_as_the_chain(ltc_chain: Any, ltc_blocks_dir: Path) -> None:
    """The node's ``blocks/blk*.dat`` (read after a restart, so complete and closed): every
    frame decodes; every block, active or stale, is there byte for byte as ``getblock <hash>
    0`` gives it; `best_chain` finds the node's active chain and the stale block; and
    `iter_best_chain_blocks` yields the active chain in order."""
    blkfile = pytest.importorskip("cointrail.chain.utxo.blkfile")
    node, facts = ltc_chain.node, ltc_chain.facts
    truncations: list[Any] = []
    frames = list(blkfile.iter_blk_frames(ltc_blocks_dir, {SPEC.magic}, truncations=truncations))
    assert not truncations, [str(t) for t in truncations]
    m = Mismatches()
    found: dict[str, bytes] = {}
    for frame in frames:
        try:
            block = decode_block(frame.raw, SPEC)
        except DecodeError as exc:
            m.add("blk frame decode", f"{frame.file}@{frame.offset}", "decodes", str(exc),
                  frame.raw.hex())
            continue
        found[str(block.hash)] = frame.raw
    wanted = facts.hashes + facts.stale_hashes
    node_raw: dict[str, str] = {}
    for chunk in _chunks(wanted):
        node_raw.update(zip(chunk, node.batch(("getblock", [h, 0]) for h in chunk), strict=True))
    for h in wanted:
        m.check("block bytes in blk files", f"block {h}", node_raw[h], found.get(h, b"").hex())
    m.check("blocks in blk files", "count", len(wanted), len(frames))

    index = blkfile.best_chain(frames, SPEC)
    m.check("best_chain.chain", "hashes", facts.hashes, [str(e.hash) for e in index.chain])
    m.check("best_chain.chain", "heights", list(range(len(facts.hashes))),
            [e.height for e in index.chain])
    m.check("best_chain.stale", "hashes", facts.stale_hashes, [str(e.hash) for e in index.stale])
    m.check("best_chain.orphans", "count", 0, len(index.orphans))
    m.check("best_chain.invalid", "count", 0, len(index.invalid))
    m.check("best_chain.duplicates", "count", 0, len(index.duplicates))

    walked = list(blkfile.iter_best_chain_blocks(ltc_blocks_dir, SPEC))
    m.check("iter_best_chain_blocks", "heights", list(range(len(facts.hashes))),
            [height for height, _ in walked])
    for height, raw in walked:
        h = facts.hashes[height] if height < len(facts.hashes) else "?"
        m.check("iter_best_chain_blocks bytes", f"block {height} {h}", node_raw.get(h),
                bytes(raw).hex())
    m.assert_none()
