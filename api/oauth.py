"""Platform OAuth connect (Mailchimp, HubSpot) in the browser: /oauth/{platform}/start and /callback.

    GET /oauth/{platform}/start?ticket=T   a link from Slack or from POST /v1/integrations/{type}/oauth
        -> a single-use state (services.oauth_states) and a 302 to the platform's authorize URL
    GET /oauth/{platform}/callback?code=C&state=S
        -> state checked and used up, code exchanged for tokens (core/connectors/oauth.py), the
           connection created through services.connections (which checks it live and seals the tokens)

The ticket (core/oauth_links.py) says which workspace the connection is for; nobody can forge
one. Every outcome is a small HTML page a person can read: a bad or replayed state, a refused
code, a platform that is down; never a traceback, never a token.

The token endpoint can be aimed elsewhere for tests and emulators with the connector option
`token_url` (the same one HubSpot's refresh uses), and Mailchimp's metadata call with `metadata_url`.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from core.connectors.errors import ConnectorError
from core.connectors.oauth import (
    PROVIDERS,
    OAuthExchangeFailed,
    OAuthNotConfigured,
    build_authorize_url,
    complete_oauth,
)
from core.oauth_links import read_ticket
from core.runtime import Runtime
from core.services import services_of

log = logging.getLogger(__name__)
MAX_PARAM = 4096


def page(status: int, title: str, message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} · Listwarden</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}"
        "h1{font-size:1.4rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    # never cached, never framed, and the page's URL (with its code) is not sent on to anyone
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                                           "Referrer-Policy": "no-referrer"})


def redirect_uri(settings: Any, slug: str) -> str:
    return f"{settings.public_url.rstrip('/')}/oauth/{slug}/callback"


def platform_of(request: Request) -> tuple[str, Any] | None:
    slug = request.path_params["platform"]
    if slug not in PROVIDERS:
        return None
    from core.connectors import get_platform

    return slug, get_platform(slug)


async def start(runtime: Runtime, request: Request) -> Response:
    found = platform_of(request)
    if found is None:
        return page(404, "Unknown platform", "This platform does not connect with OAuth; connect it with an API key.")
    slug, cls = found
    services = services_of(runtime)
    ticket = read_ticket(services.box, request.query_params.get("ticket", "")[:MAX_PARAM], slug)
    if ticket is None:
        return page(400, "This link does not work",
                    f"Connect links are made for one workspace and last 30 minutes. Start again from Slack "
                    f"(Connect {cls.display_name}) or ask the API for a new one.")
    try:
        state = await services.oauth_states.issue(slug, workspace_id=ticket.workspace_id, user_id=ticket.user_id,
                                                  data={"name": ticket.name} if ticket.name else {})
        url = build_authorize_url(slug, state, redirect_uri(runtime.settings, slug), runtime.settings)
    except OAuthNotConfigured as err:
        return page(503, f"{cls.display_name} sign-in is not set up", str(err))
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


async def callback(runtime: Runtime, request: Request) -> Response:
    found = platform_of(request)
    if found is None:
        return page(404, "Unknown platform", "This platform does not connect with OAuth.")
    slug, cls = found
    services = services_of(runtime)
    params = request.query_params
    state = params.get("state", "")
    known = await services.oauth_states.consume(state) if state and len(state) <= 64 else None
    if known is None or known.platform != slug:
        return page(400, "This sign-in has expired or was already used",
                    f"Nothing was connected. Start again from Slack (Connect {cls.display_name}); "
                    "a sign-in link works once, for 10 minutes.")
    if params.get("error"):  # the user said no (access_denied), or the platform refused the request
        why = "access was not granted" if params["error"] == "access_denied" else "the sign-in was refused"
        return page(400, f"{cls.display_name} was not connected",
                    f"{cls.display_name} says {why}, so nothing was connected. Start again from Slack if you meant to.")
    code = params.get("code", "")
    if not code or len(code) > MAX_PARAM:
        return page(400, f"{cls.display_name} was not connected", "The sign-in came back without a code; start again.")
    options = services.connections.connector_options
    try:
        tokens = await complete_oauth(slug, code, redirect_uri(runtime.settings, slug), runtime.settings,
                                      token_url=options.get("token_url"))
    except OAuthNotConfigured as err:
        return page(503, f"{cls.display_name} sign-in is not set up", str(err))
    except OAuthExchangeFailed as err:
        return page(502 if err.retryable else 400, f"{cls.display_name} was not connected", str(err))
    name = (known.data or {}).get("name")
    base_url = runtime.settings.platform_base_urls_map().get(slug)
    try:
        connection = await services.connections.create(known.workspace_id, slug, tokens, name=name,
                                                       created_by=known.user_id, base_url=base_url)
    except ConnectorError as err:
        return page(502, f"{cls.display_name} was not connected", str(err))
    return page(200, f"{cls.display_name} is connected",
                f"“{connection.name}” is connected to Listwarden. You can close this tab and pick a list in Slack.")


def guarded(handler: Any, runtime: Runtime) -> Any:
    """The handler with the runtime bound; anything unexpected is logged and answered with a page."""

    async def run(request: Request) -> Response:
        try:
            return await handler(runtime, request)
        except Exception:
            log.exception("platform OAuth %s failed", request.url.path)
            return page(500, "Something went wrong", "Nothing was connected; the server log has the details. "
                                                     "Start again from Slack.")

    return run


def routes(runtime: Runtime) -> list[Route]:
    return [
        Route("/oauth/{platform}/start", guarded(start, runtime), methods=["GET"]),
        Route("/oauth/{platform}/callback", guarded(callback, runtime), methods=["GET"]),
    ]
