"""HubSpot (CRM v3): private-app token or OAuth with 30-minute access tokens, refreshed here.

Quirks: list memberships carry record ids only, so every page is hydrated through contacts
batch read; list counts are the string `additionalProperties.hs_list_size`; unsubscribing is a
communication-preferences change keyed by email (not by contact, and not per list); delete
archives (restorable for 90 days). Webhooks are app-level settings a private-app token cannot
register, and their `contact.creation` events carry no email, so `resolve_contact` hydrates
them. Deliveries are signed `X-HubSpot-Signature-v3` over method + URI + body + timestamp.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import httpx

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
    WebhookRequest,
    WebhookSecrets,
)
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    RateLimited,
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import RateLimit
from core.connectors.oauth import (
    OAuthExchangeFailed,
    OAuthNotConfigured,
    refresh_tokens,
)

CONTACTS_OBJECT = "0-1"  # objectTypeId of contact lists; lists can also hold companies, deals...
ALL_CONTACTS = "all"  # our list id for "every contact in the portal"
LIST_SEARCH_PAGE = 500  # documented maximum `count` of POST /crm/v3/lists/search
# Memberships allow up to 250 per page; 200 hydrates in exactly two full batch reads.
MEMBERSHIP_PAGE = 200
BATCH = 100  # HubSpot's batch read/archive cap; also used for batch unsubscribe-all (its spec sets none)
CONTACTS_PAGE = 100  # maximum `limit` of GET /crm/v3/objects/contacts
STATIC_TYPES = {"MANUAL": ListKind.STATIC, "SNAPSHOT": ListKind.STATIC, "DYNAMIC": ListKind.ACTIVE}
TOKEN_LIFETIME = 1800  # seconds; HubSpot documents 30-minute access tokens when expires_in is absent
REFRESH_MARGIN = 300  # refresh this many seconds before expiry, so a long page never outlives its token
WEBHOOK_MAX_AGE = timedelta(minutes=5)  # HubSpot: reject v3 timestamps older than 5 minutes
PAT = re.compile(r"pat-[a-z]{2,4}\d{0,2}-[A-Za-z0-9-]{8,}")  # pat-na1-…, pat-eu1-…
LEGACY_KEY = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# The characters HubSpot decodes in the request URI before signing (v3 validation docs).
URI_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
              "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
_URI_ESCAPE = re.compile("|".join(URI_DECODE), re.IGNORECASE)

# Fresh tokens by sha256(refresh token), shared by every connector instance of this process, so
# two instances of one connection that expire together refresh once; plus one lock per loop+key.
_fresh_tokens: dict[str, dict[str, str]] = {}
_refresh_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _refresh_lock(key: str) -> asyncio.Lock:
    locks = _refresh_locks.setdefault(asyncio.get_running_loop(), {})
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


def signing_uri(url: str) -> str:
    """The URI as HubSpot signs it: the listed percent-escapes decoded, nothing else touched."""
    # Lower-case escapes are decoded too; HubSpot shows upper case, and an HMAC cannot be forged either way.
    return _URI_ESCAPE.sub(lambda m: URI_DECODE[m.group(0).upper()], url)


@register
class HubSpot(Connector):
    slug = "hubspot"
    display_name = "HubSpot"
    auth = "api_key_or_oauth"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="Private app access token",
            help=(
                "In HubSpot: Settings > Integrations > Private Apps (Development > Legacy apps in new accounts), "
                "open or create the app with the crm.lists.read, crm.objects.contacts.read/.write and "
                "communication preferences scopes, then Auth > Access token > Show token (starts with pat-). "
                "Leave empty if you sign in with HubSpot instead."
            ),
            required=False,  # OAuth connections carry access/refresh tokens instead
            placeholder="pat-na1-…",
        ),
    )
    capabilities = Capabilities(
        can_unsubscribe=True,
        can_delete=True,
        can_resubscribe=False,  # see resubscribe(): HubSpot needs a legal basis per subscription type
        list_kinds=(ListKind.STATIC, ListKind.ACTIVE, ListKind.ALL),
        webhooks="signed",
        webhook_registration=False,  # app-level settings, not reachable with a portal's token
    )
    default_base_url = "https://api.hubapi.com"  # one host for every data centre (na1, eu1 …)
    # Private apps on Free/Starter: 100 requests per rolling 10 s (Professional/Enterprise 190, public
    # apps 110). 9/s with a burst of 10 never puts more than 100 in any 10-second window.
    rate_limit = RateLimit(requests=90, per_seconds=10.0, burst=10)
    webhook_steps = (
        "HubSpot sends new-contact webhooks to an app, not to an API key. With a private app: in HubSpot open "
        "Settings > Integrations > Private Apps (Development > Legacy apps in newer accounts), open the app, "
        "go to the Webhooks tab, paste the URL as Target URL, click Create subscription, choose Contacts and "
        "the Created event, subscribe and commit the changes; then copy the app's Client secret from its Auth "
        "tab into Listwarden as the webhook signing secret. With a public app, do the same under Apps > "
        "your app > Webhooks in the developer account, with that app's client secret."
    )

    def __init__(self, credentials: Mapping[str, str], **kw: Any) -> None:
        """Options: `token_url` and `settings` (the OAuth token endpoint and client id/secret, for
        emulators), and the common ones (base.py), `on_credentials_change` receiving refreshed tokens."""
        self._batch_unsubscribe: bool | None = None  # None: not tried yet (needs Marketing Hub Enterprise)
        self._lock = asyncio.Lock()  # serialises this instance's refreshes; the shared lock spans instances
        self._refreshes_finished = 0
        self._refresh_error: Exception | None = None  # the last attempt's failure, shared with those who queued for it
        super().__init__(credentials, **kw)

    # --- configuration -----------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # never let stored credentials choose where the token goes
        token = cleaned.get("api_key")
        if token:
            if token.lower().startswith("bearer "):
                token = token[7:].strip()
            if LEGACY_KEY.fullmatch(token):
                raise InvalidConfiguration(
                    "That looks like a HubSpot API key or client secret, which cannot be used here; paste a private "
                    "app access token (it starts with pat-) from Settings > Integrations > Private Apps.",
                    field="api_key",
                    platform=cls.slug,
                )
            if not PAT.fullmatch(token):
                raise InvalidConfiguration(
                    "Private app access token does not look like a HubSpot token (it starts with pat- and has no "
                    "spaces); copy it from the app's Auth tab under Settings > Integrations > Private Apps.",
                    field="api_key",
                    platform=cls.slug,
                )
            cleaned["api_key"] = token
            return cleaned
        if not cleaned.get("access_token"):
            raise InvalidConfiguration(
                "Private app access token is required, or sign in with HubSpot instead.",
                field="api_key",
                platform=cls.slug,
            )
        # (A token response's expires_in became expires_at in the base class; a stale one is caught by the 401 path.)
        if "expires_at" in cleaned:
            try:
                float(cleaned["expires_at"])
            except ValueError:
                raise InvalidConfiguration(
                    "The stored HubSpot token expiry is not a number; reconnect HubSpot.", field="expires_at", platform=cls.slug
                ) from None
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return cls.default_base_url

    @property
    def is_oauth(self) -> bool:
        return not self.credentials.get("api_key")

    def auth_headers(self) -> dict[str, str]:
        token = self.credentials.get("api_key") or self.credentials.get("access_token", "")
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def rate_limit_key(self) -> str:
        """Limits are per app and portal: key on what survives a token refresh (never the token itself)."""
        material = self.credentials.get("api_key") or self.credentials.get("refresh_token") or self.credentials.get("access_token", "")
        return f"{self.slug}:{self.base_url}:{_digest(material)[:16]}"

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        category = body.get("category") if isinstance(body, dict) else None
        if status == 401:
            if self.is_oauth:
                return InvalidCredentials("HubSpot no longer accepts this connection's sign-in; reconnect HubSpot.",
                                          platform=self.slug, status=status)
            return InvalidCredentials(
                "HubSpot rejected the private app access token (rotated, or the app was deleted); paste a current one "
                "from Settings > Integrations > Private Apps.",
                platform=self.slug,
                status=status,
            )
        if status == 403 and category == "MISSING_SCOPES":
            scopes = ", ".join(self._missing_scopes(body)) or "a required"
            if write:
                return InsufficientScope(
                    f"This HubSpot connection lacks the {scopes} scope, so it cannot make changes; Verify Only still works.",
                    platform=self.slug,
                    status=status,
                )
            return InsufficientScope(
                f"This HubSpot connection lacks the {scopes} scope needed to read; add it to the app and connect again.",
                platform=self.slug,
                status=status,
            )
        return None

    @staticmethod
    def _missing_scopes(body: dict) -> list[str]:
        """Scope names from the error context (they are not secrets), deduplicated, in order."""
        found: list[str] = []
        contexts = [body.get("context") or {}] + [(e or {}).get("context") or {} for e in body.get("errors") or [] if isinstance(e, dict)]
        for context in contexts:
            if not isinstance(context, dict):
                continue
            for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
                for scope in context.get(key) or []:
                    if isinstance(scope, str) and re.fullmatch(r"[a-z0-9._-]{1,80}", scope) and scope not in found:
                        found.append(scope)
        return found[:3]

    # --- OAuth: refresh shortly before expiry, and once on an expired-token 401 ---------------
    def _expires_at(self) -> float | None:
        value = self.credentials.get("expires_at")
        return float(value) if value else None

    def _needs_refresh(self) -> bool:
        expires = self._expires_at()
        return self.is_oauth and expires is not None and expires - time.time() < REFRESH_MARGIN

    async def _refresh(self, failed_token: str | None = None) -> None:
        """Trade the refresh token for a new access token; concurrent callers share one refresh."""
        refresh_token = self.credentials.get("refresh_token")
        if not refresh_token:
            raise InvalidCredentials("The HubSpot sign-in has expired and cannot be renewed; reconnect HubSpot.", platform=self.slug)
        key = _digest(refresh_token)
        finished_before = self._refreshes_finished
        async with self._lock, _refresh_lock(key):
            if self._refreshes_finished != finished_before and self._refresh_error is not None:
                raise self._refresh_error  # the refresh we queued behind just failed: do not hammer HubSpot
            current = self.credentials.get("access_token")
            cached = _fresh_tokens.get(key)
            if (cached and cached["access_token"] not in (current, failed_token)
                    and float(cached["expires_at"]) - time.time() > REFRESH_MARGIN):
                await self._adopt(cached)  # another instance of this connection refreshed meanwhile
                return
            if failed_token is None and not self._needs_refresh():
                return  # refreshed while we waited for the lock
            if failed_token is not None and current != failed_token:
                return
            self._refresh_error = None
            try:
                tokens = await refresh_tokens("hubspot", refresh_token, settings=self.options.get("settings"),
                                              token_url=self.options.get("token_url"))
            except OAuthExchangeFailed as exc:
                self._refresh_error = self._refresh_failure(exc)
                raise self._refresh_error from None
            except OAuthNotConfigured as exc:
                self._refresh_error = InvalidConfiguration(str(exc), platform=self.slug)
                raise self._refresh_error from None
            finally:
                self._refreshes_finished += 1
            fresh = {
                "access_token": tokens["access_token"],
                "refresh_token": tokens.get("refresh_token") or refresh_token,
                "expires_at": tokens.get("expires_at") or str(int(time.time() + TOKEN_LIFETIME)),
            }
            now = time.time()
            for stale in [k for k, v in _fresh_tokens.items() if float(v["expires_at"]) < now]:
                del _fresh_tokens[stale]  # keep the cache to live tokens only
            _fresh_tokens[key] = fresh
            if fresh["refresh_token"] != refresh_token:
                _fresh_tokens[_digest(fresh["refresh_token"])] = fresh
            await self._adopt(fresh)

    def _refresh_failure(self, exc: OAuthExchangeFailed) -> Exception:
        """A refused refresh means reconnect; an unreachable or failing token endpoint means try later."""
        if exc.retryable:
            return PlatformUnavailable("HubSpot could not renew the sign-in just now; try again shortly.", platform=self.slug)
        return InvalidCredentials(
            "HubSpot refused to renew this connection's sign-in (access was revoked or the app uninstalled); reconnect HubSpot.",
            platform=self.slug,
        )

    async def _adopt(self, tokens: Mapping[str, str]) -> None:
        await self.update_credentials({k: tokens[k] for k in ("access_token", "refresh_token", "expires_at")})

    # --- PlatformHttp hooks: a fresh OAuth token, one refresh after an expired-token 401, 429 policies ---
    async def before_request(self) -> None:
        if self._needs_refresh():
            await self._refresh()

    async def on_unauthorized(self, response: httpx.Response) -> bool:
        """An OAuth 401 with category EXPIRED_AUTHENTICATION is worth one refresh and one retry."""
        if not self.is_oauth or not self.credentials.get("refresh_token"):
            return False
        try:
            category = response.json().get("category")
        except (ValueError, AttributeError):
            return False
        if category != "EXPIRED_AUTHENTICATION":
            return False
        used = response.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        await self._refresh(failed_token=used)
        return True

    def retry_after(self, response: httpx.Response) -> float | ConnectorError | None:
        """`policyName` says which limit: the daily one will not lift within a call, so say so at once;
        the rolling ones free up within `X-HubSpot-RateLimit-Interval-Milliseconds` (search: a second)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        policy = str(body.get("policyName") or "").upper() if isinstance(body, dict) else ""
        if "DAILY" in policy:
            return RateLimited(
                "HubSpot's daily API limit for this account is used up; it resets at midnight in the account's time zone, "
                "so try again then.",
                platform=self.slug,
                status=429,
            )
        if response.headers.get("retry-after"):
            return None  # the standard header wins when HubSpot sends one
        try:
            raw = response.headers.get("x-hubspot-ratelimit-interval-milliseconds") or "0"
            interval = float(raw.split(",")[0]) / 1000  # a repeated header arrives comma-joined
        except ValueError:
            interval = 0.0
        if interval > 0:
            return interval  # a rolling window is surely free again after one interval
        if policy == "SECONDLY":
            return 1.0
        return None  # unknown: backoff

    # HubSpot sends X-HubSpot-RateLimit-Remaining but no reset time, and its window rolls, so there is no
    # moment to wait for; the client-side bucket keeps us under it and a 429 is waited out above.
    def window_spent(self, response: httpx.Response) -> float | None:
        return None

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        await self.http.request("GET", "crm/v3/objects/contacts", params={"limit": 1, "archived": "false"})
        return AccountInfo(account_id=None, can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        offset = 0
        while True:
            query = {"offset": offset, "count": LIST_SEARCH_PAGE, "query": "",
                     "processingTypes": list(STATIC_TYPES), "additionalProperties": ["hs_list_size"]}
            body = (await self.http.request("POST", "crm/v3/lists/search", json=query, write=False)).json()
            for item in body.get("lists") or []:
                kind = STATIC_TYPES.get(str(item.get("processingType")))
                if str(item.get("objectTypeId")) != CONTACTS_OBJECT or kind is None:
                    continue  # company/deal lists hold no subscribers
                found.append(PlatformList(str(item["listId"]), item.get("name") or "", kind, self._list_size(item)))
            next_offset = body.get("offset")
            if not body.get("hasMore") or not isinstance(next_offset, int) or next_offset <= offset:
                break
            offset = next_offset
        found.append(PlatformList(ALL_CONTACTS, "All contacts", ListKind.ALL, await self._count_all()))
        return found

    @staticmethod
    def _list_size(item: Mapping[str, Any]) -> int | None:
        size = (item.get("additionalProperties") or {}).get("hs_list_size", item.get("size"))
        try:
            return int(size) if size is not None else None
        except (TypeError, ValueError):
            return None

    async def _count_all(self) -> int | None:
        """`total` of a one-result contacts search: the whole portal without paging through it."""
        search = {"filterGroups": [], "sorts": [], "properties": ["email"], "limit": 1, "after": "0"}
        body = (await self.http.request("POST", "crm/v3/objects/contacts/search", json=search, write=False)).json()
        total = body.get("total")
        return int(total) if isinstance(total, int) else None

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Memberships page by page, each page hydrated to emails; opted-out contacts are skipped."""
        if list_id == ALL_CONTACTS:
            async for contact in self._all_contacts():
                yield contact
            return
        if not list_id.isdigit():
            raise ListNotFound(f"HubSpot has no list with id {list_id[:40]}.", platform=self.slug, status=404)
        response = await self.http.request("GET", f"crm/v3/lists/{list_id}", expect=(400, 404))
        if response.status_code >= 400:
            raise ListNotFound(f"HubSpot has no list with id {list_id}.", platform=self.slug, status=404)
        if str((response.json().get("list") or {}).get("objectTypeId")) != CONTACTS_OBJECT:
            raise ListNotFound(f"HubSpot list {list_id} is not a contact list.", platform=self.slug, status=404)
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": MEMBERSHIP_PAGE}
            if after:
                params["after"] = after
            response = await self.http.request("GET", f"crm/v3/lists/{list_id}/memberships", params=params, expect=(404,))
            if response.status_code == 404:
                raise ListNotFound(f"HubSpot has no list with id {list_id}.", platform=self.slug, status=404)
            body = response.json()
            ids = [str(r["recordId"]) for r in body.get("results") or [] if r.get("recordId") is not None]
            emails: dict[str, str] = {}
            try:
                async with asyncio.TaskGroup() as group:  # one page's batch reads in parallel; a failure cancels the rest
                    tasks = [group.create_task(self._hydrate(ids[i : i + BATCH])) for i in range(0, len(ids), BATCH)]
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None  # callers expect our one error, not a group
            for task in tasks:
                emails.update(task.result())
            for record_id in ids:
                if record_id in emails:
                    yield Contact(id=record_id, email=emails[record_id], list_id=list_id)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    async def _hydrate(self, ids: list[str]) -> dict[str, str]:
        """Emails of up to 100 contacts; archived ones come back as 207 errors and are left out."""
        if not ids:
            return {}
        # hs_email_optout is read (never written) so members already opted out of all email are skipped.
        body = {"properties": ["email", "hs_email_optout"], "propertiesWithHistory": [], "inputs": [{"id": i} for i in ids]}
        response = await self.http.request("POST", "crm/v3/objects/contacts/batch/read", json=body, write=False)
        found: dict[str, str] = {}
        for item in response.json().get("results") or []:
            contact = self._contact(item)
            if contact is not None:
                found[contact.id] = contact.email
        return found

    @staticmethod
    def _contact(item: Mapping[str, Any], *, skip_opted_out: bool = True) -> Contact | None:
        properties = item.get("properties") or {}
        email = str(properties.get("email") or "").strip()
        if "@" not in email or item.get("id") is None:
            return None  # a contact without an email has nothing to verify
        if skip_opted_out and str(properties.get("hs_email_optout") or "").lower() == "true":
            return None
        return Contact(id=str(item["id"]), email=email)

    async def _all_contacts(self) -> AsyncIterator[Contact]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": CONTACTS_PAGE, "properties": "email,hs_email_optout", "archived": "false"}
            if after:
                params["after"] = after
            body = (await self.http.request("GET", "crm/v3/objects/contacts", params=params)).json()
            for item in body.get("results") or []:
                contact = self._contact(item)
                if contact is not None:
                    yield Contact(id=contact.id, email=contact.email, list_id=ALL_CONTACTS)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    # --- writing: subscription state and archive only ------------------------------------
    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Opt each email out of all HubSpot email (communication preferences v4, channel EMAIL).

        Why v4 unsubscribe-all: it stops every marketing email in one call, whereas v3 works per
        subscription type and cannot opt out portal-wide. The batch form needs Marketing Hub
        Enterprise scopes; without them HubSpot answers 403 MISSING_SCOPES and we fall back to one
        call per address, which every tier has. Already opted out is success either way.
        """
        outcome = ActionOutcome()
        pending: list[Contact] = []
        for contact in contacts:
            if contact.email and "@" in contact.email:
                pending.append(contact)
            else:
                outcome.failed[contact.id] = "HubSpot unsubscribes by email, and this contact has none."
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            if self._batch_unsubscribe is not False:
                try:
                    outcome.merge(await self._unsubscribe_batch(chunk))
                    self._batch_unsubscribe = True
                    continue
                except InsufficientScope:
                    if self._batch_unsubscribe:
                        raise  # the batch scope worked before, so this is a genuine refusal
                    self._batch_unsubscribe = False
            for contact in chunk:
                outcome.merge(await self._unsubscribe_one(contact))
        return outcome

    async def _unsubscribe_batch(self, chunk: list[Contact]) -> ActionOutcome:
        response = await self.http.request("POST", "communication-preferences/v4/statuses/batch/unsubscribe-all",
                                    params={"channel": "EMAIL"}, json={"inputs": [c.email for c in chunk]}, expect=(400,))
        if response.status_code == 400:
            # One address HubSpot will not take must not sink the other 99: go one by one for this chunk.
            outcome = ActionOutcome()
            for contact in chunk:
                outcome.merge(await self._unsubscribe_one(contact))
            return outcome
        body = response.json() if response.content else {}
        by_email = {c.email.lower(): c for c in chunk}
        outcome = ActionOutcome()
        for error in body.get("errors") or []:
            context = (error or {}).get("context") or {}
            values = [v for vs in context.values() if isinstance(vs, list) for v in vs] if isinstance(context, dict) else []
            for value in values:
                contact = by_email.get(str(value).lower())
                if contact is not None:
                    outcome.failed[contact.id] = "HubSpot refused to unsubscribe this address."
        outcome.done.extend(c.id for c in chunk if c.id not in outcome.failed)
        return outcome

    async def _unsubscribe_one(self, contact: Contact) -> ActionOutcome:
        path = f"communication-preferences/v4/statuses/{quote(contact.email, safe='@')}/unsubscribe-all"
        response = await self.http.request("POST", path, params={"channel": "EMAIL"}, expect=(400, 404))
        outcome = ActionOutcome()
        if response.status_code < 300:
            outcome.done.append(contact.id)
            return outcome
        try:
            message = str(response.json().get("message") or "")
        except ValueError:
            message = ""
        if response.status_code == 400 and "already" in message.lower():
            outcome.done.append(contact.id)  # already opted out: the state we want
        else:
            outcome.failed[contact.id] = "HubSpot refused to unsubscribe this address."
        return outcome

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """Archive in batches of 100 (restorable for 90 days); `permanent` uses the GDPR delete.

        Archiving an id that is already archived or gone is accepted by HubSpot, so repeats succeed.
        """
        outcome = ActionOutcome()
        if permanent:
            for contact in contacts:
                # By id, never by email: an unknown email would be put on HubSpot's block list.
                await self.http.request("POST", "crm/v3/objects/contacts/gdpr-delete", json={"objectId": contact.id}, expect=(404,))
                outcome.done.append(contact.id)
            return outcome
        for start in range(0, len(contacts), BATCH):
            chunk = contacts[start : start + BATCH]
            await self.http.request("POST", "crm/v3/objects/contacts/batch/archive", json={"inputs": [{"id": c.id} for c in chunk]})
            outcome.done.extend(c.id for c in chunk)
        return outcome

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        raise UnsupportedAction(
            "HubSpot resubscribes only per subscription type with a legal basis for each contact, which Listwarden "
            "cannot state for them; resubscribe them in HubSpot if they asked to be.",
            platform=self.slug,
        )

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """v3: base64 HMAC-SHA256(client secret, method + URI + body + timestamp), timestamp within 5 minutes.

        v1/v2 signatures are not accepted: they carry no timestamp, so a replay could not be refused,
        and HubSpot sends v3 alongside them on every delivery.
        """
        secret = secrets.signing_secret
        if not secret:
            raise WebhookRejected("HubSpot webhook has no app client secret configured.", platform=self.slug)
        signature = request.headers.get("x-hubspot-signature-v3", "").strip()
        stamp = request.headers.get("x-hubspot-request-timestamp", "").strip()
        if not signature or not stamp:
            raise WebhookRejected("HubSpot webhook carries no v3 signature.", platform=self.slug)
        if not stamp.isdigit() or len(stamp) > 16:
            raise WebhookRejected("HubSpot webhook timestamp is unreadable.", platform=self.slug)
        sent = datetime.fromtimestamp(int(stamp) / 1000, tz=timezone.utc)
        received = request.received_at if request.received_at.tzinfo else request.received_at.replace(tzinfo=timezone.utc)
        if abs(received - sent) > WEBHOOK_MAX_AGE:
            raise WebhookRejected("HubSpot webhook is outside the 5-minute replay window.", platform=self.slug)
        message = request.method.upper().encode() + signing_uri(request.url).encode() + request.body + stamp.encode()
        expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise WebhookRejected("HubSpot webhook signature does not match.", platform=self.slug)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """New contacts from a JSON array of events: legacy `contact.creation` or generic `object.creation` on 0-1."""
        try:
            body = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("HubSpot webhook body is not JSON.", platform=self.slug) from None
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise WebhookMalformed("HubSpot webhook body is not an array of events.", platform=self.slug)
        events: list[WebhookEvent] = []
        for item in body:
            kind = item.get("subscriptionType")
            if not (kind == "contact.creation" or (kind == "object.creation" and str(item.get("objectTypeId")) == CONTACTS_OBJECT)):
                continue  # property changes, deletions… need no verification
            object_id = item.get("objectId")
            if isinstance(object_id, bool) or not isinstance(object_id, (int, str)) or not str(object_id).isdigit():
                raise WebhookMalformed("HubSpot contact.creation event carries no contact id.", platform=self.slug)
            event_id = item.get("eventId")
            # HubSpot does not promise eventId is unique on its own; portal + event + object is, and a retry keeps it.
            dedupe = f"{item.get('portalId')}:{event_id}:{object_id}" if event_id is not None else None
            events.append(WebhookEvent(event_id=dedupe, email=None, contact_id=str(object_id)))
        return events

    async def resolve_contact(self, contact_id: str) -> Contact | None:
        """The email of a contact a webhook named only by id; None if it is gone or has no email."""
        if not contact_id.isdigit():
            return None
        response = await self.http.request("GET", f"crm/v3/objects/contacts/{contact_id}", params={"properties": "email"}, expect=(404,))
        if response.status_code == 404:
            return None
        return self._contact(response.json(), skip_opted_out=False)
