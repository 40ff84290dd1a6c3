"""A dependency-free horizontal bar chart in SVG, for the figures in docs/benchmarks.md."""

from __future__ import annotations

from html import escape
from pathlib import Path


def bar_chart(
    path: Path, title: str, unit: str, bars: list[tuple[str, float]], *, log: bool = False
) -> None:
    """Write `bars` (label, value) as a horizontal bar chart; `log` uses a log10 scale."""
    import math

    width, left, right, row, top = 760, 300, 110, 28, 44
    height = top + row * len(bars) + 16
    values = [max(v, 1e-12) for _, v in bars]
    scale = [math.log10(v) for v in values] if log else values
    low = min(0.0, *scale) if log else 0.0
    high = max(scale) or 1.0
    span = (high - low) or 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="13">',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
    ]
    for i, ((label, value), s) in enumerate(zip(bars, scale, strict=True)):
        y = top + i * row
        w = max(1.0, (s - low) / span * (width - left - right))
        shade = "#2b6cb0" if label.startswith("cointrail") else "#a0aec0"
        out += [
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>',
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{shade}"/>',
            f'<text x="{left + w + 6:.1f}" y="{y + 15}">{value:,.0f} {escape(unit)}</text>',
        ]
    if log:
        out.append(
            f'<text x="{width - 8}" y="{height - 4}" text-anchor="end" font-size="10">'
            "log scale</text>"
        )
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
