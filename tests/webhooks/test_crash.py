"""kill -9 under load, then restart: every delivery that got a 2xx is processed, exactly once.

A real `listwarden serve` subprocess (SQLite, a 2-second inbox lease) receives a stream of
Brevo list-addition webhooks from twenty concurrent senders; partway through it is killed with
SIGKILL, while deliveries are being accepted and processed. A fresh process is started on the
same database. What must hold once it has caught up:
- every delivery answered 2xx is stored and processed (its subscriber recorded);
- each subscriber is recorded once, charged once, and has at most one audit row per action;
- every invalid subscriber among them is unsubscribed in the emulator.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from core.services import Services
from core.storage.database import open_database
from tests.emulators import brevo
from tests.emulators.server import free_port, serve
from tests.storage.fixtures import TEST_KEY
from tests.webhooks.conftest import is_invalid

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 300


def server_env(db: Path, port: int, world) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "LISTWARDEN_", "DATABASE_"))}
    return {**inherited, **world.env(), "DATABASE_URL": f"sqlite://{db}", "LISTWARDEN_SECRET_KEY": TEST_KEY,
            "LISTWARDEN_PUBLIC_URL": f"http://127.0.0.1:{port}", "LISTWARDEN_WEBHOOK_LEASE_SECONDS": "2",
            "LISTWARDEN_WEBHOOK_CACHE_SECONDS": "0", "LISTWARDEN_INITIAL_CREDITS": "100000",
            "LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS": "3600", "LISTWARDEN_LOG_LEVEL": "warning",
            }


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "listwarden", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


async def set_up(db: Path, env: dict[str, str], emu, emu_url: str) -> str:
    """The connection, with verify-first on and its webhook registered with Brevo, before the server starts."""
    from core.settings import Settings
    from core.verify_first.registration import Registrar

    settings = Settings(**{k: v for k, v in env.items() if k.isupper()})
    database = await open_database(settings.database_url, migrate=True)
    try:
        services = Services.build(settings)
        cnx = await services.connections.create("T-crash", "brevo", emu.credentials(emu_url), base_url=emu_url)
        await Registrar(services, settings).turn_on("T-crash", cnx.id)
        return cnx.id
    finally:
        from core.connectors.http import close_shared_client

        await close_shared_client()
        await database.close()


async def outcome(db: Path, env: dict[str, str], connection_id: str):
    from core.settings import Settings
    from core.storage.models import ActionAudit, CreditEntry, WebhookDelivery

    settings = Settings(**{k: v for k, v in env.items() if k.isupper()})
    database = await open_database(settings.database_url)
    try:
        rows = await WebhookDelivery.filter(connection_id=connection_id).values("state", "result", "attempts")
        audits = await ActionAudit.filter(connection_id=connection_id).values_list("email", "action")
        charges = await CreditEntry.filter(workspace_id="T-crash", kind="charge").values_list("key", "amount")
        return rows, audits, charges
    finally:
        await database.close()


async def test_kill_9_under_load_then_restart_processes_every_acknowledged_delivery_once(world, tmp_path):
    db, log = tmp_path / "crash.sqlite3", tmp_path / "server.log"
    port = free_port()
    env = server_env(db, port, world)
    emu = brevo.build()
    with serve(emu.app) as emulator:
        connection_id = await set_up(db, env, emu, emulator.url)
        emails = [f"member{n}@example.com" for n in range(COUNT)]
        for email in emails:
            emu.add_member(emu.list_id, email)
        deliveries = [brevo.delivery(emu.state, email, int(emu.list_id)) for email in emails]
        server = start_server(env, port, log)
        acknowledged: list[str] = []
        queue = list(zip(emails, deliveries, strict=True))
        killed = asyncio.Event()

        async def sender(client: httpx.AsyncClient) -> None:
            while queue and not killed.is_set():
                email, (headers, body) = queue.pop(0)
                try:
                    response = await client.post(f"/webhooks/brevo/{connection_id}", headers=headers, content=body)
                except httpx.HTTPError:
                    continue  # no answer: the platform would retry; not counted as acknowledged
                if 200 <= response.status_code < 300:
                    acknowledged.append(email)

        async def killer() -> None:
            while len(acknowledged) < COUNT // 2:
                await asyncio.sleep(0.005)
            server.send_signal(signal.SIGKILL)  # mid-stream: some accepted, some being processed, some in flight
            server.wait()
            killed.set()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await asyncio.gather(killer(), *(sender(client) for _ in range(20)))
        assert server.returncode == -signal.SIGKILL
        at_kill = len(acknowledged)

        server = start_server(env, port, log)  # the same database; the dead process's leases lapse in 2 s
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                for email, (headers, body) in queue:  # the rest of the stream, after the restart
                    response = await client.post(f"/webhooks/brevo/{connection_id}", headers=headers, content=body)
                    assert response.status_code == 200
                    acknowledged.append(email)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows, audits, charges = await outcome(db, env, connection_id)
                if rows and all(r["state"] == "done" for r in rows) and len(rows) >= len(acknowledged):
                    break
                await asyncio.sleep(0.3)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)

    rows, audits, charges = await outcome(db, env, connection_id)
    assert at_kill < COUNT and all(r["state"] == "done" for r in rows), log.read_text()[-3000:]
    recorded = Counter(s["email"] for r in rows for s in r["result"].get("subscribers", []))
    assert set(acknowledged) <= set(recorded), "every delivery answered 2xx was processed"
    assert max(recorded.values()) == 1, "each subscriber processed exactly once"
    assert len(rows) == len(recorded) == len(set(acknowledged) | set(recorded))
    assert sum(amount for _, amount in charges) == -len(recorded), "charged once per subscriber"
    invalid = {e for e in recorded if is_invalid(int(e.removeprefix("member").partition("@")[0]))}
    assert Counter(audits) == Counter((e, "unsubscribe") for e in invalid), "one audit row per action"
    assert all(emu.is_unsubscribed(e) for e in invalid)
    assert not any(emu.is_unsubscribed(e) for e in recorded if e not in invalid)
    print(f"\nacknowledged before the kill: {at_kill}, stored: {len(rows)}, taken up again after it: {sum(r['attempts'] > 1 for r in rows)}")


async def test_a_separate_worker_processes_what_an_accept_only_server_stores(world, tmp_path):
    """`listwarden serve` with LISTWARDEN_WEBHOOK_PROCESSOR=false only accepts; `listwarden webhooks work` does the rest."""
    db, log = tmp_path / "split.sqlite3", tmp_path / "server.log"
    port = free_port()
    env = {**server_env(db, port, world), "LISTWARDEN_WEBHOOK_PROCESSOR": "false"}
    emu = brevo.build()
    with serve(emu.app) as emulator:
        connection_id = await set_up(db, env, emu, emulator.url)
        emails = [f"member{n}@example.com" for n in range(20)]
        for email in emails:
            emu.add_member(emu.list_id, email)
        server = start_server(env, port, log)
        worker = None
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                for email in emails:
                    headers, body = brevo.delivery(emu.state, email, int(emu.list_id))
                    assert (await client.post(f"/webhooks/brevo/{connection_id}", headers=headers, content=body)).status_code == 200
            await asyncio.sleep(1)
            rows, _, _ = await outcome(db, env, connection_id)
            assert len(rows) == 20 and all(r["state"] == "pending" for r in rows), "the accept-only server processes nothing"
            worker = subprocess.Popen([sys.executable, "-m", "listwarden", "webhooks", "work"], cwd=ROOT, env=env,
                                      stdout=log.open("ab"), stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                rows, _, _ = await outcome(db, env, connection_id)
                if all(r["state"] == "done" for r in rows):
                    break
                await asyncio.sleep(0.3)
        finally:
            for proc in (server, worker):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(20)
    assert all(r["state"] == "done" for r in rows), log.read_text()[-3000:]
    invalid = [e for e in emails if is_invalid(int(e.removeprefix("member").partition("@")[0]))]
    assert invalid and all(emu.is_unsubscribed(e) for e in invalid)
    assert worker.returncode == 0, "the worker stops cleanly on SIGTERM"
