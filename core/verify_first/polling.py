"""The polling fallback: verify-first for platforms that announce no new subscribers (SendGrid).

Every LISTWARDEN_POLL_SECONDS, each polled connection is asked for the contacts created since its
high-water mark (`connector.contacts_since`, oldest first). Each batch is written to the inbox
as a delivery of our own making (method POLL) before the mark moves past it, so a crash at any
point loses nothing: the batch is either stored (and processed like any webhook delivery) or
asked for again. A contact found twice is processed once (the pipeline's per-subscriber claim).
With several processes, one of them polls a connection per period (a claim on the period).

Platforms date contacts to the whole second (SendGrid), and a contact created later in the
same second as the mark would be missed by "created after the mark"; so each poll asks from
the start of the mark's second and skips the contacts it already stored at the mark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from core.connections import ConnectionView
from core.connectors.base import Contact
from core.settings import Settings
from core.verify_first.registration import Registrar
from core.verify_first.requests import POLL, poll_body, poll_key

log = logging.getLogger(__name__)
BATCH = 500
SLOT_SCOPE = "verify-first:poll"


class Poller:
    def __init__(self, services, settings: Settings, registrar: Registrar, wake: Callable[[], None]) -> None:
        self.services = services
        self.settings = settings
        self.registrar = registrar
        self.wake = wake
        self._at_mark: dict[str, tuple[datetime, set[str]]] = {}  # connection -> (mark, contact ids stored at it)

    async def poll_once(self) -> int:
        found = 0
        for view in await self.services.connections.verify_first_connections():
            if not self.registrar.polled(view):
                continue
            try:
                found += await self.poll(view)
            except Exception:
                log.exception("polling connection %s for new subscribers failed", view.id)
        return found

    async def poll(self, view: ConnectionView, *, force: bool = False) -> int:
        """Store the contacts created since the mark; how many. `force` skips the once-per-period claim."""
        if view.poll_cursor is None:
            await self.registrar.ensure(view)  # sets the mark: new subscribers from now on
            return 0
        period = max(self.settings.poll_seconds, 1.0)
        if not force and not await self.services.idempotency.claim(SLOT_SCOPE, f"{view.id}:{int(time.time() // period)}"):
            return 0  # another process polls this connection in this period
        connector = await self.services.connections.connector(view.workspace_id, view.id)
        mark = view.poll_cursor
        since = mark.replace(microsecond=0) - timedelta(microseconds=1)  # the whole of the mark's second
        known = self._at_mark.get(view.id, (None, set()))
        seen_at_mark = known[1] if known[0] == mark else set()
        batch: list[Contact] = []
        stored = 0
        async for contact in connector.contacts_since(since):
            if contact.created_at is not None and contact.created_at <= mark and contact.id in seen_at_mark:
                continue  # stored by the last poll
            batch.append(contact)
            if len(batch) >= BATCH:
                stored += await self._store(view, batch)
                batch = []
        stored += await self._store(view, batch)
        return stored

    async def _store(self, view: ConnectionView, batch: list[Contact]) -> int:
        if not batch:
            return 0
        await self.services.deliveries.accept(view.id, view.platform, poll_key(batch), body=poll_body(batch), method=POLL,
                                              url=f"poll:{view.platform}")
        marks = [c.created_at for c in batch if c.created_at is not None]
        if marks:
            mark = max(marks)
            await self.services.connections.set_poll_cursor(view.id, mark)
            previous = self._at_mark.get(view.id)
            at_mark = {c.id for c in batch if c.created_at == mark}
            if previous is not None and previous[0] == mark:
                at_mark |= previous[1]
            self._at_mark[view.id] = (mark, at_mark)
        self.wake()
        return len(batch)
