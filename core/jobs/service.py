"""Jobs as transports use them: start, watch, approve, reject, cancel, resume, download, undo.

    job = await services.jobs.start_cleanup("T1", cnx_id, list_id, requester="U1", policy=policy,
                                            notify={"channel": "C1", "ts": "171.2"})
    await services.jobs.approve(job.id, "U2")     # True once; False for the second click; ApprovalRefused (four eyes)
    async for chunk in services.jobs.results_csv(job.id): ...
    report = await services.jobs.undo(job.id)

Starting refuses up front what cannot work: an unknown or disconnected connection, a rule the
platform cannot carry out (CleanupRuleRefused), or too few credits for the list as the platform
counts it (InsufficientCredits with the shortfall: a 402). Everything else happens in the
background and is reported as events (services.events) and in `get(job_id)`.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import IO, Any

from core.cleanup import Policy, check_policy
from core.connectors.errors import ListNotFound
from core.jobs import items, transitions
from core.jobs.engine import Engine
from core.jobs.items import IngestRow
from core.jobs.kinds.builtin import refund_unprocessed_items
from core.jobs.results_csv import results_csv
from core.jobs.states import CANCELLABLE, State, sources_of
from core.jobs.undo import UndoReport, undo_job
from core.jobs.views import JobView, view_of
from core.storage.ids import new_id
from core.storage.models import Job, Workspace
from core.storage.sql import default_connection, execute, transaction, utcnow
from core.verify.files import open_address_file

READ_ROWS = 1000

Kick = Callable[[str], Awaitable[None]]


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job {job_id}.")
        self.job_id = job_id


class ApprovalRefused(PermissionError):
    """This person may not approve this job (four eyes: not their own cleanup)."""


class Jobs:
    def __init__(self, services: Any, engine: Engine, kick: Kick) -> None:
        self.services = services
        self.engine = engine
        self.kick = kick  # hands a runnable job to a runner (this process's, or a worker's through Redis)

    # --- starting ------------------------------------------------------------------------------
    async def start_verify_list(self, workspace_id: str, connection_id: str, list_id: str, *, requester: str | None,
                                notify: Mapping[str, Any] | None = None) -> JobView:
        return await self.start_cleanup(workspace_id, connection_id, list_id, requester=requester, policy=None, notify=notify)

    async def start_cleanup(self, workspace_id: str, connection_id: str, list_id: str, *, requester: str | None,
                            policy: Policy | None, notify: Mapping[str, Any] | None = None) -> JobView:
        """A verify-and-clean job (policy None: Verify only, a verify_list job)."""
        connections = self.services.connections
        connection = await connections.get(workspace_id, connection_id)
        connector_cls = connections.platform(connection.platform)
        if not connection.active:
            from core.connections import ConnectionDisconnected

            raise ConnectionDisconnected(connection.name)
        check_policy(policy, connector_cls.capabilities, connector_cls.display_name)
        synced = await connections.synced_list(connection_id, list_id)
        if synced is None:
            await connections.sync(workspace_id, connection_id)
            synced = await connections.synced_list(connection_id, list_id)
        if synced is None:
            raise ListNotFound(f"{connector_cls.display_name} has no list {list_id} in {connection.name}.",
                               platform=connection.platform)
        estimated = synced.subscriber_count or 0
        await self.services.credits.require(workspace_id, estimated)
        return await self.create("cleanup" if policy is not None else "verify_list", workspace_id, requester=requester,
                                 connection_id=connection_id, list_id=list_id, list_name=synced.name,
                                 rules=None if policy is None else policy.to_json(), estimated=estimated, notify=notify)

    async def create(self, kind: str, workspace_id: str, *, requester: str | None, connection_id: str | None = None,
                     list_id: str | None = None, list_name: str | None = None, rules: Mapping[str, Any] | None = None,
                     params: Mapping[str, Any] | None = None, estimated: int | None = None,
                     notify: Mapping[str, Any] | None = None, state: State = State.QUEUED) -> JobView:
        """A job of any registered kind (plug-ins too), queued and handed to a runner."""
        await self.services.workspaces.ensure(workspace_id)
        row = await Job.create(id=new_id("job"), workspace_id=workspace_id, kind=kind, state=str(state),
                               connection_id=connection_id, list_id=list_id, list_name=list_name,
                               rules=dict(rules) if rules is not None else None, params=dict(params or {}),
                               notify=dict(notify or {}), requester=requester, estimated=estimated)
        if state is State.QUEUED:
            await self.engine.emit_state(row.id, None, State.QUEUED)
            await self.kick(row.id)
        return view_of(row)

    async def start_bulk_file(self, workspace_id: str, stream: IO[bytes] | bytes, *, requester: str | None,
                              filename: str = "", column: str | None = None,
                              notify: Mapping[str, Any] | None = None) -> JobView:
        """A TXT/CSV upload: its rows are read in now (FileFormatError if they cannot be), the unique
        addresses counted and checked against the balance (InsufficientCredits: no job is left behind)."""
        source = io.BytesIO(stream) if isinstance(stream, bytes) else stream
        table = await asyncio.to_thread(open_address_file, source, filename=filename, column=column)
        job = await self.create("bulk_file", workspace_id, requester=requester, notify=notify, state=State.PREPARING,
                                params={"filename": filename, "header": table.header, "delimiter": table.delimiter,
                                        "email_column": table.email_column, "format": table.kind})
        try:
            total = unique = 0
            rows = iter(table.rows)
            while batch := await asyncio.to_thread(_take, rows, table, READ_ROWS):
                async with transaction() as conn:
                    unique += await items.insert_rows(conn, job.id, total, batch)
                await items.refresh_statistics(default_connection(), total, total + len(batch))
                total += len(batch)
            _, counted = await execute(default_connection(), "SELECT COUNT(*) AS n FROM job_item WHERE job_id = ? "
                                                             "AND stage = 'pending' AND TRIM(email) <> ''", [job.id])
            await self.services.credits.require(workspace_id, int(counted[0]["n"]))
            async with transaction() as conn:
                await transitions.move(conn, job.id, State.QUEUED, expect=[State.PREPARING], total=total, unique=unique,
                                       ingest_done=True, estimated=unique)
        except BaseException:
            await Job.filter(id=job.id).delete()
            raise
        await self.engine.emit_state(job.id, None, State.QUEUED)
        await self.kick(job.id)
        return await self.get(job.id)  # type: ignore[return-value]

    # --- reading --------------------------------------------------------------------------------
    async def get(self, job_id: str, workspace_id: str | None = None) -> JobView | None:
        query = Job.filter(id=job_id)
        if workspace_id is not None:
            query = query.filter(workspace_id=workspace_id)
        row = await query.first()
        return None if row is None else view_of(row)

    async def list(self, workspace_id: str | None = None, *, limit: int = 20,
                   states: list[State] | None = None) -> list[JobView]:
        query = Job.all() if workspace_id is None else Job.filter(workspace_id=workspace_id)
        if states:
            query = query.filter(state__in=[str(s) for s in states])
        return [view_of(row) for row in await query.exclude(state=str(State.PREPARING)).order_by("-created_at", "-id").limit(limit)]

    def results_csv(self, job_id: str) -> AsyncIterator[bytes]:
        return results_csv(job_id)

    async def set_notify(self, job_id: str, notify: Mapping[str, Any]) -> None:
        """Where a transport shows the job (a Slack channel and message ts): opaque to the core."""
        await Job.filter(id=job_id).update(notify=dict(notify))

    # --- moves --------------------------------------------------------------------------------
    async def _move(self, job_id: str, to: State, expect, **fields: Any) -> bool:
        before = await self.get(job_id)
        if before is None:
            raise JobNotFound(job_id)
        async with transaction() as conn:
            moved = await transitions.move(conn, job_id, to, expect=expect, **fields)
        if moved:
            await self.engine.emit_state(job_id, before.state, to)
        return moved

    async def approve(self, job_id: str, user_id: str) -> bool:
        """Approve a cleanup awaiting approval: True for the one call that did it, False for every other
        (a double click, a second approver, an expired or rejected job). The caller checks the role
        (workspaces.can_approve); four eyes is checked here."""
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        workspace = await Workspace.get(id=job.workspace_id)
        if workspace.four_eyes and job.requester is not None and job.requester == user_id:
            raise ApprovalRefused("You started this cleanup, so someone else must approve it (four-eyes is on).")
        now = utcnow()
        if job.state is State.AWAITING_APPROVAL and job.expires_at is not None and job.expires_at <= now:
            await self.expire_due()
            return False
        async with transaction() as conn:
            count, _ = await execute(
                conn, "UPDATE job SET state = ?, approver = ?, approved_at = ?, updated_at = ? "
                      "WHERE id = ? AND state = ? AND (expires_at IS NULL OR expires_at > ?)",
                [str(State.APPROVED), user_id, now, now, job_id, str(State.AWAITING_APPROVAL), now])
        if count != 1:
            return False
        await self.engine.emit_state(job_id, State.AWAITING_APPROVAL, State.APPROVED)
        await self.kick(job_id)
        return True

    async def reject(self, job_id: str, user_id: str, reason: str | None = None) -> bool:
        """Reject: the job is cancelled, recording who and why."""
        return await self._move(job_id, State.CANCELLED, [State.AWAITING_APPROVAL], rejected_by=user_id,
                                reject_reason=(reason or "").strip()[:2000] or None, cancelled_by=user_id,
                                finished_at=utcnow())

    async def cancel(self, job_id: str, by: str | None = None) -> bool:
        """Stop a job wherever it is; rows paid for but not verified are refunded."""
        moved = await self._move(job_id, State.CANCELLED, sources_of(State.CANCELLED) & CANCELLABLE, cancelled_by=by,
                                 finished_at=utcnow())
        if moved:
            await refund_unprocessed_items(self.services, job_id)
        return moved

    async def resume(self, job_id: str) -> bool:
        """A paused job (out of credits) goes on, once there are credits again."""
        moved = await self._move(job_id, State.QUEUED, [State.PAUSED], paused_reason=None)
        if moved:
            await self.kick(job_id)
        return moved

    async def expire_due(self) -> list[str]:
        """Approvals past their deadline become expired (run by every runner's sweep)."""
        now = utcnow()
        due = await Job.filter(state=str(State.AWAITING_APPROVAL), expires_at__lte=now).values_list("id", flat=True)
        expired = []
        for job_id in due:
            if await self._move(job_id, State.EXPIRED, [State.AWAITING_APPROVAL], finished_at=now):
                expired.append(job_id)
        return expired

    async def undo(self, job_id: str) -> UndoReport:
        if await self.get(job_id) is None:
            raise JobNotFound(job_id)
        return await undo_job(self.services, job_id)


def _take(rows, table, limit: int) -> list[IngestRow]:
    """Up to `limit` rows of the file, each kept as its CSV-encoded original bytes (run in a thread)."""
    out: list[IngestRow] = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=table.delimiter, lineterminator="").writerow(row)
        email = row[table.email_column] if table.email_column < len(row) else ""
        out.append(IngestRow(email, None, buffer.getvalue().encode("utf-8", "surrogateescape")))
        if len(out) >= limit:
            break
    return out
