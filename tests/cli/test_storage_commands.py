"""The commands an admin runs beside the server: `db migrate|status`, `credits grant|show`,
`jobs list|show|cancel|resume|undo`, on SQLite and on PostgreSQL. Each must say what it did in
one line, and refuse with a clear message (exit status 1) what it cannot do."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner

from core.settings import get_settings
from listwarden.cli import main
from tests.storage.fixtures import BACKENDS, TEST_KEY, drop_pg_schema, pg_url


@pytest.fixture(params=BACKENDS)
def env(request, tmp_path, monkeypatch):
    schema = None
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/cli.sqlite3"
    else:
        schema = f"lw_cli_{uuid.uuid4().hex[:8]}"
        url = pg_url(schema)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LISTWARDEN_SECRET_KEY", TEST_KEY)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    if schema is not None:
        asyncio.run(drop_pg_schema(schema))


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_db_migrate_and_status(env) -> None:
    first = run("db", "migrate")
    assert first.exit_code == 0 and "applied 0001_initial, 0002_item_plan_reason_and_raw_row" in first.output
    assert "up to date" in run("db", "migrate").output
    status = run("db", "status")
    assert status.exit_code == 0 and status.output.strip() == "up to date"


def test_credits_grant_and_show(env) -> None:
    assert run("credits", "show").output.strip() == "no credits granted or used yet"
    granted = run("credits", "grant", "T123", "5000")
    assert granted.exit_code == 0 and granted.output.strip() == "T123: granted 5,000; balance 5,000"
    run("credits", "grant", "T123", "250", "--reason", "pilot")
    assert run("credits", "show").output.strip() == "T123\t5,250"
    detail = run("credits", "show", "T123").output
    assert "balance 5,250" in detail and "+250  grant: pilot" in detail
    assert run("credits", "grant", "T123", "0").exit_code == 2  # a grant adds at least one credit


def test_jobs_list_show_cancel_resume_undo(env) -> None:
    from core.services import Services
    from core.storage.database import database

    async def make_job() -> str:
        async with database(env, migrate=True):
            services = Services.build(get_settings())
            await services.credits.grant("T1", 10)
            job = await services.jobs.start_bulk_file("T1", b"ann@example.com\nbob@example.com\n", requester="U1",
                                                      filename="x.txt")  # no runner here: it stays queued
            return job.id

    job_id = asyncio.run(make_job())
    listed = run("jobs", "list")
    assert listed.exit_code == 0 and job_id in listed.output and "bulk_file\tqueued\t0/2" in listed.output
    shown = run("jobs", "show", job_id).output
    assert "queued" in shown and "requested by  U1" in shown and "0 of 2 addresses" in shown
    assert run("jobs", "list", "--state", "done").output.strip() == "no jobs"
    assert run("jobs", "resume", job_id).exit_code == 1  # not paused
    cancelled = run("jobs", "cancel", job_id)
    assert cancelled.exit_code == 0 and cancelled.output.strip() == f"cancelled {job_id}"
    again = run("jobs", "cancel", job_id)
    assert again.exit_code == 1 and "is not running" in again.output
    assert run("jobs", "undo", job_id).output.strip() == "0 resubscribed."
    missing = run("jobs", "show", "job_nope")
    assert missing.exit_code == 1 and "No job job_nope" in missing.output


def test_worker_needs_redis(env) -> None:
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 1 and "set REDIS_URL" in result.output
