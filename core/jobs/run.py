"""One job being worked on by this process: its lease, fenced transactions, moves and progress.

A job kind (core/jobs/kinds) receives a `JobRun` and does its phase through it:

    async with run.fenced() as conn:       # fails with LeaseLost if the job was taken over or cancelled
        ... items and counters in one transaction ...
    await run.progress()                   # a throttled progress event
    await run.move(State.DONE, finished_at=utcnow())
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient

from core.jobs import transitions
from core.jobs.events import JobEvent
from core.jobs.states import State
from core.jobs.views import JobView, view_of
from core.storage.models import Job
from core.storage.sql import execute, transaction, utcnow

if TYPE_CHECKING:
    from core.jobs.engine import Engine


class LeaseLost(Exception):
    """This process no longer holds the job (another took it over, or it was cancelled): stop quietly."""


@dataclass
class JobRun:
    job_id: str
    owner: str
    state: State
    engine: Engine
    _last_progress: float = field(default=0.0, repr=False)
    _workspace_id: str | None = field(default=None, repr=False)

    @property
    def services(self) -> Any:
        return self.engine.services

    @property
    def settings(self) -> Any:
        return self.engine.settings

    async def row(self) -> Job:
        return await Job.get(id=self.job_id)

    async def workspace_id(self) -> str:
        if self._workspace_id is None:
            self._workspace_id = (await self.row()).workspace_id  # type: ignore[attr-defined]
        return self._workspace_id

    async def view(self) -> JobView:
        return view_of(await self.row())

    @contextlib.asynccontextmanager
    async def fenced(self, *, check_state: bool = True) -> AsyncIterator[BaseDBAsyncClient]:
        """A transaction that first proves this process still holds the job (and, with `check_state`,
        that its state is unchanged): the write that comes first keeps SQLite from a busy upgrade too."""
        async with transaction() as conn:
            clause, values = "id = ? AND lease_owner = ?", [self.job_id, self.owner]
            if check_state:
                clause += " AND state = ?"
                values.append(str(self.state))
            count, _ = await execute(conn, f"UPDATE job SET updated_at = ? WHERE {clause}", [utcnow(), *values])
            if count != 1:
                raise LeaseLost(self.job_id)
            yield conn

    async def move(self, to: State, **fields: Any) -> None:
        """Leave the current state (guarded by the lease); raises LeaseLost if it already changed."""
        async with transaction() as conn:
            moved = await transitions.move(conn, self.job_id, to, expect=[self.state], owner=self.owner, **fields)
        if not moved:
            raise LeaseLost(self.job_id)
        old, self.state = self.state, to
        await self.engine.emit_state(self.job_id, old, to)

    async def progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < self.settings.job_progress_seconds:
            return
        self._last_progress = now
        view = await self.view()
        await self.engine.events.emit(JobEvent(view.id, view.workspace_id, "progress", None, str(view.state), view))
