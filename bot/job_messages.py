"""Keep a job's channel message in step with the job: live progress, then summary, then report.

The core's job events (`services.events`) drive it: a progress event at most once a second
per job, and one event per state change, each with a fresh `JobView`. The message to update is
in the job's `notify["slack"]` (channel, ts, team), written when the job was started. Each
message is updated in place through `ProgressMessage`, so it changes at most once every 2 s and
a workspace stays inside chat.update's Tier 3 budget.

Events run in their own tasks and may arrive out of order, so each job's message remembers the
furthest phase it showed and ignores anything older (a late progress tick never overwrites the
summary), and a settled state overtaken while it waited out the interval is skipped for the newer one.
What a settled state posts (a summary, a results file) is claimed once per job and
state through the core's idempotency records, so with several web processes only one posts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.blocks.progress import progress_blocks
from bot.blocks.summary import changes_planned, decided, header, report_blocks, summary_blocks
from bot.blocks.limits import truncate
from bot.message_slots import SharedSlots
from bot.progress import ProgressMessage
from bot.services import BotServices
from core.jobs.events import JobEvent
from core.jobs.states import State
from core.jobs.views import JobView

log = logging.getLogger(__name__)
ClientFor = Callable[[str], Awaitable[Any]]  # (team_id) -> an AsyncWebClient with that workspace's bot token
CLAIM_SCOPE = "slack-job-message"
RESUME_ACTION = "job_resume"
DONE_MEMORY = 10_000
PHASE = {State.PREPARING: 1, State.QUEUED: 1, State.RUNNING: 1, State.PAUSED: 1, State.AWAITING_APPROVAL: 2,
         State.APPROVED: 3, State.APPLYING: 4, State.DONE: 5, State.FAILED: 5, State.CANCELLED: 5, State.EXPIRED: 5}


def slack_notify(team: str, channel: str, ts: str, *, thread_ts: str | None = None, subject: str,
                 requester: str | None = None) -> dict[str, Any]:
    """What the bot stores in a job's `notify` to find its message again (the core never reads it)."""
    return {"slack": {"team": team, "channel": channel, "ts": ts, "thread_ts": thread_ts, "subject": subject,
                      "requester": requester}}


def subject_of(job: JobView) -> str:
    slack = job.notify.get("slack") or {}
    return str(slack.get("subject") or f"*{truncate(job.list_name or 'the file', 200)}*")


@dataclass
class _Tracked:
    message: ProgressMessage
    phase: int = 0  # the furthest phase shown
    newest: int = 0  # the furthest phase heard of (shown or waiting for the interval)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JobMessages:
    def __init__(self, services: BotServices, client_for: ClientFor) -> None:
        self.services = services
        self.client_for = client_for  # async (team_id) -> AsyncWebClient with that workspace's bot token
        self._tracked: dict[str, _Tracked] = {}
        self._done: OrderedDict[str, None] = OrderedDict()  # recently finished jobs
        # with REDIS_URL every web process hears every job: the spacing is kept across them (bot.message_slots)
        self.shared = bool(services.settings.redis_url)

    async def on_event(self, event: JobEvent) -> None:
        job = event.view or await self.services.jobs.get(event.job_id)
        if job is None:
            return
        slack: Mapping[str, Any] = job.notify.get("slack") or {}
        if not (slack.get("channel") and slack.get("ts")):
            return  # not a Slack job (the REST API's), or started before its message existed
        if job.id in self._done:
            return  # a late event of a job whose final message is out
        tracked = await self._track(job, slack)
        phase = PHASE.get(job.state, 0)
        tracked.newest = max(tracked.newest, phase)
        async with tracked.lock:
            if phase < tracked.phase or (event.type == "progress" and phase == tracked.phase and tracked.phase > 1
                                         and job.state is not State.APPLYING):
                return  # older than what the message already shows
            if event.type == "state" and job.state in (State.AWAITING_APPROVAL, State.APPROVED, State.PAUSED):
                await tracked.message.ready()
                if phase < tracked.newest:
                    return  # overtaken while it waited for its turn (approved, then applying): the newer one shows
            tracked.phase = phase
            try:
                if event.type == "progress" or job.state in (State.RUNNING, State.APPLYING):
                    await self._progress(tracked.message, job)
                elif await self.services.core.idempotency.claim(CLAIM_SCOPE, settled_key(job)):
                    await self._settled(tracked.message, job, slack)
            except SlackApiError as err:
                log.warning("job %s: Slack refused the update (%s)", job.id, err.response.get("error"))
        if job.finished:
            self._tracked.pop(job.id, None)
            self._done[job.id] = None
            while len(self._done) > DONE_MEMORY:
                self._done.popitem(last=False)

    async def _track(self, job: JobView, slack: Mapping[str, Any]) -> _Tracked:
        tracked = self._tracked.get(job.id)
        if tracked is None:
            client = await self.client_for(str(slack.get("team") or job.workspace_id))
            message = ProgressMessage(client, team=job.workspace_id, channel=str(slack["channel"]), ts=str(slack["ts"]),
                                      budget=self.services.budget, min_interval=self.services.progress_interval,
                                      slots=SharedSlots(self.services.core.idempotency, self.services.progress_interval)
                                      if self.shared else None)
            tracked = self._tracked.setdefault(job.id, _Tracked(message))
        return tracked

    # --- what each moment shows ----------------------------------------------------------------
    async def _progress(self, message: ProgressMessage, job: JobView) -> None:
        subject = subject_of(job)
        if job.state is State.APPLYING:
            done = sum(job.applied_counts.values()) + sum(job.failure_counts.values())
            todo = sum(n for action, n in job.planned().items() if action != "keep")
            title = f"Cleaning {subject}"
            await message.tick(f"Cleaning: {done:,} / {todo:,} changed",
                               progress_blocks(title, done, todo, {}, f"Approved by <@{job.approver}>", unit="changed"))
            return
        title = f"Verifying {subject}"
        detail = f"Requested by <@{job.requester}>" if job.requester else ""
        await message.tick(f"Verifying: {job.processed:,} / {job.expected:,} checked",
                           progress_blocks(title, job.processed, job.expected, job.status_counts, detail))

    async def _settled(self, message: ProgressMessage, job: JobView, slack: Mapping[str, Any]) -> None:
        subject = subject_of(job)
        state = job.state
        if state is State.AWAITING_APPROVAL:
            await message.finish(f"Verification finished: approve the cleanup of {job.list_name}?",
                                 summary_blocks(job, subject=subject, with_buttons=True))
        elif state is State.APPROVED:
            await message.finish(f"Cleanup approved by <@{job.approver}>", decided(
                summary_blocks(job, subject=subject, with_buttons=True),
                f":white_check_mark: Approved by <@{job.approver}>. Cleaning now…"))
        elif state is State.DONE and job.kind == "cleanup" and job.approver:
            await message.finish(f"Cleanup finished: {job.list_name}", report_blocks(job, subject=subject))
        elif state is State.DONE:
            note = "" if job.mode == "verify" or changes_planned(job) else "\n:sparkles: Nothing to clean."
            blocks = summary_blocks(job, subject=subject, with_buttons=False)
            if note:
                blocks.insert(2, {"type": "context", "elements": [{"type": "mrkdwn", "text": note.strip()}]})
            await message.finish(f"Verification finished: {job.unique:,} addresses", blocks)
            if job.kind in ("verify_list", "bulk_file"):
                await upload_results(self.services, message.client, job, channel=message.channel,
                                     thread_ts=str(slack.get("thread_ts") or message.ts))
        elif state is State.CANCELLED and job.rejected_by:
            reason = f": “{truncate(job.reject_reason, 500)}”" if job.reject_reason else ""
            await message.finish("Cleanup rejected", decided(
                summary_blocks(job, subject=subject, with_buttons=True),
                f":no_entry_sign: Rejected by <@{job.rejected_by}>{reason}. Nothing was changed."))
        elif state is State.CANCELLED:
            who = f" by <@{job.cancelled_by}>" if job.cancelled_by else ""
            await message.finish("Job cancelled", [header("Job cancelled"), _section(
                f"{subject}: cancelled{who}. Rows paid for but not verified were refunded.")])
        elif state is State.EXPIRED:
            await message.finish("Approval expired", decided(
                summary_blocks(job, subject=subject, with_buttons=True),
                ":hourglass: This approval expired, so nothing was changed. Run `/clean-list` again."))
        elif state is State.FAILED:
            await message.finish("The job failed", [header("The job failed"), _section(
                f":x: {subject}: {job.error or 'the job failed'}")])
        elif state is State.PAUSED:
            await message.finish("Paused: out of credits", [
                header("Paused: out of credits"),
                _section(f":double_vertical_bar: {subject}: {job.paused_reason or 'out of credits'}"),
                {"type": "context", "elements": [{"type": "mrkdwn", "text":
                 "An admin adds credits in `/listwarden settings`; then resume here."}]},
                {"type": "actions", "block_id": "paused", "elements": [
                    {"type": "button", "action_id": RESUME_ACTION, "value": job.id, "style": "primary",
                     "text": {"type": "plain_text", "text": "Resume"}}]}])


def settled_key(job: JobView) -> str:
    """One claim per job and settled state; a job may pause more than once (once per run)."""
    return f"{job.id}:{job.state}" + (f":{job.attempts}" if job.state is State.PAUSED else "")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}


async def upload_results(services: BotServices, client, job: JobView, *, channel: str, thread_ts: str) -> None:
    """The results CSV into the job's thread (files_upload_v2 reads a file whole, so it is gathered here)."""
    name = str(job.params.get("filename") or job.list_name or "addresses").rsplit(".", 1)[0]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    content = b"".join([chunk async for chunk in services.jobs.results_csv(job.id)])
    await client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=content,
                                 filename=f"{truncate(name, 80)}-results-{stamp}.csv",
                                 title=f"{truncate(name, 80)}: verification results",
                                 initial_comment=f"Results for {job.total:,} rows.")


def is_expired(job: JobView) -> bool:
    return job.state is State.EXPIRED or (job.state is State.AWAITING_APPROVAL and job.expires_at is not None
                                          and job.expires_at <= datetime.now(UTC))
