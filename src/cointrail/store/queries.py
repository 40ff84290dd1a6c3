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
from cointrail.chain.utxo.sigstyle import describe_flags
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
    if store.spec.is_account_model:
        out |= {"transfers": counts["transfers"], "assets": counts["assets"]}
    if tip:
        height, block_hash, block_time = tip[0]
        out |= {
            "tip_height": int(height),
            "tip_hash": _hex(block_hash),
            "tip_time": int(block_time),
            # None: no block has `confirmations` blocks above it yet (nothing final)
            "final_height": int(height) - confirmations if height >= confirmations else None,
            "tip_age_seconds": max(int(time.time()) - int(block_time), 0),
        }
    else:
        out |= {"tip_height": None, "tip_hash": None, "final_height": None}
    return out


def show_block(store: ChainStore, ident: str) -> dict[str, Any]:
    """A block by height or hash, with its txids (surrounding blanks ignored)."""
    ident = ident.strip()
    if store.spec.is_account_model:
        ident = ident.lower().removeprefix("0x")
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
    if store.spec.is_account_model:
        return _eth_block(row, [_hex(t[0]) for t in txids])
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


def _eth_block(row: dict[str, Any], txids: list[str | None]) -> dict[str, Any]:
    """An Ethereum block as stored (the UTXO-only header fields are left out)."""
    return {
        "height": row["height"],
        "hash": f"0x{_hex(row['hash'])}",
        "parentHash": f"0x{_hex(row['prev_hash'])}",
        "transactionsRoot": f"0x{_hex(row['merkle_root'])}",
        "time": row["time"],
        "size": row["size"],
        "nTx": row["tx_count"],
        "tx": [f"0x{t}" for t in txids],
    }


def show_tx(store: ChainStore, ident: str) -> dict[str, Any]:
    """A transaction with inputs resolved (value, address) and outputs with their spender.

    Each input's ``signature`` is its signature style (`sigstyle.describe_flags`: ECDSA, high
    R, sighash not ALL, Schnorr, uncompressed key), null when the store does not know it.

    A coinbase has one input, as in Core's ``getrawtransaction``: ``{"coinbase": <scriptSig
    hex>}`` (its sequence is not stored)."""
    ident = ident.strip()
    if store.spec.is_account_model:
        return show_account_tx(store, ident)
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
        "SELECT i.n, p.txid, i.prev_n, i.value, a.text, i.sequence, i.sig_flags FROM inputs i"
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
    vin: list[dict[str, Any]] = [
        {"n": n, "txid": _hex(p), "vout": pn, "value_sat": v, "address": a, "sequence": s,
         "signature": describe_flags(f)}
        for n, p, pn, v, a, s, f in inputs
    ]
    if coinbase:
        vin = [{"coinbase": bytes(script).hex()} for (script,) in store.query(
            "SELECT script_sig FROM coinbases WHERE tx_id = ?", [tx_id])]
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
        "vin": vin,
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
    if store.spec.is_account_model:
        return show_account_address(store, text)
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


# -- account model (Ethereum) ------------------------------------------------------------------

_KIND_NAMES = ("native", "internal", "token", "fee", "reward", "withdrawal")


def _display(amount: int, decimals: int | None) -> str | None:
    """An exact decimal string of a smallest-unit amount (no float involved)."""
    if decimals is None:
        return None
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return sign + text


def _account_sums(store: ChainStore, addr_id: int) -> dict[int, dict[str, int]]:
    """Per asset: received, sent and fees paid by `addr_id`, exact (Python integers, so sums
    beyond HUGEINT and ``amount_exact`` rows stay exact)."""
    rows = store.query(
        "SELECT asset_id, kind, to_addr_id = ? AS incoming, from_addr_id = ? AS outgoing,"
        " sum(amount)::VARCHAR, list(amount_exact) FILTER (WHERE amount_exact IS NOT NULL),"
        " count(*) FROM transfers WHERE to_addr_id = ? OR from_addr_id = ?"
        " GROUP BY ALL",
        [addr_id, addr_id, addr_id, addr_id],
    )
    out: dict[int, dict[str, int]] = {}
    for asset_id, kind, incoming, outgoing, total, exact, count in rows:
        amount = int(total) + sum(int(x) for x in exact or ())
        sums = out.setdefault(int(asset_id), {"received": 0, "sent": 0, "fees": 0,
                                              "transfers": 0})
        sums["transfers"] += int(count)
        if incoming and outgoing:
            continue  # paid to itself: no change
        if incoming:
            sums["received"] += amount
        elif kind == 3:
            sums["fees"] += amount
        else:
            sums["sent"] += amount
    return out


def show_account_address(store: ChainStore, text: str) -> dict[str, Any]:
    """An Ethereum address: native balance in wei, token balances per asset, activity.

    Balances are sums of the stored transfers (native, internal, fee, reward, withdrawal;
    tokens per contract). Genesis allocations are not transfers: an account funded in the
    genesis block shows its balance change since then (see docs/ethereum.md)."""
    from cointrail.chain.account.address import parse_eth_address

    address = parse_eth_address(text)
    rows = store.query("SELECT addr_id FROM addresses WHERE text = ?", [address])
    if not rows:
        raise NotFoundError(
            f"{address} is a valid {store.spec.key} address but has never appeared on the "
            "chain held by the store (up to its tip)"
        )
    addr_id = int(rows[0][0])
    sums = _account_sums(store, addr_id)
    assets = {int(a): (None if c is None else "0x" + bytes(c).hex(), s, d)
              for a, c, s, d in store.query("SELECT asset_id, contract, symbol, decimals"
                                            " FROM assets")}
    native = sums.pop(0, {"received": 0, "sent": 0, "fees": 0, "transfers": 0})
    balance = native["received"] - native["sent"] - native["fees"]
    tokens = []
    for asset_id, s in sorted(sums.items()):
        contract, symbol, decimals = assets.get(asset_id, (None, None, None))
        held = s["received"] - s["sent"]
        tokens.append({
            "asset_id": asset_id, "contract": contract, "symbol": symbol, "decimals": decimals,
            "balance": held, "balance_display": _display(held, decimals),
            "received": s["received"], "sent": s["sent"], "transfers": s["transfers"],
        })
    seen = store.query(
        "SELECT min(height), max(height), count(DISTINCT tx_id) FROM transfers"
        " WHERE to_addr_id = ? OR from_addr_id = ?", [addr_id, addr_id])[0]
    txs = store.query(
        "SELECT count(*) FROM account_txs WHERE from_addr_id = ? OR to_addr_id = ?"
        " OR created_addr_id = ?", [addr_id, addr_id, addr_id])[0][0]
    first, last = seen[0], seen[1]
    times = dict(store.query("SELECT height, time FROM blocks WHERE height IN (?, ?)",
                             [first, last])) if first is not None else {}
    decimals = store.spec.decimals
    return {
        "address": address,
        "addr_id": addr_id,
        "chain": store.spec.chain,
        "network": store.spec.network,
        "type": "account",
        "balance_wei": balance,
        "balance": _display(balance, decimals),
        "received_wei": native["received"],
        "sent_wei": native["sent"],
        "fees_paid_wei": native["fees"],
        "tokens": tokens,
        "tx_count": int(txs),
        "transfers_with_value": int(seen[2] or 0),
        "first_seen": {"height": first, "time": times.get(first)},
        "last_seen": {"height": last, "time": times.get(last)},
        "balance_basis": "sum of stored transfers since block 0; genesis allocations "
                         "are not counted",
    }


def show_account_tx(store: ChainStore, ident: str) -> dict[str, Any]:
    """An Ethereum transaction: sender, recipient, status, gas, and every transfer it made."""
    ident = ident.strip().lower().removeprefix("0x")
    txid = Txid.from_rpc_hex(ident)
    rows = store.query(
        "SELECT t.tx_id, t.height, a.tx_index, f.text, r.text, c.text, a.value::VARCHAR,"
        " a.nonce, a.gas, a.gas_used, a.gas_price::VARCHAR, a.status, a.tx_type, a.selector"
        " FROM txs t JOIN account_txs a USING (tx_id)"
        " JOIN addresses f ON f.addr_id = a.from_addr_id"
        " LEFT JOIN addresses r ON r.addr_id = a.to_addr_id"
        " LEFT JOIN addresses c ON c.addr_id = a.created_addr_id WHERE t.txid = ?",
        [bytes(txid)])
    if not rows:
        raise NotFoundError(f"no transaction {ident} in the {store.spec.key} store")
    (tx_id, height, index, sender, to, created, value, nonce, gas, used, price, status,
     kind, selector) = rows[-1]
    block = store.query("SELECT hash, time FROM blocks WHERE height = ?", [height])[0]
    moves = store.query(
        "SELECT t.kind, f.text, r.text, t.asset_id, s.contract, s.symbol,"
        " coalesce(t.amount_exact, t.amount::VARCHAR), t.log_index, t.trace_address"
        " FROM transfers t LEFT JOIN addresses f ON f.addr_id = t.from_addr_id"
        " LEFT JOIN addresses r ON r.addr_id = t.to_addr_id"
        " LEFT JOIN assets s ON s.asset_id = t.asset_id WHERE t.tx_id = ?"
        " ORDER BY t.transfer_id", [tx_id])
    return {
        "txid": "0x" + ident,
        "height": height,
        "blockhash": f"0x{_hex(block[0])}",
        "time": block[1],
        "index": index,
        "from": sender,
        "to": to,
        "contract_created": created,
        "value_wei": int(value),
        "status": {1: "success", 0: "failed", -1: "unknown"}[int(status)],
        "nonce": nonce,
        "gas": gas,
        "gas_used": used,
        "gas_price_wei": int(price),
        "fee_wei": int(used) * int(price),
        "type": kind,
        "selector": None if selector is None else "0x" + bytes(selector).hex(),
        "transfers": [
            {"kind": _KIND_NAMES[k], "from": f, "to": r, "asset_id": a,
             "contract": None if c is None else "0x" + bytes(c).hex(), "symbol": s,
             "amount": int(amt), "log_index": li, "trace_address": tr}
            for k, f, r, a, c, s, amt, li, tr in moves
        ],
    }
