"""The job machinery of one process, wired for how this instance runs.

- embedded (no REDIS_URL; `listwarden serve`): jobs run here; a new or approved job is woken
  here; the sweep resumes whatever has no live lease.
- web with REDIS_URL: jobs are dispatched through taskiq to the workers; this process only
  sweeps (approval expiry, re-dispatching abandoned jobs) and hears the workers' events.
- worker (`listwarden worker`): takes jobs from Redis, runs them with the shared per-host SMTP
  budget on Redis, and publishes their events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from core.jobs.engine import Engine, VerifierFactory
from core.jobs.events import JobEvents, RedisEventBridge
from core.jobs.runner import Runner
from core.jobs.service import Jobs
from core.settings import Settings

log = logging.getLogger(__name__)
Role = Literal["serve", "worker"]


def default_verifier_factory(settings: Settings, redis_slots: Any = None) -> VerifierFactory:
    def make() -> Any:
        from core.verify import Verifier, VerifierConfig

        return Verifier(VerifierConfig.from_settings(settings, host_slots=redis_slots))

    return make


class JobSystem:
    def __init__(self, services: Any, settings: Settings, *, role: Role = "serve",
                 verifier_factory: VerifierFactory | None = None) -> None:
        self.settings = settings
        self.role = role
        self.distributed = bool(settings.redis_url)
        self.events = JobEvents()
        self._verifier_factory = verifier_factory
        self.engine = Engine(services, settings, self.events, self._make_verifier)
        self.broker: Any = None
        self.bridge: RedisEventBridge | None = None
        self.host_slots: Any = None
        runs_here = role == "worker" or not self.distributed
        self.runner = Runner(self.engine, settings, run_jobs=runs_here,
                             dispatch=self._dispatch if self.distributed else None, expire=self._expire)
        self.jobs = Jobs(services, self.engine, self._kick)

    async def _make_verifier(self) -> Any:
        if self._verifier_factory is not None:
            made = self._verifier_factory()
            return await made if hasattr(made, "__await__") else made
        return default_verifier_factory(self.settings, self.host_slots)()

    async def _expire(self) -> list[str]:
        return await self.jobs.expire_due()

    async def _kick(self, job_id: str) -> None:
        if self.distributed:
            await self._dispatch(job_id)
        else:
            self.runner.wake(job_id)

    async def _dispatch(self, job_id: str) -> None:
        from core.jobs.broker import kick

        await kick(job_id)

    async def start(self) -> None:
        if self.distributed:
            from core.jobs.broker import start_broker
            from core.jobs.host_slots import RedisHostSlots

            # Web processes verify too (the REST API, inline /verify, verify-first): one per-host
            # budget for every process, not only for the workers.
            self.host_slots = RedisHostSlots.from_settings(self.settings)
            self.bridge = RedisEventBridge(self.events, self.settings.redis_url, self.engine.view,  # type: ignore[arg-type]
                                           channel=f"{self.settings.redis_prefix}:job-events")
            await self.bridge.start()
            self.broker = await start_broker(self.settings, runner=self.runner if self.role == "worker" else None)
        await self.runner.start()
        log.info("jobs: %s", "run here" if self.runner.run_jobs else "dispatched to workers through Redis")
        self._identity_check = asyncio.get_running_loop().create_task(self._check_identity())

    async def _check_identity(self) -> None:
        """Say at start-up, not at the first verification, when our SMTP sender cannot work."""
        from core.verify import ConfigurationError

        if "mail_from" not in self.settings.model_fields_set:
            log.warning("LISTWARDEN_MAIL_FROM is not set: mail servers will refuse probes from %s. Set it to an "
                        "address at a domain you own (and LISTWARDEN_HELO_NAME to this host's name).",
                        self.settings.mail_from)
            return
        try:
            await (await self.engine.verifier()).check_identity()
        except ConfigurationError as err:
            log.error("%s", err)
        except Exception:  # a start-up check must never stop the server
            log.exception("checking LISTWARDEN_MAIL_FROM failed")

    async def stop(self) -> None:
        check = getattr(self, "_identity_check", None)
        if check is not None and not check.done():
            check.cancel()
        if self.broker is not None:  # stop taking messages first
            from core.jobs.broker import stop_broker

            await stop_broker(self.broker)
            self.broker = None
        await self.runner.stop()
        if self.bridge is not None:
            await self.bridge.stop()
        if self.host_slots is not None:
            await self.host_slots.aclose()
