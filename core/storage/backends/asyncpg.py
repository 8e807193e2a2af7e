"""tortoise's asyncpg client, with cancel-safe transactions (see core/storage/backends)."""

from __future__ import annotations

from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import TransactionContext

from core.storage.backends import CancelSafeTransaction


class CancelSafeAsyncpgClient(AsyncpgDBClient):
    def _in_transaction(self) -> TransactionContext:
        return CancelSafeTransaction(super()._in_transaction())


client_class = CancelSafeAsyncpgClient
