"""Platform OAuth connect: /oauth/{platform}/start and /oauth/{platform}/callback.

What must hold: a connect link works only for the workspace it was made for; the state is
checked and works once; the code is exchanged at the token endpoint with our client id and
secret; the connection is created (checked live, tokens sealed) in the link's workspace; every
failure is a plain page, with nothing connected, never a traceback or a token.

The platform side is the HubSpot and Mailchimp emulators on loopback. Their token endpoints
serve only what the connectors call today (HubSpot: refresh; Mailchimp: none), so each test
puts the authorization-code grant of the platform's OAuth docs in front of the emulator: codes
it issues are swapped for tokens the emulator itself honours (HubSpot: `state.issue_oauth()`;
Mailchimp: its OAuth token, whose data centre comes from the emulator's metadata call).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from core.oauth_links import make_ticket
from core.storage.models import Connection
from tests.api.conftest import Platform
from tests.emulators import hubspot as hubspot_emulator
from tests.emulators import mailchimp as mailchimp_emulator
from tests.emulators.server import LiveServer

TOKEN_PATHS = {"hubspot": "/oauth/v1/token", "mailchimp": "/oauth2/token"}
CLIENTS = {"hubspot": (hubspot_emulator.CLIENT_ID, hubspot_emulator.CLIENT_SECRET),
           "mailchimp": ("mc-client-id", "mc-client-secret")}
REDIRECT = "https://lw.example.test/oauth/{slug}/callback"


@dataclass
class AuthorizationServer:
    """The platform's authorization-code grant: codes for a redirect URI, each swapped for tokens once."""

    slug: str
    emulator: object
    codes: dict[str, str] = field(default_factory=dict)  # code -> redirect_uri
    exchanges: int = 0

    def issue_code(self) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = REDIRECT.format(slug=self.slug)
        return code

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        client_id, client_secret = CLIENTS[self.slug]
        if form.get("client_id") != client_id or form.get("client_secret") != client_secret:
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code":  # (no test here lives long enough to refresh)
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        redirect = self.codes.pop(str(form.get("code")), None)  # a code works once
        if redirect is None or redirect != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant", "error_description": "bad code"}, 400)
        self.exchanges += 1
        if self.slug == "hubspot":
            access, refresh = self.emulator.state.issue_oauth()
            return JSONResponse({"token_type": "bearer", "access_token": access, "refresh_token": refresh,
                                 "expires_in": 1800})
        return JSONResponse({"access_token": mailchimp_emulator.OAUTH_TOKEN, "token_type": "bearer", "scope": None})


@contextlib.contextmanager
def platform_with_oauth(slug: str) -> Iterator[tuple[Platform, AuthorizationServer]]:
    module = {"hubspot": hubspot_emulator, "mailchimp": mailchimp_emulator}[slug]
    emulator = module.build(members=3)
    authorization = AuthorizationServer(slug, emulator)
    app = Starlette(routes=[Route(TOKEN_PATHS[slug], authorization.token, methods=["POST"]), Mount("/", app=emulator.app)])
    server = LiveServer(app).start()
    try:
        yield Platform(slug, emulator, server), authorization
    finally:
        server.stop()


def oauth_settings(slug: str, platform: Platform) -> dict:
    client_id, secret = CLIENTS[slug]
    return {f"{slug.upper()}_CLIENT_ID": client_id, f"{slug.upper()}_CLIENT_SECRET": secret, "platforms": (platform,)}


def connector_options(slug: str, platform: Platform) -> dict:
    return {"token_url": platform.url + TOKEN_PATHS[slug], "metadata_url": platform.url + "/oauth2/metadata"}


async def start_link(api, slug: str, name: str | None = None) -> str:
    answer = await api.post(f"/v1/integrations/{slug}/oauth", {"name": name} if name else None)
    assert answer.status_code == 201, answer.text
    url = answer.json()["url"]
    assert url.startswith(f"https://lw.example.test/oauth/{slug}/start?ticket=")
    return url.removeprefix("https://lw.example.test")


async def authorize(api, path: str) -> dict[str, str]:
    """Open the start link; the redirect goes to the platform's authorize page (not followed: no traffic leaves)."""
    answer = await api.client.get(path)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    return {k: v[0] for k, v in parse_qs(location.query).items()} | {"host": location.hostname}


@pytest.mark.parametrize("slug,host", [("hubspot", "app.hubspot.com"), ("mailchimp", "login.mailchimp.com")])
async def test_signing_in_creates_the_connection_in_the_links_workspace(make_api, slug, host):
    with platform_with_oauth(slug) as (platform, authorization):
        async with make_api(connector_options=connector_options(slug, platform), **oauth_settings(slug, platform)) as api:
            query = await authorize(api, await start_link(api, slug, name="CRM \u2709"))
            assert query["host"] == host and query["client_id"] == CLIENTS[slug][0]
            assert query["redirect_uri"] == REDIRECT.format(slug=slug) and query["state"]
            code = authorization.issue_code()  # the user said yes at the platform
            done = await api.client.get(f"/oauth/{slug}/callback", params={"code": code, "state": query["state"]})
            assert done.status_code == 200, done.text
            assert "is connected" in done.text and "CRM \u2709" in done.text
            assert done.headers["cache-control"] == "no-store"
            [connection] = (await api.get(f"/v1/integrations/{slug}")).json()["connections"]
            assert connection["name"] == "CRM \u2709" and connection["status"] == "active"
            lists = (await api.get(f"/v1/integrations/{slug}/connections/{connection['id']}/lists")).json()["lists"]
            assert platform.emulator.list_id in [pl["id"] for pl in lists]  # the sealed tokens work
            [row] = await Connection.all().values("credentials", "created_by")
            assert "access_token" not in row["credentials"] and row["created_by"].startswith("key_")

            replay = await api.client.get(f"/oauth/{slug}/callback", params={"code": code, "state": query["state"]})
            assert replay.status_code == 400 and "already used" in replay.text
            assert authorization.exchanges == 1 and await Connection.all().count() == 1


async def test_a_bad_or_replayed_state_and_a_refused_code_connect_nothing(make_api):
    slug = "hubspot"
    with platform_with_oauth(slug) as (platform, _):
        async with make_api(connector_options=connector_options(slug, platform), **oauth_settings(slug, platform)) as api:
            for params in ({"code": "c", "state": "made-up"}, {"code": "c"}, {"state": "x" * 500}, {}):
                page = await api.client.get(f"/oauth/{slug}/callback", params=params)
                assert page.status_code == 400 and "expired or was already used" in page.text, params
            refused = await authorize(api, await start_link(api, slug))
            page = await api.client.get(f"/oauth/{slug}/callback", params={"code": "not-issued", "state": refused["state"]})
            assert page.status_code == 400 and "refused the authorization" in page.text
            assert CLIENTS[slug][1] not in page.text
            denied = await authorize(api, await start_link(api, slug))
            page = await api.client.get(f"/oauth/{slug}/callback", params={"error": "access_denied", "state": denied["state"]})
            assert page.status_code == 400 and "access was not granted" in page.text
            mailchimp_state = (await authorize(api, await start_link(api, slug)))["state"]
            page = await api.client.get("/oauth/mailchimp/callback", params={"code": "c", "state": mailchimp_state})
            assert page.status_code == 400  # a HubSpot state is no Mailchimp state (and it is used up now)
            assert await Connection.all().count() == 0 and "Traceback" not in page.text


async def test_a_connect_link_cannot_be_forged_or_reused_for_another_platform(make_api):
    slug = "hubspot"
    with platform_with_oauth(slug) as (platform, _):
        async with make_api(connector_options=connector_options(slug, platform), **oauth_settings(slug, platform)) as api:
            for ticket in ("", "garbage", "A" * 5000):
                page = await api.client.get(f"/oauth/{slug}/start", params={"ticket": ticket})
                assert page.status_code == 400 and "does not work" in page.text
            other = make_ticket(api.services.box, "mailchimp", workspace_id="W1")
            assert (await api.client.get(f"/oauth/{slug}/start", params={"ticket": other})).status_code == 400
            stale = make_ticket(api.services.box, slug, workspace_id="W1", ttl=-timedelta(seconds=1))
            assert (await api.client.get(f"/oauth/{slug}/start", params={"ticket": stale})).status_code == 400
            assert (await api.client.get("/oauth/klaviyo/start", params={"ticket": other})).status_code == 404


async def test_without_an_oauth_app_the_api_and_the_pages_say_so(make_api):
    async with make_api() as api:
        answer = await api.post("/v1/integrations/hubspot/oauth")
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "oauth_not_configured"
        assert "HUBSPOT_CLIENT_ID" in answer.json()["error"]["message"]
        key_only = await api.post("/v1/integrations/klaviyo/oauth")
        assert key_only.status_code == 422 and key_only.json()["error"]["code"] == "oauth_unsupported"
        ticket = make_ticket(api.services.box, "hubspot", workspace_id="W1")
        page = await api.client.get("/oauth/hubspot/start", params={"ticket": ticket})
        assert page.status_code == 503 and "HUBSPOT_CLIENT_ID" in page.text
        described = (await api.get("/v1/integrations/hubspot")).json()
        assert described["oauth_available"] is False and described["auth"] == "api_key_or_oauth"
