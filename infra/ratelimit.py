"""Outgoing rate limits shared by everything the bot sends (aiogram ships none).

Budget. Globally at most `rate` messages per second: send slots lie on a grid (1/rate s, widened
by WINDOW_MARGIN: 34 ms at 30/s) and each slot is booked by one sender, so two messages are never
closer than that and no one-second window holds more than `rate` of them; a free slot before a
busy one is still used, so one chat's backlog never holds the others up. Per chat: the next
message no earlier than `per_chat_interval` after the previous one. Right before the call
`settle` re-checks on the actual times (a late sender must not bunch up with the next ones), and
a 429's `retry_after` (`pause`) holds back every sender — slots already booked included.

Lanes. Replies to a person's own update (the default lane, `INTERACTIVE`) go ahead of bulk work
(the outbox deliverer sets `send_lane` to `BULK`) within the one budget:
- an interactive sender books the earliest free slot at once, however far ahead, so interactive
  sends are served first come, first served (the order they asked in): a flood from one chat
  cannot jump people who asked before it, and that chat's later messages are spread one per
  `per_chat_interval` while others take the slots in between;
- a bulk sender books just in time: only a slot within `bulk_horizon` (one slot interval) of
  now; otherwise it waits and asks again. So a reply waits at most about one slot behind bulk
  work, and while replies use the whole budget the bulk lane gets nothing. A bulk sender that
  could not get a slot within `give_up_after` gets `Busy` (the deliverer hands the row back).
- everything else (edits, callback answers, ...) is never queued behind messages: it only waits
  out a 429 pause, since Telegram's flood control counts the whole bot.

Holding nothing while waiting. A caller may pass `before_wait`: it is awaited once before the
sender would wait longer than `LONG_WAIT` for its slot or for a pause. `RateLimitMiddleware`
passes the hook the update's DB-session middleware publishes in `release_before_wait` (it
commits the update so far and gives the database connection back, see bot/middlewares.py), so
no handler holds a connection while it waits to send.

Observing. `on_wait(lane, seconds)`, when given, is called after every booked send with the
seconds it spent in the limiter (0.0 when it did not wait), and after every pause waited out.

`RateLimiter` keeps all of this in the process; `infra.shared_ratelimit.SharedRateLimiter` has
the same interface and keeps it in Redis, shared by every instance. Time and sleep are
injectable, so tests run on a fake clock and never sleep.

`RateLimitMiddleware` applies a limiter to every API call of a Bot (`install(bot, limiter)`),
so handler replies and the outbox deliverer share one budget.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from abc import ABC, abstractmethod
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
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType

log = logging.getLogger(__name__)

# Message-creating methods count against Telegram's per-chat and global message limits.
LIMITED_METHODS = (
    SendMessage,
    SendPhoto,
    SendDocument,
    SendVoice,
    SendVideoNote,
    SendMediaGroup,
    CopyMessage,
    ForwardMessage,
)
# Receiving updates is not sending: a flood pause must not stop the bot from hearing people.
UNPAUSED_METHODS = (GetUpdates,)
MAX_PAUSE = 3600.0
# A reply refused with a 429 is sent again after the pause, once, if the pause is this short.
INTERACTIVE_RETRIES = 1
INTERACTIVE_RETRY_MAX = 10.0
WINDOW_MARGIN = 0.02  # slack in the one-second window against jitter (GC pauses, wake-ups)
# The actual-time check (`settle`) holds a narrower window than the grid's: a sender that woke
# up late (a busy loop, a slow Redis answer) is let through up to half the margin late instead of
# pushing every later sender back by its lateness. With equal windows lateness only added up while
# the budget was full, and replies queued behind bulk senders waiting in settle.
SETTLE_WINDOW = 1.0 + WINDOW_MARGIN / 2
CHAT_MARGIN = 0.05  # the same for the per-chat interval, measured where three processes share it
LONG_WAIT = 0.02  # a wait longer than this is worth giving the database connection back for
MAX_POLL = 1.0  # a waiting bulk sender looks again at least this often

INTERACTIVE = "interactive"
BULK = "bulk"

# The lane of the sends made in this context: the deliverer sets BULK, everything else
# (handlers' replies) is INTERACTIVE.
send_lane: contextvars.ContextVar[str] = contextvars.ContextVar("send_lane", default=INTERACTIVE)
# Set by a sender that already booked its slot (the outbox deliverer), so the middleware does
# not book a second one for the same call.
slot_taken: contextvars.ContextVar[bool] = contextvars.ContextVar("slot_taken", default=False)
BeforeWait = Callable[[], Awaitable[None]]
# Published by the update's DB-session middleware: awaited before an interactive send waits.
release_before_wait: contextvars.ContextVar[BeforeWait | None] = contextvars.ContextVar(
    "release_before_wait", default=None
)
WaitObserver = Callable[[str, float], None]

# Results of one booking attempt.
BOOKED = 1  # seconds = delay until the booked slot
NOT_YET = 0  # bulk: no free slot within the horizon; seconds = when to ask again
TOO_LONG = 2  # bulk: the chat or a pause makes it wait longer than allowed; seconds = that wait
CHAT_LATER = 3  # bulk: this chat (not the budget) is busy; seconds = when to ask again


class Busy(Exception):
    """A bulk send got no slot in the time it may wait; `retry_in`: when to try again."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"no send slot; retry in {retry_in:.1f} s")
        self.retry_in = retry_in


class BaseRateLimiter(ABC):
    """Lanes, waiting, settling and observing; subclasses keep the books (`_book`,
    `_settle_once`, `_pause_left`, `pause`)."""

    def __init__(
        self,
        rate: float,
        per_chat_interval: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_wait: WaitObserver | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # The grid is as wide as the actual-time check (`settle`) needs: `rate` calls per
        # 1 + WINDOW_MARGIN seconds. A narrower grid would book more than settle lets through,
        # and the senders queued in settle would keep growing (replies behind them).
        self.interval = max(1.0 / rate, (1.0 + WINDOW_MARGIN) / max(1, math.floor(rate)))
        # Spaced a little wider than asked, like the global window: a call is checked here, but
        # reaches Telegram a few ms later or earlier than its neighbour (another process, a busy
        # loop), and a gap that is 14 ms short is already a 429.
        self.per_chat_interval = per_chat_interval + CHAT_MARGIN if per_chat_interval > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self.on_wait = on_wait
        self.bulk_horizon = self.interval
        self._settle_lock = asyncio.Lock()
        self._bulk_lock = asyncio.Lock()
        # Bulk senders of this process need not ask before this time (the budget is known busy).
        self._bulk_frontier = 0.0
        self._observer_failed = False

    # -- the books (per subclass) -----------------------------------------------------------------
    @abstractmethod
    async def _book(
        self, chat_id: int | str | None, horizon: float | None, max_wait: float | None
    ) -> tuple[int, float]:
        """One booking attempt: (BOOKED, delay) or, with a horizon/max_wait, a refusal."""

    @abstractmethod
    async def _settle_once(self, chat_id: int | str | None) -> float:
        """0.0: the call may go now (and is recorded); otherwise the seconds to wait first."""

    @abstractmethod
    async def _pause_left(self) -> float:
        """Seconds until the 429 pause is over, as the books know it."""

    @abstractmethod
    def pause(self, seconds: float) -> None:
        """Telegram asked us to wait (429): no send before now + seconds (bounded)."""

    @abstractmethod
    def pause_remaining(self) -> float:
        """Seconds until a 429's pause is over, as this process knows it (no I/O)."""

    @abstractmethod
    def chat_wait(self, chat_id: int | str) -> float:
        """Seconds until this chat may get its next message, as this process knows it."""

    async def pause_all(self, seconds: float) -> None:
        """`pause`, and wait until every instance can see it (shared limiter)."""
        self.pause(seconds)

    async def close(self) -> None:
        return None

    # -- public -----------------------------------------------------------------------------------
    async def acquire(
        self,
        chat_id: int | str | None,
        *,
        lane: str | None = None,
        before_wait: BeforeWait | None = None,
        give_up_after: float | None = None,
        settle: bool = True,
    ) -> float:
        """Book a slot in `lane` (default: the context's `send_lane`), wait for it and, with
        `settle`, for the actual-time check. Returns the seconds spent. Bulk with
        `give_up_after`: raises `Busy` instead of waiting longer than that."""
        lane = lane or send_lane.get()
        start = self.monotonic()
        if lane == BULK:
            delay = await self._book_bulk(chat_id, start, give_up_after)
        else:
            _, delay = await self._book(chat_id, None, None)
        target = self.monotonic() + delay
        if delay > LONG_WAIT and before_wait is not None:
            await before_wait()
            before_wait = None
        remaining = target - self.monotonic()
        if remaining > 0:
            await self.sleep(remaining)
        if settle:
            await self.settle(chat_id, before_wait=before_wait)
        waited = max(0.0, self.monotonic() - start)
        self._observe(lane, waited)
        return waited

    async def book(self, chat_id: int | str | None) -> float:
        """Book an interactive slot without waiting for it; returns the seconds until it."""
        _, delay = await self._book(chat_id, None, None)
        return delay

    async def settle(self, chat_id: int | str | None, *, before_wait: BeforeWait | None = None) -> None:
        """Right before the call, on actual times: not during a pause, no more than `rate` calls
        in any second and `per_chat_interval` since this chat's previous call. Normally the
        booked slot already ensures the limits; this catches late senders (a slow commit, a late
        wake-up) bunching up, and senders whose slot was booked before a 429 paused everything.
        One caller of the process at a time, so they are checked in the order they came."""
        async with self._settle_lock:
            while (wait := await self._settle_once(chat_id)) > 0:
                if before_wait is not None and wait > LONG_WAIT:
                    await before_wait()
                    before_wait = None
                await self.sleep(wait)

    async def wait_pause(self, *, before_wait: BeforeWait | None = None, lane: str | None = None) -> None:
        """Wait until no pause is in force (a pause may be extended while we wait)."""
        start: float | None = None
        while (remaining := await self._pause_left()) > 0:
            if before_wait is not None:
                await before_wait()
                before_wait = None
            if start is None:
                start = self.monotonic()
            await self.sleep(remaining)
        if start is not None:
            self._observe(lane or send_lane.get(), self.monotonic() - start)

    # -- internals --------------------------------------------------------------------------------
    async def _book_bulk(self, chat_id: int | str | None, start: float, give_up_after: float | None) -> float:
        """Just in time: ask for a slot within the horizon, else wait and ask again."""
        deadline = None if give_up_after is None else start + give_up_after
        while True:
            now = self.monotonic()
            if self._bulk_frontier > now:
                wait = self._bulk_frontier - now  # another bulk sender of ours just asked
            else:
                async with self._bulk_lock:  # one bulk question at a time per process
                    status, seconds = await self._book(chat_id, self.bulk_horizon, give_up_after)
                    now = self.monotonic()
                    if status == BOOKED:
                        # The next slot after this one is not within the horizon before it.
                        self._bulk_frontier = now + seconds + self.interval - self.bulk_horizon
                        return seconds
                    if status == TOO_LONG:
                        raise Busy(seconds)
                    if status == NOT_YET:
                        self._bulk_frontier = now + seconds
                    wait = seconds
            if deadline is not None and now + wait > deadline:
                raise Busy(wait)
            await self.sleep(min(max(wait, 1e-3), MAX_POLL))

    def _observe(self, lane: str, seconds: float) -> None:
        if self.on_wait is None:
            return
        try:
            self.on_wait(lane, seconds)
        except Exception:  # an observer must never stop a send
            if not self._observer_failed:
                self._observer_failed = True
                log.exception("rate limiter: wait observer failed")


class RateLimiter(BaseRateLimiter):
    """The books of one process: booked grid indices, per-chat next slots, the pause, the last
    calls' actual times."""

    def __init__(
        self,
        rate: float = 30.0,
        per_chat_interval: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_wait: WaitObserver | None = None,
        max_chats: int = 100_000,
    ) -> None:
        super().__init__(rate, per_chat_interval, monotonic=monotonic, sleep=sleep, on_wait=on_wait)
        self.max_chats = max_chats
        self._booked: set[int] = set()  # grid indices of booked global slots (near future only)
        self._paused_until = 0.0
        self._last_sent: OrderedDict[int | str, float] = OrderedDict()  # actual send times
        self._actual: deque[float] = deque(maxlen=max(1, math.floor(rate)))  # last calls' real times
        # chat_id → earliest next slot; bounded LRU (old entries are in the past anyway).
        self._next_chat: OrderedDict[int | str, float] = OrderedDict()

    def chat_wait(self, chat_id: int | str) -> float:
        return max(0.0, self._next_chat.get(chat_id, 0.0) - max(self.monotonic(), self._paused_until))

    def reserve(self, chat_id: int | str | None) -> float:
        """Book the earliest slot allowed by both limits (interactive); returns its time."""
        _, delay = self._try_book(chat_id, None, None)
        return self.monotonic() + delay

    def _try_book(
        self, chat_id: int | str | None, horizon: float | None, max_wait: float | None
    ) -> tuple[int, float]:
        now = self.monotonic()
        base = max(now, self._paused_until)
        earliest = base
        if chat_id is not None:
            earliest = max(earliest, self._next_chat.get(chat_id, 0.0))
        if max_wait is not None and earliest - now > max_wait:
            return TOO_LONG, earliest - now
        if horizon is not None and earliest > base and earliest - now > horizon:
            return CHAT_LATER, earliest - now - horizon
        k = math.ceil(earliest / self.interval - 1e-9)
        while k in self._booked:
            k += 1
        slot = k * self.interval
        if horizon is not None and slot - now > horizon:
            return NOT_YET, slot - now - horizon
        self._booked.add(k)
        if len(self._booked) > 4096:
            floor = math.floor(now / self.interval)
            self._booked = {b for b in self._booked if b >= floor}
        if chat_id is not None:
            self.note_chat(chat_id, slot + self.per_chat_interval)
        return BOOKED, slot - now

    def note_chat(self, chat_id: int | str, next_at: float) -> None:
        """This chat's next message no earlier than `next_at` (this process's clock)."""
        self._next_chat[chat_id] = max(next_at, self._next_chat.get(chat_id, 0.0))
        self._next_chat.move_to_end(chat_id)
        while len(self._next_chat) > self.max_chats:
            self._next_chat.popitem(last=False)

    async def _book(
        self, chat_id: int | str | None, horizon: float | None, max_wait: float | None
    ) -> tuple[int, float]:
        return self._try_book(chat_id, horizon, max_wait)

    async def _settle_once(self, chat_id: int | str | None) -> float:
        now = self.monotonic()
        at = max(now, self._paused_until)
        if len(self._actual) == self._actual.maxlen:
            at = max(at, self._actual[0] + SETTLE_WINDOW)
        if chat_id is not None:
            last = self._last_sent.get(chat_id)
            if last is not None:
                at = max(at, last + self.per_chat_interval)
        if at > now:
            return at - now
        self._actual.append(now)
        if chat_id is not None:
            self._last_sent[chat_id] = now
            self._last_sent.move_to_end(chat_id)
            while len(self._last_sent) > self.max_chats:
                self._last_sent.popitem(last=False)
        return 0.0

    async def _pause_left(self) -> float:
        return self.pause_remaining()

    def pause_remaining(self) -> float:
        return max(0.0, self._paused_until - self.monotonic())

    def pause(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), MAX_PAUSE)
        self._paused_until = max(self._paused_until, self.monotonic() + seconds)


class RateLimitMiddleware(BaseRequestMiddleware):
    """Every message-sending call of a bot waits for a slot of the shared limiter in its lane;
    every other call (edits, callback answers, ...) only waits while a 429's pause is in force.
    An interactive call that would wait first runs the update's `release_before_wait` hook.
    A 429 from any call pauses the limiter and is re-raised (the caller decides whether to
    retry: no recursion here)."""

    def __init__(self, limiter: BaseRateLimiter) -> None:
        self.limiter = limiter

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        lane = send_lane.get()
        hook = release_before_wait.get() if lane == INTERACTIVE else None
        # A reply refused with a 429 was not delivered (Telegram handled nothing), so it is sent
        # again once the pause is over: the person is waiting for it. Bulk senders decide for
        # themselves (the deliverer reschedules the row), and a long pause is left to the caller.
        retries = INTERACTIVE_RETRIES if lane == INTERACTIVE and not slot_taken.get() else 0
        while True:
            await self._wait_turn(method, lane, hook)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                await self.limiter.pause_all(float(exc.retry_after))
                if retries <= 0 or exc.retry_after > INTERACTIVE_RETRY_MAX:
                    raise
                retries -= 1

    async def _wait_turn(self, method: TelegramMethod[Any], lane: str, hook: BeforeWait | None) -> None:
        if isinstance(method, LIMITED_METHODS):
            chat_id = getattr(method, "chat_id", None)
            if slot_taken.get():  # slot booked by the sender; check actual times
                await self.limiter.settle(chat_id, before_wait=hook)
            else:
                await self.limiter.acquire(chat_id, lane=lane, before_wait=hook)
        elif not isinstance(method, UNPAUSED_METHODS):
            await self.limiter.wait_pause(before_wait=hook, lane=lane)


def install(bot: Bot, limiter: BaseRateLimiter) -> BaseRateLimiter:
    """Put the limiter on the bot's session (once); returns the limiter in use."""
    existing = installed(bot)
    if existing is not None:
        return existing
    bot.session.middleware(RateLimitMiddleware(limiter))
    return limiter


def installed(bot: Bot) -> BaseRateLimiter | None:
    for middleware in bot.session.middleware:
        if isinstance(middleware, RateLimitMiddleware):
            return middleware.limiter
    return None
