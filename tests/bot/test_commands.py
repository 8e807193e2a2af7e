"""Slash commands that need nothing but Slack: help texts and friendly answers to bad input."""

from __future__ import annotations

from tests.bot.payloads import slash_command


async def test_verify_without_arguments_shows_help_in_the_ack(bot, slack) -> None:
    response = await bot.post(slash_command("/verify", "", response_url=slack.response_url_for()))
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "up to 25" in body["blocks"][0]["text"]["text"]


async def test_verify_with_no_address_at_all_says_what_was_wrong(bot, slack) -> None:
    response = await bot.post(slash_command("/verify", "hello world", response_url=slack.response_url_for()))
    body = response.json()
    assert body["response_type"] == "ephemeral"
    text = body["blocks"][0]["text"]["text"]
    assert "`hello`, `world` are not an email address" in text and "name@example.com" in text


async def test_listwarden_help_and_unknown_subcommand(bot, slack) -> None:
    help_body = (await bot.post(slash_command("/listwarden", "", response_url=slack.response_url_for()))).json()
    assert "/clean-list" in help_body["blocks"][0]["text"]["text"]
    unknown = (await bot.post(slash_command("/listwarden", "frobnicate", response_url=slack.response_url_for()))).json()
    assert unknown["response_type"] == "ephemeral"
    assert "I don't know `frobnicate`" in unknown["blocks"][0]["text"]["text"]
