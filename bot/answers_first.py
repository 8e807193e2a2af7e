"""Answers first: work that follows an ack waits while Slack is still waiting for an answer.

One process serves every request on one event loop. Under a burst, the work after one request's
ack (a modal to open, a verification, the App Home to publish) would otherwise run between the
others' answers and hold them up. So the HTTP endpoint counts the requests in flight, and the
work after an ack first waits until none is (at most `MAX_WAIT`, so a steady stream of requests
never starves it). Slack gets every answer as soon as it is ready; the follow-up work is the same,
only a few milliseconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

MAX_WAIT = 0.5  # seconds: far inside what a response_url or trigger_id allows after the ack


class AnswersFirst:
    def __init__(self) -> None:
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around the handling of one HTTP request, until its answer is handed to the server."""
        self.in_flight += 1
        self._event().clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._event().set()

    async def wait(self) -> None:
        """Until no answer is pending (or MAX_WAIT has passed)."""
        if self.in_flight:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAX_WAIT):
                    await self._event().wait()
