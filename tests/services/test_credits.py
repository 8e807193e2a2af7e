"""Credits are a ledger: a balance is the sum of entries; a charge never overspends, even when
many run at once; an entry's key makes a retried charge or refund count once."""

from __future__ import annotations

import asyncio

import pytest

from core.credits import InsufficientCredits
from core.services import Services
from core.storage.models import CreditEntry
from tests.storage.fixtures import test_settings


async def test_grant_charge_refund_are_entries_and_the_balance_is_their_sum(services: Services) -> None:
    credits = services.credits
    assert await credits.balance("T1") == 0
    assert await credits.grant("T1", 100, actor="U1") == 100
    assert await credits.charge("T1", 30, reason="job") == 30
    await credits.refund("T1", 5, reason="unknowns")
    assert await credits.balance("T1") == 75
    kinds = [e.kind for e in await credits.history("T1")]
    assert kinds == ["refund", "charge", "grant"]
    assert await CreditEntry.all().count() == 3


async def test_a_short_balance_is_refused_up_front_with_the_shortfall(services: Services) -> None:
    await services.credits.grant("T1", 10)
    with pytest.raises(InsufficientCredits) as err:
        await services.credits.charge("T1", 25, reason="api")
    assert (err.value.needed, err.value.balance, err.value.shortfall) == (25, 10, 15)
    assert "15 short" in str(err.value)
    with pytest.raises(InsufficientCredits):
        await services.credits.require("T1", 11)
    await services.credits.require("T1", 10)
    assert await services.credits.balance("T1") == 10  # nothing was taken


async def test_partial_charge_takes_what_is_left(services: Services) -> None:
    await services.credits.grant("T1", 7)
    assert await services.credits.charge("T1", 10, reason="job chunk", partial=True) == 7
    assert await services.credits.charge("T1", 10, reason="job chunk", partial=True) == 0
    assert await services.credits.balance("T1") == 0


async def test_the_same_key_charges_and_refunds_once(services: Services) -> None:
    await services.credits.grant("T1", 50)
    assert await services.credits.charge("T1", 20, reason="job", key="job:1:chunk:1") == 20
    assert await services.credits.charge("T1", 20, reason="job", key="job:1:chunk:1") == 20  # the retry
    await services.credits.refund("T1", 3, reason="unknown", key="job:1:refund:1")
    await services.credits.refund("T1", 3, reason="unknown", key="job:1:refund:1")
    assert await services.credits.balance("T1") == 33


async def test_concurrent_charges_never_spend_more_than_the_balance(services: Services) -> None:
    await services.credits.grant("T1", 100)

    async def one() -> bool:
        try:
            await services.credits.charge("T1", 10, reason="race")
            return True
        except InsufficientCredits:
            return False

    outcomes = await asyncio.gather(*(one() for _ in range(25)))
    assert sum(outcomes) == 10
    assert await services.credits.balance("T1") == 0


async def test_unmetered_instances_record_usage_but_never_refuse(database) -> None:
    from tests.storage.fixtures import empty_all_tables

    await empty_all_tables(database)
    services = Services.build(test_settings(database, LISTWARDEN_CREDITS_METERED=False))
    assert await services.credits.charge("T1", 500, reason="api") == 500
    await services.credits.require("T1", 10**9)
    assert await services.credits.balance("T1") == -500


async def test_a_new_workspace_gets_its_initial_credits_once(database) -> None:
    from tests.storage.fixtures import empty_all_tables

    await empty_all_tables(database)
    services = Services.build(test_settings(database, LISTWARDEN_INITIAL_CREDITS=250))
    await services.workspaces.ensure("T9")
    services.workspaces._known.clear()  # another process, or a restart
    await services.workspaces.ensure("T9")
    assert await services.credits.balance("T9") == 250
    assert await services.credits.balances() == {"T9": 250}
