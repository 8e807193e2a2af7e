"""ActiveCampaign (API v3): account URL + `Api-Token`, offset/keyset paging, per-list unsubscribe.

The account URL is user input that decides where we send the key, so it is held to https on
ActiveCampaign's own domains (no SSRF); only the operator's `base_url` override (emulators,
tests) can point elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
from core.connectors.http import RateLimit
from core.connectors.webhook_auth import choose_secret, token_matches, with_url_token

ALLOWED_DOMAINS = (".api-us1.com", ".activehosted.com")
PAGE_SIZE = 100  # the documented maximum `limit`
STATUS_ACTIVE, STATUS_UNSUBSCRIBED = "1", "2"
# AC does not retry deliveries, so an event older than this is a replay, not a late delivery.
WEBHOOK_MAX_AGE = timedelta(minutes=15)


def validate_account_url(raw: str) -> str:
    """The account URL reduced to `https://host`, or InvalidConfiguration in one sentence."""

    def bad(reason: str) -> InvalidConfiguration:
        return InvalidConfiguration(
            f"API URL {reason}; copy it from Settings > Developer, e.g. https://youraccount.api-us1.com.",
            field="api_url",
            platform="activecampaign",
        )

    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError:
        raise bad("is not a valid URL") from None
    if parts.scheme != "https":
        raise bad("must start with https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise bad("must not contain a user name or password")
    if port not in (None, 443):
        raise bad("must not name a port other than 443")
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
        raise bad("must be your ActiveCampaign account address, not an IP address")
    except ValueError:
        pass
    labels = host.split(".")
    if not host.endswith(ALLOWED_DOMAINS) or any(not label for label in labels) or len(labels) < 3:
        raise bad("must be on api-us1.com or activehosted.com")
    if parts.path.rstrip("/") not in ("", "/api/3") or parts.query or parts.fragment:
        raise bad("must be just the account address")
    return f"https://{host}"


@register
class ActiveCampaign(Connector):
    slug = "activecampaign"
    display_name = "ActiveCampaign"
    credential_fields = (
        CredentialField(
            name="api_url",
            label="API URL",
            help="In ActiveCampaign: Settings > Developer, the URL under API Access (https://youraccount.api-us1.com).",
            secret=False,
            placeholder="https://youraccount.api-us1.com",
        ),
        CredentialField(
            name="api_key",
            label="API key",
            help="In ActiveCampaign: Settings > Developer, the Key under API Access (each user has their own).",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.LIST,),
        webhooks="token",
        webhook_registration=True,
    )
    default_base_url = "https://youraccount.api-us1.com"
    # 5 a second per account, shared by all keys. A sliding window: a bucket of 5 refilled at 5/s would
    # let 10 through inside one second.
    rate_limit = RateLimit(requests=5, per_seconds=1.0, sliding=True)
    webhook_steps = (
        "In ActiveCampaign go to Settings > Developer > Manage Webhooks > Add, paste the URL, "
        "tick the 'Subscribes' event and all initiators, and save."
    )

    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # never let user input choose where the key goes
        cleaned["api_url"] = validate_account_url(cleaned["api_url"])
        key = cleaned["api_key"]
        if not key.isalnum() or len(key) < 20:
            raise InvalidConfiguration(
                "API key does not look like an ActiveCampaign key; copy it from Settings > Developer.",
                field="api_key",
                platform=cls.slug,
            )
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return credentials["api_url"]

    def auth_headers(self) -> dict[str, str]:
        return {"Api-Token": self.credentials["api_key"], "Accept": "application/json"}

    def rate_limit_key(self) -> str:
        return f"{self.slug}:{self.base_url}"  # the limit is per account, whatever the key

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        if status == 403 and not write:
            return InvalidCredentials(
                "ActiveCampaign refused this API key; check the key and API URL in Settings > Developer.",
                platform=self.slug,
                status=status,
            )
        return None

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        body = (await self.http.request("GET", "api/3/users/me")).json()
        user = body.get("user") or {}
        return AccountInfo(account_id=user.get("id"), name=user.get("username"), can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        offset = 0
        while True:
            body = (await self.http.request("GET", "api/3/lists", params={"limit": PAGE_SIZE, "offset": offset})).json()
            page = body.get("lists") or []
            for item in page:
                found.append(PlatformList(str(item["id"]), item.get("name", ""), ListKind.LIST, await self._count(str(item["id"]))))
            offset += len(page)
            if not page or offset >= int((body.get("meta") or {}).get("total", 0)):
                return found

    async def _count(self, list_id: str) -> int:
        params = {"listid": list_id, "status": STATUS_ACTIVE, "limit": 1}
        body = (await self.http.request("GET", "api/3/contacts", params=params)).json()
        return int((body.get("meta") or {}).get("total", 0))

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Keyset paging (`id_greater`), as AC recommends: unsubscribing while paging skips no one."""
        response = await self.http.request("GET", f"api/3/lists/{list_id}", expect=(404,))
        if response.status_code == 404:
            raise ListNotFound(f"ActiveCampaign has no list with id {list_id}.", platform=self.slug, status=404)
        last = 0
        while True:
            params = {"listid": list_id, "status": STATUS_ACTIVE, "limit": PAGE_SIZE, "orders[id]": "ASC", "id_greater": last}
            page = (await self.http.request("GET", "api/3/contacts", params=params)).json().get("contacts") or []
            for item in page:
                yield Contact(id=str(item["id"]), email=item["email"], list_id=list_id)
            if len(page) < PAGE_SIZE:
                return
            last = int(page[-1]["id"])

    # --- writing: list status only ------------------------------------------------------
    async def _set_status(self, contacts: Sequence[Contact], status: str) -> ActionOutcome:
        """AC has no batch endpoint; one contactList status per contact, idempotent by nature."""
        outcome = ActionOutcome()
        for contact in contacts:
            if not contact.list_id:
                outcome.failed[contact.id] = "ActiveCampaign unsubscribes per list, and no list was given."
                continue
            body = {"contactList": {"list": contact.list_id, "contact": contact.id, "status": status}}
            response = await self.http.request("POST", "api/3/contactLists", json=body, expect=(404, 422))
            if response.status_code < 300:
                outcome.done.append(contact.id)
            else:
                outcome.failed[contact.id] = "ActiveCampaign has no such contact or list."
        return outcome

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_status(contacts, STATUS_UNSUBSCRIBED)

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_status(contacts, STATUS_ACTIVE)

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """DELETE is permanent in AC; a 404 means already deleted, which is success."""
        outcome = ActionOutcome()
        for contact in contacts:
            await self.http.request("DELETE", f"api/3/contacts/{contact.id}", expect=(404,))
            outcome.done.append(contact.id)
        return outcome

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """AC signs nothing: a secret token in our URL, and its `date_time` inside a short window."""
        if not token_matches(request.query, secrets.url_token):
            raise WebhookRejected("ActiveCampaign webhook token does not match.", platform=self.slug)
        stamp = self._form(request).get("date_time")
        if stamp:
            try:
                sent = datetime.fromisoformat(stamp)
            except ValueError:
                raise WebhookMalformed("ActiveCampaign webhook has an unreadable date_time.", platform=self.slug) from None
            if sent.tzinfo is None:
                sent = sent.replace(tzinfo=timezone.utc)
            if abs(request.received_at - sent) > WEBHOOK_MAX_AGE:
                raise WebhookRejected("ActiveCampaign webhook is outside the replay window.", platform=self.slug)

    def _form(self, request: WebhookRequest) -> dict[str, str]:
        try:
            return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(request.body)))
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("ActiveCampaign webhook body is not form-encoded.", platform=self.slug) from None

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        form = self._form(request)
        if form.get("type") != "subscribe":
            return []  # other events (update, unsubscribe) need no verification
        email = form.get("contact[email]", "").strip()
        if "@" not in email:
            raise WebhookMalformed("ActiveCampaign subscribe webhook carries no contact email.", platform=self.slug)
        return [
            WebhookEvent(
                event_id=None,
                email=email,
                contact_id=form.get("contact[id]") or None,
                list_id=form.get("list") or None,
            )
        ]

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """One webhook for the list (or all lists); AC signs nothing, so `secret` rides in the URL as ?token=."""
        token = choose_secret(url, secret)
        url = with_url_token(url, token)
        hook = {
            "name": "Listwarden verify-first",
            "url": url,
            "events": ["subscribe"],
            "sources": ["public", "admin", "api", "system"],
            "listid": list_id or "0",
        }
        body = (await self.http.request("POST", "api/3/webhooks", json={"webhook": hook})).json()
        try:
            hook_id = str(body["webhook"]["id"])
        except (KeyError, TypeError):
            raise ConnectorError("ActiveCampaign did not return the new webhook's id.", platform=self.slug) from None
        return WebhookRegistration(ids=(hook_id,), secrets=WebhookSecrets(url_token=token), url=url)

    async def unregister_webhook(self, webhook_id: str) -> None:
        await self.http.request("DELETE", f"api/3/webhooks/{webhook_id}", expect=(404,))
