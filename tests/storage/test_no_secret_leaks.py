"""No repr, log line or error message ever shows a credential. Secrets are planted in every
place a credential passes through (connect, a failed connect, the connector, Slack tokens, API
keys) with DEBUG logging on for everything, including tortoise's SQL log; then the captured log,
the reprs and the error messages are searched for them."""

from __future__ import annotations

import logging

import pytest

from core.connectors.errors import ConnectorError
from core.services import Services
from core.storage.slack import TortoiseInstallationStore
from tests.emulators import mailerlite
from tests.services.emulated import NO_RATE_LIMIT, served
from tests.storage.fixtures import TEST_KEY, test_settings

PLANTED_BAD = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.planted-wrong-secret-9876"


async def test_planted_secrets_never_appear_in_logs_reprs_or_errors(services: Services, database, caplog) -> None:
    from slack_sdk.oauth.installation_store.models.installation import Installation

    services.connections.connector_options = dict(NO_RATE_LIMIT)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with served(mailerlite, members=5) as (emulator, server):
        good = emulator.credentials(server.url)["api_key"]
        cnx = await services.connections.create("T1", "mailerlite", {"api_key": good}, base_url=server.url)
        connector = await services.connections.connector("T1", cnx.id)
        seen += [repr(cnx), str(cnx), repr(connector), repr(services), repr(services.box), str(cnx.public())]
        [c async for c in connector.members(emulator.list_id)]
        with pytest.raises(ConnectorError) as err:
            await services.connections.create("T1", "mailerlite", {"api_key": PLANTED_BAD}, base_url=server.url)
        seen += [str(err.value), repr(err.value)]
    plaintext, key = await services.api_keys.create("T1", name="leak test")
    seen += [repr(key), str(key)]
    store = TortoiseInstallationStore(test_settings(database), box=services.box, client_id="C1")
    await store.async_save(Installation(team_id="T1", bot_token="xoxb-planted-bot-token", bot_id="B", bot_user_id="UB",
                                        user_id="U1", user_token="xoxp-planted-user-token"))
    seen.append(repr(store))
    text = caplog.text + "\n".join(seen)
    for secret in (good, PLANTED_BAD, plaintext, "xoxb-planted-bot-token", "xoxp-planted-user-token", TEST_KEY):
        assert secret not in text, f"a planted secret leaked: {secret[:8]}..."
    assert "SELECT" in caplog.text or "INSERT" in caplog.text  # the SQL log was on: the check saw the values
