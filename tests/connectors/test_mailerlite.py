"""MailerLite connector against its emulator over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.base import WebhookRequest, WebhookSecrets
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
from core.connectors.mailerlite import MailerLite
from tests.emulators import mailerlite as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {"rate_limit": RateLimit(requests=10_000, per_seconds=1.0)}


@pytest.fixture(scope="module")
def big():
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


def make(emu, server, client, credentials=None) -> MailerLite:
    connector = emu.connector(server.url, credentials=credentials, options=FAST)
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


def test_registered_with_schema_and_capabilities():
    cls = get_platform("mailerlite")
    assert cls is MailerLite
    [token] = cls.credential_fields
    assert token.secret and "Integrations" in token.help
    assert set(cls.capabilities.list_kinds) == {"group", "segment"} and cls.capabilities.webhooks == "signed"


async def test_good_and_bad_token(small, client):
    """A good token passes; MailerLite's 401 becomes one sentence without the token in it."""
    emu, server = small
    await make(emu, server, client).check_credentials()
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    assert creds["api_key"] not in str(info.value)


async def test_read_only_token_reads_but_cannot_write(small, client):
    emu, server = small
    ml = make(emu, server, client, emu.read_only_credentials(server.url))
    first = [c async for c in ml.members(emu.list_id)][:1]
    with pytest.raises(InsufficientScope, match="cannot write"):
        await ml.unsubscribe(first)
    with pytest.raises(InsufficientScope):
        await ml.delete(first)
    assert not emu.is_unsubscribed(first[0].email) and not emu.is_deleted(first[0].email)


async def test_groups_and_segments_with_counts(small, client):
    emu, server = small
    found = {pl.id: pl for pl in await make(emu, server, client).lists()}
    assert found["1001"].kind == "group" and found["1001"].subscriber_count == 120
    assert found["segment:3001"].kind == "segment" and found["segment:3001"].subscriber_count == 0
    assert [c async for c in make(emu, server, client).members("segment:3001")] == []


async def test_cursor_pages_through_ten_thousand_members(big, client):
    emu, server = big
    emails = [c.email async for c in make(emu, server, client).members(emu.list_id)]
    assert len(emails) == 10_500 == len(set(emails)) and emu.counters["requests"] >= 11


async def test_unknown_group_is_list_not_found(small, client):
    emu, server = small
    with pytest.raises(ListNotFound):
        [c async for c in make(emu, server, client).members("424242")]


async def test_unsubscribe_shows_on_later_reads_idempotent_and_undoable(small, client):
    emu, server = small
    ml = make(emu, server, client)
    targets = [c async for c in ml.members(emu.list_id)][:4]
    assert len((await ml.unsubscribe(targets)).done) == 4
    assert len((await ml.unsubscribe(targets)).done) == 4
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    assert len([c async for c in ml.members(emu.list_id)]) == 116
    assert (await ml.resubscribe(targets[:1])).done == [targets[0].id]
    assert not emu.is_unsubscribed(targets[0].email)


async def test_delete_and_repeat_is_success(small, client):
    emu, server = small
    ml = make(emu, server, client)
    a, b = [c async for c in ml.members(emu.list_id)][:2]
    assert (await ml.delete([a])).done == [a.id] and emu.is_deleted(a.email)
    assert (await ml.delete([a])).done == [a.id]
    assert (await ml.delete([b], permanent=True)).done == [b.id] and emu.is_deleted(b.email)
    assert emu.counters["deleted"] == 2
    assert (await ml.unsubscribe([a])).failed  # a deleted subscriber cannot be unsubscribed


@pytest.mark.parametrize("retry_after", [0, None])
async def test_recovers_from_429(small, client, retry_after):
    emu, server = small
    emu.faults.add(Fault(status=429, retry_after=retry_after, headers={"X-RateLimit-Remaining": "0"}), times=2)
    await make(emu, server, client).check_credentials()
    assert emu.faults.injected == 2


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    emu, server = small
    ml = make(emu, server, client)
    emu.faults.add(Fault(status=500), times=1)
    await ml.check_credentials()
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable):
        await ml.check_credentials()


@pytest.mark.parametrize("creds", [{}, {"api_key": "short"}, {"api_key": "has a space in the middle of it"}])
def test_new_user_bad_token_is_one_sentence(creds):
    with pytest.raises(InvalidConfiguration) as info:
        MailerLite(creds)
    assert info.value.field == "api_key" and "\n" not in str(info.value) and "space in the" not in str(info.value)


def test_base_url_cannot_come_from_user_credentials():
    ml = MailerLite({"api_key": emulator_module.GOOD_TOKEN, "base_url": "http://127.0.0.1:1"})
    assert ml.base_url == "https://connect.mailerlite.com" and emulator_module.GOOD_TOKEN not in repr(ml)


# --- webhooks ------------------------------------------------------------------------
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=timezone.utc)
SECRET = "whsec-mailerlite-test"


def signed(payload: dict | bytes, *, secret: str = SECRET, at: datetime = NOW) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", "https://lw.test/webhooks/mailerlite/c1", {"signature": signature,
                          "content-type": "application/json"}, {}, body, at)


CREATED = {"event": "subscriber.created", "id": "90000042", "email": "new@b.com", "status": "active",
           "created_at": "2026-11-22 17:59:00"}


def test_webhook_good_signature_parses_subscriber_created():
    ml = MailerLite({"api_key": emulator_module.GOOD_TOKEN})
    request = signed(CREATED)
    ml.authenticate_webhook(request, WebhookSecrets(signing_secret=SECRET))
    [event] = ml.parse_webhook(request)
    assert (event.email, event.contact_id) == ("new@b.com", "90000042")
    assert len(ml.parse_webhook(signed({"events": [CREATED, {**CREATED, "event": "subscriber.updated"}]}))) == 1


def test_webhook_bad_signature_stale_and_malformed_refused():
    ml = MailerLite({"api_key": emulator_module.GOOD_TOKEN})
    with pytest.raises(WebhookRejected, match="signature"):
        ml.authenticate_webhook(signed(CREATED, secret="other"), WebhookSecrets(signing_secret=SECRET))
    with pytest.raises(WebhookRejected, match="replay"):
        ml.authenticate_webhook(signed(CREATED, at=NOW + timedelta(hours=3)), WebhookSecrets(signing_secret=SECRET))
    with pytest.raises(WebhookMalformed):
        ml.parse_webhook(signed(b"{not json"))
    with pytest.raises(WebhookMalformed):
        ml.parse_webhook(signed({"event": "subscriber.created", "id": "1"}))


async def test_webhook_registration_returns_id_and_secret(small, client):
    """MailerLite chooses the signing secret; the registration carries it (ours is not used)."""
    emu, server = small
    ml = make(emu, server, client)
    registration = await ml.register_webhook("https://lw.example.com/webhooks/mailerlite/c1", secret="ours-unused")
    [hook_id] = registration.ids
    assert emu.state.webhooks[hook_id]["events"] == ["subscriber.created"]
    assert registration.secrets == WebhookSecrets(signing_secret=emu.state.webhooks[hook_id]["secret"])
    await ml.unregister_webhook(hook_id)
    await ml.unregister_webhook(hook_id)
    assert not emu.state.webhooks
