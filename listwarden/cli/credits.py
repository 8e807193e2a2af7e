"""`listwarden credits`: a self-hosted admin sets each workspace's allowance; there is no payment."""

from __future__ import annotations

import asyncio

import click

from listwarden.cli._db import opened_services


@click.group()
def credits() -> None:
    """Verification credits (1 per unique address; unknowns refunded), kept as a ledger."""


@credits.command()
@click.argument("workspace")
@click.argument("amount", type=click.IntRange(min=1))
@click.option("--reason", default="granted by an admin", show_default=True, help="Recorded with the entry.")
def grant(workspace: str, amount: int, reason: str) -> None:
    """Add AMOUNT credits to WORKSPACE (a Slack team id, or "default" for the REST API's keys)."""

    async def run() -> int:
        async with opened_services() as services:
            return await services.credits.grant(workspace, amount, actor="cli", reason=reason)

    balance = asyncio.run(run())
    click.echo(f"{workspace}: granted {amount:,}; balance {balance:,}")


@credits.command()
@click.argument("workspace", required=False)
@click.option("--history", "limit", type=int, default=10, show_default=True, help="Ledger entries to list for WORKSPACE.")
def show(workspace: str | None, limit: int) -> None:
    """Every workspace's balance, or one workspace's balance and its latest ledger entries."""

    async def run() -> None:
        async with opened_services() as services:
            if workspace is None:
                balances = await services.credits.balances()
                if not balances:
                    click.echo("no credits granted or used yet")
                for name, balance in sorted(balances.items()):
                    click.echo(f"{name}\t{balance:,}")
                return
            click.echo(f"{workspace}: balance {await services.credits.balance(workspace):,}")
            for entry in await services.credits.history(workspace, limit):
                job = f" ({entry.job_id})" if entry.job_id else ""
                click.echo(f"  {entry.created_at:%Y-%m-%d %H:%M:%S}  {entry.amount:+,}  {entry.kind}: {entry.reason}{job}")

    asyncio.run(run())
