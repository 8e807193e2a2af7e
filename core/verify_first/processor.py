"""The background half of the inbox: claim stored deliveries, process each, record the outcome.

Crash-safety is the inbox's lease (core/deliveries.py): a claimed delivery is leased for
LISTWARDEN_WEBHOOK_LEASE_SECONDS and the lease is renewed every third of that while it is worked
on. A process that dies (kill -9) stops renewing, so its deliveries are claimed again once the
lease lapses, by this process after a restart or by any other; the pipeline's work is idempotent
(pipeline.py), so a delivery taken up twice ends as if processed once.

Up to LISTWARDEN_WEBHOOK_CONCURRENCY deliveries are worked on at once, each in its own task: a
slow one (greylisting, a thousand subscribers, a platform outage) never holds up the rest, and
an error in one is recorded on it and never stops the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from core.connectors.errors import ConnectorError
from core.deliveries import MAX_ATTEMPTS, Delivery
from core.settings import Settings
from core.verify_first.pipeline import Pipeline, TryLater

log = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 0.5  # how often an idle processor looks for deliveries other processes accepted
CLAIM_SPACING = 0.02  # under a backlog, claims (one statement each, on the receivers' connection) at most this often


class Processor:
    def __init__(self, services, settings: Settings, pipeline: Pipeline) -> None:
        self.deliveries = services.deliveries
        self.pipeline = pipeline
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.concurrency = max(1, settings.webhook_concurrency)
        self.batch = max(1, self.concurrency // 4)  # with a backlog, claim when this many slots are free, not one by one
        self._wake = asyncio.Event()
        self._active: dict[int, asyncio.Task[None]] = {}
        self.processed = 0

    def wake(self) -> None:
        """A delivery was just accepted here: look now rather than at the next idle poll."""
        self._wake.set()

    async def run(self) -> None:
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(), name="webhook-lease")
        try:
            while True:
                room = self.concurrency - len(self._active)
                got: list[Delivery] = []
                if room >= self.batch:
                    try:
                        got = await self.deliveries.claim(limit=room, lease=self.lease)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("claiming webhook deliveries failed; trying again shortly")
                for delivery in got:
                    self._start(delivery)
                if got:
                    if len(got) == room:
                        await self._wait(IDLE_POLL_SECONDS)  # more are waiting: claim again once slots are free
                    await asyncio.sleep(CLAIM_SPACING)  # under load, claims come in batches rather than one per arrival
                else:
                    await self._wait(IDLE_POLL_SECONDS)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._work(delivery), name=f"webhook-delivery:{delivery.id}")
        self._active[delivery.id] = task

        def finished(_task: asyncio.Task[None], delivery_id: int = delivery.id) -> None:
            self._active.pop(delivery_id, None)
            self._wake.set()  # a slot is free

        task.add_done_callback(finished)

    async def _work(self, delivery: Delivery) -> None:
        try:
            result = await self.pipeline.process(delivery)
        except asyncio.CancelledError:
            raise  # stopping: the lease lapses and the next processor takes it up
        except TryLater as err:
            await self._later(delivery, str(err))
            return
        except ConnectorError as err:  # the stored body no longer parses, a platform refusal: for good
            log.warning("webhook delivery %s could not be processed: %s", delivery.id, err)
            await self._record_failure(delivery, str(err))
            return
        except Exception as err:
            log.exception("webhook delivery %s failed", delivery.id)
            await self._later(delivery, f"internal error: {type(err).__name__}")
            return
        try:
            await self.deliveries.finish(delivery.id, result)
            self.processed += 1
        except Exception:
            log.exception("could not record webhook delivery %s as done; it will be processed again", delivery.id)

    async def _later(self, delivery: Delivery, reason: str) -> None:
        """Leave it leased: the lapse of the lease is the back-off, until the attempts run out."""
        if delivery.attempts >= MAX_ATTEMPTS:
            await self._record_failure(delivery, reason)
        else:
            log.info("webhook delivery %s: %s; trying again in %.0f s", delivery.id, reason, self.lease.total_seconds())

    async def _record_failure(self, delivery: Delivery, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.deliveries.fail(delivery.id, reason, retry=False)

    async def _heartbeat(self) -> None:
        period = max(self.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(period)
            if not self._active:
                continue
            try:
                await self.deliveries.renew(list(self._active), lease=self.lease)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not renew the leases of webhook deliveries", exc_info=True)

    async def stop(self) -> None:
        tasks = list(self._active.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def join(self, timeout: float = 30.0) -> None:
        """Wait until nothing is being worked on here (tests, benchmarks)."""
        async with asyncio.timeout(timeout):
            while self._active:
                await asyncio.gather(*list(self._active.values()), return_exceptions=True)
