"""From a stored delivery back to what the connector reads, and the keys that make duplicates harmless.

A receiver stores a delivery exactly as it came (less its credentials); the processor rebuilds
the connector's `WebhookRequest` from it and asks the connector to parse it again, so one
platform's format lives in one place (its connector). Platforms we poll instead (SendGrid) get
deliveries of our own making: method `POLL`, a JSON body of the contacts found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.connectors.base import Contact, WebhookEvent, WebhookRequest
from core.connectors.errors import WebhookMalformed
from core.deliveries import Delivery
from core.storage.sql import utcnow

POLL = "POLL"  # the method of a delivery the poller made (not a platform's HTTP request)
MAX_PLAIN_KEY = 150  # longer event ids are hashed: the inbox keeps 160 characters of a dedupe key


def digest(material: bytes | str) -> str:
    data = material.encode("utf-8", "surrogatepass") if isinstance(material, str) else material
    return hashlib.sha256(data).hexdigest()


def dedupe_key(events: Sequence[WebhookEvent], body: bytes) -> str:
    """The platform's event ids (each with whom it names) when every event has one, else a hash of the body.

    A retried delivery repeats its events (or its exact body), so it lands on the same key and
    the inbox stores it once. Whom each event names is part of the key, so that two different
    subscribers can never share one, even where a platform's ids are less unique than documented.
    """
    if events and all(e.event_id for e in events):
        parts = sorted(f"{e.event_id}|{e.contact_id or ''}|{(e.email or '').strip().casefold()}" for e in events)
        if len(parts) == 1 and len(parts[0]) <= MAX_PLAIN_KEY:
            return f"evt:{parts[0]}"
        return f"evt#{digest(chr(10).join(parts))}"
    return f"body#{digest(body)}"


def delivery_request(delivery: Delivery) -> WebhookRequest:
    return WebhookRequest(method=delivery.method, url=delivery.url, headers=dict(delivery.headers),
                          query=dict(delivery.query), body=delivery.body, received_at=delivery.received_at or utcnow())


# --- deliveries the poller makes ------------------------------------------------------------
def poll_body(contacts: Iterable[Contact]) -> bytes:
    rows = [{"id": c.id, "email": c.email, "list_id": c.list_id,
             "created_at": c.created_at.isoformat() if c.created_at else None} for c in contacts]
    return json.dumps({"contacts": rows}, separators=(",", ":")).encode()


def poll_events(body: bytes) -> list[WebhookEvent]:
    try:
        rows = json.loads(body)["contacts"]
        return [WebhookEvent(event_id=f"contact:{r['id']}", email=r["email"], contact_id=str(r["id"]),
                             list_id=r.get("list_id")) for r in rows]
    except (ValueError, KeyError, TypeError):
        raise WebhookMalformed("A polled batch could not be read back.") from None


def poll_key(contacts: Sequence[Contact]) -> str:
    return f"poll#{digest(chr(10).join(c.id for c in contacts))}"


@dataclass(frozen=True)
class Subscriber:
    """One new subscriber a delivery announced, with the email known (hydrated where it had only an id)."""

    email: str
    contact_id: str | None
    list_id: str | None
    event_id: str | None = None

    @property
    def identity(self) -> str:
        """Who this is on the platform, for "processed once": the contact (or address) on its list."""
        who = self.contact_id or self.email.strip().casefold()
        return f"{self.list_id or '*'}:{who}"

    def contact(self) -> Contact:
        return Contact(id=self.contact_id or self.email, email=self.email, list_id=self.list_id)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
