"""Approve / Reject / Download on a cleanup summary, and Resume on a job paused for credits.

Slack shows the buttons to everyone, so the role is checked when one is pressed: approvers are
workspace admins, Listwarden admins and approvers, or members of the configured user group
(`bot.roles.can_approve`). The approval itself is the core's one atomic state change
(`services.jobs.approve`): it also enforces four-eyes and the expiry, and of a double click or
two approvers at once exactly one call returns True. The message then follows the job's events.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.acking import after_ack
from bot.blocks.limits import truncate
from bot.blocks.summary import APPROVE_ACTION, DOWNLOAD_ACTION, REJECT_ACTION
from bot.job_messages import RESUME_ACTION, is_expired, upload_results
from bot.roles import can_approve
from bot.services import BotServices
from core.credits import InsufficientCredits
from core.jobs.service import ApprovalRefused
from core.jobs.states import State
from core.jobs.views import JobView

REJECT_CALLBACK = "cleanup_reject_reason"
EXPIRED = ":hourglass: This approval expired, so nothing was changed. Run `/clean-list` again."
NOT_APPROVER = ":lock: Only approvers can approve a cleanup: workspace admins or the approvers group. Nothing was changed."


def ephemeral(text: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


def already_decided(job: JobView) -> str:
    if job.approver:
        return f"This cleanup was already approved by <@{job.approver}>."
    if job.rejected_by:
        return f"This cleanup was rejected by <@{job.rejected_by}>."
    if job.state is State.EXPIRED:
        return EXPIRED
    if job.state in (State.RUNNING, State.QUEUED):
        return "This list is still being verified; the buttons appear when it is done."
    return "This cleanup is not waiting for approval any more."


def register(app: AsyncApp, services: BotServices) -> None:
    jobs, workspaces = services.jobs, services.core.workspaces

    @app.action(APPROVE_ACTION)
    @after_ack(services.tasks, services.answers)
    async def approve(ack, body, client, respond) -> None:
        await ack()
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        job = await jobs.get(body["actions"][0]["value"], team_id)
        if job is None:
            await respond(**ephemeral(":warning: I can't find this cleanup any more. Run `/clean-list` again."))
            return
        if is_expired(job):
            if job.state is State.AWAITING_APPROVAL:
                await jobs.expire_due()  # now rather than at the next sweep: the message says so too
            await respond(**ephemeral(EXPIRED))
            return
        if job.state is not State.AWAITING_APPROVAL:
            await respond(**ephemeral(already_decided(job)))
            return
        if not await can_approve(workspaces, client, team_id, user_id):
            await respond(**ephemeral(NOT_APPROVER))
            return
        try:
            approved = await jobs.approve(job.id, user_id)
        except ApprovalRefused as err:
            await respond(**ephemeral(f":eyes: {err}"))
            return
        if not approved:  # the other click (or approver) won, or it expired meanwhile
            latest = await jobs.get(job.id, team_id)
            await respond(**ephemeral(already_decided(latest) if latest else "This cleanup was already decided."))

    @app.action(REJECT_ACTION)
    @after_ack(services.tasks, services.answers)
    async def reject(ack, body, client, respond) -> None:
        await ack()
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        job = await jobs.get(body["actions"][0]["value"], team_id)
        if job is None or job.state is not State.AWAITING_APPROVAL or is_expired(job):
            await respond(**ephemeral(already_decided(job) if job else "I can't find this cleanup any more."))
            return
        if user_id != job.requester and not await can_approve(workspaces, client, team_id, user_id):
            await respond(**ephemeral(":lock: Only approvers or the requester can reject a cleanup."))
            return
        await client.views_open(trigger_id=body["trigger_id"], view={
            "type": "modal", "callback_id": REJECT_CALLBACK, "private_metadata": json.dumps({"job": job.id}),
            "title": {"type": "plain_text", "text": "Reject cleanup"}, "submit": {"type": "plain_text", "text": "Reject"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [{"type": "input", "block_id": "reason", "optional": True,
                        "label": {"type": "plain_text", "text": "Why? (shown in the channel)"},
                        "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 500}}]})

    @app.view(REJECT_CALLBACK)
    @after_ack(services.tasks, services.answers)
    async def reject_submitted(ack, body, view) -> None:
        job_id = json.loads(view["private_metadata"])["job"]
        reason = (view["state"]["values"].get("reason", {}).get("value", {}).get("value") or "").strip() or None
        if not await jobs.reject(job_id, body["user"]["id"], reason):
            latest = await jobs.get(job_id, body["team"]["id"])
            await ack(response_action="errors", errors={"reason": truncate(
                already_decided(latest) if latest else "This cleanup is gone.", 150)})
            return
        await ack()

    @app.action(RESUME_ACTION)
    @after_ack(services.tasks, services.answers)
    async def resume(ack, body, respond) -> None:
        await ack()
        team_id = body["team"]["id"]
        job = await jobs.get(body["actions"][0]["value"], team_id)
        if job is None or job.state is not State.PAUSED:
            await respond(**ephemeral("This job is not paused any more."))
            return
        try:
            await services.core.credits.require(team_id, 1)
        except InsufficientCredits:
            await respond(**ephemeral(":warning: There are still no credits left. An admin adds them in "
                                      "`/listwarden settings` (or with `listwarden credits grant`)."))
            return
        await jobs.resume(job.id)  # the message follows the job from here

    @app.action(DOWNLOAD_ACTION)
    @after_ack(services.tasks, services.answers)
    async def download(ack, body, client, respond) -> None:
        await ack()
        job = await jobs.get(body["actions"][0]["value"], body["team"]["id"])
        if job is None:
            await respond(**ephemeral("I can't find this job's results any more."))
            return
        slack = job.notify.get("slack") or {}
        channel = str(slack.get("channel") or body["channel"]["id"])
        thread = str(slack.get("thread_ts") or slack.get("ts") or body["message"]["ts"])
        await upload_results(services, client, job, channel=channel, thread_ts=thread)
