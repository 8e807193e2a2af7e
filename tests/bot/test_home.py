"""App Home and admin settings: connections with status, the connection menu, recent jobs with links, roles."""

from __future__ import annotations

from bot.blocks import clean_list as ui
from core.apikeys import hash_key
from tests.bot.conftest import platform
from tests.bot.fake_slack import TEAM_ID
from tests.bot.flows import message_with, start
from tests.bot.payloads import block_actions, event, slash_command, view_payload, view_submission
from tests.emulators.mailerlite import GOOD_TOKEN, MAIN_GROUP, WRONG_TOKEN

HOME = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0DM", "tab": "home", "event_ts": "1.2"}


def admins(slack) -> None:
    slack.users.update({"U0ADMIN": {"id": "U0ADMIN", "is_admin": True}, "U0ALICE": {"id": "U0ALICE", "is_admin": False}})


def menu(connection_id: str, action: str, user: str = "U0ALICE") -> str:
    return block_actions({"action_id": f"home_connection:{connection_id}", "block_id": f"conn:{connection_id}", "type": "overflow",
                          "selected_option": {"value": f"{action}:{connection_id}"}}, user=user,
                         container={"type": "view", "view_id": "V0HOME"})


async def test_home_shows_connections_balance_and_offers_connect_to_members(bot, slack) -> None:
    admins(slack)
    with platform("mailerlite") as (emulator, server):
        await bot.connect(emulator, server)
        await bot.post(event(HOME, event_id="EvH1"), json_body=True)
        (published,) = await slack.wait_for("views.publish")
    view = published.params["view"]
    assert published.params["user_id"] == "U0ALICE" and view["type"] == "home"
    text = str(view["blocks"])
    assert "*Main* · MailerLite" in text and ":large_green_circle: connected · synced <!date^" in text
    assert "verify-first off" in text and "*Credit balance:* 1,000" in text and "home_connect" in text
    assert "home_settings" not in text and "home_api_key" not in text  # members do not manage settings or keys
    await bot.post(event({**HOME, "user": "U0ADMIN"}, event_id="EvH2"), json_body=True)
    admin_view = (await slack.wait_for("views.publish", count=2))[-1].params["view"]
    assert "home_settings" in str(admin_view["blocks"]) and "home_api_key" in str(admin_view["blocks"])


async def test_menu_sync_now_verify_first_toggle_and_disconnect_call_the_core(bot, slack) -> None:
    with platform("mailerlite", members=4) as (emulator, server):
        connection = await bot.connect(emulator, server)
        emulator.state.groups["1003"] = "Added since"
        await bot.post(menu(connection.id, "sync"))
        await slack.wait_for("views.publish")
        assert "Added since" in [item.name for item in await bot.core.connections.lists(TEAM_ID, connection.id)]
        await bot.post(menu(connection.id, "verify_first"))
        published = (await slack.wait_for("views.publish", count=2))[-1]
        assert (await bot.core.connections.get(TEAM_ID, connection.id)).settings.verify_first is True
        assert "verify-first *on*" in str(published.params["view"]["blocks"])
        await bot.post(menu(connection.id, "disconnect"))
        published = (await slack.wait_for("views.publish", count=3))[-1]
    assert (await bot.core.connections.get(TEAM_ID, connection.id)).status == "disconnected"
    assert ":white_circle: disconnected" in str(published.params["view"]["blocks"])
    assert f"reconnect:{connection.id}" in str(published.params["view"]["blocks"])


async def test_a_connection_names_the_channel_for_its_verify_first_digests(bot, slack) -> None:
    """Issue 6: each connection may name a channel; the digest seam reads it from the core."""
    with platform("mailerlite") as (emulator, server):
        connection = await bot.connect(emulator, server)
        await bot.post(menu(connection.id, "notices"))
        (opened,) = await slack.wait_for("views.open")
        picker = opened.params["view"]
        assert picker["callback_id"] == "notice_channel" and picker["private_metadata"] == connection.id
        values = {"channel": {"channel": {"type": "conversations_select", "selected_conversation": "C0DIGEST"}}}
        response = await bot.post(view_submission(view_payload(picker, values=values)))
        assert response.status_code == 200 and response.content == b""
        published = (await slack.wait_for("views.publish"))[-1]
    assert (await bot.core.connections.get(TEAM_ID, connection.id)).notice_channel == "C0DIGEST"
    assert "digests in <#C0DIGEST>" in str(published.params["view"]["blocks"])


async def test_reconnect_with_a_refused_stored_key_asks_for_new_credentials(bot, slack) -> None:
    with platform("mailerlite") as (emulator, server):
        connection = await bot.connect(emulator, server)
        await bot.core.connections.disconnect(TEAM_ID, connection.id)
        server_key_rotated = {"api_key": WRONG_TOKEN}
        from core.storage.models import Connection

        await Connection.filter(id=connection.id).update(credentials=bot.core.box.seal(server_key_rotated))
        await bot.post(menu(connection.id, "reconnect"))
        (opened,) = await slack.wait_for("views.open")
        form = opened.params["view"]
        assert form["title"]["text"] == "Update credentials"
        assert "Reconnecting with the stored credentials failed" in str(form["blocks"])
        values = {"cred:api_key": {"cred:api_key": {"type": "plain_text_input", "value": GOOD_TOKEN}}}
        response = await bot.post(view_submission(view_payload(form, values=values)))
        assert response.status_code == 200 and response.content == b""
        assert (await bot.core.connections.get(TEAM_ID, connection.id)).status == "active"


async def test_recent_jobs_link_to_their_messages(bot, slack) -> None:
    with platform("mailerlite", members=3) as (emulator, server):
        connection = await bot.connect(emulator, server)
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, mode=ui.VERIFY_ONLY)
        await message_with(slack, ts, "Verification finished")
        await bot.post(event(HOME, event_id="EvH3"), json_body=True)
        (published,) = await slack.wait_for("views.publish")
    permalink = f"https://test.slack.com/archives/C0CHAN/p{ts.replace('.', '')}"
    text = str(published.params["view"]["blocks"])
    assert f"Verify: <{permalink}|Newsletter>" in text and ":white_check_mark: done" in text


async def test_only_admins_change_settings_approvers_four_eyes_and_credits(bot, slack) -> None:
    admins(slack)
    slack.usergroups["S0LISTS"] = ["U0ALICE"]
    await bot.post(slash_command("/listwarden", "settings", user="U0ALICE", response_url=slack.response_url_for("m")))
    (reply,) = await slack.wait_for("response_url")
    assert reply.params["response_type"] == "ephemeral" and "Only workspace admins" in reply.params["text"]
    await bot.post(slash_command("/listwarden", "settings", user="U0ADMIN", response_url=slack.response_url_for("a")))
    (opened,) = await slack.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "workspace_settings" and "The balance is 1,000" in str(view["blocks"])
    from tests.bot.payloads import block_suggestion

    options = (await bot.post(block_suggestion("settings_pick_group", "approvers", "list",
                                               view={**view, "id": "V1"}, user="U0ADMIN"))).json()["options"]
    assert options == [{"text": {"type": "plain_text", "text": "@s0lists (Group S0LISTS)"}, "value": "S0LISTS"}]
    values = {"approvers": {"settings_pick_group": {"type": "external_select", "selected_option": options[0]}},
              "four_eyes": {"settings_four_eyes": {"type": "checkboxes", "selected_options": []}},
              "credits": {"settings_add_credits": {"type": "number_input", "value": "250"}}}
    denied = await bot.post(view_submission(view_payload(view, values=values), user="U0ALICE"))
    assert denied.json()["response_action"] == "errors"  # a modal kept open after a demotion still cannot save
    response = await bot.post(view_submission(view_payload(view, values=values), user="U0ADMIN"))
    assert response.status_code == 200 and response.content == b""
    workspace = await bot.core.workspaces.get(TEAM_ID)
    assert workspace.approver_group == "S0LISTS" and workspace.four_eyes is False
    assert await bot.core.credits.balance(TEAM_ID) == 1250
    history = await bot.core.credits.history(TEAM_ID)
    assert history[0].actor == "U0ADMIN" and history[0].amount == 250
    bad = {**values, "credits": {"settings_add_credits": {"type": "number_input", "value": "-3"}}}
    assert (await bot.post(view_submission(view_payload(view, values=bad), user="U0ADMIN"))).json()["errors"] == {
        "credits": "Enter a whole number of credits, 1 or more."}


async def test_admin_creates_an_api_key_shown_once_and_stored_hashed(bot, slack) -> None:
    admins(slack)
    await bot.post(block_actions({"action_id": "home_api_key", "block_id": "home_actions", "type": "button"}, user="U0ALICE",
                                 container={"type": "view", "view_id": "V0HOME"}))
    await bot.settle()
    assert slack.of("views.open") == []  # a member's stale Home button does nothing
    await bot.post(block_actions({"action_id": "home_api_key", "block_id": "home_actions", "type": "button"}, user="U0ADMIN",
                                 container={"type": "view", "view_id": "V0HOME"}))
    (opened,) = await slack.wait_for("views.open")
    values = {"name": {"key_name": {"type": "plain_text_input", "value": "CRM sync"}},
              "roles": {"key_roles": {"type": "checkboxes", "selected_options": [{"value": "approver"}]}}}
    denied = (await bot.post(view_submission(view_payload(opened.params["view"], values=values), user="U0ALICE"))).json()
    assert denied["response_action"] == "errors"
    shown = (await bot.post(view_submission(view_payload(opened.params["view"], values=values), user="U0ADMIN"))).json()
    assert shown["response_action"] == "update"
    plain = shown["view"]["blocks"][0]["text"]["text"].split("```")[1]
    key = await bot.core.api_keys.authenticate(plain)
    assert key is not None and key.name == "CRM sync" and key.workspace_id == TEAM_ID and key.roles == {"approver"}
    assert await bot.core.api_keys.by_digest(hash_key(plain)) is not None
    assert plain not in repr(key)
