"""A small internet of mail domains on loopback: one DNS server and SMTP hosts on 127.0.0.x.

The servers run on their own event loop in a thread, so async tests, sync tests and CLI
subprocesses can all talk to them. Build the world first, then `start()`:

    world = MailWorld()
    host = world.smtp_host(mailboxes={"ann@acme.test"})
    world.domain("acme.test", mx=[host])
    with world.running():
        config = world.config()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from core.verify.config import VerifierConfig
from tests.mailservers.dns_server import DnsServer, Zone
from tests.mailservers.smtp_server import SmtpHost, SmtpServers

SENDER_DOMAIN = "sender.example"
SENDER = f"verify@{SENDER_DOMAIN}"

_ip_counter = itertools.count(10)


def _free_port_on(ips: Iterable[str]) -> int:
    """A TCP port free on every loopback address we will bind."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            sockets = []
            for ip in ips:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ip, port))
                sockets.append(s)
            for s in sockets:
                s.close()
            return port
        except OSError:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port on the loopback addresses")


class MailWorld:
    def __init__(self) -> None:
        self.zone = Zone()
        self.hosts: list[SmtpHost] = []
        self.dns: DnsServer | None = None
        self.smtp: SmtpServers | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.zone.add(SENDER_DOMAIN, "MX", "10 mx.sender.example.")
        self.zone.add("mx.sender.example", "A", "127.0.0.250")

    # --- building ---------------------------------------------------------------------------
    def smtp_host(self, *, mailboxes: dict[str, str] | Iterable[str] = (), name: str | None = None,
                  **behaviour: Any) -> SmtpHost:
        """A host; `mailboxes` maps address -> ok|full|disabled (an iterable means all ok)."""
        ip = f"127.0.0.{next(_ip_counter)}"
        boxes = dict(mailboxes) if isinstance(mailboxes, dict) else {m: "ok" for m in mailboxes}
        host = SmtpHost(ip=ip, name=name or f"mx{ip.rsplit('.', 1)[1]}.hosting.example",
                        mailboxes={k.lower(): v for k, v in boxes.items()}, **behaviour)
        self.hosts.append(host)
        return host

    def domain(self, name: str, *, mx: list[SmtpHost] | None = None, preferences: list[int] | None = None,
               implicit: SmtpHost | None = None, catch_all: bool = False) -> None:
        name = name.lower()
        if implicit is not None:
            self.zone.add(name, "A", implicit.ip)
            implicit.domains.add(name)
            if catch_all:
                implicit.catch_all.add(name)
            return
        for i, host in enumerate(mx or []):
            pref = preferences[i] if preferences else 10 * (i + 1)
            self.zone.add(name, "MX", f"{pref} {host.name}.")
            if not self.zone.records.get(host.name, {}).get("A"):
                self.zone.add(host.name, "A", host.ip)
            host.domains.add(name)
            if catch_all:
                host.catch_all.add(name)

    def null_mx(self, name: str) -> None:
        self.zone.add(name, "MX", "0 .")

    def no_mail(self, name: str) -> None:
        self.zone.add(name, "TXT", '"v=spf1 -all"')

    def servfail(self, name: str) -> None:
        self.zone.servfail.add(name)

    def silent(self, name: str) -> None:
        self.zone.silent.add(name)

    # --- running ----------------------------------------------------------------------------
    def start(self) -> MailWorld:
        ready = threading.Event()
        failure: list[BaseException] = []
        port = _free_port_on([h.ip for h in self.hosts if h.mode != "refused"] or ["127.0.0.1"])

        async def boot() -> None:
            self.dns = DnsServer(self.zone)
            await self.dns.start()
            self.smtp = SmtpServers(port)
            self.smtp.sender_domains.add(SENDER_DOMAIN)
            for host in self.hosts:
                await self.smtp.start_host(host)

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # surface bind errors in the test, not in a thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="mailworld")
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        def shutdown() -> None:
            if self.dns:
                self.dns.close()
            if self.smtp:
                self.smtp.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.call_soon(self._loop.stop)  # type: ignore[union-attr]

        self._loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    async def smtp_call(self, coro: Any) -> Any:
        """Run a coroutine on the servers' own loop (e.g. start a host that was down)."""
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    @contextlib.contextmanager
    def running(self) -> Iterator[MailWorld]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def config(self, **overrides: Any) -> VerifierConfig:
        assert self.dns is not None and self.smtp is not None, "start() the world first"
        base = VerifierConfig(
            nameservers=("127.0.0.1",),
            dns_port=self.dns.port,
            dns_timeout=1.0,
            smtp_port=self.smtp.port,
            connect_timeout=2.0,
            command_timeout=2.0,
            mail_from=SENDER,
            helo_name="verifier.sender.example",
        )
        return replace(base, **overrides)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment variables that aim `listwarden verify` (a subprocess) at this world."""
        assert self.dns is not None and self.smtp is not None
        return {
            "LISTWARDEN_NAMESERVERS": "127.0.0.1",
            "LISTWARDEN_DNS_PORT": str(self.dns.port),
            "LISTWARDEN_DNS_TIMEOUT": "1",
            "LISTWARDEN_SMTP_PORT": str(self.smtp.port),
            "LISTWARDEN_SMTP_CONNECT_TIMEOUT": "2",
            "LISTWARDEN_SMTP_COMMAND_TIMEOUT": "2",
            "LISTWARDEN_MAIL_FROM": SENDER,
            "LISTWARDEN_HELO_NAME": "verifier.sender.example",
            **extra,
        }
