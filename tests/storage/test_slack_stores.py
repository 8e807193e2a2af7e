"""Bolt's stores on our tables: the latest installation wins, the bot token of the latest bot row
is used (bolt-python#664), every token is sealed at rest, and OAuth states work once."""

from __future__ import annotations

import time

from slack_sdk.oauth.installation_store.models.installation import Installation

from core.services import Services
from core.storage.models import SlackBot, SlackInstallation
from core.storage.slack import TortoiseInstallationStore, TortoiseOAuthStateStore
from tests.storage.fixtures import test_settings


def _installation(bot_token: str, user_id: str = "U1", installed_at: float | None = None) -> Installation:
    return Installation(app_id="A1", team_id="T1", team_name="Acme", bot_token=bot_token, bot_id="B1", bot_user_id="UB1",
                        bot_scopes=["commands", "chat:write"], user_id=user_id, user_token="xoxp-user-secret",
                        installed_at=installed_at or time.time())


async def test_save_and_find_with_tokens_sealed(services: Services, database) -> None:
    store = TortoiseInstallationStore(test_settings(database), box=services.box, client_id="C1")
    await store.async_save(_installation("xoxb-first-secret", installed_at=time.time() - 60))
    await store.async_save(_installation("xoxb-second-secret", user_id="U2"))
    found = await store.async_find_installation(enterprise_id=None, team_id="T1")
    assert found.bot_token == "xoxb-second-secret" and found.user_id == "U2"
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot.bot_token == "xoxb-second-secret" and bot.bot_scopes == ["commands", "chat:write"]
    older = await store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert older.user_id == "U1" and older.bot_token == "xoxb-second-secret"  # the latest bot token wins
    for rows in (await SlackInstallation.all().values(), await SlackBot.all().values()):
        assert "-secret" not in str(rows) and "xoxb" not in str(rows)
    await store.async_delete_all(enterprise_id=None, team_id="T1")
    assert await store.async_find_installation(enterprise_id=None, team_id="T1") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None


async def test_oauth_states_are_single_use_and_expire(services: Services) -> None:
    store = TortoiseOAuthStateStore()
    state = await store.async_issue()
    assert await store.async_consume(state) is True
    assert await store.async_consume(state) is False
    short = TortoiseOAuthStateStore(expiration_seconds=-1)
    assert await short.async_consume(await short.async_issue()) is False
