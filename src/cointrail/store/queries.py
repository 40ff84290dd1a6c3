"""Read-side queries shared by the CLI and the API: status and ``show block|tx|address``.

Each function returns plain JSON-ready dicts: hashes in RPC hex, amounts as integers in the
smallest unit (``*_sat``). All values reach SQL as bound parameters.
"""

from __future__ import annotations

import time
from typing import Any

from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.hashes import BlockHash, Txid
from cointrail.chain.utxo.script import ScriptType
from cointrail.errors import NotFoundError
from cointrail.store.duck import ChainStore


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else bytes(raw)[::-1].hex()


def status(store: ChainStore, confirmations: int) -> dict[str, Any]:
    """Tip, size and finality of one chain's store."""
    tip = store.query("SELECT height, hash, time FROM blocks ORDER BY height DESC LIMIT 1")
    counts = store.table_counts()
    out: dict[str, Any] = {
        "chain": store.spec.chain,
        "network": store.spec.network,
        "path": str(store.path),
        "blocks": counts["blocks"],
        "transactions": counts["txs"],
        "outputs": counts["outputs"],
        "inputs": counts["inputs"],
        "addresses": counts["addresses"],
        "confirmations": confirmations,
    }
    if tip:
        height, block_hash, block_time = tip[0]
        out |= {
            "tip_height": int(height),
            "tip_hash": _hex(block_hash),
            "tip_time": int(block_time),
            "final_height": max(int(height) - confirmations, -1),
            "tip_age_seconds": max(int(time.time()) - int(block_time), 0),
        }
    else:
        out |= {"tip_height": None, "tip_hash": None, "final_height": None}
    return out


def show_block(store: ChainStore, ident: str) -> dict[str, Any]:
    """A block by height or hash, with its txids."""
    if ident.isdigit():
        rows = store.query("SELECT * FROM blocks WHERE height = ?", [int(ident)])
    else:
        rows = store.query(
            "SELECT * FROM blocks WHERE hash = ?", [bytes(BlockHash.from_rpc_hex(ident))]
        )
    if not rows:
        raise NotFoundError(f"no block {ident} in the {store.spec.key} store")
    cols = [d[0] for d in store.con.description or ()]
    row = dict(zip(cols, rows[0], strict=True))
    txids = store.query(
        "SELECT txid FROM txs WHERE tx_id >= ? AND tx_id < ? ORDER BY tx_id",
        [row["first_tx_id"], row["first_tx_id"] + row["tx_count"]],
    )
    return {
        "height": row["height"],
        "hash": _hex(row["hash"]),
        "previousblockhash": _hex(row["prev_hash"]),
        "merkleroot": _hex(row["merkle_root"]),
        "version": row["version"],
        "time": row["time"],
        "bits": f"{row['bits']:08x}",
        "nonce": row["nonce"],
        "size": row["size"],
        "strippedsize": row["stripped_size"],
        "weight": row["weight"],
        "nTx": row["tx_count"],
        "tx": [_hex(t[0]) for t in txids],
    }


def show_tx(store: ChainStore, ident: str) -> dict[str, Any]:
    """A transaction with inputs resolved (value, address) and outputs with their spender."""
    txid = Txid.from_rpc_hex(ident)
    rows = store.query(
        "SELECT tx_id, height, version, lock_time, size, vsize, is_coinbase, input_value,"
        " output_value, fee FROM txs WHERE txid = ?",
        [bytes(txid)],
    )
    if not rows:
        raise NotFoundError(f"no transaction {ident} in the {store.spec.key} store")
    tx_id, height, version, lock_time, size, vsize, coinbase, in_value, out_value, fee = rows[-1]
    block = store.query("SELECT hash, time FROM blocks WHERE height = ?", [height])[0]
    inputs = store.query(
        "SELECT i.n, p.txid, i.prev_n, i.value, a.text, i.sequence FROM inputs i"
        " JOIN txs p ON p.tx_id = i.prev_tx_id LEFT JOIN addresses a ON a.addr_id = i.addr_id"
        " WHERE i.tx_id = ? ORDER BY i.n",
        [tx_id],
    )
    outputs = store.query(
        "SELECT o.n, o.value, o.script_type, a.text, s.txid, i.n FROM outputs o"
        " LEFT JOIN addresses a ON a.addr_id = o.addr_id"
        " LEFT JOIN inputs i ON i.prev_tx_id = o.tx_id AND i.prev_n = o.n"
        " LEFT JOIN txs s ON s.tx_id = i.tx_id"
        " WHERE o.tx_id = ? ORDER BY o.n",
        [tx_id],
    )
    return {
        "txid": ident.lower(),
        "height": height,
        "blockhash": _hex(block[0]),
        "time": block[1],
        "version": version,
        "locktime": lock_time,
        "size": size,
        "vsize": vsize,
        "coinbase": bool(coinbase),
        "input_value_sat": in_value,
        "output_value_sat": out_value,
        "fee_sat": fee,
        "vin": [
            {"n": n, "txid": _hex(p), "vout": pn, "value_sat": v, "address": a, "sequence": s}
            for n, p, pn, v, a, s in inputs
        ],
        "vout": [
            {
                "n": n,
                "value_sat": v,
                "type": ScriptType.from_code(t).value,
                "address": a,
                "spent_by": None if st is None else {"txid": _hex(st), "vin": sn},
            }
            for n, v, t, a, st, sn in outputs
        ],
    }


def show_address(store: ChainStore, text: str) -> dict[str, Any]:
    """Balance, received, sent, transaction count and first/last seen of an address."""
    parsed = parse_address(text, store.spec)
    rows = store.query(
        "SELECT addr_id, type, first_height FROM addresses WHERE text = ?", [parsed.text]
    )
    if not rows:
        raise NotFoundError(
            f"{parsed.text} is a valid {store.spec.key} address but has never appeared on the "
            f"chain held by the store (up to its tip)"
        )
    addr_id, kind, _ = rows[0]
    received = store.query(
        "SELECT coalesce(sum(o.value), 0)::BIGINT, count(*), min(t.height), max(t.height)"
        " FROM outputs o JOIN txs t USING (tx_id) WHERE o.addr_id = ?",
        [addr_id],
    )[0]
    sent = store.query(
        "SELECT coalesce(sum(i.value), 0)::BIGINT, count(*), min(t.height), max(t.height)"
        " FROM inputs i JOIN txs t USING (tx_id) WHERE i.addr_id = ?",
        [addr_id],
    )[0]
    tx_count = store.query(
        "SELECT count(*) FROM (SELECT tx_id FROM outputs WHERE addr_id = ?"
        " UNION SELECT tx_id FROM inputs WHERE addr_id = ?)",
        [addr_id, addr_id],
    )[0][0]
    heights = [h for h in (received[2], received[3], sent[2], sent[3]) if h is not None]
    first, last = min(heights), max(heights)
    times = dict(
        store.query("SELECT height, time FROM blocks WHERE height IN (?, ?)", [first, last])
    )
    return {
        "address": parsed.text,
        "addr_id": int(addr_id),
        "chain": store.spec.chain,
        "network": store.spec.network,
        "type": ScriptType.from_code(kind).value,
        "balance_sat": int(received[0]) - int(sent[0]),
        "received_sat": int(received[0]),
        "sent_sat": int(sent[0]),
        "outputs_received": int(received[1]),
        "outputs_spent": int(sent[1]),
        "tx_count": int(tx_count),
        "first_seen": {"height": first, "time": times.get(first)},
        "last_seen": {"height": last, "time": times.get(last)},
    }
