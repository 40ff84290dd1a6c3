"""Neighbours for the graph explorer and search across the store, paged so that an address with
millions of transactions answers as quickly as one with three.

Pages are keyset pages: the cursor is the last internal ``tx_id`` (address neighbours) or the
next input/output position (transaction neighbours), so a page costs the same wherever it is.
Values reach SQL only as bound parameters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cointrail.chain.utxo.address import parse_address
from cointrail.chain.utxo.hashes import BlockHash, Txid
from cointrail.errors import CointrailError, InputError, NotFoundError
from cointrail.store.duck import ChainStore

#: Counterparties listed per transaction and side in an address's neighbours page.
PARTIES_PER_TX = 25
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else bytes(raw)[::-1].hex()


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InputError(f"cursor {cursor!r} is not one this API gave out; pass the "
                         "next_cursor of the previous page, or none for the first page")
    return int(cursor)


def _addr_id(store: ChainStore, text: str) -> tuple[int, str]:
    parsed = parse_address(text, store.spec)
    rows = store.query("SELECT addr_id FROM addresses WHERE text = ?", [parsed.text])
    if not rows:
        raise NotFoundError(f"{parsed.text} is a valid {store.spec.key} address but has never "
                            "appeared on the chain held by the store")
    return int(rows[0][0]), parsed.text


def _parties(store: ChainStore, tx_ids: list[int]) -> tuple[dict[int, list[dict[str, Any]]],
                                                             dict[int, list[dict[str, Any]]],
                                                             dict[int, tuple[int, int]]]:
    """Up to PARTIES_PER_TX inputs and outputs of each transaction, and their full counts.

    Two statements, one per side, each returning the side's full count with its first rows
    (every DuckDB statement costs about a millisecond of fixed work)."""
    sides = []
    for table in ("inputs", "outputs"):  # names from this module, never from input
        sides.append(store.query(
            "SELECT tx_id, n, value, text, total FROM (SELECT x.tx_id, x.n, x.value, a.text,"
            " row_number() OVER (PARTITION BY x.tx_id ORDER BY x.n) AS r,"
            " count(*) OVER (PARTITION BY x.tx_id) AS total"
            f" FROM {table} x LEFT JOIN addresses a ON a.addr_id = x.addr_id"
            " WHERE x.tx_id IN (SELECT unnest(?))) WHERE r <= ? ORDER BY tx_id, n",
            [tx_ids, PARTIES_PER_TX]))
    found: list[dict[int, list[dict[str, Any]]]] = []
    totals: list[dict[int, int]] = []
    for rows in sides:
        by_tx: dict[int, list[dict[str, Any]]] = {}
        total: dict[int, int] = {}
        for tx_id, n, value, text, count in rows:
            by_tx.setdefault(int(tx_id), []).append(
                {"n": n, "address": text, "value_sat": int(value)})
            total[int(tx_id)] = int(count)
        found.append(by_tx)
        totals.append(total)
    counts = {t: (totals[0].get(t, 0), totals[1].get(t, 0)) for t in tx_ids}
    return found[0], found[1], counts


def address_neighbours(store: ChainStore, address: str, *, limit: int,
                       cursor: str | None) -> dict[str, Any]:
    """The transactions of an address, oldest first, a page at a time: what it received and
    sent in each, and the other side's addresses and amounts."""
    after = parse_cursor(cursor)
    addr_id, text = _addr_id(store, address)
    rows = store.query(
        "SELECT tx_id, sum(received)::BIGINT, sum(sent)::BIGINT FROM ("
        " SELECT tx_id, value AS received, 0 AS sent FROM outputs WHERE addr_id = ?"
        " UNION ALL SELECT tx_id, 0, value FROM inputs WHERE addr_id = ?)"
        " WHERE tx_id > ? GROUP BY tx_id ORDER BY tx_id LIMIT ?",
        [addr_id, addr_id, -1 if after is None else after, limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    tx_ids = [int(r[0]) for r in rows]
    meta: dict[int, tuple[Any, ...]] = {}
    vin: dict[int, list[dict[str, Any]]] = {}
    vout: dict[int, list[dict[str, Any]]] = {}
    counts: dict[int, tuple[int, int]] = {}
    if tx_ids:
        for tx_id, txid, height, time, fee in store.query(
            "SELECT t.tx_id, t.txid, t.height, b.time, t.fee FROM txs t"
            " JOIN blocks b ON b.height = t.height WHERE t.tx_id IN (SELECT unnest(?))",
            [tx_ids],
        ):
            meta[int(tx_id)] = (txid, height, time, fee)
        vin, vout, counts = _parties(store, tx_ids)
    items = []
    for tx_id, received, sent in rows:
        txid, height, time, fee = meta[int(tx_id)]
        n_in, n_out = counts.get(int(tx_id), (0, 0))
        items.append({
            "txid": _hex(txid), "height": height, "time": time,
            "fee_sat": None if fee is None else int(fee),
            "received_sat": int(received), "sent_sat": int(sent),
            "inputs": vin.get(int(tx_id), []), "outputs": vout.get(int(tx_id), []),
            "input_count": n_in, "output_count": n_out,
        })
    return {"address": text, "chain": store.spec.chain, "network": store.spec.network,
            "limit": limit, "items": items,
            "next_cursor": str(tx_ids[-1]) if more and tx_ids else None}


def tx_neighbours(store: ChainStore, txid: str, *, limit: int,
                  cursor: str | None) -> dict[str, Any]:
    """A page of a transaction's inputs (with the transactions they spend) and outputs (with
    their spenders): positions ``cursor .. cursor + limit`` of each side."""
    start = parse_cursor(cursor) or 0
    key = bytes(Txid.from_rpc_hex(txid))
    found = store.query("SELECT tx_id, height FROM txs WHERE txid = ?", [key])
    if not found:
        raise NotFoundError(f"no transaction {txid} in the {store.spec.key} store")
    tx_id, height = found[-1]
    ins = store.query(
        "SELECT i.n, p.txid, i.prev_n, i.value, a.text FROM inputs i"
        " JOIN txs p ON p.tx_id = i.prev_tx_id LEFT JOIN addresses a ON a.addr_id = i.addr_id"
        " WHERE i.tx_id = ? AND i.n >= ? ORDER BY i.n LIMIT ?", [tx_id, start, limit + 1])
    outs = store.query(
        "SELECT o.n, o.value, a.text, s.txid FROM outputs o"
        " LEFT JOIN addresses a ON a.addr_id = o.addr_id"
        " LEFT JOIN inputs i ON i.prev_tx_id = o.tx_id AND i.prev_n = o.n"
        " LEFT JOIN txs s ON s.tx_id = i.tx_id"
        " WHERE o.tx_id = ? AND o.n >= ? ORDER BY o.n LIMIT ?", [tx_id, start, limit + 1])
    more = len(ins) > limit or len(outs) > limit
    return {
        "txid": txid.lower(), "height": height, "limit": limit,
        "inputs": [{"n": n, "prev_txid": _hex(p), "prev_vout": pn, "value_sat": int(v),
                    "address": a} for n, p, pn, v, a in ins[:limit]],
        "outputs": [{"n": n, "value_sat": int(v), "address": a, "spent_by": _hex(s)}
                    for n, v, a, s in outs[:limit]],
        "next_cursor": str(start + limit) if more else None,
    }


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(store: ChainStore | None, attribution_root: Path, query: str, *,
           limit: int = 20) -> list[dict[str, Any]]:
    """What `query` names: a block (height or hash), a transaction, an address, a cluster
    (``cluster:ID`` or a number), tags by label and actors by id or name."""
    q = query.strip()
    hits: list[dict[str, Any]] = []
    if store is not None:
        hits += _search_chain(store, q)
    hits += _search_attribution(attribution_root, q, limit)
    return hits[:limit]


def _search_chain(store: ChainStore, q: str) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    key = store.spec.key
    cluster_text = q[len("cluster:"):] if q.lower().startswith("cluster:") else None
    if q.isdigit() and len(q) < 12:
        rows = store.query("SELECT hash, tx_count FROM blocks WHERE height = ?", [int(q)])
        if rows:
            hits.append({"kind": "block", "id": q, "chain": key, "hash": _hex(rows[0][0]),
                         "label": f"block {q} ({rows[0][1]} transactions)"})
        cluster_text = q
    if cluster_text is not None and cluster_text.isdigit() and len(cluster_text) < 12:
        from cointrail.analysis.clustering.engine import cluster_view

        try:
            view = cluster_view(store)
        except CointrailError:
            view = None
        if view is not None:
            size = int(view.members(int(cluster_text)).size)
            if size:
                hits.append({"kind": "cluster", "id": cluster_text, "chain": key,
                             "label": f"cluster {cluster_text} ({size} addresses)"})
    if _HEX64.fullmatch(q):
        raw = bytes.fromhex(q)[::-1]
        rows = store.query("SELECT height FROM txs WHERE txid = ?", [raw])
        if rows:
            hits.append({"kind": "tx", "id": q.lower(), "chain": key,
                         "label": f"transaction in block {rows[-1][0]}"})
        rows = store.query("SELECT height FROM blocks WHERE hash = ?",
                           [bytes(BlockHash.from_rpc_hex(q))])
        if rows:
            hits.append({"kind": "block", "id": str(rows[0][0]), "chain": key,
                         "hash": q.lower(), "label": f"block {rows[0][0]}"})
    elif 20 <= len(q) <= 100:
        try:
            parsed = parse_address(q, store.spec)
        except CointrailError:
            parsed = None
        if parsed is not None:
            rows = store.query("SELECT first_height FROM addresses WHERE text = ?", [parsed.text])
            label = (f"address, first seen in block {rows[0][0]}" if rows
                     else "valid address, never seen on the chain held")
            hits.append({"kind": "address", "id": parsed.text, "chain": key, "label": label,
                         "on_chain": bool(rows)})
    return hits


def _search_attribution(root: Path, q: str, limit: int) -> list[dict[str, Any]]:
    from cointrail.attribution.db import ATTRIBUTION_DB

    if len(q) < 3 or not (root / ATTRIBUTION_DB).exists():
        return []
    from cointrail.attribution import AttributionStore

    hits: list[dict[str, Any]] = []
    with AttributionStore(root, read_only=True) as attr:
        for actor_id, label, categories, jurisdictions in attr.query(
            "SELECT DISTINCT actor_id, label, categories, jurisdictions FROM actors"
            " WHERE actor_id ILIKE ? ESCAPE '\\' OR label ILIKE ? ESCAPE '\\'"
            " ORDER BY actor_id LIMIT ?", [like_pattern(q), like_pattern(q), limit],
        ):
            hits.append({"kind": "actor", "id": actor_id, "label": label,
                         "categories": categories, "jurisdictions": jurisdictions})
        for address, chain, network, label, category, actor in attr.query(
            "SELECT DISTINCT address, chain, network, label, category, actor FROM tags"
            " WHERE label ILIKE ? ESCAPE '\\' ORDER BY label, address LIMIT ?",
            [like_pattern(q), limit],
        ):
            hits.append({"kind": "tag", "id": address, "chain": f"{chain}/{network}",
                         "label": label, "category": category, "actor": actor})
    return hits
