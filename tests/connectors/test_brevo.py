"""Brevo connector against its emulator over real HTTP on loopback; every request checked against the official spec."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.brevo import Brevo
from core.connectors.errors import (
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    RateLimited,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp, RateLimit
from tests.emulators import brevo as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": None, "endpoint_limits": None}  # client-side limits lifted
BIG = 10_500


@pytest.fixture(scope="module")
def big():
    """One 10,500-member emulator shared by the read-only tests; the spec must hold for all of them."""
    emu = emulator_module.build(members=BIG)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
def small():
    emu = emulator_module.build(members=250)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, **options) -> Brevo:
    connector = emu.connector(server.url, credentials=credentials, options={**FAST, **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


def one_sentence(err: Exception, *secrets: str) -> None:
    text = str(err)
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text
    assert not any(s and s in text for s in secrets)


def test_registered_under_brevo_and_sendinblue_with_schema():
    """`brevo` is the slug and `sendinblue` resolves to it; the key is secret and its help says where it lives."""
    assert get_platform("brevo") is Brevo and get_platform("sendinblue") is Brevo
    [key] = Brevo.credential_fields
    assert key.name == "api_key" and key.secret and "SMTP & API > API keys" in key.help
    caps = Brevo.capabilities
    assert set(caps.list_kinds) == {"list", "segment"} and caps.can_delete and caps.can_resubscribe
    assert caps.webhooks == "token" and caps.webhook_registration
    assert Brevo.rate_limit == RateLimit(requests=10, per_seconds=1.0, sliding=True)
    assert Brevo.endpoint_limits == {"other": RateLimit(requests=100, per_seconds=3600.0, sliding=True)}


async def test_good_and_bad_key(small, client):
    """A good key passes GET /account; Brevo's 401 becomes one sentence without the key in it."""
    emu, server = small
    info = await make(emu, server, client).check_credentials()
    assert info.name == "Acme"
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as caught:
        await make(emu, server, client, creds).check_credentials()
    one_sentence(caught.value, creds["api_key"])


async def test_read_only_key_reads_but_cannot_write(small, client):
    """A restricted key lists and streams members; every write is InsufficientScope and nothing changes."""
    emu, server = small
    brevo = make(emu, server, client, emu.read_only_credentials(server.url))
    await brevo.check_credentials()
    assert len(await brevo.lists()) == 3
    first = [c async for c in brevo.members(emu.list_id)][:2]
    for action in (brevo.unsubscribe, brevo.delete, brevo.resubscribe):
        with pytest.raises(InsufficientScope, match="cannot write") as caught:
            await action(first)
        one_sentence(caught.value, emulator_module.READ_ONLY_KEY)
    with pytest.raises(InsufficientScope):
        await brevo.register_webhook("https://lw.example.com/webhooks/brevo/c1")
    assert not emu.is_unsubscribed(first[0].email) and not emu.is_deleted(first[0].email)


@pytest.mark.parametrize(
    ("creds", "says"),
    [
        ({}, "required"),
        ({"api_key": "   "}, "required"),
        ({"api_key": "xsmtpsib-" + "ab" * 32 + "-SmtpKey000000001"}, "SMTP key"),
        ({"api_key": "sk_live_" + "ab" * 32}, "xkeysib-"),
        ({"api_key": "xkeysib-abc"}, "cut short"),
        ({"api_key": "xkeysib-" + "ab" * 16 + " " + "ab" * 16}, "spaces"),
    ],
)
def test_new_user_mistakes_are_one_clear_sentence(creds, says):
    """Missing, SMTP, foreign, truncated or mangled keys: one sentence naming the field, never echoing the key."""
    with pytest.raises(InvalidConfiguration) as caught:
        Brevo(creds)
    assert caught.value.field == "api_key" and says in str(caught.value)
    one_sentence(caught.value, creds.get("api_key", "").strip())


def test_base_url_cannot_come_from_user_credentials():
    """The key only ever goes to api.brevo.com unless the operator overrides base_url."""
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY, "base_url": "http://127.0.0.1:1"})
    assert brevo.base_url == "https://api.brevo.com/v3" and emulator_module.GOOD_KEY not in repr(brevo)


async def test_lists_and_segments_with_counts(big, client):
    """Lists carry totalSubscribers; the segment's count comes from GET /contacts?segmentId."""
    emu, server = big
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert set(found) == {"2", "7", "segment:11"}
    assert (found["2"].kind, found["2"].subscriber_count, found["2"].name) == ("list", BIG, "Newsletter")
    assert found["7"].subscriber_count == 0
    assert (found["segment:11"].kind, found["segment:11"].subscriber_count) == ("segment", BIG // 10)


async def test_pages_through_ten_thousand_members_page_by_page(big, client):
    """10,500 members, each seen once, fetched in pages of at most 500 as they are consumed."""
    emu, server = big
    brevo = make(emu, server, client)
    before = emu.counters["member_pages"]
    stream = brevo.members(emu.list_id)
    first = await stream.__anext__()
    assert emu.counters["member_pages"] - before == 1  # one page fetched, not the whole list
    emails = [first.email] + [c.email async for c in stream]
    assert len(emails) == BIG == len(set(emails))
    assert emails[0] == "member0@example.com" and emails[-1] == f"member{BIG - 1}@example.com"
    assert emu.counters["member_pages"] - before == BIG // 500 and emu.counters["largest_page"] == 500


async def test_segment_members_page_by_thousand(big, client):
    emu, server = big
    members = [c async for c in make(emu, server, client).members("segment:11")]
    assert len(members) == BIG // 10 and members[1].email == "member10@example.com"


@pytest.mark.parametrize("list_id", ["999", "abc", "segment:99", "segment:x"])
async def test_unknown_list_is_list_not_found(small, client, list_id):
    """An unknown list or segment id, numeric or not, is ListNotFound in one sentence."""
    emu, server = small
    with pytest.raises(ListNotFound) as caught:
        [c async for c in make(emu, server, client).members(list_id)]
    one_sentence(caught.value)


async def test_unsubscribe_batches_shows_on_later_reads_and_is_idempotent(small, client):
    """250 unsubscribes go as 3 batch calls; they show in members() and counts; repeating is no error; undo works."""
    emu, server = small
    brevo = make(emu, server, client)
    targets = [c async for c in brevo.members(emu.list_id)][:210]
    outcome = await brevo.unsubscribe(targets)
    assert sorted(outcome.done) == sorted(c.id for c in targets) and not outcome.failed
    assert emu.counters["batches"] == 3
    assert (await brevo.unsubscribe(targets[:5])).done == [c.id for c in targets[:5]]
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    assert len([c async for c in brevo.members(emu.list_id)]) == 40
    counts = {pl.id: pl.subscriber_count for pl in await brevo.lists()}
    assert counts["2"] == 40
    assert (await brevo.resubscribe(targets[:1])).done == [targets[0].id]
    assert not emu.is_unsubscribed(targets[0].email)


async def test_list_unsubscribed_and_blacklisted_members_are_skipped(small, client):
    """A contact unsubscribed from this list only (listUnsubscribed) is not a member to clean."""
    emu, server = small
    emu.state.list_unsubscribed[5] = {int(emu.list_id)}
    emu.state.blacklisted.add(6)
    emails = {c.email async for c in make(emu, server, client).members(emu.list_id)}
    assert len(emails) == 248 and "member4@example.com" not in emails and "member5@example.com" not in emails


async def test_unsubscribe_of_gone_or_email_only_contacts(small, client):
    """A deleted contact in a batch fails alone (207); a contact known only by email is set through PUT."""
    emu, server = small
    brevo = make(emu, server, client)
    a, b = [c async for c in brevo.members(emu.list_id)][:2]
    await brevo.delete([a])
    outcome = await brevo.unsubscribe([a, b, Contact(id="new@b.com", email="new@b.com")])
    assert outcome.done == [b.id] and set(outcome.failed) == {a.id, "new@b.com"}
    new_id = emu.add_member(emu.list_id, "late@b.com")
    assert (await brevo.unsubscribe([Contact(id="late@b.com", email="late@b.com")])).done == ["late@b.com"]
    assert emu.is_unsubscribed("late@b.com") and new_id


async def test_delete_is_idempotent_and_owner_refusal_is_clear(small, client):
    """DELETE removes the contact; again is still done (404); the account's own email fails with a sentence."""
    emu, server = small
    brevo = make(emu, server, client)
    a, b = [c async for c in brevo.members(emu.list_id)][:2]
    assert (await brevo.delete([a])).done == [a.id] and emu.is_deleted(a.email)
    assert (await brevo.delete([a])).done == [a.id]
    assert (await brevo.delete([Contact(id=b.email, email=b.email)])).done == [b.email] and emu.is_deleted(b.email)
    owner = Contact(id=str(emulator_module.OWNER_ID), email=emulator_module.OWNER_EMAIL)
    outcome = await brevo.delete([owner])
    assert "registered email" in outcome.failed[owner.id] and emu.counters["deleted"] == 2
    assert len([c async for c in brevo.members(emu.list_id)]) == 248


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429_with_and_without_retry_after(small, client, retry_after):
    emu, server = small
    headers = {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-remaining": "0", "x-sib-ratelimit-reset": "0"}
    emu.faults.add(Fault(status=429, retry_after=retry_after, headers=headers,
                         body={"code": "too_many_requests", "message": "Too many requests"}), times=2)
    assert len(await make(emu, server, client).lists()) == 3
    assert emu.faults.injected == 2


async def test_honours_brevo_reset_header_from_a_real_limit(small, client):
    """With Brevo's per-second limit on, a reply with x-sib-ratelimit-remaining 0 holds our next call until
    x-sib-ratelimit-reset, so Brevo never has to refuse one; a 429 that does come is waited out too."""
    emu, server = small
    emu.state.rps_limit = 4
    brevo = make(emu, server, client)
    started = time.monotonic()
    for _ in range(3):
        assert len(await brevo.lists()) == 3
    assert emu.counters["429"] == 0 and emu.counters["requests"] >= 9 and 1.0 <= time.monotonic() - started < 10
    emu.faults.add(Fault(status=429, headers={"x-sib-ratelimit-reset": "1"}), times=1)
    assert len(await brevo.lists()) == 3 and emu.faults.injected == 1


async def test_rate_limited_after_retries_is_clear(small, client):
    emu, server = small
    emu.faults.add(Fault(status=429, headers={"x-sib-ratelimit-reset": "0"}), times=10)
    with pytest.raises(RateLimited) as caught:
        await make(emu, server, client).lists()
    one_sentence(caught.value)


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    brevo = make(emu, server, client)
    emu.faults.add(Fault(status=502), times=2)
    await brevo.check_credentials()
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable) as caught:
        await brevo.check_credentials()
    one_sentence(caught.value)


def test_the_other_endpoints_have_their_own_hourly_budget():
    """Account and webhook calls share Brevo's 100-an-hour budget, apart from the contacts' 10 per second."""
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY})
    assert brevo.limits_for("GET", "account", None) == ("other",)
    assert brevo.limits_for("POST", "webhooks", None) == ("other",)
    assert brevo.limits_for("GET", "contacts/lists/2/contacts", {"limit": 500}) == ()
    assert brevo.limits_for("POST", "contacts/batch", None) == ()


async def test_hourly_budget_is_a_sliding_window_and_a_spent_one_is_rate_limited(small, client):
    """The hourly budget lets exactly its number of account calls through, and the next says when to
    try again (one sentence) instead of hanging for an hour. Brevo's own 429 with a long Retry-After
    holds the other endpoints without another request, while /contacts, on its own budget, goes on."""
    emu, server = small
    brevo = make(emu, server, client, endpoint_limits={"other": RateLimit(requests=3, per_seconds=3600.0, sliding=True)})
    for _ in range(3):
        await brevo.check_credentials()
    with pytest.raises(RateLimited) as caught:
        await brevo.check_credentials()
    assert "about 60 minutes" in str(caught.value) and emu.counters["requests"] == 3
    real = make(emu, server, client, endpoint_limits=Brevo.endpoint_limits)
    emu.faults.add(Fault(status=429, retry_after=1800), times=1)
    with pytest.raises(RateLimited) as caught:
        await real.check_credentials()
    assert "about 30 minutes" in str(caught.value) and caught.value.retry_after == 1800
    one_sentence(caught.value, emulator_module.GOOD_KEY)
    with pytest.raises(RateLimited):
        await real.check_credentials()
    assert emu.counters["requests"] == 3 and emu.faults.injected == 1  # the second refusal sent nothing
    assert len([c async for c in real.members(emu.list_id)]) == 250


async def test_emulator_is_a_contract_test():
    """The emulator itself flags a request the spec forbids, and a write that touches more than subscription state."""
    emu = emulator_module.build(members=10)
    with serve(emu.app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers={"api-key": emulator_module.GOOD_KEY}) as raw:
            await raw.get("/contacts/lists/2/contacts", params={"limit": 501})
            await raw.post("/contacts/batch", json={"contacts": [{"id": 1, "emailBlacklisted": True, "attributes": {"FNAME": "x"}}]})
    assert emu.violations.checked == 2  # every request reached the validator
    assert any("limit" in e for e in emu.violations.errors)
    assert any("attributes" in e for e in emu.violations.errors)
    with pytest.raises(AssertionError):
        emu.violations.assert_clean()


# --- webhooks ------------------------------------------------------------------------
def request_of(headers: dict[str, str], body: bytes, *, query: dict | None = None, at: datetime | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://lw.test/webhooks/brevo/c1", headers, query or {}, body,
                          at or datetime.now(timezone.utc))


async def test_webhook_registration_and_genuine_delivery(small, client):
    """We register a marketing listAddition webhook with a bearer token; Brevo's delivery with it is accepted and parsed."""
    emu, server = small
    brevo = make(emu, server, client)
    registration = await brevo.register_webhook("https://lw.example.com/webhooks/brevo/c1")
    [hook_id] = registration.ids
    hook = emu.state.webhooks[int(hook_id)]
    assert (hook["type"], hook["events"], hook["url"]) == ("marketing", ["listAddition"], "https://lw.example.com/webhooks/brevo/c1")
    token = registration.secrets.url_token
    assert hook["auth"] == {"type": "bearer", "token": token} and len(token) >= 32
    secrets = registration.secrets
    headers, body = emulator_module.delivery(emu.state, "New@B.com", 2)
    request = request_of(headers, body)
    brevo.authenticate_webhook(request, secrets)
    [event] = brevo.parse_webhook(request)
    assert (event.email, event.list_id, event.contact_id, event.kind) == ("New@B.com", "2", None, "subscribe")
    assert event.event_id == brevo.parse_webhook(request_of(headers, body))[0].event_id  # a retry dedupes
    await brevo.unregister_webhook(hook_id)
    await brevo.unregister_webhook(hook_id)
    assert not emu.state.webhooks


async def test_webhook_token_comes_from_the_caller(small, client):
    """The connection's secret wins; else a ?token= already in our URL is reused as the bearer token."""
    emu, server = small
    brevo = make(emu, server, client)
    first = await brevo.register_webhook("https://lw.example.com/webhooks/brevo/c1", secret="tok-from-connection-0123456789abcdef")
    assert emu.state.webhooks[int(first.ids[0])]["auth"]["token"] == "tok-from-connection-0123456789abcdef"
    assert first.secrets == WebhookSecrets(url_token="tok-from-connection-0123456789abcdef")
    second = await brevo.register_webhook("https://lw.example.com/webhooks/brevo/c2?token=in-url-token-0123456789")
    assert emu.state.webhooks[int(second.ids[0])]["auth"]["token"] == second.secrets.url_token == "in-url-token-0123456789"


TOKEN = "brevo-hook-token-0123456789abcdef"
SECRETS = WebhookSecrets(url_token=TOKEN)


def addition(**over) -> dict:
    now = int(time.time())
    return {"id": 501, "email": "new@b.com", "event": "list_addition", "key": "k", "list_id": [2],
            "date": "2026-11-22 18:00:00", "ts": now, "ts_event": now, **over}


def bearer(payload, token: str = TOKEN) -> tuple[dict[str, str], bytes]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}, body


def test_webhook_bad_or_missing_token_refused():
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY})
    for headers in ({"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"}, {}):
        with pytest.raises(WebhookRejected, match="token"):
            brevo.authenticate_webhook(request_of(headers, json.dumps(addition()).encode()), SECRETS)
    with pytest.raises(WebhookRejected):
        brevo.authenticate_webhook(request_of(*bearer(addition())), WebhookSecrets())  # nothing configured
    # A hand-pasted URL carries the same token as ?token=.
    brevo.authenticate_webhook(request_of({}, json.dumps(addition()).encode(), query={"token": TOKEN}), SECRETS)


def test_webhook_stale_or_future_timestamp_refused():
    """Older than Brevo's last retry (~11 h) or from the future: a replay."""
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY})
    stale = int(time.time() - timedelta(hours=13).total_seconds())
    with pytest.raises(WebhookRejected, match="replay"):
        brevo.authenticate_webhook(request_of(*bearer(addition(ts=stale, ts_event=stale))), SECRETS)
    future = int(time.time() + 3600)
    with pytest.raises(WebhookRejected, match="replay"):
        brevo.authenticate_webhook(request_of(*bearer(addition(ts=future, ts_event=future))), SECRETS)
    late = int(time.time() - timedelta(hours=11).total_seconds())  # Brevo's 4th retry is still genuine
    brevo.authenticate_webhook(request_of(*bearer(addition(ts=late, ts_event=late))), SECRETS)


def test_webhook_malformed_bodies():
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY})
    for body in (b"{not json", b"[]", b'"text"', b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(WebhookMalformed):
            brevo.parse_webhook(request_of(*bearer(body)))
    with pytest.raises(WebhookMalformed):
        brevo.parse_webhook(request_of(*bearer(addition(email=""))))
    with pytest.raises(WebhookMalformed):
        brevo.authenticate_webhook(request_of(*bearer(addition(ts="soon", ts_event="soon"))), SECRETS)


def test_webhook_batched_and_other_events():
    """A batched delivery (JSON array) yields each list addition; opens or unsubscribes yield nothing."""
    brevo = Brevo({"api_key": emulator_module.GOOD_KEY})
    batch = [addition(email=f"n{i}@b.com") for i in range(1000)] + [addition(event="unsubscribed"), addition(event="opened")]
    request = request_of(*bearer(batch))
    brevo.authenticate_webhook(request, SECRETS)
    events = brevo.parse_webhook(request)
    assert len(events) == 1000 and len({e.event_id for e in events}) == 1000
    assert brevo.parse_webhook(request_of(*bearer(addition(event="listAddition", list_id=7))))[0].list_id == "7"
    assert brevo.webhook_response(request)[0] == 200
