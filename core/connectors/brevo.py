"""Brevo (formerly Sendinblue), API v3: `api-key` header, lists and segments, offset paging.

Quirks: unsubscribing is the account-wide `emailBlacklisted: true` flag (set in batches through
`POST /contacts/batch`), so a blacklisted contact stays in its lists and list paging stays stable
while we unsubscribe; members() drops blacklisted and list-unsubscribed contacts itself.
Contacts endpoints allow 10 requests/s, every other endpoint only 100 an hour. Marketing webhooks
(`listAddition`) are unsigned, but Brevo sends the bearer token we give it at registration.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import quote

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
    InvalidCredentials,
    ListNotFound,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import Limits, RateLimit
from core.connectors.webhook_auth import choose_secret

LISTS_PAGE = 50  # spec: GET /contacts/lists and /contacts/segments, limit maximum 50
MEMBERS_PAGE = 500  # spec: GET /contacts/lists/{listId}/contacts, limit maximum 500
SEGMENT_PAGE = 1000  # spec: GET /contacts?segmentId=, limit maximum 1000
# The spec gives POST /contacts/batch no maximum; 100 per call is our conservative choice.
BATCH_SIZE = 100
SEGMENT_PREFIX = "segment:"  # lists and segments are separate id spaces in Brevo
# Brevo retries a failed delivery after 10 min, 1 h, 2 h and 8 h (docs "Retry mechanism"),
# so a genuine delivery is at most ~11 h 10 min old; anything older is a replay.
WEBHOOK_MAX_AGE = timedelta(hours=12)
WEBHOOK_MAX_SKEW = timedelta(minutes=5)  # an event stamped in the future beyond clock skew is forged
LIST_ADDITION = {"list_addition", "listAddition"}  # docs show "list_addition"; the API's event name is listAddition
# docs "API rate limits": every endpoint outside /v3/contacts (account, webhooks) gets 100 per hour.
OTHER_ENDPOINTS_LIMIT = RateLimit(requests=100, per_seconds=3600.0, sliding=True)


@register
class Brevo(Connector):
    slug = "brevo"
    display_name = "Brevo"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="API key",
            help=(
                "In Brevo: click your account name (top right) > SMTP & API > API keys tab, then "
                "Generate a new API key; it starts with xkeysib- (the SMTP key, xsmtpsib-, will not work)."
            ),
            placeholder="xkeysib-...",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.LIST, ListKind.SEGMENT),
        webhooks="token",
        webhook_registration=True,
    )
    default_base_url = "https://api.brevo.com/v3"
    # docs: all /v3/contacts endpoints 10 RPS (General plan); a sliding window never puts more than 10 in any second.
    rate_limit = RateLimit(requests=10, per_seconds=1.0, sliding=True)
    endpoint_limits: ClassVar[Mapping[str, Limits]] = {"other": OTHER_ENDPOINTS_LIMIT}
    webhook_steps = (
        "In Brevo open Settings > Webhooks > Marketing, click Add a new webhook, paste the URL, "
        "tick 'Contact added to list' and save."
    )

    # --- configuration -------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # one global host; user input never chooses where the key goes
        key = cleaned["api_key"]

        def bad(reason: str) -> InvalidConfiguration:
            return InvalidConfiguration(reason, field="api_key", platform=cls.slug)

        if key.startswith("xsmtpsib-"):
            raise bad("API key is an SMTP key; generate an API key (starting with xkeysib-) under SMTP & API > API keys.")
        if not key.startswith("xkeysib-"):
            raise bad("API key does not look like a Brevo API key; it starts with xkeysib- (SMTP & API > API keys).")
        # Keys seen are xkeysib-<64 hex>-<16 chars>; undocumented, so only length and spaces are checked.
        if len(key) < 30 or any(ch.isspace() for ch in key):
            raise bad("API key looks cut short or has spaces in it; copy it again from SMTP & API > API keys.")
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return cls.default_base_url

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self.credentials["api_key"], "Accept": "application/json"}

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        if status == 401:
            return InvalidCredentials(
                "Brevo rejected the API key; check it under SMTP & API > API keys, and that this server's IP is authorised if the account restricts IPs.",
                platform=self.slug,
                status=status,
            )
        if status in (400, 402, 405, 409, 422, 425) and isinstance(body, dict) and body.get("message"):
            message = " ".join(str(body["message"]).split())[:200].rstrip(".")
            return ConnectorError(f"Brevo refused the request: {message}.", platform=self.slug, status=status)
        return None

    def limits_for(self, method: str, path: str, params: Mapping[str, Any] | None) -> tuple[str, ...]:
        """Requests outside /contacts also share Brevo's 100-an-hour budget."""
        return () if path.lstrip("/").startswith("contacts") else ("other",)

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        body = (await self.http.request("GET", "account")).json()
        return AccountInfo(account_id=None, name=body.get("companyName") or body.get("email"), can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        offset = 0
        while True:
            params = {"limit": LISTS_PAGE, "offset": offset, "sort": "asc"}
            body = (await self.http.request("GET", "contacts/lists", params=params)).json()
            page = body.get("lists") or []
            for item in page:
                # The spec's example has uniqueSubscribers = totalSubscribers + totalBlacklisted,
                # so totalSubscribers is the reachable count.
                count = item.get("totalSubscribers", item.get("uniqueSubscribers"))
                found.append(PlatformList(str(item["id"]), item.get("name", ""), ListKind.LIST, count))
            offset += len(page)
            if not page or offset >= int(body.get("count") or 0):
                break
        offset = 0
        while True:
            params = {"limit": LISTS_PAGE, "offset": offset, "sort": "asc"}
            body = (await self.http.request("GET", "contacts/segments", params=params)).json()
            page = body.get("segments") or []
            for item in page:
                found.append(PlatformList(f"{SEGMENT_PREFIX}{item['id']}", item.get("segmentName", ""), ListKind.SEGMENT,
                                          await self._segment_count(str(item["id"]))))
            offset += len(page)
            if not page or offset >= int(body.get("count") or 0):
                return found

    async def _segment_count(self, segment_id: str) -> int | None:
        """Segments carry no count; GET /contacts with segmentId reports `count` (blacklisted included)."""
        response = await self.http.request("GET", "contacts", params={"segmentId": segment_id, "limit": 1}, expect=(400, 404))
        if response.status_code >= 400:
            return None
        return int(response.json().get("count") or 0)

    def _page_request(self, list_id: str) -> tuple[str, dict[str, Any], int, int | None]:
        """(path, fixed params, page size, numeric list id for listUnsubscribed) for a list or segment id."""
        raw = list_id[len(SEGMENT_PREFIX):] if list_id.startswith(SEGMENT_PREFIX) else list_id
        if not raw.isdigit():
            raise ListNotFound(f"Brevo has no list or segment with id {list_id}.", platform=self.slug)
        if list_id.startswith(SEGMENT_PREFIX):
            return "contacts", {"segmentId": raw}, SEGMENT_PAGE, None
        return f"contacts/lists/{raw}/contacts", {}, MEMBERS_PAGE, int(raw)

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Offset paging, oldest first; stable under our own unsubscribes since blacklisting keeps list membership."""
        path, fixed, size, numeric = self._page_request(list_id)
        offset = 0
        while True:
            params = {**fixed, "limit": size, "offset": offset, "sort": "asc"}
            response = await self.http.request("GET", path, params=params, expect=(400, 404))
            if response.status_code in (400, 404):
                raise ListNotFound(f"Brevo has no list or segment with id {list_id}.", platform=self.slug, status=response.status_code)
            body = response.json()
            page = body.get("contacts") or []
            for item in page:
                if item.get("emailBlacklisted") or (numeric is not None and numeric in (item.get("listUnsubscribed") or [])):
                    continue
                email = item.get("email")
                if email:  # SMS-only contacts have no email
                    yield Contact(id=str(item["id"]), email=email, list_id=list_id)
            offset += len(page)
            if len(page) < size or offset >= int(body.get("count") or 0):
                return

    # --- writing: emailBlacklisted only ----------------------------------------------------
    async def _set_blacklisted(self, contacts: Sequence[Contact], blacklisted: bool) -> ActionOutcome:
        """Batches of contact ids through POST /contacts/batch; contacts known only by email go one by one."""
        outcome = ActionOutcome()
        by_id = [c for c in contacts if c.id.isdigit()]
        for start in range(0, len(by_id), BATCH_SIZE):
            chunk = by_id[start : start + BATCH_SIZE]
            body = {"contacts": [{"id": int(c.id), "emailBlacklisted": blacklisted} for c in chunk]}
            response = await self.http.request("POST", "contacts/batch", json=body, expect=(207, 400, 404))
            if response.status_code in (400, 404):
                # One unknown contact can fail a whole batch; fall back to one call each.
                outcome.merge(await self._set_one_by_one(chunk, blacklisted))
                continue
            failed: set[str] = set()
            if response.status_code == 207:  # "few contacts updated": {"successIds": [...], "failureIds": [...]}
                failed = {str(i) for i in (response.json().get("failureIds") or [])}
            for contact in chunk:
                if contact.id in failed:
                    outcome.failed[contact.id] = "Brevo has no such contact (deleted?)."
                else:
                    outcome.done.append(contact.id)
        outcome.merge(await self._set_one_by_one([c for c in contacts if not c.id.isdigit()], blacklisted))
        return outcome

    async def _set_one_by_one(self, contacts: Sequence[Contact], blacklisted: bool) -> ActionOutcome:
        outcome = ActionOutcome()
        for contact in contacts:
            identifier, kind = self._identifier(contact)
            response = await self.http.request("PUT", f"contacts/{identifier}", params={"identifierType": kind},
                                               json={"emailBlacklisted": blacklisted}, expect=(404,))
            if response.status_code == 404:
                outcome.failed[contact.id] = "Brevo has no such contact (deleted?)."
            else:
                outcome.done.append(contact.id)
        return outcome

    @staticmethod
    def _identifier(contact: Contact) -> tuple[str, str]:
        """Path identifier and identifierType: the contact id when numeric, else the URL-encoded email."""
        if contact.id.isdigit():
            return contact.id, "contact_id"
        return quote(contact.email or contact.id, safe=""), "email_id"

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_blacklisted(contacts, True)

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Clearing emailBlacklisted sends nothing to the contact."""
        return await self._set_blacklisted(contacts, False)

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """Brevo has no batch delete and its DELETE is always permanent; a 404 means already gone."""
        outcome = ActionOutcome()
        for contact in contacts:
            identifier, kind = self._identifier(contact)
            response = await self.http.request("DELETE", f"contacts/{identifier}", params={"identifierType": kind}, expect=(404, 405))
            if response.status_code == 405:
                outcome.failed[contact.id] = "Brevo does not allow deleting the account's own registered email."
            else:
                outcome.done.append(contact.id)
        return outcome

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """The token (WebhookSecrets.url_token) comes as `Authorization: Bearer`, or as ?token= for a hand-pasted URL."""
        expected = secrets.url_token or ""
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.query.get("token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected("Brevo webhook token does not match.", platform=self.slug)
        for item in self._events(request):
            stamp = item.get("ts_event", item.get("ts"))
            if stamp is None:
                continue
            try:
                sent = datetime.fromtimestamp(float(stamp), tz=timezone.utc)
            except (TypeError, ValueError, OverflowError, OSError):
                raise WebhookMalformed("Brevo webhook has an unreadable timestamp.", platform=self.slug) from None
            age = request.received_at - sent
            if age > WEBHOOK_MAX_AGE or age < -WEBHOOK_MAX_SKEW:
                raise WebhookRejected("Brevo webhook is outside the replay window.", platform=self.slug)

    def _events(self, request: WebhookRequest) -> list[dict]:
        """One event object per delivery, or a JSON array of them when the webhook is batched."""
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("Brevo webhook body is not JSON.", platform=self.slug) from None
        items = body if isinstance(body, list) else [body]
        if not items or not all(isinstance(i, dict) for i in items):
            raise WebhookMalformed("Brevo webhook body is not a marketing event.", platform=self.slug)
        return items

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        events: list[WebhookEvent] = []
        for item in self._events(request):
            if item.get("event") not in LIST_ADDITION:
                continue  # opens, clicks, unsubscribes... need no verification
            email = str(item.get("email") or "").strip()
            if "@" not in email:
                raise WebhookMalformed("Brevo list addition webhook carries no email.", platform=self.slug)
            lists = item.get("list_id", item.get("listId"))
            lists = lists if isinstance(lists, list) else [lists] if lists is not None else []
            list_id = str(lists[0]) if lists else None
            # The payload's `id` is the webhook's own id, not the contact's or the event's; so dedupe on content.
            stamp = item.get("ts_event", item.get("ts", item.get("date", "")))
            event_id = f"list_addition:{email.lower()}:{','.join(map(str, lists))}:{stamp}"
            events.append(WebhookEvent(event_id=event_id, email=email, contact_id=None, list_id=list_id))
        return events

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """Brevo marketing webhooks are account-wide (events carry list_id); the bearer token is ours to choose.

        The token is `secret`, else the URL's ?token=, else a new one; deliveries carry it as
        `Authorization: Bearer`, checked against WebhookSecrets.url_token.
        """
        token = choose_secret(url, secret)
        body = {
            "url": url,
            "description": "Listwarden verify-first",
            "events": ["listAddition"],
            "type": "marketing",
            "batched": False,
            "auth": {"type": "bearer", "token": token},
        }
        data = (await self.http.request("POST", "webhooks", json=body)).json()
        if not isinstance(data, dict) or "id" not in data:
            raise ConnectorError("Brevo did not return the new webhook's id.", platform=self.slug)
        return WebhookRegistration(ids=(str(data["id"]),), secrets=WebhookSecrets(url_token=token), url=url)

    async def unregister_webhook(self, webhook_id: str) -> None:
        if webhook_id.isdigit():  # the spec's webhookId is an integer; anything else cannot exist
            await self.http.request("DELETE", f"webhooks/{webhook_id}", expect=(404,))
