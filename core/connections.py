"""Connections to email platforms: created only after the platform accepted the credentials.

    cnx = await services.connections.create("T1", "mailerlite", {"api_key": "..."}, name="Newsletter")
    lists = await services.connections.sync("T1", cnx.id)          # Sync Now
    connector = await services.connections.connector("T1", cnx.id)  # credentials decrypted here only
    await services.connections.update_settings("T1", cnx.id, aggressiveness="aggressive")
    await services.connections.disconnect("T1", cnx.id); await services.connections.reconnect("T1", cnx.id)

Credentials are sealed with the secret box before they are stored and opened only to build a
connector; no view, repr or error carries them. A connector built here saves refreshed OAuth
tokens by itself (`options["on_credentials_change"]`), and honours the connection's stored
base URL (an emulator, a region). Errors from the platform are the connector's own
(`core.connectors.errors`): `InvalidConfiguration.field` names the bad field, `InvalidCredentials`
means the platform said no.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.checks import ConnectionSettings, update_settings
from core.connectors import Connector, get_platform
from core.connectors.base import PlatformList, WebhookSecrets
from core.connectors.errors import ConnectorError
from core.storage.crypto import SecretBox
from core.storage.ids import new_id
from core.storage.models import Connection, SyncedList
from core.storage.sql import iso, utcnow
from core.workspaces import Workspaces

ACTIVE, DISCONNECTED = "active", "disconnected"


class UnknownPlatform(LookupError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"Listwarden has no platform called {slug!r}.")
        self.slug = slug


class ConnectionNotFound(LookupError):
    def __init__(self, connection_id: str) -> None:
        super().__init__(f"No connection {connection_id} in this workspace.")
        self.connection_id = connection_id


class ConnectionDisconnected(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"The connection {name!r} is disconnected; reconnect it first.")


@dataclass(frozen=True)
class ConnectionView:
    id: str
    workspace_id: str
    platform: str
    name: str
    status: str  # active | disconnected
    settings: ConnectionSettings
    auto_floss_enabled: bool
    created_at: datetime
    last_synced_at: datetime | None
    notice_channel: str | None
    account_id: str | None
    base_url: str | None
    last_error: str | None
    created_by: str | None
    webhook_id: str | None
    poll_cursor: datetime | None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def public(self) -> dict[str, Any]:
        """mailfloss's connection object (seed 001); credentials are deliberately not part of any view."""
        return {
            "id": self.id, "name": self.name, "status": self.status, "auto_floss_enabled": self.auto_floss_enabled,
            "created_at": iso(self.created_at), "last_synced_at": iso(self.last_synced_at),
            "settings": self.settings.to_json(),
        }


@dataclass(frozen=True)
class SyncedListView:
    id: str  # the platform's list id
    name: str
    kind: str
    subscriber_count: int | None
    synced_at: datetime | None


def _view(row: Connection) -> ConnectionView:
    return ConnectionView(
        id=row.id, workspace_id=row.workspace_id, platform=row.platform, name=row.name, status=row.status,  # type: ignore[attr-defined]
        settings=ConnectionSettings.from_json(row.settings), auto_floss_enabled=row.auto_floss_enabled,
        created_at=row.created_at, last_synced_at=row.last_synced_at, notice_channel=row.notice_channel,
        account_id=row.account_id, base_url=row.base_url, last_error=row.last_error, created_by=row.created_by,
        webhook_id=row.webhook_id, poll_cursor=row.poll_cursor,
    )


def _list_view(row: SyncedList) -> SyncedListView:
    return SyncedListView(row.list_id, row.name, row.kind, row.subscriber_count, row.synced_at)


class Connections:
    def __init__(self, box: SecretBox, workspaces: Workspaces, *, connector_options: Mapping[str, Any] | None = None) -> None:
        self.box = box
        self.workspaces = workspaces
        self.connector_options = dict(connector_options or {})  # tests lift emulators' rate limits here

    # --- platforms ----------------------------------------------------------------------------
    @staticmethod
    def platform(slug: str) -> type[Connector]:
        try:
            return get_platform(slug)
        except KeyError:
            raise UnknownPlatform(slug) from None

    def build_connector(self, platform: str, credentials: Mapping[str, str], *, base_url: str | None = None,
                        connection_id: str | None = None) -> Connector:
        """A connector for credentials typed in (before a connection exists) or for a stored connection."""
        cls = self.platform(platform)
        options: dict[str, Any] = dict(self.connector_options)
        if connection_id is not None:
            options["on_credentials_change"] = self._saver(connection_id)
        return cls(credentials, base_url=base_url, options=options)

    def _saver(self, connection_id: str):
        async def save(credentials: Mapping[str, str]) -> None:
            await Connection.filter(id=connection_id).update(credentials=self.box.seal(credentials))

        return save

    # --- create and read ---------------------------------------------------------------------
    async def create(self, workspace_id: str, platform: str, credentials: Mapping[str, str], *, name: str | None = None,
                     created_by: str | None = None, base_url: str | None = None,
                     settings: ConnectionSettings | None = None) -> ConnectionView:
        """Check the credentials live (account, then lists), then store them sealed with the lists synced."""
        cls = self.platform(platform)
        connector = self.build_connector(cls.slug, cls.validate_credentials(credentials), base_url=base_url)
        account = await connector.check_credentials()
        lists = await connector.lists()
        await self.workspaces.ensure(workspace_id)
        now = utcnow()
        row = await Connection.create(
            id=new_id("cnx"), workspace_id=workspace_id, platform=cls.slug, name=(name or "").strip() or cls.display_name,
            credentials=self.box.seal(connector.credentials), base_url=base_url, account_id=account.account_id,
            settings=(settings or ConnectionSettings()).to_json(), created_by=created_by, last_synced_at=now,
        )
        await self._store_lists(row.id, lists)
        return _view(row)

    async def list(self, workspace_id: str, platform: str | None = None, *, include_disconnected: bool = True) -> list[ConnectionView]:
        query = Connection.filter(workspace_id=workspace_id)
        if platform is not None:
            query = query.filter(platform=self.platform(platform).slug)
        if not include_disconnected:
            query = query.filter(status=ACTIVE)
        return [_view(row) for row in await query.order_by("created_at", "id")]

    async def get(self, workspace_id: str, connection_id: str) -> ConnectionView:
        return _view(await self._row(workspace_id, connection_id))

    async def find(self, connection_id: str) -> ConnectionView | None:
        """Any workspace's connection by id (webhook URLs carry only the id)."""
        row = await Connection.filter(id=connection_id).first()
        return None if row is None else _view(row)

    async def name_taken(self, workspace_id: str, name: str) -> bool:
        names = await Connection.filter(workspace_id=workspace_id, status=ACTIVE).values_list("name", flat=True)
        return name.strip().casefold() in {n.casefold() for n in names}

    async def _row(self, workspace_id: str, connection_id: str) -> Connection:
        row = await Connection.filter(id=connection_id, workspace_id=workspace_id).first()
        if row is None:
            raise ConnectionNotFound(connection_id)
        return row

    # --- the connector --------------------------------------------------------------------------
    async def connector(self, workspace_id: str, connection_id: str, *, allow_disconnected: bool = False) -> Connector:
        return self._connector_for(await self._row(workspace_id, connection_id), allow_disconnected)

    async def connector_by_id(self, connection_id: str, *, allow_disconnected: bool = False) -> Connector:
        row = await Connection.filter(id=connection_id).first()
        if row is None:
            raise ConnectionNotFound(connection_id)
        return self._connector_for(row, allow_disconnected)

    def _connector_for(self, row: Connection, allow_disconnected: bool) -> Connector:
        if row.status != ACTIVE and not allow_disconnected:
            raise ConnectionDisconnected(row.name)
        return self.build_connector(row.platform, self.box.open(row.credentials), base_url=row.base_url, connection_id=row.id)

    # --- lists -------------------------------------------------------------------------------------
    async def sync(self, workspace_id: str, connection_id: str) -> list[SyncedListView]:
        """Sync Now: fresh lists and counts from the platform; a platform error is recorded and raised."""
        connector = await self.connector(workspace_id, connection_id)
        try:
            lists = await connector.lists()
        except ConnectorError as err:
            await Connection.filter(id=connection_id).update(last_error=str(err))
            raise
        await self._store_lists(connection_id, lists)
        await Connection.filter(id=connection_id).update(last_synced_at=utcnow(), last_error=None)
        return await self.lists(workspace_id, connection_id)

    async def lists(self, workspace_id: str, connection_id: str) -> list[SyncedListView]:
        await self._row(workspace_id, connection_id)
        rows = await SyncedList.filter(connection_id=connection_id).order_by("position", "id")
        return [_list_view(row) for row in rows]

    async def synced_list(self, connection_id: str, list_id: str) -> SyncedListView | None:
        row = await SyncedList.filter(connection_id=connection_id, list_id=list_id).first()
        return None if row is None else _list_view(row)

    async def _store_lists(self, connection_id: str, lists: list[PlatformList]) -> None:
        seen = []
        for position, item in enumerate(lists):
            seen.append(item.id)
            values = {"name": item.name, "kind": str(item.kind), "subscriber_count": item.subscriber_count, "position": position}
            updated = await SyncedList.filter(connection_id=connection_id, list_id=item.id).update(**values, synced_at=utcnow())
            if not updated:
                await SyncedList.create(connection_id=connection_id, list_id=item.id, **values)
        await SyncedList.filter(connection_id=connection_id).exclude(list_id__in=seen).delete()

    # --- settings and status --------------------------------------------------------------------
    async def update_settings(self, workspace_id: str, connection_id: str, *, verify_first: bool | None = None,
                              aggressiveness: str | None = None, checks: Mapping[str, Any] | None = None) -> ConnectionView:
        """mailfloss's PATCH rules (core.checks.update_settings); raises SettingsError."""
        row = await self._row(workspace_id, connection_id)
        updated = update_settings(ConnectionSettings.from_json(row.settings), verify_first=verify_first,
                                  aggressiveness=aggressiveness, checks=checks)
        row.settings = updated.to_json()
        await row.save(update_fields=["settings"])
        return _view(row)

    async def set_auto_floss(self, workspace_id: str, connection_id: str, enabled: bool) -> ConnectionView:
        row = await self._row(workspace_id, connection_id)
        row.auto_floss_enabled = enabled
        await row.save(update_fields=["auto_floss_enabled"])
        return _view(row)

    async def rename(self, workspace_id: str, connection_id: str, name: str) -> ConnectionView:
        row = await self._row(workspace_id, connection_id)
        row.name = name.strip() or row.name
        await row.save(update_fields=["name"])
        return _view(row)

    async def set_notice_channel(self, workspace_id: str, connection_id: str, channel: str | None) -> ConnectionView:
        row = await self._row(workspace_id, connection_id)
        row.notice_channel = channel or None
        await row.save(update_fields=["notice_channel"])
        return _view(row)

    async def disconnect(self, workspace_id: str, connection_id: str) -> ConnectionView:
        """Automatic cleaning stops; the record (and its sealed credentials, for reconnect) stays."""
        row = await self._row(workspace_id, connection_id)
        row.status = DISCONNECTED
        await row.save(update_fields=["status"])
        return _view(row)

    async def reconnect(self, workspace_id: str, connection_id: str,
                        credentials: Mapping[str, str] | None = None) -> ConnectionView:
        """Check the stored (or new) credentials live again, then mark the connection active."""
        row = await self._row(workspace_id, connection_id)
        cls = self.platform(row.platform)
        creds = cls.validate_credentials(credentials) if credentials is not None else self.box.open(row.credentials)
        connector = self.build_connector(row.platform, creds, base_url=row.base_url, connection_id=row.id)
        account = await connector.check_credentials()
        lists = await connector.lists()
        row.credentials = self.box.seal(connector.credentials)
        row.status, row.last_error, row.last_synced_at = ACTIVE, None, utcnow()
        row.account_id = account.account_id or row.account_id
        await row.save(update_fields=["credentials", "status", "last_error", "last_synced_at", "account_id"])
        await self._store_lists(row.id, lists)
        return _view(row)

    async def update_credentials(self, workspace_id: str, connection_id: str, credentials: Mapping[str, str]) -> ConnectionView:
        return await self.reconnect(workspace_id, connection_id, credentials)

    # --- verify-first plumbing (issue 6) -----------------------------------------------------
    async def webhook_secrets(self, connection_id: str) -> WebhookSecrets:
        row = await Connection.filter(id=connection_id).first()
        if row is None or not row.webhook_secrets:
            return WebhookSecrets()
        data = self.box.open(row.webhook_secrets)
        return WebhookSecrets(url_token=data.get("url_token"), signing_secret=data.get("signing_secret"))

    async def set_webhook(self, connection_id: str, secrets: WebhookSecrets | None, webhook_id: str | None) -> None:
        sealed = None if secrets is None else self.box.seal(
            {"url_token": secrets.url_token, "signing_secret": secrets.signing_secret})
        await Connection.filter(id=connection_id).update(webhook_secrets=sealed, webhook_id=webhook_id)

    async def set_poll_cursor(self, connection_id: str, cursor: datetime) -> None:
        await Connection.filter(id=connection_id).update(poll_cursor=cursor)

    async def verify_first_connections(self) -> list[ConnectionView]:
        """Every active connection with verify-first on (for the polling fallback and webhook registration)."""
        rows = await Connection.filter(status=ACTIVE).order_by("id")
        return [view for view in map(_view, rows) if view.settings.verify_first]

    # --- key rotation ----------------------------------------------------------------------------
    async def reseal_all(self) -> int:
        """Re-encrypt every stored secret with the newest key (`listwarden db rotate-secrets`)."""
        count = 0
        for row in await Connection.all():
            row.credentials = self.box.rotate(row.credentials)
            fields = ["credentials"]
            if row.webhook_secrets:
                row.webhook_secrets = self.box.rotate(row.webhook_secrets)
                fields.append("webhook_secrets")
            await row.save(update_fields=fields)
            count += 1
        return count
