"""Running one claimed job in this process: lease, heartbeat, the kind's phase, and failure.

`execute(job_id)` claims the job (a conditional UPDATE; nothing happens if someone holds it),
runs the phase its state calls for (running: `kind.run`, applying: `kind.apply`) while a
heartbeat renews the lease, and releases the lease at the end, however the phase ended. A
phase that raises fails the job with one plain sentence and refunds what it had charged but
not verified. A process stopping (or losing the lease) leaves the job in its state with no
lease, so whoever comes next resumes it from its checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from core.connections import ConnectionDisconnected, ConnectionNotFound
from core.connectors.errors import ConnectorError
from core.jobs import kinds, lease
from core.jobs.events import JobEvent, JobEvents
from core.jobs.kinds.builtin import refund_unprocessed_items
from core.jobs.run import JobRun, LeaseLost
from core.jobs.states import State
from core.jobs.views import JobView, view_of
from core.settings import Settings
from core.storage.models import Job
from core.storage.sql import utcnow

log = logging.getLogger(__name__)

VerifierFactory = Callable[[], Any]  # returns a Verifier (or an awaitable of one)


def plain_error(err: BaseException) -> str:
    if isinstance(err, (ConnectorError, ConnectionDisconnected, ConnectionNotFound)):
        return str(err)
    return "The job failed on our side (see the server log); rows paid for but not verified were refunded."


class Engine:
    def __init__(self, services: Any, settings: Settings, events: JobEvents, verifier_factory: VerifierFactory) -> None:
        self.services = services
        self.settings = settings
        self.events = events
        self.verifier_factory = verifier_factory
        self._verifier: Any = None
        self._verifier_lock = asyncio.Lock()

    async def verifier(self) -> Any:
        """One verifier per process, shared by its jobs (one per-host budget, one DNS cache)."""
        async with self._verifier_lock:
            if self._verifier is None:
                made = self.verifier_factory()
                self._verifier = await made if isinstance(made, Awaitable) else made
        return self._verifier

    async def close(self) -> None:
        if self._verifier is not None and hasattr(self._verifier, "aclose"):
            await self._verifier.aclose()
        self._verifier = None

    @staticmethod
    def connection():
        from core.storage.sql import default_connection

        return default_connection()

    async def view(self, job_id: str) -> JobView | None:
        row = await Job.filter(id=job_id).first()
        return None if row is None else view_of(row)

    async def emit_state(self, job_id: str, old: State | None, new: State) -> None:
        view = await self.view(job_id)
        if view is not None:
            await self.events.emit(JobEvent(job_id, view.workspace_id, "state", None if old is None else str(old), str(new), view))

    async def execute(self, job_id: str) -> bool:
        """Claim and work the job; False if it was not claimable (held elsewhere, or nothing to do)."""
        owner = lease.new_owner()
        claimed = await lease.claim(job_id, owner, self.settings.job_lease_seconds)
        if claimed is None:
            return False
        old, state = claimed
        if old != state:
            await self.emit_state(job_id, old, state)
        if state not in (State.RUNNING, State.APPLYING):  # (a runnable state always becomes one of these)
            await lease.release(job_id, owner)
            return False
        run = JobRun(job_id, owner, state, self)
        job = await Job.get(id=job_id)
        work = asyncio.current_task()
        lost = asyncio.Event()
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(run, work, lost), name=f"job-lease:{job_id}")
        try:
            kind = kinds.get(job.kind)
            if state is State.RUNNING:
                await kind.run(run)
            else:
                await kind.apply(run)
        except LeaseLost:
            log.info("job %s: no longer ours (taken over or cancelled); stopped", job_id)
        except asyncio.CancelledError:
            if not lost.is_set():
                raise  # the process is stopping: the job stays in its state, resumed by the next runner
            log.warning("job %s: lease lost while working; stopped", job_id)
        except Exception as err:
            log.exception("job %s failed", job_id)
            await self._fail(run, err)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.release(job_id, owner))
        return True

    async def _heartbeat(self, run: JobRun, work: asyncio.Task[Any] | None, lost: asyncio.Event) -> None:
        period = self.settings.job_lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                still = await lease.renew(run.job_id, run.owner, self.settings.job_lease_seconds)
            except Exception:
                log.warning("job %s: could not renew the lease", run.job_id, exc_info=True)
                continue
            if not still:
                lost.set()
                if work is not None:
                    work.cancel()
                return

    async def _fail(self, run: JobRun, err: BaseException) -> None:
        try:
            await refund_unprocessed_items(self.services, run.job_id)
            await run.move(State.FAILED, error=plain_error(err), finished_at=utcnow())
        except LeaseLost:
            pass
        except Exception:
            log.exception("job %s: could not record its failure", run.job_id)
