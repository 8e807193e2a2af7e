"""OAuth authorize URLs: state and redirect survive, and a missing client id is one clear sentence."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from core.connectors.oauth import OAuthNotConfigured, build_authorize_url
from core.settings import Settings


def _settings(**env) -> Settings:
    return Settings.model_validate(env)


@pytest.mark.parametrize("slug,host", [("mailchimp", "login.mailchimp.com"), ("hubspot", "app.hubspot.com")])
def test_authorize_url_carries_client_id_state_and_redirect(slug, host):
    settings = _settings(**{f"{slug.upper()}_CLIENT_ID": "cid-123"})
    url = build_authorize_url(slug, "st4te", "https://lw.example/oauth/cb", settings)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.hostname == host
    assert query["client_id"] == ["cid-123"]
    assert query["state"] == ["st4te"]
    assert query["redirect_uri"] == ["https://lw.example/oauth/cb"]
    assert query["response_type"] == ["code"]


def test_missing_client_id_names_the_setting():
    with pytest.raises(OAuthNotConfigured, match="MAILCHIMP_CLIENT_ID"):
        build_authorize_url("mailchimp", "s", "https://x/cb", _settings())


def test_platform_without_oauth_is_refused():
    with pytest.raises(OAuthNotConfigured, match="does not support OAuth"):
        build_authorize_url("brevo", "s", "https://x/cb", _settings())


from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.connectors.oauth import OAuthExchangeFailed, complete_oauth, refresh_tokens
from tests.emulators.server import free_port, serve


async def _token(request):
    """A HubSpot-shaped token endpoint: only code 'good' with the right secret is accepted."""
    form = await request.form()
    if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "rt-1":
        return JSONResponse({"access_token": "at-2", "refresh_token": "rt-1", "expires_in": 1800})
    if form.get("code") != "good" or form.get("client_secret") != "shh":
        return JSONResponse({"status": "BAD_AUTH_CODE", "message": "missing or unknown auth code"}, 400)
    return JSONResponse({"access_token": "at-1", "refresh_token": "rt-1", "expires_in": 1800, "token_type": "bearer"})


async def _down(request):
    return JSONResponse({"status": "error", "message": "internal error"}, 503)


@pytest.fixture(scope="module")
def token_server():
    routes = [Route("/oauth/v1/token", _token, methods=["POST"]), Route("/oauth/v1/down", _down, methods=["POST"])]
    with serve(Starlette(routes=routes)) as server:
        yield server


async def test_code_exchange_returns_access_and_refresh_tokens(token_server):
    settings = _settings(HUBSPOT_CLIENT_ID="cid", HUBSPOT_CLIENT_SECRET="shh")
    before = time.time()
    creds = await complete_oauth("hubspot", "good", "https://x/cb", settings, token_url=f"{token_server.url}/oauth/v1/token")
    assert set(creds) == {"access_token", "refresh_token", "expires_at"}
    assert (creds["access_token"], creds["refresh_token"]) == ("at-1", "rt-1")
    assert before + 1799 <= int(creds["expires_at"]) <= time.time() + 1800  # epoch seconds: still right when read back later


async def test_refused_code_is_one_sentence_without_the_secret(token_server):
    settings = _settings(HUBSPOT_CLIENT_ID="cid", HUBSPOT_CLIENT_SECRET="shh")
    with pytest.raises(OAuthExchangeFailed) as caught:
        await complete_oauth("hubspot", "bad", "https://x/cb", settings, token_url=f"{token_server.url}/oauth/v1/token")
    assert "refused" in str(caught.value) and "shh" not in str(caught.value)
    assert caught.value.status == 400 and not caught.value.retryable  # the grant is refused: connect again


async def test_refresh_token_yields_a_new_access_token(token_server):
    settings = _settings(HUBSPOT_CLIENT_ID="cid", HUBSPOT_CLIENT_SECRET="shh")
    creds = await refresh_tokens("hubspot", "rt-1", settings, token_url=f"{token_server.url}/oauth/v1/token")
    assert creds["access_token"] == "at-2"


async def test_unreachable_or_failing_token_endpoint_is_retryable(token_server):
    """A token endpoint that is down (or answers 5xx/429) means try again, not reconnect; the status is kept."""
    settings = _settings(HUBSPOT_CLIENT_ID="cid", HUBSPOT_CLIENT_SECRET="shh")
    with pytest.raises(OAuthExchangeFailed) as caught:
        await refresh_tokens("hubspot", "rt-1", settings, token_url=f"{token_server.url}/oauth/v1/down")
    assert caught.value.status == 503 and caught.value.retryable and "try again" in str(caught.value)
    with pytest.raises(OAuthExchangeFailed) as caught:
        await refresh_tokens("hubspot", "rt-1", settings, token_url=f"http://127.0.0.1:{free_port()}/oauth/v1/token")
    assert caught.value.status is None and caught.value.retryable


async def test_revoked_refresh_token_is_refused(token_server):
    settings = _settings(HUBSPOT_CLIENT_ID="cid", HUBSPOT_CLIENT_SECRET="shh")
    with pytest.raises(OAuthExchangeFailed, match="refused"):
        await refresh_tokens("hubspot", "revoked", settings, token_url=f"{token_server.url}/oauth/v1/token")
