"""Klaviyo connector against its spec-checked emulator over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from openapi_core.testing import MockRequest, MockResponse

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.errors import (
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp
from core.connectors.klaviyo import ENDPOINT_LIMITS, Klaviyo
from tests.emulators import klaviyo as K
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": None, "endpoint_limits": None, "count_cache_seconds": 0}  # client-side limits lifted


def lifted(emu):
    """The emulator stops enforcing Klaviyo's per-endpoint windows (the client limits are lifted too)."""
    emu.state.tiers = {tier: None for tier in K.TIER_LIMITS}
    return emu


@pytest.fixture(scope="module")
def big():
    emu = lifted(K.build(members=10_500))
    with serve(emu.app) as server:
        yield emu, server


class Swap:
    """One loopback server per module whose app each test replaces: a fresh emulator per test
    without a server start and stop each time."""

    def __init__(self) -> None:
        self.app = None

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def host():
    swap = Swap()
    with serve(swap) as server:
        yield swap, server


@pytest.fixture
def small(host):
    swap, server = host
    emu = lifted(K.build(members=120))
    swap.app = emu.app
    yield emu, server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, **options) -> Klaviyo:
    connector = emu.connector(server.url, credentials=credentials, options={**FAST, **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


async def first(connector: Klaviyo, list_id: str, n: int) -> list[Contact]:
    found: list[Contact] = []
    async for contact in connector.members(list_id):
        found.append(contact)
        if len(found) == n:
            break
    return found


def test_registered_with_schema_and_capabilities():
    """The slug resolves to this class; the one credential is secret and says where Klaviyo shows it."""
    cls = get_platform("klaviyo")
    assert cls is Klaviyo
    [key] = cls.credential_fields
    assert key.name == "api_key" and key.secret and "Settings > API keys" in key.help and "pk_" in key.help
    caps = cls.capabilities
    assert set(caps.list_kinds) == {"list", "segment"} and caps.webhooks == "signed"
    assert caps.webhook_registration and caps.polling and caps.can_delete and caps.can_resubscribe


async def test_good_and_bad_key(small, client):
    """A good key passes; Klaviyo's 401 becomes one sentence without the key in it."""
    emu, server = small
    await make(emu, server, client).check_credentials()
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    assert creds["api_key"] not in str(info.value) and "\n" not in str(info.value) and info.value.status == 401
    emu.violations.assert_clean()


async def test_read_only_key_reads_but_cannot_write(small, client):
    """A read-only key streams members, but every write is InsufficientScope and changes nothing."""
    emu, server = small
    kl = make(emu, server, client, emu.read_only_credentials(server.url))
    targets = await first(kl, emu.list_id, 2)
    for action in (kl.unsubscribe, kl.delete, kl.resubscribe):
        with pytest.raises(InsufficientScope, match="cannot write"):
            await action(targets)
    with pytest.raises(UnsupportedAction, match="poll"):
        await kl.register_webhook("https://lw.example.com/webhooks/klaviyo/c1")
    await kl.check_credentials()
    assert not any(emu.is_unsubscribed(c.email) or emu.is_deleted(c.email) for c in targets)
    assert emu.counters["403"] >= 3 and not emu.state.pending
    emu.violations.assert_clean()


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        ({}, "required"),
        ({"api_key": "   "}, "required"),
        ({"api_key": "XyZ9q2"}, "public API key"),
        ({"api_key": "sk_live_1234567890abcdefghij"}, "must start with pk_"),
        ({"api_key": "pk_1234"}, "does not look like"),
        ({"api_key": "pk_12345678 90abcdef1234567890ab"}, "does not look like"),
    ],
)
def test_new_user_key_mistakes_are_one_sentence(credentials, says):
    """Each malformed key gives one sentence naming the field, never echoing the key."""
    with pytest.raises(InvalidConfiguration) as info:
        Klaviyo(credentials)
    message = str(info.value)
    assert info.value.field == "api_key" and says in message and "\n" not in message
    assert not any(v.strip() and v.strip() in message for v in credentials.values())


def test_pasted_scheme_is_accepted_and_base_url_cannot_come_from_credentials():
    """`Klaviyo-API-Key pk_...` pasted whole is cleaned; user input never redirects the key."""
    kl = Klaviyo({"api_key": f"Klaviyo-API-Key {K.GOOD_KEY}", "base_url": "http://127.0.0.1:1"})
    assert kl.credentials["api_key"] == K.GOOD_KEY and kl.base_url == "https://a.klaviyo.com"
    assert kl.auth_headers() == {"Authorization": f"Klaviyo-API-Key {K.GOOD_KEY}", "revision": "2026-07-15",
                                 "Accept": "application/vnd.api+json"}
    assert K.GOOD_KEY not in repr(kl)


async def test_lists_and_segments_with_counts(small, client):
    """Lists and segments come back with their kind and Klaviyo's profile_count."""
    emu, server = small
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert found[K.MAIN_LIST].kind == "list" and found[K.MAIN_LIST].subscriber_count == 120 + K.EXTRAS
    assert found[K.VIP_LIST].subscriber_count == 0 and found[K.VIP_LIST].name.startswith("VIP")
    segment = found[f"segment:{K.SEGMENT}"]
    assert segment.kind == "segment" and segment.subscriber_count == 40 and segment.name == "Engaged"
    emu.violations.assert_clean()


async def test_counts_keep_to_klaviyo_limit_within_a_budget_then_on_demand(client):
    """With Klaviyo's real 1/s count limit on both sides: no 429, counts past the budget are None,
    and subscriber_count() then fetches the one a user picks; a later lists() reuses the cache."""
    emu = K.build(members=30)  # every Klaviyo window enforced by the emulator
    emu.state.lists["Ab1Cd2"] = {"name": "Customers", "opt_in_process": "single_opt_in"}
    emu.state.tiers["L"] = None
    with serve(emu.app) as server:
        kl = make(emu, server, client, endpoint_limits=ENDPOINT_LIMITS, count_budget=1.5, count_cache_seconds=300)
        started = time.monotonic()
        found = {pl.id: pl.subscriber_count for pl in await kl.lists()}
        ids = sorted(emu.state.lists)  # the emulator pages lists in id order
        assert ids == ["Ab1Cd2", K.VIP_LIST, K.MAIN_LIST] and [found[i] for i in ids] == [0, 0, None]
        assert found[f"segment:{K.SEGMENT}"] == 10  # segments have their own window
        assert await kl.subscriber_count(K.MAIN_LIST) == 30 + K.EXTRAS
        assert time.monotonic() - started >= 2.0  # the third list count waited for its slot
        assert emu.counters["429"] == 0 and emu.counters["counts"] == 4
        again = {pl.id: pl.subscriber_count for pl in await kl.lists()}
        assert again[K.MAIN_LIST] == 32 and emu.counters["counts"] == 4
    emu.violations.assert_clean()


async def test_cursor_pages_through_ten_thousand_members(big, client):
    """10,500 subscribed members stream once each, 100 per page, following links.next; the two list
    members who cannot receive email (unsubscribed, hard-bounced) are left out."""
    emu, server = big
    before = emu.counters["member_pages"]
    emails = [c.email async for c in make(emu, server, client).members(emu.list_id)]
    assert len(emails) == 10_500 == len(set(emails))
    assert set(emails) == {f"member{i}@example.com" for i in range(10_500)}
    assert emu.counters["member_pages"] - before == 106  # ceil(10,502 / 100)
    emu.violations.assert_clean()


async def test_members_are_fetched_lazily_page_by_page(big, client):
    """Reading 150 members fetches two pages, not the list."""
    emu, server = big
    before = emu.counters["member_pages"]
    assert len(await first(make(emu, server, client), emu.list_id, 150)) == 150
    assert emu.counters["member_pages"] - before == 2


async def test_segment_members(small, client):
    """A segment's members carry the segment id, so a later unsubscribe knows where they came from."""
    emu, server = small
    members = [c async for c in make(emu, server, client).members(f"segment:{K.SEGMENT}")]
    assert len(members) == 40 and all(c.list_id == f"segment:{K.SEGMENT}" for c in members)
    assert members[1].email == "member3@example.com"
    emu.violations.assert_clean()


@pytest.mark.parametrize("list_id", ["NoSuch", "segment:NoSuch", "../lists", "segment:"])
async def test_unknown_list_is_list_not_found(small, client, list_id):
    """An unknown (or malformed) list or segment id is ListNotFound in one sentence."""
    emu, server = small
    with pytest.raises(ListNotFound, match="Klaviyo has no"):
        [c async for c in make(emu, server, client).members(list_id)]
    with pytest.raises(ListNotFound):
        await make(emu, server, client).subscriber_count(list_id)
    emu.violations.assert_clean()


async def test_unsubscribe_is_async_shows_on_later_reads_and_repeats_cleanly(small, client):
    """The job is applied once the next request reaches Klaviyo; the members leave the list; a repeat
    is done again without a second change and no profile is ever created."""
    emu, server = small
    kl = make(emu, server, client)
    targets = await first(kl, emu.list_id, 4)
    assert len((await kl.unsubscribe(targets)).done) == 4
    assert emu.state.pending and not emu.is_unsubscribed(targets[0].email)  # queued, not done yet
    remaining = [c async for c in kl.members(emu.list_id)]
    assert all(emu.is_unsubscribed(c.email) for c in targets) and len(remaining) == 116
    assert not {c.id for c in targets} & {c.id for c in remaining}
    assert len((await kl.unsubscribe(targets)).done) == 4
    await kl.check_credentials()
    assert emu.counters["unsubscribed"] == 4 and emu.counters["created"] == 0 and emu.counters["unsubscribe_jobs"] == 1
    # the repeat found them out of the list and sent nothing, so it never became a global unsubscribe
    assert all(emu.state.consent_of(emu.state.find(c.email)) == "SUBSCRIBED" for c in targets)
    emu.violations.assert_clean()


async def test_unsubscribe_batches_by_one_hundred(small, client):
    """110 contacts take two jobs (Klaviyo's maximum is 100 profiles per call)."""
    emu, server = small
    kl = make(emu, server, client)
    targets = await first(kl, emu.list_id, 110)
    assert len((await kl.unsubscribe(targets)).done) == 110
    await kl.check_credentials()
    assert emu.counters["unsubscribe_jobs"] == 2 and emu.counters["unsubscribed"] == 110
    emu.violations.assert_clean()


async def test_segment_contacts_are_unsubscribed_globally(small, client):
    """A segment is not a list, so its members are unsubscribed account-wide and vanish from lists too."""
    emu, server = small
    kl = make(emu, server, client)
    targets = await first(kl, f"segment:{K.SEGMENT}", 2)
    assert len((await kl.unsubscribe(targets)).done) == 2
    main = {c.email async for c in kl.members(emu.list_id)}
    assert all(emu.is_unsubscribed(c.email) and c.email not in main for c in targets)
    assert all(emu.state.consent_of(emu.state.find(c.email)) == "UNSUBSCRIBED" for c in targets)
    emu.violations.assert_clean()


async def test_resubscribe_undoes_without_sending_email(small, client):
    """Undo puts the members back in the list as subscribed, through a historical import (the
    emulator records a violation for any subscribe that could send a confirmation email)."""
    emu, server = small
    kl = make(emu, server, client)
    targets = await first(kl, emu.list_id, 3)
    await kl.unsubscribe(targets)
    await kl.check_credentials()
    assert (await kl.resubscribe(targets[:2])).done == [c.id for c in targets[:2]]
    members = {c.email async for c in kl.members(emu.list_id)}
    assert {c.email for c in targets[:2]} <= members and targets[2].email not in members
    assert not emu.is_unsubscribed(targets[0].email) and emu.is_unsubscribed(targets[2].email)
    emu.violations.assert_clean()


async def test_delete_is_async_repeatable_and_never_resurrects(small, client):
    """Deletion jobs are done on 202 and show on later reads; deleting again is done; unsubscribing a
    deleted profile is done without recreating it; resubscribing it is a clear failure."""
    emu, server = small
    kl = make(emu, server, client)
    a, b = await first(kl, emu.list_id, 2)
    assert (await kl.delete([a, b])).done == [a.id, b.id]
    assert len([c async for c in kl.members(emu.list_id)]) == 118
    assert emu.is_deleted(a.email) and emu.is_deleted(b.email) and emu.counters["deleted"] == 2
    assert (await kl.delete([a])).done == [a.id]
    assert (await kl.unsubscribe([a])).done == [a.id]
    outcome = await kl.resubscribe([b])
    assert b.id in outcome.failed and "no such profile" in outcome.failed[b.id]
    await kl.check_credentials()
    assert emu.counters["created"] == 0 and emu.counters["deleted"] == 2 and emu.is_deleted(a.email)
    emu.violations.assert_clean()


async def test_one_refused_address_does_not_fail_its_batch(small, client):
    """Klaviyo refuses a whole job for one bad address; the batch is split so the others still go."""
    emu, server = small
    kl = make(emu, server, client)
    odd_id = emu.add_member(emu.list_id, "odd@localhost")
    targets = [*(await first(kl, emu.list_id, 3)), Contact(id=odd_id, email="odd@localhost", list_id=emu.list_id)]
    outcome = await kl.unsubscribe(targets)
    assert set(outcome.done) == {c.id for c in targets[:3]} and set(outcome.failed) == {odd_id}
    assert "Invalid email" in outcome.failed[odd_id]
    emu.violations.assert_clean()


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429(small, client, retry_after):
    """Klaviyo's 429 (with or without Retry-After) is waited out and retried."""
    emu, server = small
    body = {"errors": [{"id": "x", "status": 429, "code": "throttled", "title": "Request was throttled.", "detail": "Request was throttled."}]}
    emu.faults.add(Fault(status=429, retry_after=retry_after, body=body), times=2)
    assert len(await first(make(emu, server, client), emu.list_id, 5)) == 5
    assert emu.faults.injected == 2
    emu.violations.assert_clean()


async def test_emulator_windows_answer_429_and_client_honours_retry_after(client):
    """With the client's limits lifted, the emulator's own 3/s deletion window answers 429 with
    Retry-After, and the connector waits it out: all four deletions are done."""
    emu = K.build(members=10)
    emu.state.tiers["L"] = None
    with serve(emu.app) as server:
        kl = make(emu, server, client)
        targets = await first(kl, emu.list_id, 4)
        started = time.monotonic()
        assert len((await kl.delete(targets)).done) == 4
        assert emu.counters["429"] >= 1 and emu.counters["deletion_jobs"] == 4 and time.monotonic() - started < 3
    emu.violations.assert_clean()


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    """One 500 is retried away; a lasting 503 becomes PlatformUnavailable."""
    emu, server = small
    kl = make(emu, server, client)
    emu.faults.add(Fault(status=500), times=1)
    await kl.check_credentials()
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable):
        await kl.check_credentials()


async def test_contract_middleware_catches_a_request_off_the_spec(small):
    """The emulator really validates: a request without `revision` and with page[size]=500 is recorded."""
    emu, server = small
    async with httpx.AsyncClient() as raw:
        await raw.get(f"{server.url}/api/lists/{emu.list_id}/profiles", params={"page[size]": 500},
                      headers={"Authorization": f"Klaviyo-API-Key {K.GOOD_KEY}"})
    assert len(emu.violations.errors) >= 1
    with pytest.raises(AssertionError, match="broke the official spec"):
        emu.violations.assert_clean()
    emu.violations.errors.clear()


async def test_emulator_replies_match_the_official_spec(small, client):
    """The emulator's bodies validate against the spec's response schemas, so the connector is tested
    against Klaviyo's documented shapes, not our own guesses."""
    emu, server = small
    spec = K.load_reduced_spec()
    headers = {"Authorization": f"Klaviyo-API-Key {K.GOOD_KEY}", "revision": K.REVISION, "Accept": K.JSONAPI}
    hook = {"data": {"type": "webhook", "attributes": {"name": "x", "endpoint_url": "https://lw.example.com/h", "secret_key": "s" * 24},
                     "relationships": {"webhook-topics": {"data": [{"type": "webhook-topic", "id": K.TOPICS[5]}]}}}}
    calls = [
        ("GET", "/api/lists", {"page[size]": "1"}, None),
        ("GET", f"/api/lists/{emu.list_id}", {"additional-fields[list]": "profile_count"}, None),
        ("GET", "/api/segments", {}, None),
        ("GET", f"/api/segments/{K.SEGMENT}", {"additional-fields[segment]": "profile_count"}, None),
        ("GET", f"/api/lists/{emu.list_id}/profiles", {"page[size]": "3", "additional-fields[profile]": "subscriptions"}, None),
        ("GET", f"/api/segments/{K.SEGMENT}/profiles", {"page[size]": "3"}, None),
        ("GET", "/api/profiles", {"page[size]": "3", "additional-fields[profile]": "subscriptions"}, None),
        ("GET", f"/api/profiles/{K.profile_id(7)}", {}, None),
        ("GET", "/api/lists/NoSuch/profiles", {}, None),
        ("GET", "/api/webhook-topics", {}, None),
        ("POST", "/api/webhooks", {}, hook),
    ]
    for method, path, params, body in calls:
        extra = {"Content-Type": K.JSONAPI} if body else {}
        content = json.dumps(body).encode() if body else None
        reply = await client.request(method, server.url + path, params=params, headers={**headers, **extra}, content=content)
        url = urlsplit(str(reply.request.url))
        request = MockRequest("https://a.klaviyo.com", method.lower(), url.path, args=dict(parse_qsl(url.query)),
                              headers=dict(reply.request.headers), data=content, content_type=extra.get("Content-Type", "application/json"))
        response = MockResponse(reply.content, reply.status_code, headers=dict(reply.headers), content_type=K.JSONAPI)
        assert not list(spec.iter_response_errors(request, response)), f"{method} {path} reply is off the spec"
    emu.violations.assert_clean()


# --- verify-first --------------------------------------------------------------------------
SECRET = "whsec-klaviyo-test-0001"
HOOK_ID = "01JWHTEST0000000000000000A"
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc)


def delivery(events, *, secret=SECRET, sent=NOW, received=NOW, hook_id=HOOK_ID, tamper=None) -> WebhookRequest:
    headers, body = K.webhook_delivery(hook_id, secret, events, sent=sent)
    if tamper:
        headers, body = tamper(headers, body)
    return WebhookRequest("POST", "https://lw.test/webhooks/klaviyo/c1", headers, {}, body, received)


def offline() -> Klaviyo:
    return Klaviyo({"api_key": K.GOOD_KEY})


def test_webhook_genuine_delivery_is_parsed():
    """A signed Subscribed to Email Marketing delivery yields the profile (and its email when the
    payload includes the profile); other topics in the same delivery are ignored."""
    kl = offline()
    other = {**K.subscribed_event("01JPROFILE0000000000000002", event_id="e2"), "topic": "event:klaviyo.opened_email"}
    request = delivery([K.subscribed_event("01JPROFILE0000000000000001", event_id="e1", email="new@b.com"),
                        K.subscribed_event("01JPROFILE0000000000000003", event_id="e3"), other])
    kl.authenticate_webhook(request, WebhookSecrets(signing_secret=SECRET))
    first_event, second_event = kl.parse_webhook(request)
    assert (first_event.event_id, first_event.email, first_event.contact_id) == ("e1", "new@b.com", "01JPROFILE0000000000000001")
    assert second_event.email is None and second_event.contact_id == "01JPROFILE0000000000000003"
    assert kl.webhook_response(request)[0] == 200


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "someone-elses-secret"}, "signature"),
        ({"tamper": lambda h, b: (h, b.replace(b"e1", b"e9"))}, "signature"),
        ({"tamper": lambda h, b: ({k: v for k, v in h.items() if k != "klaviyo-signature"}, b)}, "missing"),
        ({"tamper": lambda h, b: ({**h, "klaviyo-timestamp": str(int(h["klaviyo-timestamp"]) + 1)}, b)}, "signature"),
        ({"sent": NOW - timedelta(minutes=20)}, "replay"),
        ({"sent": NOW + timedelta(minutes=20)}, "replay"),
        ({"tamper": lambda h, b: ({**h, "klaviyo-webhook-id": "01JWHOTHER000000000000000B"}, b)}, "does not match its header"),
        ({"tamper": lambda h, b: ({k: v for k, v in h.items() if k != "klaviyo-webhook-id"}, b)}, "does not match its header"),
    ],
)
def test_webhook_forgeries_and_replays_are_refused(kwargs, reason):
    """Wrong secret, edited body or timestamp, missing signature, a stale or future timestamp, and a
    body whose webhook id differs from its header are all WebhookRejected."""
    with pytest.raises(WebhookRejected, match=reason):
        offline().authenticate_webhook(delivery([K.subscribed_event("01JP", event_id="e1")], **kwargs),
                                       WebhookSecrets(signing_secret=SECRET))


def test_webhook_without_a_configured_secret_is_refused():
    """A connection that never stored a signing secret accepts nothing."""
    with pytest.raises(WebhookRejected, match="no signing secret"):
        offline().authenticate_webhook(delivery([]), WebhookSecrets())


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"data": {"x": 1}}', b'{"data": [1, 2]}',
                                  json.dumps({"data": [{"topic": "event:klaviyo.subscribed_to_email_marketing", "payload": {}}]}).encode()])
def test_webhook_malformed_bodies(body):
    """Bodies that are not Klaviyo's `{"data": [events]}`, or a subscription naming no profile, are WebhookMalformed."""
    request = WebhookRequest("POST", "https://lw.test/webhooks/klaviyo/c1", {}, {}, body, NOW)
    with pytest.raises(WebhookMalformed):
        offline().parse_webhook(request)


async def test_webhook_registration_roundtrip_with_hydration(small, client):
    """Registration picks the new-subscriber topic and our secret; Klaviyo's signed delivery with
    that secret authenticates; an id-only event is hydrated; unregistering twice is fine."""
    emu, server = small
    kl = make(emu, server, client)
    registration = await kl.register_webhook("https://lw.example.com/webhooks/klaviyo/c1", secret="connection-secret-0123456789")
    [hook_id] = registration.ids
    stored = emu.state.webhooks[hook_id]
    assert stored["topics"] == ["event:klaviyo.subscribed_to_email_marketing"]
    assert stored["secret_key"] == "connection-secret-0123456789"
    assert registration.secrets == WebhookSecrets(signing_secret="connection-secret-0123456789")
    pid = emu.add_member(emu.list_id, "signup@b.com")
    headers, body = K.webhook_delivery(hook_id, stored["secret_key"], [K.subscribed_event(pid)])
    request = WebhookRequest("POST", "https://lw.example.com/webhooks/klaviyo/c1", headers, {}, body, datetime.now(timezone.utc))
    kl.authenticate_webhook(request, registration.secrets)
    [event] = kl.parse_webhook(request)
    assert await kl.resolve_contact(event.contact_id) == Contact(id=pid, email="signup@b.com")
    assert await kl.resolve_contact(K.profile_id(99_999)) is None
    await kl.unregister_webhook(hook_id)
    await kl.unregister_webhook(hook_id)
    assert not emu.state.webhooks
    fresh = await kl.register_webhook("https://lw.example.com/webhooks/klaviyo/c2")  # no secret given: a new one
    assert len(fresh.secrets.signing_secret or "") >= 32 and emu.state.webhooks[fresh.ids[0]]["secret_key"] == fresh.secrets.signing_secret
    emu.violations.assert_clean()


async def test_account_without_webhooks_gets_a_sentence_and_polls(small, client):
    """Without system webhooks (no Advanced KDP) registration says so in one sentence, and
    contacts_since() finds the new subscriber instead."""
    emu, server = small
    emu.state.webhooks_enabled = False
    kl = make(emu, server, client)
    with pytest.raises(UnsupportedAction) as info:
        await kl.register_webhook("https://lw.example.com/webhooks/klaviyo/c1")
    assert "poll" in str(info.value) and "\n" not in str(info.value)
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert [c async for c in kl.contacts_since(since)] == []
    pid = emu.add_member(emu.list_id, "fresh@b.com")
    [found] = [c async for c in kl.contacts_since(since)]
    assert (found.id, found.email) == (pid, "fresh@b.com") and found.created_at > since
    emu.violations.assert_clean()


async def test_contacts_since_pages_oldest_first_and_skips_suppressed(small, client):
    """Polling from a high-water mark returns the profiles created after it, across pages, without
    the two profiles that cannot receive email."""
    emu, server = small
    kl = make(emu, server, client)
    since = K.BASE_TIME + timedelta(seconds=9.5)  # member10 onwards
    found = [c async for c in kl.contacts_since(since)]
    assert [c.email for c in found] == [f"member{i}@example.com" for i in range(10, 120)]
    assert found[0].created_at == K.BASE_TIME + timedelta(seconds=10)  # an exact high-water mark for the next poll
    assert [c.email async for c in kl.contacts_since(found[-5].created_at)] == [c.email for c in found[-4:]]
    assert len([c async for c in kl.contacts_since(None)]) == 120
    emu.violations.assert_clean()
