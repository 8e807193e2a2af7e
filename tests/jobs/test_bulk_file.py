"""A TXT/CSV upload becomes a job whose results CSV keeps every input row, in order, with all its
columns and bytes; repeated addresses are verified and charged once, unknowns are refunded."""

from __future__ import annotations

import csv
import io

import pytest
import pytest_asyncio

from core.credits import InsufficientCredits
from core.jobs.states import State
from core.verify.files import FileFormatError
from tests.jobs.helpers import build_world, job_system, wait_for
from tests.storage.fixtures import empty_all_tables, test_settings


@pytest.fixture(scope="module")
def world():
    with build_world(10).running() as w:
        yield w


@pytest_asyncio.fixture(loop_scope="module")
async def svc(database, world):
    await empty_all_tables(database)
    async with job_system(test_settings(database), world) as services:
        await services.credits.grant("T1", 100)
        yield services


UPLOAD = (
    "name;Email;note\n"
    "Ann;ann@acme.example;first\n"
    "Zed;zed@acme.example;gone\n"
    "Ann again;ANN@acme.example;a repeat, other case\n"
    "Odd;caf\xe9@acme.example;latin-1 byte\n"
    ";;blank address\n"
    "Lost;who@broken.example;dns fails\n"
    "Short\n"
).encode("latin-1")


async def test_every_row_comes_back_in_order_with_its_bytes(svc) -> None:
    job = await svc.jobs.start_bulk_file("T1", UPLOAD, requester="key_1", filename="list.csv")
    assert job.total == 7 and job.unique == 6 and job.kind == "bulk_file"
    done = await wait_for(svc, job.id, State.DONE)
    assert done.status_counts == {"valid": 1, "invalid": 4, "unknown": 1}  # blank, "Short" and the latin-1 address are invalid
    assert done.charged == 4 and done.refunded == 1  # blank cells are free; repeats are charged once; unknowns refunded
    assert await svc.credits.balance("T1") == 100 - 3
    out = b"".join([chunk async for chunk in svc.jobs.results_csv(job.id)])
    assert "café".encode("latin-1") in out  # the undecodable byte came back as it went in
    rows = list(csv.reader(io.StringIO(out.decode("utf-8", "surrogateescape")), delimiter=";"))
    assert rows[0][:4] == ["name", "Email", "note", "status"]
    assert [r[0] for r in rows[1:]] == ["Ann", "Zed", "Ann again", "Odd", "", "Lost", "Short"]
    assert [r[3] for r in rows[1:]] == ["valid", "invalid", "valid", "invalid", "invalid", "unknown", "invalid"]
    assert len(rows) == 8 and all(len(r) == len(rows[0]) for r in rows)


async def test_a_plain_text_file_and_refusals(svc) -> None:
    job = await svc.jobs.start_bulk_file("T1", b"ann@acme.example\nbob@acme.example\n", requester="U1", filename="x.txt")
    done = await wait_for(svc, job.id, State.DONE)
    out = b"".join([c async for c in svc.jobs.results_csv(done.id)]).decode().splitlines()
    assert out[0].startswith("email,status") and out[1].startswith("ann@acme.example,valid")
    with pytest.raises(FileFormatError):
        await svc.jobs.start_bulk_file("T1", b"", requester="U1", filename="empty.csv")
    big = "".join(f"user{i}@acme.example\n" for i in range(500)).encode()
    with pytest.raises(InsufficientCredits) as err:
        await svc.jobs.start_bulk_file("T1", big, requester="U1", filename="big.txt")
    assert err.value.needed == 500
    assert [j.id for j in await svc.jobs.list("T1")] == [job.id]  # the refused upload left no job behind
