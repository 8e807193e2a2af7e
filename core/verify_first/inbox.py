"""Group commit for the receivers: deliveries that arrive together are stored in one INSERT.

Under load, SQLite's cost is one commit (and one hop to its thread) per statement, not per row.
So receivers hand their delivery to `Inbox.accept` and wait: the first starts a write, those
that arrive while it is under way go together in the next one. Each receiver still answers only
once its own delivery is committed, and no write waits for a timer, so a lone delivery is
stored as fast as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
MAX_BATCH = 200


class Inbox:
    def __init__(self, deliveries, max_batch: int = MAX_BATCH) -> None:
        self.deliveries = deliveries
        self.max_batch = max_batch
        self._waiting: list[tuple[Mapping[str, Any], asyncio.Future[tuple[int | None, bool]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def accept(self, **item: Any) -> tuple[int | None, bool]:
        """(delivery id, True) once stored; (None, False) for a duplicate. Raises if the database did."""
        future: asyncio.Future[tuple[int | None, bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="webhook-inbox")
        return await asyncio.shield(future)  # a caller that goes away leaves its delivery stored (the platform retries)

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch:]
                try:
                    answers = await self.deliveries.accept_many([item for item, _ in batch])
                except Exception as err:
                    log.warning("storing %d webhook deliveries failed: %s", len(batch), err)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._writer = None
