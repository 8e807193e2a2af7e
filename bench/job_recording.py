"""Recording job results, on SQLite and on PostgreSQL (target: at least 5,000 items/s on each).

A bulk-file job of N rows (one in ten a repeat) goes through the real job engine: the rows are
read in (items inserted, repeats marked), then the embedded runner charges them chunk by chunk,
feeds them to a verifier and records every result with its plan, its share of the job's
counters and the refunds, each batch in one transaction fenced by the job's lease, and settles
the repeats at the end. The verifier here answers at once from a small table (valid, invalid,
unknown), so the figure is the engine's database work, not SMTP's.

    .venv/bin/python bench/job_recording.py [--rows 100000] [--backends sqlite,postgres]

PostgreSQL is the local server (postgres://postgres@127.0.0.1:5432/test) in a schema made and
dropped for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.jobs.states import State  # noqa: E402
from core.services import Services  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.storage.database import open_database  # noqa: E402
from core.verify.result import Result  # noqa: E402
from core.verify.status import Classifier, Status  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432/test"
KEY = "YTIyYTRkOGUxYWI2MThhMmRiMmM1YWNlMzE2ZjE4ZDA="
ANSWERS = [(Status.VALID, 10, Classifier.VALID), (Status.VALID, 10, Classifier.VALID), (Status.INVALID, 0, Classifier.INVALID),
           (Status.UNKNOWN, 4, Classifier.RISKY)]


class TableVerifier:
    """Answers at once: the benchmark measures recording, not verification."""

    def submit(self, email: str) -> asyncio.Future[Result]:
        status, score, classifier = ANSWERS[hash(email) % len(ANSWERS)]
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        future.set_result(Result(email=email, normalized=email.lower(), status=status, score=score, classifier=classifier,
                                 syntax="pass", mx="pass", mailbox="pass" if status is Status.VALID else "n/a",
                                 smtp_code=250 if status is Status.VALID else 550, mx_host="mx.example.com",
                                 reason="canned"))
        return future

    async def aclose(self) -> None:
        pass


def upload(rows: int) -> bytes:
    lines = ["name,email,company"]
    for i in range(rows):
        n = i if i % 10 else i // 10  # one row in ten repeats an earlier address
        lines.append(f"Person {i},person{n}@company{n % 500}.example.com,Company {n % 500}")
    return ("\n".join(lines) + "\n").encode()


async def run(url: str, rows: int) -> dict[str, float]:
    db = await open_database(url, migrate=True)
    settings = Settings(DATABASE_URL=url, LISTWARDEN_SECRET_KEY=KEY, LISTWARDEN_JOB_PROGRESS_SECONDS=1.0)
    services = Services.build(settings, verifier_factory=TableVerifier)
    await services.job_system.start()
    try:
        await services.credits.grant("bench", rows)
        data = upload(rows)
        started = time.perf_counter()
        job = await services.jobs.start_bulk_file("bench", data, requester="bench", filename="bench.csv")
        read_in = time.perf_counter() - started
        started = time.perf_counter()
        while (view := await services.jobs.get(job.id)).state is not State.DONE:
            assert view.state in (State.QUEUED, State.RUNNING), view
            await asyncio.sleep(0.05)
        recorded = time.perf_counter() - started
        started = time.perf_counter()
        size = sum([len(chunk) async for chunk in services.jobs.results_csv(job.id)])
        exported = time.perf_counter() - started
        assert view.processed == view.unique and view.total == rows
        return {"rows": rows, "unique": view.unique, "read_in_per_s": rows / read_in, "recorded_per_s": rows / recorded,
                "end_to_end_per_s": rows / (read_in + recorded), "csv_per_s": rows / exported, "csv_mb": size / 1e6}
    finally:
        await services.job_system.stop()
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        if backend == "sqlite":
            tmp = tempfile.mkdtemp()
            url, cleanup = f"sqlite://{tmp}/bench.sqlite3", None
        else:
            schema = f"lw_bench_{uuid.uuid4().hex[:8]}"
            url, cleanup = f"{PG}?schema={schema}", schema
        try:
            figures = await run(url, args.rows)
        finally:
            if cleanup:
                import asyncpg

                conn = await asyncpg.connect(PG.replace("postgres://", "postgresql://"))
                await conn.execute(f'DROP SCHEMA IF EXISTS "{cleanup}" CASCADE')
                await conn.close()
        verdict = "meets" if figures["recorded_per_s"] >= 5000 else "MISSES"
        print(f"{backend:>9}: {figures['rows']:,} rows ({figures['unique']:,} unique) | read in {figures['read_in_per_s']:,.0f}/s | "
              f"charged+recorded {figures['recorded_per_s']:,.0f}/s ({verdict} the 5,000/s target) | "
              f"end to end {figures['end_to_end_per_s']:,.0f}/s | results CSV {figures['csv_per_s']:,.0f} rows/s "
              f"({figures['csv_mb']:.1f} MB)")


if __name__ == "__main__":
    asyncio.run(main())
