"""Waiting for a platform's asynchronous job (an export, a delete) without hammering it or hanging.

SendGrid's exports and deletes, and any platform job answered 202, finish on the platform's side;
we look at them with a growing interval and stop at a deadline. What a timeout means is the
caller's choice: an export we need is an error, a delete the platform accepted is done anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(
    check: Callable[[], Awaitable[T | None]],
    *,
    interval: float,
    timeout: float,
    max_interval: float | None = None,
    factor: float = 1.5,
) -> T | None:
    """Call `check` until it returns something other than None, and return that.

    The first check is immediate; the waits between checks start at `interval` and grow by
    `factor` up to `max_interval`. None once the next wait would end past `timeout` seconds from
    the start. `check` raises to abandon the job (the job failed on the platform's side).
    """
    deadline = time.monotonic() + timeout
    ceiling = max_interval if max_interval is not None else interval
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() + interval > deadline:
            return None
        await asyncio.sleep(max(0.0, interval))
        interval = min(interval * factor, ceiling)
