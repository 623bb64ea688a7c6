"""Bot API sessions with one fix: keep aiogram's parametrised response models alive.

aiogram's `BaseSession.check_response` builds `Response[method.__returning__]` on every API
call. pydantic caches parametrised generics only weakly, so between calls they are collected
and rebuilt — a whole model class (several ms of CPU) for about every other message sent,
measured at a third of the intake flow's time. Holding a strong reference per return type
turns that into a cache hit.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

_RESPONSE_TYPES: dict[Any, Any] = {}


def keep_response_type(returning: Any) -> None:
    if returning not in _RESPONSE_TYPES:
        _RESPONSE_TYPES[returning] = Response[returning]


class KeepResponseTypesMixin(BaseSession):
    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        keep_response_type(method.__returning__)
        return super().check_response(bot, method, status_code, content)


class HromadaAiohttpSession(KeepResponseTypesMixin, AiohttpSession):
    """The production session."""
