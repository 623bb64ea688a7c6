"""Refusals a person should hear about, raised by services and answered in one place.

A `DomainError` names its message by key (`message_key`) with `params` for its placeholders;
the error router turns it into the user's language and answers the message or the button
press. Nothing the person typed is in the exception: it may reach a log."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refused action. Subclasses set `prefix` (their message family) and a default `code`."""

    prefix: ClassVar[str] = "errors"
    code: str = "internal"

    def __init__(self, code: str | None = None, **params: Any) -> None:
        self.code = code or type(self).code
        self.params: dict[str, Any] = params
        super().__init__(self.code)

    @property
    def message_key(self) -> str:
        return f"{self.prefix}.{self.code}"


class StaleAction(DomainError):
    """A button or a form step that no longer applies (old message, changed data, forged id)."""

    code = "stale_button"


class NotAllowed(DomainError):
    """The person has no right to do this (not a worker, not their case, not their team)."""

    code = "not_allowed"
