"""Bad input gets a clear refusal and loses nothing: 401, 400, 404, 410, 413, replays and duplicates.

Each platform's receiver is hit with its own genuine delivery, then with forged, stale, garbled,
misaddressed and oversized versions of it. What must hold: the status, that nothing refused is
stored, and that the genuine deliveries around the bad ones are still processed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from core.storage.models import WebhookDelivery
from tests.webhooks.conftest import records, settled
from tests.webhooks.platforms import WEBHOOK_PLATFORMS, Hook, HubSpot, MailerLite

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def send(client, hook: Hook):
    return await client.request(hook.method, hook.path, headers=hook.headers, content=hook.body)


async def stored(connection_id: str) -> int:
    return await WebhookDelivery.filter(connection_id=connection_id).count()


@pytest.mark.parametrize("platform_cls", WEBHOOK_PLATFORMS, ids=lambda c: c.slug)
async def test_forged_stale_garbled_and_misaddressed_deliveries_are_refused(platform_cls, app, client, connect):
    platform = await connect(platform_cls, f"T-bad-{platform_cls.slug}")
    email = "member6@example.com"
    genuine = await platform.delivery(email, platform.subscribe(email))

    forged = await send(client, await platform.forged(genuine))
    assert forged.status_code == 401 and forged.json()["error"] == "unauthorized"
    if platform.has_window:  # a replay of an old delivery, with a genuine signature or token
        stale = await send(client, await platform.delivery(email, platform.subscribe(email), stale=True))
        assert stale.status_code == 401, stale.text
    garbled = await send(client, await platform.resign(genuine, b"\xff\xfe{not what this platform sends"))
    assert garbled.status_code == 400 and garbled.json()["error"] == "malformed"
    assert await stored(platform.cnx.id) == 0, "nothing refused is stored"

    unknown = await client.post(f"/webhooks/{platform.slug}/cnx_doesnotexist", content=genuine.body, headers=genuine.headers)
    assert unknown.status_code == 404
    other = "brevo" if platform.slug != "brevo" else "mailchimp"
    assert (await client.post(genuine.path.replace(platform.slug, other, 1), content=genuine.body)).status_code == 404
    assert (await client.post(genuine.path.replace(platform.slug, "myspace", 1), content=genuine.body)).status_code == 404

    too_big = await send(client, Hook(genuine.method, genuine.path, genuine.headers, b"x" * (app.settings.webhook_max_body + 1)))
    assert too_big.status_code == 413

    ok = await send(client, genuine)
    assert ok.status_code == 200
    rows = await settled(app, platform.cnx.id, count=1)
    assert set(records(rows)) == {email}, "the genuine delivery after the bad ones is processed"

    # disconnected: our webhook is removed from the platform, and its deliveries get 410
    await app.verify_first.registrar.disconnect(platform.cnx.workspace_id, platform.cnx.id)
    view = await app.services.connections.find(platform.cnx.id)
    assert view.webhook_id is None
    if platform.emu.state.__dict__.get("webhooks") is not None and platform.slug != "hubspot":
        assert not platform.emu.state.webhooks, "the webhook is removed from the platform on disconnect"
    gone = await send(client, genuine)
    assert gone.status_code == 410 and gone.json()["error"] == "disconnected"


async def test_sendgrid_has_no_receiver(app, client):
    from tests.webhooks.platforms import SendGrid
    assert (await client.post("/webhooks/sendgrid/cnx_x", content=b"{}")).status_code == 404
    assert SendGrid.module is not None


async def test_duplicates_are_processed_once(app, client, connect):
    """The same delivery three times (a platform's retries), then the same subscriber announced again."""
    platform = await connect(MailerLite, "T-dupes")
    email = "member22@example.com"  # bounces
    hook = await platform.delivery(email, platform.subscribe(email))
    for _ in range(3):
        assert (await send(client, hook)).status_code == 200
    assert await stored(platform.cnx.id) == 1, "a retried delivery is stored once"
    [row] = await settled(app, platform.cnx.id, count=1)
    assert row["result"]["summary"]["new"] == 1 and platform.unsubscribed(email)

    hubspot = await connect(HubSpot, "T-dupes-hubspot")
    contact = hubspot.subscribe(email)
    first, second = await hubspot.delivery(email, contact), await hubspot.delivery(email, contact)
    assert first.body != second.body  # two events (two event ids) about one contact
    for hook in (first, second, first):
        assert (await send(client, hook)).status_code == 200
    rows = await settled(app, hubspot.cnx.id, count=2)
    assert len(rows) == 2
    assert sorted(r["result"]["summary"]["new"] for r in rows) == [0, 1]
    assert sum(r["result"]["duplicates"] for r in rows) == 1
    assert hubspot.unsubscribed(email)


async def test_a_thousand_subscribers_in_one_delivery_are_all_processed(app, client, connect):
    platform = await connect(MailerLite, "T-thousand", members=1000)
    [registered] = platform.emu.state.webhooks.values()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    events = [{"event": "subscriber.created", "id": str(platform.subscribe(f"member{n}@example.com")),
               "email": f"member{n}@example.com", "status": "active", "created_at": now} for n in range(1000)]
    body = json.dumps({"events": events}).encode()
    signature = hmac.new(registered["secret"].encode(), body, hashlib.sha256).hexdigest()
    response = await client.post(platform.path, content=body, headers={"content-type": "application/json", "signature": signature})
    assert response.status_code == 200
    [row] = await settled(app, platform.cnx.id, count=1, timeout=60)
    found = records([row])
    assert len(found) == 1000 and row["result"]["summary"]["verified"] == 1000
    invalid = [e for e, r in found.items() if r["status"] == "invalid"]
    assert len(invalid) == 100
    assert all(platform.unsubscribed(e) for e in invalid)
    assert not any(platform.unsubscribed(e) for e, r in found.items() if r["status"] == "valid")
