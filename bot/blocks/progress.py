"""Progress bars and running counts, shared by verification jobs and cleanups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.limits import truncate
from core.verify.status import STATUS_TABLE, Status

BAR_CELLS = 20


def bar(done: int, total: int) -> str:
    share = min(done / total, 1.0) if total else 1.0
    filled = round(share * BAR_CELLS)
    return f"`{'█' * filled}{'░' * (BAR_CELLS - filled)}` {share:.0%}"


def status_counts_line(counts: Mapping[str, int]) -> str:
    """`:white_check_mark: 120 valid · :x: 4 invalid …` in the status table's order."""
    parts = [f"{STATUS_TABLE[s].emoji} {counts[s]:,} {str(s).replace('_', '-')}"
             for s in Status if counts.get(s)]
    return " · ".join(parts) or "nothing checked yet"


def progress_blocks(title: str, done: int, total: int, counts: Mapping[str, int], detail: str = "", *,
                    unit: str = "checked") -> list[dict[str, Any]]:
    """Title, who asked, a bar with done/total, and (while verifying) the counts by status so far."""
    lines = [truncate(title, 500), f"{bar(done, total)}  {done:,} / {total:,} {unit}"]
    if detail:
        lines.insert(1, detail)
    blocks: list[dict[str, Any]] = [{"type": "section", "block_id": "progress",
                                     "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if unit == "checked":
        blocks.append({"type": "context", "block_id": "counts",
                       "elements": [{"type": "mrkdwn", "text": status_counts_line(counts)}]})
    return blocks
