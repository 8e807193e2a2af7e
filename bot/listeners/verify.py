"""/verify and the "Verify this file" message shortcut.

Up to 25 addresses are verified right away and answered ephemerally, one line each, charged one
credit per unique address with unknowns refunded (the seeds' rule, through `core.credits`).
More than that, or a CSV behind the shortcut, becomes the core's bulk-file job: a progress
message in the channel, then a summary and the results CSV in its thread (`bot.job_messages`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.acking import after_ack
from bot.addresses import INLINE_LIMIT, parse_command_text
from bot.blocks.limits import truncate
from bot.blocks.progress import progress_blocks
from bot.blocks.verify import checking_message, help_message, not_addresses_section, results_message
from bot.job_messages import slack_notify
from bot.services import BotServices
from core.credits import InsufficientCredits
from core.verify.files import FileFormatError
from core.verify.status import info

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 50 * 1024 * 1024
FILE_TYPES = ("csv", "text", "txt", "tsv")
NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")
INVITE = (":warning: I am not in this channel, so I cannot post the progress and results here. "
          "Invite me with `/invite @Listwarden` and try again.")


def register(app: AsyncApp, services: BotServices) -> None:
    core = services.core

    @app.command("/verify")
    @after_ack(services.tasks, services.answers)
    async def verify_command(ack, command: dict[str, Any], respond, client) -> None:
        parsed = parse_command_text(command.get("text", ""))
        if not parsed.addresses and not parsed.not_addresses:
            await ack(**help_message())
            return
        if not parsed.addresses:
            await ack(response_type="ephemeral", text="No email address to verify.",
                      blocks=[not_addresses_section(parsed.not_addresses)])
            return
        team_id, user_id = command["team_id"], command["user_id"]
        if len(parsed.addresses) > INLINE_LIMIT:
            await ack(response_type="ephemeral",
                      text=f":hourglass_flowing_sand: {len(parsed.addresses):,} addresses: starting a verification job; "
                           "progress and a results CSV will appear in the channel.")
            content = "\n".join(parsed.addresses).encode()
            await start_file_job(services, client, respond, team_id=team_id, user_id=user_id,
                                 channel=command["channel_id"], thread_ts=None, content=content,
                                 filename="addresses.txt", label=f"{len(parsed.addresses):,} addresses")
            return
        await ack(**checking_message(len(parsed.addresses)))
        key = f"slack:{team_id}:{command.get('trigger_id') or id(command)}"
        try:
            await core.credits.charge(team_id, len(parsed.addresses), reason="Slack /verify", key=key)
        except InsufficientCredits as err:
            await respond(response_type="ephemeral", replace_original=True, text=f":warning: {err}")
            return
        try:
            verifier = await services.verifier()
            results = await asyncio.gather(*(verifier.verify(a) for a in parsed.addresses))
        except Exception:
            log.exception("inline verification failed")
            await core.credits.refund(team_id, len(parsed.addresses), reason="verification failed", key=key + ":failed")
            await respond(response_type="ephemeral", replace_original=True,
                          text=":warning: Verification failed on the server, and the credits were refunded. Try again in "
                               "a minute; if it keeps failing, your admin will find the details in Listwarden's log.")
            return
        refunds = sum(1 for r in results if info(r.status).refunded)
        await core.credits.refund(team_id, refunds, reason="unknown results refunded", key=key + ":refund")
        await respond(**results_message(list(results), parsed.not_addresses))

    @app.shortcut("verify_file")
    @after_ack(services.tasks, services.answers)
    async def verify_file_shortcut(ack, shortcut: dict[str, Any], client, respond) -> None:
        await ack()
        files = (shortcut.get("message") or {}).get("files") or []
        chosen = next((f for f in files if f.get("filetype") in FILE_TYPES
                       or str(f.get("name", "")).lower().endswith((".csv", ".txt", ".tsv"))), None)
        if chosen is None:
            await respond(response_type="ephemeral", text=":warning: That message has no CSV file. "
                          "Attach a .csv with a column of addresses (or a .txt, one per line), then use *Verify this file* on it.")
            return
        try:
            content = await download(client, chosen)
        except (httpx.HTTPError, SlackApiError, Unreadable):
            await respond(response_type="ephemeral", text=":warning: I could not read that file. "
                          "Make sure I am in this channel and the file is under 50 MB.")
            return
        message = shortcut["message"]
        await start_file_job(services, client, respond, team_id=shortcut["team"]["id"], user_id=shortcut["user"]["id"],
                             channel=shortcut["channel"]["id"], thread_ts=message.get("thread_ts") or message["ts"],
                             content=content, filename=str(chosen.get("name") or "file.csv"),
                             label=str(chosen.get("name") or "the file"))


class Unreadable(Exception):
    """The file is too large or Slack would not hand it over."""


async def download(client, file: dict[str, Any]) -> bytes:
    """Fetch `url_private_download` with the bot token (files:read); Slack serves a login page without it."""
    if int(file.get("size") or 0) > MAX_FILE_BYTES:
        raise Unreadable()
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        found = (await client.files_info(file=file["id"]))["file"]
        url = found.get("url_private_download") or found["url_private"]
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as http:
        response = await http.get(url, headers={"Authorization": f"Bearer {client.token}"})
    if response.status_code != 200 or len(response.content) > MAX_FILE_BYTES:
        raise Unreadable()
    return response.content


async def start_file_job(services: BotServices, client, respond, *, team_id: str, user_id: str, channel: str,
                         thread_ts: str | None, content: bytes, filename: str, label: str) -> None:
    """Post the progress message, then hand the rows to the core's bulk-file job; a refusal takes the message back."""
    subject = f"*{truncate(label, 200)}* for <@{user_id}>"
    try:
        posted = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=f"Verifying {label}: reading…",
                                               blocks=progress_blocks(f"Verifying {subject}", 0, 0, {}))
    except SlackApiError as err:
        if err.response.get("error") not in NOT_IN_CHANNEL:
            raise
        await respond(response_type="ephemeral", text=INVITE)
        return
    notify = slack_notify(team_id, channel, posted["ts"], thread_ts=thread_ts or posted["ts"], subject=subject,
                          requester=user_id)
    try:
        await services.jobs.start_bulk_file(team_id, content, requester=user_id, filename=filename, notify=notify)
    except (FileFormatError, InsufficientCredits) as err:
        await client.chat_delete(channel=channel, ts=posted["ts"])
        reason = str(err)
        await respond(response_type="ephemeral", text=f":warning: {reason}")
