"""The state of RCPT probing for one domain: its queue, its retries and its catch-all verdict.

Sessions are not opened here: `sessions.SessionScheduler` runs them per MX host address, so one
session at a shared host (Google Workspace, Microsoft 365, a hoster) serves several domains.
A domain hands the scheduler batches and settles what the replies say: a verdict, a retry
later (greylisting, temporary failures) in a pass that holds up nothing else, or back in the
queue when the session broke.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from core.verify.config import VerifierConfig
from core.verify.dns import MailRoute
from core.verify.replies import Reply, ReplyKind
from core.verify.tables import known_not_catch_all

if TYPE_CHECKING:
    from core.verify.sessions import SessionScheduler

# Greylisting: when the server gives no "try again in N seconds", retry this long after the first try.
GREYLIST_DELAYS = (5.0, 10.0, 20.0, 40.0, 60.0, 90.0, 150.0, 240.0, 360.0)
GREYLIST_MARGIN = 0.6  # a server's "in N seconds" is rounded to whole seconds; come back just after
TEMPFAIL_DELAYS = (4.0, 15.0, 30.0, 60.0)
RETRY_COALESCE = 0.5  # recipients due within this of each other go out in one session
MAX_CONNECTION_LOSSES = 3  # a recipient whose sessions keep dying is "unknown", not retried forever


class OutcomeKind(StrEnum):
    ACCEPTED = "accepted"
    NO_SUCH_USER = "no_such_user"
    DISABLED = "disabled"
    FULL = "full"
    POLICY = "policy"
    UNCLEAR = "unclear"  # permanent failure we cannot read
    SYNTAX = "syntax"
    GREYLISTED = "greylisted"  # still greylisted when the wait ran out
    TEMPORARY = "temporary"
    SENDER_REJECTED = "sender_rejected"
    NEEDS_SMTPUTF8 = "needs_smtputf8"  # the server cannot take a UTF-8 local part
    NO_CONNECT = "no_connect"  # every MX refused the connection
    TIMEOUT = "timeout"  # an MX accepted TCP but never answered, or replies timed out


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reply: Reply | None = None
    mx_host: str | None = None
    greylisted: bool = False  # greylisted at least once on the way
    others_accepted: bool = False  # the same session accepted other recipients (weighs an unclear 5xx)


@dataclass(eq=False)
class Attempt:
    rcpt: str
    utf8: bool
    future: asyncio.Future[Outcome]
    is_catch_all_probe: bool = False
    first_try: float | None = None
    retry_at: float = 0.0
    greylisted: bool = False
    temp_failures: int = 0
    losses: int = 0


class CatchAll(StrEnum):
    UNDECIDED = "undecided"
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # the probe itself got no definite answer


_REPLY_OUTCOMES = {
    ReplyKind.ACCEPTED: OutcomeKind.ACCEPTED,
    ReplyKind.NO_SUCH_USER: OutcomeKind.NO_SUCH_USER,
    ReplyKind.DISABLED: OutcomeKind.DISABLED,
    ReplyKind.FULL: OutcomeKind.FULL,
    ReplyKind.POLICY: OutcomeKind.POLICY,
    ReplyKind.NEEDS_SMTPUTF8: OutcomeKind.NEEDS_SMTPUTF8,
    ReplyKind.SYNTAX: OutcomeKind.SYNTAX,
}


def _organisation(name: str) -> str:
    """A rough registrable domain (google.com for alt1.gmail-smtp-in.l.google.com)."""
    labels = name.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-2]) <= 3 and len(labels[-1]) == 2:
        return ".".join(labels[-3:])  # co.uk, com.au
    return ".".join(labels[-2:])


class DomainProber:
    def __init__(self, domain: str, route: MailRoute, config: VerifierConfig, scheduler: SessionScheduler) -> None:
        self.domain = domain
        self.route = route
        self.config = config
        self.scheduler = scheduler
        self.pending: deque[Attempt] = deque()
        self.deferred: list[Attempt] = []
        self.in_flight = 0  # attempts taken by a session and not yet settled
        self._retry_timer: asyncio.TimerHandle | None = None
        self.catch_all = CatchAll.NO if known_not_catch_all(domain) else CatchAll.UNDECIDED
        self._catch_all_waiters: list[Callable[[CatchAll], None]] = []
        self.decided_at = time.monotonic()
        self._probe_sent = False
        self.hosts_by_preference = [(h.preference, h.name, ip) for h in route.hosts for ip in h.addresses]
        self._candidate_cache: list[str] = []
        self._candidates_for = -1

    # --- public -------------------------------------------------------------------------
    def check(self, rcpt: str, *, utf8: bool = False) -> asyncio.Future[Outcome]:
        attempt = Attempt(rcpt, utf8, asyncio.get_running_loop().create_future())
        self.pending.append(attempt)
        self.scheduler.demand(self)
        return attempt.future

    def on_catch_all(self, callback: Callable[[CatchAll], None]) -> None:
        """Call back once the domain's catch-all question is settled (asking the probe if needed)."""
        if self.catch_all is not CatchAll.UNDECIDED:
            callback(self.catch_all)
            return
        self._catch_all_waiters.append(callback)
        self.request_probe()

    def decide(self, verdict: CatchAll) -> None:
        if self.catch_all is not CatchAll.UNDECIDED:
            return
        self.catch_all = verdict
        self.decided_at = time.monotonic()
        waiters, self._catch_all_waiters = self._catch_all_waiters, []
        for callback in waiters:
            callback(verdict)

    @property
    def idle(self) -> bool:
        return not self.pending and not self.deferred and not self.in_flight

    def host_name(self, ip: str) -> str:
        return next((name for _, name, addr in self.hosts_by_preference if addr == ip), ip)

    # --- catch-all ------------------------------------------------------------------------
    def request_probe(self) -> None:
        """Ask one random local part, once per domain, unless the answer is already known."""
        if self._probe_sent or self.catch_all is not CatchAll.UNDECIDED:
            return
        self._probe_sent = True
        local = "lw" + secrets.token_hex(8)  # 18 random characters: no one owns this mailbox
        probe = Attempt(f"{local}@{self.domain}", False, asyncio.get_running_loop().create_future(),
                        is_catch_all_probe=True)
        probe.future.add_done_callback(self._probe_done)
        self.pending.appendleft(probe)
        self.scheduler.demand(self)

    def _probe_done(self, future: asyncio.Future[Outcome]) -> None:
        if future.cancelled():
            self.decide(CatchAll.UNKNOWN)
            return
        outcome = future.result()
        if outcome.kind is OutcomeKind.ACCEPTED:
            self.decide(CatchAll.YES)
        elif outcome.kind in (OutcomeKind.NO_SUCH_USER, OutcomeKind.DISABLED) or (
            outcome.kind is OutcomeKind.UNCLEAR and outcome.others_accepted
        ):
            self.decide(CatchAll.NO)
        else:
            self.decide(CatchAll.UNKNOWN)

    # --- hosts ---------------------------------------------------------------------------
    def candidates(self) -> list[str]:
        """Host addresses a session may use: the best live preference, plus same-organisation
        hosts at other preferences (mirrors, not third-party backups that accept everything)."""
        dead = self.scheduler.dead_hosts
        dead.refresh()
        if self._candidates_for == dead.generation:
            return self._candidate_cache
        live = [(pref, name, ip) for pref, name, ip in self.hosts_by_preference if ip not in dead]
        found: list[str] = []
        if live:
            best_pref, best_name, _ = live[0]
            org = _organisation(best_name)
            found = [ip for pref, name, ip in live if pref == best_pref or _organisation(name) == org]
        self._candidate_cache, self._candidates_for = found, dead.generation
        return found

    def fail_all(self) -> None:
        """Every MX is out: what is still queued or waiting for a retry cannot be checked."""
        reasons = {self.scheduler.dead_hosts.get(ip) for _, _, ip in self.hosts_by_preference}
        kind = OutcomeKind.TIMEOUT if OutcomeKind.TIMEOUT in reasons else OutcomeKind.NO_CONNECT
        while self.pending:
            self._resolve(self.pending.popleft(), Outcome(kind))
        for attempt in self.deferred:
            self._resolve(attempt, Outcome(kind))
        self.deferred.clear()

    # --- what a session does with this domain ---------------------------------------------------
    def reserve(self, n: int) -> list[Attempt]:
        """Up to `n` queued recipients for a session about to open (before we know what it offers)."""
        batch: list[Attempt] = []
        now = time.monotonic()
        while self.pending and len(batch) < n:
            attempt = self.pending.popleft()
            if attempt.first_try is None:
                attempt.first_try = now
            batch.append(attempt)
        self.in_flight += len(batch)
        return batch

    def keep_sendable(self, batch: list[Attempt], smtputf8: bool, ip: str) -> list[Attempt]:
        """UTF-8 local parts only go where the server offers SMTPUTF8 (RFC 6531); settle the others."""
        if smtputf8:
            return batch
        kept = []
        for attempt in batch:
            if attempt.utf8:
                self.in_flight -= 1
                self._resolve(attempt, Outcome(OutcomeKind.NEEDS_SMTPUTF8, mx_host=ip))
            else:
                kept.append(attempt)
        return kept

    def take(self, n: int, smtputf8: bool, ip: str) -> list[Attempt]:
        """Up to `n` queued recipients that this open session can be sent."""
        return self.keep_sendable(self.reserve(n), smtputf8, ip)

    def give_back(self, batch: list[Attempt], *, lost: bool, ip: str) -> None:
        """A session could not finish these: requeue them, first in line (a broken session counts)."""
        self.in_flight -= len(batch)
        for attempt in reversed(batch):
            if lost:
                attempt.losses += 1
                if attempt.losses >= MAX_CONNECTION_LOSSES:
                    self._resolve(attempt, Outcome(OutcomeKind.TIMEOUT, mx_host=ip))
                    continue
            self.pending.appendleft(attempt)
        if self.pending:
            self.scheduler.demand(self)

    def sender_refused(self, batch: list[Attempt], reply: Reply, ip: str) -> None:
        self.in_flight -= len(batch)
        for attempt in batch:
            if reply.code >= 500:
                self._resolve(attempt, Outcome(OutcomeKind.SENDER_REJECTED, reply, ip))
            else:
                self._temporary(attempt, reply, ip)

    def settle(self, batch: list[Attempt], replies: list[Reply], ip: str, others_accepted: bool) -> int:
        """Apply one reply per recipient; returns how many were answered before a 452/421 stopped
        the session (the rest go back in the queue)."""
        self.in_flight -= len(batch)
        for i, (attempt, reply) in enumerate(zip(batch, replies, strict=True)):
            kind = reply.kind
            if kind in (ReplyKind.TOO_MANY_RECIPIENTS, ReplyKind.CLOSING):
                self.pending.extendleft(reversed(batch[i:]))
                self.scheduler.demand(self)
                return i
            if kind is ReplyKind.GREYLISTED:
                self._greylisted(attempt, reply, ip)
                continue
            if kind is ReplyKind.TEMPORARY:
                self._temporary(attempt, reply, ip)
                continue
            outcome_kind = _REPLY_OUTCOMES.get(kind, OutcomeKind.UNCLEAR)
            if outcome_kind in (OutcomeKind.NO_SUCH_USER, OutcomeKind.DISABLED) and not attempt.is_catch_all_probe:
                self.decide(CatchAll.NO)  # a rejected real address proves the domain is not catch-all
            others = others_accepted and kind is not ReplyKind.ACCEPTED
            self._resolve(attempt, Outcome(outcome_kind, reply, ip, attempt.greylisted, others))
        # Probe for catch-all as soon as it can matter: once something was accepted, or when the server
        # greylists (the probe then waits out the same greylisting, not a second one).
        if any(r.kind in (ReplyKind.ACCEPTED, ReplyKind.GREYLISTED) for r in replies):
            self.request_probe()
        return len(batch)

    # --- retries ---------------------------------------------------------------------------------
    def _resolve(self, attempt: Attempt, outcome: Outcome) -> None:
        if not attempt.future.done():
            if attempt.greylisted and not outcome.greylisted:
                outcome = Outcome(outcome.kind, outcome.reply, outcome.mx_host, True, outcome.others_accepted)
            attempt.future.set_result(outcome)

    def _greylisted(self, attempt: Attempt, reply: Reply, ip: str) -> None:
        self.scheduler.stats.greylisted += 1
        attempt.greylisted = True
        now = time.monotonic()
        first = attempt.first_try or now
        if reply.retry_after is not None:
            at = now + reply.retry_after + GREYLIST_MARGIN
        else:
            at = next((first + d for d in GREYLIST_DELAYS if first + d > now + 1.0), now + GREYLIST_DELAYS[-1])
        if at - first > self.config.greylist_max_wait:
            self._resolve(attempt, Outcome(OutcomeKind.GREYLISTED, reply, ip, True))
            return
        self._defer(attempt, at)

    def _temporary(self, attempt: Attempt, reply: Reply, ip: str) -> None:
        if attempt.temp_failures >= min(self.config.tempfail_retries, len(TEMPFAIL_DELAYS)):
            self._resolve(attempt, Outcome(OutcomeKind.TEMPORARY, reply, ip))
            return
        delay = TEMPFAIL_DELAYS[attempt.temp_failures]
        attempt.temp_failures += 1
        self._defer(attempt, time.monotonic() + delay)

    def _defer(self, attempt: Attempt, at: float) -> None:
        attempt.retry_at = at
        self.deferred.append(attempt)
        self._arm_retry_timer(at)

    def _arm_retry_timer(self, earliest: float | None = None) -> None:
        """Have the timer fire for the earliest deferred attempt (`earliest`: the one just added,
        so that a greylisting domain's thousand deferrals do not each rescan the list)."""
        if not self.deferred:
            return
        if earliest is None:
            earliest = min(a.retry_at for a in self.deferred)
        if self._retry_timer is not None:
            if self._retry_timer.when() <= earliest + 0.01:
                return
            self._retry_timer.cancel()
        loop = asyncio.get_running_loop()
        self._retry_timer = loop.call_at(loop.time() + max(0.0, earliest - time.monotonic()), self._retry_due)

    def _retry_due(self) -> None:
        self._retry_timer = None
        horizon = time.monotonic() + RETRY_COALESCE
        due = [a for a in self.deferred if a.retry_at <= horizon]
        self.deferred = [a for a in self.deferred if a.retry_at > horizon]
        self.pending.extend(due)
        self._arm_retry_timer()
        if due:
            self.scheduler.demand(self)


__all__ = ["DomainProber", "Attempt", "Outcome", "OutcomeKind", "CatchAll"]
