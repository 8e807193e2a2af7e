"""The database and services for a command run beside the server (or instead of it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import click

from core.services import Services
from core.settings import get_settings
from core.storage.component import PendingMigrations, open_for


@contextlib.asynccontextmanager
async def opened_services() -> AsyncIterator[Services]:
    """Like `serve`: migrates the embedded default, and insists on `listwarden db migrate` with REDIS_URL."""
    settings = get_settings()
    try:
        db = await open_for(settings, embedded=not settings.redis_url)
    except PendingMigrations as err:
        raise click.ClickException(str(err)) from None
    try:
        yield Services.build(settings)
    finally:
        await db.close()
