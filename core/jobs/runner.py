"""This process's share of the jobs: at most LISTWARDEN_JOB_CONCURRENCY at once, plus the sweep.

Embedded (no REDIS_URL), `listwarden serve` runs one of these: a new or approved job is woken
here directly, and the sweep (every LISTWARDEN_JOB_SWEEP_SECONDS, and once at start-up) picks
up every job with no live lease, so the jobs found running at start-up are resumed. With
REDIS_URL each `listwarden worker` runs one, fed by taskiq (core/jobs/broker.py); the sweep
there re-dispatches abandoned jobs through Redis (one process per job per sweep, by a
conditional UPDATE), and the web process sweeps only to expire approvals.

The sweep also frees at once the leases of this host's processes that died (kill -9), expires
approvals past their deadline, and prunes old validation results and idempotency records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from core.jobs import lease
from core.jobs.engine import Engine
from core.settings import Settings

log = logging.getLogger(__name__)
PRUNE_EVERY = 3600.0

Dispatch = Callable[[str], Awaitable[None]]


class Runner:
    def __init__(self, engine: Engine, settings: Settings, *, run_jobs: bool = True, dispatch: Dispatch | None = None,
                 expire: Callable[[], Awaitable[list[str]]] | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.run_jobs = run_jobs  # False in a web process whose jobs run on workers
        self.dispatch = dispatch  # how an abandoned job is handed out; None: run it here
        self.expire = expire
        self._slots = asyncio.Semaphore(max(1, settings.job_concurrency))
        self._active: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # woken while already here: look again when the current turn ends
        self._sweeper: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self.stopping = False
        self.started = False

    async def start(self) -> None:
        self.stopping = False
        self.started = True
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="job-sweeper")

    async def stop(self) -> None:
        self.stopping = True
        self.started = False
        tasks = [t for t in (self._sweeper, *self._active.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._active.clear()
        await self.engine.events.drain()
        await self.engine.close()

    # --- running jobs here -------------------------------------------------------------------
    def wake(self, job_id: str) -> None:
        """Work the job in this process as soon as a slot is free (no-op if it is already here)."""
        if not self.run_jobs or not self.started:
            return
        if job_id in self._active:
            self._again.add(job_id)
            return
        task = asyncio.get_running_loop().create_task(self._work(job_id), name=f"job:{job_id}")
        self._active[job_id] = task
        task.add_done_callback(lambda _t, job_id=job_id: self._finished(job_id))

    def _finished(self, job_id: str) -> None:
        self._active.pop(job_id, None)
        if job_id in self._again:
            self._again.discard(job_id)
            self.wake(job_id)

    async def _work(self, job_id: str) -> None:
        async with self._slots:
            try:
                await self.engine.execute(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s: the runner failed", job_id)

    async def run_when_free(self, job_id: str) -> None:
        """For a queue message (taskiq): wait for a free slot, then start the job and return.

        The message is acknowledged once the job is started here or found held elsewhere: from then on
        the job's lease, not the queue, guarantees it is finished (taskiq-redis#101: a long task is
        otherwise redelivered while it still runs)."""
        if job_id in self._active or not self.started:
            return
        await self._slots.acquire()
        started = asyncio.get_running_loop().create_future()

        async def work() -> None:
            try:
                started.set_result(None)
                await self.engine.execute(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s: the runner failed", job_id)
            finally:
                self._slots.release()

        task = asyncio.get_running_loop().create_task(work(), name=f"job:{job_id}")
        self._active[job_id] = task
        task.add_done_callback(lambda _t: self._active.pop(job_id, None))
        await started

    @property
    def active(self) -> list[str]:
        return list(self._active)

    async def join(self) -> None:
        """Wait until no job is running here (tests)."""
        while self._active:
            await asyncio.gather(*list(self._active.values()), return_exceptions=True)

    # --- the sweep ---------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job sweep failed")
            await asyncio.sleep(self.settings.job_sweep_seconds)

    async def sweep(self) -> None:
        await lease.free_dead_local_leases()
        if self.expire is not None:
            await self.expire()
        if self.run_jobs or self.dispatch is not None:
            for job_id in await lease.claimable():
                if job_id in self._active:
                    continue
                if self.dispatch is None:
                    self.wake(job_id)
                elif await lease.mark_kicked(job_id, quiet_seconds=max(15.0, 3 * self.settings.job_sweep_seconds)):
                    await self.dispatch(job_id)
        if time.monotonic() - self._last_prune > PRUNE_EVERY:
            self._last_prune = time.monotonic()
            await self._prune()

    async def _prune(self) -> None:
        from core.jobs.states import State
        from core.storage.models import Job
        from core.storage.sql import utcnow

        services = self.engine.services
        with contextlib.suppress(Exception):
            await services.results.prune(timedelta(days=self.settings.results_retention_days))
            await services.idempotency.prune()
            # an upload whose reading-in never finished (its process died): nobody will queue it
            await Job.filter(state=str(State.PREPARING), created_at__lt=utcnow() - timedelta(hours=1)).delete()
