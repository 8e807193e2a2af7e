"""Email platform connectors: one module per platform, found through a registry keyed by slug.

A platform module subclasses `Connector` and decorates it with `@register`; adding a platform
means adding one module here and nothing else: the registry discovers it.
"""

from __future__ import annotations

import importlib
import pkgutil

from core.connectors.base import (
    AccountInfo,
    ActionOutcome,
    Capabilities,
    Connector,
    Contact,
    CredentialField,
    ListKind,
    PlatformList,
    WebhookEvent,
    WebhookRegistration,
    WebhookRequest,
    WebhookSecrets,
)
from core.connectors.errors import ConnectorError

# Modules of this package that are infrastructure, not platforms.
_INFRASTRUCTURE = frozenset({"base", "errors", "http", "oauth", "polling", "webhook_auth"})

ALIASES: dict[str, str] = {"sendinblue": "brevo", "kit": "convertkit"}

_registry: dict[str, type[Connector]] = {}
_loaded = False


def register(cls: type[Connector]) -> type[Connector]:
    _registry[cls.slug] = cls
    return cls


def _load() -> None:
    """Import every platform module of this package; each registers itself with @register."""
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_") and module.name not in _INFRASTRUCTURE:
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def platforms() -> dict[str, type[Connector]]:
    """Every registered platform by slug, in display order."""
    _load()
    return dict(sorted(_registry.items(), key=lambda kv: kv[1].display_name.lower()))


def get_platform(slug: str) -> type[Connector]:
    """The connector class for a slug; KeyError for an unknown one (aliases resolve)."""
    _load()
    return _registry[ALIASES.get(slug, slug)]


__all__ = [
    "ALIASES",
    "AccountInfo",
    "ActionOutcome",
    "Capabilities",
    "Connector",
    "ConnectorError",
    "Contact",
    "CredentialField",
    "ListKind",
    "PlatformList",
    "WebhookEvent",
    "WebhookRegistration",
    "WebhookRequest",
    "WebhookSecrets",
    "get_platform",
    "platforms",
    "register",
]
