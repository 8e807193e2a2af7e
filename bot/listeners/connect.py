"""Connecting platforms from Slack: /listwarden connect, the "Connect a platform" buttons, reconnecting.

The modal is rendered from the chosen connector's `credential_fields`; on submit the core checks
the credentials live against the platform (`connections.create` / `reconnect`) and a refusal
comes back as an inline field error (`response_action: errors`), never as a crash.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.acking import after_ack
from bot.blocks.connect import CALLBACK_ID, FIELD_PREFIX, NAME_BLOCK, PLATFORM_ACTION, connect_view, submitted_fields
from bot.services import BotServices
from core.connections import ConnectionNotFound
from core.connectors.errors import ConnectorError, InvalidConfiguration

log = logging.getLogger(__name__)
CHECK_SECONDS = 2.4  # a view_submission must be answered within 3 s, errors included


async def open_credentials_form(services: BotServices, client, trigger_id: str, team_id: str, connection_id: str,
                                *, note: str | None = None) -> None:
    """The connect modal for an existing connection: same platform and name, new credentials."""
    try:
        connection = await services.core.connections.get(team_id, connection_id)
    except ConnectionNotFound:
        return
    await client.views_open(trigger_id=trigger_id, view=connect_view(
        services.platforms(), selected=connection.platform, note=note,
        metadata={"reconnect": connection.id, "name": connection.name}))


def register(app: AsyncApp, services: BotServices) -> None:
    connections = services.core.connections

    def view_for(team_id: str, user_id: str, channel: str | None, slug: str | None = None) -> dict[str, Any]:
        oauth = services.oauth_start_url(slug, team_id=team_id, user_id=user_id) if slug else None
        return connect_view(services.platforms(), selected=slug, metadata={"channel": channel}, oauth_url=oauth)

    async def connect_subcommand(*, ack, command, client, **_: Any) -> None:
        await ack()
        await client.views_open(trigger_id=command["trigger_id"],
                                view=view_for(command["team_id"], command["user_id"], command.get("channel_id")))

    services.subcommands["connect"] = connect_subcommand

    @app.action("home_connect")
    @app.action("clean_connect")
    @after_ack(services.tasks, services.answers)
    async def connect_button(ack, body, client) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id")
        if not channel and body.get("view", {}).get("type") == "modal":
            channel = json.loads(body["view"].get("private_metadata") or "{}").get("channel")
        view = view_for(body["team"]["id"], body["user"]["id"], channel)
        if body.get("view", {}).get("type") == "modal":  # from inside /clean-list: stack it on top
            await client.views_push(trigger_id=body["trigger_id"], view=view)
        else:
            await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(PLATFORM_ACTION)
    @after_ack(services.tasks, services.answers)
    async def platform_picked(ack, body, client) -> None:
        await ack()
        view = body["view"]
        slug = body["actions"][0]["selected_option"]["value"]
        metadata = json.loads(view.get("private_metadata") or "{}")
        oauth = services.oauth_start_url(slug, team_id=body["team"]["id"], user_id=body["user"]["id"])
        await client.views_update(view_id=view["id"], hash=view.get("hash"),
                                  view=connect_view(services.platforms(), selected=slug, metadata=metadata, oauth_url=oauth))

    @app.view(CALLBACK_ID)
    @after_ack(services.tasks, services.answers)
    async def connect_submitted(ack, body, view, client) -> None:
        metadata = json.loads(view.get("private_metadata") or "{}")
        slug = metadata.get("platform")
        platforms = services.platforms()
        if slug not in platforms:
            await ack(response_action="errors", errors={"platform": "Choose a platform."})
            return
        cls = platforms[slug]
        credentials, name = submitted_fields(view["state"]["values"])
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        reconnect = metadata.get("reconnect")
        if not reconnect and not name:
            await ack(response_action="errors", errors={NAME_BLOCK: "Give this connection a name."})
            return
        if not reconnect and await connections.name_taken(team_id, name):
            await ack(response_action="errors", errors={NAME_BLOCK: f"You already have a connection named “{name}”."})
            return
        first_field = FIELD_PREFIX + cls.credential_fields[0].name if cls.credential_fields else NAME_BLOCK
        try:
            if reconnect:
                saved = connections.reconnect(team_id, reconnect, credentials)
            else:
                saved = connections.create(team_id, slug, credentials, name=name, created_by=user_id,
                                           base_url=services.platform_base_url(slug))
            connection = await asyncio.wait_for(saved, CHECK_SECONDS)
        except InvalidConfiguration as err:
            field = FIELD_PREFIX + err.field if err.field and any(f.name == err.field for f in cls.credential_fields) else first_field
            await ack(response_action="errors", errors={field: str(err)})
            return
        except ConnectorError as err:  # the platform refused the key, or could not be reached
            await ack(response_action="errors", errors={first_field: str(err) or f"{cls.display_name} refused this key."})
            return
        except TimeoutError:
            await ack(response_action="errors", errors={
                first_field: f"{cls.display_name} did not answer in time. Try again in a moment."})
            return
        except ConnectionNotFound:
            await ack(response_action="errors", errors={first_field: "This connection was removed meanwhile."})
            return
        await ack()
        channel = metadata.get("channel")
        if channel:
            verb = "Updated the credentials of" if reconnect else "Connected"
            await client.chat_postEphemeral(channel=channel, user=user_id, text=(
                f":white_check_mark: {verb} *{connection.name}* ({cls.display_name}). Run `/clean-list` to clean one of its lists."))
        from bot.listeners.home import publish

        await publish(services, client, team_id, user_id)
