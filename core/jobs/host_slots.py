"""Per-MX-host SMTP politeness shared by every worker, on Redis (core/verify/politeness.HostSlots).

Four workers must not open four times the sessions to one mail host. Each host has, in Redis:
a sorted set of held session slots scored by their expiry (a slot of a worker killed with -9
frees itself when it expires; live holders renew theirs), a token bucket for the rate of new
connections, and a cool-down key set after a 421. One Lua script checks and takes a slot
atomically with Redis's own clock, so processes with skewed clocks still agree.

A release wakes this process's waiters at once; other processes notice within `POLL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from core.settings import Settings
from core.verify.politeness import Slot

log = logging.getLogger(__name__)
SLOT_TTL = 60.0  # seconds a slot lives without renewal
POLL = 0.05

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local burst = tonumber(ARGV[4])
local rate = tonumber(ARGV[5])
local b = redis.call('HMGET', KEYS[3], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - ts) / 1000.0 * rate)
if tokens < 1 then
  redis.call('HSET', KEYS[3], 'tokens', tostring(tokens), 'ts', tostring(now))
  return 0
end
redis.call('HSET', KEYS[3], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[3], 3600000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1]) * 2)
end
return #KEYS
"""

_COOL = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


class RedisHostSlots:
    def __init__(self, redis: Any, *, connect_burst: int = 8, connect_rate: float = 2.0, prefix: str = "listwarden",
                 slot_ttl: float = SLOT_TTL) -> None:
        self.redis = redis
        self.connect_burst = connect_burst
        self.connect_rate = connect_rate
        self.prefix = f"{prefix}:smtp"
        self.slot_ttl_ms = int(slot_ttl * 1000)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._cool = redis.register_script(_COOL)
        self._held: dict[str, str] = {}  # token -> host
        self._released: dict[str, asyncio.Event] = {}
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisHostSlots:
        from redis.asyncio import Redis

        return cls(Redis.from_url(settings.redis_url), connect_burst=settings.smtp_connect_burst,
                   connect_rate=settings.smtp_connect_rate, prefix=settings.redis_prefix)

    def _keys(self, host: str) -> list[str]:
        return [f"{self.prefix}:slots:{host}", f"{self.prefix}:cool:{host}", f"{self.prefix}:rate:{host}"]

    async def try_acquire(self, host: str, limit: int) -> Slot | None:
        token = uuid.uuid4().hex
        got = await self._acquire(keys=self._keys(host),
                                  args=[limit, token, self.slot_ttl_ms, self.connect_burst, self.connect_rate])
        if not got:
            return None
        self._held[token] = host
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever(), name="smtp-slot-renewer")
        return Slot(host, token)

    async def release(self, slot: Slot) -> None:
        self._held.pop(slot.token, None)
        with contextlib.suppress(Exception):  # an unreachable Redis: the slot expires by itself
            await self.redis.zrem(self._keys(slot.host)[0], slot.token)
        event = self._released.pop(slot.host, None)
        if event is not None:
            event.set()

    async def cool_down(self, host: str, seconds: float) -> None:
        await self._cool(keys=[self._keys(host)[1]], args=[int(seconds * 1000)])

    async def wait(self, hosts: list[str], timeout: float) -> None:
        """Until a slot here is released, or POLL (a release by another process, a refilled rate token)."""
        events = [self._released.setdefault(h, asyncio.Event()) for h in hosts]
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=min(timeout, POLL))
        finally:
            for w in waiters:
                w.cancel()

    async def _renew_forever(self) -> None:
        while self._held:
            await asyncio.sleep(self.slot_ttl_ms / 3000)
            held = list(self._held.items())
            if not held:
                return
            try:
                await self._renew(keys=[self._keys(h)[0] for _, h in held], args=[self.slot_ttl_ms, *[t for t, _ in held]])
            except Exception:
                log.warning("could not renew SMTP host slots on Redis", exc_info=True)

    def open_sessions(self, host: str) -> int:
        """Slots this process holds at `host` (the shared total is in Redis)."""
        return sum(1 for h in self._held.values() if h == host)

    async def aclose(self) -> None:
        for token, host in list(self._held.items()):
            await self.release(Slot(host, token))
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self.redis.aclose()
