"""Guarded, atomic moves: one conditional UPDATE, and only the caller whose update changed the row moved it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from core.jobs.states import MOVES, State
from core.storage.sql import execute, utcnow

JSON_FIELDS = frozenset({"rules", "params", "notify", "status_counts", "planned_counts", "applied_counts", "failure_counts"})


class Increment(int):
    """A counter written as `column = column + n`: safe beside other writers of the same row."""


def _value(name: str, value: Any) -> Any:
    return json.dumps(value) if name in JSON_FIELDS and value is not None else value


def assignments(fields: Mapping[str, Any]) -> tuple[str, list[Any]]:
    names = sorted(fields)
    parts = [f'"{n}" = "{n}" + ?' if isinstance(fields[n], Increment) else f'"{n}" = ?' for n in names]
    return ", ".join(parts), [int(fields[n]) if isinstance(fields[n], Increment) else _value(n, fields[n]) for n in names]


async def move(conn: BaseDBAsyncClient, job_id: str, to: State, *, expect: Iterable[State], owner: str | None = None,
               **fields: Any) -> bool:
    """Move the job to `to` if it is in one of `expect` (and, given `owner`, still leased to it)."""
    sources = [State(s) for s in expect]
    illegal = [s for s in sources if to not in MOVES.get(s, frozenset())]
    if illegal:
        raise ValueError(f"no move from {illegal[0]} to {to}")
    sets, values = assignments({"state": str(to), "updated_at": utcnow(), **fields})
    where = f"id = ? AND state IN ({', '.join('?' * len(sources))})"
    params = [job_id, *map(str, sources)]
    if owner is not None:
        where += " AND lease_owner = ?"
        params.append(owner)
    count, _ = await execute(conn, f"UPDATE job SET {sets} WHERE {where}", [*values, *params])
    return count == 1


async def update(conn: BaseDBAsyncClient, job_id: str, *, owner: str | None = None, state: State | None = None,
                 **fields: Any) -> bool:
    """Set fields without a state change, guarded by the lease (and the state) when given."""
    sets, values = assignments({"updated_at": utcnow(), **fields})
    where, params = "id = ?", [job_id]
    if owner is not None:
        where += " AND lease_owner = ?"
        params.append(owner)
    if state is not None:
        where += " AND state = ?"
        params.append(str(state))
    count, _ = await execute(conn, f"UPDATE job SET {sets} WHERE {where}", [*values, *params])
    return count == 1
