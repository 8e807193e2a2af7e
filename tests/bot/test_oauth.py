"""Multi-workspace install: /slack/install and /slack/oauth_redirect with the core's stores, tokens sealed at rest.

Slack's side (oauth.v2.access, auth.test, every later Web API call) is the recording server; the
installation and the OAuth state live in the core's tables (core/storage/slack.py).
"""

from __future__ import annotations

import re

import pytest

from core.storage.models import SlackBot, SlackInstallation
from tests.bot.conftest import bot_settings, running_bot
from tests.bot.fake_slack import TEAM_ID
from tests.bot.payloads import event, slash_command

INSTALLED_TOKEN = "xoxb-installed-token"


@pytest.fixture
async def oauth_bot(slack, mail, tmp_path):
    settings = bot_settings(slack, mail, tmp_path, SLACK_BOT_TOKEN=None, SLACK_CLIENT_ID="111.222",
                            SLACK_CLIENT_SECRET="client-secret-value", LISTWARDEN_PUBLIC_URL="https://lw.example.com")
    async with running_bot(settings) as bot:
        yield bot


async def install(bot, code: str = "good-code"):
    page = await bot.client.get("/slack/install")
    assert page.status_code == 200
    state = re.search(r"state=([\w\-]+)", page.text).group(1)
    assert "scope=commands,chat:write,files:read,files:write,users:read,usergroups:read&" in page.text.replace("&amp;", "&")
    assert "redirect_uri=https://lw.example.com/slack/oauth_redirect" in page.text
    assert state in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]  # the state is bound to the browser
    return await bot.client.get(f"/slack/oauth_redirect?code={code}&state={state}",
                                cookies={"slack-app-oauth-state": state})


async def test_install_stores_the_bot_token_sealed_and_requests_then_use_it(oauth_bot, slack) -> None:
    done = await install(oauth_bot)
    assert done.status_code == 200, done.text
    (exchange,) = slack.of("oauth.v2.access")
    assert exchange.params["code"] == "good-code"
    rows = await SlackInstallation.filter(team_id=TEAM_ID)
    bots = await SlackBot.filter(team_id=TEAM_ID)
    assert len(rows) == 1 and len(bots) == 1
    assert INSTALLED_TOKEN not in repr(rows[0].secrets) + repr(bots[0].secrets)  # sealed at rest

    response = await oauth_bot.post(slash_command("/verify", "", response_url=slack.response_url_for()))
    assert response.status_code == 200 and "up to 25" in response.json()["blocks"][0]["text"]["text"]
    assert slack.of("auth.test")[-1].headers["authorization"] == f"Bearer {INSTALLED_TOKEN}"

    home = event({"type": "app_home_opened", "user": "U0ALICE", "channel": "D0DM", "tab": "home", "event_ts": "1.2"},
                 event_id="EvInstalled")
    assert (await oauth_bot.post(home, json_body=True)).status_code == 200
    (published,) = await slack.wait_for("views.publish")
    assert published.headers["authorization"] == f"Bearer {INSTALLED_TOKEN}"

    many = " ".join(f"member{i}@example.com" for i in range(26))  # a job: its message is updated from the job's events
    await oauth_bot.post(slash_command("/verify", many, response_url=slack.response_url_for("job")))
    await slack.wait_for("files.completeUploadExternal", timeout=20)
    assert {c.headers["authorization"] for c in slack.of("chat.update")} == {f"Bearer {INSTALLED_TOKEN}"}


async def test_a_forged_or_replayed_state_installs_nothing(oauth_bot, slack) -> None:
    forged = await oauth_bot.client.get("/slack/oauth_redirect?code=good-code&state=made-up",
                                        cookies={"slack-app-oauth-state": "made-up"})
    assert forged.status_code == 401 and "invalid_state" in forged.text
    assert slack.of("oauth.v2.access") == [] and await SlackInstallation.all().count() == 0
    state = re.search(r"state=([\w\-]+)", (await oauth_bot.client.get("/slack/install")).text).group(1)
    first = await oauth_bot.client.get(f"/slack/oauth_redirect?code=good-code&state={state}",
                                       cookies={"slack-app-oauth-state": state})
    replayed = await oauth_bot.client.get(f"/slack/oauth_redirect?code=good-code&state={state}",
                                          cookies={"slack-app-oauth-state": state})
    assert first.status_code == 200 and replayed.status_code == 401  # a state is used once
    assert len(slack.of("oauth.v2.access")) == 1


async def test_a_workspace_that_never_installed_gets_an_apology_and_nothing_runs(oauth_bot, slack) -> None:
    response = await oauth_bot.post(slash_command("/verify", "member0@example.com", response_url=slack.response_url_for()))
    assert response.status_code == 200 and response.content == b""  # Bolt: no installation, no listener runs
    (apology,) = await slack.wait_for("response_url")
    assert "your installation with this app is no longer available" in apology.params["text"]
    await oauth_bot.settle()
    assert await oauth_bot.core.credits.history(TEAM_ID) == []  # nothing was verified or charged


async def test_uninstalling_deletes_the_installation(oauth_bot, slack) -> None:
    assert (await install(oauth_bot)).status_code == 200
    uninstalled = event({"type": "app_uninstalled", "event_ts": "1.3"}, event_id="EvGone")
    assert (await oauth_bot.post(uninstalled, json_body=True)).status_code == 200
    await oauth_bot.settle()
    assert await SlackBot.filter(team_id=TEAM_ID).count() == 0
    assert await SlackInstallation.filter(team_id=TEAM_ID).count() == 0
