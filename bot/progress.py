"""A channel message updated in place, no faster than Slack's rate limits allow.

`chat.update` is Tier 3 (about 50 a minute per workspace, shared by every message), so each
progress message is updated at most once every `min_interval` seconds and every team shares a
budget of `per_minute` updates. Ticks that come too soon are dropped, not queued: the next tick
carries newer figures anyway. The final update always goes out, after waiting out the interval.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.message_slots import SharedSlots

MIN_INTERVAL = 2.05  # 2 s, plus a margin so that jitter on the way never brings two updates closer at Slack
TEAM_UPDATES_PER_MINUTE = 40


class TeamBudget:
    """A sliding one-minute window of chat.update calls per team."""

    def __init__(self, per_minute: int = TEAM_UPDATES_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._sent: dict[str, deque[float]] = {}

    def _window(self, team: str) -> deque[float]:
        window = self._sent.setdefault(team, deque())
        now = time.monotonic()
        while window and window[0] <= now - 60:
            window.popleft()
        return window

    def try_take(self, team: str) -> bool:
        window = self._window(team)
        if len(window) >= self.per_minute:
            return False
        window.append(time.monotonic())
        return True

    async def take(self, team: str) -> None:
        while not self.try_take(team):
            await asyncio.sleep(max(0.05, 60 - (time.monotonic() - self._window(team)[0])))


class ProgressMessage:
    def __init__(self, client: AsyncWebClient, *, team: str, channel: str, ts: str, budget: TeamBudget,
                 min_interval: float = MIN_INTERVAL, slots: SharedSlots | None = None) -> None:
        self.client = client
        self.team = team
        self.channel = channel
        self.ts = ts
        self.budget = budget
        self.min_interval = min_interval
        self.slots = slots  # with several web processes (REDIS_URL): the spacing held across all of them
        self._last = time.monotonic()  # the postMessage that created it counts as an update
        self.updates = 0
        self._lock = asyncio.Lock()

    async def tick(self, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Show intermediate progress if the interval and the team budget allow; else drop it."""
        if self._lock.locked() or time.monotonic() - self._last < self.min_interval or not self.budget.try_take(self.team):
            return False
        async with self._lock:
            if self.slots is not None and not await self.slots.take(self.key):
                return False  # another process updated it just now
            await self._send(text, blocks)
        return True

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.ts}"

    async def ready(self) -> None:
        """Wait until the next update is allowed (the interval since the last one has passed)."""
        while (wait := self.min_interval - (time.monotonic() - self._last)) > 0:
            await asyncio.sleep(wait)

    async def finish(self, text: str, blocks: list[dict[str, Any]]) -> None:
        """A settled state (summary, approval, report): always sent, once the interval has passed."""
        async with self._lock:  # one send at a time, so the interval holds between any two updates
            while (wait := self.min_interval - (time.monotonic() - self._last)) > 0:
                await asyncio.sleep(wait)
            await self.budget.take(self.team)
            if self.slots is not None:
                await self.slots.wait(self.key)
            await self._send(text, blocks)

    async def _send(self, text: str, blocks: list[dict[str, Any]]) -> None:
        self._last = time.monotonic()
        self.updates += 1
        # blocks every time: chat.update with text alone would wipe them
        await self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=blocks)
