"""A worker process: the database, the services and the job runner fed from Redis, until a signal.

`listwarden worker` runs this. Tortoise is initialised here (every worker process has its own),
migrations must already be applied (`listwarden db migrate`), and SIGTERM/SIGINT stop it
gracefully: it takes no new job, and the jobs it was running keep their state, with the lease
released, for another worker to resume at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from core.services import Services
from core.settings import Settings
from core.storage.component import open_for

log = logging.getLogger(__name__)


class WorkerConfigurationError(RuntimeError):
    pass


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None, ready=None) -> None:
    if not settings.redis_url:
        raise WorkerConfigurationError("`listwarden worker` takes jobs from Redis: set REDIS_URL (and DATABASE_URL to "
                                       "the PostgreSQL database `listwarden serve` uses).")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = await open_for(settings, embedded=False)
    services = Services.build(settings, role="worker")
    try:
        await services.job_system.start()
        log.info("worker started (%s, %d jobs at a time)", db.safe_url, settings.job_concurrency)
        if ready is not None:
            ready()
        await stop.wait()
        log.info("worker stopping")
    finally:
        await services.job_system.stop()
        from core.connectors.http import close_shared_client

        await close_shared_client()
        await db.close()
