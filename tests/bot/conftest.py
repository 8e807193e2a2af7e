"""Fixtures: the recording Slack server and loopback mail servers, platform emulators, and the real app.

The app is the whole Listwarden ASGI app (storage, jobs, REST API, webhooks, the bot) on a fresh
SQLite database, driven over HTTP with signed bodies. Its Web API client points at `FakeSlack`;
its verifier (the jobs engine's, also used by inline /verify) at a `MailWorld` on loopback where
`member{i}@example.com` exists unless i ends in 9, and mailinator.com is a disposable provider.
Platforms are the emulators of tests/emulators, each served on its own loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.blocks.limits import message_violations, options_violations, view_violations
from core.connections import ConnectionView
from core.services import Services
from core.settings import Settings
from listwarden.app import create_app
from tests.bot.fake_slack import BOT_TOKEN, TEAM_ID, FakeSlack
from tests.bot.payloads import SECRET, signed_headers
from tests.emulators.base import Emulator
from tests.emulators.server import LiveServer, free_port
from tests.mailservers import MailWorld
from tests.storage.fixtures import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
WORLD_MEMBERS = 2000  # member0..member1999@example.com; those ending in 9 do not exist
FAST_PROGRESS = 0.05  # seconds between two updates of one message in tests (2 s in production; see test_progress)


def member_exists(i: int) -> bool:
    return i % 10 != 9


def build_world() -> MailWorld:
    world = MailWorld()
    host = world.smtp_host(mailboxes={f"member{i}@example.com" for i in range(WORLD_MEMBERS) if member_exists(i)},
                           max_conn=50, max_rcpt=200)
    world.domain("example.com", mx=[host])
    world.domain("mailinator.com", mx=[world.smtp_host(mailboxes=())])
    return world


@pytest.fixture(scope="session")
def mail() -> Iterator[MailWorld]:
    for attempt in range(3):  # the port it picked can be taken by another suite before it binds (a shared machine)
        world = build_world()
        try:
            world.start()
            break
        except OSError:
            world.stop()
            if attempt == 2:
                raise
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """Every test's Slack: each message and view it receives must be within Block Kit's limits."""
    fake = FakeSlack()
    server = LiveServer(fake.app).start()
    fake.url = server.url
    try:
        yield fake
    finally:
        server.stop()
    assert not fake.violations, fake.violations


def bot_values(slack: FakeSlack, mail: MailWorld, tmp_path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.url + "/api/",
        "DATABASE_URL": f"sqlite://{tmp_path}/db.sqlite3", "LISTWARDEN_SECRET_KEY": TEST_KEY,
        "LISTWARDEN_INITIAL_CREDITS": 1000, "LISTWARDEN_JOB_PROGRESS_SECONDS": 0.05, **mail.env(),
    }
    values.update(overrides)
    return values


def bot_settings(slack: FakeSlack, mail: MailWorld, tmp_path, **overrides: Any) -> Settings:
    return Settings(**bot_values(slack, mail, tmp_path, **overrides))


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the environment variables a second process reads them from."""
    env = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is not None and name in settings.model_fields_set:
            env[info.alias or name.upper()] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return env


@contextlib.contextmanager
def app_process(env: dict[str, str]) -> Iterator[str]:
    """The app in a process of its own (uvicorn --factory, as `listwarden serve` runs it); yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "listwarden.app:app_factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the app process did not start: " + proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Bot:
    """The whole ASGI app behind an httpx client that signs what it posts like Slack does."""

    def __init__(self, client: httpx.AsyncClient, app) -> None:
        self.client = client
        self.app = app
        self.violations: list[str] = []

    @property
    def core(self) -> Services:
        return self.app.state.runtime.services

    @property
    def services(self):
        return self.app.state.runtime.slack_services

    async def post(self, body: str, *, json_body: bool = False, headers: dict[str, str] | None = None,
                   ts: int | None = None, secret: str = SECRET) -> httpx.Response:
        content_type = "application/json" if json_body else "application/x-www-form-urlencoded"
        signed = signed_headers(body, ts=ts, secret=secret, content_type=content_type)
        response = await self.client.post("/slack/events", content=body, headers={**signed, **(headers or {})})
        self.check_answer(response)
        return response

    def check_answer(self, response: httpx.Response) -> None:
        """What goes back in the HTTP answer (an ack's message, a modal update, select options) obeys Block Kit too."""
        if not response.headers.get("content-type", "").startswith("application/json"):
            return
        body = response.json()
        if isinstance(body.get("view"), dict):
            self.violations += [f"answer view: {v}" for v in view_violations(body["view"])]
        if isinstance(body.get("options"), list):
            self.violations += [f"answer options: {v}" for v in options_violations(body["options"])]
        if "blocks" in body or "text" in body:
            self.violations += [f"answer message: {v}" for v in message_violations(body)]

    async def connect(self, emulator: Emulator, server: LiveServer, *, name: str = "Main", credentials=None,
                      team: str = TEAM_ID) -> ConnectionView:
        """A connection made through the core, as /listwarden connect makes it, aimed at the emulator."""
        return await self.core.connections.create(team, emulator.slug, credentials or emulator.credentials(server.url),
                                                  name=name, base_url=server.url, created_by="U0ALICE")

    async def settle(self) -> None:
        """Let the tasks started after acks finish (jobs and their messages are awaited through Slack)."""
        await self.services.tasks.join()


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, *, progress_interval: float = FAST_PROGRESS) -> AsyncIterator[Bot]:
    app = create_app(settings)
    app.state.runtime.services.connections.connector_options["rate_limit"] = None  # emulators answer at once
    app.state.runtime.slack_services.progress_interval = progress_interval
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot", timeout=30) as client:
                bot = Bot(client, app)
                yield bot
        assert not bot.violations, bot.violations
    finally:
        from core.connectors.http import close_shared_client

        await close_shared_client()  # the connectors' pooled connections belong to this test's event loop


@pytest.fixture
async def bot(slack: FakeSlack, mail: MailWorld, tmp_path) -> AsyncIterator[Bot]:
    async with running_bot(bot_settings(slack, mail, tmp_path)) as running:
        yield running


@contextlib.contextmanager
def platform(slug: str, *, members: int = 0) -> Iterator[tuple[Emulator, LiveServer]]:
    """A platform's emulator (tests/emulators/<slug>.py) served on loopback."""
    emulator: Emulator = importlib.import_module(f"tests.emulators.{slug}").build(members=members)
    server = LiveServer(emulator.app).start()
    try:
        yield emulator, server
    finally:
        server.stop()


async def eventually(check, *, timeout: float = 15.0, every: float = 0.02):
    """Poll `check()` until it returns something truthy (work continues after acks and in jobs)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)
