"""The one ASGI app: /healthz plus the routes each transport contributes (Slack, webhooks, API)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from core.runtime import Runtime
from core.settings import Settings, get_settings
from listwarden import components


async def healthz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    return JSONResponse({"status": "ok", "started": runtime.started})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    runtime = Runtime(settings=settings)
    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for component in components.load():
        routes.extend(component(runtime))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.runtime = runtime
    return app


def app_factory() -> Starlette:
    """uvicorn --factory entry point."""
    return create_app()
