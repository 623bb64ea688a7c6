"""The command line as a user meets it: one clear line for a bad setting, the console, seed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.processes import clean_env, hromada_bot_command

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], tmp_path: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hromada_bot_command(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the embedded default database lands here (./hromada.db)
        env=clean_env(**env),
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "mysql://nope"}, "DATABASE_URL"),
        ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN"),
        ({"TIMEZONE": "Mars/Olympus"}, "TIMEZONE"),
        ({"SEND_RATE_PER_SECOND": "fast"}, "SEND_RATE_PER_SECOND"),
        ({}, "BOT_TOKEN"),  # `run` without a token
    ],
)
def test_bad_or_missing_setting_is_one_line_naming_the_variable(tmp_path, env, variable) -> None:
    result = run(["run"], tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_console_greets_in_ukrainian_and_switches_language(tmp_path) -> None:
    script = "/start\n1\n1\n/language\n2\n/help\n:as worker\n:as resident\n:sticker\n:quit\n"
    result = run(["console"], tmp_path, stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Вітаємо! Це бот соціальних служб" in out
    assert "[1] 🇺🇦 Українська" in out
    assert "Згода на обробку персональних даних" in out
    assert "Language set to English." in out
    assert "I connect you with your hromada's social services." in out
    assert "I cannot pass messages like this" in out  # the sticker
    assert (tmp_path / "hromada.db").exists()
    assert "Traceback" not in result.stderr


def test_seed_is_idempotent_and_refuses_a_broken_file(tmp_path) -> None:
    sample = ROOT / "data" / "sample_reference.yaml"
    first = run(["seed", "--file", str(sample)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "hromadas 13" in first.stdout
    second = run(["seed", "--file", str(sample)], tmp_path)
    assert second.returncode == 0
    assert "created: nothing; updated: nothing; removed: nothing" in second.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        sample.read_text(encoding="utf-8").replace("team: ves-csp}", "team: ghost}"), encoding="utf-8"
    )
    third = run(["seed", "--file", str(broken)], tmp_path)
    assert third.returncode == 1
    assert "refused, nothing was changed" in third.stderr and "unknown team 'ghost'" in third.stderr


def test_seed_from_the_codifier_with_the_yaml_twice_changes_nothing(tmp_path) -> None:
    sample = ROOT / "data" / "sample_reference.yaml"
    args = ["seed", "--file", str(sample), "--katottg-oblast", "UA23", "--katottg-oblast", "Полтавська"]
    first = run(args, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "codifier (Запорізька, Полтавська): hromadas created" in first.stdout
    assert "hromadas created 0" not in first.stdout
    second = run(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "hromadas created 0, updated 0; settlements created 0, updated 0" in second.stdout
    assert "created: nothing; updated: nothing; removed: nothing" in second.stdout
    unknown = run(["seed", "--katottg-oblast", "UA99"], tmp_path)
    assert unknown.returncode == 1 and "no oblast 'UA99'" in unknown.stderr
