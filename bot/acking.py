"""Ack, then keep working in a tracked task: the shape every listener has.

Bolt runs a listener in a bare future and polls every 10 ms for ack(). If the listener raises
after ack() but before that poll, Bolt overwrites the ack with nothing and Slack gets a 404
("unhandled request") although we answered. So each listener runs as a task of the bot's
BackgroundTasks: Bolt's part returns as soon as ack() was called, failures after it are only
logged, and shutdown can cancel what is still running.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.services import BackgroundTasks


def after_ack(tasks: BackgroundTasks) -> Callable[[Callable[..., Awaitable[None]]], Callable[[AsyncArgs], Awaitable[None]]]:
    def decorator(fn: Callable[..., Awaitable[None]]) -> Callable[[AsyncArgs], Awaitable[None]]:
        names = list(inspect.signature(fn).parameters)

        async def listener(args: AsyncArgs) -> None:
            acked = asyncio.Event()

            async def ack(*a: Any, **kw: Any) -> Any:
                try:
                    return await args.ack(*a, **kw)
                finally:
                    acked.set()

            kwargs = {name: ack if name == "ack" else getattr(args, name) for name in names}
            task = tasks.start(fn(**kwargs), name=f"slack-{fn.__name__}")
            waiter = asyncio.ensure_future(acked.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done() and not acked.is_set():
                task.result()  # failed before acking: let Bolt answer 500 and log it

        listener.__name__ = listener.__qualname__ = fn.__name__  # Bolt logs it; no __wrapped__, Bolt would inject its args
        return listener

    return decorator
