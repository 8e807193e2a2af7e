"""The storage component: the database, the core's services and the job runner, in the app's lifespan.

Installed first (listwarden/components.py) so that `runtime.services` exists when the
transports install. At start: open the database (applying pending migrations in the embedded
default; with REDIS_URL they are `listwarden db migrate`'s job and a pending one stops start-up),
then start the jobs (the embedded runner, or the dispatcher to `listwarden worker`s).
"""

from __future__ import annotations

import logging

from starlette.routing import BaseRoute

from core.runtime import Runtime
from core.services import Services
from core.storage.database import Database, open_database

log = logging.getLogger(__name__)


class PendingMigrations(RuntimeError):
    pass


async def open_for(settings, *, embedded: bool) -> Database:
    """The database for a serving process: migrated when embedded, checked otherwise."""
    db = await open_database(settings.database_url, migrate=embedded)
    if not embedded:
        pending = await db.pending_migrations()
        if pending:
            await db.close()
            raise PendingMigrations(f"The database needs migrations ({', '.join(pending)}): run `listwarden db migrate`.")
    return db


def install(runtime: Runtime, services: Services | None = None) -> list[BaseRoute]:
    settings = runtime.settings
    services = services or Services.build(settings)
    runtime.services = services  # type: ignore[attr-defined]
    state: dict[str, Database] = {}

    async def start(rt: Runtime) -> None:
        state["db"] = await open_for(settings, embedded=not settings.redis_url)
        await services.job_system.start()

    async def stop(rt: Runtime) -> None:
        from core.connectors.http import close_shared_client

        await services.job_system.stop()
        await close_shared_client()  # the platforms' pooled connections belong to this loop
        db = state.pop("db", None)
        if db is not None:
            await db.close()

    runtime.on_start(start)
    runtime.on_stop(stop)
    return []
