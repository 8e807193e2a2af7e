"""The apply phase of an approved cleanup: each planned action sent to the platform exactly once.

Per chunk of contacts: (1) mark them `sending` with their idempotency key and commit; (2) call
the platform; (3) record each contact's outcome, with an audit row per change, and commit.
A job killed between (1) and (3) leaves the chunk `sending`: whether the platform did the
work is unknown. Before sending anything more, those contacts are reconciled against the
platform: a contact no longer among the list's subscribed members was changed (recorded as
done, audited, never sent again); one still subscribed is sent again. So a crash at any
instant neither loses an action nor applies one twice.

Errors that concern the whole account (a read-only key, revoked credentials, an action the
platform cannot do) fail every remaining contact of that action with the same plain reason;
transient ones (rate limits, outages) are retried with backoff before the chunk fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

from core.connectors.base import ActionOutcome, Connector, Contact
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidCredentials,
    PlatformUnavailable,
    RateLimited,
    UnsupportedAction,
)
from core.jobs import items, transitions
from core.jobs.items import ActionItem
from core.jobs.run import JobRun
from core.storage.models import Job
from core.storage.sql import execute, utcnow

log = logging.getLogger(__name__)
ACTIONS = ("unsubscribe", "delete")
TRANSIENT_RETRIES = 3
ACCOUNT_WIDE = (InsufficientScope, InvalidCredentials, UnsupportedAction)


def plain_reason(err: Exception) -> str:
    if isinstance(err, InsufficientScope):
        return "this API key is read-only"
    if isinstance(err, ConnectorError):
        return str(err)
    return "an unexpected error (see the server log)"


async def apply_phase(run: JobRun) -> None:
    job = await run.row()
    connector = await run.services.connections.connector_by_id(job.connection_id)  # type: ignore[attr-defined]
    applied: Counter[str] = Counter(job.applied_counts or {})
    failures: Counter[str] = Counter(job.failure_counts or {})
    await _reconcile(run, job, connector, applied, failures)
    chunk = run.settings.job_chunk
    for action in ACTIONS:
        while True:
            async with run.fenced() as conn:  # a cancelled job stops here, before the next platform call
                batch = await items.next_actions(conn, run.job_id, action, chunk)
                if not batch:
                    break
                await items.mark_sending(conn, run.job_id, batch, action)
            try:
                outcome = await _send(connector, action, job, batch)
            except ConnectorError as err:
                reason = plain_reason(err)
                await _record(run, job, connector.slug, action, [], [(i, reason) for i in batch], applied, failures)
                if isinstance(err, ACCOUNT_WIDE):
                    await _fail_rest(run, action, reason, failures)
                    break
                continue
            done_ids = set(outcome.done)
            done = [i for i in batch if i.contact_id in done_ids]
            failed = [(i, outcome.failed.get(i.contact_id) or "the platform did not confirm this contact")
                      for i in batch if i.contact_id not in done_ids]
            await _record(run, job, connector.slug, action, done, failed, applied, failures)


async def _send(connector: Connector, action: str, job: Job, batch: Sequence[ActionItem]) -> ActionOutcome:
    contacts = [Contact(i.contact_id, i.email, job.list_id) for i in batch]
    for attempt in range(TRANSIENT_RETRIES + 1):
        try:
            if action == "unsubscribe":
                return await connector.unsubscribe(contacts)
            return await connector.delete(contacts)
        except (RateLimited, PlatformUnavailable) as err:
            if attempt == TRANSIENT_RETRIES:
                raise
            wait = getattr(err, "retry_after", None) or 2.0 ** attempt
            log.info("%s of %d contacts: %s; retrying in %.0f s", action, len(contacts), err, wait)
            await asyncio.sleep(min(wait, 60.0))
    raise AssertionError("unreachable")


async def _record(run: JobRun, job: Job, platform: str, action: str, done: Sequence[ActionItem], failed: Sequence[tuple[ActionItem, str]],
                  applied: Counter[str], failures: Counter[str], *, state: str = "done") -> None:
    applied[action] += len(done)
    for _, reason in failed:
        failures[reason] += 1
    # recorded even if the job was cancelled meanwhile: these calls were made, and the audit must say so
    async with run.fenced(check_state=False) as conn:
        await items.record_outcomes(conn, job_id=run.job_id, workspace_id=job.workspace_id,  # type: ignore[attr-defined]
                                    connection_id=job.connection_id, platform=platform,
                                    list_id=job.list_id, action=action, actor=job.approver, done=done, failed=failed,
                                    state=state, when=utcnow())
        await transitions.update(conn, run.job_id, applied_counts=dict(applied), failure_counts=dict(failures))
    await run.progress()


async def _fail_rest(run: JobRun, action: str, reason: str, failures: Counter[str]) -> None:
    async with run.fenced(check_state=False) as conn:
        count, _ = await execute(conn, "UPDATE job_item SET action_state = 'failed', action_error = ? WHERE job_id = ? "
                                       "AND stage = 'verified' AND planned_action = ? AND action_state IS NULL",
                                 [reason, run.job_id, action])
        failures[reason] += count
        await transitions.update(conn, run.job_id, failure_counts=dict(failures))


async def _reconcile(run: JobRun, job: Job, connector: Connector, applied: Counter[str],
                     failures: Counter[str]) -> None:
    async with run.fenced() as conn:
        doubtful = await items.in_doubt(conn, run.job_id)
    if not doubtful:
        return
    wanted = {item.contact_id for item, _ in doubtful}
    still_subscribed: set[str] = set()
    async for contact in connector.members(job.list_id):  # type: ignore[arg-type]
        if contact.id in wanted:
            still_subscribed.add(contact.id)
            if len(still_subscribed) == len(wanted):
                break
    log.info("job %s: %d contacts in doubt after a restart, %d still subscribed (sent again)", run.job_id,
             len(doubtful), len(still_subscribed))
    for action in ACTIONS:
        gone = [item for item, a in doubtful if a == action and item.contact_id not in still_subscribed]
        if gone:
            await _record(run, job, connector.slug, action, gone, [], applied, failures, state="reconciled")
    again = [item.id for item, _ in doubtful if item.contact_id in still_subscribed]
    if again:
        async with run.fenced() as conn:
            await items.unmark_sending(conn, again)
