"""The durable inbox for platform webhooks: a delivery is stored before the 2xx goes back.

    delivery_id, new = await services.deliveries.accept(cnx.id, "mailerlite", dedupe_key, body=raw,
                                                         headers=headers, url=url, query=query)
    # new is False for a duplicate (same connection and dedupe key): answer 2xx, process nothing
    batch = await services.deliveries.claim(limit=100)      # pending ones, leased to this process
    await services.deliveries.finish(d.id, result={...})    # or .fail(d.id, "why", retry=True)

One INSERT per delivery (unique on connection + dedupe key), so a replayed event is stored
once however many processes receive it. A claimed delivery whose lease lapses (its processor
died) is claimed again. Credentials that arrive with a delivery (an Authorization header, a
`?token=` in the URL) are authenticated by the receiver and not stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.storage.models import WebhookDelivery
from core.storage.sql import default_connection, execute, is_postgres, parse_time, utcnow

SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
SENSITIVE_PARAMS = frozenset({"token", "key", "secret", "api_key"})
PROCESSING_LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Delivery:
    id: int
    connection_id: str
    platform: str
    dedupe_key: str
    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes = field(repr=False)
    state: str = "pending"
    attempts: int = 0
    received_at: datetime | None = None


def _scrub_url(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SENSITIVE_PARAMS])
    return urlunsplit(parts._replace(query=query))


def _row_to_delivery(row: Mapping[str, Any]) -> Delivery:
    def js(value: Any) -> dict:
        return json.loads(value) if isinstance(value, str) else dict(value or {})

    return Delivery(int(row["id"]), row["connection_id"], row["platform"], row["dedupe_key"], row["method"], row["url"],
                    js(row["headers"]), js(row["query"]), bytes(row["body"]), row["state"], int(row["attempts"]),
                    parse_time(row["received_at"]))


class WebhookDeliveries:
    async def accept(self, connection_id: str, platform: str, dedupe_key: str, *, body: bytes, method: str = "POST",
                     url: str = "", headers: Mapping[str, str] | None = None,
                     query: Mapping[str, str] | None = None) -> tuple[int | None, bool]:
        """(delivery id, True) when stored now; (None, False) for a duplicate already stored."""
        kept_headers = {k.lower(): v for k, v in (headers or {}).items() if k.lower() not in SENSITIVE_HEADERS}
        kept_query = {k: v for k, v in (query or {}).items() if k.lower() not in SENSITIVE_PARAMS}
        conn = default_connection()
        _, rows = await execute(
            conn,
            "INSERT INTO webhook_delivery (connection_id, platform, dedupe_key, method, url, headers, query, body, state, "
            "attempts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?) "
            "ON CONFLICT (connection_id, dedupe_key) DO NOTHING RETURNING id",
            [connection_id, platform, dedupe_key[:160], method, _scrub_url(url), json.dumps(kept_headers),
             json.dumps(kept_query), bytes(body), utcnow()],
        )
        return (int(rows[0]["id"]), True) if rows else (None, False)

    async def accept_many(self, items: Sequence[Mapping[str, Any]]) -> list[tuple[int | None, bool]]:
        """`accept` for several deliveries in one INSERT (receivers under load group them: one commit for all).

        Each item has accept's arguments by name; the answers come back in order. Of two items
        with the same connection and key, the first is the one stored.
        """
        if not items:
            return []
        now = utcnow()
        rows = []
        for item in items:
            kept_headers = {k.lower(): v for k, v in (item.get("headers") or {}).items() if k.lower() not in SENSITIVE_HEADERS}
            kept_query = {k: v for k, v in (item.get("query") or {}).items() if k.lower() not in SENSITIVE_PARAMS}
            url = item.get("url") or ""
            rows.append([item["connection_id"], item["platform"], item["dedupe_key"][:160], item.get("method") or "POST",
                         _scrub_url(url) if "?" in url else url, json.dumps(kept_headers), json.dumps(kept_query),
                         bytes(item["body"]), "pending", 0, now])
        conn = default_connection()
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        _, stored = await execute(
            conn,
            "INSERT INTO webhook_delivery (connection_id, platform, dedupe_key, method, url, headers, query, body, state, "
            f"attempts, received_at) VALUES {values} ON CONFLICT (connection_id, dedupe_key) DO NOTHING "
            "RETURNING id, connection_id, dedupe_key",
            [value for row in rows for value in row],
        )
        ids = {(r["connection_id"], r["dedupe_key"]): int(r["id"]) for r in stored}
        answers: list[tuple[int | None, bool]] = []
        for row in rows:
            found = ids.pop((row[0], row[2]), None)
            answers.append((found, True) if found is not None else (None, False))
        return answers

    async def claim(self, limit: int = 100, lease: timedelta = PROCESSING_LEASE) -> list[Delivery]:
        """Up to `limit` deliveries to process, oldest first, leased to the caller."""
        conn = default_connection()
        now = utcnow()
        lock = " FOR UPDATE SKIP LOCKED" if is_postgres(conn) else ""
        _, rows = await execute(
            conn,
            "UPDATE webhook_delivery SET state = 'processing', attempts = attempts + 1, lease_until = ? "
            "WHERE id IN (SELECT id FROM webhook_delivery WHERE state = 'pending' OR "
            f"(state = 'processing' AND lease_until < ?) ORDER BY id LIMIT ?{lock}) "
            "RETURNING id, connection_id, platform, dedupe_key, method, url, headers, query, body, state, attempts, received_at",
            [now + lease, now, limit],
        )
        return sorted((_row_to_delivery(r) for r in rows), key=lambda d: d.id)

    async def renew(self, delivery_ids: list[int], lease: timedelta = PROCESSING_LEASE) -> int:
        """Extend the lease of deliveries still being processed (the processor's heartbeat); how many were renewed."""
        if not delivery_ids:
            return 0
        return await WebhookDelivery.filter(id__in=list(delivery_ids), state="processing").update(lease_until=utcnow() + lease)

    async def finish(self, delivery_id: int, result: Mapping[str, Any] | None = None) -> None:
        await WebhookDelivery.filter(id=delivery_id).update(state="done", processed_at=utcnow(), lease_until=None,
                                                            result=dict(result or {}), error=None)

    async def fail(self, delivery_id: int, error: str, *, retry: bool = True) -> None:
        """A failed attempt: back to pending while attempts remain (and `retry`), else failed for good."""
        row = await WebhookDelivery.filter(id=delivery_id).first()
        if row is None:
            return
        again = retry and row.attempts < MAX_ATTEMPTS
        await WebhookDelivery.filter(id=delivery_id).update(state="pending" if again else "failed", error=error[:2000],
                                                            lease_until=None)

    async def get(self, delivery_id: int) -> Delivery | None:
        rows = await WebhookDelivery.filter(id=delivery_id).values()
        return _row_to_delivery(rows[0]) if rows else None

    async def count(self, state: str | None = None) -> int:
        query = WebhookDelivery.all() if state is None else WebhookDelivery.filter(state=state)
        return await query.count()
