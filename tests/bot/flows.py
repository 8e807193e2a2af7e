"""The steps of the /clean-list flow as a person does them in Slack, as signed requests in Slack's shapes."""

from __future__ import annotations

from typing import Any

from bot.blocks import clean_list as ui
from bot.blocks.summary import APPROVE_ACTION, REJECT_ACTION
from tests.bot.conftest import Bot, eventually
from tests.bot.fake_slack import Call, FakeSlack
from tests.bot.payloads import block_actions, slash_command, view_payload, view_submission


async def open_clean_list(bot: Bot, slack: FakeSlack, *, user: str = "U0ALICE") -> dict[str, Any]:
    """/clean-list, then the modal as Slack would send it back (with its id and hash)."""
    before = len(slack.of("views.open"))
    await bot.post(slash_command("/clean-list", "", response_url=slack.response_url_for(), user=user))
    opened = (await slack.wait_for("views.open", count=before + 1))[-1]
    return view_payload(opened.params["view"], values={}, view_id=opened.response["view"]["id"])


def list_value(list_id: str, label: str = "Newsletter") -> dict[str, Any]:
    return {"type": "external_select", "selected_option": {"text": {"type": "plain_text", "text": label}, "value": list_id}}


def rule(category: str, enabled: bool, action: str) -> dict[str, Any]:
    return {ui.rule_block_id(category): {
        ui.RULE_ENABLED + category: {"type": "checkboxes", "selected_options": [{"value": "on"}] if enabled else []},
        ui.RULE_ACTION + category: {"type": "static_select", "selected_option": {"value": action}}}}


def submitted(view: dict[str, Any], *, connection_id: str, list_id: str, mode: str,
              rules: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {ui.list_block_id(connection_id): {ui.LIST_ACTION: list_value(list_id)},
              ui.MODE_BLOCK: {ui.MODE_ACTION: {"type": "radio_buttons", "selected_option": {"value": mode}}}}
    values.update(rules or {})
    return view_payload(view, values=values, view_id=view["id"])


async def start(bot: Bot, slack: FakeSlack, *, connection_id: str, list_id: str, mode: str = ui.CLEAN_AUTO,
                rules: dict[str, Any] | None = None, user: str = "U0ALICE") -> str:
    """Open, fill and submit the modal; returns the ts of the job's channel message."""
    view = await open_clean_list(bot, slack, user=user)
    before = len(slack.of("chat.postMessage"))
    response = await bot.post(view_submission(submitted(view, connection_id=connection_id, list_id=list_id, mode=mode,
                                                        rules=rules), user=user))
    assert response.status_code == 200 and not response.content, response.text  # the modal closes
    return (await slack.wait_for("chat.postMessage", count=before + 1))[-1].response["ts"]


def updates_of(slack: FakeSlack, ts: str) -> list[Call]:
    return [c for c in slack.of("chat.update") if c.params["ts"] == ts]


def button(call: Call, action_id: str) -> dict[str, Any] | None:
    for block in call.params.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == action_id:
                return element
    return None


async def message_with(slack: FakeSlack, ts: str, text: str, *, timeout: float = 20.0) -> Call:
    """The first update of message `ts` whose blocks contain `text`."""
    def found() -> Call | None:
        return next((c for c in updates_of(slack, ts) if text in str(c.params.get("blocks"))), None)

    return await eventually(found, timeout=timeout)


async def approve_button(slack: FakeSlack, ts: str) -> dict[str, Any]:
    call = await message_with(slack, ts, APPROVE_ACTION)
    found = button(call, APPROVE_ACTION)
    assert found is not None and button(call, REJECT_ACTION) is not None
    return found


def press(slack: FakeSlack, action_id: str, value: str, ts: str, *, user: str, rid: str) -> str:
    return block_actions({"action_id": action_id, "block_id": "decision", "type": "button", "value": value},
                         user=user, message={"ts": ts, "type": "message", "text": "summary"},
                         response_url=slack.response_url_for(rid))


async def reply(slack: FakeSlack, rid: str) -> dict[str, Any]:
    """The response_url answer to the press identified by `rid`."""
    call = await eventually(lambda: next((c for c in slack.of("response_url") if c.params["_rid"] == rid), None))
    return call.params
