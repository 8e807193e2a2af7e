"""/listwarden: help, connect, settings."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.acking import after_ack
from bot.services import BotServices

HELP = (
    "*Listwarden* keeps your email lists clean.\n"
    "• `/verify a@example.com …` — verify addresses (up to 25 here; more become a job with a CSV)\n"
    "• `/clean-list` — verify a connected list, then a teammate approves the cleanup\n"
    "• `/listwarden connect` — connect Mailchimp, Klaviyo, HubSpot, Brevo, ActiveCampaign, MailerLite, SendGrid or ConvertKit\n"
    "• `/listwarden settings` — approvers, four-eyes and credits (admins)\n"
    "• Message shortcut *Verify this file* — verify a CSV attached to a message"
)


def help_message(note: str | None = None) -> dict[str, Any]:
    text = (note + "\n\n" if note else "") + HELP
    return {"response_type": "ephemeral", "text": "Listwarden help",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def register(app: AsyncApp, services: BotServices) -> None:
    subcommands = services.subcommands

    @app.command("/listwarden")
    @after_ack(services.tasks, services.answers)
    async def listwarden_command(ack, command: dict[str, Any], body, client, respond, context) -> None:
        word, _, rest = (command.get("text") or "").strip().partition(" ")
        handler = subcommands.get(word.lower())
        if handler is None:
            await ack(**help_message(None if word.lower() in ("", "help") else f":thinking_face: I don't know `{word}`."))
            return
        await handler(ack=ack, command=command, body=body, client=client, respond=respond, context=context, rest=rest)
