"""The MWEB transaction parser (chain/utxo/mweb.py) against a real Litecoin Core 0.21 node.

The chain built in conftest.py (`ltc_chain`) keeps every MWEB transaction as the node showed it
in the mempool (``getrawtransaction <txid> true``): peg-ins, an MWEB-to-MWEB transaction and
peg-outs to legacy, p2sh-segwit and bech32 addresses. Each MWEB body must parse to its exact
end and agree with the node on the txid, weight, vsize, kernels, MWEB inputs and outputs, and
on the peg-outs that ``decoderawtransaction`` shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from cointrail import decode_tx
from cointrail.chain.spec import get_chain
from cointrail.chain.utxo.mweb import (
    MwebTransaction,
    decode_mweb_tx,
    mweb_tx_id,
    mweb_weight,
    parse_mweb_tx,
)
from cointrail.chain.utxo.reader import ByteReader
from cointrail.chain.utxo.tx import Transaction
from cointrail.errors import DecodeError
from tests.support.litecoind import to_sat

pytestmark = pytest.mark.integration

SPEC = get_chain("litecoin", "regtest")


def _decoded(ltc_chain: Any) -> list[tuple[dict[str, Any], Transaction, MwebTransaction]]:
    """(snapshot, canonical decode, MWEB body) for every mempool MWEB transaction."""
    txs = ltc_chain.facts.mempool_txs
    assert {t["kind"] for t in txs} >= {"peg-in", "peg-out", "mweb-to-mweb"}, txs
    out = []
    for t in txs:
        tx = decode_tx(t["json"]["hex"], SPEC)
        assert tx.mweb_data, f"{t['kind']} {t['txid']} carries no MWEB body"
        out.append((t, tx, decode_mweb_tx(tx.mweb_data)))
    return out


def _mweb_only(tx: Transaction) -> bool:
    return not tx.inputs and not tx.outputs


def test_bodies_parse_exactly(ltc_chain: Any) -> None:
    """Read in place inside the whole transaction, the body ends right before the lock time."""
    for t, tx, mweb in _decoded(ltc_chain):
        raw = bytes.fromhex(t["json"]["hex"])
        start = len(raw) - 4 - len(tx.mweb_data or b"")
        r = ByteReader(raw, start)
        assert parse_mweb_tx(r) == mweb, t["kind"]
        assert r.pos == len(raw) - 4 and mweb.size == len(tx.mweb_data or b""), t["kind"]


def test_txid_of_mweb_only_transactions(ltc_chain: Any) -> None:
    """The node's txid (and wtxid) of an MWEB-only transaction is its first kernel's id."""
    checked = 0
    for t, tx, mweb in _decoded(ltc_chain):
        js = t["json"]
        if _mweb_only(tx):
            assert str(mweb_tx_id(tx.mweb_data or b"")) == js["txid"] == js["hash"], t["kind"]
            checked += 1
        else:  # peg-ins keep the canonical txid, which tx.py computes
            assert str(tx.txid) == js["txid"] != str(mweb.txid), t["kind"]
    assert checked >= 4  # MWEB-to-MWEB and three peg-outs


def test_weight_and_vsize(ltc_chain: Any) -> None:
    for t, tx, mweb in _decoded(ltc_chain):
        js = t["json"]
        canonical = tx.base_size * 3 + tx.size - tx.mweb_size  # BIP 141, without MWEB data
        weight = mweb_weight(mweb, canonical, _mweb_only(tx))
        assert (weight, (weight + 3) // 4) == (js["weight"], js["vsize"]), t["kind"]
        assert tx.size == js["size"], t["kind"]


def test_kernels_inputs_outputs(ltc_chain: Any) -> None:
    for t, _tx, mweb in _decoded(ltc_chain):
        js = t["json"]
        where = f"{t['kind']} {t['txid']}"
        kernels = js["vkern"]
        assert [k.kernel_id.hex() for k in mweb.kernels] == [k["kernel_id"] for k in kernels]
        assert [k.fee or 0 for k in mweb.kernels] == [to_sat(k["fee"]) for k in kernels], where
        assert [k.pegin or 0 for k in mweb.kernels] == [to_sat(k["pegin"]) for k in kernels]
        spent = [v["output_id"] for v in js["vin"] if v.get("ismweb")]
        made = [v["output_id"] for v in js["vout"] if v.get("ismweb")]
        assert [i.output_id.hex() for i in mweb.inputs] == spent, where
        assert [o.output_id.hex() for o in mweb.outputs] == made, where


def test_pegouts_match_decoderawtransaction(ltc_chain: Any) -> None:
    node = ltc_chain.node
    seen = 0
    for t, _tx, mweb in _decoded(ltc_chain):
        decoded = node.rpc("decoderawtransaction", t["json"]["hex"])
        assert decoded["txid"] == t["txid"]
        expected = [
            (to_sat(p["value"]), p["scriptPubKey"]["hex"])
            for k in decoded["vkern"] for p in k["pegout"]
        ]
        got = [(p.value, p.script_pubkey.hex()) for p in mweb.pegouts]
        assert got == expected, t["kind"]
        seen += len(got)
    assert seen >= 3  # one peg-out to each of legacy, p2sh-segwit and bech32


def test_pegins_commit_to_their_kernel(ltc_chain: Any) -> None:
    """A peg-in's canonical witness-v9 output carries the peg-in kernel's id as its program."""
    for t, tx, mweb in _decoded(ltc_chain):
        if t["kind"] != "peg-in":
            continue
        programs = {o.script_pubkey[2:] for o in tx.outputs if o.script_pubkey[:2] == b"\x59\x20"}
        pegin_kernels = {k.kernel_id for k in mweb.kernels if k.pegin is not None}
        assert programs == pegin_kernels and pegin_kernels, t["txid"]


def test_every_truncation_of_a_real_body_fails_cleanly(ltc_chain: Any) -> None:
    _t, tx, _mweb = next(d for d in _decoded(ltc_chain) if d[0]["kind"] == "peg-out")
    body = tx.mweb_data or b""
    for cut in range(len(body)):
        with pytest.raises(DecodeError) as info:
            decode_mweb_tx(body[:cut])
        assert 0 <= info.value.offset <= cut


def test_decode_tx_agrees_with_the_node(ltc_chain: Any) -> None:
    """decode_tx gives the node's txid, wtxid, size, weight and vsize for every mempool MWEB
    transaction (tx.py calls mweb.py for the MWEB body)."""
    for t, tx, _mweb in _decoded(ltc_chain):
        js = t["json"]
        got = (str(tx.txid), str(tx.wtxid), tx.size, tx.weight, tx.vsize)
        assert got == (js["txid"], js["hash"], js["size"], js["weight"], js["vsize"]), t["kind"]
