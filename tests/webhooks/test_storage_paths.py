"""The statements verify-first adds, on SQLite and PostgreSQL: grouped accepts, lease renewal, the
digest's totals, and a delivery processed end to end (claims, ledger, audit rows) on each database.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from core.services import Services
from core.storage.models import ActionAudit
from core.verify_first.inbox import Inbox
from core.verify_first.service import VerifyFirst
from tests.emulators import mailerlite
from tests.emulators.server import serve
from tests.storage.fixtures import database, empty_all_tables, test_settings  # noqa: F401  (database: both backends)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def svc(database, world):
    await empty_all_tables(database)
    settings = test_settings(database, **world.env(), LISTWARDEN_INITIAL_CREDITS=1000)
    services = Services.build(settings, connector_options={"rate_limit": None})
    yield services
    from core.connectors.http import close_shared_client

    await close_shared_client()


def item(key: str, **extra) -> dict:
    return {"connection_id": "cnx_1", "platform": "brevo", "dedupe_key": key, "body": b'{"a":1}',
            "url": "https://lw.example/webhooks/brevo/cnx_1?token=SECRET&x=1",
            "headers": {"Authorization": "Bearer SECRET", "Content-Type": "application/json"},
            "query": {"token": "SECRET", "x": "1"}, **extra}


async def test_accept_many_keeps_order_stores_each_key_once_and_no_credentials(svc: Services) -> None:
    first = await svc.deliveries.accept_many([item("a"), item("b"), item("a")])
    assert [new for _, new in first] == [True, True, False] and first[0][0] != first[1][0]
    again = await svc.deliveries.accept_many([item("b"), item("c")])
    assert again[0] == (None, False) and again[1][1] is True
    stored = await svc.deliveries.get(first[0][0])
    assert "SECRET" not in stored.url and stored.query == {"x": "1"} and "authorization" not in stored.headers
    assert await svc.deliveries.count() == 3


async def test_the_inbox_groups_concurrent_accepts_and_answers_each(svc: Services) -> None:
    inbox = Inbox(svc.deliveries)
    answers = await asyncio.gather(*(inbox.accept(**item(f"k{i % 50}")) for i in range(120)))
    assert sum(new for _, new in answers) == 50 and await svc.deliveries.count() == 50


async def test_renew_extends_only_deliveries_being_processed(svc: Services) -> None:
    [(one, _), (two, _)] = await svc.deliveries.accept_many([item("r1"), item("r2")])
    claimed = await svc.deliveries.claim(limit=1, lease=timedelta(seconds=-1))  # as if its lease had lapsed
    assert [d.id for d in claimed] == [one]
    assert await svc.deliveries.renew([one, two], lease=timedelta(seconds=60)) == 1
    assert [d.id for d in await svc.deliveries.claim(limit=10)] == [two], "the renewed one is not handed out again"


async def test_digest_totals_add_up_each_connections_summaries(svc: Services) -> None:
    summary = {"new": 3, "verified": 2, "whitelisted": 1, "acted": {"invalid:unsubscribe": 1}, "failed": {}}
    ids = [i for i, _ in await svc.deliveries.accept_many([item(f"d{i}") for i in range(2)])]
    for delivery_id in ids:
        await svc.deliveries.finish(delivery_id, {"summary": summary, "subscribers": []})
    vf = VerifyFirst(svc, svc.settings)
    now = datetime.now(UTC)
    totals = await vf.digests.totals(now - timedelta(minutes=1), now + timedelta(minutes=1))
    assert totals["cnx_1"]["new"] == 6 and totals["cnx_1"]["acted"] == {"invalid:unsubscribe": 2}


async def test_a_delivery_processed_on_each_database(svc: Services) -> None:
    emu = mailerlite.build(members=30)
    with serve(emu.app) as server:
        cnx = await svc.connections.create("T-db", "mailerlite", emu.credentials(server.url), base_url=server.url)
        vf = VerifyFirst(svc, svc.settings)
        await vf.registrar.turn_on("T-db", cnx.id)
        [hook] = emu.state.webhooks.values()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        events = [{"event": "subscriber.created", "id": str(mailerlite.BASE_ID + n), "email": f"member{n}@example.com",
                   "created_at": stamp} for n in (1, 2, 3, 2)]  # member2 twice; members 2 and 3 bounce
        body = json.dumps({"events": events}).encode()
        assert hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        [(delivery_id, _)] = await svc.deliveries.accept_many([{
            "connection_id": cnx.id, "platform": "mailerlite", "dedupe_key": "one", "body": body, "method": "POST",
            "url": f"{svc.settings.public_url}/webhooks/mailerlite/{cnx.id}"}])
        [delivery] = await svc.deliveries.claim(limit=1)
        result = await vf.pipeline.process(delivery)
        again = await vf.pipeline.process(delivery)  # taken up again after a crash: the same outcome, nothing twice
        await vf.stop()
    assert result["summary"]["new"] == 3 and result["duplicates"] == 1
    assert again["summary"]["new"] == 3
    assert {r["email"]: r["outcome"] for r in result["subscribers"]} == {
        "member1@example.com": "kept", "member2@example.com": "done", "member3@example.com": "done"}
    assert emu.is_unsubscribed("member2@example.com") and emu.is_unsubscribed("member3@example.com")
    assert sorted(await ActionAudit.filter(connection_id=cnx.id).values_list("email", flat=True)) == [
        "member2@example.com", "member3@example.com"]
    assert await svc.credits.balance("T-db") == 1000 - 3, "one charge for the delivery, not one per attempt"
    assert delivery_id == delivery.id
