""" "Only the first time": a small memory of keys already seen, with a bound on its size.

`MemoryOnce` remembers the last `size` keys of this process. `RedisOnce` asks Redis (SET NX with
an expiry), so several instances agree; when Redis does not answer it falls back to its own
memory rather than failing the caller (the worst case is one repeat per instance).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Once(Protocol):
    async def first(self, key: str) -> bool:
        """True the first time `key` is asked for, False afterwards."""
        ...

    async def close(self) -> None: ...


class MemoryOnce:
    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def first(self, key: str) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    async def close(self) -> None:
        self._seen.clear()


class RedisOnce:
    """Keys live `ttl` seconds in Redis under `prefix`."""

    def __init__(self, redis: Any, *, prefix: str, ttl: int, fallback: MemoryOnce | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.fallback = fallback or MemoryOnce()

    @classmethod
    def from_url(cls, url: str, *, prefix: str, ttl: int) -> RedisOnce:
        from redis.asyncio import Redis

        # Short bounds: this is asked on the path of an apology, which must not wait long.
        return cls(Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), prefix=prefix, ttl=ttl)

    async def first(self, key: str) -> bool:
        try:
            return bool(await self.redis.set(self.prefix + key, b"1", nx=True, ex=self.ttl))
        except Exception as exc:  # Redis away too: this process's memory decides
            log.warning("once: Redis unavailable (%s); using this process's memory", type(exc).__name__)
            return await self.fallback.first(key)

    async def close(self) -> None:
        await self.redis.aclose()
