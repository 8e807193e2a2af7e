"""What a transport sees of a job: a frozen snapshot, never the ORM row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.cleanup import Policy
from core.jobs.states import FINISHED, State
from core.storage.models import Job


@dataclass(frozen=True)
class JobView:
    id: str
    workspace_id: str
    kind: str  # verify_list | cleanup | bulk_file | ...
    state: State
    connection_id: str | None
    list_id: str | None
    list_name: str | None
    policy: Policy | None  # the cleanup rules it runs with; None: verify only
    requester: str | None
    approver: str | None
    rejected_by: str | None
    reject_reason: str | None
    cancelled_by: str | None
    error: str | None
    paused_reason: str | None
    notify: Mapping[str, Any]
    params: Mapping[str, Any]
    estimated: int | None
    total: int  # rows read so far
    ingest_done: bool
    unique: int
    processed: int  # distinct addresses verified
    charged: int
    refunded: int
    status_counts: Mapping[str, int] = field(default_factory=dict)
    planned_counts: Mapping[str, int] = field(default_factory=dict)  # "unsubscribe:invalid" -> n
    applied_counts: Mapping[str, int] = field(default_factory=dict)  # "unsubscribe" -> n
    failure_counts: Mapping[str, int] = field(default_factory=dict)  # plain reason -> n
    attempts: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    verified_at: datetime | None = None
    approved_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def mode(self) -> str:
        return "clean" if self.policy is not None else "verify"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def duplicates(self) -> int:
        return self.total - self.unique

    @property
    def credits_used(self) -> int:
        return self.charged - self.refunded

    @property
    def expected(self) -> int:
        """Addresses to verify, as well as it is known now (the list's count until it has been read)."""
        return self.unique if self.ingest_done else max(self.estimated or 0, self.unique)

    def planned(self) -> dict[str, int]:
        """Contacts per action ("unsubscribe" -> n), keep included."""
        out: dict[str, int] = {}
        for key, n in self.planned_counts.items():
            action = key.partition(":")[0]
            out[action] = out.get(action, 0) + n
        return out


def view_of(row: Job) -> JobView:
    return JobView(
        id=row.id, workspace_id=row.workspace_id, kind=row.kind, state=State(row.state),  # type: ignore[attr-defined]
        connection_id=row.connection_id, list_id=row.list_id, list_name=row.list_name,  # type: ignore[attr-defined]
        policy=None if row.rules is None else Policy.from_json(row.rules), requester=row.requester,
        approver=row.approver, rejected_by=row.rejected_by, reject_reason=row.reject_reason,
        cancelled_by=row.cancelled_by, error=row.error, paused_reason=row.paused_reason, notify=dict(row.notify or {}),
        params=dict(row.params or {}), estimated=row.estimated, total=row.total, ingest_done=row.ingest_done,
        unique=row.unique, processed=row.processed, charged=row.charged, refunded=row.refunded,
        status_counts=dict(row.status_counts or {}), planned_counts=dict(row.planned_counts or {}),
        applied_counts=dict(row.applied_counts or {}), failure_counts=dict(row.failure_counts or {}),
        attempts=row.attempts, created_at=row.created_at, started_at=row.started_at, verified_at=row.verified_at,
        approved_at=row.approved_at, finished_at=row.finished_at, expires_at=row.expires_at,
    )
