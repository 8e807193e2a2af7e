"""The Jobs API on the core's durable jobs: a connection's list (verify, or clean after approval) or an
uploaded file; progress; streamed results; approval by an approver key only, never the requester's.

The list is a MailerLite emulator's (member0..member4@example.com) on loopback; the addresses are
verified against the loopback mail servers, where member0 and member1 exist and the rest do not.
A cleanup really unsubscribes at the emulator.
"""

from __future__ import annotations

import asyncio
import csv
import io

import pytest

from tests.api.conftest import Api, served

UNSUBSCRIBED_BY_CLEANUP = {"member1@example.com", "member3@example.com", "member4@example.com"}


async def settle(api: Api, job_id: str, *, until: tuple[str, ...], key: str | None = None) -> dict:
    """The job once it reaches one of `until` (within 30 s)."""
    for _ in range(300):
        job = (await api.get(f"/v1/jobs/{job_id}", key)).json()
        if job["state"] in until:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {job['state']}")


@pytest.fixture
def mailerlite():
    with served("mailerlite", members=5) as platform:
        yield platform


@pytest.fixture
async def api(make_api, world, mailerlite):
    async with make_api(world=world, platforms=(mailerlite,)) as api:
        await api.new_key("approver", roles=("approver",))
        await api.new_key("requester", roles=("approver",))
        yield api


async def connection(api: Api, platform) -> str:
    cid = (await api.connect(platform))["id"]
    base = f"/v1/integrations/{platform.slug}/connections/{cid}"
    assert (await api.post(base + "/whitelist", {"keyword": "MEMBER2"})).status_code == 201
    assert (await api.post(base + "/blacklist", {"keyword": "member1@"})).status_code == 201
    return cid


async def test_clean_job_waits_for_an_approver_then_unsubscribes_what_the_rules_say(api, mailerlite):
    """Invalid addresses are unsubscribed (the default rules), a whitelisted one is kept and a
    blacklisted one goes; nothing changes at the platform before approval; the requester's own
    key may not approve (four eyes), a key without the role may not either, and a second approval
    does nothing."""
    cid = await connection(api, mailerlite)
    started = await api.post("/v1/jobs", {"connection_id": cid, "list_id": mailerlite.emulator.list_id, "mode": "clean"},
                             key=api.keys["requester"])
    assert started.status_code == 202, started.text
    job = started.json()
    assert (job["kind"], job["mode"], job["state"]) == ("cleanup", "clean", "queued")
    assert started.headers["location"] == f"/v1/jobs/{job['id']}"
    waiting = await settle(api, job["id"], until=("awaiting_approval", "failed"))
    assert waiting["state"] == "awaiting_approval", waiting
    assert waiting["progress"]["processed"] == 5 and waiting["counts"] == {"invalid": 3, "valid": 2}
    assert waiting["planned"] == {"keep": 2, "unsubscribe": 3}
    assert waiting["credits"] == {"charged": 5, "refunded": 0, "used": 5}
    assert not any(mailerlite.emulator.is_unsubscribed(e) for e in UNSUBSCRIBED_BY_CLEANUP)  # nothing yet

    url = f"/v1/jobs/{job['id']}/approve"
    no_role = await api.post(url)  # the main key has no approver role
    assert no_role.status_code == 403 and no_role.json()["error"]["code"] == "forbidden"
    own = await api.post(url, key=api.keys["requester"])
    assert own.status_code == 403 and "someone else" in own.json()["error"]["message"]
    approved = await api.post(url, key=api.keys["approver"])
    assert approved.status_code == 202, approved.text
    twice = await api.post(url, key=api.keys["approver"])
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "invalid_state"

    done = await settle(api, job["id"], until=("done", "failed"))
    assert done["state"] == "done" and done["applied"] == {"unsubscribe": 3}, done
    assert done["approver"].startswith("key_") and done["requester"].startswith("key_")
    assert {e for e in (f"member{i}@example.com" for i in range(5)) if mailerlite.emulator.is_unsubscribed(e)} == \
        UNSUBSCRIBED_BY_CLEANUP

    results = await api.get(f"/v1/jobs/{job['id']}/results.csv")
    assert results.status_code == 200 and results.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert {r["email"]: r["planned_action"] for r in rows} == {
        "member0@example.com": "keep", "member1@example.com": "unsubscribe", "member2@example.com": "keep",
        "member3@example.com": "unsubscribe", "member4@example.com": "unsubscribe"}


async def test_verify_job_reports_progress_and_results_and_cannot_be_approved(api, mailerlite):
    cid = (await api.connect(mailerlite))["id"]
    started = await api.post("/v1/jobs", {"connection_id": cid, "list_id": mailerlite.emulator.list_id})
    assert started.status_code == 202 and started.json()["kind"] == "verify_list"
    done = await settle(api, started.json()["id"], until=("done", "failed"))
    assert done["state"] == "done" and done["counts"] == {"invalid": 3, "valid": 2} and done["rules"] is None
    assert done["planned"] == {"keep": 5}
    rows = list(csv.DictReader(io.StringIO((await api.get(f"/v1/jobs/{done['id']}/results.csv")).text)))
    assert [r["email"] for r in rows] == [f"member{i}@example.com" for i in range(5)] or len(rows) == 5
    approve = await api.post(f"/v1/jobs/{done['id']}/approve", key=api.keys["approver"])
    assert approve.status_code == 409
    assert not any(mailerlite.emulator.is_unsubscribed(f"member{i}@example.com") for i in range(5))


async def test_a_csv_upload_is_a_bulk_file_job_whose_results_keep_every_row(api):
    upload = "email,name\nann@acme.example,Ann \u00c5berg\nnobody@acme.example,N\nann@acme.example,again\n,empty\n"
    started = await api.post("/v1/jobs", content=upload.encode(), headers={"Content-Type": "text/csv"})
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["kind"] == "bulk_file" and job["progress"]["rows"] == 4 and job["progress"]["duplicates"] >= 1
    done = await settle(api, job["id"], until=("done", "failed"))
    assert done["state"] == "done" and done["credits"]["used"] == 2  # two unique addresses; the repeat is free
    text = (await api.get(f"/v1/jobs/{job['id']}/results.csv")).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["email", "name", "status"]
    assert [r[:2] for r in rows[1:]] == [["ann@acme.example", "Ann \u00c5berg"], ["nobody@acme.example", "N"],
                                         ["ann@acme.example", "again"], ["", "empty"]]
    assert [r[2] for r in rows[1:3]] == ["valid", "invalid"]


async def test_a_plain_text_upload_with_a_column_choice(api):
    started = await api.post("/v1/jobs?filename=list.txt", content=b"ann@acme.example\nbob@acme.example\n",
                             headers={"Content-Type": "text/plain"})
    assert started.status_code == 202, started.text
    done = await settle(api, started.json()["id"], until=("done", "failed"))
    assert done["counts"] == {"valid": 2}


async def test_what_cannot_work_is_refused_up_front(api, mailerlite, make_api, world):
    cid = (await api.connect(mailerlite))["id"]
    cases = [
        ({"list_id": "x"}, 400, "connection_id"),
        ({"connection_id": cid}, 400, "list_id"),
        ({"connection_id": cid, "list_id": "x", "mode": "scrub"}, 400, "mode"),
        ({"connection_id": cid, "list_id": "x", "rules": {}}, 400, "rules"),
        ({"connection_id": cid, "list_id": "x", "mode": "clean", "rules": {"invalid": {"action": "burn"}}}, 400, None),
        ({"connection_id": cid, "list_id": "x", "mode": "clean", "rules": {"spam": {}}}, 400, "rules"),
        ({"connection_id": cid, "list_id": "x", "extra": 1}, 400, "extra"),
        ({"connection_id": 5, "list_id": "x"}, 400, "connection_id"),
    ]
    for body, status, field in cases:
        answer = await api.post("/v1/jobs", body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["error"].get("field") == field, (body, answer.json())
    missing = await api.post("/v1/jobs", {"connection_id": "cnx_nope", "list_id": "x"})
    assert missing.status_code == 404
    no_list = await api.post("/v1/jobs", {"connection_id": cid, "list_id": "no-such-list"})
    assert no_list.status_code == 404 and no_list.json()["error"]["code"] == "list_not_found"
    await api.delete(f"/v1/integrations/mailerlite/connections/{cid}")
    off = await api.post("/v1/jobs", {"connection_id": cid, "list_id": mailerlite.emulator.list_id})
    assert off.status_code == 409 and off.json()["error"]["code"] == "connection_disconnected"
    empty = await api.post("/v1/jobs", content=b"", headers={"Content-Type": "text/csv"})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_request", empty.text
    not_text = await api.post("/v1/jobs", content=b"\x00\xff\xfe\x00garbage\n", headers={"Content-Type": "text/csv"})
    assert not_text.status_code in (202, 400) and "Traceback" not in not_text.text  # kept byte for byte, or refused
    for job_id in ("job_nope", "x" * 300):
        assert (await api.get(f"/v1/jobs/{job_id}")).status_code == 404
    assert (await api.get("/v1/jobs/job_nope/results.csv")).status_code == 404
    assert (await api.post("/v1/jobs/job_nope/approve", key=api.keys["approver"])).status_code == 404


async def test_a_job_the_balance_cannot_cover_is_402_with_the_shortfall(make_api, world, mailerlite):
    async with make_api(world=world, platforms=(mailerlite,), credits=2) as api:
        cid = (await api.connect(mailerlite))["id"]
        short = await api.post("/v1/jobs", {"connection_id": cid, "list_id": mailerlite.emulator.list_id})
        assert short.status_code == 402
        assert (short.json()["error"]["needed"], short.json()["error"]["shortfall"]) == (5, 3)
        upload = await api.post("/v1/jobs", content=b"a@acme.example\nb@acme.example\nc@acme.example\n",
                                headers={"Content-Type": "text/csv"})
        assert upload.status_code == 402 and upload.json()["error"]["shortfall"] == 1
        assert await api.balance() == 2


async def test_a_platform_that_cannot_delete_refuses_a_delete_rule(make_api, world):
    """Kit has no delete: the default rules (disposable -> delete) are refused with a way out, not changed."""
    with served("convertkit", members=3) as kit:
        async with make_api(world=world, platforms=(kit,)) as api:
            cid = (await api.connect(kit))["id"]
            refused = await api.post("/v1/jobs", {"connection_id": cid, "list_id": kit.emulator.list_id, "mode": "clean"})
            assert refused.status_code == 400 and refused.json()["error"]["field"] == "rules"
            assert "cannot delete" in refused.json()["error"]["message"]
            rules = {"disposable": {"enabled": True, "action": "unsubscribe"}}
            ok = await api.post("/v1/jobs", {"connection_id": cid, "list_id": kit.emulator.list_id, "mode": "clean",
                                             "rules": rules})
            assert ok.status_code == 202, ok.text
            assert ok.json()["rules"]["disposable"] == {"enabled": True, "action": "unsubscribe"}


async def test_uploads_past_the_limit_are_413(make_api, world):
    async with make_api(world=world, LISTWARDEN_API_MAX_UPLOAD_BYTES=1000) as api:
        big = b"".join(f"user{i}@acme.example\n".encode() for i in range(200))
        answer = await api.post("/v1/jobs", content=big, headers={"Content-Type": "text/csv"})
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"

        async def chunks():
            for _ in range(10):
                yield b"x@acme.example\n" * 20

        streamed = await api.post("/v1/jobs", content=chunks(), headers={"Content-Type": "text/csv"})
        assert streamed.status_code == 413
