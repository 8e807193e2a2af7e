"""Slack digests: one message per connection per window, only for windows with new subscribers.

The app runs with 1.8-second windows (LISTWARDEN_DIGEST_MINUTES=0.03) and posts, through
bot/notices.py and slack_sdk, to a loopback stand-in for Slack's Web API that records every
chat.postMessage. What must hold: the words, the channel, the link to the details, and that a
burst of deliveries over several windows never gives a connection two messages in one window.
"""

from __future__ import annotations

import asyncio
import itertools
import json

import httpx
import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.notices import install as install_notices
from tests.emulators.server import serve
from tests.webhooks.conftest import app_settings, settled, wait_for
from tests.webhooks.live import live_app
from tests.webhooks.platforms import MailerLite

pytestmark = pytest.mark.asyncio(loop_scope="module")
WINDOW_MINUTES = 0.03


class SlackApi:
    """chat.postMessage on loopback: records what was posted, answers as Slack does."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

        async def post_message(request: Request) -> JSONResponse:
            body = await request.body()
            data = json.loads(body) if request.headers.get("content-type", "").startswith("application/json") else dict(await request.form())
            self.messages.append(data)
            return JSONResponse({"ok": True, "channel": data.get("channel"), "ts": f"{len(self.messages)}.0001"})

        self.app = Starlette(routes=[Route("/api/chat.postMessage", post_message, methods=["POST"])])


@pytest.fixture(scope="module")
def slack():
    api = SlackApi()
    with serve(api.app) as server:
        api.url = server.url + "/api/"
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(world, tmp_path_factory, slack):
    settings = app_settings(tmp_path_factory.mktemp("digest"), world, LISTWARDEN_DIGEST_MINUTES=WINDOW_MINUTES)
    async with live_app(settings) as running:
        async def client_for(team_id: str) -> AsyncWebClient:
            return AsyncWebClient(token=f"xoxb-{team_id}", base_url=slack.url)

        running.poster = install_notices(running.runtime, client_for)
        yield running


async def test_one_digest_per_window_with_a_link_to_the_details(app, slack, connect):
    quiet = await connect(MailerLite, "T-digest-quiet")  # no channel: never posted about
    loud = await connect(MailerLite, "T-digest")
    await app.services.connections.set_notice_channel("T-digest", loud.cnx.id, "C-NOTICES")
    async with httpx.AsyncClient(base_url=app.url) as client:
        async def sign_up(platform, n: int) -> None:
            email = f"member{n}@example.com"
            hook = await platform.delivery(email, platform.subscribe(email))
            assert (await client.post(hook.path, headers=hook.headers, content=hook.body)).status_code == 200

        width = app.verify_first.digests.width
        # a burst spread over about two windows: 8 subscribers to the loud connection, 2 to the quiet one
        for n in (1, 2, 4, 5, 6, 7, 8, 9):  # member2 bounces
            await sign_up(loud, n)
            await asyncio.sleep(width / 4)
        await sign_up(quiet, 10)
        await sign_up(quiet, 12)
        await settled(app, loud.cnx.id, count=8)
        await settled(app, quiet.cnx.id, count=2)
        await wait_for(lambda: sum(d.new for d in app.poster.posted) == 8, timeout=4 * width + 5, what="every subscriber in a digest")
        await asyncio.sleep(2 * width)  # and nothing more comes: windows without sign-ups are quiet

    posted = app.poster.posted
    assert {d.connection_id for d in posted} == {loud.cnx.id}, "no channel, no message"
    starts = [d.start for d in posted]
    assert len(starts) == len(set(starts)), "one message per window"
    assert all(b.start - a.start >= a.end - a.start for a, b in itertools.pairwise(posted))
    assert len(slack.messages) == len(posted) and all(m["channel"] == "C-NOTICES" for m in slack.messages)
    with_invalid = [d for d in posted if d.acted]
    assert [dict(d.acted) for d in with_invalid] == [{"invalid:unsubscribe": 1}]
    text = with_invalid[0].text()
    assert "new subscribers verified in the last" in text or "new subscriber verified in the last" in text
    assert "1 invalid unsubscribed" in text
    assert with_invalid[0].link in json.dumps(slack.messages)

    async with httpx.AsyncClient() as client:
        page = await client.get(with_invalid[0].link)
        assert page.status_code == 200 and "member2@example.com" in page.text and "unsubscribe" in page.text
        csv = await client.get(with_invalid[0].link + "?format=csv")
        assert csv.headers["content-type"].startswith("text/csv") and "member2@example.com,,invalid,unsubscribe,invalid,done" in csv.text
        assert (await client.get(with_invalid[0].link.rsplit("/", 1)[0] + "/not-a-token")).status_code == 404


async def test_digest_words():
    from datetime import UTC, datetime

    from core.verify_first import Digest

    now = datetime.now(UTC)
    digest = Digest("T1", "cnx_1", "Newsletter", "mailchimp", "C1", now, now, 15, new=38, verified=37,
                    acted={"invalid:unsubscribe": 3, "disposable:delete": 1}, failed={"catch_all:delete": 2},
                    whitelisted=1)
    assert digest.text() == ("38 new subscribers verified in the last 15 min: 3 invalid unsubscribed, 1 disposable deleted, "
                             "1 whitelisted kept unverified (2 catch-all could not be deleted)")
