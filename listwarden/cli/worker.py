"""`listwarden worker`: run jobs taken from Redis (REDIS_URL) against the shared database."""

from __future__ import annotations

import asyncio
import logging

import click

from core.settings import get_settings


@click.command()
@click.option("--concurrency", type=int, default=None, help="Jobs at the same time (default LISTWARDEN_JOB_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run jobs dispatched through Redis; start as many as you like, on any machine."""
    from core.jobs.worker import WorkerConfigurationError, run_worker
    from core.storage.component import PendingMigrations

    settings = get_settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": concurrency})
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def ready() -> None:
        click.echo("worker ready", err=True)

    try:
        asyncio.run(run_worker(settings, ready=ready))
    except (WorkerConfigurationError, PendingMigrations) as err:
        raise click.ClickException(str(err)) from None
