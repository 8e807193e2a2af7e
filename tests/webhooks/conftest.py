"""The verify-first suite's world: loopback mail servers, the real app on a loopback port, emulators.

One app per test module (its own SQLite database); each test connects its own emulator, so
tests never share platform state. Mail: example.com holds `member{n}` for n < 1000 except those
with n % 20 in (2, 3), which bounce; mailinator.com is a disposable-mail provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from core.settings import Settings
from tests.emulators.server import serve
from tests.mailservers import MailWorld
from tests.storage.fixtures import TEST_KEY
from tests.webhooks.live import LiveApp, live_app

HERE = Path(__file__).parent


def is_invalid(n: int) -> bool:
    return n % 20 in (2, 3)


def build_world() -> MailWorld:
    world = MailWorld()
    boxes = {f"member{n}@example.com" for n in range(1000) if not is_invalid(n)}
    world.domain("example.com", mx=[world.smtp_host(name="mx.example.com", mailboxes=boxes)])
    world.domain("mailinator.com", mx=[world.smtp_host(name="mx.mailinator.com")], catch_all=True)
    return world


@pytest.fixture(scope="module")
def world() -> MailWorld:
    w = build_world()
    with w.running():
        yield w


def app_settings(tmp: Path, world: MailWorld, **extra: object) -> Callable[[str], Settings]:
    def make(public_url: str) -> Settings:
        values: dict[str, object] = {
            "DATABASE_URL": f"sqlite://{tmp / 'listwarden.sqlite3'}", "LISTWARDEN_SECRET_KEY": TEST_KEY,
            "LISTWARDEN_PUBLIC_URL": public_url, **world.env(),
            "LISTWARDEN_WEBHOOK_CACHE_SECONDS": 0, "LISTWARDEN_WEBHOOK_LEASE_SECONDS": 3,
            "LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS": 3600, "LISTWARDEN_POLL_SECONDS": 3600,
            "LISTWARDEN_INITIAL_CREDITS": 1_000_000, "LISTWARDEN_LOG_LEVEL": "warning",
        }
        values.update(extra)
        return Settings(**values)  # type: ignore[arg-type]

    return make


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(world, tmp_path_factory) -> AsyncIterator[LiveApp]:
    async with live_app(app_settings(tmp_path_factory.mktemp("app"), world)) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as http:
        yield http


@pytest.fixture
def connect(app):
    """`await connect(PlatformClass, workspace)` -> the platform, connected with verify-first on, its emulator served."""
    stack = contextlib.ExitStack()

    async def make(platform_cls, workspace: str, *, members: int | None = None, verify_first: bool = True):
        emu = platform_cls.module.build(members=platform_cls.members if members is None else members)
        server = stack.enter_context(serve(emu.app))
        platform = platform_cls(app, emu, server.url)
        await platform.connect(workspace, verify_first=verify_first)
        return platform

    with stack:
        yield make


async def wait_for(predicate, timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def settled(app, connection_id: str, count: int | None = None, timeout: float = 15.0):
    """Wait until the connection's deliveries are all processed (and, given `count`, that many exist); their rows."""
    from core.storage.models import WebhookDelivery

    async def done() -> bool:
        rows = await WebhookDelivery.filter(connection_id=connection_id).values("state")
        return (count is None or len(rows) >= count) and all(r["state"] in ("done", "failed") for r in rows)

    await wait_for(done, timeout, f"the deliveries of {connection_id} to be processed")
    return await WebhookDelivery.filter(connection_id=connection_id).order_by("id").values()


def records(rows) -> dict[str, dict]:
    """email -> the subscriber record, over a connection's processed deliveries."""
    return {r["email"]: r for row in rows for r in (row["result"] or {}).get("subscribers", [])}
