"""Bot API sessions with two fixes over aiogram's.

Keep aiogram's parametrised response models alive: `BaseSession.check_response` builds
`Response[method.__returning__]` on every API call. pydantic caches parametrised generics only
weakly, so between calls they are collected and rebuilt — a whole model class (several ms of
CPU) for about every other message sent, measured at a third of the intake flow's time. Holding
a strong reference per return type turns that into a cache hit.

An answer that is not a Bot API answer at all (a proxy's HTML error page, a body cut short, JSON
of another shape) makes aiogram raise `ClientDecodeError`, which is not a `TelegramAPIError`, so
callers that handle Telegram's errors let it through. It is raised here as `MalformedAnswer`, a
`TelegramNetworkError`: the request may or may not have reached Telegram, exactly as when the
connection drops, and it is retried like one. Its message carries the HTTP status only, never
the body.

The 429 pause before each request and on a RetryAfter is the rate limiter's session middleware
(infra/ratelimit.py), installed on the session of the bot.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import ClientDecodeError, TelegramNetworkError
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

_RESPONSE_TYPES: dict[Any, Any] = {}


class MalformedAnswer(TelegramNetworkError):
    """The Bot API's answer could not be read (not JSON, cut short, not a Bot API response)."""

    def __init__(self, method: TelegramMethod[TelegramType], status_code: int) -> None:
        super().__init__(method=method, message=f"malformed answer (HTTP {status_code})")
        self.status_code = status_code


def keep_response_type(returning: Any) -> None:
    if returning not in _RESPONSE_TYPES:
        _RESPONSE_TYPES[returning] = Response[returning]


class KeepResponseTypesMixin(BaseSession):
    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        keep_response_type(method.__returning__)
        try:
            return super().check_response(bot, method, status_code, content)
        except ClientDecodeError as exc:
            raise MalformedAnswer(method, status_code) from exc


class HromadaAiohttpSession(KeepResponseTypesMixin, AiohttpSession):
    """The production session."""
