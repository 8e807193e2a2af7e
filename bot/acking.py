"""Ack, then keep working in a tracked task: the shape every listener has.

The app runs with `process_before_response=True`, so Bolt awaits each listener and answers
Slack when it returns, instead of running it in a bare future and polling for ack() every
10 ms (a 10 ms floor on every answer, and a listener failing between ack() and that poll turns
the answer into a 404). Each listener therefore runs as a task of the bot's BackgroundTasks and
Bolt's part returns the moment ack() was called: the answer goes out at once, failures after it
are only logged, and shutdown can cancel what is still running. Event listeners take no ack;
Bolt acks them as soon as their task is started. What follows an ack waits for the answers still
pending in this process (`bot.answers_first`), so a burst of requests is answered before it is worked.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.kwargs_injection.async_args import AsyncArgs

from bot.answers_first import AnswersFirst
from bot.dedupe import CLAIM
from bot.services import BackgroundTasks


def after_ack(tasks: BackgroundTasks, answers: AnswersFirst | None = None
              ) -> Callable[[Callable[..., Awaitable[None]]], Callable[[AsyncArgs], Awaitable[None]]]:
    """`answers`: the work after an ack waits for the answers still pending (bot.answers_first)."""

    def decorator(fn: Callable[..., Awaitable[None]]) -> Callable[[AsyncArgs], Awaitable[None]]:
        names = list(inspect.signature(fn).parameters)

        async def listener(args: AsyncArgs) -> None:
            acked = asyncio.Event()

            async def ack(*a: Any, **kw: Any) -> Any:
                try:
                    return await args.ack(*a, **kw)
                finally:
                    acked.set()
                    if answers is not None:
                        await answers.wait()  # this answer, and any other pending, go out first

            kwargs = {name: ack if name == "ack" else getattr(args, name) for name in names}
            if "ack" not in names:  # an event: Bolt acks it as soon as this returns; a retry's work is skipped
                tasks.start(_first_delivery_only(args.context.get(CLAIM), fn(**kwargs), answers),
                            name=f"slack-{fn.__name__}")
                return
            task = tasks.start(fn(**kwargs), name=f"slack-{fn.__name__}")
            waiter = asyncio.ensure_future(acked.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done() and not acked.is_set():
                task.result()  # failed before acking: let Bolt answer 500 and log it

        listener.__name__ = listener.__qualname__ = fn.__name__  # Bolt logs it; no __wrapped__, Bolt would inject its args
        return listener

    return decorator


async def _first_delivery_only(claim: Callable[[], Awaitable[bool]] | None, work: Coroutine[Any, Any, None],
                               answers: AnswersFirst | None) -> None:
    if answers is not None:
        await answers.wait()
    if claim is not None and not await claim():
        work.close()  # Slack's retry of an event already taken (here or in another process)
        return
    await work
