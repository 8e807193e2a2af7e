"""Connecting a platform from Slack: the modal follows the connector's credential schema, and the core's
live check against the platform (an emulator on loopback, reached through LISTWARDEN_PLATFORM_BASE_URLS)
turns a refused key into an inline field error."""

from __future__ import annotations

import logging

import pytest

from bot.blocks.connect import PLATFORM_ACTION
from core.connectors import get_platform
from tests.bot.conftest import Bot, bot_settings, platform, running_bot
from tests.bot.fake_slack import TEAM_ID
from tests.bot.payloads import block_actions, slash_command, view_payload, view_submission
from tests.emulators.mailerlite import GOOD_TOKEN, READ_ONLY_TOKEN, WRONG_TOKEN


@pytest.fixture
def mailerlite():
    with platform("mailerlite", members=3) as served:
        yield served


@pytest.fixture
async def connect_bot(slack, mail, tmp_path, mailerlite):
    _, server = mailerlite
    settings = bot_settings(slack, mail, tmp_path, LISTWARDEN_PLATFORM_BASE_URLS=f"mailerlite={server.url}",
                            MAILCHIMP_CLIENT_ID="mc-client", MAILCHIMP_CLIENT_SECRET="mc-secret",
                            LISTWARDEN_PUBLIC_URL="https://lw.example.com")
    async with running_bot(settings) as bot:
        yield bot


async def open_form(bot: Bot, slack, slug: str = "mailerlite") -> dict:
    """/listwarden connect, then pick the platform: returns the modal as Slack would send it back."""
    response = await bot.post(slash_command("/listwarden", "connect", response_url=slack.response_url_for()))
    assert response.status_code == 200
    opened = (await slack.wait_for("views.open"))[-1]
    view = view_payload(opened.params["view"], values={}, view_id=opened.response["view"]["id"])
    slugs = [o["value"] for o in opened.params["view"]["blocks"][0]["element"]["options"]]
    assert set(slugs) == {"mailchimp", "klaviyo", "hubspot", "brevo", "activecampaign", "mailerlite", "sendgrid", "convertkit"}
    before = len(slack.of("views.update"))
    await bot.post(block_actions({"action_id": PLATFORM_ACTION, "block_id": "platform", "type": "static_select",
                                  "selected_option": {"text": {"type": "plain_text", "text": slug}, "value": slug}},
                                 view=view, container={"type": "view", "view_id": view["id"]}))
    updated = (await slack.wait_for("views.update", count=before + 1))[-1]
    assert updated.params["view_id"] == view["id"] and updated.params["hash"] == view["hash"]
    return view_payload(updated.params["view"], values={}, view_id=view["id"])


def filled(view: dict, api_key: str, name: str) -> dict:
    values = {"cred:api_key": {"cred:api_key": {"type": "plain_text_input", "value": api_key}},
              "name": {"name": {"type": "plain_text_input", "value": name}}}
    return view | {"state": {"values": values}}


async def test_form_fields_come_from_the_credential_schema(connect_bot, slack) -> None:
    view = await open_form(connect_bot, slack)
    rendered = {b["block_id"]: b for b in view["blocks"] if b.get("block_id", "").startswith("cred:")}
    fields = get_platform("mailerlite").credential_fields
    assert list(rendered) == [f"cred:{f.name}" for f in fields]
    block = rendered["cred:api_key"]
    assert block["label"]["text"] == fields[0].label and block["optional"] is False
    assert block["hint"]["text"] == fields[0].help + " Stored encrypted; never shown again."


async def test_sendgrid_region_is_a_select_and_oauth_platforms_get_a_sign_in_button(connect_bot, slack) -> None:
    sendgrid = await open_form(connect_bot, slack, "sendgrid")
    region = next(b for b in sendgrid["blocks"] if b.get("block_id") == "cred:region")
    assert region["element"]["type"] == "static_select" and region["optional"] is True
    mailchimp = await open_form(connect_bot, slack, "mailchimp")
    oauth = next(b for b in mailchimp["blocks"] if b.get("block_id") == "oauth")
    url = oauth["accessory"]["url"]
    assert url.startswith("https://lw.example.com/oauth/mailchimp/start?ticket=")
    assert oauth["accessory"]["text"]["text"] == "Sign in with Mailchimp"
    started = await connect_bot.client.get(url.removeprefix("https://lw.example.com"))  # the REST API serves it
    assert started.status_code in (302, 303, 307)  # a ticket for this workspace: on to Mailchimp's consent page
    assert started.headers["location"].startswith("https://login.mailchimp.com/oauth2/authorize?")
    hubspot = await open_form(connect_bot, slack, "hubspot")  # no HubSpot OAuth app configured: no dead button
    assert not any(b.get("accessory", {}).get("url") for b in hubspot["blocks"])


async def test_refused_key_is_an_inline_error_and_a_good_key_connects(connect_bot, slack) -> None:
    view = await open_form(connect_bot, slack)
    body = (await connect_bot.post(view_submission(filled(view, WRONG_TOKEN, "Main")))).json()
    assert body["response_action"] == "errors" and list(body["errors"]) == ["cred:api_key"]
    assert WRONG_TOKEN not in body["errors"]["cred:api_key"]
    assert await connect_bot.core.connections.list(TEAM_ID) == []

    response = await connect_bot.post(view_submission(filled(view, GOOD_TOKEN, "Main")))
    assert response.status_code == 200 and response.content == b""
    (connection,) = await connect_bot.core.connections.list(TEAM_ID)
    assert (connection.name, connection.platform, connection.status) == ("Main", "mailerlite", "active")
    assert [item.name for item in await connect_bot.core.connections.lists(TEAM_ID, connection.id)][:1] == ["Newsletter"]

    again = (await connect_bot.post(view_submission(filled(view, GOOD_TOKEN, "main")))).json()
    assert again["errors"] == {"name": "You already have a connection named “main”."}


async def test_several_named_connections_of_one_platform(connect_bot, slack) -> None:
    view = await open_form(connect_bot, slack)
    await connect_bot.post(view_submission(filled(view, GOOD_TOKEN, "Main")))
    await connect_bot.post(view_submission(filled(view, READ_ONLY_TOKEN, "Reporting")))
    assert sorted(c.name for c in await connect_bot.core.connections.list(TEAM_ID)) == ["Main", "Reporting"]
    first, second = await slack.wait_for("chat.postEphemeral", count=2)
    assert "Connected *Main* (MailerLite)" in first.params["text"] and first.params["user"] == "U0ALICE"
    assert "Connected *Reporting* (MailerLite)" in second.params["text"]


async def test_missing_required_field_is_an_inline_error(connect_bot, slack) -> None:
    view = await open_form(connect_bot, slack)
    body = (await connect_bot.post(view_submission(filled(view, "", "Main")))).json()
    label = get_platform("mailerlite").credential_fields[0].label
    assert body == {"response_action": "errors", "errors": {"cred:api_key": f"{label} is required."}}


async def test_a_platform_that_does_not_answer_is_an_inline_error_not_a_timeout(slack, mail, tmp_path) -> None:
    """Slack waits 3 s for a view_submission; a hanging platform becomes a field error within that."""
    from tests.emulators.faults import Fault

    with platform("mailerlite") as (emulator, server):
        emulator.faults.add(Fault(status=0, delay=4.0), times=5)
        settings = bot_settings(slack, mail, tmp_path, LISTWARDEN_PLATFORM_BASE_URLS=f"mailerlite={server.url}")
        async with running_bot(settings) as bot:
            view = await open_form(bot, slack)
            body = (await bot.post(view_submission(filled(view, GOOD_TOKEN, "Main")))).json()
    assert body["errors"] == {"cred:api_key": "MailerLite did not answer in time. Try again in a moment."}


async def test_typed_credentials_never_reach_a_log_line(connect_bot, slack, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    view = await open_form(connect_bot, slack)
    await connect_bot.post(view_submission(filled(view, WRONG_TOKEN, "Main")))
    await connect_bot.post(view_submission(filled(view, GOOD_TOKEN, "Main")))
    await connect_bot.settle()
    assert len(await connect_bot.core.connections.list(TEAM_ID)) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged and GOOD_TOKEN not in logged and WRONG_TOKEN not in logged
