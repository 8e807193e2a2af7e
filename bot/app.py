"""Build the Bolt app for the configured mode: single workspace, multi-workspace OAuth, or none.

Modes (decided from the settings, see `slack_mode`):
- single: SLACK_BOT_TOKEN (+ SLACK_SIGNING_SECRET for HTTP, or SLACK_APP_TOKEN for Socket Mode)
- oauth:  SLACK_CLIENT_ID + SLACK_CLIENT_SECRET + SLACK_SIGNING_SECRET; installations and OAuth
          states live in the core's tables (core/storage/slack.py), tokens sealed at rest
- off:    nothing configured; the routes answer 503 with what to set (see `bot.asgi`)
"""

from __future__ import annotations

import logging
import re
from typing import Literal

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.connect import OAUTH_ACTION
from bot.dedupe import claim_events
from bot.listeners import api_keys, approval, clean_list, connect, home, verify
from bot.listeners import help as help_listener
from bot.listeners import settings as settings_listener
from bot.services import BotServices
from core.settings import Settings
from core.storage.slack import TortoiseInstallationStore, TortoiseOAuthStateStore

log = logging.getLogger(__name__)
# The fewest that work (manifest.yml grants exactly these; a test keeps the two equal):
BOT_SCOPES = [
    "commands",  # the three slash commands and the message shortcut
    "chat:write",  # progress, summaries, approvals, ephemeral replies
    "files:read",  # read the CSV behind "Verify this file"
    "files:write",  # upload results CSVs
    "users:read",  # is the approver a workspace admin?
    "usergroups:read",  # is the approver in the approvers group? (and the settings' group picker)
]

Mode = Literal["single", "oauth", "off"]
DIGEST_DETAILS_ACTION = "verify_first_digest_details"  # the "Details" link on a verify-first digest (bot/notices.py)


def slack_mode(settings: Settings) -> Mode:
    if settings.slack_bot_token is not None:
        return "single"
    if settings.slack_client_id and settings.slack_client_secret is not None and settings.slack_signing_secret is not None:
        return "oauth"
    return "off"


def missing_settings(settings: Settings) -> list[str]:
    """What to set for Slack to work, for the 503 explanation; empty when the bot can run."""
    if slack_mode(settings) == "off":
        return ["SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN)",
                "or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET"]
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        return ["SLACK_SIGNING_SECRET"]
    return []


def web_client(settings: Settings, token: str | None = None, *, session=None) -> AsyncWebClient:
    """The client every listener gets (Bolt copies its base_url and session per request); retries Slack's 429s."""
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url, session=session)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def build_app(services: BotServices) -> AsyncApp:
    settings = services.settings
    mode = slack_mode(settings)
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    if mode == "single":
        assert settings.slack_bot_token is not None
        app = AsyncApp(client=web_client(settings, settings.slack_bot_token.get_secret_value()),
                       signing_secret=signing_secret or "socket-mode-only",
                       request_verification_enabled=signing_secret is not None, process_before_response=True)
    elif mode == "oauth":
        from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings

        assert settings.slack_client_secret is not None
        app = AsyncApp(
            client=web_client(settings),
            signing_secret=signing_secret,
            process_before_response=True,  # bot.acking: the answer goes out the moment a listener acks
            oauth_settings=AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=settings.slack_client_secret.get_secret_value(),
                scopes=BOT_SCOPES,
                redirect_uri=settings.public_url.rstrip("/") + "/slack/oauth_redirect",
                installation_store=TortoiseInstallationStore(settings, box=services.core.box),
                installation_store_bot_only=True,
                state_store=TortoiseOAuthStateStore(settings),
            ),
        )
        app.enable_token_revocation_listeners()
    else:
        raise RuntimeError("Slack is not configured: " + "; ".join(missing_settings(settings)))
    app.use(claim_events(services.core.idempotency))
    for listener in (verify, help_listener, home, connect, clean_list, approval, settings_listener, api_keys):
        listener.register(app, services)

    @app.action(re.compile(f"^({OAUTH_ACTION}|{DIGEST_DETAILS_ACTION})$"))
    async def link_clicked(ack) -> None:
        await ack()  # a URL button still sends block_actions; the browser does the rest

    return app


def client_for(app: AsyncApp, settings: Settings):  # -> bot.job_messages.ClientFor
    """(team_id) -> a Web API client with that workspace's bot token, for messages a job updates later."""

    async def find(team_id: str) -> AsyncWebClient:
        if app.client.token:  # single workspace
            return app.client
        bot = await app.installation_store.async_find_bot(enterprise_id=None, team_id=team_id)
        return web_client(settings, bot.bot_token if bot else None, session=app.client.session)

    return find
