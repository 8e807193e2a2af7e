"""A job's message once verification ends: counts, planned actions, credits, approval buttons; then its report.

Everything shown comes from the core's JobView: the words and emoji per status from the status
table, the planned actions from the job's plan counts ("unsubscribe:invalid" -> n).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.limits import truncate
from bot.blocks.progress import status_counts_line
from core.cleanup import CATEGORY_LABELS
from core.jobs.views import JobView
from core.verify.status import Category

APPROVE_ACTION, REJECT_ACTION, DOWNLOAD_ACTION = "cleanup_approve", "cleanup_reject", "cleanup_download"
VERB = {"unsubscribe": "Unsubscribe", "delete": "Delete", "keep": "Keep"}
PAST = {"unsubscribe": "unsubscribed", "delete": "deleted"}
REASON_WORDS = {"whitelist": "whitelisted", "blacklist": "blacklisted"}
ACTION_ORDER = ("unsubscribe", "delete", "keep")


def _reason_word(reason: str) -> str:
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    try:
        return CATEGORY_LABELS[Category(reason)].lower()
    except ValueError:
        return reason.replace("_", "-")


def planned_actions_line(planned_counts: Mapping[str, int]) -> str:
    """`Unsubscribe 312 invalid · Delete 40 disposable · Keep 1,203 catch-all` (valid addresses are not listed)."""
    parts: list[tuple[int, str]] = []
    for key, n in planned_counts.items():
        action, _, reason = key.partition(":")
        if not n or not reason:
            continue
        parts.append((ACTION_ORDER.index(action) if action in ACTION_ORDER else 9,
                      f"{VERB.get(action, action.capitalize())} {n:,} {_reason_word(reason)}"))
    return " · ".join(text for _, text in sorted(parts, key=lambda p: p[0])) or "Nothing to clean: every address is valid."


def changes_planned(job: JobView) -> bool:
    return any(action != "keep" and n for action, n in job.planned().items())


def header(title: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(title, 150)}}


def credits_block(job: JobView) -> dict[str, Any]:
    return {"type": "context", "block_id": "credits", "elements": [{"type": "mrkdwn", "text":
            f"Credits charged: {job.charged:,} · refunded: {job.refunded:,} (unknown results are refunded)"}]}


def summary_blocks(job: JobView, *, subject: str, with_buttons: bool) -> list[dict[str, Any]]:
    """`subject`: "*Newsletter* on *Main*"; `with_buttons`: a cleanup awaiting approval gets Approve and Reject."""
    requested = f", requested by <@{job.requester}>" if job.requester else ""
    duplicates = f" ({job.duplicates:,} repeated rows counted once)" if job.duplicates else ""
    lines = [f"*{job.unique:,}* addresses of {subject}{requested}{duplicates}", status_counts_line(job.status_counts)]
    blocks: list[dict[str, Any]] = [header("Verification finished"),
                                    {"type": "section", "block_id": "counts",
                                     "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), 3000)}}]
    if job.mode == "clean":
        blocks.append({"type": "section", "block_id": "plan", "text": {"type": "mrkdwn", "text":
                       truncate("*Planned:* " + planned_actions_line(job.planned_counts), 3000)}})
    blocks.append(credits_block(job))
    elements: list[dict[str, Any]] = []
    if with_buttons:
        plan = planned_actions_line(job.planned_counts)
        elements += [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": job.id,
             "text": {"type": "plain_text", "text": "Approve cleanup"},
             "confirm": {"title": {"type": "plain_text", "text": "Apply this cleanup?"},
                         "text": {"type": "mrkdwn", "text": truncate(f"{plan} in {job.list_name}. This changes the platform.", 300)},
                         "confirm": {"type": "plain_text", "text": "Approve"},
                         "deny": {"type": "plain_text", "text": "Cancel"}, "style": "danger"}},
            {"type": "button", "action_id": REJECT_ACTION, "value": job.id, "text": {"type": "plain_text", "text": "Reject"}},
        ]
    elements.append({"type": "button", "action_id": DOWNLOAD_ACTION, "value": job.id,
                     "text": {"type": "plain_text", "text": "Download results"}})
    blocks.append({"type": "actions", "block_id": "decision", "elements": elements})
    if with_buttons and job.expires_at:
        stamp = int(job.expires_at.timestamp())
        blocks.append({"type": "context", "block_id": "expiry", "elements": [{"type": "mrkdwn", "text":
                       f"Only approvers can approve. Expires <!date^{stamp}^{{date_short_pretty}} at {{time}}|"
                       f"{job.expires_at:%Y-%m-%d %H:%M} UTC>."}]})
    return blocks


def decided(blocks: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """The same message with Approve/Reject replaced by a line (Approved by @x, Rejected by @y...)."""
    out = []
    for block in blocks:
        if block.get("block_id") == "expiry":
            continue
        if block.get("block_id") == "decision":
            kept = [e for e in block["elements"] if e.get("action_id") == DOWNLOAD_ACTION]
            block = {**block, "elements": kept}
            if not kept:
                continue
        out.append(block)
    out.append({"type": "context", "block_id": "decided", "elements": [{"type": "mrkdwn", "text": truncate(note, 3000)}]})
    return out


def report_blocks(job: JobView, *, subject: str) -> list[dict[str, Any]]:
    """Applied counts, and failures with their plain reasons ("this API key is read-only: 0 unsubscribed")."""
    planned = job.planned()
    done = [f"{job.applied_counts.get(a, 0):,} {PAST[a]}" for a in PAST if planned.get(a) or job.applied_counts.get(a)]
    blocks: list[dict[str, Any]] = [header("Cleanup finished" if not job.failure_counts else "Cleanup finished with failures"),
                                    {"type": "section", "block_id": "applied", "text": {"type": "mrkdwn", "text": truncate(
                                        f"{subject}: {' · '.join(done) or 'nothing changed'}. "
                                        f"Approved by <@{job.approver}>.", 3000)}}]
    if job.failure_counts:
        lines = [f"• {truncate(reason, 300)}: {n:,} contact{'s' if n != 1 else ''} not changed"
                 for reason, n in sorted(job.failure_counts.items(), key=lambda kv: -kv[1])[:10]]
        blocks.append({"type": "section", "block_id": "failures",
                       "text": {"type": "mrkdwn", "text": truncate(":warning: *Failures*\n" + "\n".join(lines), 3000)}})
    blocks.append(credits_block(job))
    blocks.append({"type": "actions", "block_id": "decision", "elements": [
        {"type": "button", "action_id": DOWNLOAD_ACTION, "value": job.id, "text": {"type": "plain_text", "text": "Download results"}}]})
    return blocks


__all__ = ["summary_blocks", "decided", "report_blocks", "planned_actions_line", "changes_planned"]
