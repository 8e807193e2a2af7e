"""The registry of parts mounted into the app, in start-up order.

Each entry is "module:function"; the function takes the Runtime, may register start/stop
hooks on it, and returns its routes. Storage and jobs come first so that transports find
them started.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from starlette.routing import BaseRoute

from core.runtime import Runtime

Component = Callable[[Runtime], list[BaseRoute]]

COMPONENTS: list[str] = [
    "core.storage.component:install",  # storage, services and jobs (issue 3); first
    "api.asgi:install",  # REST API (issue 7)
    "webhooks.asgi:install",  # verify-first webhooks (issue 6)
    "bot.asgi:install",  # Slack (issue 5); keep last
]


def load() -> list[Component]:
    loaded: list[Component] = []
    for spec in COMPONENTS:
        module_name, _, attr = spec.partition(":")
        loaded.append(getattr(importlib.import_module(module_name), attr))
    return loaded
