"""The Verifier: one answer per address, for one address or a stream of millions.

Addresses do not each get a task: an address is parsed, joins its domain, and waits on a
future. Each domain is looked up once (one task per domain), then its addresses are settled by
DNS or handed to the domain's prober, whose SMTP outcomes resolve the futures. That keeps the
event loop free for the wire when a hundred thousand addresses are in flight, and lets
`verify_many` read far enough ahead for recipients of one domain to share sessions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

from core.verify.address import Address, SyntaxProblem, parse
from core.verify.config import VerifierConfig
from core.verify.dns import MailRoute, MailRouter, RouteKind
from core.verify.politeness import HostSlots, LocalHostSlots
from core.verify.prober import CatchAll, DomainProber, Outcome, OutcomeKind
from core.verify.recent import Recent
from core.verify.result import Result
from core.verify.sessions import SessionScheduler
from core.verify.stats import SmtpStats
from core.verify.status import Status, info
from core.verify.tables import is_disposable, suggest_domain
from core.verify.verdict import (
    disposable_verdict,
    dns_only_verdict,
    dns_verdict,
    smtp_verdict,
    syntax_failure,
)

log = logging.getLogger(__name__)

RESULT_MEMORY = 50_000  # recent answers kept to serve duplicates within a run
ROUTE_MEMORY = 100_000  # domains whose route is kept at hand (the resolver keeps its own cache too)
PROBER_MEMORY = 2_000  # idle domain probers kept before their catch-all verdicts are folded away
READ_CHUNK = 1_000  # lines pulled per thread hop from a blocking iterable (a file)
# While reading ahead, give the loop a turn this often so that the first lookups go out early. By
# time, not by count: a busy loop takes tens of milliseconds per turn, and yielding every few
# hundred addresses starved the reading (addresses of one domain then arrive seconds apart).
YIELD_EVERY_S = 0.05


class ConfigurationError(Exception):
    """The verifier's own identity or network settings cannot work; the message says which setting."""


def _internal_error(email: str) -> Result:
    return Result(email=str(email), normalized="", status=Status.UNKNOWN, score=4,
                  classifier=info(Status.UNKNOWN).classifier, flags=(),
                  reason="An internal error stopped this check; try again.")


class Verifier:
    def __init__(self, config: VerifierConfig | None = None) -> None:
        self.config = config or VerifierConfig()
        self.router = MailRouter(self.config)
        self.slots: HostSlots = self.config.host_slots or LocalHostSlots(
            connect_burst=self.config.connect_burst, connect_rate=self.config.connect_rate
        )
        self.smtp_stats = SmtpStats()
        self.scheduler = SessionScheduler(self.config, self.slots, self.smtp_stats)
        self._probers: dict[str, DomainProber] = {}
        self._catch_all_memory: Recent[str, CatchAll] = Recent(ROUTE_MEMORY, self.config.catch_all_ttl)
        self._routes: Recent[str, MailRoute] = Recent(ROUTE_MEMORY, self.config.dns_ttl)
        self._awaiting_route: dict[str, list[tuple[Address, asyncio.Future[Result]]]] = {}
        self._route_tasks: set[asyncio.Task[None]] = set()
        self._results: Recent[str, Result] = Recent(RESULT_MEMORY, self.config.result_ttl)
        self._inflight: dict[str, asyncio.Future[Result]] = {}

    # --- identity ----------------------------------------------------------------------------
    async def check_identity(self) -> None:
        """Refuse to start with a sender no mail server would accept: its domain must resolve."""
        sender = self.config.mail_from
        parsed = parse(sender, sender=True)
        if isinstance(parsed, SyntaxProblem):
            raise ConfigurationError(f"LISTWARDEN_MAIL_FROM ({sender!r}) is not a valid address: {parsed.reason}")
        route = await self.router.route(parsed.domain)
        if route.kind in (RouteKind.TIMEOUT, RouteKind.ERROR):
            raise ConfigurationError(
                f"Could not look up the domain of LISTWARDEN_MAIL_FROM ({parsed.domain}): DNS {route.kind}. "
                "Check LISTWARDEN_NAMESERVERS or the network."
            )
        if not route.deliverable:
            raise ConfigurationError(
                f"The domain of LISTWARDEN_MAIL_FROM ({parsed.domain}) has no MX or A record, so mail servers would "
                "reject our probes. Set LISTWARDEN_MAIL_FROM to an address at a domain you own."
            )

    # --- one address -----------------------------------------------------------------------------
    async def verify(self, email: str) -> Result:
        return await self.submit(email)

    def submit(self, email: str | bytes) -> asyncio.Future[Result]:
        """Start checking one address; the future always resolves to a Result (never raises)."""
        loop = asyncio.get_running_loop()
        text = email.decode("utf-8", errors="replace") if isinstance(email, bytes) else str(email)
        try:
            parsed = parse(text)
        except Exception:  # parse already guards itself; this is the last line
            log.exception("parsing an address failed")
            return _done(loop, _internal_error(text))
        if isinstance(parsed, SyntaxProblem):
            return _done(loop, syntax_failure(parsed))
        key = parsed.dedupe_key
        cached = self._results.get(key)
        if cached is not None:
            return _done(loop, cached if cached.email == text else replace(cached, email=text))
        inflight = self._inflight.get(key)
        if inflight is not None:
            return _relabel(loop, inflight, text)
        future: asyncio.Future[Result] = loop.create_future()
        self._inflight[key] = future
        future.add_done_callback(lambda f, key=key: self._remember(key, f))
        route = self._routes.get(parsed.domain)
        if route is not None:
            self._dispatch(parsed, route, future)
            return future
        waiting = self._awaiting_route.get(parsed.domain)
        if waiting is None:
            waiting = self._awaiting_route[parsed.domain] = []
            task = loop.create_task(self._look_up(parsed.domain), name=f"route:{parsed.domain}")
            self._route_tasks.add(task)
            task.add_done_callback(self._route_tasks.discard)
        waiting.append((parsed, future))
        return future

    def _remember(self, key: str, future: asyncio.Future[Result]) -> None:
        self._inflight.pop(key, None)
        if future.cancelled():
            return
        self._results.put(key, future.result())

    async def _look_up(self, domain: str) -> None:
        try:
            route = await self.router.route(domain)
        except asyncio.CancelledError:
            for _, future in self._awaiting_route.pop(domain, []):
                future.cancel()
            raise
        except Exception:
            log.exception("looking up %s failed", domain)
            for address, future in self._awaiting_route.pop(domain, []):
                _settle(future, _internal_error(address.original))
            return
        self._routes.put(domain, route)
        for address, future in self._awaiting_route.pop(domain, []):
            self._dispatch(address, route, future)

    def _dispatch(self, address: Address, route: MailRoute, future: asyncio.Future[Result]) -> None:
        """Settle by DNS and lists where they decide; otherwise queue the RCPT probe."""
        try:
            suggestion = None
            if route.kind in (RouteKind.NXDOMAIN, RouteKind.NO_MAIL):
                better = suggest_domain(address.domain)
                suggestion = f"{address.local}@{better}" if better else None
            settled = dns_verdict(address, route, suggestion)
            if settled is None and is_disposable(address.domain):
                settled = disposable_verdict(address, route)
            if settled is None and not self.config.smtp:
                settled = dns_only_verdict(address, route)
            if settled is not None:
                _settle(future, settled)
                return
            prober = self._prober(address.domain, route)
            outcome = prober.check(address.normalized, utf8=address.smtputf8)
            outcome.add_done_callback(lambda f: self._on_outcome(address, route, prober, f, future))
        except Exception:
            log.exception("checking %s failed", address.domain)
            _settle(future, _internal_error(address.original))

    def _on_outcome(self, address: Address, route: MailRoute, prober: DomainProber,
                    done: asyncio.Future[Outcome], future: asyncio.Future[Result]) -> None:
        if done.cancelled():
            future.cancel()
            return
        outcome = done.result()
        if outcome.kind not in (OutcomeKind.ACCEPTED, OutcomeKind.FULL):
            _settle(future, smtp_verdict(address, route, outcome, None))
            return
        # An accepted RCPT means little until we know whether the domain accepts everything.
        prober.on_catch_all(lambda verdict: _settle(future, smtp_verdict(address, route, outcome, verdict)))

    def _prober(self, domain: str, route: MailRoute) -> DomainProber:
        prober = self._probers.get(domain)
        if prober is not None and prober.idle and (
            prober.route is not route or time.monotonic() - prober.decided_at > self.config.catch_all_ttl
        ):
            self._forget(domain, prober)  # the domain was looked up again, or its verdict is old
            prober = None
        if prober is None:
            if len(self._probers) >= PROBER_MEMORY:
                self._fold_idle_probers()
            prober = DomainProber(domain, route, self.config, self.scheduler)
            remembered = self._catch_all_memory.get(domain)
            if remembered is not None:
                prober.decide(remembered)
            self._probers[domain] = prober
        return prober

    def _forget(self, domain: str, prober: DomainProber) -> None:
        """Drop an idle prober, keeping its catch-all verdict (which has its own age limit)."""
        if prober.catch_all is not CatchAll.UNDECIDED and time.monotonic() - prober.decided_at <= self.config.catch_all_ttl:
            self._catch_all_memory.put(domain, prober.catch_all)
        del self._probers[domain]

    def _fold_idle_probers(self) -> None:
        for domain, prober in list(self._probers.items()):
            if prober.idle:
                self._forget(domain, prober)

    # --- many addresses -----------------------------------------------------------------------------
    async def verify_many(
        self, addresses: Iterable[str] | AsyncIterable[str], *, ordered: bool = True
    ) -> AsyncIterator[Result]:
        """Results for every input item, in input order unless `ordered=False` (then as they finish).

        At most `config.window` addresses are in flight: reading pauses until the oldest are done.
        """
        room = asyncio.Semaphore(self.config.window)
        out: asyncio.Queue[asyncio.Future[Result] | None] = asyncio.Queue()

        async def produce() -> None:
            turn = time.monotonic()
            try:
                async for email in _aiter(addresses):
                    await room.acquire()
                    future = self.submit(email)
                    if ordered:
                        out.put_nowait(future)
                    else:
                        future.add_done_callback(out.put_nowait)
                    if time.monotonic() - turn > YIELD_EVERY_S:
                        await asyncio.sleep(0)
                        turn = time.monotonic()
            finally:
                if ordered:
                    out.put_nowait(None)
                else:
                    # every future reports itself; the end marker follows once all of them have
                    await _wait_for_room(room, self.config.window)
                    out.put_nowait(None)

        producer = asyncio.get_running_loop().create_task(produce())
        try:
            while True:
                item = await out.get()
                if item is None:
                    break
                result = await item
                room.release()
                yield result
            await producer  # re-raise a failure to read the input
        finally:
            if not producer.done():
                producer.cancel()
            while not out.empty():
                item = out.get_nowait()
                if item is not None:
                    item.cancel()

    # --- reporting --------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {"smtp": self.smtp_stats.as_dict(),
                "dns": {"queries": self.router.stats.queries, "cache_hits": self.router.stats.cache_hits}}

    async def aclose(self) -> None:
        for task in list(self._route_tasks):
            task.cancel()
        await self.scheduler.aclose()


def _done(loop: asyncio.AbstractEventLoop, result: Result) -> asyncio.Future[Result]:
    future: asyncio.Future[Result] = loop.create_future()
    future.set_result(result)
    return future


def _settle(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _relabel(loop: asyncio.AbstractEventLoop, source: asyncio.Future[Result], email: str) -> asyncio.Future[Result]:
    """A duplicate's future: the first occurrence's answer under this occurrence's spelling."""
    future: asyncio.Future[Result] = loop.create_future()

    def copy(done: asyncio.Future[Result]) -> None:
        if done.cancelled():
            future.cancel()
        else:
            result = done.result()
            _settle(future, result if result.email == email else replace(result, email=email))

    source.add_done_callback(copy)
    return future


async def _wait_for_room(room: asyncio.Semaphore, window: int) -> None:
    """All permits back means every submitted address has been handed out."""
    for _ in range(window):
        await room.acquire()
    for _ in range(window):
        room.release()


async def _aiter(items: Iterable[str] | AsyncIterable[str]) -> AsyncIterator[str]:
    """Async iteration over anything; a blocking iterable (a file) is read in a thread, in chunks."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
        return
    if isinstance(items, (list, tuple)):
        for item in items:
            yield item
        return
    iterator = iter(items)

    def chunk() -> list[str]:
        got = []
        for item in iterator:
            got.append(item)
            if len(got) >= READ_CHUNK:
                break
        return got

    while batch := await asyncio.to_thread(chunk):
        for item in batch:
            yield item


__all__ = ["Verifier", "ConfigurationError"]
