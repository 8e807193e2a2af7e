"""The database opens on SQLite and PostgreSQL, the committed migrations build every table, and
they match the models exactly (a model change without a migration fails here)."""

from __future__ import annotations

from tortoise.migrations.autodetector import MigrationAutodetector

from core.storage.config import APP, normalize_url, tortoise_config
from core.storage.database import Database
from core.storage.models import __all__ as MODEL_NAMES


async def test_migrations_are_applied_and_none_pending(database: Database) -> None:
    assert await database.pending_migrations() == []
    assert await database.migrate() == []  # applying again is a no-op


async def test_every_model_has_its_table(database: Database) -> None:
    import core.storage.models as models

    for name in MODEL_NAMES:
        assert await getattr(models, name).all().count() >= 0


async def test_committed_migrations_match_the_models(database: Database) -> None:
    detector = MigrationAutodetector(database.context.apps, {APP: tortoise_config(database.url)["apps"][APP]})
    assert await detector.changes() == [], "models changed: run `tortoise makemigrations` (see core/storage/README.md)"


async def test_job_items_keep_their_indexes(database: Database) -> None:
    """The hot queries of a job need these; tortoise's SQLite table rebuild once lost them (0003 restores them)."""
    conn = database.connection
    if database.dialect == "sqlite":
        names = [r["name"] for r in await conn.execute_query_dict("PRAGMA index_list('job_item')")]
        found = {tuple(c["name"] for c in await conn.execute_query_dict(f"PRAGMA index_info('{n}')")) for n in names}
    else:
        rows = await conn.execute_query_dict("SELECT indexdef FROM pg_indexes WHERE tablename = 'job_item' "
                                             "AND schemaname = current_schema()")
        found = {tuple(c.strip().strip('"') for c in r["indexdef"].rsplit("(", 1)[1].rstrip(")").split(",")) for r in rows}
    assert {("job_id", "seq"), ("job_id", "address_key"), ("job_id", "planned_action", "action_state")} <= found
    assert ("job_id", "stage", "seq") not in found


async def test_sqlite_runs_in_wal_with_a_busy_timeout(database: Database) -> None:
    if database.dialect != "sqlite":
        return
    conn = database.connection
    assert (await conn.execute_query_dict("PRAGMA journal_mode"))[0]["journal_mode"] == "wal"
    assert (await conn.execute_query_dict("PRAGMA busy_timeout"))[0]["timeout"] == 10000


def test_url_normalisation() -> None:
    assert normalize_url("sqlite://data/x.sqlite3") == "sqlite://data/x.sqlite3?busy_timeout=10000&synchronous=NORMAL"
    assert normalize_url("sqlite://x.db?busy_timeout=1") == "sqlite://x.db?busy_timeout=1&synchronous=NORMAL"
    assert normalize_url("postgresql://u@h/db") == "postgres://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgres://u@h/db"


def test_safe_url_hides_the_password() -> None:
    db = Database(url="postgres://bob:hunter2@db.example/lw?schema=x", context=None)  # type: ignore[arg-type]
    assert "hunter2" not in db.safe_url and db.safe_url == "postgres://***@db.example/lw"
