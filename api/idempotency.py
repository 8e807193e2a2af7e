"""`Idempotency-Key`: a retried request gets the first answer instead of doing the work twice.

The first successful answer is stored through the core (`services.idempotency`, one row per
scope and key, kept a day) together with a fingerprint of the request; a retry with the same
key replays it, and a different request under the same key is refused (422) rather than
silently answered with someone else's result. Requests sharing a key are serialised while the
first one runs: in this process by a lock, and across processes by a Redis lock when REDIS_URL
is set, so two concurrent retries never both create a connection.

Only successes are remembered: a 400 for a mistyped key must not stick to the key the user
retries with after fixing it (Stripe's rule for requests that failed validation).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from api.errors import ApiError, invalid_request

MAX_KEY = 255
LOCK_SECONDS = 120  # longest a first request may hold a key (a slow platform's live check)

Answer = tuple[int, dict[str, Any]]


def fingerprint(body: Any) -> str:
    """A digest of what was asked, so a reused key with a different request is noticed (no secret is kept)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def read_key(header: str | None) -> str | None:
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable() or not key.isascii():
        raise invalid_request(f"The Idempotency-Key header must be 1 to {MAX_KEY} printable ASCII characters.",
                              field="Idempotency-Key")
    return key


@dataclass
class IdempotencyGate:
    redis: Any = None
    _locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = field(default_factory=dict, repr=False)

    @contextlib.asynccontextmanager
    async def _held(self, scope: str, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault((scope, key), (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                if self.redis is None:
                    yield
                else:
                    name = "listwarden:api:idem:" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()
                    async with self.redis.lock(name, timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS):
                        yield
        finally:
            users[0] -= 1
            if users[0] == 0:  # the last one out drops the lock; the stored answer does the replaying
                del self._locks[(scope, key)]

    async def run(self, services: Any, scope: str, key: str | None, request_body: Any,
                  work: Callable[[], Awaitable[Answer]]) -> Answer:
        """`work()`'s answer, or the first one's for this (scope, key)."""
        if key is None:
            return await work()
        digest = fingerprint(request_body)
        async with self._held(scope, key):
            stored = await services.idempotency.replay(scope, key)
            if stored is not None:
                return _replayed(stored, digest)
            status, body = await work()
            if 200 <= status < 300:
                await services.idempotency.remember(scope, key, status, {"fingerprint": digest, "body": body})
            return status, body


def _replayed(stored: Answer, digest: str) -> Answer:
    status, saved = stored
    if saved.get("fingerprint") != digest:
        raise ApiError(422, "idempotency_key_reused",
                       "This Idempotency-Key was already used for a different request; use a new key.",
                       field="Idempotency-Key")
    return status, dict(saved.get("body") or {})
