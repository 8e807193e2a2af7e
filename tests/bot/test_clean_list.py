"""/clean-list end to end: progress, summary, approval rules, exactly-once cleanup, and its report.

Real parts throughout: the platform is an emulator on loopback (MailerLite), the job is the core's,
the verifier checks each address against the loopback mail servers (member{i}@example.com exists
unless i ends in 9), and the cleanup really unsubscribes in the emulator.
"""

from __future__ import annotations

import asyncio
import csv
import io

from bot.blocks import clean_list as ui
from bot.blocks.summary import APPROVE_ACTION, DOWNLOAD_ACTION, REJECT_ACTION
from core.jobs.states import State
from tests.bot.conftest import bot_settings, platform, running_bot
from tests.bot.fake_slack import TEAM_ID
from tests.bot.flows import approve_button, button, message_with, press, reply, start, updates_of
from tests.bot.payloads import view_payload, view_submission
from tests.emulators.mailerlite import MAIN_GROUP

ADMIN, OTHER_ADMIN, MEMBER, REQUESTER, GROUPIE = "U0ADMIN", "U0ADA", "U0BOB", "U0ALICE", "U0GRACE"
INVALID = ["member9@example.com", "member19@example.com"]  # of 20 members


def people(slack) -> None:
    slack.users.update({ADMIN: {"id": ADMIN, "is_admin": True}, OTHER_ADMIN: {"id": OTHER_ADMIN, "is_owner": True}, MEMBER: {"id": MEMBER, "is_admin": False},
                        REQUESTER: {"id": REQUESTER, "is_admin": False}, GROUPIE: {"id": GROUPIE, "is_admin": False}})


async def test_verify_only_shows_progress_then_a_summary_and_the_csv_without_approval(bot, slack) -> None:
    with platform("mailerlite", members=20) as (emulator, server):
        connection = await bot.connect(emulator, server)
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, mode=ui.VERIFY_ONLY)
        (posted,) = slack.of("chat.postMessage")
        assert posted.params["channel"] == "C0CHAN"
        assert "Verifying *Newsletter* on *Main* (MailerLite)" in str(posted.params["blocks"])
        assert "0 / 20 checked" in str(posted.params["blocks"]) and "Requested by <@U0ALICE>" in str(posted.params["blocks"])
        summary = await message_with(slack, ts, "Verification finished")
        (complete,) = await slack.wait_for("files.completeUploadExternal", timeout=15)
    text = str(summary.params["blocks"])
    assert "*20* addresses of *Newsletter* on *Main*" in text
    assert ":white_check_mark: 18 valid · :x: 2 invalid" in text
    assert "Credits charged: 20 · refunded: 0" in text
    assert button(summary, APPROVE_ACTION) is None and button(summary, DOWNLOAD_ACTION) is not None  # no approval
    assert complete.params["thread_ts"] == ts
    (content,) = slack.uploads.values()
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert len(rows) == 20 and sorted(r["email"] for r in rows if r["status"] == "invalid") == sorted(INVALID)
    assert emulator.counters["unsubscribed"] == 0 and emulator.counters["deleted"] == 0
    assert await bot.core.credits.balance(TEAM_ID) == 1000 - 20


async def test_approval_rules_four_eyes_and_exactly_once_under_a_triple_click(bot, slack) -> None:
    people(slack)
    with platform("mailerlite", members=20) as (emulator, server):
        connection = await bot.connect(emulator, server)
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, user=OTHER_ADMIN)
        approve = await approve_button(slack, ts)
        summary = updates_of(slack, ts)[-1]
        assert approve["style"] == "primary" and approve["confirm"]["confirm"]["text"] == "Approve"
        assert "*Planned:* Unsubscribe 2 invalid" in str(summary.params["blocks"])
        assert "Only approvers can approve. Expires" in str(summary.params["blocks"])

        await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=OTHER_ADMIN, rid="own"))
        own = await reply(slack, "own")  # an approver, but the requester
        assert own["response_type"] == "ephemeral" and "someone else must approve it (four-eyes is on)" in own["text"]
        await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=MEMBER, rid="member"))
        assert "Only approvers can approve" in (await reply(slack, "member"))["text"]
        assert emulator.counters["unsubscribed"] == 0  # nothing happened yet

        clicks = [bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=ADMIN, rid=f"a{i}")) for i in range(3)]
        assert [r.status_code for r in await asyncio.gather(*clicks)] == [200, 200, 200]
        report = await message_with(slack, ts, "Cleanup finished")
        await bot.settle()
    losers = [c.params for c in slack.of("response_url") if c.params["_rid"].startswith("a")]
    assert len(losers) == 2 and all("already approved by <@U0ADMIN>" in a["text"] for a in losers)  # one click won
    approved = await message_with(slack, ts, "Approved by <@U0ADMIN>")
    assert button(approved, APPROVE_ACTION) is None and button(approved, REJECT_ACTION) is None  # the buttons are gone
    assert "Main* (MailerLite): 2 unsubscribed. Approved by <@U0ADMIN>." in str(report.params["blocks"])
    assert emulator.counters["unsubscribed"] == 2 and all(emulator.is_unsubscribed(e) for e in INVALID)
    job = (await bot.core.jobs.list(TEAM_ID))[0]
    assert job.state is State.DONE and job.approver == ADMIN and job.applied_counts == {"unsubscribe": 2}


async def test_a_member_of_the_approvers_group_may_approve_and_four_eyes_can_be_turned_off(bot, slack) -> None:
    people(slack)
    slack.usergroups["S0APPROVERS"] = [GROUPIE]
    await bot.core.workspaces.set_approver_group(TEAM_ID, "S0APPROVERS")
    await bot.core.workspaces.set_four_eyes(TEAM_ID, False)
    with platform("mailerlite", members=10) as (emulator, server):
        connection = await bot.connect(emulator, server)
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, user=GROUPIE)
        approve = await approve_button(slack, ts)
        await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=GROUPIE, rid="self"))
        await message_with(slack, ts, "Cleanup finished")
    assert emulator.is_unsubscribed("member9@example.com")
    assert slack.of("usergroups.users.list")[0].params["usergroup"] == "S0APPROVERS"


async def test_a_read_only_key_ends_in_a_report_that_says_so(bot, slack) -> None:
    people(slack)
    with platform("mailerlite", members=20) as (emulator, server):
        connection = await bot.connect(emulator, server, credentials=emulator.read_only_credentials(server.url))
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP)
        approve = await approve_button(slack, ts)
        await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=ADMIN, rid="a"))
        report = await message_with(slack, ts, "Cleanup finished")
    text = str(report.params["blocks"])
    assert "0 unsubscribed" in text and "this API key is read-only: 2 contacts not changed" in text
    assert "Cleanup finished with failures" in text
    assert emulator.counters["unsubscribed"] == 0


async def test_reject_records_who_and_why_and_changes_nothing(bot, slack) -> None:
    people(slack)
    with platform("mailerlite", members=10) as (emulator, server):
        connection = await bot.connect(emulator, server)
        ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP)
        approve = await approve_button(slack, ts)
        await bot.post(press(slack, REJECT_ACTION, approve["value"], ts, user=MEMBER, rid="nope"))
        assert ":lock: Only approvers or the requester can reject" in (await reply(slack, "nope"))["text"]
        await bot.post(press(slack, REJECT_ACTION, approve["value"], ts, user=ADMIN, rid="r"))
        opened = (await slack.wait_for("views.open", count=2))[-1]
        modal = view_payload(opened.params["view"], values={"reason": {"value": {"type": "plain_text_input",
                                                                                   "value": "Wrong list, sorry"}}})
        assert (await bot.post(view_submission(modal, user=ADMIN))).status_code == 200
        rejected = await message_with(slack, ts, "Rejected by <@U0ADMIN>")
        assert "“Wrong list, sorry”" in str(rejected.params["blocks"]) and button(rejected, APPROVE_ACTION) is None
        await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=ADMIN, rid="late"))
        assert "This cleanup was rejected by <@U0ADMIN>." in (await reply(slack, "late"))["text"]
    job = (await bot.core.jobs.list(TEAM_ID))[0]
    assert job.state is State.CANCELLED and job.rejected_by == ADMIN and job.reject_reason == "Wrong list, sorry"
    assert emulator.counters["unsubscribed"] == 0


async def test_an_expired_approval_says_so_and_changes_nothing(slack, mail, tmp_path) -> None:
    people(slack)
    settings = bot_settings(slack, mail, tmp_path, LISTWARDEN_APPROVAL_TTL_HOURS=1 / 3600,
                            LISTWARDEN_JOB_SWEEP_SECONDS=30)  # expiry is seen by the click before any sweep
    async with running_bot(settings) as bot:
        with platform("mailerlite", members=10) as (emulator, server):
            connection = await bot.connect(emulator, server)
            ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP)
            approve = await approve_button(slack, ts)
            await asyncio.sleep(1.1)  # past the one-second approval window
            await bot.post(press(slack, APPROVE_ACTION, approve["value"], ts, user=ADMIN, rid="late"))
            answer = await reply(slack, "late")
            expired = await message_with(slack, ts, "This approval expired")
            job = await bot.core.jobs.get(approve["value"])
    assert answer["response_type"] == "ephemeral" and "This approval expired, so nothing was changed" in answer["text"]
    assert button(expired, APPROVE_ACTION) is None
    assert job.state is State.EXPIRED and job.approver is None
    assert emulator.counters["unsubscribed"] == 0


async def test_the_progress_message_is_never_updated_faster_than_the_interval(slack, mail, tmp_path) -> None:
    """Progress events come every 50 ms here; the message still changes at most once per interval, summary included."""
    interval = 0.4
    async with running_bot(bot_settings(slack, mail, tmp_path, LISTWARDEN_JOB_CHUNK=50), progress_interval=interval) as bot:
        with platform("mailerlite", members=600) as (emulator, server):
            connection = await bot.connect(emulator, server)
            ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, mode=ui.VERIFY_ONLY)
            await message_with(slack, ts, "Verification finished")
    posted = next(c for c in slack.of("chat.postMessage") if c.response["ts"] == ts)
    stamps = [posted.received] + [c.received for c in updates_of(slack, ts)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(gaps) >= 2 and min(gaps) >= interval - 0.02, gaps
    texts = [c.params["text"] for c in updates_of(slack, ts)]
    assert texts[-1].startswith("Verification finished") and any(" / 600 checked" in t for t in texts[:-1])


async def test_a_job_that_runs_out_of_credits_pauses_and_resumes_from_its_message(slack, mail, tmp_path) -> None:
    """The list grew after it was synced: the credits cover the count Slack showed, not the rows read."""
    people(slack)
    async with running_bot(bot_settings(slack, mail, tmp_path, LISTWARDEN_INITIAL_CREDITS=25)) as bot:
        with platform("mailerlite", members=20) as (emulator, server):
            connection = await bot.connect(emulator, server)  # synced: 20 subscribers
            emulator.state.members = 30
            ts = await start(bot, slack, connection_id=connection.id, list_id=MAIN_GROUP, mode=ui.VERIFY_ONLY)
            paused = await message_with(slack, ts, "Paused: out of credits")
            resume = button(paused, "job_resume")
            assert "Out of credits after 25 addresses; 5 are not verified yet." in str(paused.params["blocks"])
            await bot.post(press(slack, "job_resume", resume["value"], ts, user=MEMBER, rid="early"))
            assert "still no credits left" in (await reply(slack, "early"))["text"]
            await bot.core.credits.grant(TEAM_ID, 10, actor=ADMIN)
            await bot.post(press(slack, "job_resume", resume["value"], ts, user=MEMBER, rid="go"))
            summary = await message_with(slack, ts, "Verification finished")
            job = (await bot.core.jobs.list(TEAM_ID))[0]
    assert "*30* addresses" in str(summary.params["blocks"]) and job.charged == 30 and job.state is State.DONE


async def test_a_job_of_another_workspace_cannot_be_approved_from_this_one(bot, slack) -> None:
    people(slack)
    with platform("mailerlite", members=10) as (emulator, server):
        theirs = await bot.connect(emulator, server, team="T0OTHER")
        job = await bot.core.jobs.start_cleanup("T0OTHER", theirs.id, MAIN_GROUP, requester="U0X",
                                                policy=None)
        await bot.post(press(slack, APPROVE_ACTION, job.id, "1.1", user=ADMIN, rid="cross"))
        answer = await reply(slack, "cross")
    assert answer["response_type"] == "ephemeral" and "I can't find this cleanup" in answer["text"]
    assert (await bot.core.jobs.get(job.id)).approver is None
