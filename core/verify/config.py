"""Everything the verifier needs to know about the network it probes, in one injectable value.

Tests aim every field at loopback servers; production builds it from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings
    from core.verify.politeness import HostSlots


@dataclass(frozen=True)
class VerifierConfig:
    # DNS
    nameservers: tuple[str, ...] | None = None  # None: /etc/resolv.conf
    dns_port: int = 53
    dns_timeout: float = 5.0
    # SMTP identity: HELO defaults to the MAIL FROM domain (a name we own), never the probed domain
    mail_from: str = "verify@localhost"
    helo_name: str | None = None
    # SMTP network
    smtp_port: int = 25
    connect_timeout: float = 8.0  # TCP connect plus the 220 banner
    command_timeout: float = 15.0  # each reply after the banner
    # politeness, per MX host address
    per_host: int = 3  # concurrent sessions
    connect_burst: int = 8  # new sessions a host may get at once ...
    connect_rate: float = 2.0  # ... then this many per second
    rcpt_per_session: int = 50  # RFC 5321 asks servers to take 100; many cap lower
    host_cooldown: float = 60.0  # seconds a host that said 421 is left alone
    host_down_for: float = 600.0  # seconds a host that refused or never answered is out (then tried again)
    # greylisting and other temporary failures
    greylist_max_wait: float = 90.0  # longest wait for a greylisted address, from its first try
    tempfail_retries: int = 1  # retries of a 4xx that is not greylisting (the result is refunded if it stays)
    # throughput and memory
    window: int = 20_000  # addresses read ahead of the oldest unfinished one in verify_many
    # A verifier in a long-running server must notice change: answers, routes and catch-all
    # verdicts are remembered for a while, not for ever.
    result_ttl: float = 600.0
    dns_ttl: float = 3600.0
    catch_all_ttl: float = 86_400.0
    smtp: bool = True  # False: syntax and DNS only
    host_slots: HostSlots | None = field(default=None, compare=False)  # shared limiter (Redis across workers)

    @property
    def helo(self) -> str:
        return self.helo_name or self.mail_from.rpartition("@")[2] or "localhost"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> VerifierConfig:
        values: dict[str, object] = dict(
            nameservers=tuple(settings.nameserver_list()) if settings.nameserver_list() else None,
            dns_port=settings.dns_port,
            dns_timeout=settings.dns_timeout,
            mail_from=settings.mail_from,
            helo_name=settings.helo_name,
            smtp_port=settings.smtp_port,
            connect_timeout=settings.smtp_connect_timeout,
            command_timeout=settings.smtp_command_timeout,
            per_host=settings.smtp_per_host,
            rcpt_per_session=settings.smtp_rcpt_per_session,
            connect_burst=settings.smtp_connect_burst,
            connect_rate=settings.smtp_connect_rate,
            greylist_max_wait=settings.greylist_max_wait,
            window=settings.verify_window,
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
