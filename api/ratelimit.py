"""Per-key request rate limit: a token bucket per API key, refilled continuously.

A burst up to the per-minute allowance is fine; past it each request waits for its token, and the
429 says how long in Retry-After (whole seconds, rounded up, at least 1). With Redis configured the
buckets live there, so every worker process shares one limit per key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class RateLimiter(Protocol):
    async def acquire(self, key_id: str) -> float | None:
        """Take one token; None when allowed, else the seconds until the next token."""


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


@dataclass
class KeyRateLimiter:
    """In-process buckets, for a single process."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key id -> (tokens, at)

    async def acquire(self, key_id: str) -> float | None:
        now = self.clock()
        capacity = float(self.per_minute)
        rate = self.per_minute / 60.0
        tokens, at = self._buckets.get(key_id, (capacity, now))
        tokens = min(capacity, tokens + (now - at) * rate)
        if tokens >= 1.0:
            self._buckets[key_id] = (tokens - 1.0, now)
            return None
        self._buckets[key_id] = (tokens, now)
        return (1.0 - tokens) / rate if rate > 0 else 60.0


# One atomic step on the server, timed by the server's clock, so workers on different hosts agree.
_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = capacity / 60.0
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(data[1]) or capacity
local at = tonumber(data[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 elseif rate > 0 then wait = (1 - tokens) / rate else wait = 60 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return tostring(wait)
"""


@dataclass
class RedisKeyRateLimiter:
    """The same bucket in Redis, shared by every process of this instance."""

    redis: Any  # redis.asyncio.Redis
    per_minute: int
    prefix: str = "listwarden:api:rate:"

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(_BUCKET_LUA)

    async def acquire(self, key_id: str) -> float | None:
        wait = float(await self._script(keys=[self.prefix + key_id], args=[self.per_minute]))
        return None if wait <= 0 else wait
