"""ActiveCampaign connector against its emulator over real HTTP on loopback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.activecampaign import ActiveCampaign
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.errors import (
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    WebhookMalformed,
    WebhookRejected,
)
from core.connectors.http import PlatformHttp, RateLimit
from tests.emulators import activecampaign as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": RateLimit(requests=10_000, per_seconds=1.0)}


@pytest.fixture(scope="module")
def big():
    """One 10,050-member emulator shared by the read-only paging tests."""
    emu = emulator_module.build(members=10_050)
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
def small():
    emu = emulator_module.build(members=250)
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None) -> ActiveCampaign:
    connector = emu.connector(server.url, credentials=credentials, options=FAST)
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


def test_registered_under_mailfloss_slug_with_schema():
    """The registry finds AC by slug; the form says where the key is and that the key is secret."""
    cls = get_platform("activecampaign")
    assert cls is ActiveCampaign
    fields = {f.name: f for f in cls.credential_fields}
    assert fields["api_key"].secret and not fields["api_url"].secret
    assert "Settings > Developer" in fields["api_key"].help
    assert cls.capabilities.can_delete and cls.capabilities.webhook_registration


async def test_good_credentials(small, client):
    emu, server = small
    info = await make(emu, server, client).check_credentials()
    assert info.account_id == "1" and info.name == "jdoe"


async def test_bad_key_is_one_clear_sentence_from_a_403(small, client):
    """AC answers 403 for a bad key; that is InvalidCredentials, and the key never shows."""
    emu, server = small
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    assert creds["api_key"] not in str(info.value) and "\n" not in str(info.value)


async def test_read_only_key_reads_but_cannot_write(small, client):
    """Verify Only works with a read-only user; cleanup says clearly the key cannot write."""
    emu, server = small
    ac = make(emu, server, client, emu.read_only_credentials(server.url))
    await ac.check_credentials()
    first = [c async for c in ac.members(emu.list_id)][:1]
    with pytest.raises(InsufficientScope, match="cannot write"):
        await ac.unsubscribe(first)
    with pytest.raises(InsufficientScope):
        await ac.delete(first)
    assert not emu.is_unsubscribed(first[0].email)


async def test_lists_with_counts(big, client):
    emu, server = big
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert found["1"].subscriber_count == 10_050 and found["1"].kind == "list"
    assert found["2"].subscriber_count == 0


async def test_pages_through_ten_thousand_members_once_each(big, client):
    emu, server = big
    emails = [c.email async for c in make(emu, server, client).members(emu.list_id)]
    assert len(emails) == 10_050 == len(set(emails))
    assert emails[0] == "member0@example.com" and emails[-1] == "member10049@example.com"


async def test_unknown_list_is_list_not_found(small, client):
    emu, server = small
    with pytest.raises(ListNotFound):
        [c async for c in make(emu, server, client).members("999")]


async def test_unsubscribe_shows_on_later_reads_and_is_idempotent(small, client):
    emu, server = small
    ac = make(emu, server, client)
    targets = [c async for c in ac.members(emu.list_id)][:3]
    outcome = await ac.unsubscribe(targets)
    assert sorted(outcome.done) == sorted(c.id for c in targets) and not outcome.failed
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    again = await ac.unsubscribe(targets)
    assert len(again.done) == 3
    remaining = [c.email async for c in ac.members(emu.list_id)]
    assert len(remaining) == 247 and targets[0].email not in remaining
    counts = {pl.id: pl.subscriber_count for pl in await ac.lists()}
    assert counts["1"] == 247
    undone = await ac.resubscribe(targets[:1])
    assert undone.done == [targets[0].id] and not emu.is_unsubscribed(targets[0].email)


async def test_unsubscribe_without_list_fails_that_contact_only(small, client):
    emu, server = small
    outcome = await make(emu, server, client).unsubscribe([Contact(id="1", email="member0@example.com")])
    assert "1" in outcome.failed and not emu.is_unsubscribed("member0@example.com")


async def test_delete_removes_and_repeat_is_success(small, client):
    emu, server = small
    ac = make(emu, server, client)
    target = [c async for c in ac.members(emu.list_id)][5]
    assert (await ac.delete([target])).done == [target.id]
    assert emu.is_deleted(target.email)
    assert (await ac.delete([target])).done == [target.id]  # 404 now: already gone is success
    assert emu.counters["deleted"] == 1


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429_with_and_without_retry_after(small, client, retry_after):
    emu, server = small
    emu.faults.add(Fault(status=429, retry_after=retry_after, body={"message": "Too Many Requests"}), times=2)
    info = await make(emu, server, client).check_credentials()
    assert info.account_id == "1" and emu.faults.injected == 2


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    ac = make(emu, server, client)
    emu.faults.add(Fault(status=503), times=2)
    assert (await ac.check_credentials()).account_id == "1"
    emu.faults.add(Fault(status=502), times=10)
    with pytest.raises(PlatformUnavailable, match="unavailable"):
        await ac.check_credentials()


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.api-us1.com",
        "https://evil.example.com",
        "https://127.0.0.1",
        "https://[::1]",
        "https://localhost",
        "https://acme.api-us1.com:8443",
        "https://user:pw@acme.api-us1.com",
        "https://acme.api-us1.com.evil.com",
        "https://api-us1.com",
        "https://acme.api-us1.com/redirect?to=x",
        "not a url",
    ],
)
def test_account_url_refused_unless_https_on_ac_domains(url):
    """No SSRF: only https on *.api-us1.com / *.activehosted.com, port 443, no userinfo or IP."""
    with pytest.raises(InvalidConfiguration) as info:
        ActiveCampaign({"api_url": url, "api_key": emulator_module.GOOD_KEY})
    assert info.value.field == "api_url" and str(info.value).startswith("API URL") and "\n" not in str(info.value)


def test_user_cannot_smuggle_a_base_url_through_credentials():
    ac = ActiveCampaign({"api_url": "https://acme.activehosted.com/", "api_key": emulator_module.GOOD_KEY, "base_url": "http://127.0.0.1:1"})
    assert ac.base_url == "https://acme.activehosted.com"


def test_new_user_mistakes_give_one_sentence_without_the_secret():
    for creds, field in [({"api_url": "https://acme.api-us1.com"}, "api_key"),
                         ({"api_url": "https://acme.api-us1.com", "api_key": "my key!"}, "api_key"),
                         ({"api_key": emulator_module.GOOD_KEY}, "api_url")]:
        with pytest.raises(InvalidConfiguration) as info:
            ActiveCampaign(creds)
        assert info.value.field == field and "my key!" not in str(info.value)
    assert emulator_module.GOOD_KEY not in repr(ActiveCampaign({"api_url": "https://a.api-us1.com", "api_key": emulator_module.GOOD_KEY}))


# --- webhooks ------------------------------------------------------------------------
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc)
SECRETS = WebhookSecrets(url_token="s3cret-token")


def delivery(body: str, token: str = "s3cret-token", at: datetime = NOW) -> WebhookRequest:
    return WebhookRequest(method="POST", url=f"https://lw.test/webhooks/activecampaign/c1?token={token}",
                          headers={"content-type": "application/x-www-form-urlencoded"}, query={"token": token},
                          body=body.encode(), received_at=at)


SUBSCRIBE = ("type=subscribe&date_time=2026-11-22T12:00:00-06:00&initiated_from=public&initiated_by=public"
             "&list=4&contact%5Bid%5D=42&contact%5Bemail%5D=a%40b.com&contact%5Bfirst_name%5D=Ann")


def test_webhook_subscribe_parsed_and_authenticated():
    ac = ActiveCampaign({"api_url": "https://acme.api-us1.com", "api_key": emulator_module.GOOD_KEY})
    request = delivery(SUBSCRIBE)
    ac.authenticate_webhook(request, SECRETS)
    [event] = ac.parse_webhook(request)
    assert (event.email, event.contact_id, event.list_id) == ("a@b.com", "42", "4")


def test_webhook_wrong_token_stale_and_malformed_are_refused():
    ac = ActiveCampaign({"api_url": "https://acme.api-us1.com", "api_key": emulator_module.GOOD_KEY})
    with pytest.raises(WebhookRejected):
        ac.authenticate_webhook(delivery(SUBSCRIBE, token="guess"), SECRETS)
    with pytest.raises(WebhookRejected, match="replay"):
        ac.authenticate_webhook(delivery(SUBSCRIBE, at=NOW + timedelta(hours=2)), SECRETS)
    with pytest.raises(WebhookMalformed):
        ac.parse_webhook(delivery("type=subscribe&contact%5Bemail%5D="))
    with pytest.raises(WebhookMalformed):
        ac.parse_webhook(delivery("\xff\xfe{not form"))
    assert ac.parse_webhook(delivery("type=update&contact%5Bemail%5D=a%40b.com")) == []


async def test_webhook_registration_round_trip(small, client):
    """The connection's secret rides in the registered URL as ?token= and is what deliveries are checked against."""
    emu, server = small
    ac = make(emu, server, client)
    registration = await ac.register_webhook("https://lw.example.com/webhooks/activecampaign/c1", list_id="1", secret="conn-secret-0123456789")
    [hook_id] = registration.ids
    assert emu.state.webhooks[hook_id]["events"] == ["subscribe"]
    assert emu.state.webhooks[hook_id]["url"] == "https://lw.example.com/webhooks/activecampaign/c1?token=conn-secret-0123456789"
    assert registration.secrets == WebhookSecrets(url_token="conn-secret-0123456789") and registration.url.endswith("conn-secret-0123456789")
    ac.authenticate_webhook(delivery(SUBSCRIBE, token="conn-secret-0123456789"), registration.secrets)
    await ac.unregister_webhook(hook_id)
    assert hook_id not in emu.state.webhooks
    await ac.unregister_webhook(hook_id)  # already gone is fine
