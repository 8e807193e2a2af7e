"""The one ASGI app starts, answers /healthz and stops cleanly; `listwarden serve` really serves."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time

import httpx

from core.settings import Settings
from listwarden.app import create_app
from tests.emulators.server import free_port
from tests.mailservers import MailWorld


async def test_healthz_reports_started_after_lifespan(tmp_path) -> None:
    app = create_app(Settings(DATABASE_URL=f"sqlite://{tmp_path}/db.sqlite3"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "started": True}


def test_serve_command_answers_healthz(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "LISTWARDEN_PORT": str(port), "DATABASE_URL": f"sqlite://{tmp_path}/db.sqlite3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "listwarden", "serve"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start in 30 s"
                time.sleep(0.2)
        assert response.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _start_and_stop(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.3)  # the check runs beside start-up, never holding it up


async def test_start_up_says_when_the_smtp_sender_is_not_set(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    await _start_and_stop(Settings(DATABASE_URL=f"sqlite://{tmp_path}/db.sqlite3"))
    assert "LISTWARDEN_MAIL_FROM is not set" in caplog.text


async def test_start_up_says_when_the_smtp_senders_domain_does_not_resolve(tmp_path, caplog) -> None:
    """Issue 2: a MAIL FROM whose domain does not resolve is a configuration error, reported at start-up."""
    caplog.set_level(logging.WARNING)
    world = MailWorld()
    with world.running():
        env = world.env(LISTWARDEN_MAIL_FROM="probe@unregistered.example")
        await _start_and_stop(Settings(DATABASE_URL=f"sqlite://{tmp_path}/db.sqlite3", **env))
    assert "has no MX or A record" in caplog.text and "LISTWARDEN_MAIL_FROM" in caplog.text
