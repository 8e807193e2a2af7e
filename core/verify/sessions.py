"""SMTP sessions per MX host address, each serving every domain that waits on that host.

Shared mail hosts (Google Workspace, Microsoft 365, hosting companies) carry thousands of small
domains; a session per domain would spend most of its time on banners and handshakes and run
into the host's connection limits. Like an MTA's connection cache, a session here finishes one
domain's transaction, sends RSET, and carries on with the next domain waiting on the same host,
until the server's recipient budget is used up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter

from core.verify.config import VerifierConfig
from core.verify.politeness import HostSlots, Slot
from core.verify.prober import Attempt, DomainProber, OutcomeKind
from core.verify.replies import Reply, ReplyKind, classify
from core.verify.smtp import (
    SMTPConnectError,
    SMTPConnectTimeoutError,
    SMTPReadTimeoutError,
    SMTPServerDisconnected,
    SmtpSession,
)
from core.verify.stats import SmtpStats

log = logging.getLogger(__name__)

SLOT_POLL = 1.0  # a waiting worker rechecks at least this often
MAX_SESSION_ERRORS = 3  # a host that keeps breaking sessions is out for the run
QUIT_WAIT = 2.0  # seconds to wait for the 221 (a missing one changes no verdict)
# An idle session waits this long for more work on its host before QUIT, as an MTA's connection
# cache does (Postfix keeps one for 2 s): addresses of one domain often arrive a few at a time.
LINGER = 0.3
SPAWN_STEP = 10  # queued recipients that justify one more session to a host (up to per_host)
MIN_SHARE = 5  # the smallest batch worth a turn of the session when a domain's queue runs low


class DeadHosts:
    """Host addresses out of service (refused, silent, broken), each for a while only: a verifier in
    a long-running server must not give up on a host for ever because it was down once.
    `generation` changes whenever the set does, so callers can cache what they derive from it."""

    def __init__(self, down_for: float) -> None:
        self.down_for = down_for
        self.generation = 0
        self._out: dict[str, tuple[OutcomeKind, float]] = {}
        self._next_return = math.inf

    def add(self, host: str, why: OutcomeKind) -> None:
        until = time.monotonic() + self.down_for
        self._out[host] = (why, until)
        self._next_return = min(self._next_return, until)
        self.generation += 1

    def __contains__(self, host: str) -> bool:
        self.refresh()
        return host in self._out

    def get(self, host: str) -> OutcomeKind | None:
        self.refresh()
        entry = self._out.get(host)
        return entry[0] if entry else None

    def refresh(self) -> None:
        """Let hosts whose time is up back in (bumping the generation)."""
        now = time.monotonic()
        if now < self._next_return:
            return
        self._out = {h: e for h, e in self._out.items() if e[1] > now}
        self._next_return = min((e[1] for e in self._out.values()), default=math.inf)
        self.generation += 1


class SessionScheduler:
    def __init__(self, config: VerifierConfig, slots: HostSlots, stats: SmtpStats) -> None:
        self.config = config
        self.slots = slots
        self.stats = stats
        self.dead_hosts = DeadHosts(config.host_down_for)
        self.host_caps: dict[str, int] = {}  # learned RCPT budget per session, from 452s
        self._queues: dict[str, dict[DomainProber, None]] = {}  # host -> domains waiting on it (ordered)
        self._workers: Counter[str] = Counter()
        self._idle_workers: Counter[str] = Counter()  # started or between sessions, holding no batch
        self._session_errors: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._more_work: dict[str, asyncio.Event] = {}  # host -> set when recipients are queued on it

    # --- demand ------------------------------------------------------------------------------
    def demand(self, prober: DomainProber) -> None:
        """The domain has queued recipients: make sure sessions will come for them."""
        if not prober.pending:
            return
        candidates = prober.candidates()
        if not candidates:
            prober.fail_all()
            return
        for host in candidates:
            self._queues.setdefault(host, {})[prober] = None
            event = self._more_work.get(host)
            if event is not None:
                event.set()
            self._spawn(host)

    def _spawn(self, host: str) -> None:
        """Another session for every SPAWN_STEP recipients queued, up to the host's limit. A trickle
        needs no new one (a busy session comes back for more within a round trip), but fifty
        recipients sent down one session take fifty replies in a row, where five sessions sharing
        them take ten; for a greylisting server the wait for the retry then starts seconds sooner."""
        if self._workers[host] >= self.config.per_host:
            return
        if not self._queued(host, more_than=self._workers[host] * min(SPAWN_STEP, self._cap(host))):
            return
        self._workers[host] += 1
        self._idle_workers[host] += 1
        task = asyncio.get_running_loop().create_task(self._worker(host), name=f"smtp:{host}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _queued(self, host: str, more_than: int) -> bool:
        """Whether more than `more_than` recipients wait on `host` (stops counting once it knows)."""
        queue = self._queues.get(host)
        if not queue:
            return False
        total = 0
        for prober in list(queue):
            if not prober.pending:  # (a dead host's queue is dropped whole, in _host_out)
                del queue[prober]
                continue
            total += len(prober.pending)
            if total > more_than:
                return True
        return False

    def _next_domain(self, host: str, current: DomainProber | None) -> DomainProber | None:
        if current is not None and current.pending:
            return current
        queue = self._queues.get(host)
        while queue:
            prober = next(iter(queue))
            if prober.pending:
                return prober
            del queue[prober]
        return None

    def _share(self, prober: DomainProber, room: int) -> int:
        """How many of a domain's recipients one session takes now. While the queue is long, a full
        budget; as it runs low, an even share per session serving the domain, taken again and
        again. Otherwise the last full batches land on a few sessions, which run on for seconds
        after the rest have nothing left to do (the tail of a big provider's pool)."""
        serving = sum(self._workers[host] for host in prober.candidates()) or 1
        share = -(-len(prober.pending) // serving)
        return max(1, min(room, max(MIN_SHARE, share)))

    def _cap(self, host: str) -> int:
        return max(1, min(self.config.rcpt_per_session, self.host_caps.get(host, self.config.rcpt_per_session)))

    def _host_out(self, host: str, why: OutcomeKind) -> None:
        """Take a host out for the run and send its domains to their other hosts (or fail them)."""
        self.dead_hosts.add(host, why)
        for prober in list(self._queues.pop(host, {})):
            self.demand(prober)

    # --- workers ------------------------------------------------------------------------------
    async def _worker(self, host: str) -> None:
        """Counted as idle capacity until it holds work; work is reserved before connecting, so no
        session is ever opened for nothing (another worker may have drained the queue meanwhile)."""
        try:
            while host not in self.dead_hosts and self._queued(host, more_than=0):
                slot = await self._acquire(host)
                if slot is None:
                    return
                try:
                    prober = self._next_domain(host, None)
                    if prober is None:
                        continue
                    reserved = prober.reserve(self._share(prober, self._cap(host)))
                    self._idle_workers[host] -= 1
                    try:
                        await self._session(host, prober, reserved)
                    finally:
                        self._idle_workers[host] += 1
                finally:
                    await self.slots.release(slot)
        except Exception:  # a bug here must not strand the recipients queued on this host
            log.exception("SMTP worker for %s failed", host)
            self._host_out(host, OutcomeKind.TIMEOUT)
        finally:
            self._workers[host] -= 1
            self._idle_workers[host] -= 1
            if self._queued(host, more_than=0):
                self._spawn(host)

    async def _acquire(self, host: str) -> Slot | None:
        while host not in self.dead_hosts and self._queued(host, more_than=0):
            slot = await self.slots.try_acquire(host, self.config.per_host)
            if slot is not None:
                return slot
            await self.slots.wait([host], SLOT_POLL)
        return None

    async def _session(self, host: str, prober: DomainProber, reserved: list[Attempt]) -> None:
        """One SMTP session: the reserved batch first, then whatever waits on this host, domain by
        domain (RSET between), until the recipient budget is used or nothing is left."""
        config = self.config
        session = SmtpSession(host, config.smtp_port, config.helo, config.connect_timeout, config.command_timeout)
        self.stats.connections += 1
        try:
            banner = await session.connect()
        except (SMTPConnectTimeoutError, SMTPConnectError, SMTPServerDisconnected, OSError) as exc:
            self.stats.connect_failures += 1
            prober.give_back(reserved, lost=False, ip=host)
            self._host_out(host, OutcomeKind.TIMEOUT if isinstance(exc, SMTPConnectTimeoutError) else OutcomeKind.NO_CONNECT)
            return
        batch = reserved
        try:
            if banner.code != 220:
                prober.give_back(batch, lost=False, ip=host)
                batch = []
                await self._refused(host, classify(banner.code, banner.message))
                return
            hello = await session.hello()
            if hello.code != 250:
                prober.give_back(batch, lost=False, ip=host)
                batch = []
                await self._refused(host, classify(hello.code, hello.message))
                return
            batch = prober.keep_sendable(batch, session.smtputf8, host)
            budget = self._cap(host)
            in_transaction = False
            accepted_in_transaction = False
            while True:
                if not batch:
                    if session.rcpts_sent >= budget:
                        return
                    nxt = self._next_domain(host, prober)
                    if nxt is None and await self._linger(host):
                        nxt = self._next_domain(host, prober)
                    if nxt is None:
                        return
                    if nxt is not prober:
                        if in_transaction:  # a new domain gets its own transaction in the same session
                            reset = await session.command("RSET")
                            if reset.code != 250:
                                return
                        prober, in_transaction, accepted_in_transaction = nxt, False, False
                    batch = prober.take(self._share(prober, budget - session.rcpts_sent), session.smtputf8, host)
                    if not batch:
                        continue
                rcpts = [a.rcpt for a in batch]
                if not in_transaction:
                    utf8 = session.smtputf8 and any(a.utf8 for a in batch)
                    raw = await session.mail_and_rcpts(config.mail_from, rcpts, smtputf8=utf8)
                    mail = classify(raw[0].code, raw[0].message)
                    if mail.kind is not ReplyKind.ACCEPTED:
                        await self._mail_refused(prober, batch, mail, host)
                        batch = []
                        return
                    in_transaction = True
                    raw = raw[1:]
                else:
                    raw = await session.rcpts(rcpts)
                self.stats.rcpts += len(batch)
                self.stats.max_rcpts_per_session = max(self.stats.max_rcpts_per_session, session.rcpts_sent)
                replies = [classify(r.code, r.message) for r in raw]
                accepted_in_transaction = accepted_in_transaction or any(r.kind is ReplyKind.ACCEPTED for r in replies)
                answered = prober.settle(batch, replies, host, accepted_in_transaction)
                first_position = session.rcpts_sent - len(batch)
                batch = []
                self._session_errors.pop(host, None)
                if answered < len(replies):
                    await self._stopped(host, replies[answered], first_position + answered)
                    return
        except (SMTPReadTimeoutError, SMTPServerDisconnected, ConnectionError, OSError) as exc:
            self.stats.session_errors += 1
            log.debug("session to %s ended: %s", host, exc)
            self._session_errors[host] += 1
            if batch:
                prober.give_back(batch, lost=True, ip=host)
            if self._session_errors[host] >= MAX_SESSION_ERRORS:
                self._host_out(host, OutcomeKind.TIMEOUT)  # answers the banner, then stalls or drops us
        finally:
            # Wait for the 221 before the slot is given back: until the server has read our QUIT it
            # still counts this session, and a new one opened at once could be refused with 421.
            await session.quit(QUIT_WAIT)

    async def _linger(self, host: str) -> bool:
        """Wait briefly for more work on `host`; True if some arrived."""
        event = self._more_work.setdefault(host, asyncio.Event())
        event.clear()
        try:
            async with asyncio.timeout(LINGER):
                await event.wait()
        except TimeoutError:
            return False
        return True

    async def _stopped(self, host: str, reply: Reply, taken: int) -> None:
        """A 452 (too many recipients) or 421 (closing) ended the session early."""
        if reply.kind is ReplyKind.TOO_MANY_RECIPIENTS:
            self.stats.rcpt_452 += 1
            if taken:
                self.host_caps[host] = min(self.host_caps.get(host, self.config.rcpt_per_session), taken)
            return
        self.stats.rejected_421 += 1
        await self.slots.cool_down(host, self.config.host_cooldown)

    async def _refused(self, host: str, reply: Reply) -> None:
        """The server turned the session down before any RCPT."""
        if reply.code == 421:
            self.stats.rejected_421 += 1
            await self.slots.cool_down(host, self.config.host_cooldown)
        elif reply.code >= 500:
            self._host_out(host, OutcomeKind.NO_CONNECT)
        else:
            await self.slots.cool_down(host, 5.0)

    async def _mail_refused(self, prober: DomainProber, batch: list, reply: Reply, host: str) -> None:
        if reply.code == 421:
            self.stats.rejected_421 += 1
            prober.give_back(batch, lost=False, ip=host)
            await self.slots.cool_down(host, self.config.host_cooldown)
            return
        prober.sender_refused(batch, reply, host)

    async def aclose(self) -> None:
        """Let sessions say QUIT and hear 221 (they have nothing left to do); cancel what still hangs."""
        if self._tasks:
            _, hanging = await asyncio.wait(set(self._tasks), timeout=QUIT_WAIT + 0.5)
            for task in hanging:
                task.cancel()
            await asyncio.gather(*hanging, return_exceptions=True)
