"""How log records are written: text lines (the default) or one JSON object per line
(`LOG_FORMAT=json`, for a log collector).

Both formats keep the personal-data rules of infra/logsafe.py, also for a record that did not
follow them: an exception attached to a record (`log.exception`, `exc_info=`) is written as its
traceback without the messages (`describe_exception`), and an exception passed as an argument
(`log.error("failed: %s", exc)`) as its type name only. The per-logger filters that hide the
drivers' values (`hide_values_in_driver_logs`) run before any formatter, in either format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from infra.logsafe import describe_exception

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


class _TypeOnly:
    """Stands in for an exception in a message's arguments: its type name, for %s and %r."""

    def __init__(self, exc: BaseException) -> None:
        self.name = type(exc).__name__

    def __str__(self) -> str:
        return self.name

    __repr__ = __str__


def _safe_message(record: logging.LogRecord) -> str:
    if isinstance(record.args, tuple) and any(isinstance(a, BaseException) for a in record.args):
        shown = tuple(_TypeOnly(a) if isinstance(a, BaseException) else a for a in record.args)
        return str(record.msg) % shown
    return record.getMessage()


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[1] is not None:
        return describe_exception(record.exc_info[1])
    return None


class SafeTextFormatter(logging.Formatter):
    """The usual text line, with exceptions written without their messages.

    `logging.Formatter.format` reuses the traceback text another handler's formatter cached on
    the record (`exc_text`, with the messages); this one always writes its own."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = _safe_message(record)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        exception = _exception_text(record)
        if exception:
            line += "\n" + exception
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and
    `exception` (the traceback without messages) and `stack` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _safe_message(record),
        }
        exception = _exception_text(record)
        if exception:
            entry["exception"] = exception
        if record.stack_info:
            entry["stack"] = record.stack_info  # code lines only, no values
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return SafeTextFormatter()


def configure_logging(level: str | int, log_format: str = "text", stream: IO[str] | None = None) -> None:
    """The process's root handler: one stream (stderr by default) in the chosen format. As
    `logging.basicConfig`, which it calls: nothing changes when the root logger already has a
    handler (a test runner's, or an embedding program's)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
