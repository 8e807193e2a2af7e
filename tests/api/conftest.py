"""The REST API on the real core: a migrated SQLite database per test, the app's lifespan entered,
requests over httpx's ASGI transport; platforms are their emulators on loopback ports and
verification goes to loopback mail servers (tests/mailservers).

The app is the one `listwarden.app` builds, with only the storage and API components (the bot
and the webhook processor have suites of their own); `test_mount.py` checks the full app.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from core.runtime import Runtime
from core.services import Services
from core.settings import Settings
from core.storage.database import database
from listwarden.app import healthz
from tests.emulators.base import Emulator
from tests.emulators.server import LiveServer
from tests.mailservers import MailWorld
from tests.mailservers.smtp_server import TEXTS
from tests.storage.fixtures import TEST_KEY

NO_LIMITS = {"rate_limit": None, "endpoint_limits": None}  # emulators answer at once; the platforms' pacing only slows tests
WORKSPACE = "W1"


# --- the database: migrated once, copied per test --------------------------------------------------
@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "listwarden.sqlite3"

    async def migrate() -> None:
        async with database(f"sqlite://{path}", migrate=True):
            pass

    asyncio.run(migrate())
    return path


def fresh_database(template: Path, directory: Path) -> str:
    target = directory / "listwarden.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite://{target}"


# --- loopback mail servers -----------------------------------------------------------------------
# A server that accepts a recipient with a bare "250 OK" (as in seed 004's example), else talks like Postfix.
TEXTS.setdefault("plain", {**TEXTS["postfix"], "rcpt_ok": "250 OK"})


def build_world() -> MailWorld:
    """The seed 004 example's three situations, and a few more for credits and refunds."""
    w = MailWorld()
    example = w.smtp_host(name="mx.example.com", flavour="plain", mailboxes={"valid@example.com", "email1@example.com",
                                                            "email2@example.com", "test@example.com",
                                                            "member0@example.com", "member1@example.com",
                                                            *(f"user{i}@example.com" for i in range(200))})
    w.domain("example.com", mx=[example])
    # company.com: a server that does not let mailboxes be checked (it refuses verifiers by policy)
    w.domain("company.com", mx=[w.smtp_host(name="mx.company.com", policy_block=True)])
    w.domain("acme.example", mx=[w.smtp_host(name="mx.acme.example", mailboxes={"ann@acme.example", "bob@acme.example"})])
    w.zone.add("fake-domain.xyz", "TXT", '"no mail here"')  # the domain exists but has no mail route
    return w


@contextlib.contextmanager
def running_world() -> Iterator[MailWorld]:
    """build_world() started; a port taken by someone else between choosing and binding it means try again
    (the DNS server binds TCP on the port its UDP socket got, and other suites run beside us)."""
    for attempt in range(5):
        w = build_world()
        try:
            w.start()
        except OSError:
            if attempt == 4:
                raise
            continue
        try:
            yield w
        finally:
            w.stop()
        return


@pytest.fixture(scope="session")
def world() -> Iterator[MailWorld]:
    with running_world() as w:
        yield w


# --- platforms -------------------------------------------------------------------------------------
@dataclass
class Platform:
    slug: str
    emulator: Emulator
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url

    def form(self, which: str = "good") -> dict[str, str]:
        """Credentials as a user types them into the connect call (the emulator's values)."""
        make = {"good": self.emulator.credentials, "bad": self.emulator.bad_credentials,
                "read_only": self.emulator.read_only_credentials}[which]
        assert make is not None
        return {k: v for k, v in make(self.url).items() if k != "base_url"}


@contextlib.contextmanager
def served(slug: str, **build: Any) -> Iterator[Platform]:
    module = importlib.import_module(f"tests.emulators.{slug}")
    emulator = module.build(**(build or {"members": 3}))
    server = LiveServer(emulator.app).start()
    try:
        yield Platform(slug, emulator, server)
    finally:
        server.stop()


# --- the app -----------------------------------------------------------------------------------------
@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    services: Services
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.keys["main"]

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def new_key(self, name: str, *, workspace: str = WORKSPACE, roles: tuple[str, ...] = ()) -> str:
        plain, _ = await self.services.api_keys.create(workspace, name=name, roles=roles)
        self.keys[name] = plain
        return plain

    async def get(self, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers={**self.auth(key), **kw.pop("headers", {})}, **kw)

    async def post(self, path: str, body: Any = None, key: str | None = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        return await self.client.post(path, headers={**self.auth(key), **kw.pop("headers", {})}, **kw)

    async def patch(self, path: str, body: Any, key: str | None = None) -> httpx.Response:
        return await self.client.patch(path, json=body, headers=self.auth(key))

    async def delete(self, path: str, key: str | None = None) -> httpx.Response:
        return await self.client.delete(path, headers=self.auth(key))

    async def balance(self, workspace: str = WORKSPACE) -> int:
        return await self.services.credits.balance(workspace)

    async def connect(self, platform: Platform, **body: Any) -> dict[str, Any]:
        response = await self.post(f"/v1/integrations/{platform.slug}/connections",
                                   {"credentials": platform.form(), **body})
        assert response.status_code == 201, response.text
        return response.json()


def api_settings(db_url: str, *, world: MailWorld | None = None, platforms: tuple[Platform, ...] = (),
                 **overrides: Any) -> Settings:
    values: dict[str, Any] = {"DATABASE_URL": db_url, "LISTWARDEN_SECRET_KEY": TEST_KEY,
                              "LISTWARDEN_API_RATE_PER_MINUTE": 100_000,
                              "LISTWARDEN_PUBLIC_URL": "https://lw.example.test"}
    if world is not None:
        values.update(world.env(LISTWARDEN_GREYLIST_MAX_WAIT="1"))
    if platforms:
        values["LISTWARDEN_PLATFORM_BASE_URLS"] = ",".join(f"{p.slug}={p.url}" for p in platforms)
    values.update(overrides)
    return Settings(**values)


def build_app(settings: Settings, *, connector_options: dict[str, Any] | None = None) -> Starlette:
    """listwarden.app.create_app with the storage and API components only, and the core's test seam for
    connectors (`connector_options`: lifted rate limits, an OAuth token URL)."""
    from api.asgi import install as install_api
    from core.storage.component import install as install_storage

    runtime = Runtime(settings=settings)
    services = Services.build(settings, connector_options={**NO_LIMITS, **(connector_options or {})})
    routes = [Route("/healthz", healthz, methods=["GET"]), *install_storage(runtime, services), *install_api(runtime)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


@contextlib.asynccontextmanager
async def running_api(settings: Settings, *, credits: int = 1000, connector_options: dict[str, Any] | None = None,
                      ) -> AsyncIterator[Api]:
    from core.connectors.http import close_shared_client

    app = build_app(settings, connector_options=connector_options)
    runtime: Runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            api = Api(client, runtime, runtime.services, settings)  # type: ignore[attr-defined]
            if credits:
                await api.services.credits.grant(WORKSPACE, credits, actor="test")
            await api.new_key("main")
            try:
                yield api
            finally:
                await api.services.job_system.runner.join()  # jobs started by the test finish on its loop
    await close_shared_client()  # its pooled connections belong to this test's event loop


@pytest.fixture
def make_api(template_db, tmp_path):
    """`async with make_api(world=..., platforms=(...), **settings) as api:` a fresh app and database."""

    def make(*, credits: int = 1000, connector_options: dict[str, Any] | None = None, world: MailWorld | None = None,
             platforms: tuple[Platform, ...] = (), **overrides: Any):
        directory = tmp_path / f"app{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        settings = api_settings(fresh_database(template_db, directory), world=world, platforms=platforms, **overrides)
        return running_api(settings, credits=credits, connector_options=connector_options)

    return make


@pytest.fixture
async def api(make_api, world) -> AsyncIterator[Api]:
    async with make_api(world=world) as api:
        yield api
