"""A connection is stored only after the platform accepted its credentials (account and lists),
sealed so that the database never holds them in the clear; its connector refreshes and re-seals
tokens itself; settings follow mailfloss's rules; disconnect keeps the record for reconnect."""

from __future__ import annotations

import pytest

from core.checks import SettingsError
from core.connections import ConnectionDisconnected, ConnectionNotFound, UnknownPlatform
from core.connectors.errors import InvalidConfiguration, InvalidCredentials
from core.services import Services
from core.storage.models import Connection, SyncedList
from tests.emulators import mailerlite
from tests.services.emulated import NO_RATE_LIMIT, served


@pytest.fixture(scope="module")
def platform():
    with served(mailerlite, members=30) as pair:
        yield pair


@pytest.fixture
def svc(services: Services) -> Services:
    services.connections.connector_options = dict(NO_RATE_LIMIT)
    return services


async def test_create_checks_live_stores_sealed_and_syncs_lists(svc: Services, platform) -> None:
    emulator, server = platform
    creds = emulator.credentials(server.url)
    cnx = await svc.connections.create("T1", "mailerlite", creds, name="Newsletter", base_url=server.url, created_by="U1")
    assert cnx.name == "Newsletter" and cnx.status == "active" and cnx.last_synced_at is not None
    row = await Connection.get(id=cnx.id)
    assert creds["api_key"] not in row.credentials  # sealed
    assert svc.box.open(row.credentials)["api_key"] == creds["api_key"]
    lists = await svc.connections.lists("T1", cnx.id)
    assert [(l.id, l.subscriber_count) for l in lists][:1] == [(emulator.list_id, 30)]
    public = cnx.public()
    assert set(public) == {"id", "name", "status", "auto_floss_enabled", "created_at", "last_synced_at", "settings"}
    assert public["settings"] == {"verify_first": False, "aggressiveness": "normal",
                                  "checks": {"nonexistent": True, "disposable": True, "catch_all": False,
                                             "unknown": False, "risky": False}}
    assert creds["api_key"] not in repr(cnx) and creds["api_key"] not in str(public)


async def test_bad_credentials_store_nothing(svc: Services, platform) -> None:
    emulator, server = platform
    with pytest.raises(InvalidCredentials):
        await svc.connections.create("T1", "mailerlite", emulator.bad_credentials(server.url), base_url=server.url)
    with pytest.raises(InvalidConfiguration) as err:
        await svc.connections.create("T1", "mailerlite", {"api_key": ""}, base_url=server.url)
    assert err.value.field == "api_key"
    with pytest.raises(UnknownPlatform):
        await svc.connections.create("T1", "nope", {})
    assert await Connection.all().count() == 0


async def test_name_defaults_to_the_platform_and_names_are_per_workspace(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    assert cnx.name == "MailerLite"
    assert await svc.connections.name_taken("T1", "mailerlite") and not await svc.connections.name_taken("T2", "MailerLite")
    assert [c.id for c in await svc.connections.list("T1", "mailerlite")] == [cnx.id]
    assert await svc.connections.list("T2") == []
    with pytest.raises(ConnectionNotFound):
        await svc.connections.get("T2", cnx.id)


async def test_sync_now_refreshes_counts(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    await SyncedList.filter(connection_id=cnx.id).update(subscriber_count=1)
    lists = await svc.connections.sync("T1", cnx.id)
    assert lists[0].subscriber_count == 30
    assert (await svc.connections.get("T1", cnx.id)).last_synced_at >= cnx.last_synced_at


async def test_the_connector_uses_the_stored_base_url_and_reseals_refreshed_tokens(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    connector = await svc.connections.connector("T1", cnx.id)
    assert connector.base_url == server.url
    assert len([c async for c in connector.members(emulator.list_id)]) == 30
    refreshed = dict(connector.credentials, access_token="new-token-123")
    await connector.options["on_credentials_change"](refreshed)
    row = await Connection.get(id=cnx.id)
    assert "new-token-123" not in row.credentials and svc.box.open(row.credentials)["access_token"] == "new-token-123"


async def test_settings_follow_the_integrations_api_rules(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    updated = await svc.connections.update_settings("T1", cnx.id, verify_first=True, aggressiveness="aggressive")
    assert updated.settings.verify_first and all(updated.settings.checks.values())
    updated = await svc.connections.update_settings("T1", cnx.id, checks={"catch_all": False})
    assert updated.settings.aggressiveness == "custom" and updated.settings.checks["catch_all"] is False
    with pytest.raises(SettingsError):
        await svc.connections.update_settings("T1", cnx.id, aggressiveness="normal", checks={"risky": True})
    with pytest.raises(SettingsError):
        await svc.connections.update_settings("T1", cnx.id)
    with pytest.raises(SettingsError) as err:
        await svc.connections.update_settings("T1", cnx.id, checks={"bogus": True})
    assert err.value.field == "checks"
    normal = await svc.connections.update_settings("T1", cnx.id, aggressiveness="normal")
    assert normal.public()["settings"]["checks"]["nonexistent"] is True and normal.settings.checks["risky"] is False


async def test_disconnect_keeps_the_record_and_reconnect_checks_again(svc: Services, platform) -> None:
    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    assert (await svc.connections.disconnect("T1", cnx.id)).status == "disconnected"
    with pytest.raises(ConnectionDisconnected):
        await svc.connections.connector("T1", cnx.id)
    assert [c.status for c in await svc.connections.list("T1")] == ["disconnected"]
    assert await svc.connections.list("T1", include_disconnected=False) == []
    assert (await svc.connections.reconnect("T1", cnx.id)).status == "active"
    with pytest.raises(InvalidCredentials):
        await svc.connections.reconnect("T1", cnx.id, emulator.bad_credentials(server.url))
    assert (await svc.connections.get("T1", cnx.id)).status == "active"  # a failed reconnect changes nothing


async def test_notice_channel_and_webhook_secrets(svc: Services, platform) -> None:
    from core.connectors.base import WebhookSecrets

    emulator, server = platform
    cnx = await svc.connections.create("T1", "mailerlite", emulator.credentials(server.url), base_url=server.url)
    assert (await svc.connections.set_notice_channel("T1", cnx.id, "C123")).notice_channel == "C123"
    await svc.connections.set_webhook(cnx.id, WebhookSecrets(signing_secret="whsec-1"), webhook_id="70000001")
    assert (await svc.connections.webhook_secrets(cnx.id)).signing_secret == "whsec-1"
    row = await Connection.get(id=cnx.id)
    assert "whsec-1" not in (row.webhook_secrets or "") and row.webhook_id == "70000001"
    assert (await svc.connections.find(cnx.id)).id == cnx.id
    assert await svc.connections.reseal_all() == 1
    assert (await svc.connections.webhook_secrets(cnx.id)).signing_secret == "whsec-1"
