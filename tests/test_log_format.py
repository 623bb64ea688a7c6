"""Logs as JSON lines (`LOG_FORMAT=json`), and the personal-data rules in both formats.

The rules of infra/logsafe.py hold whatever the format: an exception's message never reaches the
log (it may quote what a person typed), only its traceback's frames and types.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.offline import BotClient
from infra.logformat import JsonFormatter, SafeTextFormatter, make_formatter
from infra.logsafe import HIDDEN
from infra.settings import LoggingSettings, SettingsError, load_settings
from tests.hostile.test_webhook_and_logs import LOGGERS, NAME, PHONE, SECRETS, _to_phone_step, failing_writes
from tests.processes import clean_env, hromada_bot_command


def _leaks(written: str) -> list[str]:
    """Personal data in `written`, as is or JSON-escaped."""
    return [s for s in SECRETS if s in written or json.dumps(s)[1:-1] in written]


@contextmanager
def root_writes_to(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield out
    finally:
        root.removeHandler(handler)


def _fail_with_personal_data() -> None:
    def save_phone() -> None:
        try:
            raise KeyError(PHONE)
        except KeyError as exc:
            raise ValueError(f"cannot save {PHONE} for {NAME}") from exc

    save_phone()


def _log_failures(log: logging.Logger) -> ValueError:
    try:
        _fail_with_personal_data()
    except ValueError as exc:
        log.exception("saving the contact failed")
        log.error("saving the contact failed: %s", exc)  # the mistake the formatter still catches
        log.warning("retrying for %r", exc)
        return exc
    raise AssertionError("unreachable")


def test_a_json_line_per_record_with_time_level_logger_message_and_exception() -> None:
    log = logging.getLogger("hromada_bot.test_json")
    log.setLevel(logging.INFO)
    with root_writes_to(JsonFormatter()) as out:
        log.info("started: %d workers, %s", 3, "ready")
        _log_failures(log)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    first, failed, argument, repr_argument = entries
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "INFO" and first["logger"] == "hromada_bot.test_json"
    assert first["message"] == "started: 3 workers, ready"
    assert first["time"].endswith("+00:00") and "T" in first["time"]

    assert failed["level"] == "ERROR" and failed["message"] == "saving the contact failed"
    exception = failed["exception"]
    assert "Traceback (most recent call last):" in exception and "in save_phone" in exception
    assert f"KeyError: {HIDDEN}" in exception and f"ValueError: {HIDDEN}" in exception
    assert "The above exception was the direct cause" in exception

    assert argument["message"] == "saving the contact failed: ValueError"
    assert repr_argument["message"] == "retrying for ValueError"
    assert _leaks(out.getvalue()) == []


def test_text_lines_keep_the_same_rules() -> None:
    log = logging.getLogger("hromada_bot.test_text")
    log.setLevel(logging.INFO)
    with root_writes_to(SafeTextFormatter()) as out:
        _log_failures(log)
    written = out.getvalue()
    assert "ERROR hromada_bot.test_text: saving the contact failed" in written
    assert "in save_phone" in written and f"ValueError: {HIDDEN}" in written
    assert "saving the contact failed: ValueError" in written
    assert _leaks(written) == []


def test_the_control_python_s_own_formatter_would_leak() -> None:
    # Without our formatters the same records carry the phone and the name: the tests above
    # would catch a regression.
    log = logging.getLogger("hromada_bot.test_control")
    log.setLevel(logging.INFO)
    with root_writes_to(logging.Formatter("%(message)s")) as out:
        _log_failures(log)
    assert PHONE in out.getvalue() and NAME in out.getvalue()


async def test_a_database_failure_mid_form_leaves_no_personal_data_in_json_logs(
    resident: BotClient, db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:  # every logger at its most talkative: the ORM's, the drivers'
        caplog.set_level(logging.DEBUG, logger=name)
    with root_writes_to(make_formatter("json")) as out:
        await _to_phone_step(resident)
        async with failing_writes(db, "fsm_records"):  # the draft cannot be saved
            replies = await resident.share_contact(PHONE)
    assert any("помилка" in r.text.lower() for r in replies), replies
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    failures = [e for e in entries if e["logger"] == "handlers.errors" and e["level"] == "ERROR"]
    assert failures, "the failure was logged"
    assert any(e["logger"].startswith("sqlalchemy") for e in entries), "the ORM's records went through"
    assert _leaks(out.getvalue()) == []


def test_log_format_setting() -> None:
    assert LoggingSettings().log_format == "text"
    assert LoggingSettings(LOG_FORMAT="JSON").log_format == "json"


def test_a_bad_log_format_is_one_line_naming_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match=r"^setting LOG_FORMAT is invalid"):
        load_settings()


def _migrate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*hromada_bot_command(), "--log-level", "DEBUG", "migrate"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", **env),
        timeout=120,
    )


def test_the_command_writes_json_lines_when_asked(tmp_path: Path) -> None:
    result = _migrate(tmp_path, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines, "the migration logged at DEBUG"
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["logger"].startswith("alembic") for e in entries)


def test_the_command_writes_text_by_default(tmp_path: Path) -> None:
    result = _migrate(tmp_path)
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert not first.startswith("{") and " alembic" in result.stderr
