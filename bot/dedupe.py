"""Drop Slack's retries of an event we already took, keyed on `event_id`, through the core.

Slack re-sends an Events API delivery (with `X-Slack-Retry-Num`) when it saw no 2xx within 3 s,
even if we got the first one, and the retry may land on another process. Bolt does nothing
about it, and in Socket Mode the retry headers are lost (bolt-python#1484), so the key is the
payload's `event_id`, not the header. The claim is the core's idempotency record (one unique
row in the shared database), so every process of an instance agrees on who took the event.

The claim is made after the ack, first thing in the event's task (`bot.acking`): the answer to
Slack never waits for the database, which a running job may be writing to at that moment. A
retry is acked like any delivery and its work skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse

from core.idempotency import Idempotency

SCOPE = "slack-event"
CLAIM = "first_delivery"  # context key: `await context[CLAIM]()` is True for the first delivery only


def claim_events(idempotency: Idempotency) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A Bolt middleware: give each event's listeners the claim on its id, to take after the ack."""

    async def middleware(body: dict[str, Any], context: dict[str, Any],
                         next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:  # noqa: A002 - Bolt's name
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if event_id:
            context[CLAIM] = lambda: idempotency.claim(SCOPE, str(event_id))
        return await next()

    return middleware
