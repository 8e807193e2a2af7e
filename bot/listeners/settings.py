"""/listwarden settings (and the Home "Settings" button): admins choose approvers, four-eyes, and add credits.

Members can verify, connect and start jobs; only admins (Slack's workspace admins and owners, or
Listwarden admins) manage approvers and credits, through `core.workspaces` and `core.credits`.
The user-group picker is an external select fed by usergroups.list.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.acking import after_ack
from bot.blocks.limits import truncate
from bot.roles import can_administer
from bot.services import BotServices

CALLBACK_ID = "workspace_settings"
GROUP_BLOCK, GROUP_ACTION = "approvers", "settings_pick_group"
FOUR_EYES_BLOCK, FOUR_EYES_ACTION = "four_eyes", "settings_four_eyes"
CREDITS_BLOCK, CREDITS_ACTION = "credits", "settings_add_credits"
ONLY_ADMINS = ":lock: Only workspace admins can change Listwarden's settings."


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def group_option(group_id: str, label: str) -> dict[str, Any]:
    return {"text": _plain(truncate(label, 75)), "value": group_id}


def settings_view(*, group: dict[str, Any] | None, four_eyes: bool, balance: int, metered: bool) -> dict[str, Any]:
    select: dict[str, Any] = {"type": "external_select", "action_id": GROUP_ACTION, "min_query_length": 0,
                              "placeholder": _plain("Admins only")}
    if group:
        select["initial_option"] = group
    on = {"text": _plain("The requester of a cleanup may not approve it"), "value": "on"}
    checkbox: dict[str, Any] = {"type": "checkboxes", "action_id": FOUR_EYES_ACTION, "options": [on]}
    if four_eyes:
        checkbox["initial_options"] = [on]
    blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": GROUP_BLOCK, "optional": True, "element": select, "label": _plain("Approvers group"),
         "hint": _plain("Members of this user group may approve cleanups, besides workspace admins.")},
        {"type": "input", "block_id": FOUR_EYES_BLOCK, "optional": True, "element": checkbox, "label": _plain("Four-eyes")},
    ]
    if metered:
        blocks.append({"type": "input", "block_id": CREDITS_BLOCK, "optional": True, "label": _plain("Add credits"),
                       "hint": _plain(f"The balance is {balance:,}. One credit verifies one unique address."),
                       "element": {"type": "number_input", "action_id": CREDITS_ACTION, "is_decimal_allowed": False,
                                   "min_value": "1", "max_value": "100000000"}})
    return {"type": "modal", "callback_id": CALLBACK_ID, "title": _plain("Listwarden settings"),
            "submit": _plain("Save"), "close": _plain("Cancel"), "blocks": blocks}


def register(app: AsyncApp, services: BotServices) -> None:
    core = services.core

    async def open_settings(client, trigger_id: str, team_id: str, user_id: str, respond) -> None:
        if not await can_administer(core.workspaces, client, team_id, user_id):
            await respond(response_type="ephemeral", replace_original=False, text=ONLY_ADMINS)
            return
        workspace = await core.workspaces.get(team_id)
        group = None
        if workspace.approver_group:
            group = group_option(workspace.approver_group, await _group_label(client, workspace.approver_group))
        await client.views_open(trigger_id=trigger_id, view=settings_view(
            group=group, four_eyes=workspace.four_eyes, balance=await core.credits.balance(team_id), metered=core.credits.metered))

    async def settings_subcommand(*, ack, command, client, respond, **_: Any) -> None:
        await ack()
        await open_settings(client, command["trigger_id"], command["team_id"], command["user_id"], respond)

    services.subcommands["settings"] = settings_subcommand

    @app.action("home_settings")
    @after_ack(services.tasks, services.answers)
    async def settings_button(ack, body, client, respond) -> None:
        await ack()
        await open_settings(client, body["trigger_id"], body["team"]["id"], body["user"]["id"], respond)

    @app.options(GROUP_ACTION)
    @after_ack(services.tasks, services.answers)
    async def group_suggestions(ack, body, client) -> None:
        query = (body.get("value") or "").lower()
        try:
            groups = (await client.usergroups_list())["usergroups"]
        except SlackApiError:
            groups = []
        options = [group_option(g["id"], f"@{g.get('handle', '')} ({g.get('name', '')})") for g in groups
                   if query in (g.get("handle", "") + " " + g.get("name", "")).lower()]
        await ack(options=options[:100])

    @app.view(CALLBACK_ID)
    @after_ack(services.tasks, services.answers)
    async def settings_saved(ack, body, view, client) -> None:
        user_id, team_id = body["user"]["id"], body["team"]["id"]
        if not await can_administer(core.workspaces, client, team_id, user_id):  # the modal could outlive a demotion
            await ack(response_action="errors", errors={GROUP_BLOCK: "Only workspace admins can change this."})
            return
        values = view["state"]["values"]
        credits_text = ((values.get(CREDITS_BLOCK) or {}).get(CREDITS_ACTION) or {}).get("value")
        grant = 0
        if credits_text:
            try:
                grant = int(credits_text)
            except ValueError:
                grant = 0
            if grant <= 0:
                await ack(response_action="errors", errors={CREDITS_BLOCK: "Enter a whole number of credits, 1 or more."})
                return
        picked = ((values.get(GROUP_BLOCK) or {}).get(GROUP_ACTION) or {}).get("selected_option")
        four_eyes = bool(((values.get(FOUR_EYES_BLOCK) or {}).get(FOUR_EYES_ACTION) or {}).get("selected_options"))
        await core.workspaces.set_approver_group(team_id, picked["value"] if picked else None)
        await core.workspaces.set_four_eyes(team_id, four_eyes)
        if grant:
            await core.credits.grant(team_id, grant, actor=user_id, reason="granted from Slack settings")
        await ack()
        from bot.listeners.home import publish

        await publish(services, client, team_id, user_id)


async def _group_label(client, group_id: str) -> str:
    try:
        for group in (await client.usergroups_list())["usergroups"]:
            if group["id"] == group_id:
                return f"@{group.get('handle', '')} ({group.get('name', '')})"
    except SlackApiError:
        pass
    return group_id
