"""Seen-once records: replaying the first answer to an `Idempotency-Key`, or claiming an event id.

    hit = await services.idempotency.replay("connect:T1:key_1", key)     # (status, body) or None
    await services.idempotency.remember("connect:T1:key_1", key, 201, body)
    if not await services.idempotency.claim("slack-event", event_id): return  # a retry: skip

The first writer wins, across processes (a unique (scope, key) row). Records older than a day
are pruned by the job runner's sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from core.storage.models import IdempotencyRecord
from core.storage.sql import utcnow

KEEP_FOR = timedelta(days=1)


class Idempotency:
    async def replay(self, scope: str, key: str) -> tuple[int, dict[str, Any]] | None:
        row = await IdempotencyRecord.filter(scope=scope, key=key).first()
        if row is None or row.status is None:
            return None
        return row.status, dict(row.body or {})

    async def remember(self, scope: str, key: str, status: int, body: Mapping[str, Any]) -> bool:
        """Store the first answer; False if one was already stored (keep replaying that one)."""
        try:
            await IdempotencyRecord.create(scope=scope, key=key, status=status, body=dict(body))
            return True
        except IntegrityError:
            return False

    async def claim(self, scope: str, key: str) -> bool:
        """True the first time (scope, key) is claimed, False for every repeat."""
        try:
            await IdempotencyRecord.create(scope=scope, key=key)
            return True
        except IntegrityError:
            return False

    async def prune(self, older_than: timedelta = KEEP_FOR, now: datetime | None = None) -> int:
        return await IdempotencyRecord.filter(created_at__lt=(now or utcnow()) - older_than).delete()
