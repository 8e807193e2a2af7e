"""Read email addresses out of what people type after /verify (files are the core's: core/verify/files.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INLINE_LIMIT = 25  # more than this becomes a job with a results file
_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")  # Slack auto-links typed addresses
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass
class Parsed:
    addresses: list[str] = field(default_factory=list)
    not_addresses: list[str] = field(default_factory=list)  # tokens without an @: shown back, never verified


def parse_command_text(text: str) -> Parsed:
    """Split `/verify` arguments; keep order, drop repeats (case-insensitive: charged once), set aside non-addresses."""
    parsed = Parsed()
    seen: set[str] = set()
    for token in _SEPARATORS.split(_MAILTO.sub(r"\1", text or "")):
        token = token.strip().strip("<>\"'")
        if not token or token.casefold() in seen:
            continue
        seen.add(token.casefold())
        (parsed.addresses if "@" in token else parsed.not_addresses).append(token)
    return parsed
