"""Logging without personal data, whatever fails.

An exception's text may quote what a person typed: SQLAlchemy puts the statement's parameters
into its errors, PostgreSQL's DETAIL repeats a refused row, pydantic repeats the input. So what
we log of an exception is its traceback — where it happened, every link of its chain — with the
exception types but none of their messages. The database drivers' and the ORM's debug logs,
which print parameters and result rows, are cut down the same way (`hide_values_in_driver_logs`).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

HIDDEN = "[hidden: may hold personal data]"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _chain(exc: BaseException) -> list[tuple[BaseException, str | None]]:
    """`exc` and what led to it, oldest first, each with the sentence linking it to the one
    before it (as Python prints a chained traceback)."""
    newest_first: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        older: BaseException | None = None
        link: str | None = None
        if current.__cause__ is not None:
            older, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            older, link = current.__context__, _CONTEXT
        newest_first.append((current, link))
        current = older
    oldest_first = newest_first[::-1]
    if oldest_first:
        oldest_first[0] = (oldest_first[0][0], None)
    return oldest_first


def exception_types(exc: BaseException) -> str:
    """`OuterError <- InnerError <- RootError`: the chain's types, newest first."""
    return " <- ".join(_type_name(e) for e, _ in reversed(_chain(exc)))


def describe_exception(exc: BaseException) -> str:
    """The traceback of `exc` and of its causes, as Python prints it, without the messages."""
    lines: list[str] = []
    for error, link in _chain(exc):
        if link:
            lines += ["", link, ""]
        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            lines.append("Traceback (most recent call last):")
            lines += [entry.rstrip("\n") for entry in traceback.format_list(frames)]
        # PostgreSQL's error code says what went wrong (23505: a unique key) and quotes nothing.
        sqlstate = getattr(error, "sqlstate", None)
        code = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) and sqlstate.isalnum() else ""
        lines.append(f"{_type_name(error)}{code}: {HIDDEN}")
    return "\n".join(lines)


class _HideValues(logging.Filter):
    """Keeps a driver's or the ORM's record, without the values its arguments carry."""

    def __init__(self, templates: frozenset[str]) -> None:
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self.templates and record.args:
            record.args = tuple(_describe_arg(arg) for arg in _as_tuple(record.args))
        return True


def _as_tuple(args: Any) -> tuple[Any, ...]:
    return args if isinstance(args, tuple) else (args,)


def _describe_arg(arg: object) -> str:
    # aiosqlite logs the call it runs: functools.partial(cursor.execute, sql, parameters).
    func = getattr(arg, "func", None)
    if callable(func):
        return f"{getattr(func, '__qualname__', type(func).__name__)}(...)"
    if isinstance(arg, BaseException):
        return type(arg).__name__
    return HIDDEN


# Record templates that print values: SQLAlchemy's result rows (its parameters are hidden by the
# engine's `hide_parameters`), aiosqlite's every call with its arguments and its errors.
_DRIVER_TEMPLATES = {
    "sqlalchemy.engine.Engine": frozenset({"Row %r"}),
    "aiosqlite": frozenset({"executing %s", "operation %s completed", "returning exception %s"}),
}


def hide_values_in_driver_logs() -> None:
    """Install the filters once per process (a logger's filters see only its own records)."""
    for name, templates in _DRIVER_TEMPLATES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideValues) for f in logger.filters):
            logger.addFilter(_HideValues(templates))
