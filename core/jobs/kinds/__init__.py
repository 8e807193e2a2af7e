"""Job kinds: what a job of each kind does in each working state. A registry, open to plug-ins.

A kind is an object with a `name` and two coroutines, each given a `JobRun` (core/jobs/run.py):

    class WebhookDelivery:
        name = "webhook_delivery"
        async def run(self, run: JobRun) -> None: ...     # state running: do the work, then run.move(State.DONE, ...)
        async def apply(self, run: JobRun) -> None: ...   # state applying (kinds with an approval step only)

Built in: verify_list, cleanup, bulk_file (core/jobs/kinds/builtin.py). Another part of
Listwarden adds a kind in its own module, either by calling `register(kind)` at import, or
(so that `listwarden worker` processes, which import no transport, find it too) by naming it in
its package's entry points, group "listwarden.job_kinds":

    [project.entry-points."listwarden.job_kinds"]
    webhook_delivery = "webhooks.jobs:kind"

Jobs of a plug-in kind are created with `services.jobs.create(kind="webhook_delivery", ...)`
and run, lease, resume, cancel and report events exactly like the built-in ones.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.jobs.run import JobRun

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "listwarden.job_kinds"


class JobKind(Protocol):
    name: str

    async def run(self, run: JobRun) -> None: ...

    async def apply(self, run: JobRun) -> None: ...


_kinds: dict[str, JobKind] = {}
_loaded = False


def register(kind: JobKind) -> JobKind:
    _kinds[kind.name] = kind
    return kind


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from core.jobs.kinds import builtin  # noqa: F401  (registers the built-in kinds)

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(point.load())
        except Exception:
            log.exception("could not load the job kind %s from %s", point.name, point.value)


def get(name: str) -> JobKind:
    _load()
    try:
        return _kinds[name]
    except KeyError:
        raise LookupError(f"No job kind {name!r} in this process (is its package installed?).") from None


def names() -> list[str]:
    _load()
    return sorted(_kinds)
