"""The small set of errors every connector maps its platform's failures onto.

Messages are one plain sentence a user can act on, and never contain a credential.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class. `str(err)` is safe to show to a user."""

    code = "platform_error"

    def __init__(self, message: str, *, platform: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.platform = platform
        self.status = status


class InvalidCredentials(ConnectorError):
    """The platform refused the key or token (401, or 403 where the platform uses it for bad keys)."""

    code = "invalid_credentials"


class InsufficientScope(ConnectorError):
    """The key works for reading but the platform refused a write: read-only or under-scoped."""

    code = "insufficient_scope"


class RateLimited(ConnectorError):
    """Still rate limited after our retries."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PlatformUnavailable(ConnectorError):
    """5xx, timeouts or connection failures that outlasted our retries."""

    code = "platform_unavailable"


class ListNotFound(ConnectorError):
    code = "list_not_found"


class UnsupportedAction(ConnectorError):
    """The platform cannot do this at all (ConvertKit has no delete)."""

    code = "unsupported_action"


class InvalidConfiguration(ConnectorError):
    """The credential fields are malformed (missing field, bad URL, wrong data-centre suffix)."""

    code = "invalid_configuration"

    def __init__(self, message: str, *, field: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.field = field


class WebhookRejected(ConnectorError):
    """A webhook delivery failed authentication (bad signature, token or stale timestamp)."""

    code = "webhook_rejected"


class WebhookMalformed(ConnectorError):
    """A webhook body could not be parsed as the platform's format."""

    code = "webhook_malformed"
