"""One pooled httpx client for every platform, with retries, backoff and client-side rate limits.

Why here and not in each connector: the policy (what is retried, how long we wait, how a 429 is
honoured) is the same for every platform; only the error mapping and the documented request
rate differ, and those the connector declares.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
MAX_RETRY_WAIT = 60.0  # a Retry-After longer than this is not waited out inside one call

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


@dataclass(frozen=True)
class RateLimit:
    """A platform's documented request rate: `requests` per `per_seconds`, per account."""

    requests: int
    per_seconds: float
    burst: int | None = None


class TokenBucket:
    """Async token bucket; waiters queue fairly on a lock."""

    def __init__(self, limit: RateLimit) -> None:
        self.rate = limit.requests / limit.per_seconds
        self.capacity = float(limit.burst or limit.requests)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """After a 429: empty the bucket so every caller on this account waits."""
        self.tokens = min(self.tokens, 0) - seconds * self.rate
        self.updated = time.monotonic()


_buckets: dict[str, TokenBucket] = {}


def bucket_for(key: str, limit: RateLimit | None) -> TokenBucket | None:
    if limit is None:
        return None
    bucket = _buckets.get(key)
    if bucket is None:
        bucket = _buckets[key] = TokenBucket(limit)
    return bucket


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After (seconds or HTTP date), else the common X-RateLimit-Reset/RateLimit-Reset headers."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    for name in ("ratelimit-reset", "x-ratelimit-reset", "x-sib-ratelimit-reset"):
        value = response.headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            return seconds - time.time() if seconds > 1e9 else seconds  # epoch or delta
    return None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


class PlatformHttp:
    """Requests to one platform account, with the connector's auth, limits and error mapping."""

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
        self.bucket = bucket_for(connector.rate_limit_key(), connector.rate_limit)

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
    ) -> httpx.Response:
        """Send with retries on 429/5xx/transport errors; map other errors to ours.

        Statuses in `expect` are returned to the caller instead of being mapped (e.g. 404 on an
        idempotent delete).
        """
        platform = self.connector.slug
        is_write = write if write is not None else method.upper() not in ("GET", "HEAD")
        merged = {**self.connector.auth_headers(), **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            if self.bucket is not None:
                await self.bucket.acquire()
            try:
                response = await self.client.request(
                    method, self.url(path), params=params, json=json, data=data, headers=merged
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if attempt > self.max_retries:
                    raise PlatformUnavailable(
                        f"{self.connector.display_name} did not answer ({type(exc).__name__}).", platform=platform
                    ) from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status < 400 or status in expect:
                return response
            if status == 429 or status >= 500:
                wait = retry_after_seconds(response) if status == 429 else None
                if status == 429 and self.bucket is not None and wait:
                    self.bucket.pause(min(wait, MAX_RETRY_WAIT))
                if attempt > self.max_retries or (wait is not None and wait > MAX_RETRY_WAIT):
                    if status == 429:
                        raise RateLimited(
                            f"{self.connector.display_name} is rate limiting us; try again later.",
                            retry_after=wait,
                            platform=platform,
                            status=status,
                        )
                    raise PlatformUnavailable(
                        f"{self.connector.display_name} is unavailable (HTTP {status}); try again later.",
                        platform=platform,
                        status=status,
                    )
                await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
                continue
            raise self._map(status, _body(response), write=is_write)

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
