"""Status-table imports: CSV (UTF-8, BOM, Windows-1251, `;`/`,`), XLSX, bad rows, whole-file
refusals, idempotency (no second push), big files. Service level, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from models import (
    Application,
    ApplicationStatusChange,
    ApplicationSubscription,
    AuditEntry,
    Hromada,
    OutboxMessage,
)
from services.applications import PUSH_KIND
from services.clock import FrozenClock
from services.status_import import ImportProgress, ImportRefused, StatusImporter
from tests.factories import add_resident

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HEADER_UK = ["Номер заяви", "Телефон", "Вид допомоги", "Статус", "Дата зміни статусу", "Громада"]
HEADER_EN = ["number", "phone", "kind", "status", "date"]


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ";") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Заяви")
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


@pytest.fixture
def importer(sessionmaker) -> StatusImporter:
    return StatusImporter(sessionmaker, FrozenClock(NOW))


async def count(sessionmaker, model, *where) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def app_by_number(sessionmaker, number: str) -> Application:
    async with sessionmaker() as session:
        app = await session.scalar(select(Application).where(Application.number == number))
        assert app is not None
        return app


async def test_csv_utf8_with_ukrainian_headers_and_aliases(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "statuses.csv",
        [
            HEADER_UK,
            ["ВПО-2026-001", "+380 50 123 45 67", "Довідка ВПО", "Прийнято", "18.11.2026", "Пирятинська"],
            ["ВПО-2026-002", "050-765-43-21", "Допомога на проживання", "НА РОЗГЛЯДІ", "2026-11-19", ""],
            ["S-3", "380671112233", "subsidy", "4", "2026-11-20T09:30:00", "PYR"],
        ],
    )
    report = await importer.import_file(path)
    assert (report.added, report.updated, report.unchanged, report.rejected) == (3, 0, 0, 0)
    first = await app_by_number(sessionmaker, "ВПО-2026-001")
    assert (first.phone, first.kind, first.status_code) == ("+380501234567", "idp_registration", "received")
    assert first.hromada_id is not None
    second = await app_by_number(sessionmaker, "ВПО-2026-002")
    assert (second.phone, second.kind, second.status_code) == (
        "+380507654321",
        "living_allowance",
        "in_review",
    )
    assert second.status_changed_at.astimezone(UTC) == datetime(
        2026, 11, 18, 22, 0, tzinfo=UTC
    )  # Kyiv midnight
    third = await app_by_number(sessionmaker, "S-3")
    assert third.status_code == "approved"
    assert await count(sessionmaker, ApplicationStatusChange, ApplicationStatusChange.source == "import") == 3
    assert await count(sessionmaker, AuditEntry, AuditEntry.action == "applications_import") == 1


async def test_csv_with_bom_and_comma_delimiter(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "bom.csv",
        [HEADER_EN, ["A-1", "0501234567", "subsidy", "received", "01.11.2026"]],
        encoding="utf-8-sig",
        delimiter=",",
    )
    report = await importer.import_file(path)
    assert (report.added, report.rejected) == (1, 0)


async def test_csv_windows_1251(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "cp1251.csv",
        [HEADER_UK[:5], ["Б-17", "0939998877", "Житлова субсидія", "Бракує документів", "20.11.2026"]],
        encoding="cp1251",
    )
    report = await importer.import_file(path)
    assert (report.added, report.rejected) == (1, 0), report.rejections
    app = await app_by_number(sessionmaker, "Б-17")
    assert (app.kind, app.status_code) == ("subsidy", "documents_missing")


async def test_xlsx_with_spreadsheet_types(tmp_path, reference, sessionmaker, importer):
    path = write_xlsx(
        tmp_path / "statuses.xlsx",
        [
            ["Номер заяви", "Телефон", "Вид допомоги", "Статус", "Дата зміни статусу"],
            [1001, 380501234567, "Довідка ВПО", 2, datetime(2026, 11, 20, 12, 0)],
            ["X-2", "+380671234567", "subsidy", "Відмовлено", "21.11.2026"],
            [None, None, None, None, None],
            ["X-3", "12345", "subsidy", "approved", "21.11.2026"],
        ],
    )
    progress: list[ImportProgress] = []

    async def on_progress(p: ImportProgress) -> None:
        progress.append(p)

    report = await importer.import_file(path, progress=on_progress)
    assert (report.added, report.rejected) == (2, 1)
    assert [(r.line, r.reason) for r in report.rejections] == [(5, "bad_phone")]
    app = await app_by_number(sessionmaker, "1001")
    assert (app.phone, app.status_code) == ("+380501234567", "in_review")
    assert progress and progress[-1].rows == 3


async def test_broken_rows_are_reported_with_line_and_reason(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "broken.csv",
        [
            HEADER_UK,
            ["OK-1", "+380501234567", "subsidy", "received", "10.11.2026", ""],
            ["BAD-PHONE", "+7 999 123 45 67", "subsidy", "received", "10.11.2026", ""],
            ["BAD-STATUS", "+380501234567", "subsidy", "загублено", "10.11.2026", ""],
            ["BAD-DATE", "+380501234567", "subsidy", "received", "31.02.2026", ""],
            ["FUTURE", "+380501234567", "subsidy", "received", "01.01.2027", ""],
            ["", "+380501234567", "subsidy", "received", "10.11.2026", ""],
            ["BAD-HROMADA", "+380501234567", "subsidy", "received", "10.11.2026", "Атлантида"],
            ["", "", "", "", "", ""],
            ["OK-2", "+380501234567", "subsidy", "received", "10.11.2026", "Пирятинська громада"],
        ],
    )
    report = await importer.import_file(path)
    assert report.added == 2
    assert [(r.line, r.reason) for r in report.rejections] == [
        (3, "bad_phone"),
        (4, "unknown_status"),
        (5, "bad_date"),
        (6, "future_date"),
        (7, "missing_value"),
        (8, "unknown_hromada"),
    ]
    assert await count(sessionmaker, Application) == 2


async def test_missing_column_refuses_the_whole_file(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "nostatus.csv",
        [["номер заяви", "телефон", "вид допомоги", "дата"], ["A", "0501234567", "subsidy", "01.11.2026"]],
    )
    with pytest.raises(ImportRefused) as refused:
        await importer.import_file(path)
    assert refused.value.code == "missing_columns"
    assert refused.value.detail == "status"
    assert await count(sessionmaker, Application) == 0


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "old_excel"),
        (b"PK\x03\x04garbage", "not_a_table"),
    ],
)
async def test_unusable_files_are_refused(tmp_path, reference, importer, content, code):
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    with pytest.raises(ImportRefused) as refused:
        await importer.import_file(path)
    assert refused.value.code == code


async def test_repeated_import_changes_nothing_and_pushes_once(tmp_path, reference, sessionmaker, importer):
    resident = await add_resident(sessionmaker, 555)
    first = write_csv(
        tmp_path / "1.csv", [HEADER_EN, ["N-1", "0501234567", "subsidy", "received", "01.11.2026"]]
    )
    await importer.import_file(first)
    app = await app_by_number(sessionmaker, "N-1")
    async with sessionmaker.begin() as session:
        session.add(ApplicationSubscription(user_id=resident.user_id, application_id=app.id))

    second = write_csv(
        tmp_path / "2.csv", [HEADER_EN, ["N-1", "0501234567", "subsidy", "approved", "15.11.2026"]]
    )
    report = await importer.import_file(second)
    assert (report.updated, report.pushes) == (1, 1)
    again = await importer.import_file(second)
    assert (again.added, again.updated, again.unchanged, again.pushes) == (0, 0, 1, 0)
    assert await count(sessionmaker, OutboxMessage, OutboxMessage.kind == PUSH_KIND) == 1
    assert await count(sessionmaker, ApplicationStatusChange) == 2

    # An older export does not roll the status back.
    older = await importer.import_file(first)
    assert (older.unchanged, older.older) == (1, 1)
    assert (await app_by_number(sessionmaker, "N-1")).status_code == "approved"


async def test_phone_moved_by_registry_ends_old_subscriptions(tmp_path, reference, sessionmaker, importer):
    resident = await add_resident(sessionmaker, 556)
    first = write_csv(
        tmp_path / "1.csv", [HEADER_EN, ["M-1", "0501234567", "subsidy", "received", "01.11.2026"]]
    )
    await importer.import_file(first)
    app = await app_by_number(sessionmaker, "M-1")
    async with sessionmaker.begin() as session:
        session.add(ApplicationSubscription(user_id=resident.user_id, application_id=app.id))
    moved = write_csv(
        tmp_path / "2.csv", [HEADER_EN, ["M-1", "0679999999", "subsidy", "approved", "02.11.2026"]]
    )
    report = await importer.import_file(moved)
    assert (report.updated, report.pushes) == (1, 0)
    assert await count(sessionmaker, ApplicationSubscription) == 0


async def test_duplicate_number_in_one_file_keeps_history(tmp_path, reference, sessionmaker, importer):
    path = write_csv(
        tmp_path / "dup.csv",
        [
            HEADER_EN,
            ["D-1", "0501234567", "subsidy", "received", "01.11.2026"],
            ["D-1", "0501234567", "subsidy", "in_review", "03.11.2026"],
        ],
    )
    report = await importer.import_file(path)
    assert (report.added, report.updated) == (1, 1)
    assert (await app_by_number(sessionmaker, "D-1")).status_code == "in_review"
    assert await count(sessionmaker, ApplicationStatusChange) == 2


async def test_100k_rows_stream_in_batches(tmp_path, reference, sessionmaker, importer):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(HEADER_UK[:5])
        for i in range(100_000):
            writer.writerow([f"BIG-{i:06d}", f"+38050{i:07d}", "subsidy", "received", "10.11.2026"])
    batches: list[ImportProgress] = []

    async def on_progress(p: ImportProgress) -> None:
        batches.append(p)

    started = time.perf_counter()
    report = await importer.import_file(path, progress=on_progress)
    elapsed = time.perf_counter() - started
    assert (report.added, report.rejected) == (100_000, 0)
    assert len(batches) == 100 and batches[-1].fraction == pytest.approx(1.0, abs=0.01)
    assert await count(sessionmaker, Application) == 100_000
    assert elapsed < 60


async def test_a_workers_import_is_limited_to_their_hromadas(tmp_path, reference, sessionmaker, importer):
    async with sessionmaker() as session:
        ids = dict((await session.execute(select(Hromada.code, Hromada.id))).tuples().all())
    setup = write_csv(
        tmp_path / "setup.csv",
        [HEADER_UK, ["V-1", "0501234567", "subsidy", "received", "01.11.2026", "VES"]],
    )
    await importer.import_file(setup)
    path = write_csv(
        tmp_path / "scoped.csv",
        [
            HEADER_UK,
            ["P-1", "0501234567", "subsidy", "received", "02.11.2026", "Пирятинська"],
            ["V-2", "0501234567", "subsidy", "received", "02.11.2026", "Веселівська"],
            ["V-1", "0501234567", "subsidy", "approved", "02.11.2026", ""],  # an existing VES application
            ["N-1", "0501234567", "subsidy", "received", "02.11.2026", ""],
        ],
    )
    report = await importer.import_file(path, hromada_scope={ids["PYR"]})
    assert report.added == 2
    assert [(r.line, r.reason) for r in report.rejections] == [(3, "other_hromada"), (4, "other_hromada")]
    assert (await app_by_number(sessionmaker, "V-1")).status_code == "received"


SAMPLE = Path(__file__).resolve().parent / "data" / "statuses_cp1251.csv"


async def test_committed_registry_style_sample(reference, sessionmaker, importer):
    """tests/data/statuses_cp1251.csv: Windows-1251, `;`, CRLF, columns in the registry's order
    with an extra «Примітка» column, one unknown status and one impossible date."""
    report = await importer.import_file(SAMPLE)
    assert (report.added, report.rejected) == (5, 2)
    assert [(r.line, r.reason) for r in report.rejections] == [(7, "unknown_status"), (8, "bad_date")]
    suspended = await app_by_number(sessionmaker, "ДОП-2026-0042")
    assert (suspended.status_code, suspended.phone, suspended.kind) == (
        "payment_suspended",
        "+380665554433",
        "social_assistance",
    )


async def test_title_lines_above_the_header_are_skipped(tmp_path, reference, sessionmaker, importer):
    csv_path = tmp_path / "titled.csv"
    csv_path.write_text(
        "Звіт про стан заяв\nстаном на 22.11.2026\n\n"
        "Номер заяви,Телефон,Вид допомоги,Статус,Дата зміни статусу\n"
        "T-1,0501234567,субсидія,прийнято,20.11.2026\n",
        encoding="utf-8",
    )
    report = await importer.import_file(csv_path)
    assert (report.added, report.rejected) == (1, 0)
    xlsx_path = write_xlsx(
        tmp_path / "titled.xlsx",
        [
            ["Реєстр заяв ВПО"],
            [],
            HEADER_EN,
            ["T-2", "0501234567", "subsidy", "received", "20.11.2026"],
            ["T-3"],
        ],
    )
    report = await importer.import_file(xlsx_path)
    assert report.added == 1
    assert [(r.line, r.reason) for r in report.rejections] == [(5, "bad_phone")]
