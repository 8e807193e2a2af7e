"""tortoise's database clients, with transactions that can be cancelled while they begin.

tortoise (1.1.x) enters a transaction by taking its lock (SQLite) or a pooled connection
(PostgreSQL), then awaiting BEGIN; a task cancelled during that await never reaches `__aexit__`.
On SQLite the lock then stays held and every later query of the process waits forever (seen as a
hang when a running job is cancelled at shutdown); on PostgreSQL a pooled connection is lost.
These clients finish what the cancelled enter took: roll back, release, re-raise.
`core.storage.config` names `core.storage.backends.sqlite` or `.asyncpg` as each connection's
engine (tortoise's migrations pick their schema editor by the client's module name, hence the names).
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.backends.base.client import TransactionContext, TransactionalDBClient


class CancelSafeTransaction(TransactionContext):
    def __init__(self, inner: TransactionContext) -> None:
        self.inner = inner

    async def __aenter__(self) -> TransactionalDBClient:
        try:
            return await self.inner.__aenter__()
        except BaseException as err:
            # tortoise sets the context's token once it holds the lock or connection, just before BEGIN
            if getattr(self.inner, "token", None) is not None:
                with contextlib.suppress(Exception):
                    await self.inner.__aexit__(type(err), err, err.__traceback__)
            raise

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.inner.__aexit__(exc_type, exc_val, exc_tb)


class CancelSafeTransactions:
    """Mixed into a tortoise client class: its transactions enter through `CancelSafeTransaction`."""

    def _in_transaction(self) -> TransactionContext:
        return CancelSafeTransaction(super()._in_transaction())  # type: ignore[misc]


ENGINES = {"tortoise.backends.sqlite": "core.storage.backends.sqlite",  # tortoise's engine: the one standing in
           "tortoise.backends.asyncpg": "core.storage.backends.asyncpg"}
