"""Seed 001 (mailfloss integrations API): every example request and response, field for field.

The curl examples run over HTTP against the app, with each platform's emulator on a loopback
port (LISTWARDEN_PLATFORM_BASE_URLS points the platform there; the credential values are the
emulator's, the request shapes the seed's).

The connection object example is one connection at one moment: the core's serialisation is
checked against it field for field. A connection just made through the API differs from that
moment in three values, each on purpose: `last_synced_at` is the live list fetch the connect
call makes (seed 001: "it fetches your lists during the connect call"), `verify_first` is off
until someone turns it on (the PATCH example does), and `checks` names every gate, the
example's two included with the example's values.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.checks import CHECKS, ConnectionSettings
from core.connections import ConnectionView
from tests.api.conftest import served
from tests.emulators import convertkit

CONNECTION_EXAMPLE = {
    "id": "cnx_8f3a", "name": "Marketing Klaviyo", "status": "active", "auto_floss_enabled": True,
    "created_at": "2026-06-02T09:00:00Z", "last_synced_at": None,
    "settings": {"aggressiveness": "normal", "verify_first": True, "checks": {"disposable": True, "nonexistent": True}},
}


def test_the_connection_object_serialises_exactly_as_documented():
    view = ConnectionView(
        id="cnx_8f3a", workspace_id="W1", platform="klaviyo", name="Marketing Klaviyo", status="active",
        settings=ConnectionSettings(verify_first=True, aggressiveness="normal",
                                    checks={"disposable": True, "nonexistent": True}),
        auto_floss_enabled=True, created_at=datetime(2026, 6, 2, 9, 0, tzinfo=UTC), last_synced_at=None,
        notice_channel=None, account_id=None, base_url=None, last_error=None, created_by=None, webhook_id=None,
        poll_cursor=None)
    assert view.public() == CONNECTION_EXAMPLE


def example_body(slug: str, platform) -> dict:
    """The seed's three connect examples, with the emulator's credential values."""
    if slug == "klaviyo":  # single key, named
        return {"name": "Marketing Klaviyo", "credentials": {"api_key": platform.form()["api_key"]}}
    if slug == "activecampaign":  # account URL plus a key
        form = platform.form()
        return {"credentials": {"api_url": form["api_url"], "api_key": form["api_key"]}}
    return {"credentials": {"api_key": convertkit.V3_KEY, "api_secret": convertkit.V3_SECRET}}  # key plus a secret


@pytest.mark.parametrize("slug", ["klaviyo", "activecampaign", "convertkit"])
async def test_the_connect_patch_disconnect_reconnect_examples(make_api, slug):
    with served(slug) as platform:
        async with make_api(platforms=(platform,)) as api:
            # 1. see what's connected: every integration, then one platform with its connections
            listed = await api.get("/v1/integrations")
            assert listed.status_code == 200
            assert {i["type"]: i["status"] for i in listed.json()["integrations"]}[slug] == "available"
            described = (await api.get(f"/v1/integrations/{slug}")).json()
            assert described["type"] == slug and described["connections"] == []
            fields = {f["name"] for f in described["credential_fields"]}
            assert set(example_body(slug, platform)["credentials"]) <= fields

            # 2. connect: 201 means the credentials work (the lists were fetched live)
            created = await api.post(f"/v1/integrations/{slug}/connections", example_body(slug, platform))
            assert created.status_code == 201, created.text
            connection = created.json()
            assert set(connection) == set(CONNECTION_EXAMPLE)
            assert set(connection["settings"]) == set(CONNECTION_EXAMPLE["settings"])
            assert connection["id"].startswith("cnx_")
            assert connection["name"] == ("Marketing Klaviyo" if slug == "klaviyo" else described["name"])  # default name
            assert (connection["status"], connection["auto_floss_enabled"]) == ("active", True)
            assert connection["settings"]["aggressiveness"] == "normal"
            assert {g: connection["settings"]["checks"][g] for g in ("disposable", "nonexistent")} == \
                CONNECTION_EXAMPLE["settings"]["checks"]
            assert set(connection["settings"]["checks"]) == set(CHECKS)
            for stamp in (connection["created_at"], connection["last_synced_at"]):
                datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
            assert "credentials" not in created.text and example_body(slug, platform)["credentials"]["api_key"] not in created.text

            # 4. configure cleaning: the PATCH example
            url = f"/v1/integrations/{slug}/connections/{connection['id']}"
            patched = await api.patch(url, {"verify_first": True, "aggressiveness": "aggressive"})
            assert patched.status_code == 200, patched.text
            settings = patched.json()["settings"]
            assert settings["verify_first"] is True and settings["aggressiveness"] == "aggressive"
            assert settings["checks"] == dict.fromkeys(CHECKS, True)  # aggressive: all checks on

            # 5. disconnect (the record stays) and reconnect
            disconnected = await api.delete(url)
            assert disconnected.status_code == 200 and disconnected.json()["status"] == "disconnected"
            kept = await api.get(url)
            assert kept.status_code == 200 and kept.json()["status"] == "disconnected"
            reconnected = await api.post(url + "/reconnect")
            assert reconnected.status_code == 200 and reconnected.json()["status"] == "active"
            assert reconnected.json()["settings"] == settings  # reconnecting keeps the cleaning settings

            # 1 again: the platform now shows as connected, with its connection
            described = (await api.get(f"/v1/integrations/{slug}")).json()
            assert described["status"] == "connected" and [c["id"] for c in described["connections"]] == [connection["id"]]


async def test_sendinblue_is_brevo(make_api):
    """"the slug for brevo is brevo (not the old sendinblue)": the old slug still finds brevo."""
    with served("brevo") as platform:
        async with make_api(platforms=(platform,)) as api:
            old = await api.get("/v1/integrations/sendinblue")
            assert old.status_code == 200 and old.json()["type"] == "brevo"
            created = await api.post("/v1/integrations/sendinblue/connections", {"credentials": platform.form()})
            assert created.status_code == 201, created.text
            listed = (await api.get("/v1/integrations/brevo")).json()["connections"]
            assert [c["id"] for c in listed] == [created.json()["id"]]


async def test_the_other_outcomes_of_connect(make_api):
    """400 missing or malformed credentials, 402 out of credits, and the Idempotency-Key retry."""
    with served("klaviyo") as platform:
        async with make_api(platforms=(platform,), credits=0) as api:
            missing = await api.post("/v1/integrations/klaviyo/connections", {"name": "x"})
            assert missing.status_code == 400 and missing.json()["error"]["field"] == "credentials"
            empty = await api.post("/v1/integrations/klaviyo/connections", {"credentials": {}})
            assert empty.status_code == 400 and empty.json()["error"]["field"] == "credentials.api_key"
            broke = await api.post("/v1/integrations/klaviyo/connections", {"credentials": platform.form()})
            assert broke.status_code == 402 and broke.json()["error"]["code"] == "insufficient_credits"
            assert broke.json()["error"]["shortfall"] == 1
            await api.services.credits.grant("W1", 10)
            headers = {"Idempotency-Key": "retry-1"}
            first = await api.post("/v1/integrations/klaviyo/connections", {"credentials": platform.form()}, headers=headers)
            again = await api.post("/v1/integrations/klaviyo/connections", {"credentials": platform.form()}, headers=headers)
            assert first.status_code == again.status_code == 201 and first.json() == again.json()
            assert len((await api.get("/v1/integrations/klaviyo")).json()["connections"]) == 1
