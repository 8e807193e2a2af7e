"""Tested as a new user would (issue 4's targets), on every platform at once.

A new user mistypes or leaves out a field, pastes a dead key, picks the wrong data centre, types
an http:// or foreign ActiveCampaign URL, comes back after their OAuth sign-in expired, or points
at a platform that is down or answers gibberish. Each must give one clear sentence (a
ConnectorError), never a traceback, never a secret.
"""

from __future__ import annotations

import importlib
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from core.connectors import get_platform, platforms
from core.connectors.activecampaign import ActiveCampaign
from core.connectors.errors import (
    ConnectorError,
    InvalidConfiguration,
    InvalidCredentials,
    PlatformUnavailable,
)
from core.connectors.http import PlatformHttp
from core.connectors.mailchimp import Mailchimp
from core.settings import Settings
from tests.emulators.server import free_port, serve

SLUGS = sorted(platforms())
NO_LIMITS = {"rate_limit": None, "endpoint_limits": None}


def sentence(err: BaseException, *secrets: str | None) -> str:
    """The error is ours, one sentence, not chained to a traceback, and holds none of the secrets."""
    assert isinstance(err, ConnectorError), f"{type(err).__name__}: {err}"
    text = str(err)
    assert text and text[0].isupper() and text.endswith(".") and "\n" not in text, text
    assert "Traceback" not in text and err.__cause__ is None
    for secret in secrets:
        if secret and len(secret) >= 6:
            assert secret not in text and secret[:12] not in text, f"{text!r} shows a secret"
    return text


def secrets_of(credentials: dict) -> list[str]:
    return [v for k, v in credentials.items() if k not in ("api_url", "region", "dc", "expires_at")]


@pytest.fixture(scope="module")
def emulators():
    """All eight emulators, each on its own loopback port."""
    built, servers = {}, []
    for slug in SLUGS:
        emu = importlib.import_module(f"tests.emulators.{slug}").build(members=5)
        server = serve(emu.app)
        built[slug] = (emu, server.__enter__())
        servers.append(server)
    yield built
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


def connect(slug: str, credentials: dict, base_url: str, client: httpx.AsyncClient, **options):
    connector = get_platform(slug)(credentials, base_url=base_url, options={**NO_LIMITS, **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=1)
    return connector


# --- the connect form ---------------------------------------------------------------------------
@pytest.mark.parametrize("slug", SLUGS)
def test_an_empty_form_names_the_missing_field(slug):
    cls = get_platform(slug)
    with pytest.raises(InvalidConfiguration) as caught:
        cls({})
    text = sentence(caught.value)
    first = cls.credential_fields[0]
    assert caught.value.field == first.name and first.label.split(" (")[0].lower() in text.lower()


@pytest.mark.parametrize("slug", SLUGS)
def test_junk_in_any_field_is_one_sentence_naming_it(slug):
    """Whitespace, a non-text value, a key with a space in it, a cut-off key: all refused before any request."""
    cls = get_platform(slug)
    for f in cls.credential_fields:
        for junk in ("   ", 12345, "has a space in it", "abc"):
            credentials = {g.name: "" for g in cls.credential_fields} | {f.name: junk}
            try:
                cls(credentials)
            except InvalidConfiguration as err:
                sentence(err, junk if isinstance(junk, str) and junk.strip() else None)
                assert err.field in {g.name for g in cls.credential_fields}
            except Exception as err:  # noqa: BLE001 - exactly what must never happen
                pytest.fail(f"{slug}.{f.name}={junk!r} raised {type(err).__name__}: {err}")


# --- a dead key -----------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", SLUGS)
async def test_a_bad_key_is_one_sentence_without_the_key(slug, emulators, client):
    emu, server = emulators[slug]
    credentials = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as caught:
        await connect(slug, credentials, server.url, client).check_credentials()
    sentence(caught.value, *secrets_of(credentials))


# --- Mailchimp's data centre ----------------------------------------------------------------------
async def test_mailchimp_wrong_data_centre_suffix_points_at_the_suffix(emulators, client):
    _, server = emulators["mailchimp"]
    mod = importlib.import_module("tests.emulators.mailchimp")
    with pytest.raises(InvalidCredentials) as caught:
        await connect("mailchimp", {"api_key": mod.WRONG_DC_KEY}, server.url, client).check_credentials()
    text = sentence(caught.value, mod.WRONG_DC_KEY.rsplit("-", 1)[0])
    assert "-" + mod.WRONG_DC_KEY.rsplit("-", 1)[1] in text and "data centre" in text


@pytest.mark.parametrize("key", ["0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef-", "0123456789abcdef0123456789abcdef-usa"])
def test_mailchimp_missing_or_unknown_suffix_is_refused_before_any_request(key):
    with pytest.raises(InvalidConfiguration) as caught:
        Mailchimp({"api_key": key})
    assert "-us21" in sentence(caught.value, key[:32]) and caught.value.field == "api_key"


# --- ActiveCampaign's account URL -------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "http://acme.api-us1.com",  # not https
    "acme.api-us1.com",  # no scheme at all
    "https://acme.example.com",  # foreign domain
    "https://acme.api-us1.com.evil.example",  # looks like AC, is not
    "https://api-us1.com",  # the bare domain, no account
    "https://127.0.0.1", "https://[::1]", "https://169.254.169.254", "https://10.0.0.8",  # internal addresses
    "https://localhost", "https://intranet",
    "https://admin:pw@acme.api-us1.com",  # credentials in the URL
    "https://acme.api-us1.com:8443",  # another port
    "https://acme.api-us1.com/admin/../x",  # a path
])
def test_activecampaign_url_must_be_https_on_its_own_domains(url):
    with pytest.raises(InvalidConfiguration) as caught:
        ActiveCampaign({"api_url": url, "api_key": "a1b2c3d4" * 9})
    text = sentence(caught.value, "a1b2c3d4" * 9, "pw")
    assert caught.value.field == "api_url" and text.startswith("API URL")


# --- an expired OAuth sign-in -------------------------------------------------------------------------
async def test_hubspot_expired_sign_in_says_reconnect(emulators, client):
    """An expired access token with no refresh token, and one whose refresh token was revoked: reconnect."""
    emu, server = emulators["hubspot"]
    hs = importlib.import_module("tests.emulators.hubspot")
    settings = Settings.model_validate({"HUBSPOT_CLIENT_ID": hs.CLIENT_ID, "HUBSPOT_CLIENT_SECRET": hs.CLIENT_SECRET})
    options = {"settings": settings, "token_url": f"{server.url}/oauth/v1/token"}
    access, refresh = emu.state.issue_oauth()
    emu.state.expire(access)
    with pytest.raises(InvalidCredentials) as caught:
        await connect("hubspot", {"access_token": access}, server.url, client, **options).check_credentials()
    assert "reconnect HubSpot" in sentence(caught.value, access)
    access, refresh = emu.state.issue_oauth()
    emu.state.refresh.pop(refresh)
    stale = {"access_token": access, "refresh_token": refresh, "expires_at": str(int(time.time()) - 60)}
    with pytest.raises(InvalidCredentials) as caught:
        await connect("hubspot", stale, server.url, client, **options).check_credentials()
    assert "reconnect HubSpot" in sentence(caught.value, access, refresh, hs.CLIENT_SECRET)


async def test_mailchimp_revoked_sign_in_says_sign_in_again(emulators, client):
    _, server = emulators["mailchimp"]
    token = "f" * 32
    mc = connect("mailchimp", {"access_token": token}, server.url, client, metadata_url=f"{server.url}/oauth2/metadata")
    with pytest.raises(InvalidCredentials) as caught:
        await mc.check_credentials()
    assert "sign in with Mailchimp again" in sentence(caught.value, token)


# --- a platform that is down or answers gibberish ----------------------------------------------------
@pytest.mark.parametrize("slug", SLUGS)
async def test_an_unreachable_platform_is_one_sentence(slug, emulators, client):
    emu, _ = emulators[slug]
    dead = f"http://127.0.0.1:{free_port()}"
    credentials = emu.credentials(dead)
    with pytest.raises(PlatformUnavailable) as caught:
        await connect(slug, credentials, dead, client).check_credentials()
    sentence(caught.value, *secrets_of(credentials))


async def _portal(request: Request) -> Response:
    if request.query_params.get("shape") == "json" or request.app.state.shape == "json":
        return Response("[1, 2, 3]", media_type="application/json")
    return PlainTextResponse("<html><body>Please log in to the hotel Wi-Fi</body></html>", media_type="text/html")


@pytest.fixture(scope="module")
def portal():
    app = Starlette(routes=[Route("/{path:path}", _portal, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])
    app.state.shape = "html"
    with serve(app) as server:
        yield app, server


@pytest.mark.parametrize("shape", ["html", "json"])
@pytest.mark.parametrize("slug", SLUGS)
async def test_a_reply_we_cannot_read_is_one_sentence(slug, shape, emulators, portal, client):
    """A captive portal's HTML, or JSON of the wrong shape, with 200: checking the key (HTML), listing and
    reading members fail in one sentence (the connector's interface methods are guarded, base.py)."""
    app, server = portal
    app.state.shape = shape
    emu, _ = emulators[slug]
    credentials = emu.credentials(server.url)
    connector = connect(slug, credentials, server.url, client, metadata_url=f"{server.url}/oauth2/metadata",
                        export_poll_interval=0.01, export_max_wait=0.5)
    for action in (connector.check_credentials, connector.lists, lambda: _drain(connector.members(emu.list_id))):
        try:
            await action()
        except Exception as err:  # noqa: BLE001 - the assertion is about what it is
            sentence(err, *secrets_of(credentials))
        else:
            assert shape == "json" and action == connector.check_credentials  # a web page is never taken for the API


async def _drain(iterator) -> None:
    async for _ in iterator:
        pass
