"""Who runs a job: a lease in the job row, renewed by a heartbeat, taken over once it lapses.

A runner claims a job with one conditional UPDATE (no live lease, a runnable state), renews the
lease every third of its length while it works, and checks it (the "fence") at the start of
every transaction that records progress, so a runner that lost its lease (it stalled, or the
job was cancelled) cannot write over the one that has it. A lease held by a process of this
same host that no longer exists (killed with -9) is freed at once instead of waiting it out.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

import psutil

from core.jobs.states import RUNNABLE, WORKING, State
from core.storage.sql import default_connection, execute, utcnow

HOST = socket.gethostname()


def new_owner() -> str:
    return f"{HOST}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def dead_here(owner: str) -> bool:
    """The owner is a process of this host that has exited."""
    host, _, rest = owner.partition("/")
    pid = rest.partition("/")[0]
    if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        return not psutil.Process(int(pid)).is_running() or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _in(states) -> str:
    return ", ".join(f"'{s}'" for s in sorted(states))


async def claim(job_id: str, owner: str, lease_seconds: float) -> tuple[State, State] | None:
    """(state before, state now) if this owner got the job; queued becomes running, approved applying."""
    now = utcnow()
    conn = default_connection()
    _, before = await execute(conn, "SELECT state FROM job WHERE id = ?", [job_id])
    _, rows = await execute(
        conn,
        "UPDATE job SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?, "
        "state = CASE state WHEN 'queued' THEN 'running' WHEN 'approved' THEN 'applying' ELSE state END, "
        "started_at = COALESCE(started_at, ?) "
        f"WHERE id = ? AND state IN ({_in(RUNNABLE)}) AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until < ?) "
        "RETURNING state",
        [owner, now + timedelta(seconds=lease_seconds), now, now, job_id, now],
    )
    if not rows:
        return None
    new = State(rows[0]["state"])
    old = State(before[0]["state"]) if before else new
    return (old if old != new else new), new


async def renew(job_id: str, owner: str, lease_seconds: float) -> bool:
    count, _ = await execute(default_connection(), "UPDATE job SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                             [utcnow() + timedelta(seconds=lease_seconds), job_id, owner])
    return count == 1


async def release(job_id: str, owner: str) -> None:
    await execute(default_connection(), "UPDATE job SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                  [job_id, owner])


async def free_dead_local_leases() -> list[str]:
    """Free the leases of this host's dead processes; returns the jobs freed."""
    _, rows = await execute(default_connection(), f"SELECT id, lease_owner FROM job WHERE lease_owner IS NOT NULL "
                                                   f"AND state IN ({_in(RUNNABLE)})", [])
    freed = []
    for row in rows:
        if dead_here(row["lease_owner"]):
            count, _ = await execute(default_connection(), "UPDATE job SET lease_until = NULL WHERE id = ? AND lease_owner = ?",
                                     [row["id"], row["lease_owner"]])
            if count:
                freed.append(row["id"])
    return freed


async def claimable(limit: int = 100) -> list[str]:
    """Runnable jobs nobody holds a live lease on, oldest first."""
    _, rows = await execute(default_connection(),
                            f"SELECT id FROM job WHERE state IN ({_in(RUNNABLE)}) AND (lease_owner IS NULL OR lease_until IS NULL "
                            "OR lease_until < ?) ORDER BY created_at LIMIT ?", [utcnow(), limit])
    return [r["id"] for r in rows]


async def mark_kicked(job_id: str, quiet_seconds: float) -> bool:
    """Only one process re-dispatches an abandoned job within `quiet_seconds`."""
    now = utcnow()
    count, _ = await execute(default_connection(), "UPDATE job SET kicked_at = ? WHERE id = ? AND (kicked_at IS NULL OR kicked_at < ?)",
                             [now, job_id, now - timedelta(seconds=quiet_seconds)])
    return count == 1


__all__ = ["WORKING", "new_owner", "dead_here", "claim", "renew", "release", "free_dead_local_leases", "claimable",
           "mark_kicked"]
