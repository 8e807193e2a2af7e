"""The one error shape every /v1 answer uses: {"error": {"code", "message", ...}} (CampaignKit, seed 004).

Handlers raise `ApiError`, or let the core's own errors through: `from_core` maps each to its
status and code, so that the meaning of a core error is decided here once. The wrapper in
`api.endpoint` turns everything (the unexpected too) into JSON; no response ever carries a
traceback or a credential (every core message is one sentence that is safe to show).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                 **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details  # extra keys beside code/message, e.g. "field", "shortfall"

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": printable(self.message),
                          **{k: printable(v) if isinstance(v, str) else v for k, v in self.details.items()}}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def printable(text: str) -> str:
    """Text that can be sent as UTF-8: a message quoting an uploaded file may hold undecodable bytes."""
    return text.encode("utf-8", "replace").decode("utf-8")


def invalid_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, "invalid_request", message, **details)


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "Invalid API key")


def not_found(message: str = "Not found") -> ApiError:
    return ApiError(404, "not_found", message)


def rate_limited(wait: float) -> ApiError:
    return ApiError(429, "rate_limit_exceeded", "Rate limit exceeded. Please wait before making more requests",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))})


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "Something went wrong on our side; the server log has the details.")


def from_core(err: Exception) -> ApiError | None:
    """The API answer for an error raised by the core, or None if it is not one we know."""
    from core.apikeys import ApiKeyError
    from core.checks import SettingsError
    from core.cleanup import CleanupRuleRefused, PolicyError
    from core.connections import ConnectionDisconnected, ConnectionNotFound, UnknownPlatform
    from core.connectors.errors import (
        ConnectorError,
        InsufficientScope,
        InvalidConfiguration,
        InvalidCredentials,
        ListNotFound,
        PlatformUnavailable,
        RateLimited,
        UnsupportedAction,
    )
    from core.credits import InsufficientCredits
    from core.keywords import KeywordError
    from core.verify.files import FileFormatError

    message = str(err)
    if isinstance(err, InsufficientCredits):
        return ApiError(402, "insufficient_credits", message, needed=err.needed, balance=err.balance,
                        shortfall=err.shortfall)
    if isinstance(err, (UnknownPlatform, ConnectionNotFound)):
        return not_found(message)
    if isinstance(err, ConnectionDisconnected):
        return ApiError(409, "connection_disconnected", message)
    if isinstance(err, SettingsError):
        return invalid_request(message, **({"field": err.field} if err.field else {}))
    if isinstance(err, (KeywordError, PolicyError, ApiKeyError, FileFormatError)):
        return invalid_request(message)
    if isinstance(err, CleanupRuleRefused):
        return invalid_request(message, field="rules")
    if isinstance(err, ConnectorError):
        if isinstance(err, InvalidConfiguration):
            return invalid_request(message, field=f"credentials.{err.field}" if err.field else "credentials")
        if isinstance(err, InvalidCredentials):
            return ApiError(400, "invalid_credentials", message, field="credentials")
        if isinstance(err, InsufficientScope):
            return ApiError(400, "insufficient_scope", message, field="credentials")
        if isinstance(err, ListNotFound):
            return ApiError(404, "list_not_found", message, field="list_id")
        if isinstance(err, UnsupportedAction):
            return ApiError(422, "unsupported_action", message)
        if isinstance(err, RateLimited):
            return ApiError(503, "platform_rate_limited", message,
                            headers={"Retry-After": str(max(1, math.ceil(err.retry_after or 60)))})
        if isinstance(err, PlatformUnavailable):
            return ApiError(502, "platform_unavailable", message)
        return ApiError(502, "platform_error", message)
    return _from_jobs(err)


def _from_jobs(err: Exception) -> ApiError | None:
    try:
        from core.jobs.service import ApprovalRefused, JobNotFound
        from core.jobs.states import JobStateError
    except ImportError:  # the job engine is not installed in this build
        return None
    if isinstance(err, JobNotFound):
        return not_found("No such job.")
    if isinstance(err, ApprovalRefused):
        return ApiError(403, "forbidden", str(err))
    if isinstance(err, JobStateError):
        return ApiError(409, "invalid_state", str(err))
    return None
