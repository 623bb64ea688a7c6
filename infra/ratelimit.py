"""Outgoing rate limits shared by everything the bot sends (aiogram ships none).

`RateLimiter` books send slots: globally at most `rate` messages per second (slots on a grid of
1/rate s) and at most one message per `per_chat_interval` seconds to the same chat. A slot is
*reserved* synchronously when asked for, so concurrent senders keep their order and never
share a slot; the caller then sleeps until it. `pause(seconds)` (after Telegram's 429
RetryAfter, from any call) pushes every later slot back, and `settle` holds back sends whose slot
was booked before the pause. Time and sleep are injectable, so tests run on a fake
clock and never sleep.

`RateLimitMiddleware` applies the same limiter to every message-sending API call of a Bot
(`install(bot, limiter)`), so handler replies and the outbox deliverer share one budget.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import (
    CopyMessage,
    ForwardMessage,
    GetUpdates,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType

# Message-creating methods count against Telegram's per-chat and global message limits.
LIMITED_METHODS = (SendMessage, SendPhoto, SendDocument, SendMediaGroup, CopyMessage, ForwardMessage)
# Receiving updates is not sending: a flood pause must not stop the bot from hearing people.
UNPAUSED_METHODS = (GetUpdates,)
MAX_PAUSE = 3600.0
WINDOW_MARGIN = 0.02  # slack in the one-second window against jitter (GC pauses, wake-ups)

# Set by a sender that already booked its slot (the outbox deliverer), so the middleware does
# not book a second one for the same call.
slot_taken: contextvars.ContextVar[bool] = contextvars.ContextVar("slot_taken", default=False)


class RateLimiter:
    """Global slots lie on a grid of 1/rate seconds (so two messages are never closer than that
    and no one-second window holds more than `rate` of them); a free slot before a busy one is
    still used, so one chat's backlog never holds the others up. Per chat: the next message
    no earlier than `per_chat_interval` after the previous one."""

    def __init__(
        self,
        rate: float = 30.0,
        per_chat_interval: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_chats: int = 100_000,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.per_chat_interval = per_chat_interval
        self.monotonic = monotonic
        self.sleep = sleep
        self.max_chats = max_chats
        self._booked: set[int] = set()  # grid indices of booked global slots (near future only)
        self._paused_until = 0.0
        self._last_sent: OrderedDict[int | str, float] = OrderedDict()  # actual send times
        self._actual: deque[float] = deque(maxlen=max(1, math.floor(rate)))  # last calls' real times
        self._settle_lock = asyncio.Lock()
        # chat_id → earliest next slot; bounded LRU (old entries are in the past anyway).
        self._next_chat: OrderedDict[int | str, float] = OrderedDict()

    def chat_wait(self, chat_id: int | str) -> float:
        """Seconds until this chat may get its next message (nothing is booked)."""
        return max(0.0, self._next_chat.get(chat_id, 0.0) - max(self.monotonic(), self._paused_until))

    def reserve(self, chat_id: int | str | None) -> float:
        """Book the earliest slot allowed by both limits; returns its time (monotonic clock)."""
        now = self.monotonic()
        earliest = max(now, self._paused_until)
        if chat_id is not None:
            earliest = max(earliest, self._next_chat.get(chat_id, 0.0))
        k = math.ceil(earliest / self.interval - 1e-9)
        while k in self._booked:
            k += 1
        self._booked.add(k)
        if len(self._booked) > 4096:
            floor = math.floor(now / self.interval)
            self._booked = {b for b in self._booked if b >= floor}
        slot = k * self.interval
        if chat_id is not None:
            self._next_chat[chat_id] = slot + self.per_chat_interval
            self._next_chat.move_to_end(chat_id)
            while len(self._next_chat) > self.max_chats:
                self._next_chat.popitem(last=False)
        return slot

    async def acquire(self, chat_id: int | str | None) -> float:
        """Wait for a booked slot; returns the slot time."""
        slot = self.reserve(chat_id)
        delay = slot - self.monotonic()
        if delay > 0:
            await self.sleep(delay)
        await self.settle(chat_id)
        return slot

    async def settle(self, chat_id: int | str | None) -> None:
        """Right before the call, on actual times: not during a pause, no more than `rate` calls
        in any second and `per_chat_interval` since this chat's previous call. Normally the
        booked slot already ensures the limits; this catches late senders (a slow commit, a late
        wake-up) bunching up, and senders whose slot was booked before a 429 paused everything.
        One caller at a time, so concurrent senders are checked against what really happened."""
        async with self._settle_lock:
            while True:  # a pause may begin while we sleep: check again after every wait
                now = self.monotonic()
                at = max(now, self._paused_until)
                if len(self._actual) == self._actual.maxlen:
                    at = max(at, self._actual[0] + 1.0 + WINDOW_MARGIN)
                if chat_id is not None:
                    last = self._last_sent.get(chat_id)
                    if last is not None:
                        at = max(at, last + self.per_chat_interval)
                if at <= now:
                    break
                await self.sleep(at - now)
            done = self.monotonic()
            self._actual.append(done)
            if chat_id is not None:
                self._last_sent[chat_id] = done
                self._last_sent.move_to_end(chat_id)
                while len(self._last_sent) > self.max_chats:
                    self._last_sent.popitem(last=False)

    def pause_remaining(self) -> float:
        """Seconds until a 429's pause is over (0 when there is none)."""
        return max(0.0, self._paused_until - self.monotonic())

    async def wait_pause(self) -> None:
        """Wait until no pause is in force (a pause may be extended while we wait)."""
        while (remaining := self.pause_remaining()) > 0:
            await self.sleep(remaining)

    def pause(self, seconds: float) -> None:
        """Telegram asked us to wait (429): no new slot before now + seconds (bounded)."""
        seconds = min(max(seconds, 0.0), MAX_PAUSE)
        self._paused_until = max(self._paused_until, self.monotonic() + seconds)


class RateLimitMiddleware(BaseRequestMiddleware):
    """Every message-sending call of a bot waits for a slot of the shared limiter; every other
    call (edits, callback answers, ...) waits while a 429's pause is in force, since Telegram's
    flood control counts the whole bot. A 429 from any call pauses the limiter and is re-raised
    (the caller decides whether to retry: no recursion here)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if isinstance(method, LIMITED_METHODS):
            chat_id = getattr(method, "chat_id", None)
            if slot_taken.get():
                await self.limiter.settle(chat_id)  # slot booked by the sender; check actual times
            else:
                await self.limiter.acquire(chat_id)
        elif not isinstance(method, UNPAUSED_METHODS):
            await self.limiter.wait_pause()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as exc:
            self.limiter.pause(float(exc.retry_after))
            raise


def install(bot: Bot, limiter: RateLimiter) -> RateLimiter:
    """Put the limiter on the bot's session (once); returns the limiter in use."""
    existing = installed(bot)
    if existing is not None:
        return existing
    bot.session.middleware(RateLimitMiddleware(limiter))
    return limiter


def installed(bot: Bot) -> RateLimiter | None:
    for middleware in bot.session.middleware:
        if isinstance(middleware, RateLimitMiddleware):
            return middleware.limiter
    return None
