"""Verify-first in one process: the pipeline, the processor, registration, polling and digests.

    vf = VerifyFirst.of(runtime)      # one per process, kept on the runtime
    vf.wake()                         # a receiver stored a delivery: process it now
    await vf.start() / await vf.stop()  # the background loops (webhooks/asgi.py registers them)

The verifier is the job engine's when the jobs are installed (one per-host SMTP budget and DNS
cache for the whole process), else one of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from core.connections import ConnectionDisconnected, ConnectionNotFound
from core.connectors import get_platform
from core.services import Services, services_of
from core.settings import Settings
from core.verify_first.cache import RecentResults
from core.verify_first.digest import Digests, Notifier
from core.verify_first.pipeline import ConnectionContext, Pipeline
from core.verify_first.polling import Poller
from core.verify_first.processor import Processor
from core.verify_first.registration import Registrar
from core.verify_first.rules import VerifyFirstRules

log = logging.getLogger(__name__)
ATTRIBUTE = "verify_first"


class VerifyFirst:
    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self.cache = RecentResults(settings.verify_first_cache_seconds)
        self.pipeline = Pipeline(services, self.context, self.verifier, self.cache)
        self.processor = Processor(services, settings, self.pipeline)
        self.listeners: list[Callable[[str], None]] = []  # told when a connection's webhook set-up changed
        self.registrar = Registrar(services, settings, on_change=self.changed)
        self.poller = Poller(services, settings, self.registrar, self.wake)
        self.digests = Digests(services, settings)
        self._contexts: dict[str, tuple[float, ConnectionContext | None]] = {}
        self._own_verifier: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def of(cls, runtime) -> VerifyFirst:
        found = getattr(runtime, ATTRIBUTE, None)
        if found is None:
            found = cls(services_of(runtime), runtime.settings)
            setattr(runtime, ATTRIBUTE, found)
        return found

    def wake(self) -> None:
        self.processor.wake()

    def changed(self, connection_id: str) -> None:
        self._contexts.pop(connection_id, None)
        for listener in list(self.listeners):
            listener(connection_id)

    # --- what the pipeline needs ------------------------------------------------------------------
    async def context(self, connection_id: str) -> ConnectionContext | None:
        """The connection, its connector and its rules, reused for LISTWARDEN_WEBHOOK_CACHE_SECONDS."""
        now = time.monotonic()
        hit = self._contexts.get(connection_id)
        if hit is not None and now - hit[0] < self.settings.webhook_cache_seconds:
            return hit[1]
        services = self.services
        view = await services.connections.find(connection_id)
        ctx = None
        if view is not None and view.active:
            try:
                connector = await services.connections.connector(view.workspace_id, view.id)
            except (ConnectionNotFound, ConnectionDisconnected):
                connector = None
            if connector is not None:
                rules = VerifyFirstRules(view.settings, await services.policies.get(view.workspace_id, view.id),
                                         await services.keywords.matcher(view.id), get_platform(view.platform).capabilities)
                ctx = ConnectionContext(view, connector, rules)
        self._contexts[connection_id] = (now, ctx)
        return ctx

    async def verifier(self) -> Any:
        engine = getattr(getattr(self.services, "job_system", None), "engine", None)
        if engine is not None and hasattr(engine, "verifier"):
            return await engine.verifier()
        if self._own_verifier is None:
            from core.verify import Verifier, VerifierConfig

            self._own_verifier = Verifier(VerifierConfig.from_settings(self.settings))
        return self._own_verifier

    # --- background loops ---------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.processor.run(), name="verify-first:processor"),
            loop.create_task(self._every(self.settings.verify_first_sync_seconds, self.registrar.sync_once), name="verify-first:registration"),
            loop.create_task(self._every(self.settings.poll_seconds, self.poller.poll_once), name="verify-first:polling"),
            loop.create_task(self.digests.run_forever(), name="verify-first:digests"),
        ]

    @staticmethod
    async def _every(seconds: float, step: Callable[[], Awaitable[Any]]) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("verify-first background step failed")
            await asyncio.sleep(max(seconds, 0.05))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.processor.stop()
        if self._own_verifier is not None:
            with contextlib.suppress(Exception):
                await self._own_verifier.aclose()
            self._own_verifier = None


def set_notifier(runtime, notifier: Notifier | None) -> None:
    """The seam for the Slack side (bot/notices.py): who posts each connection's digest."""
    VerifyFirst.of(runtime).digests.notifier = notifier
