"""A webhook delivery is stored once per (connection, dedupe key), without the credentials that
came with it, claimed by one processor at a time, and claimed again if its processor died."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.services import Services


async def test_accept_once_and_scrub_credentials(services: Services) -> None:
    d = services.deliveries
    first = await d.accept("cnx_1", "brevo", "evt-1", body=b'{"a":1}', url="https://lw.example/webhooks/brevo/cnx_1?token=SECRET&x=1",
                           headers={"Authorization": "Bearer SECRET", "Content-Type": "application/json"},
                           query={"token": "SECRET", "x": "1"})
    again = await d.accept("cnx_1", "brevo", "evt-1", body=b'{"a":1}')
    assert first[1] is True and again == (None, False)
    stored = await d.get(first[0])
    assert stored.body == b'{"a":1}' and stored.headers == {"content-type": "application/json"}
    assert "SECRET" not in stored.url and stored.query == {"x": "1"}
    assert await d.count() == 1


async def test_many_receivers_at_once_store_one_delivery(services: Services) -> None:
    outcomes = await asyncio.gather(*(services.deliveries.accept("cnx_1", "mailchimp", "same", body=b"x") for _ in range(20)))
    assert sum(1 for _, new in outcomes if new) == 1


async def test_claim_finish_fail_and_reclaim_after_a_lapsed_lease(services: Services) -> None:
    d = services.deliveries
    ids = [(await d.accept("cnx_1", "mailerlite", f"e{i}", body=b"{}"))[0] for i in range(3)]
    batch = await d.claim(limit=2)
    assert [x.id for x in batch] == ids[:2] and all(x.attempts == 1 for x in batch)
    assert [x.id for x in await d.claim(limit=10)] == [ids[2]]  # the leased ones are not handed out twice
    await d.finish(ids[0], result={"verified": 1})
    await d.fail(ids[1], "platform down", retry=True)
    assert [x.id for x in await d.claim(limit=10)] == [ids[1]]
    assert [x.id for x in await d.claim(limit=10, lease=timedelta(seconds=-1))] == []  # nothing pending now
    # a processor that died: its lease lapses and the delivery is claimed again
    stale = await d.accept("cnx_1", "mailerlite", "stale", body=b"{}")
    await d.claim(limit=10, lease=timedelta(seconds=-1))
    assert [x.id for x in await d.claim(limit=10)] == [stale[0]]
    assert await d.count("done") == 1
