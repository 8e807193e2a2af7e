"""The per-host SMTP budget on Redis: several processes (here, several RedisHostSlots on one Redis)
share one limit, one connection rate and one cool-down, and a holder that dies without releasing
loses its slots when they expire."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from core.jobs.host_slots import RedisHostSlots

pytestmark = pytest.mark.redis


@pytest_asyncio.fixture(loop_scope="module")
async def prefix():
    name = f"lwtest-{uuid.uuid4().hex[:8]}"
    yield name
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    keys = [k async for k in redis.scan_iter(f"{name}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def slots(prefix: str, **kw) -> RedisHostSlots:
    return RedisHostSlots(Redis.from_url("redis://127.0.0.1:6379/0"), prefix=prefix, **kw)


async def test_the_limit_is_shared_by_every_process(prefix) -> None:
    a, b = slots(prefix, connect_burst=100, connect_rate=100), slots(prefix, connect_burst=100, connect_rate=100)
    got = [await s.try_acquire("10.0.0.1", 3) for s in (a, b, a, b, a)]
    assert [g is not None for g in got] == [True, True, True, False, False]
    await b.release(got[1])
    assert await a.try_acquire("10.0.0.1", 3) is not None  # the slot b gave back is usable by a
    assert await a.try_acquire("10.0.0.2", 3) is not None  # hosts are separate budgets
    await a.aclose(); await b.aclose()


async def test_racing_acquirers_never_exceed_the_limit(prefix) -> None:
    many = [slots(prefix, connect_burst=1000, connect_rate=1000) for _ in range(4)]
    got = await asyncio.gather(*(s.try_acquire("10.0.0.3", 2) for s in many for _ in range(10)))
    assert sum(g is not None for g in got) == 2
    for s in many:
        await s.aclose()


async def test_connection_rate_and_cool_down_are_shared(prefix) -> None:
    a, b = slots(prefix, connect_burst=2, connect_rate=0.01), slots(prefix, connect_burst=2, connect_rate=0.01)
    first, second = await a.try_acquire("10.0.0.4", 10), await b.try_acquire("10.0.0.4", 10)
    assert first and second and await a.try_acquire("10.0.0.4", 10) is None  # the burst of 2 is spent, together
    await a.cool_down("10.0.0.5", 30)
    assert await b.try_acquire("10.0.0.5", 10) is None  # b honours a's cool-down
    await a.aclose(); await b.aclose()


async def test_a_dead_holders_slots_expire(prefix) -> None:
    dead = slots(prefix, connect_burst=10, connect_rate=10, slot_ttl=0.3)
    assert await dead.try_acquire("10.0.0.6", 1) is not None
    dead._renewer.cancel()  # the process is gone: no renewal, no release
    other = slots(prefix, connect_burst=10, connect_rate=10)
    assert await other.try_acquire("10.0.0.6", 1) is None
    await asyncio.sleep(0.4)
    assert await other.try_acquire("10.0.0.6", 1) is not None
    await other.aclose(); await dead.redis.aclose()


async def test_web_processes_verify_within_the_shared_budget_too(prefix, database) -> None:
    """With REDIS_URL, the REST API's and Slack's verifier in a web process counts against the same
    per-host budget on Redis as the workers', not an in-process one of its own."""
    from core.services import Services
    from tests.storage.fixtures import test_settings

    settings = test_settings(database, REDIS_URL="redis://127.0.0.1:6379/0", LISTWARDEN_REDIS_PREFIX=prefix)
    services = Services.build(settings)
    await services.job_system.start()
    try:
        verifier = await services.job_system.engine.verifier()
        assert isinstance(verifier.slots, RedisHostSlots)
    finally:
        await services.job_system.stop()
