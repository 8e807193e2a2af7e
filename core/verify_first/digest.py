"""Per-connection digests of verify-first, for a Slack channel: one message per window at most.

Time is cut into windows of LISTWARDEN_DIGEST_MINUTES. When a window ends, the deliveries
processed in it are added up per connection (their `summary`), and each connection that names a
notice channel and had new subscribers gets one `Digest`, handed to the notifier. A window is
claimed per connection before its digest is sent (a database claim), so however many processes
run, a window is announced once: a channel hears at most once per N minutes, and nothing when
nobody signed up.

The core never imports a transport: the Slack side registers itself with `set_notifier(runtime,
notifier)` (bot/notices.py). The digest links to its details (every subscriber, what was found
and done) at `/webhooks/digest/{token}`, an unguessable link kept for a day.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.cleanup import CATEGORY_LABELS
from core.settings import Settings
from core.storage.sql import default_connection, execute, is_postgres, utcnow
from core.verify.status import Category

log = logging.getLogger(__name__)
SLOT_SCOPE = "verify-first:digest"
LINK_SCOPE = "verify-first:digest-link"
PAST = {"unsubscribe": "unsubscribed", "delete": "deleted", "keep": "kept"}


@dataclass(frozen=True)
class Digest:
    workspace_id: str
    connection_id: str
    connection_name: str
    platform: str
    channel: str
    start: datetime
    end: datetime
    minutes: float
    new: int
    verified: int
    acted: Mapping[str, int] = field(default_factory=dict)  # "invalid:unsubscribe" -> n
    failed: Mapping[str, int] = field(default_factory=dict)
    whitelisted: int = 0
    not_verified: int = 0
    link: str | None = None

    @staticmethod
    def _what(key: str) -> tuple[str, str]:
        because, _, action = key.partition(":")
        try:
            label = CATEGORY_LABELS[Category(because)].lower()
        except ValueError:
            label = {"blacklist": "blacklisted"}.get(because, because or "other")
        return label, action

    def parts(self) -> list[str]:
        out = []
        for key, n in sorted(self.acted.items(), key=lambda kv: -kv[1]):
            label, action = self._what(key)
            out.append(f"{n:,} {label} {PAST.get(action, action)}")
        return out

    def problems(self) -> list[str]:
        out = []
        for key, n in sorted(self.failed.items(), key=lambda kv: -kv[1]):
            label, action = self._what(key)
            out.append(f"{n:,} {label} could not be {PAST.get(action, action)}")
        if self.not_verified:
            out.append(f"{self.not_verified:,} not verified (out of credits)")
        return out

    def text(self) -> str:
        """e.g. "38 new subscribers verified in the last 15 min: 3 invalid unsubscribed, 1 disposable deleted"."""
        noun = "subscriber" if self.new == 1 else "subscribers"
        head = f"{self.new:,} new {noun} verified in the last {self.minutes:g} min"
        parts = self.parts() or ["all kept"]
        if self.whitelisted:
            parts.append(f"{self.whitelisted:,} whitelisted kept unverified")
        text = f"{head}: {', '.join(parts)}"
        problems = self.problems()
        if problems:
            text += f" ({'; '.join(problems)})"
        return text


Notifier = Callable[[Digest], Awaitable[None]]


def _add(total: dict[str, Any], summary: Mapping[str, Any]) -> None:
    for name in ("new", "verified", "whitelisted", "not_verified"):
        total[name] = total.get(name, 0) + int(summary.get(name) or 0)
    for name in ("acted", "failed"):
        counter: Counter[str] = total.setdefault(name, Counter())
        counter.update({k: int(v) for k, v in (summary.get(name) or {}).items()})


class Digests:
    def __init__(self, services, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self.notifier: Notifier | None = None
        self._last_slot: int | None = None

    @property
    def width(self) -> float:
        return max(self.settings.digest_minutes, 0.01) * 60.0

    def window(self, slot: int) -> tuple[datetime, datetime]:
        start = datetime.fromtimestamp(slot * self.width, tz=UTC)
        return start, start + timedelta(seconds=self.width)

    async def run_forever(self) -> None:
        """Once at start (a window that ended while we were down), then just after each window ends."""
        import asyncio

        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("verify-first digests failed")
            now = utcnow().timestamp()
            await asyncio.sleep((int(now // self.width) + 1) * self.width - now + 0.5)

    async def run_once(self, now: datetime | None = None) -> list[Digest]:
        """Send the digests of the window that ended last, once (here or in any other process)."""
        now = now or utcnow()
        slot = int(now.timestamp() // self.width) - 1
        if slot == self._last_slot:
            return []
        start, end = self.window(slot)
        sent = []
        for connection_id, totals in (await self.totals(start, end)).items():
            digest = await self._digest(connection_id, totals, slot, start, end)
            if digest is None:
                continue
            sent.append(digest)
            if self.notifier is not None:
                try:
                    await self.notifier(digest)
                except Exception:
                    log.exception("posting the verify-first digest of %s failed", connection_id)
        self._last_slot = slot
        return sent

    async def totals(self, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        conn = default_connection()
        summary = "result->'summary'" if is_postgres(conn) else "json_extract(result, '$.summary')"
        from core.storage.models import WebhookDelivery

        ids = WebhookDelivery.filter(state="done", processed_at__gte=start, processed_at__lt=end)
        rows = await ids.values_list("id", flat=True)
        out: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(rows), 900):
            part = rows[offset:offset + 900]
            _, found = await execute(conn, f"SELECT connection_id, {summary} AS summary FROM webhook_delivery "
                                           f"WHERE id IN ({', '.join('?' * len(part))})", part)
            for row in found:
                value = row["summary"]
                data = json.loads(value) if isinstance(value, str) else (value or {})
                if data.get("new"):
                    _add(out.setdefault(row["connection_id"], {}), data)
        return out

    async def _digest(self, connection_id: str, totals: dict[str, Any], slot: int, start: datetime,
                      end: datetime) -> Digest | None:
        view = await self.services.connections.find(connection_id)
        if view is None or not view.notice_channel or not totals.get("new"):
            return None
        if not await self.services.idempotency.claim(SLOT_SCOPE, f"{connection_id}:{slot}"):
            return None  # this window was announced already (another process, or before a restart)
        token = secrets.token_urlsafe(18)
        await self.services.idempotency.remember(LINK_SCOPE, token, 200, {
            "connection_id": connection_id, "workspace_id": view.workspace_id,
            "start": start.isoformat(), "end": end.isoformat()})
        return Digest(workspace_id=view.workspace_id, connection_id=connection_id, connection_name=view.name,
                      platform=view.platform, channel=view.notice_channel, start=start, end=end,
                      minutes=self.settings.digest_minutes, new=totals["new"], verified=totals.get("verified", 0),
                      acted=dict(totals.get("acted") or {}), failed=dict(totals.get("failed") or {}),
                      whitelisted=totals.get("whitelisted", 0), not_verified=totals.get("not_verified", 0),
                      link=f"{self.settings.public_url.rstrip('/')}/webhooks/digest/{token}")

    async def details(self, token: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """(what the link is for, every subscriber recorded in that window), or None for an unknown or old link."""
        found = await self.services.idempotency.replay(LINK_SCOPE, token)
        if found is None:
            return None
        about = found[1]
        from core.storage.models import WebhookDelivery

        start, end = datetime.fromisoformat(about["start"]), datetime.fromisoformat(about["end"])
        results = await WebhookDelivery.filter(connection_id=about["connection_id"], state="done", processed_at__gte=start,
                                               processed_at__lt=end).order_by("id").values_list("result", flat=True)
        rows = [r for result in results for r in (result or {}).get("subscribers", [])]
        return about, rows
