"""`listwarden jobs`: list, show, cancel, resume and undo jobs."""

from __future__ import annotations

import asyncio

import click

from core.jobs.states import State
from core.jobs.views import JobView
from listwarden.cli._db import opened_services


def _line(job: JobView) -> str:
    progress = f"{job.processed:,}/{job.expected:,}"
    return f"{job.id}\t{job.kind}\t{job.state}\t{progress}\t{job.workspace_id}\t{job.created_at:%Y-%m-%d %H:%M}"


@click.group()
def jobs() -> None:
    """Jobs: verify a list, clean a list after approval, verify an uploaded file."""


@jobs.command("list")
@click.option("--workspace", help="Only this workspace's jobs.")
@click.option("--state", "states", multiple=True, type=click.Choice([str(s) for s in State if s is not State.PREPARING]),
              help="Only jobs in this state (repeatable).")
@click.option("--limit", type=int, default=20, show_default=True)
def list_jobs(workspace: str | None, states: tuple[str, ...], limit: int) -> None:
    """The latest jobs, newest first."""

    async def run() -> list[JobView]:
        async with opened_services() as services:
            return await services.jobs.list(workspace, limit=limit, states=[State(s) for s in states] or None)

    found = asyncio.run(run())
    if not found:
        click.echo("no jobs")
    for job in found:
        click.echo(_line(job))


@jobs.command()
@click.argument("job_id")
def show(job_id: str) -> None:
    """Everything about one job: state, who, progress, counts, credits, plan and what was applied."""

    async def run() -> JobView | None:
        async with opened_services() as services:
            return await services.jobs.get(job_id)

    job = asyncio.run(run())
    if job is None:
        raise click.ClickException(f"No job {job_id}.")
    rows = [
        ("job", f"{job.id} ({job.kind}, {job.mode})"), ("state", str(job.state)), ("workspace", job.workspace_id),
        ("list", f"{job.list_name or ''} {job.list_id or ''} on {job.connection_id}" if job.connection_id else "-"),
        ("requested by", job.requester or "-"), ("approved by", job.approver or "-"),
        ("rejected by", f"{job.rejected_by}: {job.reject_reason or ''}" if job.rejected_by else "-"),
        ("progress", f"{job.processed:,} of {job.expected:,} addresses ({job.total:,} rows, {job.duplicates:,} repeats)"),
        ("results", ", ".join(f"{k} {v:,}" for k, v in sorted(job.status_counts.items())) or "-"),
        ("planned", ", ".join(f"{k} {v:,}" for k, v in sorted(job.planned_counts.items())) or "-"),
        ("applied", ", ".join(f"{k} {v:,}" for k, v in sorted(job.applied_counts.items())) or "-"),
        ("failures", "; ".join(f"{k}: {v:,}" for k, v in job.failure_counts.items()) or "-"),
        ("credits", f"{job.charged:,} charged, {job.refunded:,} refunded"),
        ("created", f"{job.created_at:%Y-%m-%d %H:%M:%S}"),
    ]
    if job.expires_at and job.state is State.AWAITING_APPROVAL:
        rows.append(("approve by", f"{job.expires_at:%Y-%m-%d %H:%M:%S}"))
    if job.paused_reason:
        rows.append(("paused", job.paused_reason))
    if job.error:
        rows.append(("error", job.error))
    for label, value in rows:
        click.echo(f"{label:>13}  {value}")


@jobs.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Stop a job; rows paid for but not verified are refunded."""

    async def run() -> bool:
        async with opened_services() as services:
            return await services.jobs.cancel(job_id, by="cli")

    if not asyncio.run(run()):
        raise click.ClickException(f"{job_id} is not running, queued, paused or awaiting approval.")
    click.echo(f"cancelled {job_id}")


@jobs.command()
@click.argument("job_id")
def resume(job_id: str) -> None:
    """Continue a job paused because credits ran out (grant some first)."""

    async def run() -> bool:
        async with opened_services() as services:
            return await services.jobs.resume(job_id)

    if not asyncio.run(run()):
        raise click.ClickException(f"{job_id} is not paused.")
    click.echo(f"resumed {job_id}: a running `listwarden serve` or worker picks it up")


@jobs.command()
@click.argument("job_id")
def undo(job_id: str) -> None:
    """Resubscribe the contacts a cleanup unsubscribed, where the platform allows it (deletes cannot be undone)."""
    from core.jobs.service import JobNotFound

    async def run():
        async with opened_services() as services:
            return await services.jobs.undo(job_id)

    try:
        report = asyncio.run(run())
    except JobNotFound as err:
        raise click.ClickException(str(err)) from None
    click.echo(report.summary())
    if report.failed or report.unsupported:
        raise SystemExit(1)
