"""Klaviyo (JSON:API, revision 2026-07-15): private key plus `revision` header; lists and segments.

Quirks, from the official OpenAPI spec (klaviyo/openapi stable.json) and developers.klaviyo.com:
- Every request carries `revision`; request bodies are JSON:API documents (`application/vnd.api+json`).
- Lists and segments come 10 per page, profiles 100; the cursor arrives inside `links.next`.
- Counts are an `additional-fields[...]=profile_count` extra limited to 1/s and 15/min per endpoint
  (`endpoint_limits`), so `lists()` fetches them within a time budget, leaves the rest None, and
  `subscriber_count()` fetches one on demand (cached for a few minutes).
- Unsubscribe, resubscribe and delete are asynchronous jobs answered 202 with no body and no status
  endpoint, so 202 (accepted) is reported as done.
- The bulk subscription jobs create a profile for an unknown email, so profiles are looked up by id
  first: a deleted profile is never brought back.
- System webhooks exist only on Advanced KDP accounts; elsewhere verify-first polls `GET /api/profiles`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import RateLimit
from core.connectors.webhook_auth import new_secret

REVISION = "2026-07-15"  # the spec revision this module and its emulator are written against
JSONAPI = "application/vnd.api+json"
WRITE_HEADERS = {"Content-Type": JSONAPI}
LIST_PAGE = 10  # documented maximum page[size] of GET /api/lists and /api/segments
PROFILE_PAGE = 100  # documented maximum page[size] of the profile collections
JOB_BATCH = 100  # "Maximum number of profiles per call: 100" (bulk unsubscribe)
SEGMENT_PREFIX = "segment:"  # lists and segments are separate id spaces; ours are one
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILTER_UNSAFE = set('"\\,[]')  # characters we will not put inside a quoted filter value
# The consent topic a new email subscriber raises; "Subscribed to List" is the metric topic some
# accounts also have. Topics are per account, so registration picks the first one the account offers.
NEW_SUBSCRIBER_TOPICS = ("event:klaviyo.subscribed_to_email_marketing", "event:klaviyo.subscribed_to_list")
# Klaviyo-Timestamp is when this request was sent (a retry is re-signed), so a short window is enough.
WEBHOOK_MAX_AGE = timedelta(minutes=5)
WEBHOOKS_UNAVAILABLE = (
    "Klaviyo refused to manage webhooks for this account (system webhooks need an Advanced KDP plan and a key "
    "with webhooks access), so Listwarden will poll for new subscribers instead."
)
MEMBER_FIELDS = ",".join((
    "email",
    "subscriptions.email.marketing.can_receive_email_marketing",
    "subscriptions.email.marketing.list_suppressions",
))


def _tier(burst: int, steady: int) -> tuple[RateLimit, RateLimit]:
    """One of Klaviyo's tiers: `burst` in any second and `steady` in any minute. Klaviyo counts fixed
    windows; sliding ones can never exceed them, wherever their boundaries fall."""
    return RateLimit(burst, 1.0, sliding=True), RateLimit(steady, 60.0, sliding=True)


# Per-endpoint tiers stricter than the account-wide one (values from the spec's x-klaviyo-ratelimit).
ENDPOINT_LIMITS = {
    "list_count": _tier(1, 15),  # GET /api/lists/{id} with additional-fields[list]=profile_count
    "segment_count": _tier(1, 15),  # GET /api/segments/{id} with additional-fields[segment]=profile_count
    "deletion": _tier(3, 60),  # POST /api/data-privacy-deletion-jobs
    "webhooks": _tier(1, 15),  # /api/webhooks and /api/webhook-topics
}
COUNT_BUDGET = 10.0  # seconds lists() may spend waiting for count slots before leaving counts None
COUNT_CACHE_SECONDS = 300.0

_counts: dict[str, tuple[int, float]] = {}  # "<account key>|<list id>" -> (profile_count, monotonic time)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    """The `page[cursor]` inside `links.next`; we re-send our own parameters with it rather than
    follow the URL, so the key never goes to a host the reply names."""
    link = (body.get("links") or {}).get("next")
    if not link:
        return None
    values = parse_qs(urlsplit(str(link)).query).get("page[cursor]")
    return values[0] if values else None


def _detail(body: Any) -> str:
    try:
        error = body["errors"][0]
        text = str(error.get("detail") or error.get("title") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        text = ""
    return " ".join(text.split())[:200]


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@register
class Klaviyo(Connector):
    slug = "klaviyo"
    display_name = "Klaviyo"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="Private API key",
            help=(
                "In Klaviyo: click your account name (bottom left) > Settings > API keys > Create Private API Key; "
                "give it read access to Lists, Segments and Profiles and write access to Lists, Profiles, "
                "Subscriptions and Data Privacy (plus Webhooks for verify-first). It starts with pk_."
            ),
            placeholder="pk_...",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.LIST, ListKind.SEGMENT),
        webhooks="signed",
        webhook_registration=True,
        polling=True,
    )
    default_base_url = "https://a.klaviyo.com"
    # The endpoints we use share the L tier, 75/s burst and 750/min steady, per account.
    rate_limit = _tier(75, 750)
    endpoint_limits = ENDPOINT_LIMITS

    def __init__(self, credentials: Mapping[str, str], **kw: Any) -> None:
        """Options: `count_budget` and `count_cache_seconds` (see lists()), and the common ones (base.py)."""
        super().__init__(credentials, **kw)
        self.count_budget = float(self.options.get("count_budget", COUNT_BUDGET))
        self.count_cache_seconds = float(self.options.get("count_cache_seconds", COUNT_CACHE_SECONDS))

    # --- configuration -----------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # Klaviyo has one host; user input never chooses where the key goes
        key = cleaned["api_key"]
        if key.lower().startswith("klaviyo-api-key "):  # pasted together with the header scheme
            key = key[len("klaviyo-api-key ") :].strip()

        def bad(reason: str) -> InvalidConfiguration:
            return InvalidConfiguration(reason, field="api_key", platform=cls.slug)

        if not key.startswith("pk_"):
            if re.fullmatch(r"[A-Za-z0-9]{6}", key):
                raise bad("That is the public API key (site ID); paste a private key starting with pk_ from Settings > API keys.")
            raise bad("Private API key must start with pk_; create one in Klaviyo under Settings > API keys.")
        if len(key) < 20 or not re.fullmatch(r"pk_[A-Za-z0-9_]+", key):
            raise bad("Private API key does not look like a Klaviyo key; copy it again from Settings > API keys.")
        cleaned["api_key"] = key
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return cls.default_base_url

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Klaviyo-API-Key {self.credentials['api_key']}", "revision": REVISION, "Accept": JSONAPI}

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        if status == 401:
            return InvalidCredentials(
                "Klaviyo rejected the private API key; check it under Settings > API keys and connect again.",
                platform=self.slug,
                status=status,
            )
        if status == 403 and write:
            return InsufficientScope(
                "This Klaviyo key cannot write (it is read-only or lacks write access to Lists, Profiles, Subscriptions "
                "or Data Privacy); Verify Only still works.",
                platform=self.slug,
                status=status,
            )
        if status == 403:
            return InvalidCredentials(
                "This Klaviyo key lacks read access to Lists, Segments or Profiles; widen it under Settings > API keys.",
                platform=self.slug,
                status=status,
            )
        if status == 400:
            detail = _detail(body)
            return ConnectorError(
                f"Klaviyo refused the request ({detail})." if detail else "Klaviyo refused the request.",
                platform=self.slug,
                status=status,
            )
        return None

    def limits_for(self, method: str, path: str, params: Mapping[str, Any] | None) -> tuple[str, ...]:
        """The stricter tiers: counts, deletion jobs, webhooks."""
        path = urlsplit(path).path.lstrip("/") if "://" in path else path.lstrip("/")
        params = params or {}
        if path.startswith("api/lists/") and path.count("/") == 2 and "additional-fields[list]" in params:
            return ("list_count",)
        if path.startswith("api/segments/") and path.count("/") == 2 and "additional-fields[segment]" in params:
            return ("segment_count",)
        if path == "api/data-privacy-deletion-jobs":
            return ("deletion",)
        if path.startswith(("api/webhooks", "api/webhook-topics")):
            return ("webhooks",)
        return ()

    @staticmethod
    def _count_params(noun: str) -> dict[str, str]:
        return {f"additional-fields[{noun}]": "profile_count", f"fields[{noun}]": "profile_count"}

    @staticmethod
    def _split(list_id: str) -> tuple[ListKind, str]:
        if list_id.startswith(SEGMENT_PREFIX):
            return ListKind.SEGMENT, list_id[len(SEGMENT_PREFIX) :]
        return ListKind.LIST, list_id

    def _not_found(self, list_id: str) -> ListNotFound:
        kind, _ = self._split(list_id)
        return ListNotFound(f"Klaviyo has no {kind.value} with id {list_id}.", platform=self.slug, status=404)

    async def _pages(self, path: str, params: Mapping[str, Any], *, missing: Exception | None = None) -> AsyncIterator[dict]:
        """Cursor paging over a collection, one page in memory at a time."""
        cursor: str | None = None
        while True:
            query = dict(params)
            if cursor:
                query["page[cursor]"] = cursor
            response = await self.http.request("GET", path, params=query, expect=(404,) if missing else ())
            if response.status_code == 404:
                raise missing  # type: ignore[misc]
            body = response.json()
            yield body
            following = _next_cursor(body)
            if not following or following == cursor:
                return
            cursor = following

    # --- reading ---------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        """GET /api/lists (75/s) rather than /api/accounts (1/s), and it proves the scope we need."""
        await self.http.request("GET", "api/lists", params={"page[size]": 1, "fields[list]": "name"})
        return AccountInfo(account_id=None, can_write=None)

    async def lists(self) -> list[PlatformList]:
        """Lists then segments; counts while the count limiter can serve them within `count_budget`."""
        found: list[tuple[str, str, ListKind]] = []
        async for body in self._pages("api/lists", {"page[size]": LIST_PAGE, "fields[list]": "name"}):
            found.extend((str(item["id"]), (item.get("attributes") or {}).get("name") or "", ListKind.LIST) for item in body.get("data") or [])
        try:
            async for body in self._pages("api/segments", {"page[size]": LIST_PAGE, "fields[segment]": "name"}):
                found.extend(
                    (f"{SEGMENT_PREFIX}{item['id']}", (item.get("attributes") or {}).get("name") or "", ListKind.SEGMENT)
                    for item in body.get("data") or []
                )
        except InvalidCredentials as exc:
            if exc.status != 403:
                raise
            # A key with lists:read but not segments:read still lets the user pick a list.
        deadline = time.monotonic() + self.count_budget
        result: list[PlatformList] = []
        for list_id, name, kind in found:
            result.append(PlatformList(list_id, name, kind, await self._count_within(list_id, deadline)))
        return result

    def _cached_count(self, list_id: str) -> int | None:
        hit = _counts.get(f"{self.rate_limit_key()}|{list_id}")
        if hit is not None and time.monotonic() - hit[1] < self.count_cache_seconds:
            return hit[0]
        return None

    async def _count_within(self, list_id: str, deadline: float) -> int | None:
        cached = self._cached_count(list_id)
        if cached is not None:
            return cached
        kind, raw = self._split(list_id)
        noun = "segment" if kind is ListKind.SEGMENT else "list"
        wait = self.http.limits("GET", f"api/{noun}s/{raw}", self._count_params(noun)).wait_time()
        if time.monotonic() + wait > deadline:
            return None  # the caller shows "count pending" and asks subscriber_count() for the one picked
        return await self.subscriber_count(list_id)

    async def subscriber_count(self, list_id: str) -> int:
        """Klaviyo's `profile_count` for one list or segment (every profile in it, suppressed ones too)."""
        cached = self._cached_count(list_id)
        if cached is not None:
            return cached
        kind, raw = self._split(list_id)
        if not _ID.match(raw):
            raise self._not_found(list_id)
        noun = "segment" if kind is ListKind.SEGMENT else "list"
        response = await self.http.request("GET", f"api/{noun}s/{raw}", params=self._count_params(noun), expect=(404,))
        if response.status_code == 404:
            raise self._not_found(list_id)
        count = int(((response.json().get("data") or {}).get("attributes") or {}).get("profile_count") or 0)
        _counts[f"{self.rate_limit_key()}|{list_id}"] = (count, time.monotonic())
        return count

    @staticmethod
    def _can_receive(item: Mapping[str, Any], list_id: str | None) -> bool:
        """Klaviyo mails every member without a suppression, NEVER_SUBSCRIBED ones included, so the
        test is `can_receive_email_marketing` (and no suppression for this list), not consent."""
        marketing = ((((item.get("attributes") or {}).get("subscriptions") or {}).get("email") or {}).get("marketing")) or {}
        if marketing.get("can_receive_email_marketing") is False:
            return False
        return not any(isinstance(s, dict) and s.get("list_id") == list_id for s in marketing.get("list_suppressions") or [])

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        kind, raw = self._split(list_id)
        if not _ID.match(raw):
            raise self._not_found(list_id)
        path = f"api/{'segments' if kind is ListKind.SEGMENT else 'lists'}/{raw}/profiles"
        params = {"page[size]": PROFILE_PAGE, "fields[profile]": MEMBER_FIELDS, "additional-fields[profile]": "subscriptions"}
        scope = raw if kind is ListKind.LIST else None
        async for body in self._pages(path, params, missing=self._not_found(list_id)):
            for item in body.get("data") or []:
                email = (item.get("attributes") or {}).get("email")
                if email and item.get("id") and self._can_receive(item, scope):  # phone-only profiles have no email
                    yield Contact(id=str(item["id"]), email=str(email), list_id=list_id)

    async def resolve_contact(self, contact_id: str) -> Contact | None:
        """Webhook events name the profile by id only; fetch its email."""
        if not _ID.match(contact_id):
            return None
        response = await self.http.request("GET", f"api/profiles/{contact_id}", params={"fields[profile]": "email"}, expect=(404,))
        if response.status_code == 404:
            return None
        email = ((response.json().get("data") or {}).get("attributes") or {}).get("email")
        return Contact(id=contact_id, email=str(email)) if email else None

    async def contacts_since(self, since: datetime | None) -> AsyncIterator[Contact]:
        """Polling fallback: profiles created after `since` that can receive email, oldest first,
        each with `created_at` for the caller's high-water mark."""
        params: dict[str, Any] = {
            "page[size]": PROFILE_PAGE,
            "sort": "created",
            "fields[profile]": f"{MEMBER_FIELDS},created",
            "additional-fields[profile]": "subscriptions",
        }
        if since is not None:
            params["filter"] = f"greater-than(created,{_iso(since)})"
        async for body in self._pages("api/profiles", params):
            for item in body.get("data") or []:
                email = (item.get("attributes") or {}).get("email")
                if email and item.get("id") and self._can_receive(item, None):
                    created = _parse_timestamp(str((item.get("attributes") or {}).get("created") or ""))
                    yield Contact(id=str(item["id"]), email=str(email), created_at=created)

    async def _existing(self, contacts: Sequence[Contact]) -> dict[str, str]:
        """profile id -> current email for those of `contacts` that still exist (one GET per 100)."""
        ids = [c.id for c in contacts if _ID.match(c.id or "")]
        if not ids:
            return {}
        params = {"filter": "any(id,[" + ",".join(f'"{i}"' for i in ids) + "])", "page[size]": PROFILE_PAGE, "fields[profile]": "email"}
        found: dict[str, str] = {}
        async for body in self._pages("api/profiles", params):
            for item in body.get("data") or []:
                email = (item.get("attributes") or {}).get("email")
                if email:
                    found[str(item["id"])] = str(email)
        return found

    async def _in_list(self, list_id: str, contacts: Sequence[Contact]) -> dict[str, str]:
        """contact id -> email for those of `contacts` still in the list. The spec warns that profiles
        not in the job's list are unsubscribed globally, so only members are ever sent with it."""
        by_email = {c.email.strip().lower(): c.id for c in contacts if c.email and not set(c.email) & _FILTER_UNSAFE}
        if not by_email:
            return {}
        params = {"filter": "any(email,[" + ",".join(f'"{e}"' for e in by_email) + "])", "page[size]": PROFILE_PAGE, "fields[profile]": "email"}
        found: dict[str, str] = {}
        try:
            async for body in self._pages(f"api/lists/{list_id}/profiles", params, missing=ListNotFound("", platform=self.slug)):
                for item in body.get("data") or []:
                    email = str((item.get("attributes") or {}).get("email") or "")
                    if email.strip().lower() in by_email:
                        found[by_email[email.strip().lower()]] = email
        except ListNotFound:
            return {}  # the list is gone, so nobody is mailed from it any more
        return found

    @staticmethod
    def _groups(contacts: Sequence[Contact]) -> dict[str | None, list[Contact]]:
        """By Klaviyo list id; segment members and contacts without a list go under None (global)."""
        groups: dict[str | None, list[Contact]] = {}
        for contact in contacts:
            kind, raw = Klaviyo._split(contact.list_id) if contact.list_id else (ListKind.SEGMENT, "")
            groups.setdefault(raw if kind is ListKind.LIST and _ID.match(raw) else None, []).append(contact)
        return groups

    # --- writing: subscription state only --------------------------------------------------
    async def _submit(self, targets: list[tuple[Contact, str]], list_id: str | None, build: Any, path: str, outcome: ActionOutcome) -> None:
        if not targets:
            return
        response = await self.http.request("POST", path, json=build([e for _, e in targets], list_id), headers=WRITE_HEADERS, expect=(400,))
        if response.status_code != 400:
            outcome.done.extend(c.id for c, _ in targets)  # 202: queued; no status endpoint exists for these jobs
            return
        if len(targets) == 1:
            detail = _detail(_json_or_none(response))
            outcome.failed[targets[0][0].id] = f"Klaviyo refused it ({detail})." if detail else "Klaviyo refused it."
            return
        middle = len(targets) // 2
        await self._submit(targets[:middle], list_id, build, path, outcome)
        await self._submit(targets[middle:], list_id, build, path, outcome)

    @staticmethod
    def _unsubscribe_body(emails: list[str], list_id: str | None) -> dict:
        data: dict[str, Any] = {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {"profiles": {"data": [
                {"type": "profile", "attributes": {"email": e, "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}
                for e in emails
            ]}},
        }
        if list_id:
            # With the list, members are unsubscribed from that list; without one (segments), globally.
            data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
        return {"data": data}

    @staticmethod
    def _resubscribe_body(emails: list[str], list_id: str | None) -> dict:
        # historical_import skips the double opt-in email and "Added to list" flows (spec), so undo sends
        # nothing. It needs consented_at in the past: the undo re-asserts the consent our unsubscribe
        # withdrew, stamped a minute back so clock skew cannot put it in Klaviyo's future.
        consented = (datetime.now(timezone.utc) - timedelta(minutes=1)).replace(microsecond=0)
        data: dict[str, Any] = {
            "type": "profile-subscription-bulk-create-job",
            "attributes": {
                "custom_source": "Listwarden undo",
                "historical_import": True,
                "profiles": {"data": [
                    {"type": "profile", "attributes": {"email": e, "subscriptions": {"email": {"marketing": {
                        "consent": "SUBSCRIBED", "consented_at": _iso(consented)}}}}}
                    for e in emails
                ]},
            },
        }
        if list_id:
            data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
        return {"data": data}

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Klaviyo's unsubscribe job, 100 per call: list members from that list, segment members (and
        contacts without a list) account-wide. A contact already out of the list, or deleted, is done.
        Not also a suppression: that is an account-wide block beyond what the user chose, and the
        unsubscribe alone already stops marketing email from the list."""
        outcome = ActionOutcome()
        for list_id, group in self._groups(contacts).items():
            for chunk in _chunks(group, JOB_BATCH):
                present = await (self._in_list(list_id, chunk) if list_id else self._existing(chunk))
                for contact in chunk:
                    if contact.id in present:
                        continue
                    if list_id and set(contact.email or "") & _FILTER_UNSAFE:
                        outcome.failed[contact.id] = "This address cannot be matched in a Klaviyo filter; unsubscribe it in Klaviyo."
                    else:
                        outcome.done.append(contact.id)
                targets = [(c, present[c.id]) for c in chunk if c.id in present]
                await self._submit(targets, list_id, self._unsubscribe_body, "api/profile-subscription-bulk-delete-jobs", outcome)
        return outcome

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Undo of unsubscribe, back into the list, without any confirmation email (see
        _resubscribe_body); a profile deleted meanwhile is a failure, never recreated."""
        outcome = ActionOutcome()
        for list_id, group in self._groups(contacts).items():
            for chunk in _chunks(group, JOB_BATCH):
                present = await self._existing(chunk)
                for contact in chunk:
                    if contact.id not in present:
                        outcome.failed[contact.id] = "Klaviyo has no such profile any more (deleted?)."
                targets = [(c, present[c.id]) for c in chunk if c.id in present]
                await self._submit(targets, list_id, self._resubscribe_body, "api/profile-subscription-bulk-create-jobs", outcome)
        return outcome

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """The data-privacy deletion job, one profile per request at 3/s, 60/min. Klaviyo's API has no
        softer delete, so it is permanent either way; a 404 means already gone, which is success."""
        outcome = ActionOutcome()
        for contact in contacts:
            if not contact.email:
                outcome.failed[contact.id] = "Klaviyo deletes by email, and this contact has none."
                continue
            body = {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
                "type": "profile", "attributes": {"email": contact.email}}}}}}
            response = await self.http.request("POST", "api/data-privacy-deletion-jobs", json=body, headers=WRITE_HEADERS, expect=(400, 404))
            if response.status_code == 400:
                detail = _detail(_json_or_none(response))
                outcome.failed[contact.id] = f"Klaviyo refused it ({detail})." if detail else "Klaviyo refused it."
            else:
                outcome.done.append(contact.id)  # 202: queued; Klaviyo offers no status endpoint for it
        return outcome

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """`Klaviyo-Signature` = hex HMAC-SHA256(secret, raw body + Klaviyo-Timestamp); the body's
        `meta.klaviyo_webhook_id` must equal the `Klaviyo-Webhook-Id` header (Klaviyo's own advice)."""
        if not secrets.signing_secret:
            raise WebhookRejected("Klaviyo webhook has no signing secret configured.", platform=self.slug)
        signature = request.headers.get("klaviyo-signature", "").strip().lower()
        stamp = request.headers.get("klaviyo-timestamp", "").strip()
        if not signature or not stamp:
            raise WebhookRejected("Klaviyo webhook is missing its signature headers.", platform=self.slug)
        expected = hmac.new(secrets.signing_secret.encode(), request.body + stamp.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise WebhookRejected("Klaviyo webhook signature does not match.", platform=self.slug)
        sent = _parse_timestamp(stamp)
        if sent is None:
            raise WebhookRejected("Klaviyo webhook timestamp is unreadable.", platform=self.slug)
        if abs(request.received_at - sent) > WEBHOOK_MAX_AGE:
            raise WebhookRejected("Klaviyo webhook is outside the replay window.", platform=self.slug)
        header_id = request.headers.get("klaviyo-webhook-id", "")
        try:
            meta = json.loads(request.body).get("meta") or {}
            body_id = str(meta.get("klaviyo_webhook_id") or "")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return  # a signed but unreadable body is parse_webhook's to refuse as malformed
        if body_id and not hmac.compare_digest(header_id.encode(), body_id.encode()):
            raise WebhookRejected("Klaviyo webhook id in the body does not match its header.", platform=self.slug)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Each `data[]` item is a Get Event document; the profile is named by id, with an email only
        when the payload includes the profile, so others are hydrated through resolve_contact()."""
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookMalformed("Klaviyo webhook body is not JSON.", platform=self.slug) from None
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise WebhookMalformed("Klaviyo webhook body has no data array of events.", platform=self.slug)
        events: list[WebhookEvent] = []
        for item in items:
            if item.get("topic") not in NEW_SUBSCRIBER_TOPICS:
                continue  # other topics need no verification
            payload = item.get("payload") if isinstance(item.get("payload"), dict) else {}
            event = payload.get("data") if isinstance(payload.get("data"), dict) else {}
            profile = ((event.get("relationships") or {}).get("profile") or {}).get("data") or {}
            profile_id = str(profile["id"]) if isinstance(profile, dict) and profile.get("id") else None
            email = _included_email(payload, profile_id) or _property_email(event)
            if not profile_id and not email:
                raise WebhookMalformed("Klaviyo subscription webhook names no profile.", platform=self.slug)
            event_id = item.get("external_id") or event.get("id")
            events.append(WebhookEvent(event_id=str(event_id) if event_id else None, email=email, contact_id=profile_id))
        return events

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """Account-wide (Klaviyo webhooks cannot be scoped to a list); Klaviyo signs with the secret we
        give it: the connection's `secret`, else a new one."""
        response = await self.http.request("GET", "api/webhook-topics", expect=(403,))
        if response.status_code == 403:
            raise UnsupportedAction(WEBHOOKS_UNAVAILABLE, platform=self.slug, status=403)
        offered = {str(t.get("id")) for t in response.json().get("data") or [] if isinstance(t, dict)}
        topic = next((t for t in NEW_SUBSCRIBER_TOPICS if t in offered), None)
        if topic is None:
            raise UnsupportedAction(
                "This Klaviyo account offers no new-subscriber webhook topic, so Listwarden will poll for new subscribers instead.",
                platform=self.slug,
            )
        secret = secret or new_secret()
        body = {"data": {
            "type": "webhook",
            "attributes": {"name": "Listwarden verify-first", "endpoint_url": url, "secret_key": secret},
            "relationships": {"webhook-topics": {"data": [{"type": "webhook-topic", "id": topic}]}},
        }}
        response = await self.http.request("POST", "api/webhooks", json=body, headers=WRITE_HEADERS, expect=(403,))
        if response.status_code == 403:
            raise UnsupportedAction(WEBHOOKS_UNAVAILABLE, platform=self.slug, status=403)
        hook_id = (response.json().get("data") or {}).get("id")
        if not hook_id:
            raise ConnectorError("Klaviyo did not return the new webhook's id.", platform=self.slug)
        return WebhookRegistration(ids=(str(hook_id),), secrets=WebhookSecrets(signing_secret=secret), url=url)

    async def unregister_webhook(self, webhook_id: str) -> None:
        if not _ID.match(webhook_id):
            return
        response = await self.http.request("DELETE", f"api/webhooks/{webhook_id}", expect=(403, 404))
        if response.status_code == 403:
            raise UnsupportedAction(WEBHOOKS_UNAVAILABLE, platform=self.slug, status=403)


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _parse_timestamp(stamp: str) -> datetime | None:
    """Klaviyo-Timestamp's format is not spelled out: accept epoch seconds or milliseconds, or ISO 8601."""
    try:
        number = float(stamp)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if number > 1e11:
        number /= 1000.0
    try:
        return datetime.fromtimestamp(number, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _included_email(payload: Mapping[str, Any], profile_id: str | None) -> str | None:
    for entry in payload.get("included") or []:
        if isinstance(entry, dict) and entry.get("type") == "profile" and (profile_id is None or str(entry.get("id")) == profile_id):
            email = (entry.get("attributes") or {}).get("email")
            if isinstance(email, str) and "@" in email:
                return email.strip()
    return None


def _property_email(event: Mapping[str, Any]) -> str | None:
    props = (event.get("attributes") or {}).get("event_properties") or {}
    if isinstance(props, dict):
        for key in ("$email", "email"):
            value = props.get(key)
            if isinstance(value, str) and "@" in value:
                return value.strip()
    return None
