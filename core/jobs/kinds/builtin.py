"""The built-in kinds: verify a connection's list, clean it (after approval), verify an uploaded file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from core.jobs import items
from core.jobs.items import IngestRow
from core.jobs.kinds import register
from core.jobs.kinds.applying import apply_phase
from core.jobs.kinds.verification import Outcome, verify_phase
from core.jobs.run import JobRun
from core.jobs.states import State
from core.jobs.transitions import Increment
from core.storage.sql import utcnow


def list_members(run: JobRun, connection_id: str, list_id: str):
    """The list's members as rows to read in (streamed; the connector pages through the platform)."""

    async def rows() -> AsyncIterator[IngestRow]:
        connector = await run.services.connections.connector_by_id(connection_id)
        async for contact in connector.members(list_id):
            yield IngestRow(contact.email, contact.id)

    return rows


async def pause_for_credits(run: JobRun) -> None:
    view = await run.view()
    remaining = max(view.expected - view.processed, 0)
    await refund_unprocessed(run)
    await run.move(State.PAUSED, paused_reason=(
        f"Out of credits after {view.processed:,} addresses; {remaining:,} are not verified yet. "
        "Add credits (`listwarden credits grant`) and resume the job; nothing more was charged."))


async def refund_unprocessed(run: JobRun) -> int:
    """Credits back for items paid for but never verified (a paused, cancelled or failed job)."""
    return await refund_unprocessed_items(run.services, run.job_id)


async def refund_unprocessed_items(services, job_id: str) -> int:
    """Refund what the job paid for but did not verify, and move its charge mark back below it, so a
    resumed job pays for those rows again when (and only if) it verifies them."""
    from core.jobs import transitions
    from core.storage.models import Job
    from core.storage.sql import transaction

    async with transaction() as conn:
        job = await Job.get(id=job_id)
        seqs = await items.unprocessed_charged(conn, job_id, job.charged_through)
        if not seqs:
            return 0
        await services.credits.refund(job.workspace_id, len(seqs), reason="unprocessed rows refunded", job_id=job_id,  # type: ignore[attr-defined]
                                      key=f"job:{job_id}:unprocessed:{seqs[0]}-{seqs[-1]}:{len(seqs)}:{job.refunded}")
        await transitions.update(conn, job_id, refunded=Increment(len(seqs)), charged_through=seqs[0] - 1)
    return len(seqs)


class VerifyList:
    name = "verify_list"

    async def run(self, run: JobRun) -> None:
        job = await run.row()
        outcome = await verify_phase(run, list_members(run, job.connection_id, job.list_id))  # type: ignore[attr-defined,arg-type]
        if outcome is Outcome.OUT_OF_CREDITS:
            await pause_for_credits(run)
            return
        now = utcnow()
        await run.move(State.DONE, verified_at=now, finished_at=now)

    async def apply(self, run: JobRun) -> None:
        raise RuntimeError("verify_list jobs have nothing to apply")


class Cleanup:
    name = "cleanup"

    async def run(self, run: JobRun) -> None:
        job = await run.row()
        outcome = await verify_phase(run, list_members(run, job.connection_id, job.list_id))  # type: ignore[attr-defined,arg-type]
        if outcome is Outcome.OUT_OF_CREDITS:
            await pause_for_credits(run)
            return
        view = await run.view()
        now = utcnow()
        if not any(action != "keep" and n for action, n in view.planned().items()):
            await run.move(State.DONE, verified_at=now, finished_at=now)  # nothing to clean: no approval needed
            return
        ttl = timedelta(hours=run.settings.approval_ttl_hours)
        await run.move(State.AWAITING_APPROVAL, verified_at=now, expires_at=now + ttl, lease_owner=None, lease_until=None)

    async def apply(self, run: JobRun) -> None:
        await apply_phase(run)
        await run.move(State.DONE, finished_at=utcnow())


class BulkFile:
    name = "bulk_file"

    async def run(self, run: JobRun) -> None:
        outcome = await verify_phase(run, None)  # the file's rows were read in when the job was created
        if outcome is Outcome.OUT_OF_CREDITS:
            await pause_for_credits(run)
            return
        now = utcnow()
        await run.move(State.DONE, verified_at=now, finished_at=now)

    async def apply(self, run: JobRun) -> None:
        raise RuntimeError("bulk_file jobs have nothing to apply")


for _kind in (VerifyList(), Cleanup(), BulkFile()):
    register(_kind)
