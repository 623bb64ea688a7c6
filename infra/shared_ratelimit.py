"""The send budget of infra/ratelimit.py kept in Redis, so several instances of the bot share it.

Same interface and lanes as `RateLimiter` (the middleware and the deliverer do not care which
one they have); the books live in Redis under one key prefix (a hash tag, so a Redis Cluster
keeps them on one node), each with a TTL, so nothing is left behind:

    {prefix}:grid        sorted set of booked global slot indices (grid of 1/rate s); past ones
                         are trimmed by every booking
    {prefix}:chat:<id>   the chat's earliest next slot (per_chat_interval after its last booking)
    {prefix}:pause       until when a 429's retry_after holds every sender of every instance
    {prefix}:sent        sorted set of the actual call times of the last second (settle)
    {prefix}:last:<id>   the chat's last actual call time (settle)

Every booking is one Lua script (atomic: instances never share a slot and interactive bookings
are served in the order they reached Redis), and so is the check right before each call
(settle: the pause key, no more than `rate` calls in any second and the per-chat interval on
actual times, across instances). Time is Redis's own clock (`TIME`), so instances on different
machines agree; tests pass a `clock` instead.

If Redis does not answer (or errors), the instance goes on with its own books (a
`RateLimiter`, which also mirrors the pauses and per-chat bookings it saw) rather than stop
talking (a call that gets no answer within 2 s counts as failed): logged once, asked again
after `retry_redis_after` seconds. While it runs alone each
instance keeps the whole budget, so several instances may briefly exceed it together; the 429s
that could bring pause them (each on its own).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from infra.ratelimit import MAX_PAUSE, SETTLE_WINDOW, BaseRateLimiter, RateLimiter, WaitObserver

log = logging.getLogger(__name__)

# Every script's clock: ARGV[1], or Redis' own TIME when it is '' (one clock for all instances).
_NOW = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""

# KEYS: grid, pause, chat next.  ARGV: now ('' = Redis TIME), interval, per_chat, horizon ('' =
# none: interactive), max_wait ('' = none), has_chat ('1'/'0').
# Returns {status, seconds}: as infra.ratelimit BOOKED / NOT_YET / TOO_LONG / CHAT_LATER.
BOOK = (
    _NOW
    + """local interval = tonumber(ARGV[2])
local per_chat = tonumber(ARGV[3])
local base = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > base then base = paused end
local earliest = base
if ARGV[6] == '1' then
  local nxt = tonumber(redis.call('GET', KEYS[3]) or '0')
  if nxt > earliest then earliest = nxt end
end
if ARGV[5] ~= '' and earliest - now > tonumber(ARGV[5]) then
  return {2, string.format('%.6f', earliest - now)}
end
if ARGV[4] ~= '' and earliest > base and earliest - now > tonumber(ARGV[4]) then
  return {3, string.format('%.6f', earliest - now - tonumber(ARGV[4]))}
end
local k = math.ceil(earliest / interval - 1e-9)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', math.floor(now / interval) - 1))
local taken = redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%d', k), '+inf')
for _, m in ipairs(taken) do
  local b = tonumber(m)
  if b == k then k = k + 1 elseif b > k then break end
end
local slot = k * interval
if ARGV[4] ~= '' and slot - now > tonumber(ARGV[4]) then
  return {0, string.format('%.6f', slot - now - tonumber(ARGV[4]))}
end
local member = string.format('%d', k)
redis.call('ZADD', KEYS[1], member, member)
redis.call('PEXPIRE', KEYS[1], math.ceil((slot - now) * 1000) + 10000)
if ARGV[6] == '1' then
  local nxt = slot + per_chat
  redis.call('SET', KEYS[3], string.format('%.6f', nxt), 'PX', math.ceil((nxt - now) * 1000) + 1000)
end
return {1, string.format('%.6f', slot - now)}
"""
)

# KEYS: sent, pause, chat last.  ARGV: now, rate (whole calls), window, per_chat, has_chat, member.
# Returns {1, 0} when the call may go now (recorded), {0, seconds to wait} otherwise.
SETTLE = (
    _NOW
    + """local at = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > at then at = paused end
local window = tonumber(ARGV[3])
local rate = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= rate then
  local oldest = redis.call('ZRANGE', KEYS[1], n - rate, n - rate, 'WITHSCORES')
  local free = tonumber(oldest[2]) + window
  if free > at then at = free end
end
if ARGV[5] == '1' then
  local last = redis.call('GET', KEYS[3])
  if last then
    local t = tonumber(last) + tonumber(ARGV[4])
    if t > at then at = t end
  end
end
if at > now then return {0, string.format('%.6f', at - now)} end
redis.call('ZADD', KEYS[1], string.format('%.6f', now), ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
if ARGV[5] == '1' then
  redis.call('SET', KEYS[3], string.format('%.6f', now), 'PX', math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
end
return {1, '0'}
"""
)

# KEYS: pause.  ARGV: now, seconds ('' = only read).  Returns the seconds left (a string).
PAUSE = (
    _NOW
    + """local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[2] ~= '' then
  local untl = now + tonumber(ARGV[2])
  if untl > cur then
    redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', math.ceil(tonumber(ARGV[2]) * 1000) + 1000)
    cur = untl
  end
end
if cur > now then return string.format('%.6f', cur - now) end
return '0'
"""
)

FAILURES = (RedisError, OSError, asyncio.TimeoutError)


class SharedRateLimiter(BaseRateLimiter):
    """`RateLimiter`'s budget, lanes and pause kept in Redis for all instances (see module)."""

    def __init__(
        self,
        redis: Redis,
        rate: float = 30.0,
        per_chat_interval: float = 1.0,
        *,
        prefix: str = "hromada:ratelimit",
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_wait: WaitObserver | None = None,
        retry_redis_after: float = 5.0,
        owns_client: bool = False,
    ) -> None:
        super().__init__(rate, per_chat_interval, monotonic=monotonic, sleep=sleep, on_wait=on_wait)
        self.redis = redis
        self.prefix = "{" + prefix + "}"
        self.clock = clock
        self.retry_redis_after = retry_redis_after
        self.owns_client = owns_client
        # This instance's own books: the fallback when Redis is away; meanwhile it mirrors the
        # pauses and per-chat bookings seen, for `pause_remaining`/`chat_wait` without I/O.
        self.local = RateLimiter(rate, per_chat_interval, monotonic=monotonic, sleep=sleep)
        self._book_script = redis.register_script(BOOK)
        self._settle_script = redis.register_script(SETTLE)
        self._pause_script = redis.register_script(PAUSE)
        self._window_calls = max(1, math.floor(rate))
        self._ids = itertools.count()
        self._instance = f"{os.getpid()}:{id(self):x}"
        self._redis_down_until: float | None = None  # set while running on the local books
        self._publishing: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_url(cls, url: str, rate: float, per_chat_interval: float, **kwargs: Any) -> SharedRateLimiter:
        # Bounded waits: a Redis that hangs holds sends up at most a couple of seconds, then the
        # local books take over. A bounded pool: a burst of senders queues for a connection
        # instead of opening hundreds at once.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=32, timeout=2.0, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        return cls(Redis.from_pool(pool), rate, per_chat_interval, owns_client=True, **kwargs)

    async def close(self) -> None:
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)
        if self.owns_client:
            await self.redis.aclose()

    # -- keys and time ----------------------------------------------------------------------------
    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    def _now(self) -> str:
        return "" if self.clock is None else repr(self.clock())

    # -- Redis, or the local books when it fails ----------------------------------------------------
    def _redis_usable(self) -> bool:
        if self._redis_down_until is None:
            return True
        return self.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: BaseException) -> None:
        if self._redis_down_until is None:
            log.warning(
                "shared rate limiter: Redis unavailable (%s); this instance keeps its own limits "
                "until it answers again",
                type(exc).__name__,
            )
        self._redis_down_until = self.monotonic() + self.retry_redis_after

    def _redis_ok(self) -> None:
        if self._redis_down_until is not None:
            self._redis_down_until = None
            log.warning("shared rate limiter: Redis answers again; limits shared again")

    async def _book(
        self, chat_id: int | str | None, horizon: float | None, max_wait: float | None
    ) -> tuple[int, float]:
        if not self._redis_usable():
            return await self.local._book(chat_id, horizon, max_wait)
        chat_key = self.key(f"chat:{chat_id}") if chat_id is not None else self.key("chat:-")
        args = [
            self._now(),
            repr(self.interval),
            repr(self.per_chat_interval),
            "" if horizon is None else repr(horizon),
            "" if max_wait is None else repr(max_wait),
            "0" if chat_id is None else "1",
        ]
        try:
            status, seconds = await self._book_script(
                keys=[self.key("grid"), self.key("pause"), chat_key], args=args
            )
        except FAILURES as exc:
            self._redis_failed(exc)
            return await self.local._book(chat_id, horizon, max_wait)
        self._redis_ok()
        status, delay = int(status), float(seconds)
        if status == 1 and chat_id is not None:
            self.local.note_chat(chat_id, self.monotonic() + delay + self.per_chat_interval)
        return status, delay

    async def _settle_once(self, chat_id: int | str | None) -> float:
        if not self._redis_usable():
            return await self.local._settle_once(chat_id)
        chat_key = self.key(f"last:{chat_id}") if chat_id is not None else self.key("last:-")
        args = [
            self._now(),
            str(self._window_calls),
            repr(SETTLE_WINDOW),
            repr(self.per_chat_interval),
            "0" if chat_id is None else "1",
            f"{self._instance}:{next(self._ids)}",
        ]
        try:
            ok, seconds = await self._settle_script(
                keys=[self.key("sent"), self.key("pause"), chat_key], args=args
            )
        except FAILURES as exc:
            self._redis_failed(exc)
            return await self.local._settle_once(chat_id)
        self._redis_ok()
        if int(ok) == 1:
            # Also on the local books, so a fallback starts from what really happened.
            await self.local._settle_once(chat_id)
            return 0.0
        return float(seconds)

    async def _pause_left(self) -> float:
        local = self.local.pause_remaining()
        if not self._redis_usable():
            return local
        try:
            left = float(await self._pause_script(keys=[self.key("pause")], args=[self._now(), ""]))
        except FAILURES as exc:
            self._redis_failed(exc)
            return local
        self._redis_ok()
        if left > local:
            self.local.pause(left)  # mirror another instance's pause
        return max(left, local)

    # -- pauses -----------------------------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        """At once for this instance; published to the others in the background."""
        self.local.pause(seconds)
        task = asyncio.get_running_loop().create_task(self._publish_pause(seconds))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def pause_all(self, seconds: float) -> None:
        self.local.pause(seconds)
        await self._publish_pause(seconds)

    async def _publish_pause(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), MAX_PAUSE)
        if not self._redis_usable():
            return
        try:
            await self._pause_script(keys=[self.key("pause")], args=[self._now(), repr(seconds)])
        except FAILURES as exc:
            self._redis_failed(exc)
            return
        self._redis_ok()

    def pause_remaining(self) -> float:
        return self.local.pause_remaining()

    def chat_wait(self, chat_id: int | str) -> float:
        return self.local.chat_wait(chat_id)
