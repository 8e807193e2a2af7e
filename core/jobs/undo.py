"""Undoing a cleanup from its audit: resubscribe the unsubscribed, where the platform allows it.

Deletes cannot be undone through any platform's API (the contact is gone), so they are counted
and said, not attempted. Each audit row records its own undo, so running undo twice
resubscribes nobody twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.connectors.base import Contact
from core.connectors.errors import ConnectorError
from core.jobs.kinds.applying import plain_reason
from core.storage.models import ActionAudit, Job
from core.storage.sql import utcnow

CHUNK = 500


@dataclass(frozen=True)
class UndoReport:
    resubscribed: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> contacts
    deleted: int = 0  # deletions, which cannot be undone
    unsupported: str | None = None  # why nothing could be resubscribed on this platform

    def summary(self) -> str:
        parts = [f"{self.resubscribed:,} resubscribed"]
        parts += [f"{n:,} not resubscribed: {reason}" for reason, n in self.failed.items()]
        if self.deleted:
            parts.append(f"{self.deleted:,} deleted contacts cannot be restored")
        if self.unsupported:
            parts.append(self.unsupported)
        return "; ".join(parts) + "."


async def undo_job(services, job_id: str) -> UndoReport:
    job = await Job.get(id=job_id)
    deleted = await ActionAudit.filter(job_id=job_id, action="delete").count()
    pending = ActionAudit.filter(job_id=job_id, action="unsubscribe", undone_at=None)
    if not await pending.count():
        return UndoReport(deleted=deleted)
    connector = await services.connections.connector_by_id(job.connection_id)  # type: ignore[attr-defined]
    if not connector.capabilities.can_resubscribe:
        return UndoReport(deleted=deleted, unsupported=f"{connector.display_name} cannot resubscribe contacts through its API")
    resubscribed = 0
    failed: Counter[str] = Counter()
    last_id = 0
    while True:
        rows = await ActionAudit.filter(job_id=job_id, action="unsubscribe", undone_at=None, id__gt=last_id).order_by("id").limit(CHUNK)
        if not rows:
            break
        last_id = rows[-1].id
        contacts = [Contact(r.contact_id, r.email, r.list_id) for r in rows]
        try:
            outcome = await connector.resubscribe(contacts)
            done, errors = set(outcome.done), dict(outcome.failed)
        except ConnectorError as err:
            done, errors = set(), {r.contact_id: plain_reason(err) for r in rows}
        now = utcnow()
        ok = [r.id for r in rows if r.contact_id in done]
        if ok:
            await ActionAudit.filter(id__in=ok).update(undone_at=now, undo_error=None)
        for r in rows:
            if r.contact_id not in done:
                reason = errors.get(r.contact_id) or "the platform did not confirm this contact"
                failed[reason] += 1
                await ActionAudit.filter(id=r.id).update(undo_error=reason[:1000])
        resubscribed += len(ok)
        if not ok and rows:  # everything failed: the rest would too (a read-only key, a revoked one)
            rest = await ActionAudit.filter(job_id=job_id, action="unsubscribe", undone_at=None, id__gt=last_id).count()
            if rest:
                failed[next(iter(errors.values()), "the platform refused")] += rest
            break
    return UndoReport(resubscribed=resubscribed, failed=dict(failed), deleted=deleted)
