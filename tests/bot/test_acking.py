"""A listener that fails right after ack() still answers Slack with its ack (plain Bolt answers 404 then)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.acking import after_ack
from bot.services import BackgroundTasks
from tests.bot.fake_slack import BOT_TOKEN
from tests.bot.payloads import SECRET, signed_headers, slash_command


async def test_failure_after_ack_keeps_the_ack_and_is_contained(slack) -> None:
    tasks = BackgroundTasks()
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.url + "/api/"), signing_secret=SECRET)

    @app.command("/verify")
    @after_ack(tasks)
    async def fails_after_ack(ack, command) -> None:
        await ack(text=f"got {command['text']}")
        raise RuntimeError("the work after the ack broke")

    body = slash_command("/verify", "x", response_url=slack.response_url_for())
    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(
        body, content_type="application/x-www-form-urlencoded")))
    await tasks.join()
    assert response.status == 200
    assert response.body == "got x"


async def test_failure_before_ack_is_a_500(slack) -> None:
    tasks = BackgroundTasks()
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack.url + "/api/"), signing_secret=SECRET)

    @app.command("/verify")
    @after_ack(tasks)
    async def fails_first(ack) -> None:
        raise RuntimeError("broke before acking")

    body = slash_command("/verify", "x", response_url=slack.response_url_for())
    response = await app.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(
        body, content_type="application/x-www-form-urlencoded")))
    assert response.status == 500
