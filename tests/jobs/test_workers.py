"""Scale-out: two real `listwarden worker` processes on Redis and PostgreSQL share one set of jobs.

What must hold, counted at the loopback SMTP server the workers verify against:
- no item is processed twice: every address gets exactly one RCPT across both workers;
- the per-host session limit holds across both workers together (never more than
  LISTWARDEN_SMTP_PER_HOST sessions open at the host);
- both workers took part, every job finished, and the web process heard the workers' events
  over Redis.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import pytest_asyncio

from core.jobs.states import State
from core.services import Services
from core.settings import Settings
from core.storage.database import open_database
from core.storage.models import JobItem
from tests.jobs.helpers import Recorder
from tests.mailservers import MailWorld
from tests.storage.fixtures import TEST_KEY, drop_pg_schema, pg_url

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
PER_HOST = 2
DOMAINS = [f"d{n}.example.org" for n in range(6)]
JOBS = 6
PER_JOB = 150


def addresses(job: int) -> list[str]:
    return [f"j{job}u{i}@{DOMAINS[i % len(DOMAINS)]}" for i in range(PER_JOB)]


@pytest.fixture(scope="module")
def world():
    everyone = [a for j in range(JOBS) for a in addresses(j)]
    world = MailWorld()
    host = world.smtp_host(mailboxes={a for a in everyone if not a.startswith("j0")}, latency=0.003)
    for domain in DOMAINS:
        world.domain(domain, mx=[host])
    seen: Counter[str] = Counter()
    original = host.mailbox

    def counting(rcpt: str) -> str:  # called once per RCPT the server answers
        key = original(rcpt)
        seen[key] += 1
        return key

    host.mailbox = counting  # type: ignore[method-assign]
    with world.running():
        yield world, host, seen


@pytest_asyncio.fixture(loop_scope="module")
async def instance(world):
    """The environment of one instance: a fresh PostgreSQL schema and its own Redis prefix."""
    mail, _, _ = world
    schema = f"lw_workers_{uuid.uuid4().hex[:8]}"
    env = {"DATABASE_URL": pg_url(schema), "REDIS_URL": REDIS, "LISTWARDEN_REDIS_PREFIX": f"lwtest-{uuid.uuid4().hex[:8]}",
           "LISTWARDEN_SECRET_KEY": TEST_KEY, "LISTWARDEN_SMTP_PER_HOST": str(PER_HOST), "LISTWARDEN_JOB_CONCURRENCY": "2",
           "LISTWARDEN_JOB_SWEEP_SECONDS": "0.5", "LISTWARDEN_GREYLIST_MAX_WAIT": "1", **mail.env()}
    subprocess.run([sys.executable, "-m", "listwarden", "db", "migrate"], cwd=REPO, env={**os.environ, **env},
                   check=True, capture_output=True, timeout=60)
    db = await open_database(env["DATABASE_URL"])
    try:
        yield env
    finally:
        from core.connectors.http import close_shared_client

        await close_shared_client()
        await db.close()
        await drop_pg_schema(schema)
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS)
        keys = [k async for k in redis.scan_iter(f"{env['LISTWARDEN_REDIS_PREFIX']}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "listwarden", "worker"], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    for line in proc.stderr:  # type: ignore[union-attr]
        if "worker ready" in line:
            return proc
        assert time.monotonic() < deadline and proc.poll() is None, line
    raise AssertionError(f"the worker exited: {proc.wait()}")


async def test_two_workers_share_the_jobs_and_the_per_host_limit(instance, world) -> None:
    _, host, seen = world
    settings = Settings(**instance)  # type: ignore[arg-type]
    services = Services.build(settings)  # the web process's side: dispatches, hears events
    await services.job_system.start()
    recorder = Recorder(services)
    workers = [start_worker(instance), start_worker(instance)]
    try:
        await services.credits.grant("T1", JOBS * PER_JOB)
        jobs = [await services.jobs.start_bulk_file("T1", "\n".join(addresses(j)).encode(), requester="U1",
                                                    filename=f"job{j}.txt") for j in range(JOBS)]
        deadline = time.monotonic() + 90
        while True:
            views = [await services.jobs.get(job.id) for job in jobs]
            if all(v.state is State.DONE for v in views):
                break
            assert time.monotonic() < deadline, [v.state for v in views]
            assert all(w.poll() is None for w in workers), "a worker died"
            await asyncio.sleep(0.2)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=30)
        await services.job_system.stop()
    everyone = [a for j in range(JOBS) for a in addresses(j)]
    assert all(seen[a] == 1 for a in everyone), "an address was verified twice (or never)"
    # the limit was reached (both workers wanted sessions at once) and never passed
    assert host.stats.max_open == PER_HOST, f"{host.stats.max_open} sessions at once with a limit of {PER_HOST}"
    owners = await JobItem.all().values_list("worker", flat=True)
    pids = {owner.split("/")[1] for owner in owners}
    assert len(pids) == 2 and {str(w.pid) for w in workers} == pids  # both workers took part
    assert all(v.status_counts == ({"invalid": PER_JOB} if i == 0 else {"valid": PER_JOB}) for i, v in enumerate(views))
    assert await services.credits.balance("T1") == 0
    heard = {e.job_id for e in recorder.events if e.type == "state" and e.new == "done"}
    assert heard == {job.id for job in jobs}  # the workers' events reached this process through Redis
