"""Hearing about jobs: an observer hook in-process, carried over Redis between processes.

    unsubscribe = services.events.subscribe(on_job_event)   # async def on_job_event(event: JobEvent)

Every state change is an event; progress is an event at most once per LISTWARDEN_JOB_PROGRESS_SECONDS
per job (a Slack message updated in place throttles further, to its own 2 s). Observers run in
their own tasks, so a slow one (Slack's API) never holds a job up, and a failing one is logged.

With REDIS_URL, jobs run in `listwarden worker` processes: each event is also published on the
Redis channel `{LISTWARDEN_REDIS_PREFIX}:job-events`, and every process subscribed (the web process, for Slack)
delivers it to its own observers with a fresh snapshot of the job read from the database.
Chosen over a database-polling watcher because it is immediate and costs nothing while idle;
events are hints, the database is the truth: an observer that missed one (a restart) reads the
job again (`services.jobs.get`) and is up to date.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from core.jobs.views import JobView

log = logging.getLogger(__name__)
CHANNEL = "listwarden:job-events"


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    workspace_id: str
    type: Literal["state", "progress"]
    old: str | None  # the previous state (state events)
    new: str  # the state now
    view: JobView | None = None  # the job right after the change

    def to_json(self) -> str:
        return json.dumps({"job_id": self.job_id, "workspace_id": self.workspace_id, "type": self.type,
                           "old": self.old, "new": self.new})


Observer = Callable[[JobEvent], Awaitable[None]]
ViewLoader = Callable[[str], Awaitable[JobView | None]]


class JobEvents:
    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.bridge: RedisEventBridge | None = None

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        self._observers.append(observer)
        return lambda: self._observers.remove(observer) if observer in self._observers else None

    async def emit(self, event: JobEvent) -> None:
        """Deliver here, and to every other process when there is a bridge."""
        self.deliver(event)
        if self.bridge is not None:
            await self.bridge.publish(event)

    def deliver(self, event: JobEvent) -> None:
        for observer in list(self._observers):
            task = asyncio.get_running_loop().create_task(self._call(observer, event), name=f"job-event:{event.job_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _call(observer: Observer, event: JobEvent) -> None:
        try:
            await observer(event)
        except Exception:
            log.exception("job observer failed on %s %s", event.type, event.job_id)

    async def drain(self) -> None:
        """Wait for the observers still running (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class RedisEventBridge:
    """Publishes this process's job events on Redis and delivers other processes' ones here."""

    def __init__(self, events: JobEvents, redis_url: str, load_view: ViewLoader, *, channel: str = CHANNEL) -> None:
        self.events = events
        self.channel = channel
        self.redis_url = redis_url
        self.load_view = load_view
        self.origin = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.redis_url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub), name="job-events-listener")
        self.events.bridge = self

    async def publish(self, event: JobEvent) -> None:
        try:
            payload = json.loads(event.to_json()) | {"origin": self.origin}
            await self._redis.publish(self.channel, json.dumps(payload))
        except Exception:  # events are hints; the job itself is already saved
            log.warning("could not publish a job event on Redis", exc_info=True)

    async def _listen(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    data = json.loads(message["data"])
                    if data.get("origin") == self.origin:
                        continue
                    event = JobEvent(data["job_id"], data["workspace_id"], data["type"], data.get("old"), data["new"])
                    self.events.deliver(replace(event, view=await self.load_view(event.job_id)))
                except Exception:
                    log.exception("could not read a job event from Redis")
        finally:
            await pubsub.aclose()

    async def stop(self) -> None:
        self.events.bridge = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
