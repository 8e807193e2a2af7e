"""The state machine: only the listed moves exist, each is one conditional UPDATE, and when many
callers race for the same move (approvers, double clicks, runners claiming) exactly one wins."""

from __future__ import annotations

import asyncio

import pytest

from core.jobs import lease, transitions
from core.jobs.states import MOVES, State
from core.services import Services
from core.storage.models import Job
from core.storage.sql import transaction


async def _job(services: Services, state: State, **fields) -> str:
    await services.workspaces.ensure("T1")
    row = await Job.create(id=f"job_{state}_{len(fields)}", workspace_id="T1", kind="verify_list", state=str(state),
                           requester="U1", **fields)
    return row.id


def test_the_moves_are_exactly_those_of_issue_3() -> None:
    assert MOVES[State.QUEUED] >= {State.RUNNING, State.CANCELLED}
    assert MOVES[State.RUNNING] >= {State.AWAITING_APPROVAL, State.DONE, State.FAILED, State.CANCELLED, State.PAUSED}
    assert MOVES[State.AWAITING_APPROVAL] >= {State.APPROVED, State.CANCELLED, State.EXPIRED}
    assert MOVES[State.APPROVED] >= {State.APPLYING} and MOVES[State.APPLYING] >= {State.DONE, State.FAILED}
    for finished in (State.DONE, State.FAILED, State.CANCELLED, State.EXPIRED):
        assert finished not in MOVES  # nothing leaves a finished state


async def test_an_illegal_move_is_refused(services: Services) -> None:
    job_id = await _job(services, State.DONE)
    async with transaction() as conn:
        with pytest.raises(ValueError):
            await transitions.move(conn, job_id, State.RUNNING, expect=[State.DONE])


async def test_concurrent_approvals_approve_once(services: Services) -> None:
    job_id = await _job(services, State.AWAITING_APPROVAL)
    results = await asyncio.gather(*(services.jobs.approve(job_id, f"U{n}") for n in range(2, 22)))
    assert results.count(True) == 1
    job = await services.jobs.get(job_id)
    assert job.state in (State.APPROVED, State.APPLYING, State.DONE, State.FAILED) and job.approver == f"U{results.index(True) + 2}"


async def test_approve_and_reject_race_one_wins(services: Services) -> None:
    job_id = await _job(services, State.AWAITING_APPROVAL)
    approved, rejected = await asyncio.gather(services.jobs.approve(job_id, "U2"), services.jobs.reject(job_id, "U3", "no"))
    assert approved != rejected


async def test_concurrent_claims_lease_to_one_runner(services: Services) -> None:
    job_id = await _job(services, State.QUEUED)
    owners = [lease.new_owner() for _ in range(10)]
    claims = await asyncio.gather(*(lease.claim(job_id, owner, 30) for owner in owners))
    winners = [o for o, c in zip(owners, claims, strict=True) if c is not None]
    assert len(winners) == 1 and claims[owners.index(winners[0])] == (State.QUEUED, State.RUNNING)
    row = await Job.get(id=job_id)
    assert row.lease_owner == winners[0] and row.state == "running" and row.attempts == 1
    assert await lease.claim(job_id, lease.new_owner(), 30) is None  # a live lease is not taken


async def test_a_dead_local_owner_is_freed_at_once(services: Services) -> None:
    from datetime import timedelta

    from core.storage.sql import utcnow

    dead = f"{lease.HOST}/999999/deadbeef"  # no such process
    elsewhere = "another-host/1/cafe"
    a = await _job(services, State.RUNNING, lease_owner=dead, lease_until=utcnow() + timedelta(minutes=5))
    b = await _job(services, State.APPLYING, lease_owner=elsewhere, lease_until=utcnow() + timedelta(minutes=5), list_id="x")
    assert await lease.free_dead_local_leases() == [a]
    assert a in await lease.claimable() and b not in await lease.claimable()


async def test_cancel_from_anywhere_but_finished(services: Services) -> None:
    for state in (State.QUEUED, State.PAUSED, State.AWAITING_APPROVAL, State.APPROVED):
        job_id = await _job(services, state, list_id=str(state))
        assert await services.jobs.cancel(job_id, by="U9")
        assert (await services.jobs.get(job_id)).state is State.CANCELLED
        assert not await services.jobs.cancel(job_id)
