"""Status imports within budgets: hostile files (a zip bomb, a sheet that declares a million rows,
a shared-string table too big to hold, too many rows, an import that runs out of time) are
refused before or while streaming with the limit named, on SQLite and PostgreSQL; an import
talks to the database over a connection of its own; imports run one at a time."""

from __future__ import annotations

import asyncio
import csv
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.factory import create_dispatcher
from handlers.kit.import_report import render_refusal, render_report
from handlers.kit.jobs import Jobs
from infra.i18n import create_i18n
from models import Application
from services.clock import FrozenClock
from services.status_import import ImportLimits, ImportRefused, StatusImporter, TableReader
from tests.factories import add_worker

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HEADER = ["number", "phone", "kind", "status", "date"]
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{REL}">'
    '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}">'
    f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)


def _inline(value: str) -> str:
    return f'<c t="inlineStr"><is><t>{value}</t></is></c>'


def hostile_xlsx(
    path: Path, *, rows: int = 1_000_000, texts: int = 4_000_000, dimension: str | None = None
) -> Path:
    """A small workbook (about 1 MB with the defaults) that unpacks to hundreds of MB of XML: `rows`
    copies of one valid row and a shared-string table of `texts` entries. Built with zipfile
    directly, streamed, so building it costs no memory either."""
    header = "".join(_inline(h) for h in HEADER)
    row = (
        '<row><c t="s"><v>0</v></c>'
        + "".join(_inline(v) for v in ("+380501234567", "subsidy", "received", "01.11.2026"))
        + "</row>"
    ).encode()
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">'.encode())
            for start in range(0, texts, 10_000):
                part.write(b"<si><t>A-1</t></si>" * min(10_000, texts - start))
            part.write(b"</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">{dim}'
                f"<sheetData><row>{header}</row>".encode()
            )
            for start in range(0, rows, 10_000):
                part.write(row * min(10_000, rows - start))
            part.write(b"</sheetData></worksheet>")
    return path
