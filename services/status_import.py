"""Import of application status tables exported by registries («Соціальна громада» and others).

Formats: CSV (UTF-8 with or without BOM, or Windows-1251; `;`, `,` or tab delimiter, sniffed
from the header line) and XLSX (first sheet). Both are streamed: memory does not grow with the
file (csv over a text wrapper; openpyxl read-only, values only — openpyxl does hold an XLSX's
shared-string table, i.e. its distinct texts, in memory: a few MB per 100,000 unique values).

Columns are found by header, in any order, any case; extra columns are ignored. Accepted headers
(see `HEADERS`):

    number   number, application number, номер, номер заяви, № заяви, номер звернення
    phone    phone, phone number, телефон, номер телефону, тел
    kind     kind, type, вид, вид допомоги, тип заяви, послуга
    status   status, статус, стан, стан заяви          (values: codes or aliases from the YAML)
    date     date, status date, дата, дата зміни статусу, дата статусу  (dd.mm.yyyy or ISO)
    hromada  hromada, громада                          (optional: code or name)
    katottg  katottg, код КАТОТТГ, КАТОТТГ             (optional: the official code of the
             hromada or of one of its settlements; it wins over the hromada column)

Budgets (`ImportLimits`), because any active worker may send a file: before anything is parsed,
an XLSX's ZIP directory must show a modest unpacked size, no member packed suspiciously tightly
(a "zip bomb") and a shared-string table openpyxl can hold; a CSV must be of a modest size and
line count; a sheet's declared dimension must be within the row and column caps. While streaming,
rows past the row cap and a monotonic deadline stop the import (rows before it stay applied).
A refusal names the limit (`ImportRefused.code`, the limit in `detail`).

A missing required column, an unreadable or empty file refuses the whole file (nothing written).
Every row is validated; bad rows are reported with their line number and reason, good rows are
applied in one transaction per batch. The same file twice changes nothing and pushes nothing: a
row whose status equals the application's is unchanged, and a row older than the application's
current status never rolls it back.

The importer owns its transactions (one per batch) through the sessionmaker it is given; it
is used by the bot (worker sends a file) and by `hromada-bot import-statuses FILE`.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import re
import time
import unicodedata
import uuid
import zipfile
import zoneinfo
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Application, ApplicationStatusChange, ApplicationSubscription, AuditEntry, Hromada
from services.applications import (
    StatusPush,
    StatusVocabulary,
    normalize_number,
    queue_pushes,
)
from services.clock import Clock
from services.phones import normalize_phone
from services.places import is_katottg
from services.reminders import default_zone
from services.text import tidy

BATCH_SIZE = 1_000
KEPT_REJECTIONS = 500  # rows' details kept for the report; the count is always exact
SNIFF_BYTES = 64 * 1024
KIND_MAX = 40

HEADERS: dict[str, tuple[str, ...]] = {
    "number": (
        "number",
        "application number",
        "application no",
        "номер",
        "номер заяви",
        "№ заяви",
        "№",
        "номер звернення",
    ),
    "phone": ("phone", "phone number", "telephone", "телефон", "номер телефону", "тел", "тел."),
    "kind": ("kind", "type", "вид", "вид допомоги", "тип", "тип заяви", "послуга"),
    "status": ("status", "статус", "стан", "стан заяви"),
    "date": ("date", "status date", "changed at", "дата", "дата зміни статусу", "дата статусу"),
    "hromada": ("hromada", "громада"),
    "katottg": ("katottg", "katottg code", "код катоттг", "катоттг", "код за катоттг", "код громади"),
}
REQUIRED = ("number", "phone", "kind", "status", "date")

# Kinds seen in registries' exports; anything else is kept as written (up to 40 characters).
KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "idp_registration": (
        "довідка впо",
        "взяття на облік впо",
        "облік впо",
        "реєстрація впо",
        "idp registration",
    ),
    "living_allowance": ("допомога на проживання", "допомога на проживання впо", "living allowance"),
    "subsidy": ("субсидія", "житлова субсидія", "housing subsidy"),
    "social_assistance": ("соціальна допомога", "державна соціальна допомога", "social assistance"),
    "humanitarian_aid": ("гуманітарна допомога", "humanitarian aid"),
}
_KIND_LOOKUP = {alias: code for code, aliases in KIND_ALIASES.items() for alias in (code, *aliases)}


MB = 1024 * 1024
SHARED_STRINGS = "xl/sharedStrings.xml"


@dataclass(frozen=True)
class ImportLimits:
    """What one import may cost. A real export of `max_rows` rows fits well inside every other
    figure (200,000 rows of six columns: 82 MB of sheet XML with inline texts, packed 13:1; with
    shared texts about 50 MB of sheet and 14 MB of strings); a zip bomb packs 250-1000:1."""

    max_rows: int = 200_000  # data rows after the header, empty ones included
    max_columns: int = 100  # cells right of this are not read
    max_unpacked_bytes: int = 160 * MB  # XLSX members together; a CSV's own size
    max_ratio: int = 100  # unpacked / packed, for members bigger than `ratio_floor_bytes`
    ratio_floor_bytes: int = 1 * MB
    # openpyxl reads the shared-string table whole: its memory is a few times this.
    max_shared_strings_bytes: int = 32 * MB
    seconds: float = 600.0  # wall time, from start to the last batch


class ImportRefused(Exception):
    """The whole file is refused. `code` is a message-key suffix; `detail` has ids/names only."""

    def __init__(self, code: str, detail: str = "", line: int | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.line = line


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str  # message-key suffix: bad_phone, unknown_status, bad_date, ...
    column: str = ""


@dataclass
class ImportProgress:
    rows: int
    fraction: float | None  # 0..1 when the size is known


@dataclass
class ImportReport:
    batch: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    older: int = 0  # included in unchanged: rows older than the application's current status
    rejected: int = 0
    pushes: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # The file broke part-way (encoding, corrupt sheet): rows before it were applied.
    stopped: ImportRefused | None = None

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < KEPT_REJECTIONS:
            self.rejections.append(rejection)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "older": self.older,
            "rejected": self.rejected,
            "pushes": self.pushes,
        }


ProgressCallback = Callable[[ImportProgress], Awaitable[None]]
# What the importer opens its own transactions from (callers need not import SQLAlchemy).
SessionFactory = async_sessionmaker[AsyncSession]
# Opens a SessionFactory on a connection of its own (not the updates' pool) and closes it after.
ImportSessions = Callable[[], AbstractAsyncContextManager[SessionFactory]]


# -- reading ---------------------------------------------------------------------------------


def _norm_header(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\ufeff", "").replace("_", " ").strip().rstrip(":*").strip()
    return " ".join(text.split()).casefold()


_HEADER_LOOKUP = {alias.casefold(): column for column, aliases in HEADERS.items() for alias in aliases}


def map_header(cells: list[Any]) -> dict[str, int]:
    """Column name → index; refuses a file without a required column or with one twice."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = _HEADER_LOOKUP.get(_norm_header(cell))
        if column is None:
            continue
        if column in found:
            raise ImportRefused("duplicate_column", column, line=1)
        found[column] = index
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise ImportRefused("missing_columns", ", ".join(missing), line=1)
    return found


HEADER_SEARCH_ROWS = 10  # exports often start with a title and a date line above the header


def find_header(rows: Iterator[tuple[int, list[Any]]]) -> tuple[dict[str, int], int]:
    """The first of the leading non-empty rows that maps as a header: (columns, its line).
    Refuses with the first row's reason when none of them does."""
    first_error: ImportRefused | None = None
    seen = 0
    for line, cells in rows:
        if not any(_norm_header(c) for c in cells):
            continue
        try:
            return map_header(cells), line
        except ImportRefused as exc:
            if first_error is None:
                exc.line = line
                first_error = exc
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    raise first_error or ImportRefused("empty")


class TableReader:
    """Rows of a CSV or XLSX file as (line number, cells), after the header row."""

    def __init__(self, path: Path, limits: ImportLimits | None = None, deadline: float | None = None) -> None:
        self.path = path
        self.limits = limits or ImportLimits()
        self.deadline = deadline  # time.monotonic() value
        self.columns: dict[str, int] = {}
        self._close: list[Callable[[], Any]] = []
        self._rows: Iterator[tuple[int, list[Any]]] = iter(())
        self._size = 1
        self._raw: io.BufferedReader | None = None
        self._max_row: int | None = None
        self._last_line = 0

    def __enter__(self) -> TableReader:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._close:
            try:
                self._close.pop()()
            except Exception:  # closing a half-read file: nothing more to do
                pass

    def _open(self) -> None:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise ImportRefused("unreadable", type(exc).__name__) from None
        self._close.append(raw.close)
        head = raw.read(8)
        raw.seek(0)
        self._size = max(self.path.stat().st_size, 1)
        if not head.strip():
            raise ImportRefused("empty")
        if head.startswith(b"PK\x03\x04"):
            check_zip(raw, self.limits)
            raw.seek(0)
            self._open_xlsx(raw)
        elif head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ImportRefused("old_excel")
        else:
            self._open_csv(raw)

    def _budget(self, data_rows: int, line: int) -> None:
        """Called for every row after the header, empty ones too."""
        if data_rows > self.limits.max_rows:
            raise ImportRefused("too_many_rows", str(self.limits.max_rows), line=line)
        if data_rows % 256 == 0 and self.deadline is not None and time.monotonic() > self.deadline:
            raise ImportRefused("time_budget", _minutes(self.limits.seconds), line=line)

    # CSV
    def _open_csv(self, raw: Any) -> None:
        if self._size > self.limits.max_unpacked_bytes:
            raise ImportRefused("too_big", _megabytes(self.limits.max_unpacked_bytes))
        # Lines are an upper bound of records: count them before parsing (a quick byte scan).
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: raw.read(MB), b""))
        raw.seek(0)
        if lines > self.limits.max_rows + HEADER_SEARCH_ROWS + 1:
            raise ImportRefused("too_many_rows", str(self.limits.max_rows))
        sample = raw.read(SNIFF_BYTES)
        raw.seek(0)
        if sample.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        else:
            try:
                sample.decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError as exc:
                # A multi-byte character cut by the sample's end is still UTF-8.
                truncated = len(sample) == SNIFF_BYTES and exc.start >= len(sample) - 3
                encoding = "utf-8" if truncated else "cp1251"
        if b"\x00" in sample:
            raise ImportRefused("not_a_table")
        text_sample = sample.decode(encoding.replace("-sig", ""), errors="replace").lstrip("\ufeff")
        # The delimiter the header line is richest in, among the leading lines (a title line
        # above the header may have none).
        leading_lines = [line for line in text_sample.splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]
        counts = {d: max((line.count(d) for line in leading_lines), default=0) for d in (";", ",", "\t")}
        delimiter = max(counts, key=lambda d: counts[d])
        text = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
        self._close.append(text.detach)
        reader = csv.reader(text, delimiter=delimiter)
        self._raw = raw

        def leading() -> Iterator[tuple[int, list[Any]]]:
            try:
                for cells in reader:
                    yield reader.line_num, cells
            except (UnicodeDecodeError, csv.Error):
                raise ImportRefused("not_a_table", line=reader.line_num + 1) from None

        self.columns, _ = find_header(leading())

        def rows() -> Iterator[tuple[int, list[Any]]]:
            data_rows = 0
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise ImportRefused("bad_encoding", line=reader.line_num + 1) from None
                except csv.Error:
                    raise ImportRefused("bad_csv", line=reader.line_num) from None
                data_rows += 1
                self._budget(data_rows, reader.line_num)
                self._last_line = reader.line_num
                yield reader.line_num, cells

        self._rows = rows()

    # XLSX
    def _open_xlsx(self, raw: Any) -> None:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(raw, read_only=True, data_only=True)
        except Exception as exc:  # a zip that is not a workbook, a damaged file
            raise ImportRefused("not_a_table", type(exc).__name__) from None
        self._close.append(workbook.close)
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise ImportRefused("empty")
        self._max_row = sheet.max_row if isinstance(sheet.max_row, int) and sheet.max_row > 1 else None
        # The declared dimension (read before the rows): openpyxl pads the rows up to it with
        # empty ones, so a few bytes could ask for a million.
        if self._max_row and self._max_row > self.limits.max_rows + HEADER_SEARCH_ROWS + 1:
            raise ImportRefused("too_many_rows", str(self.limits.max_rows))
        # Rows are padded to the widest column too: read only the first `max_columns`.
        iterator = sheet.iter_rows(max_col=self.limits.max_columns, values_only=True)
        self.columns, start = find_header((n, list(v)) for n, v in enumerate(iterator, start=1))

        def rows() -> Iterator[tuple[int, list[Any]]]:
            number = start
            try:
                for values in iterator:
                    number += 1
                    self._budget(number - start, number)
                    self._last_line = number
                    yield number, list(values)
            except ImportRefused:
                raise
            except Exception as exc:
                raise ImportRefused("not_a_table", type(exc).__name__, line=number + 1) from None

        self._rows = rows()

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        return self._rows

    @property
    def last_line(self) -> int:
        return self._last_line

    def fraction(self) -> float | None:
        if self._raw is not None:
            try:
                return min(self._raw.tell() / self._size, 1.0)
            except (OSError, ValueError):
                return None
        if self._max_row:
            return min(self._last_line / self._max_row, 1.0)
        return None


def _megabytes(size: int) -> str:
    return str(size // MB)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"


def check_zip(raw: Any, limits: ImportLimits) -> None:
    """Refuses an XLSX whose ZIP directory (read without unpacking anything) shows more unpacked
    bytes, a higher packing ratio or a bigger shared-string table than `limits` allow."""
    try:
        members = zipfile.ZipFile(raw).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ImportRefused("not_a_table") from None
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > limits.ratio_floor_bytes and (
            member.file_size > limits.max_ratio * max(member.compress_size, 1)
        ):
            raise ImportRefused("packed_too_tightly", str(limits.max_ratio))
        if member.filename.lower() == SHARED_STRINGS.lower() and (
            member.file_size > limits.max_shared_strings_bytes
        ):
            raise ImportRefused("too_many_texts", _megabytes(limits.max_shared_strings_bytes))
    if total > limits.max_unpacked_bytes:
        raise ImportRefused("too_big", _megabytes(limits.max_unpacked_bytes))


# -- validation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidRow:
    line: int
    number: str
    phone: str
    kind: str
    status_code: str
    changed_at: datetime
    hromada_id: int | None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return tidy(str(value))


_DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")
_DATE_SHAPE = re.compile(r"^\d{1,2}\.\d{1,2}\.\d{4}( \d{1,2}:\d{2}(:\d{2})?)?$")
_ISO_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_date(value: Any, tz: zoneinfo.ZoneInfo | None = None) -> datetime | None:
    """dd.mm.yyyy [HH:MM[:SS]] or ISO (date or date-time), or a spreadsheet date; a date
    without time is local midnight in `tz` (the settings' zone; the default zone without it).
    Returns an aware datetime or None."""
    tz = tz or default_zone()
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = _text(value)
        parsed = None
        if _DATE_SHAPE.match(text):
            for fmt in _DATE_FORMATS:
                try:
                    parsed = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        elif _ISO_SHAPE.match(text):
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                parsed = None
    if parsed is None:
        return None
    if parsed.year < 2000:
        return None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def normalize_kind(value: Any) -> str | None:
    """A known kind's code, else the text as written (it is stored: no control characters)."""
    text = _text(value)
    if not text or len(text) > KIND_MAX or any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        return None
    return _KIND_LOOKUP.get(text.casefold(), text)


_HROMADA_SUFFIX = re.compile(r"\s+(територіальна\s+)?(громада|тг|отг|hromada)$")


class RowValidator:
    def __init__(
        self,
        columns: dict[str, int],
        vocabulary: StatusVocabulary,
        hromadas: dict[str, int],
        now: datetime,
        tz: zoneinfo.ZoneInfo | None = None,
    ) -> None:
        self.columns = columns
        self.vocabulary = vocabulary
        self.hromadas = hromadas
        self.latest = now + timedelta(days=1)
        self.tz = tz or default_zone()

    def _cell(self, cells: list[Any], column: str) -> Any:
        index = self.columns.get(column)
        if index is None or index >= len(cells):
            return None
        return cells[index]

    def validate(self, line: int, cells: list[Any]) -> ValidRow | Rejection | None:
        """A valid row, a rejection, or None for an empty line."""
        if not any(_text(c) for c in cells):
            return None
        number_raw = _text(self._cell(cells, "number"))
        if not number_raw:
            return Rejection(line, "missing_value", "number")
        number = normalize_number(number_raw)
        if number is None:
            return Rejection(line, "bad_number", "number")
        phone = normalize_phone(_text(self._cell(cells, "phone")))
        if phone is None:
            return Rejection(line, "bad_phone", "phone")
        kind = normalize_kind(self._cell(cells, "kind"))
        if kind is None:
            return Rejection(line, "bad_kind", "kind")
        status_raw = self._cell(cells, "status")
        if not _text(status_raw):
            return Rejection(line, "missing_value", "status")
        status_code = self.vocabulary.resolve(_text(status_raw))
        if status_code is None:
            return Rejection(line, "unknown_status", "status")
        changed_at = parse_date(self._cell(cells, "date"), self.tz)
        if changed_at is None:
            return Rejection(line, "bad_date", "date")
        if changed_at > self.latest:
            return Rejection(line, "future_date", "date")
        hromada_id = None
        hromada_raw = _text(self._cell(cells, "hromada"))
        katottg_raw = _text(self._cell(cells, "katottg")).upper()
        if katottg_raw:
            # A settlement's code begins with its hromada's (oblast, raion, hromada digits).
            hromada_id = self.hromadas.get(katottg_raw[:9]) if is_katottg(katottg_raw) else None
            if hromada_id is None:
                return Rejection(line, "unknown_hromada", "katottg")
        elif hromada_raw:
            key = _HROMADA_SUFFIX.sub("", hromada_raw.casefold())
            hromada_id = self.hromadas.get(key)
            if hromada_id is None:
                return Rejection(line, "unknown_hromada", "hromada")
        return ValidRow(line, number, phone, kind, status_code, changed_at, hromada_id)


def _read_chunk(
    rows: Iterator[tuple[int, list[Any]]], validator: RowValidator, size: int
) -> tuple[list[ValidRow], list[Rejection], int, ImportRefused | None]:
    """Up to `size` non-empty rows, validated (runs in a worker thread)."""
    valid: list[ValidRow] = []
    rejected: list[Rejection] = []
    seen = 0
    try:
        for line, cells in rows:
            result = validator.validate(line, cells)
            if result is None:
                continue
            seen += 1
            if isinstance(result, Rejection):
                rejected.append(result)
            else:
                valid.append(result)
            if seen >= size:
                break
    except ImportRefused as exc:
        return valid, rejected, seen, exc
    return valid, rejected, seen, None


# -- applying --------------------------------------------------------------------------------


@dataclass
class _State:
    id: int | None
    number: str
    phone: str
    kind: str
    hromada_id: int | None
    status_code: str
    status_changed_at: datetime
    dirty: bool = False
    phone_changed: bool = False


class StatusImporter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        *,
        batch_size: int = BATCH_SIZE,
        tz: zoneinfo.ZoneInfo | None = None,
        limits: ImportLimits | None = None,
        pace: float = 0.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.limits = limits or ImportLimits()
        # After each batch, idle `pace` times as long as the batch took: an import inside the
        # bot leaves the CPU (and the GIL its reading thread competes for) to the updates.
        self.pace = pace
        self.clock = clock or Clock()
        self.batch_size = batch_size
        # Dates without a zone in the file are local: pass the settings' zone.
        self.tz = tz or default_zone()

    async def _reference(self) -> tuple[StatusVocabulary, dict[str, int]]:
        async with self.sessionmaker() as session:
            vocabulary = await StatusVocabulary.load(session)
            rows = (
                await session.execute(
                    select(Hromada.id, Hromada.code, Hromada.name_uk, Hromada.name_en, Hromada.katottg)
                )
            ).all()
        hromadas: dict[str, int] = {}
        for hid, code, name_uk, name_en, katottg in rows:
            for key in (code, name_uk, name_en):
                hromadas[_HROMADA_SUFFIX.sub("", key.casefold())] = hid
            if katottg:
                # Upper case: never equal to a casefolded name.
                hromadas[katottg[:9]] = hid
        return vocabulary, hromadas

    async def import_file(
        self,
        path: Path,
        *,
        actor_user_id: int | None = None,
        progress: ProgressCallback | None = None,
        hromada_scope: set[int] | None = None,
    ) -> ImportReport:
        """Import one file. Raises ImportRefused (nothing written) when the file as a whole
        cannot be used; otherwise returns the report.

        `hromada_scope`: the hromadas the importing worker serves (None: all — admins, CLI). A
        row naming another hromada, or for an application of another hromada, is rejected."""
        deadline = time.monotonic() + self.limits.seconds
        vocabulary, hromadas = await self._reference()
        if not vocabulary.by_code:
            raise ImportRefused("no_statuses")
        report = ImportReport(batch=uuid.uuid4().hex[:16])
        reader = await asyncio.to_thread(TableReader(path, self.limits, deadline).__enter__)
        validator = RowValidator(reader.columns, vocabulary, hromadas, self.clock.now(), self.tz)
        rows = reader.rows()

        def read_next() -> tuple[list[ValidRow], list[Rejection], int, ImportRefused | None, float | None]:
            chunk = _read_chunk(rows, validator, self.batch_size)
            return (*chunk, reader.fraction())

        # The next batch is read and validated in a thread while this one is written: two
        # batches in memory at most.
        pending: asyncio.Future[Any] | None = asyncio.ensure_future(asyncio.to_thread(read_next))
        try:
            while pending is not None:
                batch_started = time.monotonic()
                valid, rejected, seen, stop, fraction = await pending
                pending = None
                if stop is None and seen >= self.batch_size and time.monotonic() > deadline:
                    # Per batch too: the reader checks while reading, this covers the writes.
                    stop = ImportRefused(
                        "time_budget", _minutes(self.limits.seconds), line=reader.last_line + 1
                    )
                if stop is None and seen >= self.batch_size:
                    pending = asyncio.ensure_future(asyncio.to_thread(read_next))
                report.rows += seen
                for rejection in rejected:
                    report.reject(rejection)
                if valid:
                    async with self.sessionmaker.begin() as session:
                        await self._apply(session, valid, vocabulary, report, hromada_scope)
                if progress is not None and seen:
                    await progress(ImportProgress(report.rows, fraction))
                if stop is not None:
                    report.stopped = stop
                elif self.pace and pending is not None:
                    await asyncio.sleep(self.pace * (time.monotonic() - batch_started))
        finally:
            if pending is not None:  # a write failed: let the reading thread finish first
                await asyncio.gather(pending, return_exceptions=True)
            await asyncio.to_thread(reader.close)
        async with self.sessionmaker.begin() as session:
            session.add(
                AuditEntry(
                    at=self.clock.now(),
                    actor_user_id=actor_user_id,
                    action="applications_import",
                    object_type="import",
                    object_id=report.batch,
                    data=report.counts(),
                )
            )
        return report

    async def _apply(
        self,
        session: AsyncSession,
        rows: list[ValidRow],
        vocabulary: StatusVocabulary,
        report: ImportReport,
        scope: set[int] | None = None,
    ) -> None:
        now = self.clock.now()
        numbers = list({r.number for r in rows})
        states: dict[str, _State] = {}
        for chunk_start in range(0, len(numbers), 500):
            chunk = numbers[chunk_start : chunk_start + 500]
            found = await session.execute(
                select(
                    Application.id,
                    Application.number,
                    Application.phone,
                    Application.kind,
                    Application.hromada_id,
                    Application.status_code,
                    Application.status_changed_at,
                ).where(Application.number.in_(chunk))
            )
            for found_row in found.all():
                states[found_row.number] = _State(*found_row)
        changes: list[tuple[_State, str | None, str, datetime]] = []
        for row in rows:
            state = states.get(row.number)
            if scope is not None and any(
                h is not None and h not in scope
                for h in (row.hromada_id, state.hromada_id if state else None)
            ):
                report.reject(Rejection(row.line, "other_hromada", "hromada"))
                continue
            if state is None:
                state = _State(
                    None, row.number, row.phone, row.kind, row.hromada_id, row.status_code, row.changed_at
                )
                states[row.number] = state
                changes.append((state, None, row.status_code, row.changed_at))
                report.added += 1
                continue
            if row.changed_at < state.status_changed_at:
                # An older export never rolls a newer status (or phone) back.
                report.unchanged += 1
                if (row.status_code, row.phone, row.kind) != (state.status_code, state.phone, state.kind):
                    report.older += 1
                continue
            touched = False
            if row.phone != state.phone:
                state.phone, state.phone_changed, touched = row.phone, True, True
            if row.kind != state.kind:
                state.kind, touched = row.kind, True
            if row.hromada_id is not None and row.hromada_id != state.hromada_id:
                state.hromada_id, touched = row.hromada_id, True
            if row.status_code != state.status_code:
                changes.append((state, state.status_code, row.status_code, row.changed_at))
                state.status_code, state.status_changed_at = row.status_code, row.changed_at
                touched = True
            if touched:
                state.dirty = state.id is not None or state.dirty
                report.updated += 1
            else:
                report.unchanged += 1

        new = [s for s in states.values() if s.id is None]
        if new:
            # Core, not ORM bulk insert: the ORM splits the rows into runs by which values are
            # None (hromada), which costs a round trip per few rows.
            table = cast(Table, Application.__table__)
            inserted = await session.execute(
                insert(table).returning(table.c.id, table.c.number),
                [
                    {
                        "number": s.number,
                        "kind": s.kind,
                        "phone": s.phone,
                        "hromada_id": s.hromada_id,
                        "status_code": s.status_code,
                        "status_changed_at": s.status_changed_at,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for s in new
                ],
            )
            ids = dict((number, app_id) for app_id, number in inserted.all())
            for s in new:
                s.id = ids[s.number]
        dirty = [s for s in states.values() if s.dirty]
        if dirty:
            await session.execute(
                update(Application),
                [
                    {
                        "id": s.id,
                        "kind": s.kind,
                        "phone": s.phone,
                        "hromada_id": s.hromada_id,
                        "status_code": s.status_code,
                        "status_changed_at": s.status_changed_at,
                        "updated_at": now,
                    }
                    for s in dirty
                ],
            )
        moved = [s.id for s in dirty if s.phone_changed]
        if moved:
            # The registry moved the application to another phone: the old owner's
            # subscriptions end (they must not learn about someone else's application).
            await session.execute(
                delete(ApplicationSubscription).where(ApplicationSubscription.application_id.in_(moved))
            )
        if changes:
            await session.execute(
                insert(cast(Table, ApplicationStatusChange.__table__)),
                [
                    {
                        "application_id": state.id,
                        "from_status": from_status,
                        "to_status": to_status,
                        "changed_at": at,
                        "source": "import",
                        "actor_user_id": None,
                        "import_batch": report.batch,
                    }
                    for state, from_status, to_status, at in changes
                ],
            )
            # Only existing applications can have subscribers; push the latest change of each.
            latest: dict[int, StatusPush] = {}
            for state, from_status, to_status, at in changes:
                if from_status is not None and state.id is not None:
                    latest[state.id] = StatusPush(state.id, state.number, to_status, at)
            if latest:
                report.pushes += await queue_pushes(
                    session, list(latest.values()), vocabulary, self.tz, due_at=now
                )
