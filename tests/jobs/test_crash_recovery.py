"""Crash recovery with real processes: a 5,000-contact cleanup runs in a subprocess that is
killed with -9 at random points, several times, both while verifying and while applying, and
restarted each time. What must hold at the end, checked against the emulator's own counters:
the job completes; every address was charged exactly once; every planned unsubscribe reached the
platform exactly once (the emulator counts each call, repeats included); nothing else changed."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio

from core.cleanup import DEFAULT_POLICY
from core.jobs.states import State
from core.services import Services
from core.storage.models import ActionAudit, CreditEntry, JobItem
from tests.emulators import mailerlite
from tests.jobs.helpers import build_world, invalid_member
from tests.services.emulated import NO_RATE_LIMIT, served
from tests.storage.fixtures import TEST_KEY, empty_all_tables, test_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MEMBERS = 5000
KILLS = {"running": 3, "applying": 3}


@pytest.fixture(scope="module")
def world():
    with build_world(MEMBERS).running() as w:
        yield w


@pytest.fixture
def platform():  # a fresh emulator per backend: its counters are the evidence
    with served(mailerlite, members=MEMBERS) as pair:
        yield pair


def start_child(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.jobs.crash_child"], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line  # type: ignore[union-attr]
    return proc


@pytest_asyncio.fixture(loop_scope="module")
async def svc(database):
    await empty_all_tables(database)
    yield Services.build(test_settings(database), connector_options=NO_RATE_LIMIT)  # not started: the child runs the job


async def test_kill_9_at_random_points_then_complete_exactly_once(svc: Services, database, world, platform) -> None:
    emulator, server = platform
    rng = random.Random(int(os.environ.get("LISTWARDEN_CRASH_SEED", "3")))
    env = {"DATABASE_URL": database.url, "LISTWARDEN_SECRET_KEY": TEST_KEY, "LISTWARDEN_JOB_CHUNK": "100",
           "LISTWARDEN_JOB_SWEEP_SECONDS": "0.3", "LISTWARDEN_SMTP_PER_HOST": "4", "LISTWARDEN_SMTP_RCPT_PER_SESSION": "100",
           "LISTWARDEN_SMTP_CONNECT_RATE": "100", "LISTWARDEN_SMTP_CONNECT_BURST": "20",
           **world.env()}
    await svc.credits.grant("T1", MEMBERS)
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    job = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    killed_in: list[str] = []
    last_progress = (0, 0)
    plan = [phase for phase, n in KILLS.items() for _ in range(n)]
    deadline = time.monotonic() + 150
    child = start_child(env)
    try:
        while True:
            view = await svc.jobs.get(job.id)
            assert time.monotonic() < deadline, f"stuck in {view.state}"
            if view.state is State.AWAITING_APPROVAL:
                await svc.jobs.approve(job.id, "U2")
            if view.state is State.DONE:
                break
            assert view.state not in (State.FAILED, State.CANCELLED), view.error
            progressed = (view.processed, sum(view.applied_counts.values())) != last_progress
            if plan and str(view.state) == plan[0] and (progressed or plan[0] == "applying"):
                await asyncio.sleep(rng.uniform(0.0, 0.4))  # kill somewhere in the middle of the work
                state = (await svc.jobs.get(job.id)).state
                child.send_signal(signal.SIGKILL)
                child.wait()
                killed_in.append(str(state))
                last_progress = (view.processed, sum(view.applied_counts.values()))
                plan.pop(0)
                child = start_child(env)
                continue
            await asyncio.sleep(0.05)
    finally:
        child.terminate()
        child.wait(timeout=10)
    assert "running" in killed_in and "applying" in killed_in, killed_in
    done = await svc.jobs.get(job.id)
    invalid = sum(invalid_member(i) for i in range(MEMBERS))
    # every planned action reached the platform exactly once, and nothing else did
    assert emulator.counters["unsubscribed"] == invalid, (emulator.counters, killed_in)
    assert emulator.counters["deleted"] == 0 and emulator.counters["subscribed"] == 0
    assert all(emulator.is_unsubscribed(f"member{i}@example.com") == invalid_member(i) for i in range(MEMBERS))
    assert done.applied_counts == {"unsubscribe": invalid} and done.failure_counts == {}
    assert await ActionAudit.filter(job_id=job.id).count() == invalid
    # every address charged exactly once: one flag per item, and the ledger agrees
    assert await JobItem.filter(job_id=job.id, charged=True).count() == MEMBERS == done.charged
    charged = -sum(await CreditEntry.filter(job_id=job.id, kind="charge").values_list("amount", flat=True))
    assert charged == MEMBERS and done.refunded == 0 and await svc.credits.balance("T1") == 0
    assert done.processed == MEMBERS and done.attempts > 2  # claimed again after the kills
