"""Kit (formerly ConvertKit): API v4 with `X-Kit-Api-Key`, or v3 with api_key/api_secret parameters.

Quirks: there are no lists, only tags, forms and segments; v4 pages by cursor (`after=end_cursor`,
at most 1000 a page), v3 by page number. Segments can be listed but the API has no call for their
members. There is no delete and no resubscribe, and no batch unsubscribe for API keys (bulk calls
need OAuth): one `POST /v4/subscribers/{id}/unsubscribe` per subscriber. Webhooks are unsigned,
so a token rides in our URL. 120 requests per rolling 60 s per key; a 429 body is plain text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

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
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import RateLimit
from core.connectors.webhook_auth import choose_secret, token_matches, with_url_token

V4_HOST = "https://api.kit.com"
V3_HOST = "https://api.convertkit.com"
PAGE_SIZE = 1000  # v4 docs: per_page default 500, maximum 1000
# Counting costs one request per tag or form; past this many we leave counts unknown to spare the 120/min budget.
COUNT_LIMIT = 25
KINDS = {"tag": ListKind.TAG, "form": ListKind.FORM, "segment": ListKind.SEGMENT}
ACTIVATE = "subscriber.subscriber_activate"
# Events that announce a (possibly) new subscriber; other webhook events need no verification.
SUBSCRIBE_EVENTS = {ACTIVATE, "subscriber.form_subscribe", "subscriber.tag_add"}


def split_list_id(list_id: str) -> tuple[str, str]:
    """("tag" | "form" | "segment", numeric id) from our list id, e.g. "tag:123"."""
    kind, _, raw = list_id.partition(":")
    if kind not in KINDS or not raw.isdigit():
        raise ListNotFound(f"Kit has no tag, form or segment with id {list_id}.", platform="convertkit")
    return kind, raw


@register
class ConvertKit(Connector):
    slug = "convertkit"
    display_name = "Kit (ConvertKit)"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="API key",
            help=(
                "In Kit: Settings > Developer > API keys, then Add a new key (a v4 key, starting kit_, works alone). "
                "Accounts on the older v3 API use the API Key shown on the same page, with the API Secret below."
            ),
            placeholder="kit_...",
        ),
        CredentialField(
            name="api_secret",
            label="API secret (v3 only)",
            help="Only with a v3 API key: in Kit, Settings > Developer > API Secret (Show). Leave empty with a v4 key.",
            required=False,
        ),
    )
    capabilities = Capabilities(
        can_delete=False,
        can_resubscribe=False,
        list_kinds=(ListKind.TAG, ListKind.FORM, ListKind.SEGMENT),
        webhooks="token",
        webhook_registration=True,
    )
    default_base_url = V4_HOST
    # docs: 120 requests per rolling 60 s per API key (v4 and v3); rate 110 + burst 10 never exceeds 120 in a window.
    rate_limit = RateLimit(requests=110, per_seconds=60.0, burst=10)

    def __init__(self, credentials: Mapping[str, str], **kw: Any) -> None:
        super().__init__(credentials, **kw)
        self.version = "v3" if "api_secret" in self.credentials else "v4"

    # --- configuration -------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # fixed hosts; user input never chooses where the key goes

        def bad(reason: str, field: str) -> InvalidConfiguration:
            return InvalidConfiguration(reason, field=field, platform=cls.slug)

        key, secret = cleaned["api_key"], cleaned.get("api_secret")
        if any(ch.isspace() for ch in key) or len(key) < 16:
            raise bad("API key looks cut short or has spaces in it; copy it again from Settings > Developer in Kit.", "api_key")
        if secret is not None:
            if secret.startswith("kit_"):
                raise bad("API secret holds a v4 API key; put it in API key and leave API secret empty.", "api_secret")
            if key.startswith("kit_"):
                cleaned.pop("api_secret")  # a v4 key needs no secret; ignore a stray one
            elif secret == key:
                raise bad("API secret is the same as the API key; the secret is a separate value under Settings > Developer.", "api_secret")
            elif any(ch.isspace() for ch in secret) or len(secret) < 16:
                raise bad("API secret looks cut short or has spaces in it; copy it again from Settings > Developer.", "api_secret")
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return V3_HOST if "api_secret" in credentials else V4_HOST

    def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if "api_secret" not in self.credentials:
            headers["X-Kit-Api-Key"] = self.credentials["api_key"]
        return headers  # v3 authenticates by parameter, see _v3()

    def _v3(self, secret: bool = True, **params: Any) -> dict[str, Any]:
        """v3 parameters: api_secret for subscriber data and webhooks, the public api_key for the rest."""
        key = {"api_secret": self.credentials["api_secret"]} if secret else {"api_key": self.credentials["api_key"]}
        return {**key, **params}

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        if status == 401:
            if self.version == "v3":
                message = "Kit rejected the v3 API key or secret; check both under Settings > Developer."
            else:
                message = "Kit rejected the API key; check it under Settings > Developer (an older v3 key also needs its API secret)."
            return InvalidCredentials(message, platform=self.slug, status=status)
        if status == 422 and isinstance(body, dict):
            errors = body.get("errors") or [body.get("message") or "bad data"]
            detail = " ".join(str(errors[0]).split())[:200].rstrip(".")
            return ConnectorError(f"Kit refused the request: {detail}.", platform=self.slug, status=status)
        return None

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        if self.version == "v3":
            body = (await self.http.request("GET", "v3/account", params=self._v3())).json()
            return AccountInfo(account_id=None, name=body.get("name") or body.get("primary_email_address"), can_write=None)
        body = (await self.http.request("GET", "v4/account")).json()
        account = body.get("account") or {}
        return AccountInfo(account_id=str(account["id"]) if account.get("id") is not None else None,
                           name=account.get("name") or (body.get("user") or {}).get("email"), can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        if self.version == "v3":
            for kind in ("tag", "form"):
                body = (await self.http.request("GET", f"v3/{kind}s", params=self._v3(secret=False))).json()
                for item in body.get(f"{kind}s") or []:
                    found.append(PlatformList(f"{kind}:{item['id']}", item.get("name", ""), KINDS[kind], None))
        else:
            for kind, extra in (("tag", {}), ("form", {"status": "active"}), ("segment", {})):
                async for item in self._v4_pages(f"v4/{kind}s", f"{kind}s", extra):
                    found.append(PlatformList(f"{kind}:{item['id']}", item.get("name", ""), KINDS[kind], None))
        counted: list[PlatformList] = []
        budget = COUNT_LIMIT
        for pl in found:
            if pl.kind is not ListKind.SEGMENT and budget > 0:
                budget -= 1
                pl = PlatformList(pl.id, pl.name, pl.kind, await self._count(pl.id))
            counted.append(pl)
        return counted

    async def subscriber_count(self, list_id: str) -> int | None:
        """One tag's or form's count on demand (lists() counts only the first COUNT_LIMIT); segments have none."""
        kind, _ = split_list_id(list_id)
        if kind == "segment":
            return None
        count = await self._count(list_id)
        if count is None:
            raise ListNotFound(f"Kit has no tag or form with id {list_id}.", platform=self.slug, status=404)
        return count

    async def _count(self, list_id: str) -> int | None:
        """Active subscribers: v4 `include_total_count` on a one-row page, v3 `total_subscriptions`."""
        kind, raw = split_list_id(list_id)
        if self.version == "v3":
            params = self._v3(subscriber_state="active", page=1)
            response = await self.http.request("GET", f"v3/{kind}s/{raw}/subscriptions", params=params, expect=(404,))
            return None if response.status_code == 404 else response.json().get("total_subscriptions")
        params = {"status": "active", "per_page": 1, "include_total_count": "true"}
        response = await self.http.request("GET", f"v4/{kind}s/{raw}/subscribers", params=params, expect=(404,))
        return None if response.status_code == 404 else (response.json().get("pagination") or {}).get("total_count")

    async def _v4_pages(self, path: str, key: str, params: Mapping[str, Any], *, list_id: str | None = None) -> AsyncIterator[dict]:
        """Follow `pagination.end_cursor` while `has_next_page`; one page in memory at a time."""
        after: str | None = None
        while True:
            query = {**params, "per_page": PAGE_SIZE, **({"after": after} if after else {})}
            response = await self.http.request("GET", path, params=query, expect=(404,))
            if response.status_code == 404:
                raise ListNotFound(f"Kit has no tag, form or segment with id {list_id or path}.", platform=self.slug, status=404)
            body = response.json()
            for item in body.get(key) or []:
                yield item
            pagination = body.get("pagination") or {}
            after = pagination.get("end_cursor")
            if not pagination.get("has_next_page") or not after:
                return

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        kind, raw = split_list_id(list_id)
        if kind == "segment":
            raise UnsupportedAction("Kit's API cannot list a segment's members; choose a tag or form instead.", platform=self.slug)
        if self.version == "v4":
            async for item in self._v4_pages(f"v4/{kind}s/{raw}/subscribers", "subscribers", {"status": "active"}, list_id=list_id):
                if item.get("state", "active") == "active" and item.get("email_address"):
                    yield Contact(id=str(item["id"]), email=item["email_address"], list_id=list_id)
            return
        page = 1
        while True:
            params = self._v3(subscriber_state="active", page=page, sort_order="asc")
            response = await self.http.request("GET", f"v3/{kind}s/{raw}/subscriptions", params=params, expect=(404,))
            if response.status_code == 404:
                raise ListNotFound(f"Kit has no tag or form with id {list_id}.", platform=self.slug, status=404)
            body = response.json()
            for sub in body.get("subscriptions") or []:
                subscriber = sub.get("subscriber") or {}
                if sub.get("state", "active") == "active" and subscriber.get("state", "active") == "active" and subscriber.get("email_address"):
                    yield Contact(id=str(subscriber["id"]), email=subscriber["email_address"], list_id=list_id)
            if page >= int(body.get("total_pages") or 1):
                return
            page += 1

    # --- writing: unsubscribe only ---------------------------------------------------------
    async def _subscriber_id(self, email: str) -> str | None:
        body = (await self.http.request("GET", "v4/subscribers", params={"email_address": email, "status": "all"})).json()
        found = body.get("subscribers") or []
        return str(found[0]["id"]) if found else None

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """One call per subscriber (Kit's bulk endpoints need OAuth and have no unsubscribe); already cancelled is done."""
        outcome = ActionOutcome()
        for contact in contacts:
            if self.version == "v3":
                body = self._v3(email=contact.email)
                response = await self.http.request("PUT", "v3/unsubscribe", json=body, expect=(404,))
            else:
                sid = contact.id if contact.id.isdigit() else await self._subscriber_id(contact.email)
                if sid is None:
                    outcome.failed[contact.id] = "Kit has no subscriber with this email."
                    continue
                response = await self.http.request("POST", f"v4/subscribers/{sid}/unsubscribe", expect=(404,))
            if response.status_code == 404:
                outcome.failed[contact.id] = "Kit has no such subscriber."
            else:
                outcome.done.append(contact.id)
        return outcome

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        raise UnsupportedAction("Kit has no way to delete subscribers through its API; use Unsubscribe instead.", platform=self.slug)

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        # v4 has no reactivate call; re-adding someone through a form can send its confirmation email.
        raise UnsupportedAction("Kit cannot resubscribe someone through its API without emailing them; reactivate them in Kit instead.",
                                platform=self.slug)

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """Kit signs nothing and sends no event time (created_at is the subscriber's), so: URL token only.

        Replays are harmless beyond dedupe: the event id is the subscriber's id.
        """
        if not token_matches(request.query, secrets.url_token):
            raise WebhookRejected("Kit webhook token does not match.", platform=self.slug)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("Kit webhook body is not JSON.", platform=self.slug) from None
        subscriber = body.get("subscriber") if isinstance(body, dict) else None
        if not isinstance(subscriber, dict):
            raise WebhookMalformed("Kit webhook body has no subscriber.", platform=self.slug)
        email = str(subscriber.get("email_address") or "").strip()
        if "@" not in email or subscriber.get("id") is None:
            raise WebhookMalformed("Kit webhook subscriber has no email or id.", platform=self.slug)
        list_id = None
        for kind in ("tag", "form"):  # tag_add / form_subscribe deliveries name their tag or form (unverified)
            if isinstance(body.get(kind), dict) and body[kind].get("id") is not None:
                list_id = f"{kind}:{body[kind]['id']}"
        contact_id = str(subscriber["id"])
        return [WebhookEvent(event_id=f"subscriber:{contact_id}", email=email, contact_id=contact_id, list_id=list_id)]

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """subscriber_activate for the account; tag_add / form_subscribe when the connection watches one tag or form.

        Kit signs nothing, so `secret` (else the URL's ?token=, else a new one) rides in the URL as ?token=.
        """
        event: dict[str, Any] = {"name": ACTIVATE}
        if list_id:
            kind, raw = split_list_id(list_id)
            if kind == "tag":
                event = {"name": "subscriber.tag_add", "tag_id": int(raw)}
            elif kind == "form":
                event = {"name": "subscriber.form_subscribe", "form_id": int(raw)}
        token = choose_secret(url, secret)
        target = with_url_token(url, token)
        if self.version == "v3":
            body = (await self.http.request("POST", "v3/automations/hooks", json=self._v3(target_url=target, event=event))).json()
            hook = body.get("rule") or {}
        else:
            body = (await self.http.request("POST", "v4/webhooks", json={"target_url": target, "event": event})).json()
            hook = body.get("webhook") or {}
        if hook.get("id") is None:
            raise ConnectorError("Kit did not return the new webhook's id.", platform=self.slug)
        return WebhookRegistration(ids=(str(hook["id"]),), secrets=WebhookSecrets(url_token=token), url=target)

    async def unregister_webhook(self, webhook_id: str) -> None:
        if not webhook_id.isdigit():
            return
        if self.version == "v3":
            await self.http.request("DELETE", f"v3/automations/hooks/{webhook_id}", params=self._v3(), expect=(404,))
        else:
            await self.http.request("DELETE", f"v4/webhooks/{webhook_id}", expect=(404,))
