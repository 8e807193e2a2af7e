"""With REDIS_URL, what the API keeps per key is shared by every web process: two `listwarden serve`
processes on one database and the real Redis at 127.0.0.1:6379 give a key one rate limit between
them, and concurrent retries of one connect (one Idempotency-Key) create one connection.

The processes are real (`listwarden serve`, keys and credits from the CLI), as an operator runs them."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import fresh_database, served
from tests.api.processes import command, serving
from tests.storage.fixtures import TEST_KEY

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis_url():
    db = 15
    url = f"redis://127.0.0.1:6379/{db}"  # a database of our own: no other suite's keys, none left behind
    client = Redis.from_url(url)
    try:
        await client.ping()
    except Exception:
        pytest.skip("Redis is not running at 127.0.0.1:6379")
    yield url
    await client.aclose()


def environment(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "LISTWARDEN_SECRET_KEY": TEST_KEY, "REDIS_URL": redis_url,
            "LISTWARDEN_WEBHOOK_PROCESSOR": "false", "LISTWARDEN_LOG_LEVEL": "warning", **extra}


async def test_two_web_processes_share_each_keys_limit_and_idempotency(redis_url, template_db, tmp_path):
    with served("mailerlite") as platform:
        env = environment(fresh_database(template_db, tmp_path), redis_url, LISTWARDEN_API_RATE_PER_MINUTE="5",
                          LISTWARDEN_PLATFORM_BASE_URLS=f"mailerlite={platform.url}")
        limited_key = command(env, "apikey", "create", "--name", f"limited {secrets.token_hex(3)}").strip()
        connect_key = command(env, "apikey", "create", "--name", "connects").strip()
        command(env, "credits", "grant", "default", "10")
        with serving(env, tmp_path) as first, serving(env, tmp_path) as second:
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {limited_key}"}) as client:
                urls = (first, second) * 3
                codes = [(await client.get(f"{url}/v1/integrations")).status_code for url in urls]
                assert codes == [200] * 5 + [429]  # 5 a minute between the two processes, not 5 each
                limited = await client.get(f"{first}/v1/integrations")
                assert limited.status_code == 429 and 11 <= int(limited.headers["Retry-After"]) <= 12
                assert limited.json()["error"]["code"] == "rate_limit_exceeded"

            # concurrent retries of one connect, landing on both processes, create one connection
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {connect_key}", "Idempotency-Key": "same"},
                                         timeout=30) as client:
                body = {"credentials": platform.form()}
                answers = await asyncio.gather(*(client.post(f"{url}/v1/integrations/mailerlite/connections", json=body)
                                                 for url in (first, second, first, second)))
                assert {a.status_code for a in answers} == {201}, [a.text for a in answers]  # another key: its own bucket
                assert len({a.json()["id"] for a in answers}) == 1
                listed = await client.get(f"{second}/v1/integrations/mailerlite")
                assert len(listed.json()["connections"]) == 1
    redis = Redis.from_url(redis_url)
    try:
        buckets = [k async for k in redis.scan_iter(match="listwarden:api:rate:*")]
        assert len(buckets) >= 2 and all([0 < await redis.ttl(b) <= 120 for b in buckets])  # idle buckets expire
        await redis.delete(*buckets)
    finally:
        await redis.aclose()
