"""A job's results as CSV, streamed a page of rows at a time (a million rows never sit in memory).

A bulk file comes back as its own rows, every one of them in order with all its columns, plus
the result columns (core/verify/files.py); undecodable bytes come back exactly as they went in.
A list job gives one row per contact: its id and address, the result, and the planned and
applied action.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

from core.storage.models import Job
from core.storage.sql import default_connection, execute
from core.verify.files import RESULT_COLUMNS, AddressTable, result_cells
from core.verify.result import Result
from core.verify.status import Classifier, Status

PAGE = 2000
LIST_COLUMNS = ("contact_id", "email", *RESULT_COLUMNS, "reason", "planned_action", "applied")


def stored_result(email: str, status: str | None, data: Any) -> Result:
    data = json.loads(data) if isinstance(data, str) else (data or {})
    if status is None:  # never verified (a cancelled job)
        return Result(email=email, normalized="", status=Status.UNKNOWN, score=0, classifier=Classifier.RISKY,
                      reason="Not verified: the job stopped first.")
    return Result(email=email, normalized=data.get("normalized", ""), status=Status(status), score=int(data.get("score", 0)),
                  classifier=Classifier(data.get("classifier", "risky")), flags=tuple(data.get("flags", ())),
                  syntax=data.get("syntax", "n/a"), mx=data.get("mx", "n/a"), mailbox=data.get("mailbox", "n/a"),
                  smtp_code=data.get("smtp_code"), smtp_message=data.get("smtp_message") or None,
                  mx_host=data.get("mx_host"), suggestion=data.get("suggestion"), reason=data.get("reason", ""))


async def _pages(job_id: str) -> AsyncIterator[list[dict[str, Any]]]:
    last = 0
    while True:
        _, rows = await execute(default_connection(),
                                "SELECT seq, email, contact_id, row, status, result, planned_action, action_state "
                                "FROM job_item WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?", [job_id, last, PAGE])
        if not rows:
            return
        last = int(rows[-1]["seq"])
        yield rows


async def results_csv(job_id: str) -> AsyncIterator[bytes]:
    job = await Job.get(id=job_id)
    params = dict(job.params or {})
    if job.kind == "bulk_file":
        async for chunk in _bulk_rows(job_id, params):
            yield chunk
        return
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LIST_COLUMNS)
    yield out.getvalue().encode()
    async for rows in _pages(job_id):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in rows:
            result = stored_result(row["email"], row["status"], row["result"])
            writer.writerow([row["contact_id"] or "", row["email"], *result_cells(result), result.reason,
                             row["planned_action"] or "", row["action_state"] or ""])
        yield out.getvalue().encode()


async def _bulk_rows(job_id: str, params: dict[str, Any]) -> AsyncIterator[bytes]:
    """The file's rows in order, padded to the header's width, then the result columns (as `listwarden verify -i`)."""
    delimiter = params.get("delimiter") or ","
    header = params.get("header")
    table = AddressTable(header, int(params.get("email_column", 0)), delimiter, iter(()), params.get("format", "csv"))
    width = len(header) if header is not None else 1

    def page_writer() -> tuple[io.StringIO, Any]:
        out = io.StringIO()
        return out, csv.writer(out, delimiter=delimiter, lineterminator="\n")

    out, writer = page_writer()
    writer.writerow(table.output_header())
    yield out.getvalue().encode("utf-8", "surrogateescape")
    async for rows in _pages(job_id):
        out, writer = page_writer()
        for row in rows:
            raw = bytes(row["row"]) if row["row"] is not None else row["email"].encode("utf-8", "surrogateescape")
            cells = next(csv.reader([raw.decode("utf-8", "surrogateescape")], delimiter=delimiter), [])
            cells = (cells + [""] * width)[:width] if len(cells) < width else cells
            writer.writerow([*cells, *result_cells(stored_result(row["email"], row["status"], row["result"]))])
        yield out.getvalue().encode("utf-8", "surrogateescape")
