"""A report as files: an XLSX workbook (a sheet per table) and CSV (one file per table, zipped).

Only published values leave here (`ReportTable.published`: the "<5" rule). The workbook is
written with openpyxl's write-only mode, row by row, so its memory does not grow with the
report; counts, hours and percents are real number cells, dates real date cells, the header
row is frozen and has filters. CSV is what Excel opens on a Ukrainian Windows by double click:
UTF-8 with a byte-order mark and `;` between fields.

Texts (titles, headers, pooled-row labels) arrive through `translate`, an i18n lookup the
caller provides; this module knows no language.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import date
from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.report_tables import Cell, ReportTable

Translate = Callable[[str], str]

_NUMBER_FORMATS = {"hours": "0.0", "percent": "0.0", "date": "DD.MM.YYYY", "count": "0", "number": "0"}
_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")


def cell_text(value: Cell | str, translate: Translate) -> Cell | str:
    """A label that is an i18n id (pooled rows, statuses, measures) in words; else as is."""
    if isinstance(value, str) and value.startswith("reports."):
        return translate(value)
    return value


def xlsx_bytes(tables: Sequence[ReportTable], translate: Translate) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(buffer, tables, translate)
    return buffer.getvalue()


def write_xlsx(target: str | IO[bytes], tables: Sequence[ReportTable], translate: Translate) -> None:
    """The workbook to a path or a binary stream (the benchmark measures this path's memory)."""
    workbook = Workbook(write_only=True)
    used: set[str] = set()
    for table in tables:
        sheet = workbook.create_sheet(_sheet_name(translate(table.key), used))
        _write_sheet(sheet, table, translate)
    workbook.save(target)


def _write_sheet(sheet: WriteOnlyWorksheet, table: ReportTable, translate: Translate) -> None:
    # Set before the first row: write-only sheets write these into the sheet's header.
    sheet.freeze_panes = "A2"
    columns = table.columns
    widths = [max(12, len(translate(c.key)) + 2) for c in columns]
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=translate(column.key))
        cell.font = bold
        header.append(cell)
    rows = table.published()
    # Write-only sheets hand these to their inner worksheet at runtime; the stubs lack them.
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"  # type: ignore[attr-defined]
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width  # type: ignore[attr-defined]
    sheet.append(header)
    for row in rows:
        out = []
        for column, value in zip(columns, row, strict=True):
            value = cell_text(value, translate)
            # A date is a date cell (openpyxl writes date and datetime alike).
            cell = WriteOnlyCell(sheet, value=value)  # type: ignore[arg-type]
            if column.type in _NUMBER_FORMATS and isinstance(value, (int, float, date)):
                cell.number_format = _NUMBER_FORMATS[column.type]
            out.append(cell)
        sheet.append(out)


def _sheet_name(title: str, used: set[str]) -> str:
    # Excel: at most 31 characters, no []:*?/\, unique in the workbook.
    base = _SHEET_UNSAFE.sub(" ", title)[:28].strip() or "Sheet"
    name, n = base, 2
    while name.casefold() in used:
        name = f"{base} {n}"
        n += 1
    used.add(name.casefold())
    return name


def csv_text(table: ReportTable, translate: Translate) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([translate(c.key) for c in table.columns])
    for row in table.published():
        writer.writerow(["" if v is None else _csv_value(cell_text(v, translate)) for v in row])
    return buffer.getvalue()


def _csv_value(value: Cell | str) -> str:
    if isinstance(value, float):
        # A decimal comma: what Excel expects with a Ukrainian locale.
        return f"{value:.1f}".replace(".", ",")
    if isinstance(value, date):
        return f"{value:%d.%m.%Y}"
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet: keep names inert.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def csv_zip_bytes(tables: Sequence[ReportTable], translate: Translate) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, table in enumerate(tables, start=1):
            name = f"{n:02d}_{table.key.removeprefix('reports.t.')}.csv"
            archive.writestr(name, "\ufeff" + csv_text(table, translate))
    return buffer.getvalue()
