"""The verification phase every built-in kind shares: read the rows in, charge, verify, record.

Reading (a connection's members, streamed page by page) and verifying run side by side: rows
go into job items in batches, repeats of an address are marked as duplicates (never verified
or charged again), and pending items are taken in input order, a chunk at a time:

1. the chunk's addresses are charged (one ledger entry, in the same transaction that marks them
   charged; a chunk the balance cannot cover is charged for what there is, and the job pauses
   after verifying those);
2. they are handed to the verifier, which keeps up to `WINDOW` in flight;
3. results are recorded in batches, each with its plan and its share of the job's counters, and
   unknowns refunded, in one transaction.

A job killed anywhere resumes here: rows already read are skipped, charged items are not
charged again, recorded items are not verified again, and items charged but not recorded are
simply verified now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from core.cleanup import Policy, plan
from core.jobs import items, transitions
from core.jobs.items import IngestRow, PendingItem, Recorded, storable
from core.jobs.transitions import Increment
from core.jobs.run import JobRun
from core.keywords import KeywordMatcher
from core.verify.result import Result
from core.verify.status import Status, info

log = logging.getLogger(__name__)
INGEST_BATCH = 1000
RECORD_BATCH = 1000
RECORD_EVERY = 0.5  # seconds between two recordings while results trickle in
WINDOW = 5000  # addresses in the verifier at once, per job

Source = Callable[[], AsyncIterator[IngestRow]]


class Outcome(Enum):
    COMPLETE = "complete"
    OUT_OF_CREDITS = "out_of_credits"


@dataclass
class _Reading:
    total: int
    unique: int
    done: bool
    more: asyncio.Event


def compact(result: Result) -> dict[str, Any]:
    """What a job keeps of a result (the address itself is in the item)."""
    return {
        "normalized": storable(result.normalized), "score": result.score, "classifier": str(result.classifier),
        "flags": list(result.flags), "syntax": result.syntax, "mx": result.mx, "mailbox": result.mailbox,
        "smtp_code": result.smtp_code, "smtp_message": storable(result.smtp_message or ""), "mx_host": result.mx_host,
        "suggestion": storable(result.suggestion) if result.suggestion else None, "reason": storable(result.reason),
    }


def _failed_result(email: str) -> Result:
    return Result(email=email, normalized="", status=Status.UNKNOWN, score=4, classifier=info(Status.UNKNOWN).classifier,
                  reason="An internal error stopped this check; the credit is refunded.")


async def verify_phase(run: JobRun, source: Source | None) -> Outcome:
    job = await run.row()
    policy = None if job.rules is None else Policy.from_json(job.rules)
    matcher = await run.services.keywords.matcher(job.connection_id) if policy is not None else KeywordMatcher()  # type: ignore[attr-defined]
    reading = _Reading(job.total, job.unique, job.ingest_done or source is None, asyncio.Event())
    reader = None
    if not reading.done:
        assert source is not None
        reader = asyncio.get_running_loop().create_task(_read(run, source, reading), name=f"job-read:{run.job_id}")
    try:
        outcome = await _verify(run, reading, reader, policy, matcher, Counter(job.status_counts or {}))
    finally:
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    if outcome is Outcome.COMPLETE:
        async with run.fenced() as conn:
            await items.settle_duplicates(conn, run.job_id)
            await transitions.update(conn, run.job_id, planned_counts=await items.plan_counts(conn, run.job_id))
    return outcome


async def _read(run: JobRun, source: Source, reading: _Reading) -> None:
    skip = reading.total  # rows recorded before a restart: the stream is read again from its start
    batch: list[IngestRow] = []
    seen = 0
    async for row in source():
        seen += 1
        if seen <= skip:
            continue
        batch.append(row)
        if len(batch) >= INGEST_BATCH:
            await _store_rows(run, reading, batch, last=False)
            batch = []
    await _store_rows(run, reading, batch, last=True)


async def _store_rows(run: JobRun, reading: _Reading, batch: list[IngestRow], *, last: bool) -> None:
    async with run.fenced() as conn:
        unique = await items.insert_rows(conn, run.job_id, reading.total, batch) if batch else 0
        await transitions.update(conn, run.job_id, total=reading.total + len(batch), unique=reading.unique + unique,
                                 ingest_done=last)
    await items.refresh_statistics(run.engine.connection(), reading.total, reading.total + len(batch))
    reading.total += len(batch)
    reading.unique += unique
    reading.done = last
    reading.more.set()


async def _verify(run: JobRun, reading: _Reading, reader: asyncio.Task[None] | None, policy: Policy | None,
                  matcher: KeywordMatcher, status_counts: Counter[str]) -> Outcome:
    verifier = await run.engine.verifier()
    settings = run.settings
    job = await run.row()
    mark = {"charged_through": job.charged_through, "charged": job.charged}
    done: asyncio.Queue[tuple[PendingItem, asyncio.Future[Result]]] = asyncio.Queue()
    room = asyncio.Semaphore(WINDOW)
    state = {"submitted": 0, "received": 0, "recorded": 0, "produced": False, "short": False}

    async def produce() -> None:
        cursor = 0
        while True:
            async with run.fenced() as conn:
                page = await items.pending(conn, run.job_id, cursor, settings.job_chunk)
            if not page:
                if reading.done:
                    return
                if reader is not None and reader.done() and reader.exception() is not None:
                    raise reader.exception()  # type: ignore[misc]
                reading.more.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await reading.more.wait()
                continue
            page, short = await _charge(run, page, mark)
            for item in page:
                await room.acquire()
                future = verifier.submit(item.email)
                state["submitted"] += 1
                future.add_done_callback(lambda f, item=item: done.put_nowait((item, f)))
            if page:
                cursor = page[-1].seq
            if short:
                state["short"] = True
                return

    producer = asyncio.get_running_loop().create_task(produce(), name=f"job-verify:{run.job_id}")
    batch: list[tuple[PendingItem, asyncio.Future[Result]]] = []
    batch_started = 0.0
    loop = asyncio.get_running_loop()
    try:
        while True:
            if producer.done() and not state["produced"]:
                state["produced"] = True
                producer.result()  # a failure to read the rows fails the job
            if state["produced"] and state["received"] == state["submitted"]:
                break
            try:
                async with asyncio.timeout(RECORD_EVERY):
                    got = await done.get()
            except TimeoutError:
                got = None
            if got is not None:
                if not batch:
                    batch_started = loop.time()
                batch.append(got)
                while not done.empty() and len(batch) < RECORD_BATCH:  # take what is there, without waiting
                    batch.append(done.get_nowait())
                taken = len(batch) - (state["received"] - state["recorded"])
                state["received"] += taken
                for _ in range(taken):
                    room.release()
            if batch and (len(batch) >= RECORD_BATCH or loop.time() - batch_started >= RECORD_EVERY
                          or (state["produced"] and state["received"] == state["submitted"])):
                await _record(run, batch, policy, matcher, status_counts)
                state["recorded"] += len(batch)
                batch = []
        if batch:
            await _record(run, batch, policy, matcher, status_counts)
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer
    return Outcome.OUT_OF_CREDITS if state["short"] else Outcome.COMPLETE


async def _charge(run: JobRun, page: list[PendingItem], mark: dict[str, int]) -> tuple[list[PendingItem], bool]:
    """Pay for the page's unpaid addresses: one ledger entry and the job's charge mark moved in one
    transaction (no write per item). Returns (the part that is paid for, whether credits ran short)."""
    paid_through = mark["charged_through"]
    page = [replace(item, charged=True) if not item.charged and item.seq <= paid_through and item.email.strip() else item
            for item in page]
    billable = [item for item in page if not item.charged and item.email.strip()]
    if not billable:
        return page, False
    job_id = run.job_id
    async with run.fenced() as conn:
        got = await run.services.credits.charge(
            await run.workspace_id(), len(billable), reason=f"job {job_id}", job_id=job_id, partial=True,
            key=f"job:{job_id}:charge:{billable[0].seq}-{billable[-1].seq}:{len(billable)}:{mark['charged']}")
        new_mark = page[-1].seq if got == len(billable) else (billable[got - 1].seq if got else paid_through)
        await transitions.update(conn, job_id, charged=Increment(got), charged_through=new_mark)
    mark["charged_through"] = new_mark
    mark["charged"] += got
    paid = {item.id for item in billable[:got]}
    page = [replace(item, charged=True) if item.id in paid else item for item in page]
    if got == len(billable):
        return page, False
    cut = page.index(next(item for item in page if item.id == billable[got].id))
    return page[:cut], True


async def _record(run: JobRun, batch: list[tuple[PendingItem, asyncio.Future[Result]]], policy: Policy | None,
                  matcher: KeywordMatcher, status_counts: Counter[str]) -> None:
    records: list[Recorded] = []
    for item, future in batch:
        if future.cancelled() or future.exception() is not None:
            result = _failed_result(item.email)
        else:
            result = future.result()
        status = str(result.status)
        planned = plan(result.status, policy, matcher.match(item.email)) if policy is not None else None
        records.append(Recorded(item.id, status, compact(result), planned.action if planned else None,
                                planned.because or None if planned else None, charged=item.charged,
                                refund=item.charged and info(result.status).refunded))
    refunds = sum(r.refund for r in records)
    counts = status_counts.copy()
    counts.update(r.status for r in records)
    seqs = [item.seq for item, _ in batch]
    async with run.fenced() as conn:
        await items.record_results(conn, records, worker=run.owner)
        if refunds:
            await run.services.credits.refund(await run.workspace_id(), refunds, reason="unknown results refunded", job_id=run.job_id,
                                              key=f"job:{run.job_id}:refund:{min(seqs)}-{max(seqs)}:{len(seqs)}")
        await transitions.update(conn, run.job_id, processed=Increment(len(records)), refunded=Increment(refunds),
                                 status_counts=dict(counts))
    status_counts.clear()
    status_counts.update(counts)
    await run.progress()
