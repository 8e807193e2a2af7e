"""Jobs on a connection's list, end to end in this process against an emulator and loopback mail
servers: verify-only ends done; a cleanup waits for approval, applies each planned action
exactly once (counted by the emulator), audits it, and can be undone; credits are charged once
per unique address and unknowns refunded."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from core.cleanup import DEFAULT_POLICY, CleanupRuleRefused
from core.credits import InsufficientCredits
from core.jobs.service import ApprovalRefused
from core.jobs.states import State
from core.services import Services
from core.storage.models import ActionAudit, CreditEntry, JobItem
from tests.emulators import convertkit, mailerlite
from tests.jobs.helpers import Recorder, build_world, invalid_member, job_system, wait_for
from tests.services.emulated import served
from tests.storage.fixtures import empty_all_tables, test_settings

MEMBERS = 200


@pytest.fixture(scope="module")
def world():
    with build_world(MEMBERS).running() as w:
        yield w


@pytest.fixture
def platform():
    with served(mailerlite, members=MEMBERS) as pair:
        yield pair


@pytest_asyncio.fixture(loop_scope="module")
async def svc(database, world):
    await empty_all_tables(database)
    async with job_system(test_settings(database, LISTWARDEN_JOB_PROGRESS_SECONDS=0), world) as services:
        await services.credits.grant("T1", 10_000)
        yield services


async def _connect(svc: Services, platform, credentials=None):
    emulator, server = platform
    return await svc.connections.create("T1", emulator.slug, credentials or emulator.credentials(server.url), base_url=server.url)


async def test_verify_only_ends_done_with_counts_credits_and_events(svc: Services, platform) -> None:
    emulator, _ = platform
    recorder = Recorder(svc)
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_verify_list("T1", cnx.id, emulator.list_id, requester="U1", notify={"channel": "C1"})
    assert job.state is State.QUEUED and job.estimated == MEMBERS and job.mode == "verify"
    done = await wait_for(svc, job.id, State.DONE)
    invalid = sum(invalid_member(i) for i in range(MEMBERS))
    assert done.total == done.unique == done.processed == MEMBERS
    assert done.status_counts == {"valid": MEMBERS - invalid, "invalid": invalid}
    assert done.charged == MEMBERS and done.refunded == 0 and done.planned() == {"keep": MEMBERS}
    assert await svc.credits.balance("T1") == 10_000 - MEMBERS
    assert done.notify == {"channel": "C1"} and done.finished_at is not None
    await svc.events.drain()
    assert recorder.states(job.id) == [(None, "queued"), ("queued", "running"), ("running", "done")]
    assert recorder.progress(job.id) and recorder.progress(job.id)[-1].view.processed == MEMBERS
    assert emulator.counters["unsubscribed"] == 0  # verify only changes nothing in the platform
    csv_bytes = b"".join([chunk async for chunk in svc.jobs.results_csv(job.id)])
    lines = csv_bytes.decode().splitlines()
    assert len(lines) == MEMBERS + 1 and lines[0].startswith("contact_id,email,status")


async def test_cleanup_waits_for_approval_applies_once_and_can_be_undone(svc: Services, platform) -> None:
    emulator, _ = platform
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    waiting = await wait_for(svc, job.id, State.AWAITING_APPROVAL)
    invalid = sum(invalid_member(i) for i in range(MEMBERS))
    assert waiting.planned_counts == {"unsubscribe:invalid": invalid, "keep:": MEMBERS - invalid}
    assert waiting.expires_at is not None and emulator.counters["unsubscribed"] == 0
    with pytest.raises(ApprovalRefused):
        await svc.jobs.approve(job.id, "U1")  # four eyes: not the requester
    clicks = await asyncio.gather(*(svc.jobs.approve(job.id, "U2") for _ in range(5)))
    assert clicks.count(True) == 1  # a double click (or five) approves once
    done = await wait_for(svc, job.id, State.DONE)
    assert done.approver == "U2" and done.applied_counts == {"unsubscribe": invalid} and done.failure_counts == {}
    assert emulator.counters["unsubscribed"] == invalid
    assert all(emulator.is_unsubscribed(f"member{i}@example.com") == invalid_member(i) for i in range(MEMBERS))
    audits = await ActionAudit.filter(job_id=job.id).count()
    assert audits == invalid and await ActionAudit.filter(job_id=job.id, actor="U2", action="unsubscribe").count() == invalid
    report = await svc.jobs.undo(job.id)
    assert report.resubscribed == invalid and report.failed == {}
    assert emulator.counters["subscribed"] == invalid
    assert (await svc.jobs.undo(job.id)).resubscribed == 0  # nobody is resubscribed twice


async def test_reject_records_who_and_why_and_approval_expires(svc: Services, platform, database, world) -> None:
    emulator, _ = platform
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    await wait_for(svc, job.id, State.AWAITING_APPROVAL)
    assert await svc.jobs.reject(job.id, "U3", "the list is being migrated")
    rejected = await svc.jobs.get(job.id)
    assert rejected.state is State.CANCELLED and (rejected.rejected_by, rejected.reject_reason) == ("U3", "the list is being migrated")
    assert not await svc.jobs.approve(job.id, "U2")
    # a second job, with an approval window that has already passed
    svc.settings = svc.job_system.settings = svc.job_system.engine.settings = test_settings(
        database, LISTWARDEN_APPROVAL_TTL_HOURS=-1)
    late = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    await wait_for(svc, late.id, State.AWAITING_APPROVAL, State.EXPIRED)
    assert not await svc.jobs.approve(late.id, "U2")
    assert (await svc.jobs.get(late.id)).state is State.EXPIRED
    assert emulator.counters["unsubscribed"] == 0


async def test_too_few_credits_is_refused_up_front(svc: Services, platform) -> None:
    emulator, _ = platform
    cnx = await _connect(svc, platform)
    await svc.credits.charge("T1", 10_000 - 50, reason="spent elsewhere")
    with pytest.raises(InsufficientCredits) as err:
        await svc.jobs.start_verify_list("T1", cnx.id, emulator.list_id, requester="U1")
    assert err.value.shortfall == MEMBERS - 50
    assert await svc.jobs.list("T1") == []


async def test_running_out_midway_pauses_and_resumes_without_charging_twice(svc: Services, platform) -> None:
    emulator, _ = platform
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_verify_list("T1", cnx.id, emulator.list_id, requester="U1")
    # another spender empties the balance as the job starts: it gets a first chunk's worth, then runs dry
    await svc.credits.charge("T1", await svc.credits.balance("T1") - 120, reason="spent elsewhere")
    paused = await wait_for(svc, job.id, State.PAUSED, State.DONE)
    if paused.state is State.DONE:
        pytest.skip("the job finished before the balance dropped")  # (the race above is the scenario's only setup)
    assert paused.processed == paused.charged == 120 and "Out of credits after 120 addresses" in paused.paused_reason
    await svc.credits.grant("T1", 1_000)
    assert await svc.jobs.resume(job.id)
    done = await wait_for(svc, job.id, State.DONE)
    assert done.charged == MEMBERS and done.processed == MEMBERS
    charges = await CreditEntry.filter(job_id=job.id, kind="charge").values_list("amount", flat=True)
    assert -sum(charges) == MEMBERS  # every address charged exactly once across the pause


async def test_cancel_refunds_what_was_paid_for_but_not_verified(svc: Services, platform) -> None:
    emulator, _ = platform
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_verify_list("T1", cnx.id, emulator.list_id, requester="U1")
    await wait_for(svc, job.id, State.RUNNING, State.DONE)
    cancelled = await svc.jobs.cancel(job.id, by="U1")
    await svc.job_system.runner.join()
    view = await svc.jobs.get(job.id)
    if not cancelled:
        assert view.state is State.DONE
        return
    assert view.state is State.CANCELLED and view.cancelled_by == "U1"
    verified = await JobItem.filter(job_id=job.id, stage="verified").count()
    assert view.charged - view.refunded == verified  # the balance pays for exactly what was verified
    assert await svc.credits.balance("T1") == 10_000 - verified


async def test_read_only_key_fails_every_action_with_a_plain_reason(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await _connect(svc, platform, emulator.read_only_credentials(server.url))
    job = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    await wait_for(svc, job.id, State.AWAITING_APPROVAL)
    assert await svc.jobs.approve(job.id, "U2")
    done = await wait_for(svc, job.id, State.DONE)
    invalid = sum(invalid_member(i) for i in range(MEMBERS))
    assert done.applied_counts.get("unsubscribe", 0) == 0
    assert done.failure_counts == {"this API key is read-only": invalid}
    assert emulator.counters["unsubscribed"] == 0


async def test_delete_on_a_platform_without_delete_is_refused_at_start(svc: Services) -> None:
    with served(convertkit, members=5) as (emulator, server):
        cnx = await svc.connections.create("T1", "convertkit", emulator.credentials(server.url), base_url=server.url)
        with pytest.raises(CleanupRuleRefused, match="cannot delete"):
            await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    assert await svc.jobs.list("T1") == []


async def test_actions_in_doubt_after_a_crash_are_reconciled_not_resent(svc: Services, platform) -> None:
    """A holder died between calling the platform and recording the outcome: the contacts the
    platform did change are recorded without a second call; the others are sent now."""
    from core.connectors.base import Contact
    from core.jobs.items import action_key

    emulator, _ = platform
    cnx = await _connect(svc, platform)
    job = await svc.jobs.start_cleanup("T1", cnx.id, emulator.list_id, requester="U1", policy=DEFAULT_POLICY)
    await wait_for(svc, job.id, State.AWAITING_APPROVAL)
    planned = await JobItem.filter(job_id=job.id, planned_action="unsubscribe").order_by("seq")
    sent, unsent = planned[:10], planned[10:20]
    connector = await svc.connections.connector("T1", cnx.id)
    await connector.unsubscribe([Contact(i.contact_id, i.email, emulator.list_id) for i in sent])  # the call that got through
    for item in [*sent, *unsent]:
        await JobItem.filter(id=item.id).update(action_state="sending", action_key=action_key(job.id, item.seq, "unsubscribe"))
    assert await svc.jobs.approve(job.id, "U2")
    done = await wait_for(svc, job.id, State.DONE)
    invalid = sum(invalid_member(i) for i in range(MEMBERS))
    assert emulator.counters["unsubscribed"] == invalid  # each contact changed exactly once
    assert done.applied_counts == {"unsubscribe": invalid}
    assert await JobItem.filter(job_id=job.id, action_state="reconciled").count() == len(sent)
    assert await ActionAudit.filter(job_id=job.id).count() == invalid
