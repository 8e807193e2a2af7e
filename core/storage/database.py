"""Opening the database for this process, and applying the built-in tortoise migrations.

Tortoise 1.x keeps its state in a TortoiseContext. We open one per process with the global
fallback on, because the ASGI lifespan, request handlers and job tasks run in different asyncio
tasks (tortoise#2244). Only one database is open per process at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor

from core.storage.config import APP, dialect_of, normalize_url, postgres_schema, tortoise_config, without_schema

log = logging.getLogger(__name__)


@dataclass
class Database:
    url: str  # as configured (may hold a password: never log it; see `safe_url`)
    context: TortoiseContext

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgres": the few raw statements that differ read this."""
        return dialect_of(self.url)

    @property
    def connection(self) -> BaseDBAsyncClient:
        return self.context.db("default")

    @property
    def safe_url(self) -> str:
        scheme, _, rest = self.url.partition("://")
        if "@" in rest:
            rest = "***@" + rest.rsplit("@", 1)[1]
        return f"{scheme}://{rest.split('?', 1)[0]}"

    def _executor(self) -> MigrationExecutor:
        return MigrationExecutor(self.connection, {APP: tortoise_config(self.url)["apps"][APP]})

    async def pending_migrations(self) -> list[str]:
        plan = await self._executor().plan()
        return [step.migration.name for step in plan if not step.backward]

    async def migrate(self) -> list[str]:
        """Apply every pending migration; returns their names (empty when up to date)."""
        executor = self._executor()
        pending = [step.migration.name for step in await executor.plan() if not step.backward]
        if pending:
            await executor.migrate()
            log.info("applied database migrations: %s", ", ".join(pending))
        return pending

    async def close(self) -> None:
        await self.context.close_connections()


async def open_database(url: str, *, migrate: bool = False) -> Database:
    """Connect (lazily; the first query opens the connection) and optionally migrate."""
    url = normalize_url(url)
    schema = postgres_schema(url)
    if schema is not None:
        await _create_schema(url, schema)
    EXECUTOR_CACHE.clear()  # tortoise caches INSERT text per connection *name*: stale if the last database was another dialect
    context = TortoiseContext()
    with context:  # current only while the models are bound; afterwards every task finds it as the global fallback
        await context.init(config=tortoise_config(url), _enable_global_fallback=True)
    db = Database(url=url, context=context)
    log.info("database: %s", db.safe_url)
    if migrate:
        await db.migrate()
    return db


async def _create_schema(url: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(without_schema(url).replace("postgres://", "postgresql://", 1))
    try:
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def database(url: str, *, migrate: bool = False) -> AsyncIterator[Database]:
    """For commands and tests: the database open for the block, closed after."""
    db = await open_database(url, migrate=migrate)
    try:
        yield db
    finally:
        await db.close()
