"""tortoise's SQLite client, with cancel-safe transactions (see core/storage/backends)."""

from __future__ import annotations

from tortoise.backends.sqlite.client import SqliteClient

from core.storage.backends import CancelSafeTransactions


class CancelSafeSqliteClient(CancelSafeTransactions, SqliteClient):
    pass


client_class = CancelSafeSqliteClient
