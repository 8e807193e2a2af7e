"""Where a domain's mail goes: MX by preference, implicit MX (RFC 5321 §5.1), null MX (RFC 7505).

A failure to *learn* the answer (SERVFAIL, timeout) is kept apart from an answer that says
"no mail here" (NXDOMAIN, null MX, neither MX nor address): only the second makes an address
invalid. Each domain and each MX host is looked up once per resolver, with concurrent callers
sharing the one lookup.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from core.verify.config import VerifierConfig

DNS_CONCURRENCY = 256  # domains being looked up at once
CACHE_SIZE = 200_000  # domains and MX hosts remembered
FAILURE_TTL = 60.0  # seconds a failure to look up (SERVFAIL, timeout) is remembered


class RouteKind(StrEnum):
    MX = "mx"
    IMPLICIT = "implicit"  # no MX; the domain's own A/AAAA
    NULL_MX = "null_mx"  # "MX 0 ." : the domain says it takes no mail
    NXDOMAIN = "nxdomain"
    NO_MAIL = "no_mail"  # exists, but neither MX nor address (or only unresolvable MX hosts)
    ERROR = "error"  # SERVFAIL, refused, malformed
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class MailHost:
    name: str
    preference: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class MailRoute:
    domain: str
    kind: RouteKind
    hosts: tuple[MailHost, ...] = ()
    detail: str = ""

    @property
    def deliverable(self) -> bool:
        return self.kind in (RouteKind.MX, RouteKind.IMPLICIT)

    @property
    def definitive(self) -> bool:
        """The DNS answer itself settles the address as invalid."""
        return self.kind in (RouteKind.NULL_MX, RouteKind.NXDOMAIN, RouteKind.NO_MAIL)


@dataclass
class _AddressAnswer:
    addresses: tuple[str, ...] = ()
    failure: RouteKind | None = None  # ERROR/TIMEOUT: could not tell; NXDOMAIN: the name does not exist


@dataclass
class DnsStats:
    queries: int = 0
    cache_hits: int = 0


class MailRouter:
    """An async resolver with a per-run cache of routes and host addresses."""

    def __init__(self, config: VerifierConfig) -> None:
        resolver = dns.asyncresolver.Resolver(configure=config.nameservers is None)
        if config.nameservers is not None:
            resolver.nameservers = list(config.nameservers)
        resolver.port = config.dns_port
        resolver.timeout = config.dns_timeout
        resolver.lifetime = config.dns_timeout
        resolver.retry_servfail = False
        resolver.cache = None  # our own cache below keeps negative answers too
        self._resolver = resolver
        self._lifetime = config.dns_timeout
        # Thousands of simultaneous queries are slower than a steady stream (socket churn, server queues);
        # gating whole domains, not single queries, lets a domain's MX hosts be looked up right after its MX.
        # A FIFO of waiters and a count, not asyncio.Semaphore: its locked() scans every waiter.
        self._running = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self._routes: dict[str, tuple[asyncio.Future[MailRoute], float]] = {}
        self._hosts: dict[str, tuple[asyncio.Future[_AddressAnswer], float]] = {}
        self._ttl = config.dns_ttl
        self.stats = DnsStats()

    async def route(self, domain: str) -> MailRoute:
        return await self._once(self._routes, domain, self._lookup_route)

    async def domain_resolves(self, domain: str) -> bool:
        """The domain can receive mail (for checking our own MAIL FROM at start-up)."""
        return (await self.route(domain)).deliverable

    async def _once(self, cache: dict, key: str, compute):  # type: ignore[no-untyped-def]
        """One lookup per key while its answer is fresh; concurrent callers share it.

        Failures to look up (SERVFAIL, timeouts) are kept only briefly, so that a passing DNS
        problem does not stick; answers are kept for `dns_ttl`. The cache is bounded.
        """
        while (entry := cache.get(key)) is not None:
            future, stored = entry
            if future.done() and time.monotonic() - stored > self._keep_for(future):
                del cache[key]
                break
            self.stats.cache_hits += 1
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not future.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the caller doing the lookup was cancelled, not us: look it up ourselves
        future = asyncio.get_running_loop().create_future()
        cache[key] = (future, time.monotonic())
        try:
            value = await compute(key)
        except BaseException:
            cache.pop(key, None)  # a failed or cancelled lookup must not poison later callers
            future.cancel()
            raise
        future.set_result(value)
        cache[key] = (future, time.monotonic())
        if len(cache) > CACHE_SIZE:
            self._evict(cache)
        return value

    def _keep_for(self, future: asyncio.Future) -> float:  # type: ignore[type-arg]
        value = future.result() if not future.cancelled() else None
        failed = (isinstance(value, MailRoute) and value.kind in (RouteKind.TIMEOUT, RouteKind.ERROR)) or (
            isinstance(value, _AddressAnswer) and value.failure in (RouteKind.TIMEOUT, RouteKind.ERROR)
        )
        return min(self._ttl, FAILURE_TTL) if failed else self._ttl

    @staticmethod
    def _evict(cache: dict) -> None:  # type: ignore[type-arg]
        """Drop the oldest settled tenth (dicts keep insertion order)."""
        drop = [k for k, (f, _) in zip(cache, cache.values()) if f.done()][: max(1, len(cache) // 10)]
        for key in drop:
            del cache[key]

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | RouteKind:
        self.stats.queries += 1
        try:
            return await self._resolver.resolve(
                dns.name.from_text(name), rdtype, search=False, lifetime=self._lifetime, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return RouteKind.NXDOMAIN
        except (dns.resolver.LifetimeTimeout, dns.exception.Timeout):
            return RouteKind.TIMEOUT
        except (dns.resolver.NoNameservers, dns.resolver.YXDOMAIN, dns.exception.DNSException):
            return RouteKind.ERROR

    async def _lookup_route(self, domain: str) -> MailRoute:
        if self._running >= DNS_CONCURRENCY:
            turn = asyncio.get_running_loop().create_future()
            self._queue.append(turn)
            try:
                await turn  # the finishing lookup hands its place straight to us
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._hand_over()
                raise
        else:
            self._running += 1
        try:
            return await self._lookup_route_now(domain)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._running -= 1

    async def _lookup_route_now(self, domain: str) -> MailRoute:
        answer = await self._query(domain, "MX")
        if isinstance(answer, RouteKind):
            return MailRoute(domain, answer, detail=f"MX lookup: {answer}")
        records = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in answer.rrset or ()]
        if any(name in ("", ".") for _, name in records):
            return MailRoute(domain, RouteKind.NULL_MX, detail="The domain publishes a null MX (RFC 7505).")
        if not records:
            address = await self._addresses(domain)
            if address.failure in (RouteKind.ERROR, RouteKind.TIMEOUT):
                return MailRoute(domain, address.failure, detail="A/AAAA lookup failed")
            if not address.addresses:
                return MailRoute(domain, RouteKind.NO_MAIL, detail="The domain has neither MX nor address records.")
            return MailRoute(domain, RouteKind.IMPLICIT, (MailHost(domain, 0, address.addresses),))
        records.sort()
        answers = await asyncio.gather(*(self._once(self._hosts, name, self._addresses) for _, name in records))
        hosts = tuple(
            MailHost(name, pref, answer.addresses) for (pref, name), answer in zip(records, answers) if answer.addresses
        )
        if hosts:
            return MailRoute(domain, RouteKind.MX, hosts)
        if all(answer.failure == RouteKind.NXDOMAIN or answer.failure is None for answer in answers):
            return MailRoute(domain, RouteKind.NO_MAIL, detail="None of the domain's MX hosts exists.")
        failure = RouteKind.TIMEOUT if any(a.failure == RouteKind.TIMEOUT for a in answers) else RouteKind.ERROR
        return MailRoute(domain, failure, detail="The MX hosts' addresses could not be looked up.")

    async def _addresses(self, name: str) -> _AddressAnswer:
        """A records, else AAAA: mail hosts are reached over IPv4 first, as most MTAs do."""
        result = _AddressAnswer()
        for rdtype in ("A", "AAAA"):
            answer = await self._query(name, rdtype)
            if isinstance(answer, RouteKind):
                if answer is RouteKind.NXDOMAIN:
                    return _AddressAnswer(failure=RouteKind.NXDOMAIN)
                result.failure = answer
                continue
            found = tuple(r.to_text() for r in answer.rrset or ())
            if found:
                return _AddressAnswer(addresses=found)
        return result


__all__ = ["MailRouter", "MailRoute", "MailHost", "RouteKind"]
