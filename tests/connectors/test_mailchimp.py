"""Mailchimp connector against its emulator over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    RateLimited,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp
from core.connectors.mailchimp import Mailchimp, subscriber_hash
from tests.emulators import mailchimp as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.mailchimp import MAIN_LIST, OTHER_LIST, SAVED_SEGMENT, TAG_SEGMENT
from tests.emulators.server import serve

GOOD, READ_ONLY = emulator_module.GOOD_KEY, emulator_module.READ_ONLY_KEY


@pytest.fixture(scope="module")
def big():
    """One 10,500-member emulator shared by the read-only paging tests."""
    emu = emulator_module.build(members=10_500)
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
def small():
    emu = emulator_module.build(members=120)
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, *, retries: int = 3, **options) -> Mailchimp:
    connector = emu.connector(server.url, credentials=credentials, options=options)
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=retries)
    return connector


def oauth(server, client, token: str, **options) -> Mailchimp:
    connector = Mailchimp({"access_token": token}, base_url=server.url,
                          options={"metadata_url": f"{server.url}/oauth2/metadata", **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


def test_registered_with_schema_and_capabilities():
    """The registry finds Mailchimp by slug; the form says where the key is, that it is secret, and OAuth is offered."""
    cls = get_platform("mailchimp")
    assert cls is Mailchimp and cls.auth == "api_key_or_oauth"
    [key] = cls.credential_fields
    assert key.secret and "Extras > API keys" in key.help and "-us21" in key.help
    assert set(cls.capabilities.list_kinds) == {"audience", "segment", "tag"}
    assert cls.capabilities.webhooks == "token" and cls.capabilities.webhook_registration and cls.capabilities.can_delete
    assert "Webhooks" in cls.webhook_steps


# --- credentials ---------------------------------------------------------------------------
async def test_good_key_gives_account_and_write_role(small, client):
    """GET / answers with the account; an owner's key can write; the request used HTTP Basic on /3.0."""
    emu, server = small
    info = await make(emu, server, client).check_credentials()
    assert info.account_id and info.name == "Acme Hats" and info.can_write is True
    emu.violations.assert_clean()


async def test_bad_key_is_one_clear_sentence_without_the_key(small, client):
    """Mailchimp's 401 "API Key Invalid" becomes InvalidCredentials; the key never shows."""
    emu, server = small
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    message = str(info.value)
    assert creds["api_key"] not in message and creds["api_key"][:32] not in message and "\n" not in message


async def test_wrong_data_centre_suffix_is_named(small, client):
    """The right secret with the wrong -usXX gets the same 401; the sentence points at the suffix."""
    emu, server = small
    with pytest.raises(InvalidCredentials, match=r"-us6 ending .* data centre") as info:
        await make(emu, server, client, {"api_key": emulator_module.WRONG_DC_KEY}).check_credentials()
    assert emulator_module.WRONG_DC_KEY[:32] not in str(info.value)


async def test_read_only_key_reads_but_cannot_write(small, client):
    """A viewer's key reads (Verify Only works) but every write is InsufficientScope; nothing changes."""
    emu, server = small
    mc = make(emu, server, client, emu.read_only_credentials(server.url))
    assert (await mc.check_credentials()).can_write is False
    first = [c async for c in mc.members(emu.list_id)][:2]
    with pytest.raises(InsufficientScope, match="cannot write"):
        await mc.unsubscribe(first[:1])  # one contact: PATCH
    with pytest.raises(InsufficientScope, match="cannot write"):
        await mc.unsubscribe(first)  # several: the batch endpoint
    with pytest.raises(InsufficientScope):
        await mc.delete(first)
    with pytest.raises(InsufficientScope):
        await mc.register_webhook("https://lw.example.com/webhooks/mailchimp/c1?token=t", list_id=emu.list_id)
    assert not any(emu.is_unsubscribed(c.email) or emu.is_deleted(c.email) for c in first)


@pytest.mark.parametrize(
    "creds",
    [
        {},
        {"api_key": "   "},
        {"api_key": "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20"},  # no -dc suffix at all
        {"api_key": "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20-"},
        {"api_key": "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20-usa"},
        {"api_key": "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20-us21.api.mailchimp.com"},
        {"api_key": "-us21"},
        {"api_key": "my secret key!-us21"},
    ],
)
def test_new_user_key_mistakes_are_one_sentence_naming_the_field(creds):
    """A missing key, a missing or bad -dc suffix, or a mangled key: InvalidConfiguration on api_key, no secret echoed."""
    with pytest.raises(InvalidConfiguration) as info:
        Mailchimp(creds)
    message = str(info.value)
    assert info.value.field == "api_key" and message.startswith("API key") and "\n" not in message
    assert "3f9a1c0e" not in message and "my secret" not in message


def test_data_centre_decides_the_host_and_user_input_cannot():
    """The key's suffix picks https://<dc>.api.mailchimp.com/3.0; a base_url in credentials is ignored."""
    mc = Mailchimp({"api_key": "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20-US6", "base_url": "http://127.0.0.1:1"})
    assert mc.base_url == "https://us6.api.mailchimp.com/3.0" and mc.data_centre == "us6"
    assert "3f9a1c0e" not in repr(mc)
    assert Mailchimp({"api_key": GOOD}, base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9/3.0"


# --- OAuth -----------------------------------------------------------------------------------
async def test_oauth_token_finds_its_data_centre_once_and_uses_bearer(small, client):
    """The metadata call (Authorization: OAuth) gives the dc; API calls then use Bearer; later connectors reuse the dc."""
    emu, server = small
    mc = oauth(server, client, emulator_module.OAUTH_TOKEN)
    info = await mc.check_credentials()
    assert info.can_write is True and mc.data_centre == "us21" and emu.counters["metadata"] == 1
    again = oauth(server, client, emulator_module.OAUTH_TOKEN)
    assert len([c async for c in again.members(emu.list_id)]) == 120
    assert emu.counters["metadata"] == 1
    emu.violations.assert_clean()


async def test_oauth_without_override_builds_the_data_centre_host(small, client):
    """With no base_url override the host comes from the metadata's dc, for the caller to store."""
    emu, server = small
    saved: list[dict] = []

    async def persist(credentials: dict) -> None:
        saved.append(credentials)

    mc = Mailchimp({"access_token": emulator_module.VIEWER_OAUTH_TOKEN},
                   options={"metadata_url": f"{server.url}/oauth2/metadata", "on_credentials_change": persist})
    mc.http = PlatformHttp(mc, client=client, backoff_base=0.01, max_retries=1)
    assert await mc.resolve_data_centre() == "us21"
    assert mc.base_url == "https://us21.api.mailchimp.com/3.0"
    assert saved == [{"access_token": emulator_module.VIEWER_OAUTH_TOKEN, "dc": "us21"}]  # handed back to store
    stored = Mailchimp(saved[0])  # `dc` is one of Mailchimp's stored_keys, so it survives validation
    assert stored.credentials["dc"] == "us21" and stored.base_url == "https://us21.api.mailchimp.com/3.0"


async def test_revoked_oauth_token_and_viewer_token(small, client):
    """A token Mailchimp refuses is one sentence asking to sign in again; a viewer's token cannot write."""
    emu, server = small
    with pytest.raises(InvalidCredentials, match="sign in with Mailchimp again") as info:
        await oauth(server, client, "f" * 32).check_credentials()
    assert "f" * 32 not in str(info.value)
    viewer = oauth(server, client, emulator_module.VIEWER_OAUTH_TOKEN)
    contact = [c async for c in viewer.members(emu.list_id)][0]
    with pytest.raises(InsufficientScope, match="cannot write"):
        await viewer.unsubscribe([contact])
    with pytest.raises(InvalidConfiguration) as bad:
        Mailchimp({"access_token": "has a space"})
    assert bad.value.field == "access_token"


# --- lists and members ----------------------------------------------------------------------
async def test_audiences_segments_and_tags_with_counts(big, client):
    """Audiences count subscribed members; segments and tags come with their counts and ids that carry the audience."""
    emu, server = big
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert found[MAIN_LIST].kind == "audience" and found[MAIN_LIST].subscriber_count == 10_500
    assert found[OTHER_LIST].kind == "audience" and found[OTHER_LIST].subscriber_count == 0
    saved, tag = found[f"{MAIN_LIST}:segment:{SAVED_SEGMENT}"], found[f"{MAIN_LIST}:segment:{TAG_SEGMENT}"]
    assert (saved.kind, saved.subscriber_count) == ("segment", 1050)
    assert (tag.kind, tag.subscriber_count) == ("tag", 105)
    assert len(found) == 4
    emu.violations.assert_clean()


async def test_pages_through_ten_thousand_members_once_each_page_by_page(big, client):
    """10,500 members arrive once each, ids are MD5 of the email, in 11 requests of count=1000."""
    emu, server = big
    pages_before, counts_before = emu.counters["member_pages"], len(emu.state.page_counts)
    contacts = [c async for c in make(emu, server, client).members(emu.list_id)]
    emails = [c.email for c in contacts]
    assert len(emails) == 10_500 == len(set(emails))
    assert emails[0] == "member0@example.com" and emails[-1] == "member10499@example.com"
    assert all(c.id == subscriber_hash(c.email) and c.list_id == MAIN_LIST for c in contacts[:50])
    assert emu.counters["member_pages"] - pages_before == 11
    assert set(emu.state.page_counts[counts_before:]) == {1000}
    emu.violations.assert_clean()


async def test_segment_members_stream_with_the_audience_as_list(big, client):
    """A segment's members stream from the segment endpoint; each contact names the audience for later writes."""
    emu, server = big
    contacts = [c async for c in make(emu, server, client).members(f"{MAIN_LIST}:segment:{SAVED_SEGMENT}")]
    assert len(contacts) == 1050 and {c.list_id for c in contacts} == {MAIN_LIST}
    assert contacts[1].email == "member10@example.com"


@pytest.mark.parametrize("list_id", ["ffffffffff", f"{MAIN_LIST}:segment:999", f"{MAIN_LIST}:segment:x", "", "a/../b"])
async def test_unknown_audience_or_segment_is_list_not_found(small, client, list_id):
    emu, server = small
    with pytest.raises(ListNotFound):
        [c async for c in make(emu, server, client).members(list_id)]


# --- unsubscribe / resubscribe ------------------------------------------------------------------
async def test_unsubscribe_is_batched_visible_idempotent_and_undoable(small, client):
    """30 contacts go in one batch call; later reads and counts show it; repeating is no error; resubscribe undoes it."""
    emu, server = small
    mc = make(emu, server, client)
    targets = [c async for c in mc.members(emu.list_id)][:30]
    outcome = await mc.unsubscribe(targets)
    assert sorted(outcome.done) == sorted(c.id for c in targets) and not outcome.failed
    assert emu.counters["batch_requests"] == 1 and emu.counters["unsubscribed"] == 30
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    again = await mc.unsubscribe(targets)
    assert len(again.done) == 30 and not again.failed
    remaining = [c.email async for c in mc.members(emu.list_id)]
    assert len(remaining) == 90 and targets[0].email not in remaining
    assert {pl.id: pl.subscriber_count for pl in await mc.lists()}[MAIN_LIST] == 90
    undone = await mc.resubscribe(targets[:5])
    assert len(undone.done) == 5 and not any(emu.is_unsubscribed(c.email) for c in targets[:5])
    emu.violations.assert_clean()


async def test_big_unsubscribe_is_split_into_batches_of_500(client):
    """1,200 contacts: three batch calls of at most 500."""
    emu = emulator_module.build(members=1_300)
    with serve(emu.app) as server:
        mc = make(emu, server, client)
        targets = [c async for c in mc.members(emu.list_id)][:1200]
        assert len((await mc.unsubscribe(targets)).done) == 1200
        assert emu.counters["batch_requests"] == 3
        assert len([c async for c in mc.members(emu.list_id)]) == 100
        emu.violations.assert_clean()


async def test_unsubscribing_while_streaming_skips_no_one(client):
    """A job that unsubscribes a third of each page as it reads still sees every member exactly once."""
    emu = emulator_module.build(members=2_500)
    with serve(emu.app) as server:
        mc = make(emu, server, client)
        seen, pending = [], []
        async for contact in mc.members(emu.list_id):
            seen.append(contact.email)
            if len(seen) % 3 == 0:
                pending.append(contact)
            if len(seen) % 1000 == 0:
                await mc.unsubscribe(pending)
                pending = []
        assert len(seen) == 2_500 == len(set(seen))


async def test_single_contact_uses_patch_and_a_missing_member_counts_as_done(small, client):
    """One contact is a PATCH of `status` only; a member no longer there is already unsubscribed."""
    emu, server = small
    mc = make(emu, server, client)
    target = [c async for c in mc.members(emu.list_id)][7]
    assert (await mc.unsubscribe([target])).done == [target.id]
    assert emu.is_unsubscribed(target.email) and emu.counters["batch_requests"] == 0
    ghost = Contact(id=subscriber_hash("nobody@example.com"), email="nobody@example.com", list_id=MAIN_LIST)
    assert (await mc.unsubscribe([ghost])).done == [ghost.id]
    assert (await mc.resubscribe([ghost])).failed
    emu.violations.assert_clean()


async def test_contact_without_audience_fails_only_that_contact(small, client):
    """No audience, or one that is not an id (it would go into the URL path): that contact fails, the rest go through."""
    emu, server = small
    mc = make(emu, server, client)
    good = [c async for c in mc.members(emu.list_id)][0]
    stray = Contact(id=subscriber_hash("member1@example.com"), email="member1@example.com")
    sneaky = Contact(id=subscriber_hash("member2@example.com"), email="member2@example.com", list_id="../../ping?x=")
    outcome = await mc.unsubscribe([good, stray, sneaky])
    assert outcome.done == [good.id] and "audience" in outcome.failed[stray.id] and sneaky.id in outcome.failed
    assert not emu.is_unsubscribed("member1@example.com") and not emu.is_unsubscribed("member2@example.com")


async def test_the_same_address_twice_is_sent_once(small, client):
    """Duplicates (even in other letter case) go out once per batch, and every copy is reported done."""
    emu, server = small
    mc = make(emu, server, client)
    a, b = [c async for c in mc.members(emu.list_id)][:2]
    shout = Contact(id=a.id, email=a.email.upper(), list_id=a.list_id)
    outcome = await mc.unsubscribe([a, shout, b])
    assert outcome.done.count(a.id) == 2 and b.id in outcome.done and emu.is_unsubscribed(a.email)
    emu.violations.assert_clean()


async def test_resubscribe_refused_for_a_self_unsubscribed_address(small, client):
    """Mailchimp keeps people who unsubscribed themselves in "compliance state"; undo says so clearly."""
    emu, server = small
    mc = make(emu, server, client)
    a, b = [c async for c in mc.members(emu.list_id)][:2]
    for contact in (a, b):
        emu.state.change(emu.state.position(contact.email), status="unsubscribed", self_unsubscribed=True)
    single = await mc.resubscribe([a])
    assert "only the person can re-subscribe" in single.failed[a.id]
    both = await mc.resubscribe([a, b])
    assert set(both.failed) == {a.id, b.id} and emu.is_unsubscribed(a.email)


# --- delete ------------------------------------------------------------------------------------
async def test_delete_archives_or_deletes_permanently_and_repeat_is_success(small, client):
    """Archive by default; permanent by choice; already gone (405 archived / 404) is done; undo of a permanent delete is refused."""
    emu, server = small
    mc = make(emu, server, client)
    a, b, c = [x async for x in mc.members(emu.list_id)][:3]
    assert (await mc.delete([a])).done == [a.id] and emu.is_deleted(a.email)
    assert (await mc.delete([a])).done == [a.id]  # 405: already archived
    assert (await mc.delete([b, c], permanent=True)).done == [b.id, c.id] and emu.is_deleted(b.email)
    assert (await mc.delete([b], permanent=True)).done == [b.id]  # 404: already gone
    assert emu.counters["deleted"] == 3 and emu.counters["deleted_permanently"] == 2
    assert len([x async for x in mc.members(emu.list_id)]) == 117
    refused = await mc.resubscribe([b, c])
    assert set(refused.failed) == {b.id, c.id} and "permanently deleted" in refused.failed[b.id]
    assert (await mc.unsubscribe([b, c])).done == [b.id, c.id]  # a forgotten address gets no email anyway
    emu.violations.assert_clean()


async def test_delete_of_a_pending_contact_is_reported_not_hidden(small, client):
    emu, server = small
    mc = make(emu, server, client)
    target = [x async for x in mc.members(emu.list_id)][4]
    emu.state.change(emu.state.position(target.email), status="pending")
    outcome = await mc.delete([target])
    assert "pending or bounced" in outcome.failed[target.id]


# --- rate limits and outages ------------------------------------------------------------------------
PROBLEM_429 = {"type": emulator_module.ERROR_TYPE, "title": "Too Many Requests", "status": 429,
               "detail": "You have exceeded the limit of 10 simultaneous connections.", "instance": ""}


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429_with_and_without_retry_after(small, client, retry_after):
    """Mailchimp's 429 usually has no Retry-After; both forms are waited out and retried."""
    emu, server = small
    emu.faults.add(Fault(status=429, retry_after=retry_after, body=PROBLEM_429), times=2)
    assert (await make(emu, server, client).check_credentials()).can_write is True
    assert emu.faults.injected == 2


async def test_persistent_429_is_rate_limited(small, client):
    emu, server = small
    emu.faults.add(Fault(status=429, body=PROBLEM_429), times=10)
    with pytest.raises(RateLimited, match="rate limiting"):
        await make(emu, server, client).check_credentials()


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    mc = make(emu, server, client)
    emu.faults.add(Fault(status=503), times=2)
    assert (await mc.check_credentials()).account_id
    emu.faults.add(Fault(status=502), times=10)
    with pytest.raises(PlatformUnavailable, match="unavailable"):
        await mc.check_credentials()


async def test_ten_connection_limit_is_kept_client_side(small, client):
    """With slow replies, 25 calls at once never exceed 10 in flight; lifting our cap shows the emulator's 429."""
    emu, server = small
    emu.state.latency = 0.2  # long enough that the calls overlap even on a loaded machine
    mc = make(emu, server, client)
    await asyncio.gather(*(mc.check_credentials() for _ in range(25)))
    assert emu.counters["429"] == 0 and 1 < emu.counters["max_in_flight"] <= 10
    loose = make(emu, server, client, max_in_flight=25, retries=1)
    results = await asyncio.gather(*(loose.check_credentials() for _ in range(25)), return_exceptions=True)
    assert emu.counters["429"] > 0
    assert all(not isinstance(r, Exception) or isinstance(r, RateLimited) for r in results)


# --- webhooks ------------------------------------------------------------------------------------
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc)
SECRETS = WebhookSecrets(url_token="s3cret-token")
CONNECTOR = Mailchimp({"api_key": GOOD})


def delivery(body: bytes, token: str = "s3cret-token", at: datetime = NOW, method: str = "POST") -> WebhookRequest:
    return WebhookRequest(method=method, url=f"https://lw.test/webhooks/mailchimp/c1?token={token}",
                          headers={"content-type": "application/x-www-form-urlencoded"}, query={"token": token},
                          body=body, received_at=at)


SUBSCRIBE = emulator_module.subscribe_form("new.person@b.com", MAIN_LIST, fired_at=NOW - timedelta(seconds=3))


def test_webhook_subscribe_is_authenticated_and_parsed():
    """A genuine form-encoded subscribe: token matches, fired_at is fresh, the email and audience come out."""
    request = delivery(SUBSCRIBE)
    CONNECTOR.authenticate_webhook(request, SECRETS)
    [event] = CONNECTOR.parse_webhook(request)
    assert (event.email, event.list_id) == ("new.person@b.com", MAIN_LIST)
    assert event.contact_id == subscriber_hash("new.person@b.com") and event.event_id
    assert CONNECTOR.webhook_response(request)[0] == 200


def test_webhook_wrong_or_missing_token_and_stale_delivery_are_refused():
    with pytest.raises(WebhookRejected, match="token"):
        CONNECTOR.authenticate_webhook(delivery(SUBSCRIBE, token="guess"), SECRETS)
    with pytest.raises(WebhookRejected, match="token"):
        CONNECTOR.authenticate_webhook(delivery(SUBSCRIBE, token=""), SECRETS)
    with pytest.raises(WebhookRejected, match="token"):
        CONNECTOR.authenticate_webhook(delivery(SUBSCRIBE), WebhookSecrets())
    with pytest.raises(WebhookRejected, match="replay"):
        CONNECTOR.authenticate_webhook(delivery(SUBSCRIBE, at=NOW + timedelta(hours=3)), SECRETS)
    with pytest.raises(WebhookRejected, match="replay"):
        CONNECTOR.authenticate_webhook(delivery(SUBSCRIBE, at=NOW - timedelta(hours=3)), SECRETS)


def test_webhook_malformed_bodies_and_other_events():
    """Not form-encoded, no type, no email, no fired_at: WebhookMalformed; unsubscribe/profile events: nothing to do."""
    with pytest.raises(WebhookMalformed):
        CONNECTOR.parse_webhook(delivery(b"\xff\xfe{not a form"))
    with pytest.raises(WebhookMalformed):
        CONNECTOR.parse_webhook(delivery(b"data%5Bemail%5D=a%40b.com"))
    with pytest.raises(WebhookMalformed):
        CONNECTOR.parse_webhook(delivery(b"type=subscribe&data%5Bemail%5D="))
    with pytest.raises(WebhookMalformed):
        CONNECTOR.authenticate_webhook(delivery(b"type=subscribe&data%5Bemail%5D=a%40b.com"), SECRETS)
    with pytest.raises(WebhookMalformed):
        CONNECTOR.authenticate_webhook(delivery(b"type=subscribe&fired_at=yesterday"), SECRETS)
    assert CONNECTOR.parse_webhook(delivery(SUBSCRIBE.replace(b"type=subscribe", b"type=unsubscribe"))) == []
    assert CONNECTOR.parse_webhook(delivery(b"type=profile&data%5Bemail%5D=a%40b.com")) == []


def test_webhook_validation_get_needs_only_the_token():
    """Mailchimp's URL check is a bodiless GET: the token is checked, nothing is parsed, 200 goes back."""
    check = delivery(b"", method="GET")
    CONNECTOR.authenticate_webhook(check, SECRETS)
    assert CONNECTOR.parse_webhook(check) == [] and CONNECTOR.webhook_response(check)[0] == 200
    with pytest.raises(WebhookRejected):
        CONNECTOR.authenticate_webhook(delivery(b"", token="nope", method="GET"), SECRETS)


def receiver(connector: Mailchimp, received: list) -> Starlette:
    """A stand-in for Listwarden's webhook route: authenticate, parse, answer as the connector says."""

    async def hook(request: Request) -> Response:
        wr = WebhookRequest(request.method, str(request.url), {k.lower(): v for k, v in request.headers.items()},
                            dict(request.query_params), await request.body(), datetime.now(timezone.utc))
        try:
            connector.authenticate_webhook(wr, SECRETS)
        except WebhookRejected:
            return Response(status_code=401)
        received.extend(connector.parse_webhook(wr))
        status, body, content_type = connector.webhook_response(wr)
        return Response(body, status, media_type=content_type)

    return Starlette(routes=[Route("/hook", hook, methods=["GET", "POST"])])


async def test_webhook_registration_validated_by_get_delivers_and_unregisters(small, client):
    """Registering makes Mailchimp GET our URL (200 needed); an admin-added subscriber is then delivered and parsed."""
    emu, server = small
    mc = make(emu, server, client)
    received: list = []
    with serve(receiver(mc, received)) as hook_server:
        registration = await mc.register_webhook(f"{hook_server.url}/hook", list_id=emu.list_id, secret="s3cret-token")
        assert registration.secrets == SECRETS and registration.url == f"{hook_server.url}/hook?token=s3cret-token"
        assert emu.counters["webhook_validations"] == 1
        [hook_id] = registration.ids
        audience, _, wid = hook_id.partition(":")
        saved = emu.state.webhooks[wid]
        assert audience == MAIN_LIST and saved["events"]["subscribe"] and not saved["events"]["unsubscribe"]
        assert saved["sources"] == {"user": True, "admin": True, "api": False}
        emu.add_member(MAIN_LIST, "walk.in@b.com")
        [(target, body)] = emu.state.outbox
        answer = await client.post(target, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 200 and [e.email for e in received] == ["walk.in@b.com"]
        await mc.unregister_webhook(hook_id)
        assert not emu.state.webhooks
        await mc.unregister_webhook(hook_id)  # already gone is fine
    emu.violations.assert_clean()


async def test_webhook_registration_refused_when_the_url_fails_mailchimps_check(small, client):
    """A URL whose GET check is not 200 (here: a secret our receiver does not hold) is refused in one
    sentence, and no audience keeps a webhook."""
    emu, server = small
    mc = make(emu, server, client)
    with serve(receiver(mc, [])) as hook_server:
        with pytest.raises(ConnectorError, match="check GET"):
            await mc.register_webhook(f"{hook_server.url}/hook", secret="wrong")
        assert not emu.state.webhooks  # all audiences or none


async def test_webhook_on_every_audience_when_none_is_named(small, client):
    """One webhook per audience, all carrying the same token (a new one, as no secret was given); one id each."""
    emu, server = small
    mc = make(emu, server, client)
    registration = await mc.register_webhook("https://lw.example.com/webhooks/mailchimp/c1")
    assert sorted(part.split(":")[0] for part in registration.ids) == sorted([MAIN_LIST, OTHER_LIST])
    assert {h["list_id"] for h in emu.state.webhooks.values()} == {MAIN_LIST, OTHER_LIST}
    token = registration.secrets.url_token
    assert token and len(token) >= 32
    assert all(urlsplit(h["url"]).query == f"token={token}" for h in emu.state.webhooks.values())
    for hook_id in registration.ids:
        await mc.unregister_webhook(hook_id)
    assert not emu.state.webhooks
