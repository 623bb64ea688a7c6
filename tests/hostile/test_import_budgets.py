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


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow([f"B-{i}", "0501234567", "subsidy", "received", "01.11.2026"])
    return path


def sheet_xlsx(path: Path, rows: str, dimension: str = "") -> Path:
    """A tiny workbook whose sheet data is `rows` (raw XML), with an optional dimension."""
    header = "<row>" + "".join(_inline(h) for h in HEADER) + "</row>"
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}"><si><t>A-1</t></si></sst>')
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{NS}">{dim}<sheetData>{header}{rows}</sheetData></worksheet>',
        )
    return path


def valid_rows(count: int, start: int = 0) -> str:
    return "".join(
        "<row>"
        + "".join(_inline(v) for v in (f"X-{i}", "+380501234567", "subsidy", "received", "01.11.2026"))
        + "</row>"
        for i in range(start, start + count)
    )


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 1 MB that unpacks to ~300 MB of XML (shared with the bot-path test)."""
    return hostile_xlsx(tmp_path_factory.mktemp("bomb") / "bomb.xlsx")


async def applications(sessionmaker) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Application)) or 0)


def gettext_for(language: str):
    i18n = create_i18n(language)
    return lambda key: i18n.gettext(key, locale=language)


def test_the_bomb_is_small_and_unpacks_to_hundreds_of_megabytes(bomb: Path) -> None:
    members = zipfile.ZipFile(bomb).infolist()
    assert bomb.stat().st_size < 2_000_000
    assert sum(m.file_size for m in members) > 250_000_000


@pytest.mark.parametrize(
    ("limits", "code", "detail"),
    [
        (ImportLimits(), "packed_too_tightly", "100"),
        (ImportLimits(max_ratio=10_000), "too_many_texts", "32"),
        (ImportLimits(max_ratio=10_000, max_shared_strings_bytes=10**9), "too_big", "160"),
    ],
)
async def test_a_zip_bomb_is_refused_from_its_directory_before_parsing(
    bomb, reference, sessionmaker, limits, code, detail
) -> None:
    importer = StatusImporter(sessionmaker, FrozenClock(NOW), limits=limits)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ImportRefused) as refused:
        await importer.import_file(bomb)
    # Nothing was unpacked: parsing even the shared strings would take many seconds.
    assert asyncio.get_running_loop().time() - started < 3.0
    assert (refused.value.code, refused.value.detail) == (code, detail)
    assert await applications(sessionmaker) == 0
    text = render_refusal(refused.value, gettext_for("uk"))
    assert "нічого не змінено" in text and detail in text
    assert detail in render_refusal(refused.value, gettext_for("en"))


def test_every_budget_refusal_is_worded_in_both_languages() -> None:
    for language in ("uk", "en"):
        gettext = gettext_for(language)
        for code in ("too_big", "packed_too_tightly", "too_many_texts", "too_many_rows", "time_budget"):
            text = render_refusal(ImportRefused(code, "77"), gettext)
            assert "77" in text and code not in text, (language, code, text)


async def test_a_declared_million_rows_is_refused_before_any_row(tmp_path, reference, sessionmaker) -> None:
    # openpyxl pads a sheet with empty rows up to its declared dimension: a few bytes would
    # become a million rows to walk through.
    path = sheet_xlsx(tmp_path / "dim.xlsx", valid_rows(3), dimension="A1:E1048576")
    with pytest.raises(ImportRefused) as refused:
        await StatusImporter(sessionmaker, FrozenClock(NOW)).import_file(path)
    assert (refused.value.code, refused.value.detail) == ("too_many_rows", "200000")
    assert await applications(sessionmaker) == 0


async def test_a_far_away_row_stops_at_the_row_cap(tmp_path, reference, sessionmaker) -> None:
    # No dimension; the second data row claims to be row 1,000,000: the empty rows openpyxl
    # makes up in between count against the cap, so reading stops there.
    far = valid_rows(1, start=99).replace("<row>", '<row r="1000000">')
    path = sheet_xlsx(tmp_path / "far.xlsx", valid_rows(1) + far)
    limits = ImportLimits(max_rows=5_000)
    started = asyncio.get_running_loop().time()
    report = await StatusImporter(sessionmaker, FrozenClock(NOW), limits=limits).import_file(path)
    assert asyncio.get_running_loop().time() - started < 5.0
    assert report.stopped is not None and report.stopped.code == "too_many_rows"
    assert report.added == 1  # the row before the cap was applied
    text = render_report(report, gettext_for("uk"))
    assert "понад 5000 рядків" in text


async def test_rows_past_the_cap_stop_an_xlsx_while_streaming(tmp_path, reference, sessionmaker) -> None:
    path = sheet_xlsx(tmp_path / "many.xlsx", valid_rows(120))
    importer = StatusImporter(sessionmaker, FrozenClock(NOW), batch_size=20, limits=ImportLimits(max_rows=50))
    report = await importer.import_file(path)
    assert report.stopped is not None and (report.stopped.code, report.stopped.detail) == (
        "too_many_rows",
        "50",
    )
    assert report.added <= 50 and await applications(sessionmaker) == report.added
    assert "more than 50 rows" in render_report(report, gettext_for("en"))


async def test_a_csv_with_too_many_lines_is_refused_before_parsing(tmp_path, reference, sessionmaker) -> None:
    path = write_csv(tmp_path / "many.csv", 120)
    importer = StatusImporter(sessionmaker, FrozenClock(NOW), limits=ImportLimits(max_rows=50))
    with pytest.raises(ImportRefused) as refused:
        await importer.import_file(path)
    assert (refused.value.code, refused.value.detail) == ("too_many_rows", "50")
    assert await applications(sessionmaker) == 0
    # And one too big for the size cap.
    with pytest.raises(ImportRefused) as refused:
        await StatusImporter(sessionmaker, limits=ImportLimits(max_unpacked_bytes=1_000)).import_file(path)
    assert refused.value.code == "too_big"
    # Within both caps it imports as before.
    report = await StatusImporter(
        sessionmaker, FrozenClock(NOW), limits=ImportLimits(max_rows=120)
    ).import_file(path)
    assert (report.added, report.stopped) == (120, None)


async def test_the_time_budget_stops_the_import_after_a_batch(tmp_path, reference, sessionmaker) -> None:
    path = write_csv(tmp_path / "slow.csv", 100)
    importer = StatusImporter(sessionmaker, FrozenClock(NOW), batch_size=10, limits=ImportLimits(seconds=0))
    report = await importer.import_file(path)
    assert report.stopped is not None and report.stopped.code == "time_budget"
    assert report.rows == 10 and report.added == 10  # the first batch, then the deadline
    assert await applications(sessionmaker) == 10
    assert "понад 0 хв" in render_report(report, gettext_for("uk"))


def test_the_reader_streams_wide_rows_to_the_column_cap(tmp_path) -> None:
    wide = "<row>" + "".join(
        _inline(v) for v in ("W-1", "+380501234567", "subsidy", "received", "01.11.2026")
    )
    wide += '<c r="XFD2" t="inlineStr"><is><t>far</t></is></c></row>'
    path = sheet_xlsx(tmp_path / "wide.xlsx", wide)
    with TableReader(path, ImportLimits(max_columns=8)) as reader:
        rows = list(reader.rows())
    assert [len(cells) for _, cells in rows] == [8]  # not 16,384 cells


async def test_a_worker_sending_a_bomb_gets_the_limit_named_on_a_connection_of_its_own(
    bomb, make_client, app, sessionmaker, reference
) -> None:
    await add_worker(sessionmaker, 7301, "pyr-cnap")
    opened = []
    dedicated = app.dispatcher["import_sessions"]

    def spy():
        opened.append(1)
        return dedicated()

    async def reader(bot, document, destination: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, bomb, destination)

    app.dispatcher["import_sessions"] = spy
    app.dispatcher["status_file_reader"] = reader
    worker = make_client(user_id=7301)
    replies = await worker.send_document("bomb.xlsx", "application/vnd.ms-excel")
    await app.dispatcher["jobs"].wait()
    replies += worker.read()
    final = replies[-1].text
    assert "нічого не змінено" in final and "понад 100:1" in final
    assert opened == [1]
    assert await applications(sessionmaker) == 0


async def test_the_dedicated_sessions_hold_one_connection(settings, db) -> None:
    from infra.db import dedicated_sessionmaker

    async with dedicated_sessionmaker(settings.database.url) as sessions:
        engine = sessions.kw["bind"]
        assert engine is not db and engine.url == db.url
        if engine.dialect.name == "postgresql":
            assert (engine.pool.size(), engine.pool._max_overflow) == (1, 0)
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Application)) == 0


async def test_jobs_of_one_lane_run_one_at_a_time() -> None:
    jobs = Jobs()
    running = 0
    most = 0

    async def job() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    assert not jobs.waiting("import")
    for n in range(3):
        jobs.start(job(), name=f"j{n}", lane="import")
    await asyncio.sleep(0)
    assert jobs.waiting("import")
    await jobs.wait()
    assert most == 1
    # A job cancelled while waiting its turn is closed, not left un-awaited.
    jobs.start(job(), name="first", lane="import")
    jobs.start(job(), name="second", lane="import")
    await jobs.close(timeout=0)
    assert jobs.running == 0


def test_the_dispatcher_gives_imports_their_own_sessions(settings) -> None:
    from infra.storage import SqlStorage

    dp = create_dispatcher(
        settings=settings, sessionmaker=None, i18n=create_i18n(), clock=None, storage=SqlStorage(None)
    )
    assert callable(dp["import_sessions"])


async def test_a_second_file_waits_for_the_first_import(
    make_client, app, sessionmaker, reference, tmp_path
) -> None:
    await add_worker(sessionmaker, 7302, "pyr-cnap")
    await add_worker(sessionmaker, 7303, "pyr-cnap")
    source = write_csv(tmp_path / "ok.csv", 3)
    release = asyncio.Event()
    copies = []

    async def reader(bot, document, destination: Path) -> None:
        copies.append(document.file_id)
        await release.wait()
        await asyncio.to_thread(shutil.copyfile, source, destination)

    app.dispatcher["status_file_reader"] = reader
    first, second = make_client(user_id=7302), make_client(user_id=7303)
    assert "Імпортую таблицю" in (await first.send_document("a.csv", "text/csv"))[0].text
    await asyncio.sleep(0)
    assert "ваша таблиця наступна" in (await second.send_document("b.csv", "text/csv"))[0].text
    await asyncio.sleep(0.05)
    assert len(copies) == 1  # the second has not started
    release.set()
    await app.dispatcher["jobs"].wait()
    assert len(copies) == 2
    assert "Імпорт завершено" in first.read()[-1].text and "Імпорт завершено" in second.read()[-1].text
