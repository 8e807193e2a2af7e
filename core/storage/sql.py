"""The few hand-written statements: compare-and-set transitions, bulk item writes, the ledger check.

They are written once with `?` placeholders; `prepare` turns them into `$1, $2...` for asyncpg.
Everything else goes through the ORM.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

_PLACEHOLDER = re.compile(r"\?")


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"


def prepare(conn: BaseDBAsyncClient, statement: str) -> str:
    if not is_postgres(conn):
        return statement
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", statement)


async def execute(conn: BaseDBAsyncClient, statement: str, values: Sequence[Any] = ()) -> tuple[int, list[dict]]:
    """Run one statement: (rows affected or returned, rows as dicts)."""
    if " RETURNING " in statement:  # tortoise's asyncpg client drops the rows of an INSERT/UPDATE it only executes
        rows = await conn.execute_query_dict(prepare(conn, statement), list(values))
        return len(rows), rows
    count, result = await conn.execute_query(prepare(conn, statement), list(values))
    return count, [dict(row) for row in result]


async def execute_many(conn: BaseDBAsyncClient, statement: str, values: Sequence[Sequence[Any]]) -> None:
    if values:
        await conn.execute_many(prepare(conn, statement), [list(v) for v in values])


def transaction():
    """A transaction on the default connection (tortoise's `in_transaction`)."""
    return in_transaction("default")


def default_connection() -> BaseDBAsyncClient:
    from tortoise import connections

    return connections.get("default")


def parse_time(value: Any) -> datetime | None:
    """A timestamp read by raw SQL: asyncpg gives datetimes, SQLite the text tortoise wrote."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """The API's timestamp format: UTC, seconds, a Z."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
