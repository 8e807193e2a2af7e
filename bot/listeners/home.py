"""App Home: what is connected, what ran, what is left; and each connection's menu.

Sync Now, the verify-first toggle, disconnect and reconnect are the core's connection calls
(`services.connections`); the webhooks engineer hooks webhook registration onto
`update_settings(verify_first=...)` in the core, so the toggle here is all Slack does.
"""

from __future__ import annotations

import asyncio
import logging
import re

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.acking import after_ack
from bot.blocks.home import CONNECTION_MENU, NOTICE_CHANNEL_VIEW, JobLine, home_view, notice_channel_view
from bot.listeners.connect import open_credentials_form
from bot.roles import can_administer
from bot.services import BotServices
from core.connections import ConnectionNotFound
from core.connectors.errors import ConnectorError

log = logging.getLogger(__name__)
RECENT_JOBS = 5
RECONNECT_SECONDS = 2.0  # the trigger_id for the fallback form lives 3 s


async def job_lines(services: BotServices, client, team_id: str) -> list[JobLine]:
    lines = []
    for job in await services.jobs.list(team_id, limit=RECENT_JOBS):
        slack = dict(job.notify.get("slack") or {})
        link = None
        if slack.get("channel") and slack.get("ts"):
            try:
                link = (await client.chat_getPermalink(channel=slack["channel"], message_ts=slack["ts"])).get("permalink")
            except SlackApiError:
                link = None
        lines.append(JobLine(job, job.list_name or str(job.params.get("filename") or "addresses"), link))
    return lines


async def publish(services: BotServices, client, team_id: str, user_id: str) -> None:
    core = services.core
    view = home_view(connections=await core.connections.list(team_id), jobs=await job_lines(services, client, team_id),
                     balance=await core.credits.balance(team_id), metered=core.credits.metered,
                     is_admin=await can_administer(core.workspaces, client, team_id, user_id))
    await client.views_publish(user_id=user_id, view=view)


def register(app: AsyncApp, services: BotServices) -> None:
    connections = services.core.connections

    @app.event("app_home_opened")
    @after_ack(services.tasks, services.answers)
    async def app_home_opened(event, client, context) -> None:
        if event.get("tab", "home") == "home":
            await publish(services, client, context["team_id"], event["user"])

    @app.view(NOTICE_CHANNEL_VIEW)
    @after_ack(services.tasks, services.answers)
    async def notice_channel_chosen(ack, body, view, client) -> None:
        await ack()
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        channel = view["state"]["values"].get("channel", {}).get("channel", {}).get("selected_conversation")
        try:
            await connections.set_notice_channel(team_id, view["private_metadata"], channel)
        except ConnectionNotFound:
            pass  # disconnected and removed meanwhile: the Home tab shows what is there
        await publish(services, client, team_id, user_id)

    @app.action(re.compile(f"^{CONNECTION_MENU}(:.+)?$"))
    @after_ack(services.tasks, services.answers)
    async def connection_menu(ack, body, client) -> None:
        await ack()
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        action, _, connection_id = body["actions"][0]["selected_option"]["value"].partition(":")
        try:
            if action == "credentials":
                await open_credentials_form(services, client, body["trigger_id"], team_id, connection_id)
                return
            if action == "reconnect":
                try:
                    await asyncio.wait_for(connections.reconnect(team_id, connection_id), RECONNECT_SECONDS)
                except (ConnectorError, TimeoutError) as err:
                    reason = str(err) if isinstance(err, ConnectorError) else "the platform did not answer in time"
                    await open_credentials_form(services, client, body["trigger_id"], team_id, connection_id,
                                                note=f":warning: Reconnecting with the stored credentials failed: {reason} "
                                                     "Enter new ones to reconnect.")
                    return
            elif action == "sync":
                try:
                    await connections.sync(team_id, connection_id)
                except ConnectorError:
                    pass  # recorded as the connection's last_error, shown on the Home tab
            elif action == "verify_first":
                current = await connections.get(team_id, connection_id)
                await connections.update_settings(team_id, connection_id, verify_first=not current.settings.verify_first)
            elif action == "notices":
                current = await connections.get(team_id, connection_id)
                await client.views_open(trigger_id=body["trigger_id"], view=notice_channel_view(current))
                return
            elif action == "disconnect":
                await connections.disconnect(team_id, connection_id)
        except ConnectionNotFound:
            pass  # a stale Home tab: republishing shows what is there now
        await publish(services, client, team_id, user_id)
