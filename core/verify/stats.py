"""Counters of what the verifier did on the wire, for benchmarks and the CLI summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class SmtpStats:
    connections: int = 0
    connect_failures: int = 0
    session_errors: int = 0
    rcpts: int = 0
    max_rcpts_per_session: int = 0
    rcpt_452: int = 0
    rejected_421: int = 0
    greylisted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
