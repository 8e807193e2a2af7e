"""The /clean-list modal against real connections: list search, estimate, mode and rules, and inline refusals."""

from __future__ import annotations

from bot.blocks import clean_list as ui
from bot.blocks.limits import options_violations, view_violations
from tests.bot.conftest import bot_settings, platform, running_bot
from tests.bot.flows import list_value, open_clean_list, rule, submitted
from tests.bot.payloads import block_actions, block_suggestion, view_payload, view_submission
from tests.emulators.mailerlite import MAIN_GROUP


async def test_without_connections_the_modal_offers_to_connect_and_stacks_the_form(bot, slack) -> None:
    view = await open_clean_list(bot, slack)
    buttons = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["clean_connect"] and view["submit"] is None
    await bot.post(block_actions({"action_id": "clean_connect", "block_id": "connect", "type": "button"},
                                 view=view, container={"type": "view", "view_id": view["id"]}))
    (pushed,) = await slack.wait_for("views.push")
    assert pushed.params["view"]["callback_id"] == "connect_platform"


async def test_list_search_estimate_and_mode_switch_update_the_modal_in_place(bot, slack) -> None:
    with platform("mailerlite", members=20) as (emulator, server):
        connection = await bot.connect(emulator, server)
        view = await open_clean_list(bot, slack)
        assert view["blocks"][0]["element"]["initial_option"]["value"] == connection.id  # the only one: preselected
        block_id = ui.list_block_id(connection.id)
        assert view["blocks"][1]["block_id"] == block_id and view["blocks"][1]["element"]["type"] == "external_select"
        options = (await bot.post(block_suggestion(ui.LIST_ACTION, block_id, "news", view=view))).json()["options"]
        assert options == [{"text": {"type": "plain_text", "text": "Newsletter · group · 20 subscribers"}, "value": MAIN_GROUP}]
        assert not options_violations(options)
        everything = (await bot.post(block_suggestion(ui.LIST_ACTION, block_id, "", view=view))).json()["options"]
        assert {o["text"]["text"].split(" · ")[0] for o in everything} == {"Newsletter", "Customers", "Engaged"}
        assert (await bot.post(block_suggestion(ui.LIST_ACTION, block_id, "zzz", view=view))).json() == {"options": []}

        await bot.post(block_actions({"action_id": ui.LIST_ACTION, "block_id": block_id, "type": "external_select",
                                      "selected_option": options[0]}, view=view,
                                     container={"type": "view", "view_id": view["id"]}))
        estimate = (await slack.wait_for("views.update"))[-1].params["view"]
        assert "Estimated cost: *20 credits* (unknown results are refunded) · balance 1,000" in str(estimate["blocks"])
        view = view_payload(estimate, values={block_id: {ui.LIST_ACTION: list_value(MAIN_GROUP)}}, view_id=view["id"])
        await bot.post(block_actions({"action_id": ui.MODE_ACTION, "block_id": ui.MODE_BLOCK, "type": "radio_buttons",
                                      "selected_option": {"value": ui.CLEAN_AUTO, "text": {"type": "plain_text", "text": "x"}}},
                                     view=view, container={"type": "view", "view_id": view["id"]}))
        with_rules = (await slack.wait_for("views.update", count=2))[-1].params["view"]
    rules = {b["block_id"]: b["elements"] for b in with_rules["blocks"] if b.get("block_id", "").startswith("rule:")}
    assert list(rules) == ["rule:invalid", "rule:disposable", "rule:catch_all", "rule:unknown", "rule:risky"]
    # the seed defaults: Invalid on/Unsubscribe, Disposable on/Delete, the rest off/Keep
    assert [(bool(c.get("initial_options")), s["initial_option"]["value"]) for c, s in rules.values()] == [
        (True, "unsubscribe"), (True, "delete"), (False, "keep"), (False, "keep"), (False, "keep")]
    assert "Estimated cost" in str(with_rules["blocks"])  # the chosen list survives the mode switch
    assert view_violations(with_rules) == []
    toggled = await bot.post(block_actions({"action_id": "rule_enabled_catch_all", "block_id": "rule:catch_all",
                                            "type": "checkboxes", "selected_options": [{"value": "on"}]},
                                           view=view, container={"type": "view", "view_id": view["id"]}))
    assert toggled.status_code == 200  # acked (read on submit), not Bolt's 404 for an unknown action


async def test_convertkit_is_not_offered_delete_and_a_crafted_delete_is_refused_inline(bot, slack) -> None:
    with platform("convertkit", members=5) as (emulator, server):
        connection = await bot.connect(emulator, server, name="Kit")
        view = await open_clean_list(bot, slack)
        view["private_metadata"] = ui.ModalState(channel="C0CHAN", connection_id=connection.id, mode=ui.CLEAN_AUTO).metadata()
        await bot.post(block_actions({"action_id": ui.MODE_ACTION, "block_id": ui.MODE_BLOCK, "type": "radio_buttons",
                                      "selected_option": {"value": ui.CLEAN_AUTO}}, view=view,
                                     container={"type": "view", "view_id": view["id"]}))
        shown = (await slack.wait_for("views.update"))[-1].params["view"]
        selects = {b["block_id"]: b["elements"][1] for b in shown["blocks"] if b.get("block_id", "").startswith("rule:")}
        assert all([o["value"] for o in s["options"]] == ["keep", "unsubscribe"] for s in selects.values())
        assert selects["rule:disposable"]["initial_option"]["value"] == "unsubscribe"
        assert "Kit (ConvertKit) cannot delete contacts through its API, so Delete is not offered." in str(shown["blocks"])

        crafted = submitted(view, connection_id=connection.id, list_id=emulator.list_id, mode=ui.CLEAN_AUTO,
                            rules=rule("disposable", True, "delete"))
        answer = (await bot.post(view_submission(crafted))).json()
    assert answer["response_action"] == "errors"
    assert answer["errors"] == {"rule:disposable": "Kit (ConvertKit) cannot delete contacts, so the Disposable rule cannot "
                                                   "be set to Delete; choose Unsubscribe or Keep instead."}
    assert slack.of("chat.postMessage") == []  # nothing started


async def test_submit_without_a_list_not_enough_credits_and_no_channel_are_inline_errors(slack, mail, tmp_path) -> None:
    async with running_bot(bot_settings(slack, mail, tmp_path, LISTWARDEN_INITIAL_CREDITS=5)) as bot:
        with platform("mailerlite", members=20) as (emulator, server):
            connection = await bot.connect(emulator, server)
            view = await open_clean_list(bot, slack)
            block_id = ui.list_block_id(connection.id)
            none = (await bot.post(view_submission(view_payload(view, values={}, view_id=view["id"])))).json()
            assert none == {"response_action": "errors", "errors": {block_id: "Choose a list to clean."}}
            short = (await bot.post(view_submission(submitted(view, connection_id=connection.id, list_id=MAIN_GROUP,
                                                              mode=ui.VERIFY_ONLY)))).json()
            assert short["errors"][block_id].startswith("Not enough verification credits: this needs 20 and 5 remain (15 short)")
            await bot.core.credits.grant("T0TEAM", 100)
            slack.not_in_channels.add("C0CHAN")
            outside = (await bot.post(view_submission(submitted(view, connection_id=connection.id, list_id=MAIN_GROUP,
                                                                mode=ui.VERIFY_ONLY)))).json()
            assert "Invite me with `/invite @Listwarden`" in outside["errors"][block_id]
            assert await bot.core.jobs.list("T0TEAM") == []


async def test_a_disconnected_connection_is_not_offered(bot, slack) -> None:
    with platform("mailerlite", members=3) as (emulator, server):
        first = await bot.connect(emulator, server, name="Old")
        second = await bot.connect(emulator, server, name="New")
        await bot.core.connections.disconnect("T0TEAM", first.id)
        view = await open_clean_list(bot, slack)
    options = view["blocks"][0]["element"]["options"]
    assert [o["value"] for o in options] == [second.id]
