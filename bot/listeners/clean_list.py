"""/clean-list: the modal (connection, list, mode, rules) and, on submit, the core's cleanup job.

Lists come from the connection's synced lists in the core (Sync Now refreshes them), so the
search answers at once; a connection never synced is synced on first use. On submit everything
that can be refused is checked before the modal closes, so a refusal is an inline error: the
platform's limits (`check_policy`, e.g. Delete on ConvertKit), the credits for the list's size,
and whether the bot may post in the channel. Then the progress message is posted and the job
started with that message in its `notify`; `bot.job_messages` keeps it up to date.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.acking import after_ack
from bot.blocks import clean_list as ui
from bot.blocks.limits import truncate
from bot.blocks.progress import progress_blocks
from bot.job_messages import slack_notify
from bot.services import BotServices
from core.cleanup import CleanupRuleRefused, Policy, check_policy
from core.connections import ConnectionDisconnected, ConnectionNotFound, ConnectionView
from core.connectors.errors import ConnectorError
from core.credits import InsufficientCredits

log = logging.getLogger(__name__)
SYNC_SECONDS = 2.3  # block_suggestion must be answered within 3 s
NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")


def estimate_line(count: int | None, balance: int, metered: bool) -> str:
    """The context line under the list: one credit per contact, refunds for unknown results."""
    left = f" · balance {balance:,}" if metered else ""
    if count is None:
        return f"Cost: one credit per unique address (counted as the list is read){left}"
    line = f"Estimated cost: *{count:,} credits* (unknown results are refunded){left}"
    if metered and balance < count:
        line += " · :warning: not enough credits for the whole list"
    return line


def register(app: AsyncApp, services: BotServices) -> None:
    core = services.core

    async def active(team_id: str) -> list[ConnectionView]:
        return await core.connections.list(team_id, include_disconnected=False)

    async def choices(team_id: str) -> list[ui.ConnectionChoice]:
        out = []
        for c in await active(team_id):
            cls = core.connections.platform(c.platform)
            out.append(ui.ConnectionChoice(c.id, c.name, cls.display_name, cls.capabilities.can_delete))
        return out

    async def render(team_id: str, state: ui.ModalState) -> dict[str, Any]:
        estimate = None
        if state.list_id:
            estimate = estimate_line(state.subscriber_count, await core.credits.balance(team_id), core.credits.metered)
        policy = await core.policies.get(team_id, state.connection_id)
        return ui.clean_list_view(state, await choices(team_id), policy=policy, estimate_line=estimate)

    @app.command("/clean-list")
    @after_ack(services.tasks, services.answers)
    async def clean_list_command(ack, command: dict[str, Any], client) -> None:
        await ack()
        team_id, channel = command["team_id"], command["channel_id"]
        await core.workspaces.ensure(team_id, command.get("team_domain"))
        state = ui.ModalState(channel=channel)
        connections = await choices(team_id)
        if not connections:
            await client.views_open(trigger_id=command["trigger_id"], view=ui.no_connection_view(channel))
            return
        if len(connections) == 1:
            state.connection_id = connections[0].id
        await client.views_open(trigger_id=command["trigger_id"], view=await render(team_id, state))

    async def update(body: dict[str, Any], client, state: ui.ModalState) -> None:
        view = body["view"]
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=await render(body["team"]["id"], state))

    @app.action(ui.CONNECTION_ACTION)
    @after_ack(services.tasks, services.answers)
    async def connection_picked(ack, body, client) -> None:
        await ack()
        state = ui.ModalState.from_metadata(body["view"]["private_metadata"])
        state.connection_id = body["actions"][0]["selected_option"]["value"]
        state.list_id = state.list_label = state.subscriber_count = None
        await update(body, client, state)

    @app.options(ui.LIST_ACTION)
    @after_ack(services.tasks, services.answers)
    async def list_suggestions(ack, body) -> None:
        state = ui.ModalState.from_metadata(body["view"]["private_metadata"])
        team_id, query = body["team"]["id"], (body.get("value") or "").strip().casefold()
        try:
            lists = await core.connections.lists(team_id, state.connection_id or "")
            if not lists:  # never synced (or emptied): ask the platform once
                lists = await asyncio.wait_for(core.connections.sync(team_id, state.connection_id or ""), SYNC_SECONDS)
        except (ConnectorError, ConnectionNotFound, ConnectionDisconnected, TimeoutError) as err:
            message = "the platform did not answer in time" if isinstance(err, TimeoutError) else str(err)
            await ack(options=[{"text": {"type": "plain_text", "text": truncate(f"⚠ Could not load lists: {message}", 75)},
                                "value": ui.ERROR_VALUE}])
            return
        matched = [item for item in lists if query in item.name.casefold()]
        await ack(options=[ui.list_option(item.id, item.name, item.kind, item.subscriber_count) for item in matched[:100]])

    @app.action(ui.LIST_ACTION)
    @after_ack(services.tasks, services.answers)
    async def list_picked(ack, body, client) -> None:
        await ack()
        state = ui.ModalState.from_metadata(body["view"]["private_metadata"])
        picked = body["actions"][0]["selected_option"]
        if picked["value"] == ui.ERROR_VALUE:
            return
        synced = await core.connections.synced_list(state.connection_id or "", picked["value"])
        state.list_id, state.list_label = picked["value"], picked["text"]["text"]
        state.subscriber_count = synced.subscriber_count if synced else None
        await update(body, client, state)

    @app.action(ui.MODE_ACTION)
    @after_ack(services.tasks, services.answers)
    async def mode_picked(ack, body, client) -> None:
        await ack()
        state = ui.ModalState.from_metadata(body["view"]["private_metadata"])
        state.mode = body["actions"][0]["selected_option"]["value"]
        values = body["view"].get("state", {}).get("values", {})
        picked = ((values.get(ui.list_block_id(state.connection_id or "")) or {}).get(ui.LIST_ACTION) or {}).get("selected_option")
        if picked and picked.get("value") != ui.ERROR_VALUE and not state.list_id:
            state.list_id, state.list_label = picked["value"], picked["text"]["text"]
        await update(body, client, state)

    @app.action(re.compile(f"^({ui.RULE_ENABLED}|{ui.RULE_ACTION}).+$"))
    @after_ack(services.tasks, services.answers)
    async def rule_changed(ack) -> None:
        await ack()  # read from the view state on submit

    @app.view(ui.CALLBACK_ID)
    @after_ack(services.tasks, services.answers)
    async def clean_list_submitted(ack, body, view, client) -> None:
        team_id, user_id = body["team"]["id"], body["user"]["id"]
        state = ui.ModalState.from_metadata(view["private_metadata"])
        values = view["state"]["values"]
        if not state.connection_id:
            await ack(response_action="errors", errors={ui.CONNECTION_BLOCK: "Choose a connection."})
            return
        block_id = ui.list_block_id(state.connection_id)
        picked = ((values.get(block_id) or {}).get(ui.LIST_ACTION) or {}).get("selected_option")
        if not picked or picked["value"] == ui.ERROR_VALUE:
            await ack(response_action="errors", errors={block_id: "Choose a list to clean."})
            return
        try:
            connection = await core.connections.get(team_id, state.connection_id)
        except ConnectionNotFound:
            connection = None
        if connection is None or not connection.active:
            await ack(response_action="errors", errors={ui.CONNECTION_BLOCK: "That connection was disconnected; choose another."})
            return
        platform = core.connections.platform(connection.platform)
        list_id = picked["value"]
        synced = await core.connections.synced_list(connection.id, list_id)
        list_name = synced.name if synced else picked["text"]["text"].split(" · ")[0]
        policy: Policy | None = None
        if ui.submitted_mode(values, state.mode) == ui.CLEAN_AUTO:
            policy = ui.submitted_policy(values, await core.policies.get(team_id, connection.id))
            try:
                check_policy(policy, platform.capabilities, platform.display_name)
            except CleanupRuleRefused as err:
                target = ui.rule_block_id(err.category) if err.category is not None else block_id
                await ack(response_action="errors", errors={target: str(err)})
                return
        try:
            await core.credits.require(team_id, synced.subscriber_count or 0 if synced else 0)
        except InsufficientCredits as err:
            await ack(response_action="errors", errors={block_id: str(err)})
            return
        subject = f"*{truncate(list_name, 200)}* on *{truncate(connection.name, 100)}* ({platform.display_name})"
        title = f"Verifying {subject}"
        total = synced.subscriber_count or 0 if synced else 0
        try:  # post before closing the modal, so "I am not in that channel" can still be said inline
            posted = await client.chat_postMessage(channel=state.channel, text=f"Verifying {list_name}: starting…",
                                                   blocks=progress_blocks(title, 0, total, {}, f"Requested by <@{user_id}>"))
        except SlackApiError as err:
            if err.response.get("error") not in NOT_IN_CHANNEL:
                raise
            await ack(response_action="errors", errors={block_id: "I can't post in that channel. Invite me with "
                                                        "`/invite @Listwarden`, or run /clean-list in a channel I am in."})
            return
        await ack()
        if policy is not None:
            await core.policies.set(team_id, policy, connection_id=connection.id, by=user_id)  # next time's defaults
        notify = slack_notify(team_id, state.channel, posted["ts"], subject=subject, requester=user_id)
        try:
            await services.jobs.start_cleanup(team_id, connection.id, list_id, requester=user_id, policy=policy, notify=notify)
        except (ConnectorError, ConnectionDisconnected, ConnectionNotFound, CleanupRuleRefused, InsufficientCredits) as err:
            await client.chat_update(channel=state.channel, ts=posted["ts"], text=f"Could not start: {err}", blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": truncate(f":warning: {subject}: {err}", 3000)}}])
