"""Real SMTP servers on loopback addresses (127.0.0.x, one port), each with a behaviour.

A small but honest subset of SMTP, strict about order (EHLO before MAIL, MAIL before RCPT),
handling commands one after another as a real server does, so that pipelining saves round
trips but not server work. Counters record what a client did, for the tests to assert on.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

TEXTS = {
    "postfix": {
        "rcpt_ok": "250 2.1.5 Ok",
        "unknown": "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table",
        "disabled": "550 5.2.1 <{rcpt}>: Recipient address rejected: Mailbox disabled",
        "full": "552 5.2.2 <{rcpt}>: Recipient address rejected: Mailbox full",
    },
    "gmail": {
        "rcpt_ok": "250 2.1.5 OK x1 - gsmtp",
        "unknown": "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
                   "550 5.1.1 double-checking the recipient's email address. x1 - gsmtp",
        "disabled": "550 5.2.1 The email account that you tried to reach is disabled. x1 - gsmtp",
        "full": "552 5.2.2 The email account that you tried to reach is over quota. x1 - gsmtp",
    },
    "outlook": {
        "rcpt_ok": "250 2.1.5 Recipient OK",
        "unknown": "550 5.5.0 Requested action not taken: mailbox unavailable (x1)",
        "disabled": "550 5.2.1 Requested action not taken: mailbox disabled (x1)",
        "full": "552 5.2.2 STOREDRV.Deliver; mailbox full",
    },
    "yahoo": {
        "rcpt_ok": "250 recipient <{rcpt}> ok",
        "unknown": "554 delivery error: dd This user doesn't have a yahoo.com account ({rcpt}) [0] - mta5",
        "disabled": "554 delivery error: dd Sorry, your message to {rcpt} cannot be delivered. This mailbox is disabled (554.30).",
        "full": "552 mailbox full",
    },
}


@dataclass
class HostStats:
    connections: int = 0
    open: int = 0
    max_open: int = 0
    rejected_421: int = 0
    rcpt: int = 0
    rcpt_per_session: list[int] = field(default_factory=list)
    greylisted: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    helo_names: set[str] = field(default_factory=set)
    senders: set[str] = field(default_factory=set)
    pipelined_batches: int = 0  # times more than one command arrived before we replied


@dataclass
class SmtpHost:
    ip: str
    name: str = "mx.test"
    mode: str = "smtp"  # smtp | blackhole | refused
    flavour: str = "postfix"
    domains: set[str] = field(default_factory=set)  # domains this host accepts mail for
    mailboxes: dict[str, str] = field(default_factory=dict)  # "local@domain" -> ok | full | disabled
    catch_all: set[str] = field(default_factory=set)  # domains that accept any local part
    greylist_s: float = 0.0
    greylist_hint: bool = True  # say "try again in N seconds"
    tempfail: bool = False  # 451 4.3.0 forever
    policy_block: bool = False  # 550 5.7.1 for every RCPT
    strict_sender: bool = False  # refuse a sender whose domain is unknown to `sender_domains`
    max_conn: int = 20
    max_rcpt: int = 100
    conn_rate: tuple[int, float] | None = None  # (burst, per second) before 421
    pipelining: bool = True
    smtputf8: bool = True
    banner_delay: float = 0.0
    latency: float = 0.0
    ehlo_refused: bool = False
    stats: HostStats = field(default_factory=HostStats)
    _bucket: tuple[float, float] | None = None
    _greylist: dict[str, float] = field(default_factory=dict)

    def mailbox(self, rcpt: str) -> str:
        local, _, domain = rcpt.rpartition("@")
        return f"{local.lower()}@{domain.lower()}"


class SmtpServers:
    def __init__(self, port: int) -> None:
        self.port = port
        self.hosts: dict[str, SmtpHost] = {}
        self.sender_domains: set[str] = set()
        self._servers: list[asyncio.Server] = []

    async def start_host(self, host: SmtpHost) -> None:
        self.hosts[host.ip] = host
        if host.mode == "refused":
            return

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(host, reader, writer)

        self._servers.append(await asyncio.start_server(handler, host.ip, self.port))

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def _admit(self, host: SmtpHost) -> bool:
        if host.stats.open > host.max_conn:
            return False
        if host.conn_rate:
            burst, rate = host.conn_rate
            now = time.monotonic()
            tokens, last = host._bucket or (float(burst), now)
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                host._bucket = (tokens, now)
                return False
            host._bucket = (tokens - 1, now)
        return True

    async def _serve(self, host: SmtpHost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = host.stats
        stats.connections += 1
        stats.open += 1
        stats.max_open = max(stats.max_open, stats.open)
        rcpts = 0
        try:
            if host.mode == "blackhole":
                await reader.read()  # hold the connection open, say nothing
                return
            await asyncio.sleep(host.banner_delay)
            if not self._admit(host):
                stats.rejected_421 += 1
                await self._send(writer, f"421 4.7.0 {host.name} Error: too many connections, try again later")
                return
            await self._send(writer, f"220 {host.name} ESMTP")
            helo = None
            sender = None
            while True:
                line = await reader.readline()
                if not line:
                    return
                if len(reader._buffer) > 0:  # type: ignore[attr-defined]  # more commands already waiting
                    stats.pipelined_batches += 1
                command = line.decode("utf-8", errors="replace").rstrip("\r\n")
                verb, _, arg = command.partition(" ")
                verb = verb.upper()
                stats.commands[verb] += 1
                if verb != "QUIT":
                    await asyncio.sleep(host.latency)
                if verb == "QUIT":  # the slot is free once QUIT is read, as real servers count it
                    stats.open -= 1
                    stats.rcpt_per_session.append(rcpts)
                    rcpts = -1
                    await self._send(writer, "221 2.0.0 Bye")
                    return
                if verb in ("EHLO", "HELO"):
                    stats.helo_names.add(arg)
                    if verb == "EHLO" and host.ehlo_refused:
                        await self._send(writer, "502 5.5.2 Error: command not recognized")
                        continue
                    helo, sender = arg, None
                    if verb == "HELO":
                        await self._send(writer, f"250 {host.name}")
                        continue
                    features = [host.name, "SIZE 10240000", "ENHANCEDSTATUSCODES"]
                    features += ["PIPELINING"] if host.pipelining else []
                    features += ["SMTPUTF8"] if host.smtputf8 else []
                    await self._send(writer, "\n".join(f"250{'-' if i < len(features) - 1 else ' '}{f}" for i, f in enumerate(features)))
                elif verb == "MAIL":
                    if helo is None:
                        await self._send(writer, "503 5.5.1 Error: send HELO/EHLO first")
                        continue
                    address = arg.partition(":")[2].split(" ")[0].strip("<>")
                    stats.senders.add(address)
                    if host.strict_sender and address.rpartition("@")[2].lower() not in self.sender_domains:
                        await self._send(writer, f"553 5.1.8 <{address}>: Sender address rejected: Domain not found")
                        continue
                    sender = address
                    await self._send(writer, "250 2.1.0 Ok")
                elif verb == "RCPT":
                    if sender is None:
                        await self._send(writer, "503 5.5.1 Error: need MAIL command")
                        continue
                    rcpt = arg.partition(":")[2].strip().strip("<>")
                    rcpts += 1
                    stats.rcpt += 1
                    if rcpts > host.max_rcpt:
                        await self._send(writer, "452 4.5.3 Error: too many recipients")
                        continue
                    await self._send(writer, self._rcpt_reply(host, rcpt))
                elif verb == "RSET":
                    sender = None
                    await self._send(writer, "250 2.0.0 Ok")
                elif verb == "DATA":
                    await self._send(writer, "554 5.7.0 Error: no message content accepted in tests")
                else:
                    await self._send(writer, "502 5.5.2 Error: command not recognized")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if rcpts >= 0:
                stats.open -= 1
                stats.rcpt_per_session.append(rcpts)
            writer.close()

    def _rcpt_reply(self, host: SmtpHost, rcpt: str) -> str:
        texts = TEXTS[host.flavour]
        local, _, domain = rcpt.rpartition("@")
        domain = domain.lower()
        if domain not in host.domains:
            return f"554 5.7.1 <{rcpt}>: Relay access denied"
        if not rcpt.isascii() and not host.smtputf8:
            return f"553 5.6.7 <{rcpt}>: non-ASCII address requires SMTPUTF8"
        if host.policy_block:
            return "550 5.7.1 Service unavailable; client host [127.0.0.1] blocked using zen.spamhaus.org"
        if host.tempfail:
            return f"451 4.3.0 <{rcpt}>: Temporary lookup failure"
        if host.greylist_s:
            key = host.mailbox(rcpt)
            first = host._greylist.setdefault(key, time.monotonic())
            left = host.greylist_s - (time.monotonic() - first)
            if left > 0:
                host.stats.greylisted += 1
                hint = f", try again in {max(1, round(left))} seconds" if host.greylist_hint else ""
                return f"451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted{hint}"
        if domain in host.catch_all:
            return texts["rcpt_ok"].format(rcpt=rcpt)
        state = host.mailboxes.get(host.mailbox(rcpt))
        key = {"ok": "rcpt_ok", "full": "full", "disabled": "disabled"}.get(state or "", "unknown")
        return texts[key].format(rcpt=rcpt)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: str) -> None:
        writer.write(("\r\n".join(reply.split("\n")) + "\r\n").encode("utf-8"))
        await writer.drain()
