"""Each platform's genuine delivery goes end to end: accepted, then the subscriber checked and cleaned.

For each of the eight platforms (SendGrid through the polling fallback) five new subscribers:
a valid one (kept), an invalid one (unsubscribed, the normal rules), a whitelisted invalid one
(kept, never verified), a blacklisted valid one (unsubscribed without verification) and a
disposable one (deleted, where the platform can delete). What must hold is the emulator's state
afterwards, and the record of each step.
"""

from __future__ import annotations

import pytest

from tests.webhooks.conftest import records, settled
from tests.webhooks.platforms import ALL_PLATFORMS, SendGrid

VALID, INVALID, WHITELISTED, BLACKLISTED = ("member1@example.com", "member2@example.com", "member3@example.com",
                                            "member4@example.com")
DISPOSABLE = "member5@mailinator.com"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("platform_cls", ALL_PLATFORMS, ids=lambda c: c.slug)
async def test_new_subscribers_are_checked_and_cleaned_by_the_connections_rules(platform_cls, app, client, connect):
    workspace = f"T-{platform_cls.slug}"
    platform = await connect(platform_cls, workspace)
    await app.services.keywords.add(platform.cnx.id, "whitelist", ["member3@"])
    await app.services.keywords.add(platform.cnx.id, "blacklist", ["member4@"])
    emails = [VALID, INVALID, WHITELISTED, BLACKLISTED] + ([DISPOSABLE] if platform.arbitrary_emails else [])
    ids = {email: platform.subscribe(email) for email in emails}
    if isinstance(platform, SendGrid):
        assert await platform.poll() == len(emails)
    else:
        for email in emails:
            hook = await platform.delivery(email, ids[email])
            response = await client.request(hook.method, hook.path, headers=hook.headers, content=hook.body)
            assert response.status_code == 200, response.text
    rows = await settled(app, platform.cnx.id, count=1 if isinstance(platform, SendGrid) else len(emails))
    found = records(rows)
    assert set(found) == set(emails)

    assert not platform.unsubscribed(VALID) and not platform.deleted(VALID)
    assert found[VALID]["status"] == "valid" and found[VALID]["outcome"] == "kept"

    assert platform.unsubscribed(INVALID), "an invalid new subscriber is unsubscribed (normal: nonexistent on)"
    assert [s["step"] for s in found[INVALID]["steps"]] == ["keywords", "verify", "action"]
    assert (found[INVALID]["status"], found[INVALID]["action"], found[INVALID]["outcome"]) == ("invalid", "unsubscribe", "done")

    assert not platform.unsubscribed(WHITELISTED) and not platform.deleted(WHITELISTED)
    assert found[WHITELISTED]["keyword"] == "whitelist" and found[WHITELISTED]["status"] is None  # never verified

    assert platform.unsubscribed(BLACKLISTED), found[BLACKLISTED]
    assert found[BLACKLISTED]["keyword"] == "blacklist" and found[BLACKLISTED]["status"] is None

    if platform.arbitrary_emails:
        assert found[DISPOSABLE]["status"] == "disposable" and found[DISPOSABLE]["action"] == "delete"
        if platform.can_delete:
            assert platform.deleted(DISPOSABLE) and found[DISPOSABLE]["outcome"] == "done"
        else:  # Kit: the rule asks for Delete, which Kit cannot do: recorded, never silently changed
            assert not platform.deleted(DISPOSABLE) and found[DISPOSABLE]["outcome"] == "failed"
    # each address verified now was charged; keyword matches were not, nor results from the last minute
    verified = sum(1 for r in found.values() for s in r["steps"] if s["step"] == "verify" and not s["cached"])
    used = 1_000_000 - await app.services.credits.balance(workspace)
    assert used == verified
