"""Identifiers as CSV and XLSX (openpyxl): every address with its chain, every transaction with
its height and traced amounts, so a recipient can copy them rather than retype them (LEGAL.md
§3.7 C). Each file starts with the use restrictions."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cointrail.exports.options import UseRestrictions
from cointrail.reporting.facts import addresses, plain_coin_text, transactions

COLUMNS = ("kind", "chain", "network", "identifier", "height", "amount_sat", "amount",
           "currency", "categories", "labels", "sources")


def identifier_rows(snapshot: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per address, then one per transaction (amount: tainted amount received by the
    address / moved to outputs by the transaction)."""
    rows: list[tuple[str, ...]] = []
    for a in addresses(snapshot):
        rows.append(("address", a.chain, a.network, a.address,
                     str(a.heights[0]) if a.heights else "", str(a.received),
                     plain_coin_text(a.received), a.ticker, ", ".join(a.categories),
                     ", ".join(a.labels), ", ".join(a.sources)))
    for t in transactions(snapshot):
        moved = sum(amount for _, vout, amount in t.outputs if vout is not None)
        rows.append(("transaction", t.chain, t.network, t.txid, str(t.height), str(moved),
                     plain_coin_text(moved, t.decimals), t.ticker, "", "", "trace"))
    return rows


def _preamble(r: UseRestrictions) -> list[tuple[str, str]]:
    return [(f"# {k}", str(v)) for k, v in r.to_dict().items()]


def build_csv(snapshot: Mapping[str, Any], restrictions: UseRestrictions) -> bytes:
    """CSV with ``#`` comment lines holding the use restrictions, then a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for key, value in _preamble(restrictions):
        writer.writerow([f"{key}: {value}"])
    writer.writerow(COLUMNS)
    writer.writerows(identifier_rows(snapshot))
    return out.getvalue().encode("utf-8")


def build_xlsx(snapshot: Mapping[str, Any], restrictions: UseRestrictions) -> bytes:
    """XLSX with sheet ``identifiers`` and sheet ``use restrictions`` (also in the document
    properties). Dates in the file come from the export time, so the bytes are stable."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    when = datetime.fromisoformat(restrictions.created_at.replace("Z", "+00:00"))
    when = when.replace(tzinfo=None, microsecond=0)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "identifiers"
    ws.append(list(COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in identifier_rows(snapshot):
        ws.append([int(v) if COLUMNS[i] in ("height", "amount_sat") and v else v
                   for i, v in enumerate(row)])
    ws.column_dimensions["D"].width = 70
    rs = wb.create_sheet("use restrictions")
    for key, value in restrictions.to_dict().items():
        rs.append([key, value])
    rs.column_dimensions["A"].width = 24
    rs.column_dimensions["B"].width = 100
    props = wb.properties
    props.creator = restrictions.originating_authority
    props.title = f"Identifiers, case {restrictions.case_reference}"
    props.subject = restrictions.tlp.label
    props.description = restrictions.text()
    props.keywords = restrictions.tlp.label
    props.created = when
    props.modified = when
    props.lastModifiedBy = "cointrail"
    buffer = io.BytesIO()
    wb.save(buffer)  # stamps props.modified with the clock: core.xml is written again below
    from openpyxl.xml.functions import tostring  # type: ignore[import-untyped]

    props.modified = when
    core = tostring(props.to_tree())
    return _fixed_zip_times(buffer.getvalue(), when, {"docProps/core.xml": core})


def _fixed_zip_times(data: bytes, when: datetime, replace: Mapping[str, bytes]) -> bytes:
    """The same ZIP (XLSX) with every member's timestamp set to `when` and the members in
    `replace` replaced."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(
                max(when.year, 1980), when.month, when.day, when.hour, when.minute,
                when.second))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, replace.get(info.filename) or src.read(info.filename))
    return out.getvalue()
