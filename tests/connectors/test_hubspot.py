"""HubSpot connector against its emulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.errors import (
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    RateLimited,
    UnsupportedAction,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp, RateLimit
from core.connectors.hubspot import HubSpot, signing_uri
from core.settings import Settings
from tests.emulators import hubspot as hs
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": RateLimit(requests=10_000, per_seconds=1.0)}
SETTINGS = Settings.model_validate({"HUBSPOT_CLIENT_ID": hs.CLIENT_ID, "HUBSPOT_CLIENT_SECRET": hs.CLIENT_SECRET})


@pytest.fixture(scope="module")
def big():
    emu = hs.build(members=10_500)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
def small():
    emu = hs.build(members=120)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, *, backoff=0.01, retries=3, **options) -> HubSpot:
    opts = {**FAST, "settings": SETTINGS, "token_url": f"{server.url}/oauth/v1/token", **options}
    connector = emu.connector(server.url, credentials=credentials, options=opts)
    connector.http = PlatformHttp(connector, client=client, backoff_base=backoff, max_retries=retries)
    return connector


def one_sentence(text: str) -> bool:
    return "\n" not in text and text.endswith(".") and text.count(". ") == 0


# --- schema and credentials --------------------------------------------------------------
def test_registered_with_schema_and_capabilities():
    """The registry finds HubSpot; the form field is secret, optional (OAuth) and says where to look."""
    cls = get_platform("hubspot")
    assert cls is HubSpot and cls.auth == "api_key_or_oauth"
    [token] = cls.credential_fields
    assert token.secret and not token.required and "Private Apps" in token.help
    caps = cls.capabilities
    assert set(caps.list_kinds) == {"static", "active", "all"} and caps.webhooks == "signed"
    assert not caps.webhook_registration and not caps.can_resubscribe and "Webhooks tab" in cls.webhook_steps


async def test_good_and_bad_token(small, client):
    """A good private-app token passes; HubSpot's 401 becomes one sentence without the token in it."""
    emu, server = small
    await make(emu, server, client).check_credentials()
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, emu.bad_credentials(server.url)).check_credentials()
    assert hs.WRONG_TOKEN not in str(info.value) and one_sentence(str(info.value))


async def test_read_only_token_reads_but_cannot_write(small, client):
    """Without crm.objects.contacts.write the 403 MISSING_SCOPES is InsufficientScope naming the scope; reads work."""
    emu, server = small
    ro = make(emu, server, client, emu.read_only_credentials(server.url))
    first = [c async for c in ro.members(emu.list_id)][:2]
    with pytest.raises(InsufficientScope) as info:
        await ro.unsubscribe(first)
    assert "cannot make changes" in str(info.value) and "Verify Only" in str(info.value)
    with pytest.raises(InsufficientScope, match="crm.objects.contacts.write"):
        await ro.delete(first)
    assert not any(emu.is_unsubscribed(c.email) or emu.is_deleted(c.email) for c in first)
    assert hs.READ_ONLY_TOKEN not in str(info.value)


@pytest.mark.parametrize(
    "creds,hint",
    [
        ({}, "required"),
        ({"api_key": "   "}, "required"),
        ({"api_key": "3fa85f64-5717-4562-b3fc-2c963f66afa6"}, "API key"),  # a retired hapikey / client secret
        ({"api_key": "pat-na1 11111111 2222"}, "pat-"),
        ({"api_key": "my-hubspot-password"}, "pat-"),
    ],
)
def test_new_user_mistakes_are_one_sentence(creds, hint):
    """Each malformed token names the field and what to paste, in one sentence, without echoing it."""
    with pytest.raises(InvalidConfiguration) as info:
        HubSpot(creds)
    message = str(info.value)
    assert info.value.field == "api_key" and hint in message and one_sentence(message)
    assert not any(v.strip() and v in message for v in creds.values())


def test_bearer_prefix_is_forgiven_and_base_url_is_fixed():
    """A pasted `Bearer pat-…` works; stored credentials cannot redirect the token; repr hides it."""
    connector = HubSpot({"api_key": f"Bearer {hs.GOOD_TOKEN}", "base_url": "http://127.0.0.1:1"})
    assert connector.credentials["api_key"] == hs.GOOD_TOKEN
    assert connector.base_url == "https://api.hubapi.com" and hs.GOOD_TOKEN not in repr(connector)
    assert connector.auth_headers()["Authorization"] == f"Bearer {hs.GOOD_TOKEN}"


# --- lists and members -------------------------------------------------------------------
async def test_lists_with_kinds_and_counts(small, client):
    """MANUAL/SNAPSHOT are static, DYNAMIC active, counts come from hs_list_size; company lists are left out."""
    emu, server = small
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert found[hs.MAIN_LIST].kind == "static" and found[hs.MAIN_LIST].subscriber_count == 121  # + one without email
    assert found[hs.ACTIVE_LIST].kind == "active" and found[hs.ACTIVE_LIST].subscriber_count == 40
    assert found[hs.SNAPSHOT_LIST].kind == "static" and found[hs.SNAPSHOT_LIST].subscriber_count == 0
    assert hs.COMPANY_LIST not in found
    assert found["all"].kind == "all" and found["all"].subscriber_count == 121


async def test_list_search_pages_by_offset(client):
    """With more lists than one search page holds, `hasMore`/`offset` are followed to the end."""
    emu = hs.build(members=3, lists=620)
    with serve(emu.app) as server:
        found = await make(emu, server, client).lists()
    assert len([pl for pl in found if pl.kind == "static"]) == 622 and emu.counters["list_searches"] == 2
    emu.violations.assert_clean()


async def test_members_stream_ten_thousand_page_by_page(big, client):
    """10,500 members arrive once each; memberships are fetched 200 at a time as we consume, never all up front."""
    emu, server = big
    connector = make(emu, server, client)
    before = emu.counters["membership_pages"]
    stream = connector.members(emu.list_id)
    head = [await stream.__anext__() for _ in range(10)]
    assert emu.counters["membership_pages"] - before == 1  # only the first page so far
    emails = [c.email for c in head] + [c.email async for c in stream]
    assert len(emails) == 10_500 == len(set(emails))
    assert emu.counters["membership_pages"] - before == 53  # 10,501 memberships / 200
    assert emu.counters["batch_reads"] >= 105  # every page hydrated in batches of at most 100


async def test_members_skip_contacts_without_email_and_active_lists_work(small, client):
    """The member without an email is skipped; a DYNAMIC list streams its own members; 'all' streams the portal."""
    emu, server = small
    connector = make(emu, server, client)
    main = [c async for c in connector.members(emu.list_id)]
    assert len(main) == 120 and str(emu.state.no_email_contact) not in {c.id for c in main}
    active = [c async for c in connector.members(hs.ACTIVE_LIST)]
    assert len(active) == 40 and all(int(c.email[6:].split("@")[0]) % 3 == 0 for c in active)
    everyone = [c async for c in connector.members("all")]
    assert len(everyone) == 120 and {c.list_id for c in everyone} == {"all"}


@pytest.mark.parametrize("list_id", ["424242", "not-a-list", hs.COMPANY_LIST])
async def test_unknown_or_non_contact_list_is_list_not_found(small, client, list_id):
    emu, server = small
    with pytest.raises(ListNotFound):
        [c async for c in make(emu, server, client).members(list_id)]


async def test_failed_hydration_is_our_error_not_an_exception_group(small, client):
    """A page's batch reads run in parallel; when one keeps failing, the caller still gets PlatformUnavailable."""
    emu, server = small
    emu.faults.add(Fault(status=503, path_prefix="/crm/v3/objects/contacts/batch/read"), times=20)
    with pytest.raises(PlatformUnavailable):
        [c async for c in make(emu, server, client).members(emu.list_id)]
    emu.faults.queue.clear()


# --- writing -----------------------------------------------------------------------------
async def test_unsubscribe_batches_shows_on_later_reads_and_repeats_cleanly(small, client):
    """One batch unsubscribe-all call per 100 emails; opted-out members vanish from later reads; a repeat is done too."""
    emu, server = small
    connector = make(emu, server, client)
    targets = [c async for c in connector.members(emu.list_id)][:5]
    assert sorted((await connector.unsubscribe(targets)).done) == sorted(c.id for c in targets)
    assert emu.counters["batch_unsubscribe_calls"] == 1 and all(emu.is_unsubscribed(c.email) for c in targets)
    assert len([c async for c in connector.members(emu.list_id)]) == 115
    again = await connector.unsubscribe(targets)
    assert len(again.done) == 5 and not again.failed and emu.counters["unsubscribed"] == 5
    outcome = await connector.unsubscribe([Contact(id="9", email="")])
    assert outcome.failed["9"].endswith(".")


async def test_unsubscribe_without_enterprise_batch_scope_falls_back_per_address(small, client):
    """A token without the batch scopes (below Marketing Hub Enterprise) uses one call per email, and still succeeds."""
    emu, server = small
    connector = make(emu, server, client, {"api_key": hs.STARTER_TOKEN})
    targets = [c async for c in connector.members(emu.list_id)][:3]
    assert len((await connector.unsubscribe(targets)).done) == 3
    assert (await connector.unsubscribe(targets[:1])).done == [targets[0].id]
    assert emu.counters["unsubscribe_calls"] == 4 and emu.counters["batch_unsubscribe_calls"] == 0
    assert all(emu.is_unsubscribed(c.email) for c in targets)


async def test_batch_refusing_an_address_falls_back_for_that_chunk_only(small, client):
    """If HubSpot answers the batch with 400, the chunk goes address by address so the good ones still succeed."""
    emu, server = small
    connector = make(emu, server, client)
    targets = [c async for c in connector.members(emu.list_id)][:3]
    emu.faults.add(Fault(status=400, path_prefix="/communication-preferences/v4/statuses/batch",
                         body={"status": "error", "message": "Invalid input", "correlationId": "c1", "category": "VALIDATION_ERROR"}))
    assert len((await connector.unsubscribe(targets)).done) == 3 and emu.counters["unsubscribe_calls"] == 3
    assert len((await connector.unsubscribe(targets)).done) == 3 and emu.counters["batch_unsubscribe_calls"] == 1


async def test_resubscribe_is_refused_with_the_reason(small, client):
    emu, server = small
    with pytest.raises(UnsupportedAction, match="legal basis"):
        await make(emu, server, client).resubscribe([Contact(id="1001", email="member0@example.com")])


async def test_delete_archives_in_batches_and_repeats_are_success(small, client):
    """Archive goes 100 ids per call; archived contacts leave the list; again = done; permanent uses GDPR delete."""
    emu, server = small
    connector = make(emu, server, client)
    members = [c async for c in connector.members(emu.list_id)]
    doomed, forgotten = members[:105], members[105]
    assert len((await connector.delete(doomed)).done) == 105 and emu.counters["archive_calls"] == 2
    assert all(emu.is_deleted(c.email) for c in doomed)
    assert len([c async for c in connector.members(emu.list_id)]) == 15
    assert len((await connector.delete(doomed[:3])).done) == 3 and emu.counters["deleted"] == 105
    assert (await connector.delete([forgotten], permanent=True)).done == [forgotten.id]
    assert (await connector.delete([forgotten], permanent=True)).done == [forgotten.id]
    assert emu.counters["gdpr_deleted"] == 1 and emu.is_deleted(forgotten.email)


async def test_emulator_records_any_property_write_as_a_violation(small, client):
    """Self-check of the guard the other tests rely on: writing a contact property is flagged."""
    emu, server = small
    await client.patch(f"{server.url}/crm/v3/objects/contacts/1001", json={"properties": {"firstname": "x"}},
                       headers={"Authorization": f"Bearer {hs.GOOD_TOKEN}"})
    assert emu.violations.errors and "properties were written" in emu.violations.errors[0]
    emu.violations.errors.clear()


# --- rate limits and outages -----------------------------------------------------------------
RATE_BODY = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT",
             "correlationId": "0b1c", "policyName": "TEN_SECONDLY_ROLLING"}


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429_with_and_without_retry_after(small, client, retry_after):
    """Retry-After wins when HubSpot sends it; without it, a rolling-window 429 waits out the interval the
    X-HubSpot-RateLimit-Interval-Milliseconds header names (scaled down to 0.2 s here)."""
    emu, server = small
    headers = {"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "200"}
    emu.faults.add(Fault(status=429, retry_after=retry_after, headers=headers, body=RATE_BODY), times=2)
    started = time.monotonic()
    await make(emu, server, client).check_credentials()
    elapsed = time.monotonic() - started
    assert emu.faults.injected == 2
    assert elapsed >= 0.4 if retry_after is None else elapsed < 0.4


async def test_daily_limit_429_is_final_and_says_so(small, client):
    """HubSpot's DAILY policy will not lift within a call: one request, no retries, one sentence saying when."""
    emu, server = small
    body = {**RATE_BODY, "message": "You have reached your daily limit.", "policyName": "DAILY"}
    emu.faults.add(Fault(status=429, body=body), times=5)
    with pytest.raises(RateLimited) as caught:
        await make(emu, server, client).check_credentials()
    assert emu.faults.injected == 1 and "daily" in str(caught.value) and one_sentence(str(caught.value))
    emu.faults.queue.clear()


async def test_rolling_window_429_is_waited_out_and_persistent_429_is_rate_limited(client):
    """HubSpot's own 429 (no Retry-After) is retried with backoff until the window frees; forever-429 gives RateLimited."""
    emu = hs.build(members=450, enforce_rate_limit=True, rate_limit=3, rate_interval_ms=300)
    with serve(emu.app) as server:
        connector = make(emu, server, client, backoff=0.2, retries=5)
        assert len([c async for c in connector.members(emu.list_id)]) == 450
        assert emu.counters["429"] >= 1
        emu.faults.add(Fault(status=429, body=RATE_BODY), times=10)
        with pytest.raises(RateLimited):
            await make(emu, server, client).check_credentials()
    emu.violations.assert_clean()


async def test_client_side_limit_keeps_under_the_rolling_window(client):
    """Scaled-down copy of our default (9/s, burst 10 per HubSpot's 100/10 s): a limit of 8/s burst 2 never trips 10/s."""
    emu = hs.build(members=5, enforce_rate_limit=True, rate_limit=10, rate_interval_ms=1000)
    with serve(emu.app) as server:
        connector = make(emu, server, client, rate_limit=RateLimit(requests=8, per_seconds=1.0, burst=2))
        for _ in range(14):
            await connector.check_credentials()
    assert emu.counters["429"] == 0 and emu.counters["requests"] == 14


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    connector = make(emu, server, client)
    emu.faults.add(Fault(status=502), times=2)
    await connector.check_credentials()
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable):
        await connector.check_credentials()


# --- OAuth -----------------------------------------------------------------------------------
def oauth_creds(emu, *, expires_in: float) -> dict[str, str]:
    access, refresh = emu.state.issue_oauth()
    return {"access_token": access, "refresh_token": refresh, "expires_at": str(int(time.time() + expires_in))}


async def test_oauth_token_is_refreshed_shortly_before_expiry_and_persisted(small, client):
    """A token two minutes from expiry is renewed first; the caller's callback gets the new tokens to store."""
    emu, server = small
    saved: list[dict] = []

    async def persist(credentials: dict) -> None:
        saved.append(credentials)

    creds = oauth_creds(emu, expires_in=120)
    connector = make(emu, server, client, creds, on_credentials_change=persist)
    await connector.check_credentials()
    assert emu.counters["token_refreshes"] == 1 and len(saved) == 1
    assert saved[0]["access_token"] != creds["access_token"] and saved[0]["refresh_token"] == creds["refresh_token"]
    assert float(saved[0]["expires_at"]) > time.time() + 1700
    await connector.check_credentials()
    assert emu.counters["token_refreshes"] == 1  # fresh now: no second refresh


async def test_concurrent_requests_share_one_refresh(small, client):
    """Ten requests on an expired token, and two instances of one connection, cause exactly one refresh."""
    emu, server = small
    emu.state.refresh_delay = 0.2
    creds = oauth_creds(emu, expires_in=-10)
    first = make(emu, server, client, creds)
    second = make(emu, server, client, dict(creds))
    await asyncio.gather(*(first.check_credentials() for _ in range(10)), *(second.check_credentials() for _ in range(5)))
    assert emu.counters["token_refreshes"] == 1
    assert first.credentials["access_token"] == second.credentials["access_token"] != creds["access_token"]


async def test_expired_token_401_triggers_one_refresh_and_retry(small, client):
    """If HubSpot says EXPIRED_AUTHENTICATION while our clock thought it fresh, we refresh once and retry."""
    emu, server = small
    creds = oauth_creds(emu, expires_in=1500)
    emu.state.expire(creds["access_token"])
    connector = make(emu, server, client, creds)
    await asyncio.gather(*(connector.check_credentials() for _ in range(5)))
    assert emu.counters["token_refreshes"] == 1


async def test_revoked_refresh_token_says_reconnect(small, client):
    """A refused refresh (HubSpot 400 BAD_REFRESH_TOKEN) is one sentence telling the user to reconnect, no secrets."""
    emu, server = small
    creds = oauth_creds(emu, expires_in=-10)
    emu.state.refresh.pop(creds["refresh_token"])
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    message = str(info.value)
    assert "reconnect HubSpot" in message and one_sentence(message)
    assert creds["refresh_token"] not in message and hs.CLIENT_SECRET not in message


async def test_waiters_behind_a_failed_refresh_do_not_retry_it(small, client):
    """Eight requests queued behind one refused refresh all get its answer; HubSpot's token endpoint is asked once."""
    emu, server = small
    creds = oauth_creds(emu, expires_in=-10)
    emu.state.refresh.pop(creds["refresh_token"])
    connector = make(emu, server, client, creds)
    results = await asyncio.gather(*(connector.check_credentials() for _ in range(8)), return_exceptions=True)
    assert all(isinstance(r, InvalidCredentials) for r in results) and emu.counters["token_requests"] == 1


async def test_token_endpoint_outage_is_try_again_not_reconnect(small, client):
    emu, server = small
    emu.faults.add(Fault(status=503, path_prefix="/oauth/v1/token"))
    with pytest.raises(PlatformUnavailable, match="try again"):
        await make(emu, server, client, oauth_creds(emu, expires_in=-10)).check_credentials()


async def test_expired_oauth_without_refresh_token_says_reconnect(small, client):
    emu, server = small
    creds = oauth_creds(emu, expires_in=1500)
    emu.state.expire(creds["access_token"])
    with pytest.raises(InvalidCredentials, match="reconnect HubSpot"):
        await make(emu, server, client, {"access_token": creds["access_token"]}).check_credentials()
    assert emu.counters["token_refreshes"] == 0


def test_token_response_expires_in_becomes_expires_at():
    connector = HubSpot({"access_token": "CNT-abc", "refresh_token": "na1-r", "expires_in": "1800"})
    assert abs(float(connector.credentials["expires_at"]) - (time.time() + 1800)) < 5


# --- webhooks --------------------------------------------------------------------------------
URL = "https://lw.example.com/webhooks/hubspot/conn%3A42?token=a%2Cb"


def delivery(body: bytes | list, *, url: str = URL, secret: str = hs.CLIENT_SECRET, age: timedelta = timedelta(0),
             drop: tuple[str, ...] = (), signed_for: str | None = None) -> WebhookRequest:
    """A delivery as our receiver sees it; `signed_for` is the URL HubSpot signed, if not the one it reached."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    now = datetime.now(timezone.utc)
    headers = hs.webhook_headers(signed_for or url, raw, secret=secret, timestamp_ms=int((now - age).timestamp() * 1000))
    headers = {k: v for k, v in headers.items() if k not in drop}
    return WebhookRequest("POST", url, headers, {"token": "a,b"}, raw, now)


SECRETS = WebhookSecrets(signing_secret=hs.CLIENT_SECRET)


async def test_genuine_delivery_is_parsed_and_hydrated(small, client):
    """A signed contact.creation array (no email) yields ids; resolve_contact fetches each email."""
    emu, server = small
    cid = int(emu.add_member(emu.list_id, "new.signup@example.org"))
    connector = make(emu, server, client)
    request = delivery(hs.creation_events([cid, 1003]) + [{**hs.creation_events([1004])[0], "subscriptionType": "contact.propertyChange"}])
    connector.authenticate_webhook(request, SECRETS)
    events = connector.parse_webhook(request)
    assert [e.contact_id for e in events] == [str(cid), "1003"] and all(e.email is None for e in events)
    assert len({e.event_id for e in events}) == 2
    resolved = await connector.resolve_contact(events[0].contact_id)
    assert resolved is not None and resolved.email == "new.signup@example.org"
    assert await connector.resolve_contact("999999") is None
    assert await connector.resolve_contact(str(emu.state.no_email_contact)) is None


def test_generic_object_creation_and_large_batches_are_read():
    """New-platform apps send object.creation with objectTypeId 0-1; 1,000 events parse in full."""
    connector = HubSpot({"api_key": hs.GOOD_TOKEN})
    generic = hs.creation_events([1001], kind="object.creation")
    company = [{**generic[0], "objectTypeId": "0-2", "objectId": 5}]
    assert [e.contact_id for e in connector.parse_webhook(delivery(generic + company))] == ["1001"]
    big = delivery(hs.creation_events(list(range(2000, 3000))))
    connector.authenticate_webhook(big, SECRETS)
    assert len(connector.parse_webhook(big)) == 1000


def test_signature_matches_hubspot_uri_decoding():
    """HubSpot signs the URI with %3A, %2C … decoded (its documented table); other escapes stay as sent."""
    assert signing_uri("https://x.test/a%3Ab?q=%2C%2c%20%26") == "https://x.test/a:b?q=,,%20%26"
    connector = HubSpot({"api_key": hs.GOOD_TOKEN})
    connector.authenticate_webhook(delivery([]), SECRETS)


@pytest.mark.parametrize(
    "request_kw,match",
    [
        ({"secret": "another-apps-secret"}, "does not match"),
        ({"signed_for": "https://evil.example.com/webhooks/hubspot/conn%3A42?token=a%2Cb"}, "does not match"),
        ({"signed_for": URL.replace("conn", "other")}, "does not match"),  # signed for another connection
        ({"age": timedelta(minutes=6)}, "replay window"),
        ({"age": timedelta(minutes=-6)}, "replay window"),
        ({"drop": ("x-hubspot-signature-v3",)}, "no v3 signature"),  # a v1-only delivery cannot be dated
        ({"drop": ("x-hubspot-request-timestamp",)}, "no v3 signature"),
    ],
)
def test_forged_stale_or_unsigned_deliveries_are_refused(request_kw, match):
    connector = HubSpot({"api_key": hs.GOOD_TOKEN})
    with pytest.raises(WebhookRejected, match=match):
        connector.authenticate_webhook(delivery(hs.creation_events([1001]), **request_kw), SECRETS)


def test_tampered_body_and_missing_secret_are_refused():
    connector = HubSpot({"api_key": hs.GOOD_TOKEN})
    genuine = delivery(hs.creation_events([1001]))
    tampered = WebhookRequest(genuine.method, genuine.url, genuine.headers, genuine.query,
                              genuine.body.replace(b"1001", b"1002"), genuine.received_at)
    with pytest.raises(WebhookRejected):
        connector.authenticate_webhook(tampered, SECRETS)
    with pytest.raises(WebhookRejected, match="client secret"):
        connector.authenticate_webhook(genuine, WebhookSecrets())
    # The docs' v1 test vector checks our emulator signs v1 the way HubSpot does.
    body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":'
            b'"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')
    v1 = hs.webhook_headers("https://x.test/", body, secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")["x-hubspot-signature"]
    assert v1 == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert hashlib.sha256(b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy" + body).hexdigest() == v1


@pytest.mark.parametrize("body", [b"{not json", b'{"eventId": 1}', b"[1, 2]", b"\xff\xfe",
                                  json.dumps([{"subscriptionType": "contact.creation"}]).encode(),
                                  json.dumps([{"subscriptionType": "contact.creation", "objectId": True}]).encode()])
def test_malformed_bodies_are_webhook_malformed(body):
    with pytest.raises(WebhookMalformed):
        HubSpot({"api_key": hs.GOOD_TOKEN}).parse_webhook(delivery(body))


async def test_webhooks_cannot_be_registered_through_the_api(small, client):
    emu, server = small
    with pytest.raises(UnsupportedAction):
        await make(emu, server, client).register_webhook("https://lw.example.com/webhooks/hubspot/c1")
