"""Per-MX-host politeness: concurrent sessions, new-connection rate, and a cool-down after 421.

Mail servers block clients that open too many sessions or reconnect too fast, and a blocked
verifier answers "unknown" for everything behind that server. The limits are per host address
(one MX name may stand for several servers). `HostSlots` is the seam: this in-process version
serves one process; `core.jobs` provides one on Redis so that several workers share one budget.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Slot:
    host: str
    token: str = ""


class HostSlots(Protocol):
    """A budget of sessions per mail host, possibly shared by several processes."""

    async def try_acquire(self, host: str, limit: int) -> Slot | None:
        """A session slot at `host` if one is free, the host is not cooling down and a new
        connection fits its rate; otherwise None (never waits)."""

    async def release(self, slot: Slot) -> None: ...

    async def cool_down(self, host: str, seconds: float) -> None:
        """The host said 421: leave it alone for a while (every process sharing the budget)."""

    async def wait(self, hosts: list[str], timeout: float) -> None:
        """Sleep until a slot at one of `hosts` may have freed up (or `timeout`)."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class LocalHostSlots:
    """Slots for one process: counts and token buckets in memory, waiters woken on release."""

    connect_burst: int = 8
    connect_rate: float = 2.0
    _open: Counter[str] = field(default_factory=Counter)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _cooling: dict[str, float] = field(default_factory=dict)
    _waiters: dict[str, set[asyncio.Future[None]]] = field(default_factory=dict)

    async def try_acquire(self, host: str, limit: int) -> Slot | None:
        now = time.monotonic()
        if self._cooling.get(host, 0.0) > now or self._open[host] >= limit:
            return None
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(float(self.connect_burst), now)
        bucket.tokens = min(float(self.connect_burst), bucket.tokens + (now - bucket.updated) * self.connect_rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return None
        bucket.tokens -= 1.0
        self._open[host] += 1
        return Slot(host)

    async def release(self, slot: Slot) -> None:
        self._open[slot.host] -= 1
        if self._open[slot.host] <= 0:
            del self._open[slot.host]
        for waiter in self._waiters.pop(slot.host, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def cool_down(self, host: str, seconds: float) -> None:
        self._cooling[host] = max(self._cooling.get(host, 0.0), time.monotonic() + seconds)

    async def wait(self, hosts: list[str], timeout: float) -> None:
        """Woken by a release at one of `hosts`; the timeout covers refilling rate tokens and cool-downs."""
        waiter = asyncio.get_running_loop().create_future()
        for host in hosts:
            self._waiters.setdefault(host, set()).add(waiter)
        try:
            async with asyncio.timeout(self._next_change(hosts, timeout)):
                await waiter
        except TimeoutError:
            pass
        finally:
            for host in hosts:
                waiting = self._waiters.get(host)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._waiters[host]

    def _next_change(self, hosts: list[str], timeout: float) -> float:
        """The soonest moment a host could take a session without a release: a token or a cool-down."""
        now = time.monotonic()
        soonest = timeout
        for host in hosts:
            cooling = self._cooling.get(host, 0.0) - now
            if cooling > 0:
                soonest = min(soonest, cooling)
            bucket = self._buckets.get(host)
            if bucket is not None and bucket.tokens < 1.0 and self._open[host] == 0:
                soonest = min(soonest, (1.0 - bucket.tokens) / self.connect_rate)
        return max(0.001, soonest)

    def open_sessions(self, host: str) -> int:
        return self._open[host]
