"""What the listeners share: the core's services, the settings, and the bot's own small pieces.

Everything stateful lives in the core (`core.services.Services`): connections, workspaces and
roles, policies, credits, API keys, idempotency, jobs. The bot keeps only what is about Slack
itself: the tasks running after an ack, the chat.update budget, and the `/listwarden` words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.answers_first import AnswersFirst
from bot.progress import MIN_INTERVAL, TeamBudget
from core.jobs.service import Jobs
from core.services import Services
from core.settings import Settings

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Work started after ack(): referenced until done (asyncio keeps only weak references), cancelled at stop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def join(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


@dataclass
class BotServices:
    settings: Settings
    core: Services
    budget: TeamBudget = field(default_factory=TeamBudget)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    answers: AnswersFirst = field(default_factory=AnswersFirst)  # work after an ack yields to pending answers
    progress_interval: float = MIN_INTERVAL
    # `/listwarden <word>` handlers, added by the listener modules that own them (connect, settings)
    subcommands: dict[str, Callable[..., Coroutine[Any, Any, None]]] = field(default_factory=dict)

    @property
    def jobs(self) -> Jobs:
        """The core's jobs: start, approve, reject, results (core/jobs/service.py)."""
        return self.core.jobs

    def platforms(self) -> dict[str, Any]:
        from core.connectors import platforms

        return platforms()

    def platform_base_url(self, slug: str) -> str | None:
        """The operator's API base URL for a platform (LISTWARDEN_PLATFORM_BASE_URLS), else the connector's own."""
        return self.settings.platform_base_urls_map().get(slug)

    def oauth_start_url(self, slug: str, *, team_id: str, user_id: str) -> str | None:
        """The "Sign in with ..." link (served by the REST API at /oauth/{slug}/start), for platforms with an
        OAuth app configured; it carries a sealed ticket for this workspace (core/oauth_links.py)."""
        if not getattr(self.settings, f"{slug}_client_id", None):
            return None
        from core.oauth_links import oauth_start_url

        return oauth_start_url(self.settings, self.core.box, slug, workspace_id=team_id, user_id=user_id)

    async def verifier(self) -> Any:
        """The verifier for inline /verify: the jobs engine's own, so both share one per-host budget."""
        return await self.core.job_system.engine.verifier()
