"""What /verify shows: one block per address, in the words of the status table."""

from __future__ import annotations

from typing import Any

from bot.blocks.limits import SECTION_TEXT, truncate
from core.verify.result import Result
from core.verify.status import STATUS_TABLE

HELP_TEXT = (
    "*/verify* checks email addresses without sending any mail.\n"
    "• `/verify ada@example.com` — one address\n"
    "• `/verify a@example.com b@example.org …` — up to 25 at once, answered here\n"
    "• more than 25, or a CSV via the message shortcut *Verify this file* — a job that posts "
    "its progress and a results CSV in the thread"
)


def help_message() -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": "How to use /verify",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": HELP_TEXT}}]}


def result_section(result: Result) -> dict[str, Any]:
    """Status with emoji, score, the reason in plain words, and the suggestion."""
    meta = STATUS_TABLE[result.status]
    status_words = str(result.status).replace("_", "-")
    lines = [f"{meta.emoji} *{truncate(result.email, 320)}* — *{status_words}* · score {result.score}/10",
             result.reason or meta.meaning]
    if result.suggestion:
        lines.append(f":bulb: Did you mean *{result.suggestion}*?")
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), SECTION_TEXT)}}


def not_addresses_section(tokens: list[str]) -> dict[str, Any]:
    shown = ", ".join(f"`{truncate(t, 60)}`" for t in tokens[:10]) + (" …" if len(tokens) > 10 else "")
    return {"type": "section", "text": {"type": "mrkdwn", "text":
            f":warning: {shown} {'is' if len(tokens) == 1 else 'are'} not an email address "
            "(expected something like `name@example.com`), so I skipped "
            f"{'it' if len(tokens) == 1 else 'them'}."}}


def results_message(results: list[Result], not_addresses: list[str]) -> dict[str, Any]:
    blocks = [result_section(r) for r in results]
    if not_addresses:
        blocks.append(not_addresses_section(not_addresses))
    counts = ", ".join(f"{r.email}: {r.status}" for r in results[:5])
    return {"response_type": "ephemeral", "replace_original": True,
            "text": truncate(f"Verified {len(results)} address(es): {counts}", 3000), "blocks": blocks}


def checking_message(count: int) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": f":hourglass_flowing_sand: Checking {count} address{'es' if count != 1 else ''}…"}
