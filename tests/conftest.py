"""Shared fixtures. Suites for one part of the code live beside it in tests/<part>/.

Nothing a test does may send traffic anywhere but loopback: an audit hook refuses every socket
connect or send, and every name lookup, that would leave 127.0.0.0/8 (or ::1), so a test that
would have reached a real mail server, platform or resolver fails loudly instead.
"""

from __future__ import annotations

import ipaddress
import sys

import pytest

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NonLoopbackTraffic(OSError):
    """A test tried to reach beyond this machine."""


def _is_local(host: object) -> bool:
    if host is None or host in ("", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0]
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


_attempts: list[str] = []  # kept even when the code under test swallows the refusal


def _refuse(what: str) -> None:
    _attempts.append(what)
    raise NonLoopbackTraffic(f"a test tried to {what}; only loopback is allowed")


def _guard(event: str, args: tuple) -> None:
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and not _is_local(address[0]):
            _refuse(f"reach {address!r} ({event})")
    elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
        if args and not _is_local(args[0]):
            _refuse(f"look up {args[0]!r}")


sys.addaudithook(_guard)


@pytest.fixture(autouse=True)
def _only_loopback():
    """Fail the test that tried, even if the code it ran caught the refusal."""
    start = len(_attempts)
    yield
    tried = _attempts[start:]
    assert not tried, "traffic beyond loopback was attempted: " + "; ".join(tried)
