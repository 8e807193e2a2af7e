"""The long-lived things one process shares: settings, storage, the job runner, HTTP clients.

Transports receive a `Runtime` and call the core through it; the core never imports a
transport. `start()` runs in the ASGI lifespan (and in each worker process), `stop()` at exit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.settings import Settings

log = logging.getLogger(__name__)

Hook = Callable[["Runtime"], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    _on_start: list[Hook] = field(default_factory=list)
    _on_stop: list[Hook] = field(default_factory=list)
    started: bool = False

    def on_start(self, hook: Hook) -> None:
        """Register a start-up step (storage, jobs, clients); steps run in registration order."""
        self._on_start.append(hook)

    def on_stop(self, hook: Hook) -> None:
        """Register a shutdown step; steps run in reverse registration order."""
        self._on_stop.append(hook)

    async def start(self) -> None:
        for hook in self._on_start:
            await hook(self)
        self.started = True

    async def stop(self) -> None:
        for hook in reversed(self._on_stop):
            try:
                await hook(self)
            except Exception:  # shutdown must finish even if one part fails
                log.exception("shutdown step failed")
        self.started = False
