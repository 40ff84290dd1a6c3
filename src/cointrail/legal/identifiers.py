"""Identifiers of a request in copyable form: the trace endpoints at one service (deposit
address with chain, txid, output, amount, block height and block time in UTC), written as CSV
and XLSX for the addressee (LEGAL.md §3.7 C: "copyable text or Excel, not screenshots").

Block times are read from the chain store by height (``blocks.time``, the header time); the
date range of a request is the range of those times.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cointrail.errors import InputError, NotFoundError

COLUMNS: tuple[str, ...] = (
    "chain", "network", "asset", "address", "txid", "vout", "amount_base_units", "amount",
    "height", "block_time_utc", "label", "via", "category",
)


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    """One deposit output at the addressee. `amount_base_units` is an integer (satoshi);
    `amount` the same in coin units as exact decimal text; `via` the tagged address when
    attribution came from the output address's cluster."""

    chain: str
    network: str
    asset: str
    address: str
    txid: str
    vout: int | None
    amount_base_units: int
    amount: str
    height: int
    block_time_utc: str | None
    label: str | None
    via: str | None
    category: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_amount(base_units: int, decimals: int) -> str:
    """Exact decimal text of an integer amount: 150000000, 8 -> ``1.50000000``."""
    sign = "-" if base_units < 0 else ""
    whole, frac = divmod(abs(base_units), 10 ** decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def iso_utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def block_times(store_root: Path, chain: str, network: str,
                heights: Iterable[int]) -> dict[int, int]:
    """Header time (Unix seconds) by height, from the chain store; NotFoundError without it."""
    from cointrail.store.duck import open_chain

    wanted = sorted(set(heights))
    if not wanted:
        return {}
    with open_chain(store_root, chain, network, read_only=True) as store:
        rows = store.query("SELECT height, time FROM blocks WHERE height IN "
                           "(SELECT unnest(?))", [wanted])
    return {int(h): int(t) for h, t in rows}


def write_csv(rows: Sequence[IdentifierRow]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(["" if getattr(r, c) is None else getattr(r, c) for c in COLUMNS])
    return buf.getvalue().encode("utf-8")


def read_csv(data: bytes) -> list[IdentifierRow]:
    """Rows of an identifiers CSV written by `write_csv` (the round trip is exact)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise InputError(f"identifiers CSV header is {reader.fieldnames}; expected "
                         f"{', '.join(COLUMNS)}")
    out = []
    for raw in reader:
        rec: dict[str, str | None] = {k: (v if v != "" else None) for k, v in raw.items()}
        vout = rec["vout"]
        out.append(IdentifierRow(
            str(rec["chain"]), str(rec["network"]), str(rec["asset"]), str(rec["address"]),
            str(rec["txid"]), None if vout is None else int(vout),
            int(str(rec["amount_base_units"])), str(rec["amount"]), int(str(rec["height"])),
            rec["block_time_utc"], rec["label"], rec["via"], str(rec["category"])))
    return out


def write_xlsx(rows: Sequence[IdentifierRow], title: str) -> bytes:
    """The identifiers as an Excel sheet: text cells (no float rounding of amounts or ids)."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    if ws is None:  # pragma: no cover - openpyxl always creates one sheet
        raise NotFoundError("openpyxl created no worksheet")
    ws.title = "identifiers"
    ws.append(list(COLUMNS))
    for r in rows:
        ws.append([None if getattr(r, c) is None else
                   (getattr(r, c) if c in ("vout", "height") else str(getattr(r, c)))
                   for c in COLUMNS])
    for col, width in zip("ABCDEFGHIJKLM", (9, 9, 6, 46, 66, 5, 18, 18, 8, 21, 20, 46, 10),
                          strict=True):
        ws.column_dimensions[col].width = width
    wb.properties.title = title
    wb.properties.creator = "cointrail"
    # a fixed timestamp keeps the bytes reproducible for the same rows
    fixed = datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def row_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(IdentifierRow))
