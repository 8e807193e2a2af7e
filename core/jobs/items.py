"""Job items in bulk: the statements that read and write thousands of rows per second.

Every function takes the connection of the caller's transaction, so that an item change and
the job counters (and a ledger entry) it goes with commit together or not at all; that is what
makes a killed job resumable at any instant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from core.storage.sql import execute, execute_many, is_postgres

MAX_KEY = 320


@dataclass(frozen=True)
class IngestRow:
    email: str
    contact_id: str | None = None
    row: bytes | None = None  # a bulk file's original row


@dataclass(frozen=True)
class PendingItem:
    id: int
    seq: int
    email: str
    charged: bool


@dataclass(frozen=True)
class ActionItem:
    id: int
    seq: int
    contact_id: str
    email: str


@dataclass(frozen=True)
class Recorded:
    item_id: int
    status: str
    result: dict[str, Any]
    planned_action: str | None
    plan_reason: str | None
    charged: bool
    refund: bool


def storable(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (undecodable bytes live in `row`)."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def address_key(email: str) -> str:
    """The dedupe key: trimmed and case-folded; "" (never deduplicated) for a cell that is no address."""
    key = storable(email.strip()).casefold()
    return key[:MAX_KEY] if "@" in key else ""


async def insert_rows(conn: BaseDBAsyncClient, job_id: str, after_seq: int, rows: Sequence[IngestRow]) -> int:
    """Append rows after `after_seq`, marking repeats of an address already in the job; returns how many are new addresses."""
    keys = [address_key(r.email) for r in rows]
    wanted = sorted({k for k in keys if k})
    first_seq = await _first_occurrences(conn, job_id, wanted)
    values = []
    unique = 0
    for offset, (item, key) in enumerate(zip(rows, keys, strict=True)):
        seq = after_seq + offset + 1
        duplicate_of = first_seq.get(key) if key else None
        if key and duplicate_of is None:
            first_seq[key] = seq
        unique += duplicate_of is None
        values.append([job_id, seq, storable(item.email), key, item.contact_id, item.row, duplicate_of,
                       "duplicate" if duplicate_of is not None else "pending", False, False])
    await execute_many(conn, "INSERT INTO job_item (job_id, seq, email, address_key, contact_id, row, duplicate_of, "
                             "stage, charged, refunded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    return unique


async def _first_occurrences(conn: BaseDBAsyncClient, job_id: str, keys: list[str]) -> dict[str, int]:
    """The seq of each key's first row in the job, through the (job_id, address_key) index."""
    found: list[dict] = []
    if is_postgres(conn):
        if keys:
            _, found = await execute(conn, "SELECT address_key, seq FROM job_item WHERE job_id = ? "
                                           "AND address_key = ANY(CAST(? AS text[])) AND duplicate_of IS NULL", [job_id, keys])
    else:
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            _, rows = await execute(conn, f"SELECT address_key, seq FROM job_item WHERE job_id = ? AND duplicate_of IS NULL "
                                          f"AND address_key IN ({', '.join('?' * len(part))})", [job_id, *part])
            found.extend(rows)
    return {r["address_key"]: int(r["seq"]) for r in found}


async def refresh_statistics(conn: BaseDBAsyncClient, before: int, after: int) -> None:
    """PostgreSQL plans a young job_item table without statistics as if a job had one row, and then
    scans a whole job per lookup. While a big list is read in, ANALYZE each time it doubles (from 4,096
    rows), so the planner keeps using the (job_id, address_key) index: about a dozen times for a
    million rows. SQLite's planner needs none of this."""
    if not is_postgres(conn) or after < 4096:
        return
    if before < 4096 or (after.bit_length() > before.bit_length()):
        await conn.execute_script("ANALYZE job_item")


async def pending(conn: BaseDBAsyncClient, job_id: str, after_seq: int, limit: int) -> list[PendingItem]:
    _, rows = await execute(conn, "SELECT id, seq, email, charged FROM job_item WHERE job_id = ? AND stage = 'pending' "
                                  "AND seq > ? ORDER BY seq LIMIT ?", [job_id, after_seq, limit])
    return [PendingItem(int(r["id"]), int(r["seq"]), r["email"], bool(r["charged"])) for r in rows]


async def record_results(conn: BaseDBAsyncClient, results: Sequence[Recorded], worker: str) -> None:
    await execute_many(
        conn, "UPDATE job_item SET stage = 'verified', status = ?, result = ?, planned_action = ?, plan_reason = ?, "
              "charged = ?, refunded = ?, worker = ? WHERE id = ? AND stage = 'pending'",
        [[r.status, json.dumps(r.result, ensure_ascii=True), r.planned_action, r.plan_reason, r.charged, r.refund, worker,
          r.item_id] for r in results])


async def settle_duplicates(conn: BaseDBAsyncClient, job_id: str) -> None:
    """A repeated address gets its first occurrence's result and plan (it was not verified or charged again)."""
    await execute(
        conn, "UPDATE job_item SET stage = 'verified', status = f.status, result = f.result, "
              "planned_action = f.planned_action, plan_reason = f.plan_reason FROM job_item AS f "
              "WHERE job_item.job_id = ? AND job_item.stage = 'duplicate' AND f.job_id = job_item.job_id "
              "AND f.seq = job_item.duplicate_of AND f.stage = 'verified'", [job_id])


async def plan_counts(conn: BaseDBAsyncClient, job_id: str) -> dict[str, int]:
    _, rows = await execute(conn, "SELECT planned_action, plan_reason, COUNT(*) AS n FROM job_item WHERE job_id = ? "
                                  "AND stage = 'verified' GROUP BY planned_action, plan_reason", [job_id])
    return {f"{r['planned_action'] or 'keep'}:{r['plan_reason'] or ''}": int(r["n"]) for r in rows}


async def unprocessed_charged(conn: BaseDBAsyncClient, job_id: str, charged_through: int) -> list[int]:
    """Seqs of the items paid for but never verified (a cancelled or failed job refunds them)."""
    _, rows = await execute(conn, "SELECT seq FROM job_item WHERE job_id = ? AND stage = 'pending' AND refunded = ? "
                                  "AND TRIM(email) <> '' AND (charged = ? OR seq <= ?) ORDER BY seq",
                            [job_id, False, True, charged_through])
    return [int(r["seq"]) for r in rows]


# --- applying --------------------------------------------------------------------------------
async def next_actions(conn: BaseDBAsyncClient, job_id: str, action: str, limit: int) -> list[ActionItem]:
    _, rows = await execute(conn, "SELECT id, seq, contact_id, email FROM job_item WHERE job_id = ? AND stage = 'verified' "
                                  "AND planned_action = ? AND action_state IS NULL ORDER BY id LIMIT ?",
                            [job_id, action, limit])
    return [ActionItem(int(r["id"]), int(r["seq"]), r["contact_id"] or "", r["email"]) for r in rows]


async def in_doubt(conn: BaseDBAsyncClient, job_id: str) -> list[tuple[ActionItem, str]]:
    """Items whose platform call was made (or about to be) when the last holder stopped: (item, action)."""
    _, rows = await execute(conn, "SELECT id, seq, contact_id, email, planned_action FROM job_item WHERE job_id = ? "
                                  "AND action_state = 'sending' ORDER BY id", [job_id])
    return [(ActionItem(int(r["id"]), int(r["seq"]), r["contact_id"] or "", r["email"]), r["planned_action"]) for r in rows]


def action_key(job_id: str, seq: int, action: str) -> str:
    return f"{job_id}:{seq}:{action}"


async def mark_sending(conn: BaseDBAsyncClient, job_id: str, items: Sequence[ActionItem], action: str) -> None:
    await execute_many(conn, "UPDATE job_item SET action_state = 'sending', action_key = ? WHERE id = ?",
                       [[action_key(job_id, i.seq, action), i.id] for i in items])


async def unmark_sending(conn: BaseDBAsyncClient, item_ids: Sequence[int]) -> None:
    await execute_many(conn, "UPDATE job_item SET action_state = NULL, action_key = NULL WHERE id = ?", [[i] for i in item_ids])


async def record_outcomes(conn: BaseDBAsyncClient, *, job_id: str, workspace_id: str, connection_id: str, platform: str,
                          list_id: str | None, action: str, actor: str | None, done: Sequence[ActionItem],
                          failed: Sequence[tuple[ActionItem, str]], state: str, when: datetime) -> None:
    """Done items get an audit row each (keyed by the item's action key, so it is written once)."""
    await execute_many(conn, "UPDATE job_item SET action_state = ?, action_error = NULL, applied_at = ? WHERE id = ?",
                       [[state, when, i.id] for i in done])
    await execute_many(conn, "UPDATE job_item SET action_state = 'failed', action_error = ? WHERE id = ?",
                       [[reason[:1000], i.id] for i, reason in failed])
    await execute_many(
        conn, "INSERT INTO action_audit (key, job_id, workspace_id, connection_id, platform, list_id, contact_id, email, "
              "action, actor, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        [[action_key(job_id, i.seq, action), job_id, workspace_id, connection_id, platform, list_id, i.contact_id, i.email,
          action, actor, when] for i in done])
