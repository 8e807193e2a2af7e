"""A serving process for the crash test: exactly what `listwarden serve` starts for jobs (the
storage component's database opening and the embedded runner), without the HTTP side. It only
differs in lifting the emulator's client-side rate limit. Killed with -9 by the test; never exits."""

from __future__ import annotations

import asyncio
import logging

from core.services import Services
from core.settings import Settings
from core.storage.component import open_for
from tests.services.emulated import NO_RATE_LIMIT


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = Settings()
    await open_for(settings, embedded=True)
    services = Services.build(settings, connector_options=NO_RATE_LIMIT)
    await services.job_system.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
