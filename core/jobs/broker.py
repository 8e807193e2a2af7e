"""Dispatching jobs to `listwarden worker` processes through taskiq on Redis Streams.

The message is a nudge ("job X may be runnable"), not the job: state and checkpoints live in
the database, so a message delivered twice, late, or after Redis lost it costs nothing. How the
known sharp edges of taskiq-redis's RedisStreamBroker are met:

- #101, a long task redelivered while it still runs (after `idle_timeout`): the task does not
  run the job; it waits for a free slot, claims the job's lease and returns, so the message is
  acknowledged within seconds and the lease (renewed by a heartbeat) keeps the job single-run.
- #131, a worker killed while holding the autoclaim lock blocks reclaiming forever:
  `unacknowledged_lock_timeout` is set.
- the stream grows without `maxlen` (XACK does not delete): `maxlen` is set.
- a message sent before any worker created the consumer group: the group reads from the
  start of the stream (`consumer_id="0"`), and every process declares it on start-up.
Independently of Redis, each runner's sweep re-dispatches jobs whose lease has lapsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from core.settings import Settings

log = logging.getLogger(__name__)
TASK_NAME = "listwarden.run_job"
IDLE_TIMEOUT_MS = 60_000  # a message unacknowledged this long (its worker died before claiming) goes to another
AUTOCLAIM_LOCK_TIMEOUT = 10.0
MAXLEN = 100_000

_current: dict[str, Any] = {}  # this process's broker and task (one per process)


def make_broker(settings: Settings) -> RedisStreamBroker:
    prefix = settings.redis_prefix
    broker = RedisStreamBroker(
        settings.redis_url, queue_name=f"{prefix}:jobs", consumer_group_name=f"{prefix}:workers", consumer_id="0",
        idle_timeout=IDLE_TIMEOUT_MS, unacknowledged_lock_timeout=AUTOCLAIM_LOCK_TIMEOUT, maxlen=MAXLEN,
        xread_block=1000,
    )

    @broker.task(task_name=TASK_NAME)
    async def run_job(job_id: str) -> None:
        runner = _current.get("runner")
        if runner is None:  # a process that only dispatches never receives
            return
        await runner.run_when_free(job_id)

    _current["task"] = run_job
    return broker


async def start_broker(settings: Settings, *, runner: Any = None) -> RedisStreamBroker:
    """Connect; with a runner (a worker), also start receiving messages."""
    broker = make_broker(settings)
    await broker.startup()  # declares the consumer group
    _current["broker"] = broker
    if runner is not None:
        _current["runner"] = runner
        concurrency = max(1, settings.job_concurrency)
        _current["receiver"] = asyncio.get_running_loop().create_task(
            run_receiver_task(broker, max_async_tasks=concurrency + 1, ack_time=AcknowledgeType.WHEN_EXECUTED,
                              propagate_exceptions=False), name="taskiq-receiver")
    return broker


async def kick(job_id: str) -> None:
    task = _current.get("task")
    if task is None:
        raise RuntimeError("the job broker is not started in this process")
    await task.kiq(job_id)


async def stop_broker(broker: RedisStreamBroker) -> None:
    receiver = _current.pop("receiver", None)
    if receiver is not None:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver
    _current.pop("runner", None)
    _current.pop("task", None)
    _current.pop("broker", None)
    await broker.shutdown()
