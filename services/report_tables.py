"""The shape every report section shares: a scope (which hromadas), a period, and tables of plain
values. The reports service (texts, charts, XLSX and CSV) renders any `ReportTable`, so a feature
(SLA, surveys, satisfaction) adds a section by returning one, without knowing how it is shown.

No personal data ever enters a table: only counts, durations, codes and names of places, services
and teams. Counts below `SMALL_COUNT` are published as "<5" (`published_count`) so that a request
from a village of forty people cannot be traced to a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

# Counts from 1 to SMALL_COUNT - 1 are shown as "<5"; zero stays zero (nothing to protect).
SMALL_COUNT = 5
SMALL_COUNT_LABEL = f"<{SMALL_COUNT}"

# How a column's values are typed in exports: XLSX writes real numbers and dates for these.
ColumnType = Literal["text", "count", "number", "percent", "hours", "date"]
Cell = str | int | float | date | None


@dataclass(frozen=True)
class ReportScope:
    """Whose figures: the hromadas of a coordinator's teams, or every hromada of an oblast."""

    hromada_ids: tuple[int, ...]
    # An oblast code (e.g. "poltavska") when the scope is a whole oblast, for titles and
    # for rows that belong to the oblast rather than to one hromada (the fallback team).
    oblast: str | None = None


@dataclass(frozen=True)
class Period:
    """Whole local days [start, end] in the settings' time zone; `bounds` gives them in UTC."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends on or after its start")

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """[from, to) in UTC: local midnight of `start` to local midnight after `end`."""
        begin = datetime.combine(self.start, time(0), tzinfo=zone).astimezone(UTC)
        finish = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        return begin, finish

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Column:
    # An i18n message id for the header (rendered by the view), and the export type.
    key: str
    type: ColumnType = "text"


@dataclass(frozen=True)
class ReportTable:
    """One section: an i18n id for its title, its columns, and rows of plain cells.

    Count cells hold true counts here; `published` applies the small-count rule once, at the
    edge (text, chart, export), so totals and shares are computed from the true numbers.
    """

    key: str
    columns: tuple[Column, ...]
    rows: Sequence[tuple[Cell, ...]] = field(default_factory=tuple)

    def published(self) -> list[tuple[Cell | str, ...]]:
        count_columns = [i for i, column in enumerate(self.columns) if column.type == "count"]
        out: list[tuple[Cell | str, ...]] = []
        for row in self.rows:
            cells: list[Cell | str] = list(row)
            for i in count_columns:
                cells[i] = published_count(row[i])
            out.append(tuple(cells))
        return out


def published_count(value: Cell) -> Cell | str:
    """A count as it may be published: 1–4 become "<5"."""
    if isinstance(value, int) and 0 < value < SMALL_COUNT:
        return SMALL_COUNT_LABEL
    return value
