"""Mount the REST API in the one Starlette app: /v1/..., /openapi.json and the platform OAuth pages /oauth/...

Installed after `core.storage.component` (listwarden/components.py), whose services every
handler calls; nothing here holds state of its own beyond the rate limiter and a verifier.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from api import oauth
from api.context import ApiContext
from api.openapi import build_spec
from api.routes import email, integrations, jobs
from core.runtime import Runtime

_CODES = {404: "not_found", 405: "method_not_allowed"}


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods under /v1 answer in the API's error shape, not plain text."""
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "http_error")
    message = "No such endpoint." if exc.status_code == 404 else f"{request.method} is not allowed here."
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code,
                        headers=exc.headers)


def build_v1(api: ApiContext) -> Starlette:
    app = Starlette(routes=[*email.routes, *integrations.routes, *jobs.routes],
                    exception_handlers={HTTPException: http_error})
    app.state.api = api
    return app


def install(runtime: Runtime) -> list[BaseRoute]:
    api = ApiContext.build(runtime)
    runtime.api = api  # type: ignore[attr-defined]  (tests and benchmarks reach the limiter here)

    async def stop(rt: Runtime) -> None:
        await api.close()

    runtime.on_stop(stop)
    spec = build_spec(runtime.settings.public_url)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    v1 = Mount("/v1", app=build_v1(api))
    # Starlette's {path:path} is ".*", which stops at a newline: let an encoded %0A in a path still
    # reach /v1 and get the API's JSON 404 rather than the outer app's plain-text one.
    v1.path_regex = re.compile(v1.path_regex.pattern, re.DOTALL)
    return [v1, Route("/openapi.json", openapi, methods=["GET"]), *oauth.routes(runtime)]
