"""The connector interface every email platform implements, and the value types it speaks.

A connector is one platform's quirks in one module: auth, pagination, batching, error codes,
webhook formats. Everything else (jobs, Slack, the REST API) sees only this interface:

    connector = get_platform(slug)(credentials, options={...})
    await connector.check_credentials()            # AccountInfo, or InvalidCredentials
    await connector.lists()                        # [PlatformList]; a count may be None ...
    await connector.subscriber_count(list_id)      # ... then ask for the one the user picked
    async for contact in connector.members(list_id): ...
    await connector.unsubscribe(contacts)          # ActionOutcome: done ids, failed {id: reason}
    await connector.delete(contacts, permanent=False)
    await connector.resubscribe(contacts)          # `listwarden jobs undo`
    registration = await connector.register_webhook(url, list_id, secret=connection_secret)
    connector.authenticate_webhook(request, registration.secrets); connector.parse_webhook(request)
    async for contact in connector.contacts_since(mark): mark = contact.created_at or mark

Every error is a `ConnectorError` (errors.py) whose text is one sentence safe to show a user.

Options every connector understands (`options=`), besides its own documented ones:
- `rate_limit`: replaces the account-wide `rate_limit` (None lifts it: emulators, benchmarks).
- `endpoint_limits`: a mapping merged over `endpoint_limits` (a value None lifts that one), or
  None to lift them all.
- `max_in_flight`: replaces `max_in_flight` (None lifts it).
- `on_credentials_change`: `async (credentials: dict) -> None`, called with the whole set when a
  connector renews or learns stored material (a refreshed OAuth token, Mailchimp's data centre),
  so the caller can persist it, encrypted.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from core.connectors.errors import (
    ConnectorError,
    InvalidConfiguration,
    ListNotFound,
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import Limits, PlatformHttp, RateLimit, spent_window_seconds

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Credential keys kept beside the form fields by validate_credentials: OAuth material and the
# operator's base URL. A connector adds its own through `stored_keys`.
TOKEN_KEYS = ("access_token", "refresh_token", "expires_at", "base_url")


@dataclass(frozen=True)
class CredentialField:
    """One field of a platform's connect form; Slack modals and the REST API render from these."""

    name: str  # key in the credentials mapping, snake_case (mailfloss: "api_key", "api_url", "api_secret")
    label: str
    help: str  # where to find it in the platform's UI
    secret: bool = True
    required: bool = True
    placeholder: str | None = None
    # (value, label) pairs when the field is a choice (SendGrid's region); the value is stored.
    choices: tuple[tuple[str, str], ...] = ()
    default: str | None = None  # used when the field is left empty


class ListKind(StrEnum):
    LIST = "list"
    AUDIENCE = "audience"
    SEGMENT = "segment"
    TAG = "tag"
    GROUP = "group"
    FORM = "form"
    STATIC = "static"  # HubSpot static list
    ACTIVE = "active"  # HubSpot active (dynamic) list
    ALL = "all"  # all contacts of the account


@dataclass(frozen=True)
class PlatformList:
    id: str
    name: str
    kind: ListKind
    # None when the platform cannot count cheaply (Klaviyo: 1/s, 15/min); subscriber_count() fetches one.
    subscriber_count: int | None


@dataclass(frozen=True)
class Contact:
    id: str  # the platform's contact id (Mailchimp: subscriber hash; SendGrid: contact id)
    email: str
    list_id: str | None = None  # needed where unsubscribe is per list (ActiveCampaign, Mailchimp)
    # When the platform created the contact, where it says (contacts_since sets it, for the poller's high-water mark).
    created_at: datetime | None = None


@dataclass(frozen=True)
class Capabilities:
    can_unsubscribe: bool = True
    can_delete: bool = True
    can_resubscribe: bool = True  # for `listwarden jobs undo`
    list_kinds: tuple[ListKind, ...] = (ListKind.LIST,)
    webhooks: Literal["signed", "token", "none"] = "none"  # how new-subscriber webhooks are authenticated
    webhook_registration: bool = False  # we can create/delete the webhook through the API
    polling: bool = False  # contacts_since() works, for platforms without a webhook


@dataclass
class ActionOutcome:
    """What an unsubscribe/delete did: per contact id, done or the reason it failed."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: ActionOutcome) -> None:
        self.done.extend(other.done)
        self.failed.update(other.failed)


@dataclass(frozen=True)
class AccountInfo:
    account_id: str | None
    name: str | None = None
    can_write: bool | None = None  # None: cannot tell without trying a write


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook delivery as received, transport-neutral."""

    method: str
    url: str  # full URL as the platform called it (HubSpot v3 signs it)
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class WebhookSecrets:
    """Secrets a connection holds to authenticate its webhooks (never shown)."""

    url_token: str | None = None  # for platforms that sign nothing: a token in our URL (Brevo: its bearer token)
    signing_secret: str | None = None  # HMAC key (MailerLite, Klaviyo) or app secret (HubSpot)


@dataclass(frozen=True)
class WebhookRegistration:
    """What `register_webhook` created: store it with the connection.

    `ids` are the platform's webhook ids, one per place it was registered (Mailchimp registers
    per audience); `unregister_webhook` takes each. `secrets` is what `authenticate_webhook`
    needs for the deliveries: the connection's secret we passed, or the one the platform chose
    (MailerLite). `url` is the URL as registered (with `?token=` where the platform signs nothing).
    """

    ids: tuple[str, ...]
    secrets: WebhookSecrets
    url: str


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str | None  # the platform's id for dedupe, when it has one
    email: str | None  # None: hydrate through the API by contact_id (HubSpot)
    contact_id: str | None
    list_id: str | None = None
    kind: str = "subscribe"


# The interface methods whose failures reach users; see Connector.__init_subclass__.
_GUARDED = ("check_credentials", "lists", "subscriber_count", "unsubscribe", "delete", "resubscribe",
            "register_webhook", "unregister_webhook", "resolve_contact")
_GUARDED_STREAMS = ("members", "contacts_since")


def _unexpected(connector: Connector, method: str, exc: Exception) -> ConnectorError:
    """A platform reply the connector could not read (or a bug): logged in full for the operator,
    one sentence for the user."""
    log.error("%s.%s failed unexpectedly", type(connector).__name__, method, exc_info=exc)
    return ConnectorError(
        f"{connector.display_name} answered in a way Listwarden did not expect; try again, and report it if it keeps happening.",
        platform=connector.slug,
    )


def _guard(method: Any, name: str) -> Any:
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Connector, *args: Any, **kw: Any) -> AsyncIterator[Any]:
            try:
                async with contextlib.aclosing(method(self, *args, **kw)) as items:
                    async for item in items:
                        yield item
            except ConnectorError:
                raise
            except Exception as exc:  # noqa: BLE001 - the point: nothing else reaches a user
                raise _unexpected(self, name, exc) from None

        return stream
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def call(self: Connector, *args: Any, **kw: Any) -> Any:
            try:
                return await method(self, *args, **kw)
            except ConnectorError:
                raise
            except Exception as exc:  # noqa: BLE001 - the point: nothing else reaches a user
                raise _unexpected(self, name, exc) from None

        return call
    return method


def _guard_webhook(method: Any, error: type[ConnectorError], sentence: str) -> Any:
    @functools.wraps(method)
    def call(self: Connector, *args: Any, **kw: Any) -> Any:
        try:
            return method(self, *args, **kw)
        except ConnectorError:
            raise
        except Exception as exc:
            log.warning("%s.%s could not read a delivery", type(self).__name__, method.__name__, exc_info=exc)
            raise error(sentence.format(name=self.display_name), platform=self.slug) from None

    return call


class Connector(ABC):
    """One platform. Subclasses set the class attributes and implement the abstract methods.

    Every error a caller sees is a ConnectorError whose text is one sentence: a subclass's
    interface methods are wrapped (`__init_subclass__`) so that anything else (a reply the
    connector could not read, a bug) is logged for the operator and reaches the user as one
    sentence, never a traceback. A webhook that cannot be checked is rejected, one that cannot be
    read is malformed.

    Class attributes:
    - `slug` (mailfloss's), `display_name`, `auth`, `credential_fields` (the connect form),
      `stored_keys` (extra credential keys the connector itself stores, e.g. Mailchimp's `dc`),
      `capabilities`, `default_base_url` (overridable by `base_url=`), `webhook_steps`.
    - Limits, enforced by PlatformHttp per account: `rate_limit` (every request),
      `endpoint_limits` (named; `limits_for()` says which a request also draws from),
      `max_in_flight` (requests in flight at once).

    Hooks PlatformHttp calls: `auth_headers()`, `before_request()`, `on_unauthorized()`,
    `map_error()`, `retry_after()` (429s), `window_spent()` (replies that spend the window).
    """

    slug: ClassVar[str]  # mailfloss's slug: "mailchimp", "brevo", ...
    display_name: ClassVar[str]
    auth: ClassVar[Literal["api_key", "oauth", "api_key_or_oauth"]] = "api_key"
    credential_fields: ClassVar[tuple[CredentialField, ...]]
    stored_keys: ClassVar[tuple[str, ...]] = ()  # kept by validate_credentials beside the form fields and TOKEN_KEYS
    capabilities: ClassVar[Capabilities]
    default_base_url: ClassVar[str]
    rate_limit: Limits = None  # the platform's documented account-wide request rate (one RateLimit or several)
    endpoint_limits: Mapping[str, Limits] = {}  # named per-endpoint limits, see limits_for()
    max_in_flight: int | None = None  # requests in flight per account (Mailchimp: 10 connections)
    webhook_steps: ClassVar[str] = ""  # how a user registers our webhook URL by hand, where we cannot

    def __init__(
        self,
        credentials: Mapping[str, str],
        *,
        base_url: str | None = None,
        http: PlatformHttp | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.credentials = dict(self.validate_credentials(credentials))
        self.base_url = (base_url or self.resolve_base_url(self.credentials)).rstrip("/")
        self.options = dict(options or {})
        if "rate_limit" in self.options:  # emulators and benchmarks lift or change the platform's limits
            self.rate_limit = self.options["rate_limit"]
        if "endpoint_limits" in self.options:
            overrides = self.options["endpoint_limits"]
            self.endpoint_limits = {} if overrides is None else {**type(self).endpoint_limits, **overrides}
        if "max_in_flight" in self.options:
            self.max_in_flight = self.options["max_in_flight"]
        self.http = http or PlatformHttp.for_connector(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in (*_GUARDED, *_GUARDED_STREAMS):
            if name in cls.__dict__:
                setattr(cls, name, _guard(cls.__dict__[name], name))
        if "authenticate_webhook" in cls.__dict__:
            cls.authenticate_webhook = _guard_webhook(  # type: ignore[method-assign]
                cls.__dict__["authenticate_webhook"], WebhookRejected, "{name} webhook could not be checked, so it was refused.")
        if "parse_webhook" in cls.__dict__:
            cls.parse_webhook = _guard_webhook(  # type: ignore[method-assign]
                cls.__dict__["parse_webhook"], WebhookMalformed, "{name} webhook body could not be read.")

    def __repr__(self) -> str:  # never show credentials
        return f"<{type(self).__name__} {self.base_url}>"

    # --- configuration -------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        """Check required fields are present and well-formed; subclasses add format checks.

        Keeps the form fields (defaults filled in, choices checked), TOKEN_KEYS and the
        connector's `stored_keys`; anything else is dropped. An OAuth token response's
        `expires_in` becomes `expires_at` (epoch seconds) when no `expires_at` is given.
        """
        cleaned: dict[str, str] = {}
        for f in cls.credential_fields:
            value = credentials.get(f.name)
            if isinstance(value, str):
                value = value.strip()
            if not value and f.default is not None:
                value = f.default
            if f.required and not value:
                raise InvalidConfiguration(f"{f.label} is required.", field=f.name, platform=cls.slug)
            if value is not None and not isinstance(value, str):
                raise InvalidConfiguration(f"{f.label} must be text.", field=f.name, platform=cls.slug)
            if value and f.choices:
                allowed = {choice.lower(): choice for choice, _ in f.choices}
                if value.lower() not in allowed:
                    names = " or ".join(choice for choice, _ in f.choices)
                    raise InvalidConfiguration(f"{f.label} must be {names}.", field=f.name, platform=cls.slug)
                value = allowed[value.lower()]
            if value:
                cleaned[f.name] = value
        for key in (*TOKEN_KEYS, *cls.stored_keys):
            if key in credentials and key not in cleaned and credentials[key] is not None:
                value = str(credentials[key]).strip()
                if value:
                    cleaned[key] = value  # OAuth and connector material kept alongside the form fields
        if "expires_at" not in cleaned and credentials.get("expires_in") is not None:
            try:
                cleaned["expires_at"] = str(int(time.time() + float(credentials["expires_in"])))
            except (TypeError, ValueError):
                pass
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        """The API base URL for these credentials (Mailchimp's data centre, ActiveCampaign's account URL)."""
        return credentials.get("base_url") or cls.default_base_url

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every request (read after before_request, so a renewed token is used)."""
        return {}

    def rate_limit_key(self) -> str:
        """Requests share client-side limits per account; by default per base URL and key."""
        material = "|".join(f"{k}={v}" for k, v in sorted(self.credentials.items()))
        return f"{self.slug}:{self.base_url}:{hashlib.sha256(material.encode()).hexdigest()[:16]}"

    def limits_for(self, method: str, path: str, params: Mapping[str, Any] | None) -> tuple[str, ...]:
        """Names of `endpoint_limits` this request draws from besides `rate_limit` (default none).

        A reply that says a window is spent, or a 429, pauses these named limits when the request
        has any, else the account-wide one.
        """
        return ()

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        """Map an error reply to one of ours; None leaves the default mapping (see PlatformHttp)."""
        return None

    def retry_after(self, response: httpx.Response) -> float | ConnectorError | None:
        """For a 429: seconds to wait before retrying, an error to raise now because waiting will
        not help (HubSpot's daily limit), or None to read the standard headers (Retry-After,
        RateLimit-Reset and relatives), falling back to backoff."""
        return None

    def window_spent(self, response: httpx.Response) -> float | None:
        """Seconds to hold this account's next requests after a reply that spends the platform's
        window (`X-RateLimit-Remaining: 0` and a reset); None for no pause."""
        return spent_window_seconds(response)

    async def before_request(self) -> None:
        """Called before every attempt of every authenticated request: renew a token about to
        expire, or finish an async setup step (Mailchimp learns its data centre here). Requests
        the hook sends itself must use `auth=False`."""

    async def on_unauthorized(self, response: httpx.Response) -> bool:
        """A 401 arrived: renew the credentials and return True to retry once, or False to fail."""
        return False

    async def update_credentials(self, changes: Mapping[str, str]) -> None:
        """Adopt renewed or learnt credential material and hand the whole set to `on_credentials_change`."""
        self.credentials.update({k: str(v) for k, v in changes.items()})
        callback = self.options.get("on_credentials_change")
        if callback is not None:
            await callback(dict(self.credentials))  # the caller persists them, encrypted

    # --- reading -------------------------------------------------------------------
    @abstractmethod
    async def check_credentials(self) -> AccountInfo:
        """One cheap authenticated call; raises InvalidCredentials on a bad key."""

    @abstractmethod
    async def lists(self) -> list[PlatformList]:
        """Lists, segments, tags... with their kind and subscriber count.

        A count may be None where counting is expensive (Klaviyo: 1/s, 15/min); callers then ask
        subscriber_count() for the one list the user picks.
        """

    async def subscriber_count(self, list_id: str) -> int | None:
        """One list's subscriber count; platforms with expensive counts fetch just this one.

        The default reads it from lists(); ListNotFound for an unknown id.
        """
        for found in await self.lists():
            if found.id == list_id:
                return found.subscriber_count
        raise ListNotFound(f"{self.display_name} has no list with id {list_id[:80]}.", platform=self.slug)

    @abstractmethod
    def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Stream a list's subscribed members page by page; never holds a whole list."""

    # --- writing (only subscription state; never any other field, never an email) ------
    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Batched where the platform allows; already unsubscribed counts as done."""
        raise UnsupportedAction(f"{self.display_name} cannot unsubscribe contacts through its API.", platform=self.slug)

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """Batched where the platform allows; already gone counts as done."""
        raise UnsupportedAction(f"{self.display_name} has no delete; use Unsubscribe instead.", platform=self.slug)

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        raise UnsupportedAction(f"{self.display_name} cannot resubscribe contacts through its API.", platform=self.slug)

    # --- verify-first ----------------------------------------------------------------
    def authenticate_webhook(self, request: WebhookRequest, secrets: WebhookSecrets) -> None:
        """Raise WebhookRejected unless the delivery is genuine and fresh. Constant-time comparisons."""
        raise UnsupportedAction(f"{self.display_name} sends no new-subscriber webhook.", platform=self.slug)

    def parse_webhook(self, request: WebhookRequest) -> list[WebhookEvent]:
        """The new subscribers a delivery announces; raise WebhookMalformed on a body we cannot read."""
        raise UnsupportedAction(f"{self.display_name} sends no new-subscriber webhook.", platform=self.slug)

    def webhook_response(self, request: WebhookRequest) -> tuple[int, bytes, str]:
        """(status, body, content type) the platform expects back from an accepted delivery."""
        return 200, b'{"status":"OK"}', "application/json"

    async def register_webhook(self, url: str, list_id: str | None = None, *, secret: str | None = None) -> WebhookRegistration:
        """Register our new-subscriber webhook `url` (for one list where the platform scopes them).

        `secret` is the connection's webhook secret: where the platform takes one we choose (a
        URL token, a bearer token, an HMAC key), it is used; None makes a new one. The returned
        registration says which secret the deliveries will carry.
        """
        raise UnsupportedAction(f"{self.display_name} webhooks are registered in its own UI.", platform=self.slug)

    async def unregister_webhook(self, webhook_id: str) -> None:
        """Remove one of `WebhookRegistration.ids`; one already gone is fine."""
        raise UnsupportedAction(f"{self.display_name} webhooks are removed in its own UI.", platform=self.slug)

    async def resolve_contact(self, contact_id: str) -> Contact | None:
        """Hydrate an event that carries only an id (HubSpot)."""
        return None

    def contacts_since(self, since: datetime | None) -> AsyncIterator[Contact]:
        """Polling fallback: contacts created after `since`, oldest first, for platforms without webhooks.

        Each carries `created_at`, so the caller keeps an exact high-water mark for the next poll.
        """
        raise UnsupportedAction(f"{self.display_name} cannot be polled for new contacts.", platform=self.slug)

    async def aclose(self) -> None:
        """Connectors share the process-wide HTTP client, so there is nothing of their own to close."""


__all__ = [
    "TOKEN_KEYS",
    "AccountInfo",
    "ActionOutcome",
    "Capabilities",
    "Connector",
    "Contact",
    "CredentialField",
    "ListKind",
    "PlatformList",
    "RateLimit",
    "WebhookEvent",
    "WebhookRegistration",
    "WebhookRequest",
    "WebhookSecrets",
]
