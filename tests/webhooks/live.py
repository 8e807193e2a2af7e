"""The real Listwarden app on a loopback port, inside the test's own event loop.

uvicorn runs as a task of the loop the test runs on, with the lifespan on (the database opens,
verify-first's loops start), so a test talks to it over real HTTP and reads the same database
through `runtime.services`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from core.settings import Settings
from listwarden.app import create_app


class LiveApp:
    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        port = sock.getsockname()[1]
        self.sock = sock
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.app = create_app(settings)
        self.runtime = self.app.state.runtime
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="on"))
        self.task: asyncio.Task | None = None

    @property
    def services(self):
        return self.runtime.services

    @property
    def verify_first(self):
        return self.runtime.verify_first

    async def start(self) -> LiveApp:
        # _serve: uvicorn's serve() without taking over the test process's signal handlers
        self.task = asyncio.get_running_loop().create_task(self.server._serve(sockets=[self.sock]))
        for _ in range(1000):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("the app did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 10)


@contextlib.asynccontextmanager
async def live_app(settings_for) -> AsyncIterator[LiveApp]:
    """`settings_for(public_url)` gives the settings; the app serves at that URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel's free port, held from now on: no race with other suites
    app = LiveApp(settings_for(f"http://127.0.0.1:{sock.getsockname()[1]}"), sock)
    await app.start()
    app.services.connections.connector_options["rate_limit"] = None  # emulators answer at once
    try:
        yield app
    finally:
        await app.stop()


class ThreadedApp:
    """The same app in a thread with its own event loop, for sync callers (hypothesis drives sync tests).

    `run(coroutine)` runs a coroutine on the app's loop (where its database lives) and returns its result.
    """

    def __init__(self, settings_for) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.settings_for = settings_for
        self.loop = asyncio.new_event_loop()
        self.live: LiveApp | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="listwarden-app")

    def start(self) -> ThreadedApp:
        self.thread.start()

        async def boot() -> LiveApp:
            live = LiveApp(self.settings_for(f"http://127.0.0.1:{self.sock.getsockname()[1]}"), self.sock)
            await live.start()
            live.services.connections.connector_options["rate_limit"] = None
            return live

        self.live = self.run(boot())
        return self

    def run(self, coroutine, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.live is not None:
            self.run(self.live.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
