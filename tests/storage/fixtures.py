"""A migrated database per test module, on SQLite and on PostgreSQL, emptied before each test.

Import these fixtures into a conftest (`from tests.storage.fixtures import *`). Migrating takes
most of a second, so it happens once per module and backend; each test then starts from empty
tables. PostgreSQL gets a schema of its own per module (dropped after), so suites running at
the same time on the shared `test` database never see each other's rows. Tests in these
modules run on the module's event loop, where the database connections live.
"""

from __future__ import annotations

import os
from pathlib import Path
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from core.services import Services
from core.settings import Settings
from core.storage.database import Database, open_database

PG_BASE = os.environ.get("LISTWARDEN_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
TEST_KEY = "YTIyYTRkOGUxYWI2MThhMmRiMmM1YWNlMzE2ZjE4ZDA="  # a fixed Fernet key for tests

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_url(schema: str) -> str:
    return f"{PG_BASE}?schema={schema}"


async def drop_pg_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_BASE.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def database_url_for(backend: str, tmp_dir: str, name: str) -> tuple[str, str | None]:
    """(URL, PostgreSQL schema or None) for a fresh database."""
    if backend == "sqlite":
        return f"sqlite://{tmp_dir}/{name}.sqlite3", None
    schema = f"lw_{name}_{uuid.uuid4().hex[:8]}".lower()
    return pg_url(schema), schema


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def database(request, tmp_path_factory) -> AsyncIterator[Database]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    url, schema = database_url_for(request.param, str(tmp_path_factory.mktemp("db")), name)
    db = await open_database(url, migrate=True)
    try:
        yield db
    finally:
        from core.connectors.http import close_shared_client

        await close_shared_client()  # its connections belong to this module's event loop
        await db.close()
        if schema is not None:
            await drop_pg_schema(schema)


async def empty_all_tables(db: Database) -> None:
    from core.storage.models import __all__ as model_names
    import core.storage.models as models

    tables = [getattr(models, name)._meta.db_table for name in model_names]
    conn = db.connection
    if db.dialect == "postgres":
        await conn.execute_script(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        await conn.execute_script("PRAGMA foreign_keys=OFF;" + "".join(f"DELETE FROM {t};" for t in tables)
                                  + "PRAGMA foreign_keys=ON;")


def test_settings(db: Database, **overrides: object) -> Settings:
    values: dict[str, object] = {"DATABASE_URL": db.url, "LISTWARDEN_SECRET_KEY": TEST_KEY}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="module")
async def services(database: Database) -> AsyncIterator[Services]:
    """Fresh services over empty tables."""
    await empty_all_tables(database)
    yield Services.build(test_settings(database))


test_settings.__test__ = False  # not a test, despite the name


def on_module_loop(items, directory) -> None:
    """Run this directory's async tests on the module's event loop, where `database` lives."""
    import inspect

    for item in items:
        if Path(str(item.fspath)).is_relative_to(directory) and inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.asyncio(loop_scope="module"), append=False)
