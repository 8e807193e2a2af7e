"""The App Home tab: connections with status and last sync, recent jobs with links, the credit balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.blocks.limits import truncate
from core.connections import ConnectionView
from core.connectors import get_platform
from core.jobs.views import JobView

CONNECTION_MENU = "home_connection"  # + ":<connection id>": action ids are unique within a view
MAX_CONNECTIONS = 30  # 30 × 1 block plus headers stays well under the Home tab's 100
JOB_WORDS = {"preparing": ":hourglass_flowing_sand: reading", "queued": ":hourglass_flowing_sand: queued",
             "running": ":hourglass_flowing_sand: verifying", "paused": ":double_vertical_bar: paused",
             "awaiting_approval": ":raised_hand: awaiting approval", "approved": ":white_check_mark: approved",
             "applying": ":broom: cleaning", "done": ":white_check_mark: done", "failed": ":x: failed",
             "cancelled": ":no_entry_sign: cancelled", "expired": ":hourglass: expired"}
KIND_WORDS = {"verify_list": "Verify", "cleanup": "Cleanup", "bulk_file": "File"}


@dataclass(frozen=True)
class JobLine:
    job: JobView
    title: str  # list or file name
    link: str | None  # the job's message permalink


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never synced"
    return f"synced <!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value[:150]}


def connection_block(c: ConnectionView) -> dict[str, Any]:
    platform = get_platform(c.platform).display_name
    status = ":large_green_circle: connected" if c.active else ":white_circle: disconnected"
    first = "verify-first *on*" if c.settings.verify_first else "verify-first off"
    if c.notice_channel:
        first += f" (digests in <#{c.notice_channel}>)"
    lines = [f"*{truncate(c.name, 200)}* · {platform}", f"{status} · {when(c.last_synced_at)} · {first}"]
    if c.last_error:
        lines.append(f":warning: {truncate(c.last_error, 500)}")
    if c.active:
        options = [_option("Sync now", f"sync:{c.id}"),
                   _option(f"Turn verify-first {'off' if c.settings.verify_first else 'on'}", f"verify_first:{c.id}"),
                   _option("Verify-first digest channel", f"notices:{c.id}"),
                   _option("Update credentials", f"credentials:{c.id}"), _option("Disconnect", f"disconnect:{c.id}")]
    else:
        options = [_option("Reconnect", f"reconnect:{c.id}"), _option("Update credentials", f"credentials:{c.id}")]
    return {"type": "section", "block_id": f"conn:{c.id}"[:255], "text": {"type": "mrkdwn", "text": "\n".join(lines)},
            "accessory": {"type": "overflow", "action_id": f"{CONNECTION_MENU}:{c.id}"[:255], "options": options}}


def job_block(line: JobLine) -> dict[str, Any]:
    job = line.job
    name = truncate(line.title, 200)
    name = f"<{line.link}|{name}>" if line.link else name
    progress = f"{job.processed:,}/{job.expected:,} checked" if job.expected else ""
    parts = [f"{KIND_WORDS.get(job.kind, job.kind)}: {name}", JOB_WORDS.get(str(job.state), str(job.state))]
    if progress:
        parts.append(progress)
    if job.created_at:
        parts.append(f"<!date^{int(job.created_at.timestamp())}^{{date_short_pretty}}|{job.created_at:%Y-%m-%d}>")
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(" · ".join(parts), 3000)}]}


def home_view(*, connections: list[ConnectionView], jobs: list[JobLine], balance: int, metered: bool,
              is_admin: bool) -> dict[str, Any]:
    credit_line = f"\n*Credit balance:* {balance:,}" if metered else ""
    buttons: list[dict[str, Any]] = [{"type": "button", "action_id": "home_connect", "style": "primary",
                                      "text": {"type": "plain_text", "text": "Connect a platform"}}]
    if is_admin:
        buttons += [{"type": "button", "action_id": "home_settings", "text": {"type": "plain_text", "text": "Settings"}},
                    {"type": "button", "action_id": "home_api_key", "text": {"type": "plain_text", "text": "New API key"}}]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Listwarden"}},
        {"type": "section", "text": {"type": "mrkdwn", "text":
            "Verify addresses with `/verify`, clean a connected list with `/clean-list`." + credit_line}},
        {"type": "actions", "block_id": "home_actions", "elements": buttons},
        {"type": "header", "text": {"type": "plain_text", "text": "Connections"}},
    ]
    if not connections:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "No platform connected yet."}]})
    if len(connections) > MAX_CONNECTIONS:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       f"Showing {MAX_CONNECTIONS} of {len(connections)} connections."}]})
    blocks.extend(connection_block(c) for c in connections[:MAX_CONNECTIONS])
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Recent jobs"}})
    if not jobs:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "No jobs yet: try `/clean-list`."}]})
    blocks.extend(job_block(line) for line in jobs[:10])
    return {"type": "home", "blocks": blocks}


NOTICE_CHANNEL_VIEW = "notice_channel"


def notice_channel_view(c: ConnectionView) -> dict[str, Any]:
    """Where verify-first digests for this connection go (at most one message per digest window)."""
    select: dict[str, Any] = {"type": "conversations_select", "action_id": "channel",
                              "placeholder": {"type": "plain_text", "text": "Pick a channel"},
                              "filter": {"include": ["public", "private"], "exclude_bot_users": True}}
    if c.notice_channel:
        select["initial_conversation"] = c.notice_channel
    return {
        "type": "modal", "callback_id": NOTICE_CHANNEL_VIEW, "private_metadata": c.id,
        "title": {"type": "plain_text", "text": "Digest channel"},
        "submit": {"type": "plain_text", "text": "Save"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"New subscribers of *{truncate(c.name, 200)}* checked by verify-first are summed up in one message "
                "per digest window in this channel. Invite Listwarden to a private channel first.")}},
            {"type": "input", "block_id": "channel", "optional": True, "label": {"type": "plain_text", "text": "Channel"},
             "element": select},
        ],
    }
