"""Admins create REST API keys from the App Home; the key is shown once, in the modal, and stored hashed.

Keys are the core's (`services.api_keys`): the bot only offers the form, to admins.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.acking import after_ack
from bot.roles import can_administer
from bot.services import BotServices
from core.apikeys import ApiKeyError

CALLBACK_ID = "create_api_key"


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def key_form() -> dict[str, Any]:
    return {"type": "modal", "callback_id": CALLBACK_ID, "title": _plain("New API key"), "submit": _plain("Create"),
            "close": _plain("Cancel"), "blocks": [
                {"type": "input", "block_id": "name", "label": _plain("What is it for?"),
                 "element": {"type": "plain_text_input", "action_id": "key_name", "max_length": 100,
                             "placeholder": _plain("CRM sync")}},
                {"type": "input", "block_id": "roles", "optional": True, "label": _plain("Permissions"),
                 "element": {"type": "checkboxes", "action_id": "key_roles", "options": [
                     {"text": _plain("May approve cleanups"), "value": "approver"}]}}]}


def key_shown_once(plain: str, name: str) -> dict[str, Any]:
    return {"type": "modal", "title": _plain("API key created"), "close": _plain("Done"), "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{name}*: copy it now; it is stored only as a hash "
                                     f"and will not be shown again:\n```{plain}```"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Use it as `Authorization: Bearer KEY`."}]}]}


def register(app: AsyncApp, services: BotServices) -> None:
    core = services.core

    @app.action("home_api_key")
    @after_ack(services.tasks, services.answers)
    async def open_form(ack, body, client) -> None:
        await ack()
        if not await can_administer(core.workspaces, client, body["team"]["id"], body["user"]["id"]):
            return  # the button is only shown to admins; a stale Home tab does nothing
        await client.views_open(trigger_id=body["trigger_id"], view=key_form())

    @app.view(CALLBACK_ID)
    @after_ack(services.tasks, services.answers)
    async def create(ack, body, view, client) -> None:
        team_id = body["team"]["id"]
        if not await can_administer(core.workspaces, client, team_id, body["user"]["id"]):
            await ack(response_action="errors", errors={"name": "Only workspace admins can create API keys."})
            return
        values = view["state"]["values"]
        name = (values["name"]["key_name"].get("value") or "").strip()
        roles = {o["value"] for o in (values.get("roles", {}).get("key_roles", {}).get("selected_options") or [])}
        try:
            plain, key = await core.api_keys.create(team_id, name=name, roles=roles, created_by=body["user"]["id"])
        except ApiKeyError as err:
            await ack(response_action="errors", errors={"name": str(err)})
            return
        await ack(response_action="update", view=key_shown_once(plain, key.name))
