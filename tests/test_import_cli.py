"""`hromada-bot import-statuses FILE` (bot/import_statuses.run): report on stdout, progress bar
on stderr, exit codes 0 (all applied) / 1 (rows rejected) / 2 (file refused)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import func, select

from bot.import_statuses import run
from models import Application

HEADER = ["номер заяви", "телефон", "вид допомоги", "статус", "дата зміни статусу"]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows([HEADER, *rows])
    return path


async def test_cli_imports_and_reports(settings, reference, sessionmaker, tmp_path, capsys) -> None:
    rows = [[f"C-{i}", "0501234567", "субсидія", "прийнято", "01.11.2026"] for i in range(2500)]
    path = write(tmp_path / "ok.csv", rows)
    assert await run(settings, path, show_progress=True) == 0
    out, err = capsys.readouterr()
    assert "Додано: 2500" in out and "Відхилено: 0" in out
    assert "rows" in err and err.endswith("\n")  # the bar, then a newline
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Application)) == 2500

    # Again: nothing changes; a bad row makes the exit code 1 and is listed.
    path = write(tmp_path / "bad.csv", [*rows, ["C-X", "123", "субсидія", "прийнято", "01.11.2026"]])
    assert await run(settings, path, show_progress=False) == 1
    out, err = capsys.readouterr()
    assert "Додано: 0" in out and "Без змін: 2500" in out
    assert "рядок 2502: телефон не у форматі +380XXXXXXXXX" in out
    assert err == ""


async def test_cli_refuses_a_file_without_required_columns(settings, reference, tmp_path, capsys) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("номер заяви;телефон\n1;0501234567\n", encoding="utf-8")
    assert await run(settings, path, show_progress=False) == 2
    _, err = capsys.readouterr()
    assert "нічого не змінено" in err and "вид допомоги, статус, дата зміни статусу" in err
    assert await run(settings, tmp_path / "missing.csv", show_progress=False) == 2
