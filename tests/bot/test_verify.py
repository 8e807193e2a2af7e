"""/verify and "Verify this file" against loopback mail servers: per-address answers, credits, and bulk jobs.

The verifier is the real one (the jobs engine's), aimed at the `mail` world: member{i}@example.com
exists unless i ends in 9, mailinator.com is disposable, gmial.com does not exist.
"""

from __future__ import annotations

import csv
import io

from tests.bot.conftest import bot_settings, eventually, running_bot
from tests.bot.fake_slack import TEAM_ID
from tests.bot.payloads import message_shortcut, slash_command


async def test_inline_answer_per_address_with_emoji_score_reason_and_suggestion(bot, slack) -> None:
    response = await bot.post(slash_command(
        "/verify", "member0@example.com member9@example.com cat@gmial.com temp@mailinator.com oops",
        response_url=slack.response_url_for()))
    assert response.json()["text"].startswith(":hourglass_flowing_sand: Checking 4 addresses")
    (reply,) = await slack.wait_for("response_url", timeout=15)
    assert reply.params["response_type"] == "ephemeral" and reply.params["replace_original"] is True
    sections = [b["text"]["text"] for b in reply.params["blocks"]]
    assert sections[0].startswith(":white_check_mark: *member0@example.com* — *valid* · score ")
    assert sections[1].startswith(":x: *member9@example.com* — *invalid*")
    assert sections[2].startswith(":x: *cat@gmial.com*") and "Did you mean *cat@gmail.com*?" in sections[2]
    assert sections[3].startswith(":wastebasket: *temp@mailinator.com* — *disposable*")
    assert "`oops` is not an email address" in sections[4]
    assert await bot.core.credits.balance(TEAM_ID) == 1000 - 4  # one credit per address; none was unknown


async def test_repeats_are_verified_and_charged_once_and_mailto_links_are_read(bot, slack) -> None:
    await bot.post(slash_command("/verify", "<mailto:member0@example.com|member0@example.com> MEMBER0@example.com",
                                 response_url=slack.response_url_for()))
    (reply,) = await slack.wait_for("response_url", timeout=15)
    assert len(reply.params["blocks"]) == 1
    assert await bot.core.credits.balance(TEAM_ID) == 999


async def test_without_credits_the_answer_says_how_many_are_missing_and_nothing_is_verified(slack, mail, tmp_path) -> None:
    async with running_bot(bot_settings(slack, mail, tmp_path, LISTWARDEN_INITIAL_CREDITS=1)) as bot:
        await bot.post(slash_command("/verify", "member0@example.com member1@example.com",
                                     response_url=slack.response_url_for()))
        (reply,) = await slack.wait_for("response_url")
        assert reply.params["response_type"] == "ephemeral"
        assert "Not enough verification credits: this needs 2 and 1 remain (1 short)" in reply.params["text"]
        assert await bot.core.credits.balance(TEAM_ID) == 1


async def test_more_than_25_addresses_become_a_job_with_progress_and_a_csv_in_the_thread(bot, slack) -> None:
    addresses = [f"member{i}@example.com" for i in range(30)]
    ack = (await bot.post(slash_command("/verify", " ".join(addresses), response_url=slack.response_url_for()))).json()
    assert "30 addresses: starting a verification job" in ack["text"]
    (posted,) = await slack.wait_for("chat.postMessage")
    assert posted.params["channel"] == "C0CHAN" and "Verifying 30 addresses" in posted.params["text"]
    (complete,) = await slack.wait_for("files.completeUploadExternal", timeout=20)
    assert complete.params["channel_id"] == "C0CHAN" and complete.params["thread_ts"] == posted.response["ts"]
    summary = [c for c in slack.of("chat.update") if c.params["ts"] == posted.response["ts"]][-1]
    text = str(summary.params["blocks"])
    assert "Verification finished" in text and ":white_check_mark: 27 valid" in text and ":x: 3 invalid" in text
    (content,) = slack.uploads.values()
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert [r["email"] for r in rows] == addresses
    assert {r["email"]: r["status"] for r in rows}["member19@example.com"] == "invalid"
    assert await bot.core.credits.balance(TEAM_ID) == 1000 - 30


async def test_verify_this_file_reads_the_csv_and_answers_in_its_thread_keeping_every_row(bot, slack) -> None:
    slack.files["F1"] = (b"name,Email\nAnn,member1@example.com\nBob,member9@example.com\n"
                         b"Ann again,MEMBER1@example.com\n")
    message = {"type": "message", "ts": "1700000000.555", "user": "U0ALICE", "text": "our list",
               "files": [{"id": "F1", "name": "list.csv", "filetype": "csv", "size": 70,
                          "url_private_download": slack.url + "/files/F1"}]}
    assert (await bot.post(message_shortcut("verify_file", message, response_url=slack.response_url_for()))).status_code == 200
    (posted,) = await slack.wait_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1700000000.555" and "Verifying list.csv" in posted.params["text"]
    (complete,) = await slack.wait_for("files.completeUploadExternal", timeout=20)
    assert complete.params["thread_ts"] == "1700000000.555"
    (content,) = slack.uploads.values()
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows[0][:2] == ["name", "Email"] and [r[0] for r in rows[1:]] == ["Ann", "Bob", "Ann again"]
    assert [r[2] for r in rows[1:]] == ["valid", "invalid", "valid"]
    assert await bot.core.credits.balance(TEAM_ID) == 1000 - 2  # the repeat is charged once


async def test_verify_this_file_without_a_csv_or_without_addresses_explains(bot, slack) -> None:
    await bot.post(message_shortcut("verify_file", {"type": "message", "ts": "1.2", "text": "hi"},
                                    response_url=slack.response_url_for("none")))
    slack.files["F2"] = b"name,city\nAnn,Paris\nBob,Lyon\n"
    with_file = {"type": "message", "ts": "1.3", "text": "x", "files": [
        {"id": "F2", "name": "people.csv", "filetype": "csv", "size": 20, "url_private_download": slack.url + "/files/F2"}]}
    await bot.post(message_shortcut("verify_file", with_file, response_url=slack.response_url_for("nocol")))
    replies = {c.params["_rid"]: c.params for c in await slack.wait_for("response_url", count=2)}
    assert replies["none"]["response_type"] == "ephemeral" and "no CSV file" in replies["none"]["text"]
    assert "No email column found in people.csv" in replies["nocol"]["text"]
    assert "--column" not in replies["nocol"]["text"]
    await eventually(lambda: slack.of("chat.delete"))  # the progress message it had posted is taken back
    assert await bot.core.jobs.list(TEAM_ID) == []


async def test_a_job_in_a_channel_the_bot_is_not_in_says_how_to_fix_it(bot, slack) -> None:
    slack.not_in_channels.add("C0CHAN")
    await bot.post(slash_command("/verify", " ".join(f"member{i}@example.com" for i in range(26)),
                                 response_url=slack.response_url_for()))
    (reply,) = await slack.wait_for("response_url")
    assert reply.params["response_type"] == "ephemeral" and "/invite @Listwarden" in reply.params["text"]
    assert await bot.core.jobs.list(TEAM_ID) == []
