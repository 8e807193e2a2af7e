"""Update slots shared by every web process, so a job's message changes at most once per interval overall.

With REDIS_URL a job's events reach every web process, and each one keeps the message up to date
with its own `ProgressMessage` clock. To keep the 2 s spacing across them, an update first takes
its time slot in the core's idempotency records: slots are `interval` long, and taking slot k
also reserves k+1, so the next update anywhere falls in slot k+2 or later, more than one
interval after this one. A progress tick that cannot have its slot is dropped (a newer one
follows); a settled state waits for a free slot.
"""

from __future__ import annotations

import asyncio
import math
import time

from core.idempotency import Idempotency

SCOPE = "slack-message-slot"


class SharedSlots:
    def __init__(self, idempotency: Idempotency, interval: float) -> None:
        self.idempotency = idempotency
        self.interval = interval

    def _slot(self) -> int:
        return math.floor(time.time() / self.interval)

    async def take(self, key: str) -> bool:
        """Claim the current slot (and reserve the next) for message `key`; False if another process has it."""
        slot = self._slot()
        if not await self.idempotency.claim(SCOPE, f"{key}:{slot}"):
            return False
        await self.idempotency.claim(SCOPE, f"{key}:{slot + 1}")
        return True

    async def wait(self, key: str) -> None:
        """Take the first free slot from now on, however long that is."""
        while not await self.take(key):
            await asyncio.sleep(self.interval - (time.time() % self.interval) + 0.01)
