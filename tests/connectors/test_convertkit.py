"""Kit (ConvertKit) connector against its emulator over real HTTP on loopback, v4 and v3."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.convertkit import ConvertKit
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
from tests.emulators import convertkit as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": RateLimit(requests=10_000, per_seconds=1.0)}
BIG = 10_500


@pytest.fixture(scope="module")
def big():
    """One 10,500-subscriber emulator shared by the read-only tests."""
    emu = emulator_module.build(members=BIG)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
def small():
    emu = emulator_module.build(members=120)
    with serve(emu.app) as server:
        yield emu, server
    emu.violations.assert_clean()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, *, retries: int = 3, **options) -> ConvertKit:
    connector = emu.connector(server.url, credentials=credentials, options={**FAST, **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=retries)
    return connector


def v3(emu, server, client, **options) -> ConvertKit:
    return make(emu, server, client, emulator_module.v3_credentials(server.url), **options)


def one_sentence(err: Exception, *secrets: str) -> None:
    text = str(err)
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text
    assert not any(s and s in text for s in secrets)


def test_registered_under_convertkit_and_kit_with_schema():
    """`convertkit` is the slug and `kit` resolves to it; the form says where both v4 and v3 keys live."""
    assert get_platform("convertkit") is ConvertKit and get_platform("kit") is ConvertKit
    fields = {f.name: f for f in ConvertKit.credential_fields}
    assert fields["api_key"].required and fields["api_key"].secret and "Settings > Developer" in fields["api_key"].help
    assert not fields["api_secret"].required and fields["api_secret"].secret and "v3" in fields["api_secret"].help
    caps = ConvertKit.capabilities
    assert not caps.can_delete and not caps.can_resubscribe and caps.can_unsubscribe
    assert set(caps.list_kinds) == {"tag", "form", "segment"} and caps.webhooks == "token" and caps.webhook_registration
    limit = ConvertKit.rate_limit
    assert limit.requests + (limit.burst or 0) <= 120 and limit.per_seconds == 60


def test_v4_and_v3_credentials_pick_host_and_auth():
    """A key alone is v4 (header, api.kit.com); key + secret is v3 (parameters, api.convertkit.com)."""
    k4 = ConvertKit({"api_key": emulator_module.GOOD_KEY})
    assert (k4.version, k4.base_url) == ("v4", "https://api.kit.com")
    assert k4.auth_headers()["X-Kit-Api-Key"] == emulator_module.GOOD_KEY
    k3 = ConvertKit({"api_key": emulator_module.V3_KEY, "api_secret": emulator_module.V3_SECRET})
    assert (k3.version, k3.base_url) == ("v3", "https://api.convertkit.com") and "X-Kit-Api-Key" not in k3.auth_headers()
    stray = ConvertKit({"api_key": emulator_module.GOOD_KEY, "api_secret": emulator_module.V3_SECRET})
    assert stray.version == "v4"  # a v4 key ignores a stray secret
    moved = ConvertKit({"api_key": emulator_module.GOOD_KEY, "base_url": "http://127.0.0.1:1"})
    assert moved.base_url == "https://api.kit.com" and emulator_module.GOOD_KEY not in repr(moved)


@pytest.mark.parametrize(
    ("creds", "field", "says"),
    [
        ({}, "api_key", "required"),
        ({"api_key": "kit_abc"}, "api_key", "cut short"),
        ({"api_key": "kit_" + "ab" * 8 + " " + "cd" * 8}, "api_key", "spaces"),
        ({"api_key": emulator_module.V3_KEY, "api_secret": "kit_" + "ab" * 16}, "api_secret", "v4 API key"),
        ({"api_key": emulator_module.V3_KEY, "api_secret": emulator_module.V3_KEY}, "api_secret", "same"),
        ({"api_key": emulator_module.V3_KEY, "api_secret": "short"}, "api_secret", "cut short"),
    ],
)
def test_new_user_mistakes_are_one_clear_sentence(creds, field, says):
    """Missing, truncated, swapped or duplicated keys: one sentence naming the field, never echoing a secret."""
    with pytest.raises(InvalidConfiguration) as caught:
        ConvertKit(creds)
    assert caught.value.field == field and says in str(caught.value)
    one_sentence(caught.value, creds.get("api_secret", "") if len(creds.get("api_secret", "")) > 8 else "")


async def test_good_and_bad_v4_key(small, client):
    """A good key reads the account; Kit's 401 becomes one sentence that also hints at v3 keys."""
    emu, server = small
    info = await make(emu, server, client).check_credentials()
    assert (info.account_id, info.name) == ("3001", "Acme")
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials, match="v3") as caught:
        await make(emu, server, client, creds).check_credentials()
    one_sentence(caught.value, creds["api_key"])


async def test_good_and_bad_v3_credentials(small, client):
    emu, server = small
    assert (await v3(emu, server, client).check_credentials()).name == "Acme"
    wrong = {"api_key": emulator_module.V3_KEY, "api_secret": "WrongSecret0000000000000000"}
    with pytest.raises(InvalidCredentials) as caught:
        await make(emu, server, client, wrong).check_credentials()
    one_sentence(caught.value, wrong["api_secret"])


async def test_read_only_key_reads_but_cannot_write(small, client):
    """The restricted key streams members; unsubscribing is InsufficientScope and changes nothing."""
    emu, server = small
    kit = make(emu, server, client, emu.read_only_credentials(server.url))
    first = [c async for c in kit.members(emu.list_id)][:1]
    with pytest.raises(InsufficientScope, match="cannot write") as caught:
        await kit.unsubscribe(first)
    one_sentence(caught.value, emulator_module.READ_ONLY_KEY)
    with pytest.raises(InsufficientScope):
        await kit.register_webhook("https://lw.example.com/webhooks/convertkit/c1?token=t0123456789")
    assert not emu.is_unsubscribed(first[0].email)


async def test_tags_forms_and_segments_with_counts(big, client):
    """Every kind is listed; tags and forms carry active counts, segments cannot be counted."""
    emu, server = big
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert set(found) == {"tag:1", "tag:2", "form:10", "segment:20"}
    assert (found["tag:1"].kind, found["tag:1"].subscriber_count) == ("tag", BIG)
    assert found["tag:2"].subscriber_count == 0
    assert (found["form:10"].kind, found["form:10"].subscriber_count) == ("form", BIG // 4)
    assert (found["segment:20"].kind, found["segment:20"].subscriber_count) == ("segment", None)


async def test_v4_cursor_pages_through_ten_thousand_page_by_page(big, client):
    """10,500 subscribers, each once, in cursor pages of at most 1,000, fetched as they are consumed."""
    emu, server = big
    kit = make(emu, server, client)
    before = emu.counters["member_pages"]
    stream = kit.members(emu.list_id)
    first = await stream.__anext__()
    assert emu.counters["member_pages"] - before == 1
    emails = [first.email] + [c.email async for c in stream]
    assert len(emails) == BIG == len(set(emails))
    assert emu.counters["member_pages"] - before == 11 and emu.counters["largest_page"] == 1000


async def test_v3_pages_through_form_subscriptions(big, client):
    """v3 pages by number (50 a page); every subscriber of the form once."""
    emu, server = big
    emails = [c.email async for c in v3(emu, server, client).members("form:10")]
    assert len(emails) == -(-BIG // 4) == len(set(emails)) and emails[0] == "member0@example.com"


async def test_segments_members_are_a_clear_refusal(small, client):
    emu, server = small
    with pytest.raises(UnsupportedAction, match="segment") as caught:
        [c async for c in make(emu, server, client).members("segment:20")]
    one_sentence(caught.value)


@pytest.mark.parametrize("list_id", ["tag:999", "form:999", "999", "tag:x", "sequence:1"])
async def test_unknown_list_is_list_not_found(small, client, list_id):
    emu, server = small
    for kit in (make(emu, server, client), v3(emu, server, client)):
        with pytest.raises(ListNotFound) as caught:
            [c async for c in kit.members(list_id)]
        one_sentence(caught.value)


async def test_unsubscribe_shows_on_later_reads_and_is_idempotent(small, client):
    """v4 unsubscribes cancel the subscriber; they drop out of members() and counts; repeating is no error."""
    emu, server = small
    kit = make(emu, server, client)
    targets = [c async for c in kit.members(emu.list_id)][:5]
    assert sorted((await kit.unsubscribe(targets)).done) == sorted(c.id for c in targets)
    assert len((await kit.unsubscribe(targets)).done) == 5
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    assert len([c async for c in kit.members(emu.list_id)]) == 115
    assert {pl.id: pl.subscriber_count for pl in await kit.lists()}["tag:1"] == 115


async def test_unsubscribe_by_email_only_and_unknown(small, client):
    """A contact known only by email is looked up first; an unknown one fails alone with a sentence."""
    emu, server = small
    kit = make(emu, server, client)
    outcome = await kit.unsubscribe([Contact(id="member7@example.com", email="member7@example.com"),
                                     Contact(id="nobody@b.com", email="nobody@b.com"), Contact(id="1", email="x@b.com")])
    assert outcome.done == ["member7@example.com"] and set(outcome.failed) == {"nobody@b.com", "1"}
    assert emu.is_unsubscribed("member7@example.com")


async def test_v3_unsubscribe(small, client):
    emu, server = small
    kit = v3(emu, server, client)
    targets = [c async for c in kit.members(emu.list_id)][:3]
    assert len((await kit.unsubscribe(targets + [Contact(id="9", email="nobody@b.com")])).done) == 3
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    assert len([c async for c in kit.members(emu.list_id)]) == 117


async def test_delete_and_resubscribe_are_clear_refusals(small, client):
    """Kit has no delete: the sentence says to use Unsubscribe; resubscribing would email, so it is refused too."""
    emu, server = small
    kit = make(emu, server, client)
    target = [c async for c in kit.members(emu.list_id)][:1]
    with pytest.raises(UnsupportedAction, match="use Unsubscribe") as caught:
        await kit.delete(target)
    one_sentence(caught.value)
    with pytest.raises(UnsupportedAction, match="resubscribe") as caught:
        await kit.resubscribe(target)
    one_sentence(caught.value)
    assert not emu.is_deleted(target[0].email) and emu.counters["unsubscribed"] == 0


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429_with_and_without_retry_after(small, client, retry_after):
    emu, server = small
    emu.faults.add(Fault(status=429, retry_after=retry_after), times=2)
    await make(emu, server, client).check_credentials()
    assert emu.faults.injected == 2


async def test_kit_plain_text_429_past_retries_is_clear(small, client):
    """Kit's own limit answers `Retry later` with no Retry-After; once retries run out, one sentence."""
    emu, server = small
    emu.state.limit, emu.state.window = 2, 30.0
    kit = make(emu, server, client, retries=2)
    await kit.check_credentials()
    await kit.check_credentials()
    with pytest.raises(RateLimited) as caught:
        await kit.check_credentials()
    one_sentence(caught.value)
    assert emu.counters["429"] == 3


async def test_client_side_limit_keeps_inside_a_rolling_window(small, client):
    """With the limit scaled down (3 per rolling second), our token bucket never trips Kit's 429."""
    emu, server = small
    emu.state.limit, emu.state.window = 3, 1.0
    kit = make(emu, server, client, rate_limit=RateLimit(requests=2, per_seconds=1.0, burst=1))
    for _ in range(5):
        await kit.check_credentials()
    assert emu.counters["429"] == 0


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    kit = make(emu, server, client)
    emu.faults.add(Fault(status=500), times=2)
    assert len(await kit.lists()) == 4
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable) as caught:
        await kit.check_credentials()
    one_sentence(caught.value)


async def test_emulator_flags_writes_beyond_subscription_state():
    emu = emulator_module.build(members=5)
    with serve(emu.app) as server:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            await raw.put("/v3/unsubscribe", json={"api_secret": emulator_module.V3_SECRET, "email": "member1@example.com",
                                                   "first_name": "x"})
    assert any("first_name" in e for e in emu.violations.errors)


# --- webhooks ------------------------------------------------------------------------
def request_of(query: dict, body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "https://lw.test/webhooks/convertkit/c1", {"content-type": "application/json"}, query, body,
                          datetime.now(timezone.utc))


async def test_webhook_registration_and_genuine_delivery(small, client):
    """subscriber_activate is registered with our token in the URL; Kit's delivery to it is accepted and parsed."""
    emu, server = small
    kit = make(emu, server, client)
    registration = await kit.register_webhook("https://lw.example.com/webhooks/convertkit/c1?token=tok-0123456789abcdef")
    [hook_id] = registration.ids
    hook = emu.state.webhooks[int(hook_id)]
    assert hook["event"]["name"] == "subscriber.subscriber_activate" and "token=tok-0123456789abcdef" in hook["target_url"]
    assert registration.secrets == WebhookSecrets(url_token="tok-0123456789abcdef") and registration.url == hook["target_url"]
    query, body = emulator_module.delivery(emu.state, "member3@example.com")
    request = request_of(query, body)
    kit.authenticate_webhook(request, registration.secrets)
    [event] = kit.parse_webhook(request)
    assert (event.email, event.contact_id, event.event_id) == ("member3@example.com", str(emulator_module.BASE_ID + 3),
                                                               f"subscriber:{emulator_module.BASE_ID + 3}")
    await kit.unregister_webhook(hook_id)
    await kit.unregister_webhook(hook_id)
    assert not emu.state.webhooks


async def test_webhook_token_added_when_missing_and_per_list_events(small, client):
    """Without a token in the URL ours is added (the connection's secret, else new); a tag or form connection gets its own event."""
    emu, server = small
    kit = make(emu, server, client)
    [tag_hook] = (await kit.register_webhook("https://lw.example.com/webhooks/convertkit/c1", list_id="tag:1",
                                             secret="from-connection-0123456789")).ids
    assert emu.state.webhooks[int(tag_hook)]["event"] == {"name": "subscriber.tag_add", "tag_id": 1, "initiator_value": None}
    assert emu.state.webhooks[int(tag_hook)]["target_url"].endswith("?token=from-connection-0123456789")
    form = await kit.register_webhook("https://lw.example.com/webhooks/convertkit/c2", list_id="form:10")
    assert emu.state.webhooks[int(form.ids[0])]["event"]["name"] == "subscriber.form_subscribe"
    assert form.secrets.url_token and len(form.secrets.url_token) >= 32


async def test_v3_webhook_registration(small, client):
    emu, server = small
    kit = v3(emu, server, client)
    [hook_id] = (await kit.register_webhook("https://lw.example.com/webhooks/convertkit/c1?token=tok-v3-0123456789")).ids
    assert emu.state.webhooks[int(hook_id)]["event"]["name"] == "subscriber.subscriber_activate"
    await kit.unregister_webhook(hook_id)
    assert not emu.state.webhooks


TOKEN = "kit-hook-token-0123456789abcdef"
ACTIVATED = {"subscriber": {"id": 1, "first_name": "John", "email_address": "John@example.com", "state": "active",
                            "created_at": "2018-02-15T19:40:24.913Z", "fields": {"My Custom Field": "Value"}}}


def test_webhook_bad_or_missing_token_refused():
    kit = ConvertKit({"api_key": emulator_module.GOOD_KEY})
    body = json.dumps(ACTIVATED).encode()
    for query in ({"token": "wrong"}, {}, {"token": TOKEN[:-1]}):
        with pytest.raises(WebhookRejected, match="token"):
            kit.authenticate_webhook(request_of(query, body), WebhookSecrets(url_token=TOKEN))
    with pytest.raises(WebhookRejected):
        kit.authenticate_webhook(request_of({"token": ""}, body), WebhookSecrets())
    kit.authenticate_webhook(request_of({"token": TOKEN}, body), WebhookSecrets(url_token=TOKEN))


def test_webhook_malformed_bodies():
    kit = ConvertKit({"api_key": emulator_module.GOOD_KEY})
    for body in (b"{nope", b"[]", b'{"subscriber": "x"}', b'{"other": {}}', b"\xff"):
        with pytest.raises(WebhookMalformed):
            kit.parse_webhook(request_of({"token": TOKEN}, body))
    broken = {"subscriber": {**ACTIVATED["subscriber"], "email_address": None}}
    with pytest.raises(WebhookMalformed):
        kit.parse_webhook(request_of({"token": TOKEN}, json.dumps(broken).encode()))
    [event] = kit.parse_webhook(request_of({}, json.dumps({**ACTIVATED, "tag": {"id": 4, "name": "VIP"}}).encode()))
    assert (event.email, event.list_id) == ("John@example.com", "tag:4")
    assert kit.webhook_response(request_of({}, b"{}"))[0] == 200
