"""Recent verification results, so an address that signs up twice in a minute is verified (and charged) once.

Per process, in memory: a result is kept for LISTWARDEN_VERIFY_FIRST_CACHE_SECONDS, and an address
being verified right now is shared with whoever asks for it meanwhile (one SMTP probe, one
credit). A lost cache (a restart) costs one more verification, never a wrong answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from core.verify.result import Result

MAX_ENTRIES = 50_000


def cache_key(email: str) -> str:
    return email.strip().casefold()


class RecentResults:
    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self._done: OrderedDict[str, tuple[float, Result]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[Result]] = {}
        self.hits = 0
        self.misses = 0

    def fresh(self, email: str) -> Result | None:
        key = cache_key(email)
        entry = self._done.get(key)
        if entry is None:
            return None
        if self.clock() - entry[0] > self.ttl:
            del self._done[key]
            return None
        return entry[1]

    def pending(self, email: str) -> asyncio.Future[Result] | None:
        return self._inflight.get(cache_key(email))

    def known(self, email: str) -> bool:
        """A fresh or in-flight result exists: asking for it costs no verification."""
        return self.fresh(email) is not None or self.pending(email) is not None

    async def get(self, email: str, verify: Callable[[str], Awaitable[Result]]) -> tuple[Result, bool]:
        """(result, came from the cache); `verify` runs only when nothing fresh or in flight exists."""
        found = self.fresh(email)
        if found is not None:
            self.hits += 1
            return found, True
        key = cache_key(email)
        inflight = self._inflight.get(key)
        if inflight is not None:
            self.hits += 1
            return await asyncio.shield(inflight), True
        self.misses += 1
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await verify(email)
        except BaseException as err:
            self._inflight.pop(key, None)
            future.set_exception(err)
            future.exception()  # retrieved: waiters get it, nobody else logs it
            raise
        self._inflight.pop(key, None)
        future.set_result(result)
        self._done[key] = (self.clock(), result)
        self._done.move_to_end(key)
        while len(self._done) > MAX_ENTRIES:
            self._done.popitem(last=False)
        return result, False
