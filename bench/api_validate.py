"""POST /v1/email/validate with 100 addresses, over HTTP to a real `listwarden serve`, on loopback.

Two figures:
- end to end: every request carries 100 addresses never seen before, so each is looked up in DNS
  and checked over SMTP against the loopback mail servers of tests/mailservers (20 domains on 5
  hosts; 4 in 5 mailboxes exist, the rest are refused);
- overhead: the same requests again. The verifier answers repeats from its memory (the SMTP
  servers' counters prove no RCPT was sent), so what is left is the API's own work per request:
  key check, rate limit, body parsing and dedupe, the credit charge and refund, storing 100
  results by contextId, and the JSON, through uvicorn and SQLite.

    .venv/bin/python bench/api_validate.py [--requests 30] [--concurrency 4]

The server is a separate process (`listwarden serve`, SQLite in a temporary directory, a key and
credits made with the CLI); nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.processes import command, serving
from tests.mailservers import MailWorld
from tests.storage.fixtures import TEST_KEY

BATCH = 100
DOMAINS = 20
HOSTS = 5


def addresses(request: int) -> list[str]:
    return [f"r{request}u{i}@d{i % DOMAINS}.bench.example" for i in range(BATCH)]


def build_world(requests: int) -> MailWorld:
    world = MailWorld()
    existing = {a for r in range(requests) for i, a in enumerate(addresses(r)) if i % 5}
    hosts = [world.smtp_host(name=f"mx{h}.bench.example", mailboxes={a for a in existing if int(a.split("@d")[1].split(".")[0]) % HOSTS == h})
             for h in range(HOSTS)]
    for d in range(DOMAINS):
        world.domain(f"d{d}.bench.example", mx=[hosts[d % HOSTS]])
    return world


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def send(client: httpx.AsyncClient, url: str, emails: list[str]) -> float:
    started = time.perf_counter()
    response = await client.post(f"{url}/v1/email/validate", json={"emails": emails})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == len(emails)
    return elapsed


async def phase(url: str, key: str, batches: list[list[str]], concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = list(batches)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120, limits=limits) as client:
        async def worker() -> None:
            while queue:
                latencies.append(await send(client, url, queue.pop(0)))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall


def report(title: str, latencies: list[float], wall: float, rcpts: int) -> None:
    ms = [x * 1000 for x in latencies]
    print(f"{title:<34} requests {len(ms):>4}  p50 {percentile(ms, 50):8.1f} ms  p90 {percentile(ms, 90):8.1f} ms  "
          f"p99 {percentile(ms, 99):8.1f} ms  max {max(ms):8.1f} ms  mean {statistics.mean(ms):8.1f} ms  "
          f"{len(ms) * BATCH / wall:8.0f} addresses/s  RCPTs {rcpts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per run (100 addresses each)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight in the concurrent runs")
    args = parser.parse_args()
    rounds = 2  # sequential, then concurrent: each with addresses of its own
    world = build_world(args.requests * rounds)
    with world.running(), tempfile.TemporaryDirectory() as tmp:
        env = {"DATABASE_URL": f"sqlite://{tmp}/bench.sqlite3", "LISTWARDEN_SECRET_KEY": TEST_KEY,
               "LISTWARDEN_API_RATE_PER_MINUTE": "1000000", "LISTWARDEN_WEBHOOK_PROCESSOR": "false",
               "LISTWARDEN_LOG_LEVEL": "warning", "LISTWARDEN_GREYLIST_MAX_WAIT": "1", **world.env()}
        key = command(env, "apikey", "create", "--name", "bench").strip()
        command(env, "credits", "grant", "default", str(10**9))
        with serving(env, Path(tmp)) as url:
            for concurrency, offset in ((1, 0), (args.concurrency, args.requests)):
                batches = [addresses(offset + r) for r in range(args.requests)]
                before = sum(h.stats.rcpt for h in world.hosts)
                latencies, wall = asyncio.run(phase(url, key, batches, concurrency))
                rcpts = sum(h.stats.rcpt for h in world.hosts) - before
                report(f"end to end, concurrency {concurrency}", latencies, wall, rcpts)
                before = sum(h.stats.rcpt for h in world.hosts)
                latencies, wall = asyncio.run(phase(url, key, batches, concurrency))
                rcpts = sum(h.stats.rcpt for h in world.hosts) - before
                report(f"overhead (no SMTP), concurrency {concurrency}", latencies, wall, rcpts)
                assert rcpts == 0, "the overhead run should not have reached any mail server"


if __name__ == "__main__":
    main()
