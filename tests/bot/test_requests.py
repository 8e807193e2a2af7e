"""The bot's HTTP surface: signatures, timestamps, retries deduped through the core, booting without Slack."""

from __future__ import annotations

import time

import httpx

from core.settings import Settings
from listwarden.app import create_app
from tests.bot.conftest import Bot, app_process, bot_settings, running_bot, settings_env
from tests.bot.payloads import event, signed_headers, slash_command

HOME_OPENED = {"type": "app_home_opened", "user": "U0ALICE", "channel": "D0DM", "tab": "home", "event_ts": "1.2"}


async def test_bad_signature_is_401_and_nothing_runs(bot, slack) -> None:
    response = await bot.post(slash_command("/verify", "a@example.com", response_url=slack.response_url_for()),
                              secret="wrong")
    assert response.status_code == 401
    await bot.settle()
    assert slack.methods() == []


async def test_stale_timestamp_is_401_even_when_signed_correctly(bot, slack) -> None:
    """Slack's rule: a request older than 5 minutes is refused (replay protection)."""
    body = slash_command("/verify", "", response_url=slack.response_url_for())
    assert (await bot.post(body, ts=int(time.time()) - 301)).status_code == 401
    assert (await bot.post(body, ts=int(time.time()) - 10)).status_code == 200


async def test_missing_signature_headers_are_401(bot) -> None:
    response = await bot.client.post("/slack/events", content=b"command=%2Fverify",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401


async def test_retried_event_is_processed_once(bot, slack) -> None:
    """Slack re-sends an event with X-Slack-Retry-Num; the App Home is published once, the retry still gets 200."""
    body = event(HOME_OPENED, event_id="Ev-retry")
    assert (await bot.post(body, json_body=True)).status_code == 200
    await slack.wait_for("views.publish")
    retry = await bot.post(body, json_body=True, headers={"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})
    assert retry.status_code == 200
    other = await bot.post(event(HOME_OPENED, event_id="Ev-other"), json_body=True)
    assert other.status_code == 200
    await slack.wait_for("views.publish", count=2)
    await bot.settle()
    assert len(slack.of("views.publish")) == 2  # Ev-retry once, Ev-other once


async def test_a_retry_landing_on_another_process_is_dropped_through_the_shared_database(slack, mail, tmp_path) -> None:
    """A second process (uvicorn, same database) gets Slack's retry: the core's claim on the event id says it is taken."""
    settings = bot_settings(slack, mail, tmp_path)
    body = event(HOME_OPENED, event_id="Ev-two-processes")
    async with running_bot(settings) as first:
        assert (await first.post(body, json_body=True)).status_code == 200
        await slack.wait_for("views.publish")
        with app_process(settings_env(settings)) as url:
            async with httpx.AsyncClient(base_url=url) as other:
                retry = await other.post("/slack/events", content=body, headers={
                    **signed_headers(body, content_type="application/json"), "x-slack-retry-num": "1"})
                fresh_body = event(HOME_OPENED, event_id="Ev-fresh")
                fresh = await other.post("/slack/events", content=fresh_body,
                                         headers=signed_headers(fresh_body, content_type="application/json"))
            assert retry.status_code == 200 and fresh.status_code == 200
            await slack.wait_for("views.publish", count=2)  # the fresh event: the second process does work
        await first.settle()
    assert len(slack.of("views.publish")) == 2  # Ev-two-processes once (first process), Ev-fresh once (second)


async def test_without_slack_settings_the_app_boots_and_slack_routes_explain_503(tmp_path) -> None:
    app = create_app(Settings(DATABASE_URL=f"sqlite://{tmp_path}/db.sqlite3"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.post("/slack/events", content=b"{}")
            install = await client.get("/slack/install")
    assert response.status_code == 503 and install.status_code == 503
    assert response.json()["error"] == "slack_not_configured"
    assert "SLACK_SIGNING_SECRET" in response.json()["message"]


async def test_unhandled_payload_is_not_a_crash(bot: Bot, slack) -> None:
    """An action this app does not know (an old message's button) gets Bolt's 404, not a 500."""
    from tests.bot.payloads import block_actions

    response = await bot.post(block_actions({"action_id": "no_such_button", "type": "button"}))
    assert response.status_code == 404


async def test_link_buttons_are_acked(bot: Bot) -> None:
    """A URL button (Sign in with…, a digest's Details) still sends block_actions: acked, not a 404."""
    from tests.bot.payloads import block_actions

    for action_id in ("connect_oauth", "verify_first_digest_details"):
        response = await bot.post(block_actions({"action_id": action_id, "type": "button", "url": "https://x.example"}))
        assert response.status_code == 200
