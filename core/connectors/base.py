"""The connector interface every email platform implements, and the value types it speaks.

A connector is one platform's quirks in one module: auth, pagination, batching, error codes,
webhook formats. Everything else (jobs, Slack, the REST API) sees only this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from core.connectors.errors import InvalidConfiguration, UnsupportedAction
from core.connectors.http import PlatformHttp, RateLimit


@dataclass(frozen=True)
class CredentialField:
    """One field of a platform's connect form; Slack modals and the REST API render from these."""

    name: str  # key in the credentials mapping, snake_case (mailfloss: "api_key", "api_url", "api_secret")
    label: str
    help: str  # where to find it in the platform's UI
    secret: bool = True
    required: bool = True
    placeholder: str | None = None


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
    subscriber_count: int | None  # None when the platform cannot count cheaply


@dataclass(frozen=True)
class Contact:
    id: str  # the platform's contact id (Mailchimp: subscriber hash; SendGrid: contact id)
    email: str
    list_id: str | None = None  # needed where unsubscribe is per list (ActiveCampaign, Mailchimp)


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

    url_token: str | None = None  # for platforms that sign nothing: a token in our URL
    signing_secret: str | None = None  # HMAC key (MailerLite, Klaviyo) or app secret (HubSpot)


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str | None  # the platform's id for dedupe, when it has one
    email: str | None  # None: hydrate through the API by contact_id (HubSpot)
    contact_id: str | None
    list_id: str | None = None
    kind: str = "subscribe"


class Connector(ABC):
    """One platform. Subclasses set the class attributes and implement the abstract methods."""

    slug: ClassVar[str]  # mailfloss's slug: "mailchimp", "brevo", ...
    display_name: ClassVar[str]
    auth: ClassVar[Literal["api_key", "oauth", "api_key_or_oauth"]] = "api_key"
    credential_fields: ClassVar[tuple[CredentialField, ...]]
    capabilities: ClassVar[Capabilities]
    default_base_url: ClassVar[str]
    rate_limit: ClassVar[RateLimit | None] = None  # the platform's documented request rate
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
        self.http = http or PlatformHttp.for_connector(self)

    def __repr__(self) -> str:  # never show credentials
        return f"<{type(self).__name__} {self.base_url}>"

    # --- configuration -------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        """Check required fields are present and well-formed; subclasses add format checks."""
        cleaned: dict[str, str] = {}
        for f in cls.credential_fields:
            value = credentials.get(f.name)
            if isinstance(value, str):
                value = value.strip()
            if f.required and not value:
                raise InvalidConfiguration(f"{f.label} is required.", field=f.name, platform=cls.slug)
            if value is not None and not isinstance(value, str):
                raise InvalidConfiguration(f"{f.label} must be text.", field=f.name, platform=cls.slug)
            if value:
                cleaned[f.name] = value
        for key in ("access_token", "refresh_token", "expires_at", "base_url"):
            if key in credentials and key not in cleaned and credentials[key] is not None:
                cleaned[key] = str(credentials[key])  # OAuth material kept alongside the form fields
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        """The API base URL for these credentials (Mailchimp's data centre, ActiveCampaign's account URL)."""
        return credentials.get("base_url") or cls.default_base_url

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every request."""
        return {}

    def rate_limit_key(self) -> str:
        """Requests share a client-side rate limit per account; by default per base URL and key."""
        import hashlib

        material = "|".join(f"{k}={v}" for k, v in sorted(self.credentials.items()))
        return f"{self.slug}:{self.base_url}:{hashlib.sha256(material.encode()).hexdigest()[:16]}"

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        """Map an error reply to one of ours; None leaves the default mapping (see PlatformHttp)."""
        return None

    # --- reading -------------------------------------------------------------------
    @abstractmethod
    async def check_credentials(self) -> AccountInfo:
        """One cheap authenticated call; raises InvalidCredentials on a bad key."""

    @abstractmethod
    async def lists(self) -> list[PlatformList]:
        """Lists, segments, tags... with their kind and subscriber count."""

    @abstractmethod
    def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Stream a list's subscribed members page by page; never holds a whole list."""

    # --- writing (only subscription state; never any other field, never an email) ------
    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        raise UnsupportedAction(f"{self.display_name} cannot unsubscribe contacts through its API.", platform=self.slug)

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
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

    async def register_webhook(self, url: str, list_id: str | None = None) -> str:
        raise UnsupportedAction(f"{self.display_name} webhooks are registered in its own UI.", platform=self.slug)

    async def unregister_webhook(self, webhook_id: str) -> None:
        raise UnsupportedAction(f"{self.display_name} webhooks are removed in its own UI.", platform=self.slug)

    async def resolve_contact(self, contact_id: str) -> Contact | None:
        """Hydrate an event that carries only an id (HubSpot)."""
        return None

    def contacts_since(self, since: datetime | None) -> AsyncIterator[Contact]:
        """Polling fallback: contacts created after `since`, for platforms without webhooks."""
        raise UnsupportedAction(f"{self.display_name} cannot be polled for new contacts.", platform=self.slug)

    async def aclose(self) -> None:
        """Connectors share the process-wide HTTP client, so there is nothing of their own to close."""
