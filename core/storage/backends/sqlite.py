"""tortoise's SQLite client, with cancel-safe transactions (see core/storage/backends)."""

from __future__ import annotations

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import SqliteClient

from core.storage.backends import CancelSafeTransaction


class CancelSafeSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return CancelSafeTransaction(super()._in_transaction())


client_class = CancelSafeSqliteClient
