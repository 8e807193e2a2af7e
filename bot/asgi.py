"""Mount the Slack bot in the one Starlette app: /slack/events, /slack/install, /slack/oauth_redirect.

When Slack is not configured at all, the routes still exist and answer 503 with the settings to
set, so the rest of Listwarden (REST API, webhooks) boots and runs without Slack. With
SLACK_APP_TOKEN the bot also connects over Socket Mode at start-up (no public URL needed).
Job messages follow the core's job events (`bot.job_messages`), whichever process ran the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import build_app, client_for, missing_settings
from bot.job_messages import JobMessages
from bot.notices import install as install_notices
from bot.services import BotServices
from core.runtime import Runtime
from core.services import services_of

log = logging.getLogger(__name__)
PATHS = ("/slack/events", "/slack/install", "/slack/oauth_redirect")


def not_configured_routes(missing: list[str]) -> list[BaseRoute]:
    async def unavailable(request: Request) -> Response:
        return JSONResponse({"error": "slack_not_configured",
                             "message": "The Slack bot is off on this instance: " + "; ".join(missing) + "."},
                            status_code=503)

    return [Route(path, unavailable, methods=["GET", "POST"]) for path in PATHS]


def install(runtime: Runtime) -> list[BaseRoute]:
    settings = runtime.settings
    missing = missing_settings(settings)
    if missing:
        log.info("Slack bot off: set %s", "; ".join(missing))
        return not_configured_routes(["set " + " ".join(missing)])
    services = BotServices(settings=settings, core=services_of(runtime))
    app = build_app(services)
    messages = JobMessages(services, client_for=client_for(app, settings))
    install_notices(runtime, client_for(app, settings))  # verify-first digests, worded by the webhooks part
    runtime.slack_app = app  # type: ignore[attr-defined]  (Socket Mode, benchmarks)
    runtime.slack_services = services  # type: ignore[attr-defined]

    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

    handler = AsyncSlackRequestHandler(app)

    async def endpoint(request: Request) -> Response:
        with services.answers.answering():
            return await handler.handle(request)

    socket = None
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
    unsubscribe: list[Callable[[], None]] = []

    async def start(rt: Runtime) -> None:
        import aiohttp

        # One pooled session for every Web API call (Bolt hands it to each request's client): without it
        # slack_sdk opens a new connection per call.
        app.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        unsubscribe.append(services.core.events.subscribe(messages.on_event))
        if socket is not None:
            await socket.connect_async()

    async def stop(rt: Runtime) -> None:
        for undo in unsubscribe:
            undo()
        await services.tasks.cancel_all()
        if socket is not None:
            await socket.close_async()
        if app.client.session is not None:
            await app.client.session.close()
            app.client.session = None

    runtime.on_start(start)
    runtime.on_stop(stop)
    return [Route("/slack/events", endpoint, methods=["POST"]),
            Route("/slack/install", endpoint, methods=["GET"]),
            Route("/slack/oauth_redirect", endpoint, methods=["GET"])]
