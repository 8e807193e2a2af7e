"""With SLACK_APP_TOKEN the bot connects over Socket Mode at start-up and answers envelopes on the socket."""

from __future__ import annotations

import asyncio
import urllib.parse

from core.settings import Settings
from listwarden.app import create_app
from tests.bot.fake_slack import BOT_TOKEN
from tests.bot.payloads import slash_command


async def test_slash_command_over_socket_mode_is_acked_on_the_socket(slack, tmp_path) -> None:
    form = dict(urllib.parse.parse_qsl(slash_command("/verify", "", response_url=slack.response_url_for())))
    slack.socket_envelopes.append({"envelope_id": "env-1", "type": "slash_commands", "payload": form,
                                   "accepts_response_payload": True})
    settings = Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN="xapp-1-test", SLACK_API_URL=slack.url + "/api/",
                        DATABASE_URL=f"sqlite://{tmp_path}/db.sqlite3")  # no signing secret: Socket Mode needs none
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(300):
            if slack.socket_replies:
                break
            await asyncio.sleep(0.01)
    assert slack.of("apps.connections.open")[0].headers["authorization"] == "Bearer xapp-1-test"
    reply = slack.socket_replies[0]
    assert reply["envelope_id"] == "env-1"
    assert "up to 25" in reply["payload"]["blocks"][0]["text"]["text"]  # the /verify help, as the ack
