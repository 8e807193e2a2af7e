"""A transaction cancelled at any instant, even while it begins, leaves the database usable and
writes nothing: the lock (SQLite) or pooled connection (PostgreSQL) it took is given back.

Jobs are cancelled mid-transaction whenever the process stops or a lease is lost; with tortoise's
own clients a cancellation during BEGIN left SQLite's lock held, and every later query waited forever.
"""

from __future__ import annotations

import asyncio

import pytest

from core.storage.database import Database
from core.storage.models import Workspace
from core.storage.sql import transaction
from tests.storage.fixtures import empty_all_tables

STEPS = 40  # loop turns to let a transaction run before cancelling it: 0..STEPS covers its lock, BEGIN, body and COMMIT
ANSWER_WITHIN = 10.0  # a query of a healthy database answers at once; waiting this long means it is stuck


async def write_in_a_transaction(team: str) -> None:
    async with transaction() as conn:
        await Workspace.create(id=team, name=team, using_db=conn)
        await Workspace.filter(id=team).using_db(conn).update(name=team + "!")


async def test_cancelling_a_transaction_at_any_instant_leaves_the_database_usable(database: Database) -> None:
    await empty_all_tables(database)
    for steps in range(STEPS):
        task = asyncio.create_task(write_in_a_transaction(f"T{steps}"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # must hold: the next transaction and a plain query both get through
        await asyncio.wait_for(write_in_a_transaction(f"after{steps}"), ANSWER_WITHIN)
        rows = await asyncio.wait_for(Workspace.filter(id=f"T{steps}").values_list("name", flat=True), ANSWER_WITHIN)
        assert rows in ([], [f"T{steps}!"]), f"a cancelled transaction left part of its work: {rows}"
    assert await Workspace.filter(id__startswith="after").count() == STEPS


async def test_a_failed_begin_gives_the_connection_back(database: Database) -> None:
    """Whatever ends an enter (here an error raised by BEGIN itself), the next transaction still starts."""
    await empty_all_tables(database)
    conn = database.connection
    ctx = conn._in_transaction()
    inner = ctx.inner
    client = inner.connection if hasattr(inner, "connection") else inner.client
    original_begin = client.begin

    async def failing_begin() -> None:
        await original_begin()
        raise RuntimeError("BEGIN failed")

    client.begin = failing_begin
    with pytest.raises(RuntimeError, match="BEGIN failed"):
        async with ctx:
            raise AssertionError("the block must not run when BEGIN failed")
    await asyncio.wait_for(write_in_a_transaction("after-failure"), ANSWER_WITHIN)
    assert await Workspace.filter(id="after-failure").exists()
