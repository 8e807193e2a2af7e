"""An SMTP session that can carry many RCPTs, pipelined (RFC 2920) where the server allows it.

aiosmtplib's protocol keeps one reply waiter and drops bytes that arrive while a parsed reply
awaits pickup, so several replies in one packet (what pipelining produces) are lost. This thin
layer keeps aiosmtplib's reply parser, reply type and errors, and queues every reply it parses.
DATA is never sent: a probe ends at RCPT.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiosmtplib.errors import (
    SMTPConnectError,
    SMTPConnectTimeoutError,
    SMTPReadTimeoutError,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from aiosmtplib.esmtp import parse_esmtp_extensions
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    MAX_RESPONSE_LENGTH,
    SMTPProtocol,
)
from aiosmtplib.response import SMTPResponse

__all__ = [
    "PipeliningProtocol",
    "SmtpSession",
    "SMTPResponse",
    "SMTPConnectError",
    "SMTPConnectTimeoutError",
    "SMTPReadTimeoutError",
    "SMTPServerDisconnected",
]

# Pipelined commands go out in groups of this many, so a server that reads slowly is not flooded.
PIPELINE_GROUP = 100


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, with every parsed reply queued instead of one at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(loop=loop)
        self._replies: deque[SMTPResponse] = deque()
        self._reply_waiter: asyncio.Future[None] | None = None
        self._failure: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        while True:
            try:
                reply = self._read_response_from_buffer()
            except SMTPResponseException as exc:
                self._fail(exc)
                return
            if reply is None:
                break
            self._replies.append(reply)
        if len(self._buffer) > MAX_RESPONSE_LENGTH:
            self._fail(SMTPResponseException(500, "Response too long"))
            return
        self._wake()

    def eof_received(self) -> bool:
        self._fail(SMTPServerDisconnected("The server closed the connection."))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        # FlowControlMixin releases writers blocked on drain; the parent's waiter handling is not used.
        super(SMTPProtocol, self).connection_lost(exc)
        self._fail(SMTPServerDisconnected("The connection was lost."))
        self.transport = None

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        self._wake()

    def _wake(self) -> None:
        if self._reply_waiter is not None and not self._reply_waiter.done():
            self._reply_waiter.set_result(None)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        if self._replies:
            return self._replies.popleft()
        try:
            async with asyncio.timeout(timeout):  # cheaper than wait_for: no task per reply
                while not self._replies:
                    if self._failure is not None:
                        raise self._failure
                    self._reply_waiter = self._loop.create_future()
                    try:
                        await self._reply_waiter
                    finally:
                        self._reply_waiter = None
        except TimeoutError:
            raise SMTPReadTimeoutError("Timed out waiting for the server's reply.") from None
        return self._replies.popleft()

    def send_lines(self, lines: Sequence[bytes]) -> None:
        for line in lines:
            if COMMAND_INJECTION_REGEX.search(line):
                raise ValueError("SMTP command contains a control character")
        self.write(b"".join(line + b"\r\n" for line in lines))


@dataclass
class SmtpSession:
    """One connection to one MX host address."""

    host: str  # the IP we connect to
    port: int
    helo: str
    connect_timeout: float
    command_timeout: float
    banner: SMTPResponse | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    esmtp: bool = False
    rcpts_sent: int = 0
    _protocol: PipeliningProtocol | None = None

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.extensions

    @property
    def smtputf8(self) -> bool:
        return "smtputf8" in self.extensions

    async def connect(self) -> SMTPResponse:
        """TCP connect and read the banner, both within `connect_timeout`."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.connect_timeout
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: PipeliningProtocol(loop), self.host, self.port), self.connect_timeout
            )
        except TimeoutError:
            raise SMTPConnectTimeoutError(f"Timed out connecting to {self.host}:{self.port}.") from None
        except OSError as exc:
            raise SMTPConnectError(f"Could not connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        self._protocol = protocol
        try:
            self.banner = await protocol.read_response(max(0.0, deadline - time.monotonic()))
        except SMTPReadTimeoutError:
            self.close()
            raise SMTPConnectTimeoutError(f"{self.host} accepted the connection but sent no greeting.") from None
        return self.banner

    async def hello(self) -> SMTPResponse:
        """EHLO, falling back to HELO for servers that refuse it (no extensions then)."""
        reply = await self.command(f"EHLO {self.helo}")
        if reply.code == 250:
            self.esmtp = True
            self.extensions, _ = parse_esmtp_extensions(reply.message)
            return reply
        if reply.code in (500, 501, 502, 504, 550):
            reply = await self.command(f"HELO {self.helo}")
        return reply

    async def command(self, line: str) -> SMTPResponse:
        protocol = self._require()
        protocol.send_lines([line.encode("utf-8")])
        return await protocol.read_response(self.command_timeout)

    async def mail_and_rcpts(self, sender: str, recipients: Sequence[str], *, smtputf8: bool = False) -> list[SMTPResponse]:
        """MAIL FROM then one RCPT per recipient; replies in order, MAIL's first.

        With PIPELINING the whole group is written at once and the replies are read as they
        come; without it, one command waits for its reply before the next goes out.
        """
        mail = f"MAIL FROM:<{sender}>" + (" SMTPUTF8" if smtputf8 else "")
        lines = [mail] + [f"RCPT TO:<{r}>" for r in recipients]
        self.rcpts_sent += len(recipients)
        if not self.pipelining:
            replies = [await self.command(mail)]
            if replies[0].code != 250:
                return replies
            for line in lines[1:]:
                replies.append(await self.command(line))
            return replies
        return await self._pipeline(lines)

    async def rcpts(self, recipients: Sequence[str]) -> list[SMTPResponse]:
        """More RCPTs in the open transaction."""
        self.rcpts_sent += len(recipients)
        lines = [f"RCPT TO:<{r}>" for r in recipients]
        if not self.pipelining:
            return [await self.command(line) for line in lines]
        return await self._pipeline(lines)

    async def _pipeline(self, lines: list[str]) -> list[SMTPResponse]:
        protocol = self._require()
        replies: list[SMTPResponse] = []
        for start in range(0, len(lines), PIPELINE_GROUP):
            group = lines[start : start + PIPELINE_GROUP]
            protocol.send_lines([line.encode("utf-8") for line in group])
            for _ in group:
                replies.append(await protocol.read_response(self.command_timeout))
        return replies

    def send_quit(self) -> None:
        """Say goodbye without waiting: the server frees our slot when it reads QUIT."""
        if self._protocol is not None and self._protocol.is_connected:
            try:
                self._protocol.send_lines([b"QUIT"])
            except Exception:  # the connection may already be gone; closing is all that is left
                pass

    async def quit(self, timeout: float = 2.0) -> None:
        self.send_quit()
        if self._protocol is not None and self._protocol.is_connected:
            try:
                await self._protocol.read_response(timeout)
            except Exception:  # a missing 221 changes nothing about the verdicts
                pass
        self.close()

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    def _require(self) -> PipeliningProtocol:
        if self._protocol is None or not self._protocol.is_connected:
            raise SMTPServerDisconnected("The connection was lost.")
        return self._protocol
