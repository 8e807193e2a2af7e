"""Update slots shared through the core: two processes' messages never update the same message within the interval."""

from __future__ import annotations

import asyncio
import time

from bot.message_slots import SharedSlots


async def test_a_slot_taken_by_one_process_is_refused_to_the_other_and_the_next_is_reserved(bot) -> None:
    """Two SharedSlots over one database are two web processes; the core's claim decides between them."""
    first, second = SharedSlots(bot.core.idempotency, 0.3), SharedSlots(bot.core.idempotency, 0.3)
    assert await first.take("C1:1.1")
    assert not await second.take("C1:1.1")
    assert await second.take("C1:2.2")  # another message has its own slots
    taken_at = time.time()
    await second.wait("C1:1.1")  # the current and the reserved slot are the first's: at least one interval later
    assert time.time() - taken_at >= 0.29
    assert not await first.take("C1:1.1")


async def test_updates_from_two_processes_are_spaced_by_the_interval(bot) -> None:
    slots = [SharedSlots(bot.core.idempotency, 0.2) for _ in range(2)]
    sent: list[float] = []

    async def process(own: SharedSlots) -> None:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            if await own.take("C1:9.9"):
                sent.append(time.monotonic())
            await asyncio.sleep(0.01)

    await asyncio.gather(*(process(s) for s in slots))
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    assert len(sent) >= 3 and min(gaps) >= 0.2, gaps
