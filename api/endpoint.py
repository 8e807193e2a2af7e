"""The wrapper every /v1 handler goes through: API-key auth, the per-key rate limit, the error shape.

Anything a handler raises becomes the documented JSON error (core errors through
`api.errors.from_core`); an unexpected exception is logged here and answered 500 with no detail,
so a traceback never reaches a client.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.context import ApiContext
from api.errors import ApiError, from_core, internal_error, not_found, rate_limited, unauthorized
from core.apikeys import ApiKeyView

log = logging.getLogger(__name__)

Handler = Callable[[Request, ApiKeyView, ApiContext], Awaitable[Response]]


def context_of(request: Request) -> ApiContext:
    return request.app.state.api


async def authenticate(request: Request, api: ApiContext) -> ApiKeyView:
    """The active key of `Authorization: Bearer KEY`; 401 with the one documented body otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized()
    key = await api.services.api_keys.authenticate(token)
    if key is None:
        raise unauthorized()
    return key


def path_id(request: Request, name: str, what: str, *, longest: int = 32) -> str:
    """An id from the path; one longer than any id we mint names nothing (404), and is never looked up."""
    value = request.path_params[name]
    if not value or len(value) > longest:
        raise not_found(f"No such {what}.")
    return value


def error_response(request: Request, err: BaseException) -> Response:
    if isinstance(err, ApiError):
        return err.response()
    mapped = from_core(err) if isinstance(err, Exception) else None
    if mapped is not None:
        return mapped.response()
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=err)
    return internal_error().response()


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        api = context_of(request)
        try:
            key = await authenticate(request, api)
            wait = await api.limiter.acquire(key.id)
            if wait is not None:
                raise rate_limited(wait)
            return await handler(request, key, api)
        except Exception as err:  # noqa: BLE001  (every failure becomes the documented shape; the unknown ones are logged)
            return error_response(request, err)

    return run


def resource(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path with every method it supports, so a 405's Allow header lists them all.

    (Starlette answers 405 from the first route whose path matches, so several routes for one path
    would each advertise only their own methods.)
    """
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(by_method))
