"""Mailchimp (Marketing API 3.0): data-centre hosts, audiences with segments and tags, MD5 member ids.

Quirks, in short:
- The API key ends in its data centre (`...-us21`) and the host follows it:
  `https://us21.api.mailchimp.com/3.0`; HTTP Basic, any user name, the key as password. OAuth
  tokens never expire and carry no data centre: `GET login.mailchimp.com/oauth2/metadata`
  (`Authorization: OAuth <token>`) names it, then requests use `Bearer`.
- A key sent to the wrong data centre gets the same 401 "API Key Invalid" as a wrong key.
- No request rate is documented, only a limit of 10 simultaneous connections per user (429
  beyond it, without Retry-After). We hold each account to 10 requests in flight (`max_in_flight`).
- Members are addressed by the MD5 of the lower-cased email, per audience; segments and tags
  (static segments) live inside an audience, so our segment ids carry it: `{audience}:segment:{id}`.
- Unsubscribe/resubscribe use the batch endpoint `POST /lists/{id}` (500 per call) and set only
  `status`. Delete archives; `permanent=True` deletes for good, and Mailchimp then refuses to
  re-add the address through the API, so such a delete cannot be undone by `jobs undo`.
- New subscribers arrive by an unsigned, form-encoded per-audience webhook; a secret token in
  our URL authenticates it, and Mailchimp checks the URL with a GET before saving it. Answering a
  delivery with 410 makes Mailchimp disable the webhook.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
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
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp
from core.connectors.webhook_auth import choose_secret, token_matches, with_url_token

API_HOST = "https://{dc}.api.mailchimp.com/3.0"
METADATA_URL = "https://login.mailchimp.com/oauth2/metadata"
PAGE_SIZE = 1000  # the documented maximum `count`
BATCH_SIZE = 500  # the documented maximum members per batch subscribe/unsubscribe
MAX_CONNECTIONS = 10  # Mailchimp: 10 simultaneous connections per user
SEGMENT_MARK = ":segment:"
DC_RE = re.compile(r"[a-z]{2,4}\d{1,3}")
ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")  # audience, segment and webhook ids go into URL paths
HASH_RE = re.compile(r"[0-9a-f]{32}")
KEY_RE = re.compile(r"[0-9A-Za-z]{16,64}")  # real keys are 32 hex digits; leave room for format changes
MEMBER_FIELDS = "members.id,members.email_address,total_items"
# Mailchimp retries a failed delivery three times (timing undocumented); an hour covers that and
# clock skew, and anything older is treated as a replay.
WEBHOOK_MAX_AGE = timedelta(hours=1)
WEBHOOK_EVENTS = {"subscribe": True, "unsubscribe": False, "profile": False, "cleaned": False, "upemail": False, "campaign": False}
# `api: False`: our own resubscribes (jobs undo) must not come back as "new subscribers" to verify.
WEBHOOK_SOURCES = {"user": True, "admin": True, "api": False}

# Data centre of each OAuth token already looked up, so connectors built per request skip the metadata call.
_dc_cache: dict[tuple[str, str], str] = {}


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 hex of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def _with_api_path(url: str) -> str:
    """An override naming only a host (an emulator) gets Mailchimp's `/3.0` path."""
    url = url.rstrip("/")
    return url + "/3.0" if urlsplit(url).path in ("", "/") else url


@register
class Mailchimp(Connector):
    slug = "mailchimp"
    display_name = "Mailchimp"
    auth = "api_key_or_oauth"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="API key",
            help="In Mailchimp: profile icon > Profile > Extras > API keys > Create A Key; copy the whole key, "
            "including its ending such as -us21. Not needed if you sign in with Mailchimp instead.",
            required=False,  # OAuth connections have no key; validate_credentials asks for one or the other
            placeholder="0123456789abcdef0123456789abcdef-us21",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.AUDIENCE, ListKind.SEGMENT, ListKind.TAG),
        webhooks="token",
        webhook_registration=True,
    )
    default_base_url = "https://us1.api.mailchimp.com/3.0"  # never used as is: the data centre decides
    rate_limit = None  # Mailchimp documents no request rate, only the 10-connection limit
    max_in_flight = MAX_CONNECTIONS
    stored_keys = ("dc",)  # an OAuth connection's data centre, learnt from the metadata call
    webhook_steps = (
        "In Mailchimp open Audience > Manage Audience > Settings > Webhooks, click Create New Webhook, paste the URL, "
        "tick only 'Subscribes' under events and 'by a subscriber' and 'by an account admin' under sources, and save."
    )

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        base_url: str | None = None,
        http: PlatformHttp | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        """Options: `metadata_url` (the OAuth metadata endpoint, for emulators), and the common ones (base.py)."""
        options = dict(options or {})
        self.metadata_url = str(options.get("metadata_url") or METADATA_URL)
        self._explicit_base = base_url is not None
        super().__init__(credentials, base_url=_with_api_path(base_url) if base_url else None, http=http, options=options)
        key = self.credentials.get("api_key")
        self.data_centre: str | None = key.rsplit("-", 1)[1] if key else self.credentials.get("dc")
        self._resolving: asyncio.Lock | None = None

    # --- configuration -------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        cleaned = dict(super().validate_credentials(credentials))
        cleaned.pop("base_url", None)  # the data centre, never user input, decides where the key goes
        key = cleaned.get("api_key")
        if key:
            cleaned.pop("access_token", None)  # a typed key wins over stale OAuth material
            cleaned.pop("refresh_token", None)
            cleaned.pop("dc", None)  # the key's own ending names the data centre
            secret, dash, dc = key.rpartition("-")
            if not dash:
                raise InvalidConfiguration(
                    "API key must end with your data centre, like -us21; copy the whole key from Profile > Extras > API keys.",
                    field="api_key", platform=cls.slug,
                )
            if not DC_RE.fullmatch(dc.lower()):
                raise InvalidConfiguration(
                    "API key ends in an unknown data centre; it should end like -us21, "
                    "so copy the whole key from Profile > Extras > API keys.",
                    field="api_key", platform=cls.slug,
                )
            if not KEY_RE.fullmatch(secret):
                raise InvalidConfiguration(
                    "API key does not look like a Mailchimp key; copy it from Profile > Extras > API keys.",
                    field="api_key", platform=cls.slug,
                )
            cleaned["api_key"] = f"{secret}-{dc.lower()}"
            return cleaned
        token = cleaned.get("access_token", "")
        if not token:
            raise InvalidConfiguration(
                "API key is required; copy it from Profile > Extras > API keys, or sign in with Mailchimp instead.",
                field="api_key", platform=cls.slug,
            )
        if any(ch.isspace() for ch in token):
            raise InvalidConfiguration("The Mailchimp sign-in token is malformed; sign in with Mailchimp again.",
                                       field="access_token", platform=cls.slug)
        dc = cleaned.get("dc", "").lower()
        if dc:
            if not DC_RE.fullmatch(dc):
                raise InvalidConfiguration("The stored Mailchimp data centre is malformed; sign in with Mailchimp again.",
                                           field="dc", platform=cls.slug)
            cleaned["dc"] = dc  # learnt from the metadata call on first use
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        key = credentials.get("api_key")
        dc = key.rsplit("-", 1)[1] if key else credentials.get("dc")
        # An OAuth token without a known data centre is resolved through the metadata call
        # before the first request (before_request); until then no request is sent.
        return API_HOST.format(dc=dc) if dc else API_HOST.format(dc="unresolved")

    @property
    def is_oauth(self) -> bool:
        return "api_key" not in self.credentials

    def auth_headers(self) -> dict[str, str]:
        if self.is_oauth:
            return {"Authorization": f"Bearer {self.credentials['access_token']}", "Accept": "application/json"}
        basic = base64.b64encode(f"listwarden:{self.credentials['api_key']}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Accept": "application/json"}

    def rate_limit_key(self) -> str:
        """Mailchimp limits per user, whatever data centre URL we reach it by."""
        secret = self.credentials.get("api_key") or self.credentials.get("access_token", "")
        return f"{self.slug}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        title = str(body.get("title") or "") if isinstance(body, dict) else ""
        if status == 401 or (status == 403 and title == "Wrong Datacenter"):
            if self.is_oauth:
                return InvalidCredentials("Mailchimp refused the sign-in token (access was revoked); sign in with Mailchimp again.",
                                          platform=self.slug, status=status)
            return InvalidCredentials(
                f"Mailchimp rejected the API key; check that it is current and that its -{self.data_centre} ending "
                "matches your account's data centre.",
                platform=self.slug, status=status,
            )
        if status == 403:
            if title == "User Disabled":
                return InvalidCredentials("This Mailchimp user is disabled; ask the account owner to enable it.",
                                          platform=self.slug, status=status)
            if write:
                return InsufficientScope(
                    "This Mailchimp key cannot write (its user has viewer access); Verify Only still works, "
                    "and cleanup needs a Manager, Admin or Owner.",
                    platform=self.slug, status=status,
                )
            return InvalidCredentials("Mailchimp refused access with this key.", platform=self.slug, status=status)
        if status == 404:
            return ListNotFound("Mailchimp has no audience or segment with that id.", platform=self.slug, status=status)
        if 400 <= status < 500:
            return ConnectorError(f"Mailchimp refused the request ({title or f'HTTP {status}'}).", platform=self.slug, status=status)
        return None

    # --- transport: the data centre of an OAuth token --------------------------------------
    async def before_request(self) -> None:
        """For an OAuth token, learn the data centre from Mailchimp's metadata call (once), then
        hand it to `on_credentials_change` so the connection stores it as `dc`."""
        if self.data_centre:
            return
        if self._resolving is None:
            self._resolving = asyncio.Lock()
        async with self._resolving:
            if self.data_centre:
                return
            token = self.credentials["access_token"]
            cache_key = (self.metadata_url, hashlib.sha256(token.encode()).hexdigest())
            dc = _dc_cache.get(cache_key)
            if dc is None:
                # auth=False: the metadata call carries its own `OAuth` header, not the API's Bearer.
                response = await self.http.request("GET", self.metadata_url, headers={"Authorization": f"OAuth {token}",
                                                   "Accept": "application/json"}, write=False, expect=(400, 401, 403), auth=False)
                if response.status_code != 200:
                    raise InvalidCredentials("Mailchimp refused the sign-in token (access was revoked); sign in with Mailchimp again.",
                                             platform=self.slug, status=response.status_code)
                try:
                    dc = str(response.json().get("dc") or "").lower()
                except (ValueError, AttributeError):
                    dc = ""
                if not DC_RE.fullmatch(dc):
                    raise ConnectorError("Mailchimp's sign-in metadata named no data centre; sign in with Mailchimp again.",
                                         platform=self.slug)
                _dc_cache[cache_key] = dc
            self.data_centre = dc
            if not self._explicit_base:
                self.base_url = API_HOST.format(dc=dc)
            await self.update_credentials({"dc": dc})

    async def resolve_data_centre(self) -> str:
        """The account's data centre (for OAuth, from the metadata call), for the caller to store as `dc`."""
        await self.before_request()
        assert self.data_centre
        return self.data_centre

    @staticmethod
    def _split(list_id: str) -> tuple[str, str | None]:
        """(audience id, segment id or None) from one of our list ids; ("", None) for anything else."""
        audience, mark, segment = list_id.partition(SEGMENT_MARK)
        if not ID_RE.fullmatch(audience) or (mark and not segment.isdigit()):
            return "", None
        return audience, (segment if mark else None)

    @staticmethod
    def _member_path(audience: str, contact: Contact) -> str:
        member = contact.id if HASH_RE.fullmatch(contact.id) else subscriber_hash(contact.email)
        return f"lists/{audience}/members/{member}"

    # --- reading -------------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        """`GET /` (API root): account id and name, and the user's role tells whether it can write."""
        body = (await self.http.request("GET", "", params={"fields": "account_id,account_name,role"})).json()
        role = str(body.get("role") or "").lower()
        can_write = True if role in ("owner", "admin", "manager") else False if role == "viewer" else None
        return AccountInfo(account_id=body.get("account_id"), name=body.get("account_name"), can_write=can_write)

    async def _paged(self, path: str, key: str, fields: str) -> AsyncIterator[dict]:
        offset = 0
        while True:
            body = (await self.http.request("GET", path, params={"count": PAGE_SIZE, "offset": offset, "fields": f"{fields},total_items"})).json()
            page = body.get(key) or []
            for item in page:
                yield item
            offset += len(page)
            if not page or offset >= int(body.get("total_items") or 0):
                return

    async def lists(self) -> list[PlatformList]:
        """Audiences (`stats.member_count` = subscribed) and each audience's segments and tags."""
        audiences = [a async for a in self._paged("lists", "lists", "lists.id,lists.name,lists.stats.member_count")]

        async def segments_of(audience: dict) -> list[PlatformList]:
            found = []
            fields = "segments.id,segments.name,segments.member_count,segments.type"
            async for seg in self._paged(f"lists/{audience['id']}/segments", "segments", fields):
                kind = ListKind.TAG if seg.get("type") == "static" else ListKind.SEGMENT  # tags are static segments
                found.append(PlatformList(f"{audience['id']}{SEGMENT_MARK}{seg['id']}", seg.get("name", ""), kind, seg.get("member_count")))
            return found

        result = [PlatformList(str(a["id"]), a.get("name", ""), ListKind.AUDIENCE, (a.get("stats") or {}).get("member_count"))
                  for a in audiences]
        for segs in await asyncio.gather(*(segments_of(a) for a in audiences)):
            result.extend(segs)
        return result

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Subscribed members, 1,000 a page by offset.

        Offset paging skips people when members already read stop matching the filter (a job
        unsubscribing as it reads). So when `total_items` shrinks between pages we step the offset
        back by the shrinkage: if those who left were already seen, nobody is skipped; if not, a few
        are read twice, which is harmless because every action is idempotent.
        """
        audience, segment = self._split(list_id)
        if not audience:
            raise ListNotFound(f"Mailchimp has no audience or segment with id {list_id}.", platform=self.slug)
        if segment:
            path, params = f"lists/{audience}/segments/{segment}/members", {}  # unsubscribed are excluded by default
        else:
            path, params = f"lists/{audience}/members", {"status": "subscribed"}
        offset, seen_total = 0, None
        while True:
            response = await self.http.request("GET", path, params={**params, "count": PAGE_SIZE, "offset": offset, "fields": MEMBER_FIELDS},
                                        expect=(404,))
            if response.status_code == 404:
                raise ListNotFound(f"Mailchimp has no audience or segment with id {list_id}.", platform=self.slug, status=404)
            body = response.json()
            total = int(body.get("total_items") or 0)
            if seen_total is not None and total < seen_total:
                offset, seen_total = max(0, offset - (seen_total - total)), total
                continue
            seen_total = total
            page = body.get("members") or []
            for item in page:
                yield Contact(id=str(item["id"]), email=item["email_address"], list_id=audience)
            offset += len(page)
            if not page or offset >= total:
                return

    # --- writing: subscription status only ------------------------------------------------
    def _by_audience(self, contacts: Sequence[Contact], outcome: ActionOutcome) -> dict[str, list[Contact]]:
        groups: dict[str, list[Contact]] = {}
        for contact in contacts:
            audience = self._split(contact.list_id or "")[0]
            if not audience:
                outcome.failed[contact.id] = "Mailchimp changes subscriptions per audience, and no audience was given."
            else:
                groups.setdefault(audience, []).append(contact)
        return groups

    def _refusal(self, error: str, status: str) -> str | None:
        """Why Mailchimp refused one member, in one sentence; None when the refusal means "already done"."""
        text = error.lower()
        if "permanently deleted" in text:
            if status == "unsubscribed":
                return None  # a forgotten address gets no email: nothing left to unsubscribe
            return "Mailchimp will not re-add an address that was permanently deleted; the person must sign up again."
        if "compliance state" in text:
            return ("Mailchimp keeps this address unsubscribed (it unsubscribed itself, bounced or is under review); "
                    "only the person can re-subscribe.")
        return f"Mailchimp refused the change: {error.strip().rstrip('.')}."

    async def _set_status(self, contacts: Sequence[Contact], status: str) -> ActionOutcome:
        outcome = ActionOutcome()
        jobs = []
        for audience, group in self._by_audience(contacts, outcome).items():
            if len(group) == 1:
                jobs.append(self._patch_one(audience, group[0], status))
            else:
                jobs.extend(self._batch(audience, group[i : i + BATCH_SIZE], status) for i in range(0, len(group), BATCH_SIZE))
        for part in await asyncio.gather(*jobs):
            outcome.merge(part)
        return outcome

    async def _batch(self, audience: str, chunk: list[Contact], status: str) -> ActionOutcome:
        """`POST /lists/{id}`: up to 500 `{email_address, status}` with `update_existing`; nothing else is written.

        An address no longer on the audience is added with that status (Mailchimp's upsert): for
        an unsubscribe that is a harmless suppression entry, and it sets no other field.
        """
        outcome = ActionOutcome()
        emails: dict[str, str] = {}  # one entry per address (Mailchimp refuses duplicates), spelt as Mailchimp gave it
        for c in chunk:
            emails.setdefault(c.email.strip().lower(), c.email.strip())
        body = {"members": [{"email_address": e, "status": status} for e in emails.values()], "update_existing": True}
        response = await self.http.request("POST", f"lists/{audience}", json=body, expect=(404,))
        if response.status_code == 404:
            outcome.failed.update({c.id: f"Mailchimp has no audience with id {audience}." for c in chunk})
            return outcome
        result = response.json()
        refused = {str(e.get("email_address") or "").lower(): str(e.get("error") or "") for e in result.get("errors") or []}
        for contact in chunk:
            error = refused.get(contact.email.strip().lower())
            reason = self._refusal(error, status) if error is not None else None
            if reason is None:
                outcome.done.append(contact.id)
            else:
                outcome.failed[contact.id] = reason
        return outcome

    async def _patch_one(self, audience: str, contact: Contact, status: str) -> ActionOutcome:
        """One contact: PATCH only `status`; unlike the batch upsert it never creates a member."""
        outcome = ActionOutcome()
        response = await self.http.request("PATCH", self._member_path(audience, contact), json={"status": status}, expect=(400, 404))
        if response.status_code < 300:
            outcome.done.append(contact.id)
        elif response.status_code == 404:
            if status == "unsubscribed":
                outcome.done.append(contact.id)  # no longer on the audience (permanently deleted): gets no email
            else:
                outcome.failed[contact.id] = ("Mailchimp no longer has this address (it was permanently deleted); "
                                              "the person must sign up again.")
        else:
            try:
                body = response.json()
            except ValueError:
                body = {}
            detail = str(body.get("detail") or body.get("title") or "") if isinstance(body, dict) else ""
            outcome.failed[contact.id] = self._refusal(detail, status) or "Mailchimp refused the change."
        return outcome

    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        return await self._set_status(contacts, "unsubscribed")

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Undo: back to `subscribed`. Refused for permanently deleted and self-unsubscribed addresses."""
        return await self._set_status(contacts, "subscribed")

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """Archive (`DELETE`), or `delete-permanent` by explicit choice; already gone counts as done.

        Mailchimp has no synchronous batch delete, so members go one request each, up to the
        connection limit at once. After a permanent delete Mailchimp refuses to re-add the address
        through the API: `jobs undo` cannot bring it back.
        """
        outcome = ActionOutcome()

        async def one(audience: str, contact: Contact) -> None:
            path = self._member_path(audience, contact)
            if permanent:
                await self.http.request("POST", f"{path}/actions/delete-permanent", expect=(404,))
                outcome.done.append(contact.id)
                return
            response = await self.http.request("DELETE", path, expect=(404, 405))
            if response.status_code == 405:
                # 405 also covers pending and bounced contacts, which cannot be archived: look.
                check = await self.http.request("GET", path, params={"fields": "status"}, expect=(404,))
                if check.status_code != 404 and check.json().get("status") != "archived":
                    outcome.failed[contact.id] = "Mailchimp cannot archive a pending or bounced contact."
                    return
            outcome.done.append(contact.id)

        groups = self._by_audience(contacts, outcome)
        await asyncio.gather(*(one(audience, c) for audience, group in groups.items() for c in group))
        return outcome

    # --- verify-first -----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """Mailchimp signs nothing: our URL's secret token, then `fired_at` inside the replay window.

        The validation GET Mailchimp sends when the webhook is saved carries the same token but no
        body, so only the token is checked for it.
        """
        if not token_matches(request.query, secrets.url_token):
            raise WebhookRejected("Mailchimp webhook token does not match.", platform=self.slug)
        if request.method.upper() == "GET":
            return
        stamp = self._form(request).get("fired_at", "")
        try:
            fired = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError:
            raise WebhookMalformed("Mailchimp webhook has no readable fired_at time.", platform=self.slug) from None
        if abs(request.received_at - fired) > WEBHOOK_MAX_AGE:
            raise WebhookRejected("Mailchimp webhook is outside the replay window.", platform=self.slug)

    def _form(self, request: WebhookRequest) -> dict[str, str]:
        try:
            pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(request.body))
        except (UnicodeDecodeError, ValueError):
            raise WebhookMalformed("Mailchimp webhook body is not form-encoded.", platform=self.slug) from None
        return dict(pairs)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """`type=subscribe&fired_at=...&data[email]=...&data[list_id]=...`; other event types need nothing."""
        if request.method.upper() == "GET":
            return []  # the URL validation Mailchimp sends when the webhook is saved
        form = self._form(request)
        if "type" not in form:
            raise WebhookMalformed("Mailchimp webhook has no event type.", platform=self.slug)
        if form["type"] != "subscribe":
            return []
        email = (form.get("data[email]") or form.get("data[merges][EMAIL]") or "").strip()
        if "@" not in email:
            raise WebhookMalformed("Mailchimp subscribe webhook carries no email.", platform=self.slug)
        list_id = form.get("data[list_id]") or None
        # Mailchimp gives deliveries no id; a retried delivery repeats the same member, list and time.
        event_id = f"subscribe:{list_id}:{form.get('data[id]', '')}:{form.get('fired_at', '')}"
        return [WebhookEvent(event_id=event_id, email=email, contact_id=subscriber_hash(email), list_id=list_id)]

    def webhook_response(self, request: WebhookRequest) -> tuple[int, bytes, str]:
        """200 for deliveries and for the GET Mailchimp sends to validate the URL (any body will do)."""
        return 200, b'{"status":"OK"}', "application/json"

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """Webhooks are per audience: one audience, or every audience when none is named.

        Mailchimp signs nothing, so `secret` (else the URL's ?token=, else a new one) rides in the
        URL as ?token=: it is the only thing that authenticates the deliveries. One id per
        audience, `{audience}:{webhook id}`; all audiences or none.
        """
        token = choose_secret(url, secret)
        url = with_url_token(url, token)
        if list_id:
            audience = self._split(list_id)[0]
            if not audience:
                raise ListNotFound(f"Mailchimp has no audience with id {list_id}.", platform=self.slug)
            audiences = [audience]
        else:
            audiences = [str(a["id"]) async for a in self._paged("lists", "lists", "lists.id")]
        if not audiences:
            raise ConnectorError("This Mailchimp account has no audience to watch for new subscribers.", platform=self.slug)
        created: list[str] = []
        body = {"url": url, "events": WEBHOOK_EVENTS, "sources": WEBHOOK_SOURCES}
        for audience in audiences:
            response = await self.http.request("POST", f"lists/{audience}/webhooks", json=body, expect=(400,))
            if response.status_code == 400 or "id" not in (reply := response.json()):
                for done in created:
                    await self.unregister_webhook(done)
                raise ConnectorError("Mailchimp could not save the webhook: its check GET of the URL did not get a 200; "
                                     "make sure Listwarden's public URL is reachable.", platform=self.slug)
            created.append(f"{audience}:{reply['id']}")
        return WebhookRegistration(ids=tuple(created), secrets=WebhookSecrets(url_token=token), url=url)

    async def unregister_webhook(self, webhook_id: str) -> None:
        """One `{audience}:{webhook id}` of a registration (a comma-joined list of them is accepted too)."""
        for part in filter(None, webhook_id.split(",")):
            audience, _, hook = part.partition(":")
            if ID_RE.fullmatch(audience) and ID_RE.fullmatch(hook):
                await self.http.request("DELETE", f"lists/{audience}/webhooks/{hook}", expect=(404,))
