"""tortoise's asyncpg client, with cancel-safe transactions (see core/storage/backends)."""

from __future__ import annotations

from tortoise.backends.asyncpg.client import AsyncpgDBClient

from core.storage.backends import CancelSafeTransactions


class CancelSafeAsyncpgClient(CancelSafeTransactions, AsyncpgDBClient):
    pass


client_class = CancelSafeAsyncpgClient
