"""The trace figure: a layered left-to-right drawing of a trace as SVG.

Money flows left to right: tainted outputs (boxes) feed transactions (narrow boxes), which
create outputs or pay a fee. Layers come from the longest path through the flow graph, so a
backward trace reads the same way as a forward one (sources left, the traced output right).
Long traces wrap: every `BAND_LAYERS` layers start a new band below, and flows into the next
band bend back to its left edge. Within a layer, nodes are ordered by the barycentre of their
neighbours (two sweeps), ties by id, so the drawing is deterministic. Above `max_nodes` drawn
nodes, each layer keeps its most important nodes (seeds, attributed endpoints, then the largest
amounts) and folds the rest into one "N more" node whose flows are summed, so a trace of a few
hundred outputs stays readable.

Hand-written rather than Graphviz: the layout is small, must be byte-for-byte deterministic and
needs no system binary; every drawn output carries ``data-key="txid:vout"`` for tests and
tooling.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from cointrail.reporting.facts import FEE, TraceFinding, coin_text, short_id

OUTPUT, TX, MORE = "output", "tx", "more"
COLOURS = {
    "seed": "#1f4e79",
    "exchange": "#e07b00",
    "sanctioned": "#b00020",
    "mixer": "#6a1b9a",
    "coinjoin": "#6a1b9a",
    "unspent": "#5f6b73",
    FEE: "#9e9e9e",
    "coinbase": "#2e7d32",
}
DEFAULT_COLOUR = "#00695c"
OUT_W, OUT_H, TX_W, TX_H = 168, 40, 124, 24
COL_W, ROW_H, MARGIN, LEGEND_H = 230, 54, 20, 34
BAND_LAYERS, BAND_GAP = 8, 36  # layers per band before the drawing wraps; space between bands


@dataclass(slots=True)
class _Node:
    key: str
    kind: str
    amount: int = 0
    height: int = 0
    address: str | None = None
    category: str | None = None
    label: str | None = None
    seed: bool = False
    folded: list[str] = field(default_factory=list)


def draw_trace(trace: TraceFinding, *, max_nodes: int = 120) -> bytes:
    """The SVG figure of `trace` (UTF-8 bytes)."""
    nodes, edges = _graph(trace)
    layer = _layers(nodes, edges)
    if len(nodes) > max_nodes:
        nodes, edges, layer = _collapse(nodes, edges, layer, max_nodes)
    order = _order(nodes, edges, layer)
    return _svg(trace, nodes, edges, layer, order)


# --- graph ------------------------------------------------------------------------------------


def _graph(trace: TraceFinding) -> tuple[dict[str, _Node], dict[tuple[str, str], int]]:
    nodes: dict[str, _Node] = {}
    for n in trace.nodes:
        nodes[n.key] = _Node(n.key, OUTPUT, n.amount, n.height, n.address, seed=n.seed)
    for p in trace.endpoints:
        node = nodes.setdefault(p.key, _Node(p.key, OUTPUT, p.amount, p.height, p.address))
        node.category, node.label = p.category, p.label
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for f in trace.flows:
        tx = f"tx:{f.txid}"
        nodes.setdefault(tx, _Node(tx, TX, 0, f.height))
        nodes[tx].amount += f.amount
        nodes.setdefault(f.from_key, _Node(f.from_key, OUTPUT, f.amount, 0))
        nodes.setdefault(f.to_key, _Node(f.to_key, OUTPUT, f.amount, f.height,
                                         category=FEE if f.to_vout is None else None))
        edges[(f.from_key, tx)] += f.amount
        edges[(tx, f.to_key)] += f.amount
    into: dict[str, int] = defaultdict(int)
    for (_, t), amount in edges.items():
        into[t] += amount
    for p in trace.endpoints:  # a fee endpoint's amount is the sum of its flows
        if p.vout is None:
            nodes[p.key].amount = into.get(p.key) or p.amount
    return nodes, dict(edges)


def _layers(nodes: dict[str, _Node], edges: dict[tuple[str, str], int]) -> dict[str, int]:
    """Longest-path layer of each node (Kahn's order; a cycle, which a spend graph cannot
    have, is broken at its smallest key)."""
    succ: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(nodes, 0)
    for s, t in sorted(edges):
        succ[s].append(t)
        indeg[t] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = sorted(k for k, d in indeg.items() if d == 0)
    done: set[str] = set()
    while len(done) < len(nodes):
        if not ready:
            ready = [min(k for k in nodes if k not in done)]
        nxt: list[str] = []
        for k in ready:
            if k in done:
                continue
            done.add(k)
            for t in succ[k]:
                layer[t] = max(layer[t], layer[k] + 1)
                indeg[t] -= 1
                if indeg[t] == 0:
                    nxt.append(t)
        ready = sorted(nxt)
    return layer


def _priority(node: _Node) -> tuple[int, int, str]:
    attributed = node.category not in (None, "unspent", FEE)
    rank = 0 if node.seed else 1 if attributed else 2
    return (rank, -node.amount, node.key)


def _collapse(
    nodes: dict[str, _Node], edges: dict[tuple[str, str], int], layer: dict[str, int],
    max_nodes: int,
) -> tuple[dict[str, _Node], dict[tuple[str, str], int], dict[str, int]]:
    by_layer: dict[int, list[str]] = defaultdict(list)
    for k, lay in layer.items():
        by_layer[lay].append(k)
    quota = max(3, max_nodes // max(1, len(by_layer)) - 1)
    target: dict[str, str] = {}
    kept: dict[str, _Node] = {}
    new_layer: dict[str, int] = {}
    for lay, keys in sorted(by_layer.items()):
        ranked = sorted(keys, key=lambda k: _priority(nodes[k]))
        for k in ranked[:quota]:
            target[k] = k
            kept[k] = nodes[k]
            new_layer[k] = lay
        rest = ranked[quota:]
        if rest:
            more = f"more:{lay}"
            kept[more] = _Node(more, MORE, sum(nodes[k].amount for k in rest), 0,
                               folded=sorted(rest))
            new_layer[more] = lay
            for k in rest:
                target[k] = more
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for (s, t), amount in edges.items():
        if target[s] != target[t]:
            merged[(target[s], target[t])] += amount
    return kept, dict(merged), new_layer


def _order(nodes: dict[str, _Node], edges: dict[tuple[str, str], int],
           layer: dict[str, int]) -> dict[str, int]:
    """Position of each node within its layer (barycentre sweeps, ties by key)."""
    by_layer: dict[int, list[str]] = defaultdict(list)
    for k in sorted(nodes):
        by_layer[layer[k]].append(k)
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        preds[t].append(s)
        succs[s].append(t)
    pos = {k: i for keys in by_layer.values() for i, k in enumerate(keys)}
    layers = sorted(by_layer)

    def sweep(sequence: list[int], neighbours: dict[str, list[str]]) -> None:
        for lay in sequence:
            def bary(k: str) -> tuple[float, str]:
                near = neighbours.get(k) or []
                value = sum(pos[n] for n in near) / len(near) if near else float(pos[k])
                return (value, k)
            for i, k in enumerate(sorted(by_layer[lay], key=bary)):
                pos[k] = i
            by_layer[lay].sort(key=lambda k: pos[k])

    for _ in range(2):
        sweep(layers[1:], preds)
        sweep(list(reversed(layers[:-1])), succs)
    return pos


# --- drawing ----------------------------------------------------------------------------------


def _colour(node: _Node) -> str:
    if node.seed:
        return COLOURS["seed"]
    if node.category is None:
        return DEFAULT_COLOUR
    return COLOURS.get(node.category, DEFAULT_COLOUR)


def _text(x: float, y: float, text: str, size: int = 10, weight: str = "normal",
          anchor: str = "start", fill: str = "#111") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" '
            f'text-anchor="{anchor}" fill="{fill}">{escape(text)}</text>')


def _svg(trace: TraceFinding, nodes: dict[str, _Node], edges: dict[tuple[str, str], int],
         layer: dict[str, int], pos: dict[str, int]) -> bytes:
    decimals, ticker = trace.coin.decimals, trace.coin.ticker
    counts: dict[int, int] = defaultdict(int)
    for k in nodes:
        counts[layer[k]] += 1
    # long chains (peel chains) wrap into bands of BAND_LAYERS layers, read top to bottom
    layers = max(layer.values(), default=0) + 1
    band_rows: dict[int, int] = defaultdict(lambda: 1)
    for lay, count in counts.items():
        band_rows[lay // BAND_LAYERS] = max(band_rows[lay // BAND_LAYERS], count)
    bands = (layers + BAND_LAYERS - 1) // BAND_LAYERS
    band_top = [sum(band_rows[b] * ROW_H + BAND_GAP for b in range(i)) for i in range(bands)]
    width = MARGIN * 2 + (min(layers, BAND_LAYERS) - 1) * COL_W + OUT_W
    height = (MARGIN * 2 + LEGEND_H + band_top[-1] + band_rows[bands - 1] * ROW_H
              if bands else MARGIN * 2 + LEGEND_H + ROW_H)

    def centre(k: str) -> tuple[float, float]:
        band, col = divmod(layer[k], BAND_LAYERS)
        offset = (band_rows[band] - counts[layer[k]]) * ROW_H / 2
        x = MARGIN + col * COL_W + OUT_W / 2
        y = MARGIN + LEGEND_H + band_top[band] + offset + pos[k] * ROW_H + ROW_H / 2
        return x, y

    def half_width(k: str) -> float:
        return (TX_W if nodes[k].kind == TX else OUT_W) / 2

    biggest = max(edges.values(), default=1) or 1
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif"'
        f' data-finding={quoteattr(trace.id)}>',
        f'<title>{escape(f"{trace.direction} {trace.model} trace {trace.id} of {trace.start}")}'
        '</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    x = MARGIN
    for name in ("seed", "exchange", "sanctioned", "mixer", "unspent", FEE, "coinbase"):
        parts.append(f'<rect x="{x}" y="{MARGIN - 8}" width="12" height="12" '
                     f'fill="{COLOURS[name]}"/>')
        parts.append(_text(x + 16, MARGIN + 2, name, 10))
        x += 24 + 7 * len(name) + 12
    parts.append(_text(x, MARGIN + 2, f"amounts in {ticker}; flows left to right", 10))

    parts.append('<g class="edges" fill="none">')
    for (s, t), amount in sorted(edges.items()):
        (x1, y1), (x2, y2) = centre(s), centre(t)
        x1 += half_width(s)
        x2 -= half_width(t)
        mid = (x1 + x2) / 2
        # a flow into the next band runs back to the left: bend it out on both sides
        c1, c2 = (mid, mid) if x2 >= x1 else (x1 + COL_W / 3, x2 - COL_W / 3)
        stroke = 1 + 5 * math.sqrt(amount / biggest)
        parts.append(
            f'<path class="flow" data-from={quoteattr(s)} data-to={quoteattr(t)} '
            f'd="M{x1:.1f},{y1:.1f} C{c1:.1f},{y1:.1f} {c2:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
            f'stroke="#8aa4bf" stroke-width="{stroke:.2f}" stroke-opacity="0.8"/>')
        if nodes[t].kind != TX:  # label the tx -> output half, where the amount is decided
            parts.append(_text(mid, (y1 + y2) / 2 - 3, coin_text(amount, decimals), 8,
                               anchor="middle", fill="#33475b"))
    parts.append("</g>")

    parts.append('<g class="nodes">')
    for k in sorted(nodes, key=lambda k: (layer[k], pos[k])):
        node = nodes[k]
        cx, cy = centre(k)
        if node.kind == TX:
            txid = k.removeprefix("tx:")
            parts.append(
                f'<g class="node tx" data-txid={quoteattr(txid)}>'
                f'<title>{escape(f"transaction {txid} at height {node.height}")}</title>'
                f'<rect x="{cx - TX_W / 2:.1f}" y="{cy - TX_H / 2:.1f}" width="{TX_W}" '
                f'height="{TX_H}" rx="3" fill="#eef2f6" stroke="#33475b"/>'
                + _text(cx, cy + 4, f"tx {txid[:8]} @{node.height}", 8, anchor="middle")
                + "</g>")
            continue
        if node.kind == MORE:
            parts.append(
                f'<g class="node more" data-folded="{len(node.folded)}">'
                f'<title>{escape(f"{len(node.folded)} more nodes folded")}</title>'
                f'<rect x="{cx - OUT_W / 2:.1f}" y="{cy - OUT_H / 2:.1f}" width="{OUT_W}" '
                f'height="{OUT_H}" rx="6" fill="#ffffff" stroke="#5f6b73" '
                f'stroke-dasharray="4 3"/>'
                + _text(cx, cy - 4, f"+{len(node.folded)} more", 10, "bold", "middle")
                + _text(cx, cy + 11, f"{coin_text(node.amount, decimals)} {ticker}", 9,
                        anchor="middle")
                + "</g>")
            continue
        colour = _colour(node)
        txid, _, vout = k.rpartition(":")
        head = node.address or (f"fee of tx {txid[:8]}" if vout == FEE else short_id(k))
        what = node.label or node.category or ("seed" if node.seed else "")
        title = (f"{k} {node.address or ''} {coin_text(node.amount, decimals)} {ticker} "
                 f"height {node.height} {what}").strip()
        parts.append(
            f'<g class="node output" data-key={quoteattr(k)}'
            f'{" data-seed=" + quoteattr("true") if node.seed else ""}'
            f'{" data-category=" + quoteattr(node.category) if node.category else ""}>'
            f'<title>{escape(title)}</title>'
            f'<rect x="{cx - OUT_W / 2:.1f}" y="{cy - OUT_H / 2:.1f}" width="{OUT_W}" '
            f'height="{OUT_H}" rx="6" fill="#ffffff" stroke="{colour}" '
            f'stroke-width="{3 if node.seed else 2}"/>'
            f'<rect x="{cx - OUT_W / 2:.1f}" y="{cy - OUT_H / 2:.1f}" width="6" '
            f'height="{OUT_H}" fill="{colour}"/>'
            + _text(cx - OUT_W / 2 + 10, cy - 5, short_id(head, 10), 9, "bold")
            + _text(cx - OUT_W / 2 + 10, cy + 9,
                    f"{coin_text(node.amount, decimals)} {ticker}"
                    + (f" · {short_id(what, 9)}" if what else ""), 9)
            + "</g>")
    parts.append("</g></svg>")
    return ("\n".join(parts) + "\n").encode("utf-8")
