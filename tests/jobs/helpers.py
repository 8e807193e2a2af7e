"""What the job tests share: a mail world for the emulators' members, a running job system, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from core.jobs.events import JobEvent
from core.jobs.states import State
from core.services import Services
from core.settings import Settings
from core.verify import Verifier
from tests.mailservers import MailWorld
from tests.services.emulated import NO_RATE_LIMIT


def invalid_member(i: int) -> bool:
    """Every fourth emulator member has no mailbox (the emulators' members are member{i}@example.com)."""
    return i % 4 == 0


def build_world(members: int = 6000) -> MailWorld:
    world = MailWorld()
    host = world.smtp_host(mailboxes={f"member{i}@example.com" for i in range(members) if not invalid_member(i)})
    world.domain("example.com", mx=[host])
    other = world.smtp_host(mailboxes={"ann@acme.example", "bob@acme.example"})
    world.domain("acme.example", mx=[other])
    world.servfail("broken.example")  # every address there comes back unknown (and is refunded)
    return world


@contextlib.asynccontextmanager
async def job_system(settings: Settings, world: MailWorld) -> AsyncIterator[Services]:
    """Services with the embedded runner started, verifying against `world`."""
    services = Services.build(settings, connector_options=NO_RATE_LIMIT,
                              verifier_factory=lambda: Verifier(world.config(greylist_max_wait=1.0)))
    await services.job_system.start()
    try:
        yield services
    finally:
        await services.job_system.stop()


async def wait_for(services: Services, job_id: str, *states: State, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        job = await services.jobs.get(job_id)
        if job is not None and job.state in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is {job.state if job else None}, not {states}"
        await asyncio.sleep(0.05)


class Recorder:
    """Collects job events, as a transport's observer would."""

    def __init__(self, services: Services) -> None:
        self.events: list[JobEvent] = []
        services.events.subscribe(self.on_event)

    async def on_event(self, event: JobEvent) -> None:
        self.events.append(event)

    def states(self, job_id: str) -> list[tuple[str | None, str]]:
        return [(e.old, e.new) for e in self.events if e.job_id == job_id and e.type == "state"]

    def progress(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.events if e.job_id == job_id and e.type == "progress"]
