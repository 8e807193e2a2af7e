"""MailerLite (new API, connect.mailerlite.com): bearer token, groups and segments, cursor paging.

Unsubscribe sets the subscriber's `status`; delete removes the subscriber. New subscribers
arrive through a `subscriber.created` webhook signed with an HMAC-SHA256 `Signature` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone

from core.connectors import register
from core.connectors.base import (
    AccountInfo,
    ActionOutcome,
    Capabilities,
    Connector,
    Contact,
    CredentialField,
    ListKind,
    PlatformList,
    WebhookEvent,
    WebhookRegistration,
    WebhookRequest,
    WebhookSecrets,
)
from core.connectors.errors import (
    ConnectorError,
    InvalidConfiguration,
    ListNotFound,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import RateLimit

PAGE_SIZE = 1000
SEGMENT_PREFIX = "segment:"  # groups and segments share one id space in our list ids
# MailerLite retries a failed delivery after 10, 100 and 1000 s; anything older is a replay.
WEBHOOK_MAX_AGE = timedelta(hours=1)


@register
class MailerLite(Connector):
    slug = "mailerlite"
    display_name = "MailerLite"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="API token",
            help="In MailerLite: Integrations > MailerLite API > Use, then Generate new token (new MailerLite, not Classic).",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.GROUP, ListKind.SEGMENT),
        webhooks="signed",
        webhook_registration=True,
    )
    default_base_url = "https://connect.mailerlite.com"
    # 120 a minute per account. A sliding window: a bucket of 10 refilled at 2/s would allow 130 in a minute.
    rate_limit = RateLimit(requests=120, per_seconds=60.0, sliding=True)

    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)
        token = cleaned["api_key"]
        if len(token) < 20 or any(ch.isspace() for ch in token):
            raise InvalidConfiguration(
                "API token does not look like a MailerLite token; generate one under Integrations > MailerLite API.",
                field="api_key",
                platform=cls.slug,
            )
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return cls.default_base_url

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['api_key']}", "Accept": "application/json"}

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        await self.http.request("GET", "api/subscribers", params={"limit": 0})
        return AccountInfo(account_id=None, can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        for path, kind, count_field in (("api/groups", ListKind.GROUP, "active_count"), ("api/segments", ListKind.SEGMENT, "total")):
            page = 1
            while True:
                body = (await self.http.request("GET", path, params={"limit": 100, "page": page})).json()
                for item in body.get("data") or []:
                    list_id = str(item["id"]) if kind is ListKind.GROUP else f"{SEGMENT_PREFIX}{item['id']}"
                    found.append(PlatformList(list_id, item.get("name", ""), kind, item.get(count_field)))
                meta = body.get("meta") or {}
                if page >= int(meta.get("last_page") or 1):
                    break
                page += 1
        return found

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        if list_id.startswith(SEGMENT_PREFIX):
            path = f"api/segments/{list_id[len(SEGMENT_PREFIX):]}/subscribers"
        else:
            path = f"api/groups/{list_id}/subscribers"
        cursor: str | None = None
        while True:
            params = {"filter[status]": "active", "limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            response = await self.http.request("GET", path, params=params, expect=(404,))
            if response.status_code == 404:
                raise ListNotFound(f"MailerLite has no group or segment with id {list_id}.", platform=self.slug, status=404)
            body = response.json()
            for item in body.get("data") or []:
                yield Contact(id=str(item["id"]), email=item["email"], list_id=list_id)
            cursor = (body.get("meta") or {}).get("next_cursor")
            if not cursor:
                return

    # --- writing: status only ------------------------------------------------------------
    async def _set_status(self, contacts: Sequence[Contact], status: str) -> ActionOutcome:
        """No batch status endpoint; PUT only `status`, so no other field is ever written."""
        outcome = ActionOutcome()
        for contact in contacts:
            response = await self.http.request("PUT", f"api/subscribers/{contact.id}", json={"status": status}, expect=(404,))
            if response.status_code == 404:
                outcome.failed[contact.id] = "MailerLite has no such subscriber (deleted?)."
            else:
                outcome.done.append(contact.id)
        return outcome

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_status(contacts, "unsubscribed")

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_status(contacts, "active")

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """DELETE, or the GDPR `forget` when permanent; a 404 means already gone, which is success."""
        outcome = ActionOutcome()
        for contact in contacts:
            if permanent:
                await self.http.request("POST", f"api/subscribers/{contact.id}/forget", expect=(404,))
            else:
                await self.http.request("DELETE", f"api/subscribers/{contact.id}", expect=(404,))
            outcome.done.append(contact.id)
        return outcome

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """`Signature` is hex HMAC-SHA256 of the raw body with the webhook's secret."""
        if not secrets.signing_secret:
            raise WebhookRejected("MailerLite webhook has no signing secret configured.", platform=self.slug)
        expected = hmac.new(secrets.signing_secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("signature", "").lower().encode(), expected.encode()):
            raise WebhookRejected("MailerLite webhook signature does not match.", platform=self.slug)
        for item in self._events(request):
            stamp = item.get("created_at")
            if not stamp:
                continue
            try:
                sent = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            except ValueError:
                raise WebhookMalformed("MailerLite webhook has an unreadable created_at.", platform=self.slug) from None
            sent = sent if sent.tzinfo else sent.replace(tzinfo=timezone.utc)
            if abs(request.received_at - sent) > WEBHOOK_MAX_AGE:
                raise WebhookRejected("MailerLite webhook is outside the replay window.", platform=self.slug)

    def _events(self, request: WebhookRequest) -> list[dict]:
        """One subscriber object per delivery, or `{"events": [...]}` when batching is on."""
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("MailerLite webhook body is not JSON.", platform=self.slug) from None
        items = body.get("events") if isinstance(body, dict) and "events" in body else [body]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise WebhookMalformed("MailerLite webhook body is not a subscriber event.", platform=self.slug)
        return items

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        events: list[WebhookEvent] = []
        for item in self._events(request):
            if item.get("event", item.get("type")) != "subscriber.created":
                continue
            subscriber = item.get("subscriber") if isinstance(item.get("subscriber"), dict) else item
            email = str(subscriber.get("email") or "").strip()
            if "@" not in email:
                raise WebhookMalformed("MailerLite subscriber.created webhook carries no email.", platform=self.slug)
            contact_id = str(subscriber["id"]) if subscriber.get("id") is not None else None
            events.append(WebhookEvent(event_id=f"created:{contact_id}" if contact_id else None, email=email, contact_id=contact_id))
        return events

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """Account-wide. MailerLite chooses the signing secret itself and returns it (the API takes
        none), so `secret` is not used and the registration carries MailerLite's."""
        body = {"name": "Listwarden verify-first", "events": ["subscriber.created"], "url": url, "enabled": True}
        data = (await self.http.request("POST", "api/webhooks", json=body)).json().get("data") or {}
        if "id" not in data or not data.get("secret"):
            raise ConnectorError("MailerLite did not return the new webhook's id and secret.", platform=self.slug)
        return WebhookRegistration(ids=(str(data["id"]),), secrets=WebhookSecrets(signing_secret=str(data["secret"])), url=url)

    async def unregister_webhook(self, webhook_id: str) -> None:
        await self.http.request("DELETE", f"api/webhooks/{webhook_id}", expect=(404,))
