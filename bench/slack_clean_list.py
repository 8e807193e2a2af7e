"""A /clean-list of 10,000 contacts end to end through the Slack flow, against a MailerLite emulator on loopback.

Signed requests in Slack's shapes drive the real app and the real core: /listwarden connect (the key
checked live), /clean-list, the modal submission (Clean automatically, the seed rules), then an
admin's Approve click. The core's job reads the list page by page from the emulator, verifies every
address against loopback mail servers (tests/mailservers: one in ten does not exist), and unsubscribes
the invalid ones in the emulator. The progress message is updated in place with the production
interval (2 s). Prints the wall time of each phase, how many chat.update calls the message got and the
shortest gap between two of them (the target: never under 2 s), and the peak RSS.

The platform's client-side rate limit (MailerLite: 120 requests a minute, one PUT per unsubscribe) is
lifted for the emulator, as the tests do, and the SMTP politeness limits are raised for the one
loopback mail host; both are stated in the output.

    .venv/bin/python bench/slack_clean_list.py [--contacts 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.progress import MIN_INTERVAL  # noqa: E402
from core.settings import Settings  # noqa: E402
from tests.bot.conftest import running_bot  # noqa: E402
from tests.bot.fake_slack import BOT_TOKEN, FakeSlack  # noqa: E402
from tests.bot.flows import button, message_with, press, start, updates_of  # noqa: E402
from tests.bot.payloads import SECRET, slash_command, view_payload, view_submission  # noqa: E402
from tests.emulators import mailerlite  # noqa: E402
from tests.emulators.server import LiveServer  # noqa: E402
from tests.mailservers import MailWorld  # noqa: E402
from tests.storage.fixtures import TEST_KEY  # noqa: E402

SMTP = {"LISTWARDEN_SMTP_PER_HOST": "5", "LISTWARDEN_SMTP_RCPT_PER_SESSION": "100", "LISTWARDEN_SMTP_CONNECT_RATE": "10"}


async def connect_through_slack(bot, fake: FakeSlack) -> str:
    await bot.post(slash_command("/listwarden", "connect", response_url=fake.response_url_for("c")))
    opened = (await fake.wait_for("views.open", timeout=10))[-1]
    view = view_payload(opened.params["view"], values={}, view_id=opened.response["view"]["id"])
    view["private_metadata"] = json.dumps({"platform": "mailerlite"})
    values = {"cred:api_key": {"cred:api_key": {"type": "plain_text_input", "value": mailerlite.GOOD_TOKEN}},
              "name": {"name": {"type": "plain_text_input", "value": "Main"}}}
    response = await bot.post(view_submission(view | {"state": {"values": values}}))
    assert response.status_code == 200 and not response.content, response.text
    (connection,) = await bot.core.connections.list("T0TEAM")
    return connection.id


async def main(contacts: int) -> None:
    fake = FakeSlack()
    slack = LiveServer(fake.app).start()
    fake.url = slack.url
    fake.users["U0ADMIN"] = {"id": "U0ADMIN", "is_admin": True}
    world = MailWorld()
    host = world.smtp_host(mailboxes={f"member{i}@example.com" for i in range(contacts) if i % 10 != 9},
                           max_conn=50, max_rcpt=200)
    world.domain("example.com", mx=[host])
    emulator = mailerlite.build(members=contacts)
    platform = LiveServer(emulator.app).start()
    tmp = tempfile.mkdtemp(prefix="lw-bench-clean-")
    with world.running():
        settings = Settings(SLACK_SIGNING_SECRET=SECRET, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.url + "/api/",
                            DATABASE_URL=f"sqlite://{tmp}/db.sqlite3", LISTWARDEN_SECRET_KEY=TEST_KEY,
                            LISTWARDEN_INITIAL_CREDITS=contacts * 2, LISTWARDEN_LOG_LEVEL="warning",
                            LISTWARDEN_PLATFORM_BASE_URLS=f"mailerlite={platform.url}", **world.env(), **SMTP)
        async with running_bot(settings, progress_interval=MIN_INTERVAL) as bot:
            connection_id = await connect_through_slack(bot, fake)
            started = time.perf_counter()
            ts = await start(bot, fake, connection_id=connection_id, list_id=mailerlite.MAIN_GROUP)
            posted_at = fake.of("chat.postMessage")[-1].received
            approve = button(await message_with(fake, ts, "cleanup_approve", timeout=600), "cleanup_approve")
            verified = time.perf_counter()
            await bot.post(press(fake, "cleanup_approve", approve["value"], ts, user="U0ADMIN", rid="a"))
            await message_with(fake, ts, "Cleanup finished", timeout=600)
            done = time.perf_counter()
            job = (await bot.core.jobs.list("T0TEAM"))[0]
    updates = updates_of(fake, ts)
    stamps = [c.received for c in updates]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    platform.stop()
    slack.stop()
    print(f"contacts: {contacts:,} · verified {job.processed:,} · {dict(job.status_counts)} · "
          f"unsubscribed on the platform: {emulator.counters['unsubscribed']:,} · credits charged {job.charged:,}")
    print(f"verify phase (submit to summary): {verified - started:.1f} s · cleanup phase (approve to report): "
          f"{done - verified:.1f} s · total: {done - started:.1f} s")
    if gaps:
        print(f"progress message: {len(updates)} chat.update calls, shortest gap {min(gaps):.2f} s "
              f"(target: never under 2 s: {'met' if min(gaps) >= 2.0 else 'MISSED'})")
    for call in updates:
        print(f"  +{call.received - stamps[0] + (stamps[0] - posted_at):6.2f} s  {call.params['text'][:90]}")
    print(f"peak RSS of the whole process (app, emulator, mail servers, fake Slack): "
          f"{psutil.Process().memory_info().rss / 2**20:.0f} MiB")
    print("limits changed for loopback: MailerLite client rate limit lifted; " + ", ".join(f"{k}={v}" for k, v in SMTP.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().contacts))
