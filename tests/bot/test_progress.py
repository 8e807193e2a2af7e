"""Progress messages go through chat.update no faster than the interval, and the final state always lands."""

from __future__ import annotations

import asyncio
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.progress import ProgressMessage, TeamBudget
from tests.bot.fake_slack import BOT_TOKEN


def _blocks(n: int) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"{n} checked"}}]


async def test_ticks_inside_the_interval_are_dropped_and_finish_waits_it_out(slack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.url + "/api/")
    message = ProgressMessage(client, team="T0TEAM", channel="C0CHAN", ts="1.1", budget=TeamBudget(), min_interval=0.3)
    sent = [await message.tick(f"{i}", _blocks(i)) for i in range(50)]  # a burst right after posting
    assert not any(sent)
    await asyncio.sleep(0.31)
    assert await message.tick("51", _blocks(51))
    assert not await message.tick("52", _blocks(52))
    started = time.monotonic()
    await message.finish("done", _blocks(100))
    assert time.monotonic() - started >= 0.25  # waited for the interval instead of updating early
    updates = slack.of("chat.update")
    assert [u.params["text"] for u in updates] == ["51", "done"]
    assert all(u.params["blocks"] for u in updates)  # blocks every time: text alone would wipe them


def test_team_budget_caps_updates_per_minute_across_messages() -> None:
    budget = TeamBudget(per_minute=3)
    assert [budget.try_take("T1") for _ in range(4)] == [True, True, True, False]
    assert budget.try_take("T2")  # another workspace has its own budget
