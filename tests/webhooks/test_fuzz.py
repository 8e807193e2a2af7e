"""Random bodies, headers and tokens at every receiver: never a 5xx, and the processor keeps going.

Hypothesis sends each platform's receiver arbitrary bytes and arbitrary headers, sometimes
carrying the connection's real token or a real signature over the random body (so that the
platform's parser, not only its authentication, meets the garbage). What must hold: every
answer is below 500, and afterwards every stored delivery is processed or failed for good,
none left behind, with the processor still running.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators import (
    activecampaign,
    brevo,
    convertkit,
    hubspot,
    klaviyo,
    mailchimp,
    mailerlite,
)
from tests.emulators.server import serve
from tests.webhooks.conftest import app_settings
from tests.webhooks.live import ThreadedApp

MODULES = {"mailchimp": mailchimp, "hubspot": hubspot, "mailerlite": mailerlite, "activecampaign": activecampaign,
           "brevo": brevo, "convertkit": convertkit, "klaviyo": klaviyo}
HEADER_NAMES = ["content-type", "authorization", "signature", "x-hubspot-signature-v3", "x-hubspot-request-timestamp",
                "klaviyo-signature", "klaviyo-timestamp", "klaviyo-webhook-id", "x-anything", "user-agent"]


def hubspot_headers(url: str, body: bytes, secret: str) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    signature = base64.b64encode(hmac.new(secret.encode(), b"POST" + url.encode() + body + stamp.encode(), hashlib.sha256).digest())
    return {"x-hubspot-signature-v3": signature.decode(), "x-hubspot-request-timestamp": stamp}


@pytest.fixture(scope="module")
def fuzz_app(world, tmp_path_factory):
    app = ThreadedApp(app_settings(tmp_path_factory.mktemp("fuzz"), world)).start()
    servers = []
    targets = {}
    try:
        for slug, module in MODULES.items():
            emu = module.build(members=5)
            server = serve(emu.app)
            servers.append(server)
            url = server.__enter__().url

            async def connect(slug=slug, emu=emu, url=url):
                services = app.live.services
                cnx = await services.connections.create(f"T-fuzz-{slug}", slug, emu.credentials(url), base_url=url)
                if slug == "klaviyo":
                    registrar = app.live.verify_first.registrar
                    plain = registrar.settings
                    registrar.settings = plain.model_copy(update={"public_url": plain.public_url.replace("http://", "https://")})
                try:
                    await app.live.verify_first.registrar.turn_on(cnx.workspace_id, cnx.id)
                finally:
                    if slug == "klaviyo":
                        registrar.settings = plain
                if slug == "hubspot":
                    await app.live.verify_first.registrar.set_signing_secret(cnx.workspace_id, cnx.id, hubspot.CLIENT_SECRET)
                secrets = await services.connections.webhook_secrets(cnx.id)
                return cnx.id, secrets

            cnx_id, secrets = app.run(connect())
            if slug == "mailerlite":
                [hook] = emu.state.webhooks.values()
                secrets = type(secrets)(url_token=secrets.url_token, signing_secret=hook["secret"])
            targets[slug] = (cnx_id, secrets)
        yield app, targets
    finally:
        app.stop()
        for server in servers:
            server.__exit__(None, None, None)


bodies = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=512).map(str.encode),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["type", "fired_at", "data[email]", "contact[email]", "date_time", "list", "email",
                                     "event", "id", "created_at", "subscriber"]),
                    st.text(max_size=30), max_size=6).map(lambda d: urlencode(d).encode()),
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(str.strip)  # h11 sends no padded value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(slug=st.sampled_from(sorted(MODULES)), body=bodies,
       headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=5),
       authentic=st.booleans(), method=st.sampled_from(["POST", "POST", "POST", "GET"]))
def test_no_body_or_header_gets_a_5xx(fuzz_app, slug, body, headers, authentic, method):
    app, targets = fuzz_app
    cnx_id, secrets = targets[slug]
    path = f"/webhooks/{slug}/{cnx_id}"
    query = {}
    if authentic:  # genuine credentials around the random body: the parser has to cope
        if secrets.url_token and slug != "klaviyo":
            query["token"] = secrets.url_token
            headers["authorization"] = f"Bearer {secrets.url_token}"
        if slug == "hubspot":
            headers.update(hubspot_headers(app.live.url + path, body, hubspot.CLIENT_SECRET))
        if slug == "mailerlite":
            headers["signature"] = hmac.new(secrets.signing_secret.encode(), body, hashlib.sha256).hexdigest()
        if slug == "klaviyo":
            stamp = str(int(time.time()))
            headers["klaviyo-timestamp"] = stamp
            headers["klaviyo-signature"] = hmac.new(secrets.signing_secret.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    response = httpx.request(method, app.live.url + path, params=query, headers=headers, content=body, timeout=30)
    assert response.status_code < 500, (slug, response.status_code, response.text)


def test_the_processor_survives_the_fuzz(fuzz_app):
    app, _ = fuzz_app
    from core.storage.models import WebhookDelivery

    async def left() -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n = await WebhookDelivery.filter(state__in=["pending", "processing"]).count()
            if n == 0:
                return 0
            await app.live.verify_first.processor.join()
            import asyncio
            await asyncio.sleep(0.1)
        return n

    assert app.run(left()) == 0, "every stored delivery is processed or failed for good"
    tasks = app.live.verify_first._tasks
    assert tasks and not any(t.done() for t in tasks), "verify-first's loops are still running"
