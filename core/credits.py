"""Credits as the seeds define them: 1 per unique address, unknowns refunded, kept as a ledger.

There is no balance column: a balance is the sum of a workspace's entries, so every change has
its history. A charge checks the balance in the same statement that writes it (and on
PostgreSQL under a row lock on the workspace), so two requests cannot both spend the last
credit. Every entry may carry an idempotency `key`: writing the same key twice writes once, so a
retried charge (a job resumed after a crash, a replayed request) cannot charge twice.

    credits = services.credits
    await credits.require("T123", 500)            # up front: raises InsufficientCredits(shortfall=...)
    await credits.charge("T123", 3, reason="api validate", key=f"api:{request_id}")
    await credits.refund("T123", 1, reason="unknown result", key=f"api:{request_id}:refund")
    await credits.grant("T123", 10_000, actor="U1")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum

from core.settings import Settings
from core.storage.models import CreditEntry
from core.storage.sql import default_connection, execute, is_postgres, transaction, utcnow

if TYPE_CHECKING:
    from core.workspaces import Workspaces


class InsufficientCredits(Exception):
    """Not enough credits for the work asked; the REST API answers 402 with these numbers."""

    def __init__(self, needed: int, balance: int) -> None:
        self.needed = needed
        self.balance = max(balance, 0)
        self.shortfall = needed - self.balance
        super().__init__(
            f"Not enough verification credits: this needs {needed:,} and {self.balance:,} remain "
            f"({self.shortfall:,} short). An admin can add more with `listwarden credits grant`."
        )


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    workspace_id: str
    amount: int
    kind: str  # grant | charge | refund
    reason: str
    job_id: str | None
    actor: str | None
    created_at: datetime


def _insert_select(conn: BaseDBAsyncClient) -> str:
    """INSERT ... SELECT with typed parameters (PostgreSQL does not infer them from the target columns)."""
    ts = "CAST(? AS TIMESTAMPTZ)" if is_postgres(conn) else "?"
    return ("INSERT INTO credit_entry (workspace_id, amount, kind, reason, key, job_id, actor, created_at) "
            "SELECT CAST(? AS VARCHAR(64)), {amount}, CAST(? AS VARCHAR(16)), CAST(? AS VARCHAR(255)), "
            f"CAST(? AS VARCHAR(160)), CAST(? AS VARCHAR(32)), CAST(? AS VARCHAR(64)), {ts} ")


_BALANCE = "(SELECT COALESCE(SUM(amount), 0) FROM credit_entry WHERE workspace_id = ?)"


class Credits:
    def __init__(self, settings: Settings, workspaces: Workspaces) -> None:
        self.metered = settings.credits_metered
        self.workspaces = workspaces

    async def balance(self, workspace_id: str) -> int:
        row = await CreditEntry.filter(workspace_id=workspace_id).annotate(total=Sum("amount")).first().values("total")
        return int((row or {}).get("total") or 0)

    async def require(self, workspace_id: str, amount: int) -> None:
        """Refuse up front: raise InsufficientCredits unless `amount` credits are there."""
        if not self.metered or amount <= 0:
            return
        balance = await self.balance(workspace_id)
        if balance < amount:
            raise InsufficientCredits(amount, balance)

    async def grant(self, workspace_id: str, amount: int, *, actor: str | None = None, reason: str = "grant",
                    key: str | None = None) -> int:
        """Add credits (a self-hosted admin sets the allowance; there is no payment). Returns the new balance."""
        if amount <= 0:
            raise ValueError("A grant adds at least one credit.")
        await self._insert(workspace_id, amount, "grant", reason, key, None, actor)
        return await self.balance(workspace_id)

    async def refund(self, workspace_id: str, amount: int, *, reason: str, key: str | None = None,
                     job_id: str | None = None) -> None:
        if amount > 0:
            await self._insert(workspace_id, amount, "refund", reason, key, job_id, None)

    async def charge(self, workspace_id: str, amount: int, *, reason: str, key: str | None = None,
                     job_id: str | None = None, partial: bool = False) -> int:
        """Take `amount` credits, or raise InsufficientCredits. With `partial`, take what there is instead
        (a job running out midway). Returns the credits taken; a repeated `key` returns the first charge."""
        if amount <= 0:
            return 0
        if key is not None:
            done = await CreditEntry.filter(key=key).first()
            if done is not None:
                return -done.amount
        if not self.metered:
            await self._insert(workspace_id, -amount, "charge", reason, key, job_id, None)
            return amount
        await self.workspaces.ensure(workspace_id)
        now = utcnow()
        async with transaction() as conn:
            if is_postgres(conn):  # serialise charges of one workspace; SQLite has a single writer already
                await execute(conn, "SELECT id FROM workspace WHERE id = ? FOR UPDATE", [workspace_id])
            least = "LEAST" if is_postgres(conn) else "MIN"
            amount_sql = f"-{least}(CAST(? AS INTEGER), {_BALANCE})" if partial else "-CAST(? AS INTEGER)"
            count, rows = await execute(
                conn,
                _insert_select(conn).format(amount=amount_sql)
                + f"WHERE {_BALANCE} >= CAST(? AS INTEGER) ON CONFLICT (key) DO NOTHING RETURNING amount",
                [workspace_id, amount, *([workspace_id] if partial else []), "charge", reason, key, job_id, None, now,
                 workspace_id, 1 if partial else amount],
            )
        if rows:
            return -int(rows[0]["amount"])
        if key is not None and (done := await CreditEntry.filter(key=key).first()) is not None:
            return -done.amount  # a concurrent retry with the same key won
        if partial:
            return 0
        raise InsufficientCredits(amount, await self.balance(workspace_id))

    async def _insert(self, workspace_id: str, amount: int, kind: str, reason: str, key: str | None,
                      job_id: str | None, actor: str | None) -> None:
        await self.workspaces.ensure(workspace_id)
        conn = default_connection()
        # (the WHERE keeps SQLite's parse of INSERT ... SELECT ... ON CONFLICT unambiguous)
        await execute(conn, _insert_select(conn).format(amount="CAST(? AS INTEGER)") + "WHERE 1 = 1 ON CONFLICT (key) DO NOTHING",
                      [workspace_id, amount, kind, reason, key, job_id, actor, utcnow()])

    async def history(self, workspace_id: str, limit: int = 50) -> list[LedgerEntry]:
        rows = await CreditEntry.filter(workspace_id=workspace_id).order_by("-id").limit(limit)
        return [LedgerEntry(r.id, workspace_id, r.amount, r.kind, r.reason, r.job_id, r.actor, r.created_at) for r in rows]

    async def balances(self) -> dict[str, int]:
        """Every workspace's balance, for `listwarden credits show`."""
        rows = await CreditEntry.all().group_by("workspace_id").annotate(total=Sum("amount")).values("workspace_id", "total")
        return {r["workspace_id"]: int(r["total"] or 0) for r in rows}
