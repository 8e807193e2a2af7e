"""One pooled httpx client for every platform, with retries, backoff and client-side rate limits.

Why here and not in each connector: the policy (what is retried, how long we wait, how a 429 is
honoured, how many requests an account may have in flight) is the same for every platform; only
the error mapping, the documented limits and the platform's own rate-limit headers differ, and
those the connector declares (see `Connector` in base.py):

- `rate_limit`: the account-wide limit every request draws from (one `RateLimit` or several).
- `endpoint_limits` + `limits_for()`: named limits that some requests draw from as well
  (Brevo: 100 an hour outside /contacts; Klaviyo: 1/s and 15/min when counting).
- `max_in_flight`: requests in flight per account (Mailchimp: 10 connections).
- `retry_after()` / `window_spent()`: how long a 429 or a spent window holds the account, or
  that a 429 is final (HubSpot's daily limit).
- `before_request()` / `on_unauthorized()`: renew credentials before a request, or once after
  a 401 (HubSpot OAuth refresh, Mailchimp's data-centre lookup).

Limiters are shared per account (`Connector.rate_limit_key`) and per event loop, because asyncio
primitives belong to the loop that made them.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidCredentials,
    PlatformUnavailable,
    RateLimited,
)

if TYPE_CHECKING:
    from core.connectors.base import Connector

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_RETRIES = 5
MAX_RETRY_WAIT = 60.0  # a platform's Retry-After (or pause) longer than this is not sat out inside one call
MAX_QUEUE_WAIT = 120.0  # nor is our own pacing beyond this (a spent hourly budget): RateLimited instead
DOWNLOAD_CHUNK = 64 * 1024

_client: httpx.AsyncClient | None = None


def shared_client() -> httpx.AsyncClient:
    """The process-wide pooled client (created lazily, inside the running event loop)."""
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            follow_redirects=False,  # a redirect could carry our auth header to another host
            headers={"User-Agent": "Listwarden/0.1 (+self-hosted list hygiene)"},
        )
    return _client


async def close_shared_client() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


# --- limits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateLimit:
    """A documented request rate: `requests` per `per_seconds`, per account.

    By default a token bucket holding `burst` (default `requests`) tokens. A bucket whose burst
    equals its rate can send twice the limit inside one fixed window (a full bucket, then its
    refill); `sliding=True` instead keeps a log of send times and never lets more than `requests`
    through in any `per_seconds`, wherever the platform's window boundaries fall.
    """

    requests: int
    per_seconds: float
    burst: int | None = None
    sliding: bool = False


Limits = RateLimit | tuple[RateLimit, ...] | None


def as_limits(value: Limits) -> tuple[RateLimit, ...]:
    """One limit, several, or none, as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, RateLimit) else tuple(value)


class _Limiter:
    """What every limiter shares: a pause (after a 429 or a spent window) it honours before its own pacing."""

    def __init__(self) -> None:
        self.resume_at = 0.0  # monotonic time before which nothing is sent

    def paused_for(self) -> float:
        return max(0.0, self.resume_at - time.monotonic())

    def pause(self, seconds: float) -> None:
        """Hold every caller of this limiter for `seconds` (never negative, never shortened)."""
        self.resume_at = max(self.resume_at, time.monotonic() + max(0.0, seconds))

    def wait_time(self) -> float:
        """Seconds until a request could be sent now (pause and pacing)."""
        return self.paused_for()

    async def acquire(self) -> None:
        await acquire_all([self])

    def _take(self) -> None:
        pass


class Pause(_Limiter):
    """No rate of its own: only the pauses the platform imposes (platforms with no documented rate)."""


class TokenBucket(_Limiter):
    """Async token bucket."""

    def __init__(self, limit: RateLimit) -> None:
        super().__init__()
        self.rate = limit.requests / limit.per_seconds
        self.capacity = float(limit.burst or limit.requests)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self) -> float:
        self._refill()
        pacing = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
        return max(self.paused_for(), pacing)

    def _take(self) -> None:
        self.tokens -= 1

    def pause(self, seconds: float) -> None:
        """After a 429: empty the bucket and hold it, so no burst follows the pause."""
        super().pause(seconds)
        self._refill()
        self.tokens = min(self.tokens, 0.0)


class SlidingWindow(_Limiter):
    """At most `requests` sends in any `per_seconds`: a log of send times, one window per limit."""

    MARGIN = 0.05  # seconds added to the window: the platform counts on its own clock

    def __init__(self, limit: RateLimit) -> None:
        super().__init__()
        self.span = limit.per_seconds + self.MARGIN
        self.limit = limit.requests
        self.sent: deque[float] = deque(maxlen=limit.requests)

    def wait_time(self) -> float:
        pacing = 0.0
        if len(self.sent) >= self.limit:
            pacing = max(0.0, self.sent[0] + self.span - time.monotonic())
        return max(self.paused_for(), pacing)

    def _take(self) -> None:
        self.sent.append(time.monotonic())


def limiter_for(limit: RateLimit) -> _Limiter:
    return SlidingWindow(limit) if limit.sliding else TokenBucket(limit)


async def acquire_all(limiters: Sequence[_Limiter]) -> None:
    """Wait until every limiter allows a send, then take from all of them at once.

    Check and take happen with no await between them, so they are atomic on the event loop, and
    no limiter records a send that then waits on another (a sliding window that logged a send
    before it really happened would let the next one through too early).
    """
    while True:
        wait = max((limiter.wait_time() for limiter in limiters), default=0.0)
        if wait <= 0:
            for limiter in limiters:
                limiter._take()
            return
        await asyncio.sleep(wait)


# Limiters per event loop, then per "<account key>|<name>|<limits>": an account's connectors share them.
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()
_no_loop: dict[str, Any] = {}


def _registry() -> dict[str, Any]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _no_loop
    return _per_loop.setdefault(loop, {})


def _shared(key: str, make: Any) -> Any:
    registry = _registry()
    found = registry.get(key)
    if found is None:
        found = registry[key] = make()
    return found


class LimitGroup:
    """The limiters of one name (the account-wide ones, or one endpoint limit): all must allow a send."""

    def __init__(self, limits: Sequence[RateLimit]) -> None:
        self.limiters: list[_Limiter] = [limiter_for(limit) for limit in limits] or [Pause()]

    def paused_for(self) -> float:
        return max(limiter.paused_for() for limiter in self.limiters)

    def pause(self, seconds: float) -> None:
        for limiter in self.limiters:
            limiter.pause(seconds)

    def wait_time(self) -> float:
        return max(limiter.wait_time() for limiter in self.limiters)

    async def acquire(self) -> None:
        await acquire_all(self.limiters)


@dataclass
class RequestLimits:
    """What one request draws from: the account group, its endpoint groups, the in-flight gate."""

    account: LimitGroup
    endpoints: list[LimitGroup]
    gate: asyncio.Semaphore | None

    @property
    def narrowest(self) -> list[LimitGroup]:
        """Where a platform's pause belongs: the endpoint limits when the request has any, else the account.

        Brevo's hourly budget running out must not stop the contacts endpoints, which have their own.
        """
        return self.endpoints or [self.account]

    def paused_for(self) -> float:
        return max(group.paused_for() for group in [self.account, *self.endpoints])

    def wait_time(self) -> float:
        """Seconds before this request could be sent now (Klaviyo's count budget looks before it leaps)."""
        return max(group.wait_time() for group in [self.account, *self.endpoints])

    def pause(self, seconds: float) -> None:
        for group in self.narrowest:
            group.pause(seconds)

    async def acquire(self) -> None:
        await acquire_all([limiter for group in [*self.endpoints, self.account] for limiter in group.limiters])

    def in_flight(self) -> contextlib.AbstractAsyncContextManager:
        return self.gate if self.gate is not None else contextlib.nullcontext()


# --- the platform's rate-limit headers --------------------------------------------------------
RESET_HEADERS = ("ratelimit-reset", "x-ratelimit-reset", "x-sib-ratelimit-reset")
REMAINING_HEADERS = ("ratelimit-remaining", "x-ratelimit-remaining", "x-sib-ratelimit-remaining")


def reset_seconds(response: httpx.Response) -> float | None:
    """Seconds until the platform's window resets, from RateLimit-Reset and its relatives (epoch or delta)."""
    for name in RESET_HEADERS:
        value = response.headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            # Large values are epoch seconds (SendGrid); a reset already past means "now", never negative.
            return max(0.0, seconds - time.time()) if seconds > 1e9 else max(0.0, seconds)
    return None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After (seconds or HTTP date), else the common X-RateLimit-Reset/RateLimit-Reset headers; never negative."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                parsed = None
            if parsed is not None:
                parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
                return max(0.0, parsed.timestamp() - time.time())
    return reset_seconds(response)


def spent_window_seconds(response: httpx.Response) -> float | None:
    """When a reply says the window is spent (X-RateLimit-Remaining: 0), the seconds until it resets."""
    for name in REMAINING_HEADERS:
        value = response.headers.get(name)
        if value is None:
            continue
        try:
            remaining = float(value)
        except ValueError:
            continue
        return reset_seconds(response) if remaining <= 0 else None
    return None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _later(seconds: float | None) -> str:
    if seconds is None or seconds <= MAX_RETRY_WAIT:
        return "later"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"in about {minutes} minutes"
    return f"in about {round(seconds / 3600)} hours"


class _Retry(Exception):
    """A retryable reply (429, 5xx) met while opening a stream."""

    def __init__(self, wait: float | None) -> None:
        self.wait = wait


class PlatformHttp:
    """Requests to one platform account, with the connector's auth, limits, hooks and error mapping."""

    def __init__(
        self,
        connector: Connector,
        client: httpx.AsyncClient | None = None,
        *,
        max_retries: int = MAX_RETRIES,
        backoff_base: float = 0.5,
    ) -> None:
        self.connector = connector
        self._client = client
        self.max_retries = max_retries
        self.backoff_base = backoff_base

    @classmethod
    def for_connector(cls, connector: Connector) -> PlatformHttp:
        return cls(connector)

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client or shared_client()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.connector.base_url}/{path.lstrip('/')}"

    # --- limits ---------------------------------------------------------------------------
    def limits(self, method: str = "GET", path: str = "", params: Mapping[str, Any] | None = None) -> RequestLimits:
        """The limiters a request to `path` draws from, shared by every connector of this account."""
        c = self.connector
        key = c.rate_limit_key()
        account_limits = as_limits(c.rate_limit)
        account = _shared(f"{key}|*|{account_limits!r}", lambda: LimitGroup(account_limits))
        endpoints: list[LimitGroup] = []
        for name in c.limits_for(method, path, params):
            named = as_limits((c.endpoint_limits or {}).get(name))
            if named:
                endpoints.append(_shared(f"{key}|{name}|{named!r}", lambda named=named: LimitGroup(named)))
        gate = None
        if c.max_in_flight:
            gate = _shared(f"{key}|in-flight|{c.max_in_flight}", lambda: asyncio.Semaphore(c.max_in_flight))
        return RequestLimits(account, endpoints, gate)

    @property
    def bucket(self) -> _Limiter | None:
        """The first account-wide limiter (for inspection); None when the account has no rate."""
        limiter = self.limits().account.limiters[0]
        return None if isinstance(limiter, Pause) else limiter

    async def _admit(self, limits: RequestLimits) -> None:
        """Wait for the limiters; a wait too long to sit out inside one call is RateLimited now."""
        paused = limits.paused_for()
        if paused > MAX_RETRY_WAIT:
            raise self._rate_limited(paused)
        pacing = limits.wait_time()
        if pacing > MAX_QUEUE_WAIT:
            raise self._rate_limited(pacing, status=None)
        await limits.acquire()

    def _rate_limited(self, wait: float | None, status: int | None = 429) -> RateLimited:
        return RateLimited(
            f"{self.connector.display_name} is rate limiting us; try again {_later(wait)}.",
            retry_after=wait,
            platform=self.connector.slug,
            status=status,
        )

    # --- requests ---------------------------------------------------------------------------
    async def _prepare(self, method: str, path: str, params: Any, headers: Mapping[str, str] | None, auth: bool
                       ) -> tuple[str, dict[str, str], RequestLimits | None]:
        """Hooks first (they may renew the token or learn the host), then the URL, headers and limits."""
        if not auth:
            return self.url(path), dict(headers or {}), None
        await self.connector.before_request()
        merged = {**self.connector.auth_headers(), **(headers or {})}
        return self.url(path), merged, self.limits(method, path, params)

    def _retry_wait(self, response: httpx.Response, limits: RequestLimits | None, attempt: int) -> float:
        """How long to wait before retrying a 429/5xx; raises when we should stop retrying."""
        status = response.status_code
        platform, name = self.connector.slug, self.connector.display_name
        wait: float | None = None
        if status == 429:
            decision = self.connector.retry_after(response) if limits is not None else None
            if isinstance(decision, ConnectorError):
                raise decision
            wait = decision if decision is not None else retry_after_seconds(response)
            if limits is not None and wait:
                limits.pause(wait)  # everyone on this account (or endpoint) waits, not just this caller
        if attempt > self.max_retries or (wait is not None and wait > MAX_RETRY_WAIT):
            if status == 429:
                raise self._rate_limited(wait)
            raise PlatformUnavailable(f"{name} is unavailable (HTTP {status}); try again later.", platform=platform, status=status)
        # A reset already past (0) still gets a short backoff rather than an instant hammer.
        return wait if wait else self._backoff(attempt)

    def _note_window(self, response: httpx.Response, limits: RequestLimits | None) -> None:
        """A reply that says the window is spent holds the next requests until it resets."""
        if limits is None or response.status_code == 429:
            return
        wait = self.connector.window_spent(response)
        if wait:
            limits.pause(wait)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool | None = None,
        expect: tuple[int, ...] = (),
        auth: bool = True,
    ) -> httpx.Response:
        """Send with retries on 429/5xx/transport errors; map other errors to ours.

        Statuses in `expect` are returned to the caller instead of being mapped (e.g. 404 on an
        idempotent delete). `auth=False` sends no auth headers, runs no auth hooks and draws on
        none of the account's limits: for calls that are not the platform's API as this account
        (Mailchimp's OAuth metadata call, which carries its own header).
        """
        platform = self.connector.slug
        is_write = write if write is not None else method.upper() not in ("GET", "HEAD")
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            url, merged, limits = await self._prepare(method, path, params, headers, auth)
            if limits is not None:
                await self._admit(limits)
            try:
                async with limits.in_flight() if limits is not None else contextlib.nullcontext():
                    response = await self.client.request(method, url, params=params, json=json, data=data, headers=merged)
            except httpx.TransportError as exc:  # timeouts included
                if attempt > self.max_retries:
                    raise PlatformUnavailable(
                        f"{self.connector.display_name} did not answer ({type(exc).__name__}).", platform=platform
                    ) from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            self._note_window(response, limits)
            status = response.status_code
            if status < 300 and auth and response.headers.get("content-type", "").startswith("text/html"):
                # No platform API answers in HTML: a captive portal, a proxy's login page, a wrong address.
                raise ConnectorError(
                    f"{self.connector.display_name} answered with a web page instead of its API; "
                    "check the connection's address and any proxy in between.",
                    platform=platform,
                    status=status,
                )
            if status < 400 or status in expect:
                return response
            if status == 401 and auth and not renewed and await self.connector.on_unauthorized(response):
                renewed, attempt = True, attempt - 1  # credentials renewed: one more try, not counted
                continue
            if status == 429 or status >= 500:
                await asyncio.sleep(self._retry_wait(response, limits, attempt))
                continue
            raise self._map(status, _body(response), write=is_write)

    async def stream(
        self,
        path: str,
        *,
        auth: bool = True,
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        """The body of one download, chunk by chunk, with `request()`'s retries.

        Opening is retried on 429/5xx and transport errors; a transfer that breaks midway is
        reopened and the bytes already delivered are skipped, so the caller sees one unbroken
        stream. `auth=False` is for links a platform hands out (SendGrid's pre-signed export
        files): no auth header, no auth hooks, none of the account's limits, and the link must be
        https (plain http only while the connector itself points at a plain-http emulator).
        Errors: 4xx through `map_error` with auth; without auth, one neutral sentence.
        """
        platform, name = self.connector.slug, self.connector.display_name
        if not auth:
            self._check_foreign_url(self.url(path))
        delivered = 0
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            url, merged, limits = await self._prepare(method, path, params, headers, auth)
            if limits is not None:
                await self._admit(limits)
            try:
                async with (limits.in_flight() if limits is not None else contextlib.nullcontext(),
                            self.client.stream(method, url, params=params, headers=merged) as response):
                    self._note_window(response, limits)
                    status = response.status_code
                    if status >= 400:
                        await response.aread()
                        if status == 401 and auth and not renewed and await self.connector.on_unauthorized(response):
                            renewed, attempt = True, attempt - 1
                            raise _Retry(0.0)
                        if status == 429 or status >= 500:
                            raise _Retry(self._retry_wait(response, limits, attempt))
                        if auth:
                            raise self._map(status, _body(response), write=False)
                        raise ConnectorError(
                            f"{name}'s download link failed (HTTP {status}); it may have expired, so try again.",
                            platform=platform,
                            status=status,
                        )
                    skip = delivered
                    async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk, skip = chunk[skip:], 0
                        delivered += len(chunk)
                        yield chunk
                    if skip:  # the file came back shorter than what we already delivered
                        raise ConnectorError(f"{name}'s download changed between attempts; try again.", platform=platform)
                    return
            except _Retry as retry:
                await asyncio.sleep(retry.wait)
            except httpx.TransportError as exc:
                if attempt > self.max_retries:
                    raise PlatformUnavailable(
                        f"{name}'s download did not complete ({type(exc).__name__}); try again later.", platform=platform
                    ) from None
                await asyncio.sleep(self._backoff(attempt))

    def _check_foreign_url(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        local_test = self.connector.base_url.startswith("http://")  # an emulator on loopback, set by the operator
        if scheme != "https" and not (local_test and scheme == "http"):
            raise ConnectorError(
                f"{self.connector.display_name} returned a download link that is not https; it was not fetched.",
                platform=self.connector.slug,
            )

    def _backoff(self, attempt: int) -> float:
        return min(MAX_RETRY_WAIT, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _map(self, status: int, body: Any, *, write: bool) -> Exception:
        mapped = self.connector.map_error(status, body, write=write)
        if mapped is not None:
            return mapped
        name = self.connector.display_name
        platform = self.connector.slug
        if status == 401:
            return InvalidCredentials(f"{name} rejected the API key; check it and connect again.", platform=platform, status=status)
        if status == 403:
            if write:
                return InsufficientScope(
                    f"This {name} key cannot write (it is read-only or lacks the scope); Verify Only still works.",
                    platform=platform,
                    status=status,
                )
            return InvalidCredentials(f"{name} refused access with this key.", platform=platform, status=status)
        return ConnectorError(f"{name} answered HTTP {status}.", platform=platform, status=status)
