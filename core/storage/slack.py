"""Bolt's installation and OAuth-state stores on our tables, with every token sealed at rest.

A 1:1 mapping of slack_sdk's AsyncSQLAlchemyInstallationStore semantics: `save` keeps a row per
install (history), finds take the latest by installed_at, `find_bot` wants a bot token, an
org-wide install is looked up with team_id None, and `find_installation(user_id=...)` takes its
bot fields from the latest bot row (bolt-python#664). OAuth states are single-use with expiry.

    installation_store, state_store = TortoiseInstallationStore(settings), TortoiseOAuthStateStore(settings)
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from core.settings import Settings
from core.storage.crypto import SecretBox, load_box
from core.storage.models import SlackBot, SlackInstallation, SlackOAuthState
from core.storage.sql import utcnow

log = logging.getLogger(__name__)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), tz=UTC)


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _scopes(value: Any) -> str:
    return ",".join(value) if isinstance(value, (list, tuple)) else (value or "")


class TortoiseInstallationStore(AsyncInstallationStore):
    def __init__(self, settings: Settings, *, box: SecretBox | None = None, client_id: str | None = None) -> None:
        self.box = box or load_box(settings)
        self.client_id = client_id if client_id is not None else settings.slack_client_id
        self._logger = log

    @property
    def logger(self) -> Logger:
        return self._logger

    def __repr__(self) -> str:
        return "<TortoiseInstallationStore>"

    async def async_save(self, installation: Installation) -> None:
        i = installation
        values = dict(
            app_id=i.app_id, enterprise_name=i.enterprise_name, enterprise_url=i.enterprise_url, team_name=i.team_name,
            bot_id=i.bot_id, bot_user_id=i.bot_user_id, bot_scopes=_scopes(i.bot_scopes),
            bot_token_expires_at=_when(i.bot_token_expires_at), user_scopes=_scopes(i.user_scopes),
            user_token_expires_at=_when(i.user_token_expires_at), incoming_webhook_channel=i.incoming_webhook_channel,
            incoming_webhook_channel_id=i.incoming_webhook_channel_id,
            incoming_webhook_configuration_url=i.incoming_webhook_configuration_url,
            is_enterprise_install=bool(i.is_enterprise_install), token_type=i.token_type,
            secrets=self.box.seal({"bot_token": i.bot_token, "bot_refresh_token": i.bot_refresh_token,
                                   "user_token": i.user_token, "user_refresh_token": i.user_refresh_token,
                                   "incoming_webhook_url": i.incoming_webhook_url}),
        )
        key = dict(client_id=self.client_id, enterprise_id=i.enterprise_id, team_id=i.team_id, user_id=i.user_id,
                   installed_at=_when(i.installed_at))
        if not await SlackInstallation.filter(**key).update(**values):
            await SlackInstallation.create(**key, **values)
        if i.bot_token is not None:
            await self.async_save_bot(i.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        values = dict(
            app_id=bot.app_id, enterprise_name=bot.enterprise_name, team_name=bot.team_name, bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id, bot_scopes=_scopes(bot.bot_scopes),
            bot_token_expires_at=_when(bot.bot_token_expires_at), is_enterprise_install=bool(bot.is_enterprise_install),
            secrets=self.box.seal({"bot_token": bot.bot_token, "bot_refresh_token": bot.bot_refresh_token}),
        )
        key = dict(client_id=self.client_id, enterprise_id=bot.enterprise_id, team_id=bot.team_id,
                   installed_at=_when(bot.installed_at))
        if not await SlackBot.filter(**key).update(**values):
            await SlackBot.create(**key, **values)

    @staticmethod
    def _team(team_id: str | None, is_enterprise_install: bool | None) -> str | None:
        return None if is_enterprise_install or team_id is None else team_id

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        rows = await SlackBot.filter(client_id=self.client_id, enterprise_id=enterprise_id,
                                     team_id=self._team(team_id, is_enterprise_install)).order_by("-installed_at", "-id")
        for row in rows:
            tokens = self.box.open(row.secrets)
            if tokens.get("bot_token"):
                return Bot(app_id=row.app_id, enterprise_id=row.enterprise_id, enterprise_name=row.enterprise_name,
                           team_id=row.team_id, team_name=row.team_name, bot_token=tokens["bot_token"], bot_id=row.bot_id,
                           bot_user_id=row.bot_user_id, bot_scopes=row.bot_scopes or "",
                           bot_refresh_token=tokens.get("bot_refresh_token"),
                           bot_token_expires_at=_epoch(row.bot_token_expires_at),
                           is_enterprise_install=row.is_enterprise_install, installed_at=row.installed_at.timestamp())
        return None

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        query = SlackInstallation.filter(client_id=self.client_id, enterprise_id=enterprise_id,
                                         team_id=self._team(team_id, is_enterprise_install))
        if user_id is not None:
            query = query.filter(user_id=user_id)
        row = await query.order_by("-installed_at", "-id").first()
        if row is None:
            return None
        tokens = self.box.open(row.secrets)
        installation = Installation(
            app_id=row.app_id, enterprise_id=row.enterprise_id, enterprise_name=row.enterprise_name,
            enterprise_url=row.enterprise_url, team_id=row.team_id, team_name=row.team_name,
            bot_token=tokens.get("bot_token"), bot_id=row.bot_id, bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes or "", bot_refresh_token=tokens.get("bot_refresh_token"),
            bot_token_expires_at=_epoch(row.bot_token_expires_at), user_id=row.user_id,
            user_token=tokens.get("user_token"), user_scopes=row.user_scopes or "",
            user_refresh_token=tokens.get("user_refresh_token"), user_token_expires_at=_epoch(row.user_token_expires_at),
            incoming_webhook_url=tokens.get("incoming_webhook_url"), incoming_webhook_channel=row.incoming_webhook_channel,
            incoming_webhook_channel_id=row.incoming_webhook_channel_id,
            incoming_webhook_configuration_url=row.incoming_webhook_configuration_url,
            is_enterprise_install=row.is_enterprise_install, token_type=row.token_type,
            installed_at=row.installed_at.timestamp(),
        )
        if user_id is not None or installation.bot_token is None:  # the latest bot token wins (bolt-python#664)
            bot = await self.async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                            is_enterprise_install=is_enterprise_install)
            if bot is not None and bot.bot_token != installation.bot_token:
                installation.bot_id, installation.bot_user_id = bot.bot_id, bot.bot_user_id
                installation.bot_token, installation.bot_scopes = bot.bot_token, bot.bot_scopes
                installation.bot_refresh_token = bot.bot_refresh_token
                installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await SlackBot.filter(client_id=self.client_id, enterprise_id=enterprise_id, team_id=team_id).delete()

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        query = SlackInstallation.filter(client_id=self.client_id, enterprise_id=enterprise_id, team_id=team_id)
        if user_id is not None:
            query = query.filter(user_id=user_id)
        await query.delete()


class TortoiseOAuthStateStore(AsyncOAuthStateStore):
    def __init__(self, settings: Settings | None = None, *, expiration_seconds: int = 600) -> None:
        self.expiration_seconds = expiration_seconds
        self._logger = log

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        await SlackOAuthState.create(state=state, expires_at=utcnow() + timedelta(seconds=self.expiration_seconds))
        return state

    async def async_consume(self, state: str) -> bool:
        row = await SlackOAuthState.filter(state=state).first()
        deleted = await SlackOAuthState.filter(state=state).delete()
        return bool(row is not None and deleted and row.expires_at > utcnow())
