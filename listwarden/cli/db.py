"""`listwarden db`: apply migrations, show which are pending, re-seal stored secrets with the newest key."""

from __future__ import annotations

import asyncio

import click

from core.settings import get_settings


@click.group()
def db() -> None:
    """The database (DATABASE_URL): migrations and sealed secrets."""


@db.command()
def migrate() -> None:
    """Apply pending migrations (tortoise's built-in migrations in core/storage/migrations)."""
    from core.storage.database import database

    async def run() -> tuple[str, list[str]]:
        async with database(get_settings().database_url) as opened:
            return opened.safe_url, await opened.migrate()

    where, applied = asyncio.run(run())
    click.echo(f"{where}: applied {', '.join(applied)}." if applied else f"{where}: up to date.")


@db.command()
def status() -> None:
    """List the migrations not applied yet (exit status 1 if there are any)."""
    from core.storage.database import database

    async def run() -> list[str]:
        async with database(get_settings().database_url) as opened:
            return await opened.pending_migrations()

    pending = asyncio.run(run())
    click.echo("pending: " + ", ".join(pending) if pending else "up to date")
    if pending:
        raise SystemExit(1)


@db.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-seal every stored credential with the first key of LISTWARDEN_SECRET_KEY (keep the old keys after it until this ran)."""
    from core.services import Services
    from core.storage.database import database

    settings = get_settings()

    async def run() -> int:
        async with database(settings.database_url):
            return await Services.build(settings).connections.reseal_all()

    click.echo(f"re-sealed the secrets of {asyncio.run(run())} connections with the newest key")
