"""What the API's handlers share in one process: the core's services, the rate limiter, the verifier.

Built once by `api.asgi.install`; handlers reach it as `request.app.state.api`. The core's
services (`core.services.services_of(runtime)`) are looked up per use, so the storage component
may build them after us and tests may hand in their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.idempotency import IdempotencyGate
from api.ratelimit import KeyRateLimiter, RateLimiter, RedisKeyRateLimiter
from core.runtime import Runtime
from core.services import Services, services_of
from core.settings import Settings


@dataclass
class ApiContext:
    runtime: Runtime
    limiter: RateLimiter
    gate: IdempotencyGate
    redis: Any = None  # redis.asyncio.Redis when REDIS_URL is set

    @classmethod
    def build(cls, runtime: Runtime) -> ApiContext:
        """Shared through Redis when there is one (several processes, one limit per key); in-process otherwise."""
        settings = runtime.settings
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
            limiter: RateLimiter = RedisKeyRateLimiter(redis, settings.api_rate_per_minute)
        else:
            limiter = KeyRateLimiter(settings.api_rate_per_minute)
        return cls(runtime=runtime, limiter=limiter, gate=IdempotencyGate(redis), redis=redis)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def services(self) -> Services:
        return services_of(self.runtime)

    @property
    def jobs(self) -> Any:
        """The core's jobs service (core/jobs/service.py)."""
        return self.services.jobs

    async def verifier(self) -> Any:
        """The job engine's verifier: one per process, so validation requests and jobs share one per-host
        SMTP budget and one DNS cache."""
        return await self.services.jobs.engine.verifier()

    def platform_base_url(self, slug: str) -> str | None:
        """The operator's base URL for a platform (LISTWARDEN_PLATFORM_BASE_URLS), else None: the connector's own."""
        return self.settings.platform_base_urls_map().get(slug)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
