"""Verify-first digests in Slack: at most one message per connection per LISTWARDEN_DIGEST_MINUTES.

The core adds up each connection's window (core/verify_first/digest.py) and hands one `Digest`
to the notifier registered here; this module words it for Slack and posts it to the
connection's notice channel with that workspace's bot client. The core sends one digest per
window; this side also keeps each connection's messages at least N minutes apart in this
process (a digest that comes early waits its turn, it is never dropped or doubled), so a
channel is never spammed whatever the timing.

Wiring, one line in bot/asgi.py once the Bolt app is built (`client_for` as `_client_for` makes it):

    from bot.notices import install as install_notices; install_notices(runtime, _client_for(app, settings))
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.runtime import Runtime
from core.verify_first import Digest, set_notifier

log = logging.getLogger(__name__)
ClientFor = Callable[[str], Awaitable[Any]]  # team id -> slack_sdk AsyncWebClient with its bot token


def blocks(digest: Digest) -> list[dict[str, Any]]:
    text = f":mailbox_with_mail: *{digest.connection_name}*: {digest.text()}"
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if digest.link:
        section["accessory"] = {"type": "button", "text": {"type": "plain_text", "text": "Details"},
                                "url": digest.link, "action_id": "verify_first_digest_details"}
    return [section]


class DigestPoster:
    def __init__(self, client_for: ClientFor, minutes: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client_for = client_for
        self.gap = max(minutes, 0.0) * 60.0
        self.clock = clock
        self._last: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.posted: list[Digest] = []

    async def __call__(self, digest: Digest) -> None:
        """Post now, or (if this connection's last message is less than N minutes old) as soon as it may."""
        wait = self._last.get(digest.connection_id, -1e18) + self.gap - self.clock()
        if wait <= 0:
            await self._post(digest)
            return
        task = asyncio.get_running_loop().create_task(self._post(digest, after=wait), name=f"digest:{digest.connection_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, digest: Digest, after: float = 0.0) -> None:
        lock = self._locks.setdefault(digest.connection_id, asyncio.Lock())
        async with lock:
            if after > 0:
                await asyncio.sleep(after)
            wait = self._last.get(digest.connection_id, -1e18) + self.gap - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            client = await self.client_for(digest.workspace_id)
            await client.chat_postMessage(channel=digest.channel, text=digest.text(), blocks=blocks(digest),
                                          unfurl_links=False, unfurl_media=False)
            self._last[digest.connection_id] = self.clock()
            self.posted.append(digest)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def install(runtime: Runtime, client_for: ClientFor) -> DigestPoster:
    """Register the Slack poster as verify-first's notifier for this process."""
    poster = DigestPoster(client_for, runtime.settings.digest_minutes)
    set_notifier(runtime, poster)

    async def stop(rt: Runtime) -> None:
        await poster.aclose()

    runtime.on_stop(stop)
    return poster
