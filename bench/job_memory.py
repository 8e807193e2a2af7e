"""A 1,000,000-contact job's process stays under 300 MB (target), measured while the job runs.

One helper process serves a MailerLite emulator whose list has N members (generated page by
page, never held) and the loopback DNS of tests/mailservers. This process is the job's
process, exactly as in `listwarden serve` (embedded runner, SQLite in a temporary directory):
it connects the emulator, starts a verify-list job on the whole list, and samples its own
resident memory every 0.2 s until the job is done. Members are streamed from the platform page
by page, read into the database in batches, verified and recorded in chunks.

The verifier runs with `smtp=False` (syntax and DNS against the loopback DNS): a million SMTP
probes at one loopback host would measure that host, not the job. `--smtp` probes the
emulator's addresses over SMTP too, at a loopback mail host.

    .venv/bin/python bench/job_memory.py [--members 1000000] [--smtp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HELPER = r"""
import json, sys, threading
from tests.emulators import mailerlite
from tests.emulators.server import LiveServer
from tests.mailservers import MailWorld
members = int(sys.argv[1])
world = MailWorld()
host = world.smtp_host(catch_all=set())
world.domain("example.com", mx=[host], catch_all=True)
world.start()
emulator = mailerlite.build(members=members)
server = LiveServer(emulator.app).start()
print(json.dumps({"url": server.url, "env": world.env(), "credentials": emulator.credentials(server.url),
                  "list_id": emulator.list_id}), flush=True)
threading.Event().wait()
"""


def sample(stop: threading.Event, peak: list[int]) -> None:
    me = psutil.Process()
    while not stop.is_set():
        peak[0] = max(peak[0], me.memory_info().rss)
        stop.wait(0.2)


async def run(members: int, smtp: bool, helper: dict) -> None:
    os.environ.update(helper["env"])
    tmp = tempfile.mkdtemp()
    from core.services import Services
    from core.settings import Settings
    from core.jobs.states import State
    from core.storage.database import open_database
    from core.verify import Verifier, VerifierConfig

    url = f"sqlite://{tmp}/memory.sqlite3"
    settings = Settings(DATABASE_URL=url, LISTWARDEN_SECRET_KEY="YTIyYTRkOGUxYWI2MThhMmRiMmM1YWNlMzE2ZjE4ZDA=",
                        LISTWARDEN_SMTP_CONNECT_RATE=1000, LISTWARDEN_SMTP_CONNECT_BURST=100, LISTWARDEN_SMTP_PER_HOST=20,
                        LISTWARDEN_SMTP_RCPT_PER_SESSION=100)
    db = await open_database(url, migrate=True)
    services = Services.build(settings, connector_options={"rate_limit": None},
                              verifier_factory=lambda: Verifier(VerifierConfig.from_settings(settings, smtp=smtp)))
    await services.job_system.start()
    peak = [0]
    stop = threading.Event()
    threading.Thread(target=sample, args=(stop, peak), daemon=True).start()
    try:
        await services.credits.grant("bench", members)
        cnx = await services.connections.create("bench", "mailerlite", helper["credentials"], base_url=helper["url"])
        start_rss = psutil.Process().memory_info().rss
        started = time.perf_counter()
        job = await services.jobs.start_verify_list("bench", cnx.id, helper["list_id"], requester="bench")
        last = 0.0
        while (view := await services.jobs.get(job.id)).state is not State.DONE:
            assert view.state in (State.QUEUED, State.RUNNING), (view.state, view.error)
            if time.perf_counter() - last > 10:
                last = time.perf_counter()
                print(f"  {time.perf_counter() - started:6.0f} s  read {view.total:>9,}  verified {view.processed:>9,}  "
                      f"rss {psutil.Process().memory_info().rss / 2**20:6.0f} MB  peak {peak[0] / 2**20:6.0f} MB", flush=True)
            await asyncio.sleep(0.5)
        took = time.perf_counter() - started
    finally:
        stop.set()
        await services.job_system.stop()
        await db.close()
    verdict = "meets" if peak[0] < 300 * 2**20 else "MISSES"
    print(f"{members:,} contacts ({'SMTP' if smtp else 'smtp=False: syntax and DNS'}) in {took:.0f} s "
          f"({members / took:,.0f}/s): {view.processed:,} verified, {view.status_counts}; "
          f"peak RSS {peak[0] / 2**20:.0f} MB (at the start {start_rss / 2**20:.0f} MB) — {verdict} the 300 MB target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--smtp", action="store_true")
    args = parser.parse_args()
    proc = subprocess.Popen([sys.executable, "-c", HELPER, str(args.members)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        helper = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        asyncio.run(run(args.members, args.smtp, helper))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
