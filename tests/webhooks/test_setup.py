"""Registration follows the setting, platforms without webhooks are polled, and sign-ups are verified once a minute.

What must hold: turning verify-first on (through the same service call Slack and the REST API
make) registers the webhook with the platform, turning it off removes it; a Klaviyo account
without system webhooks is polled instead; `setup` tells a user what to paste where; the same
address signing up twice within a minute is verified and charged once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.webhooks.conftest import records, settled
from tests.webhooks.platforms import (
    Brevo,
    HubSpot,
    Klaviyo,
    Mailchimp,
    MailerLite,
    SendGrid,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parents[2]


async def test_turning_verify_first_on_and_off_registers_and_removes_the_webhook(app, connect):
    for platform_cls in (Mailchimp, Brevo):
        platform = await connect(platform_cls, f"T-sync-{platform_cls.slug}", verify_first=False)
        services, registrar = app.services, app.verify_first.registrar
        await registrar.sync_once()
        assert not platform.emu.state.webhooks, "verify-first off: nothing registered"
        await services.connections.update_settings(platform.cnx.workspace_id, platform.cnx.id, verify_first=True)
        await registrar.sync_once()
        view = await services.connections.find(platform.cnx.id)
        assert view.webhook_id and platform.emu.state.webhooks
        registered = [h.get("url") for h in platform.emu.state.webhooks.values()]
        assert all(url.startswith(f"{app.url}/webhooks/{platform.slug}/{view.id}") for url in registered)
        await services.connections.update_settings(platform.cnx.workspace_id, platform.cnx.id, verify_first=False)
        await registrar.sync_once()
        assert not platform.emu.state.webhooks and (await services.connections.find(platform.cnx.id)).webhook_id is None


async def test_klaviyo_without_system_webhooks_is_polled(app, connect):
    class NoWebhooks(Klaviyo):
        async def after_connect(self, workspace):
            pass

    emu_cls = NoWebhooks
    platform = await connect(emu_cls, "T-klaviyo-poll", verify_first=False)
    platform.emu.state.webhooks_enabled = False
    await app.verify_first.registrar.turn_on(platform.cnx.workspace_id, platform.cnx.id)
    view = await app.services.connections.find(platform.cnx.id)
    assert view.webhook_id is None and app.verify_first.registrar.polled(view) and view.poll_cursor is not None
    assert (await app.verify_first.registrar.setup(view)).polled
    platform.subscribe("member42@example.com")  # bounces
    assert await app.verify_first.poller.poll(view, force=True) == 1
    await settled(app, view.id, count=1)
    assert platform.unsubscribed("member42@example.com")


async def test_setup_says_what_to_paste_where(app, connect):
    hubspot = await connect(HubSpot, "T-setup-hubspot")
    info = await app.verify_first.registrar.setup(hubspot.cnx)
    assert info.url == f"{app.url}/webhooks/hubspot/{hubspot.cnx.id}" and not info.automatic and info.needs_secret
    assert "Target URL" in info.steps
    mailchimp = await connect(Mailchimp, "T-setup-mailchimp")
    info = await app.verify_first.registrar.setup(await app.services.connections.find(mailchimp.cnx.id))
    token = (await mailchimp.secrets()).url_token
    assert info.automatic and info.registered and info.url.endswith(f"?token={token}")
    sendgrid = await connect(SendGrid, "T-setup-sendgrid")
    info = await app.verify_first.registrar.setup(sendgrid.cnx)
    assert info.polled and info.url == ""


async def test_setup_and_set_secret_from_the_command_line(app, connect):
    hubspot = await connect(HubSpot, "T-cli-hubspot")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LISTWARDEN_", "DATABASE_", "SLACK_", "REDIS_"))},
           "DATABASE_URL": app.settings.database_url, "LISTWARDEN_SECRET_KEY": app.settings.secret_key.get_secret_value(),
           "LISTWARDEN_PUBLIC_URL": app.url}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "listwarden", "webhooks", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)

    shown = cli("setup", hubspot.cnx.id)
    assert shown.returncode == 0, shown.stderr
    assert f"{app.url}/webhooks/hubspot/{hubspot.cnx.id}" in shown.stdout and "set-secret" in shown.stdout
    stored = cli("set-secret", hubspot.cnx.id, "--secret", "rotated-app-secret")
    assert stored.returncode == 0, stored.stderr
    assert (await hubspot.secrets()).signing_secret == "rotated-app-secret"
    email = "member61@example.com"
    hook = await hubspot.delivery(email, hubspot.subscribe(email), secret="rotated-app-secret")
    async with httpx.AsyncClient(base_url=app.url) as client:
        assert (await client.post(hook.path, headers=hook.headers, content=hook.body)).status_code == 200
    assert cli("setup", "cnx_nope").returncode != 0
    named = cli("channel", hubspot.cnx.id, "C0DIGEST")
    assert named.returncode == 0 and (await app.services.connections.find(hubspot.cnx.id)).notice_channel == "C0DIGEST"


async def test_the_same_address_twice_in_a_minute_is_verified_once(app, connect):
    first = await connect(MailerLite, "T-cache")
    second = await connect(MailerLite, "T-cache")  # another account of the same workspace
    email = "member77@example.com"
    async with httpx.AsyncClient(base_url=app.url) as client:
        for platform in (first, second):
            hook = await platform.delivery(email, platform.subscribe(email))
            assert (await client.post(hook.path, headers=hook.headers, content=hook.body)).status_code == 200
            await settled(app, platform.cnx.id, count=1)
    steps = [records(await settled(app, p.cnx.id))[email]["steps"] for p in (first, second)]
    verify = [next(s for s in st if s["step"] == "verify") for st in steps]
    assert [v["cached"] for v in verify] == [False, True] and verify[0]["status"] == verify[1]["status"] == "valid"
    assert 1_000_000 - await app.services.credits.balance("T-cache") == 1, "charged once"
