"""SendGrid connector against its emulator over real HTTP on loopback.

Every test that talks to the emulator ends with `violations.assert_clean()`: each request was
valid against SendGrid's official OpenAPI files, no download carried our key, and no write touched
anything but suppressions and deletion.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from core.connectors import get_platform
from core.connectors.base import Contact, WebhookRequest, WebhookSecrets
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    UnsupportedAction,
)
from core.connectors.http import PlatformHttp, RateLimit
from core.connectors.sendgrid import SendGrid, export_rows
from tests.emulators import sendgrid as emulator_module
from tests.emulators.faults import Fault
from tests.emulators.server import serve

FAST = {
    "rate_limit": RateLimit(requests=10_000, per_seconds=1.0),
    "export_poll_interval": 0.01,
    "export_poll_max_interval": 0.02,
    "export_max_wait": 5.0,
    "delete_wait": 5.0,
}
SEGMENT = f"segment:{emulator_module.ENGAGED_SEGMENT}"


@pytest.fixture(scope="module")
def big():
    """One 10,500-member emulator shared by the tests that only read."""
    emu = emulator_module.build(members=10_500)
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
def small():
    emu = emulator_module.build(members=120)
    emu.state.rows_per_file = 50  # three files even for a small list
    with serve(emu.app) as server:
        yield emu, server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(emu, server, client, credentials=None, **options) -> SendGrid:
    connector = emu.connector(server.url, credentials=credentials, options={**FAST, **options})
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


async def collect(iterator) -> list:
    return [item async for item in iterator]


# --- registration and credentials --------------------------------------------------------
def test_registered_with_schema_and_capabilities():
    """The registry finds SendGrid by mailfloss's slug; the key is secret, the region is not; no webhook, polling."""
    cls = get_platform("sendgrid")
    assert cls is SendGrid
    fields = {f.name: f for f in cls.credential_fields}
    assert fields["api_key"].secret and "Settings > API Keys" in fields["api_key"].help
    assert not fields["region"].secret and not fields["region"].required
    caps = cls.capabilities
    assert set(caps.list_kinds) == {"list", "segment", "all"} and caps.can_delete and caps.can_resubscribe
    assert caps.webhooks == "none" and caps.polling and not caps.webhook_registration


async def test_good_and_bad_key(small, client):
    """A good key passes; SendGrid's 401 `authorization required` is one sentence without the key."""
    emu, server = small
    await make(emu, server, client).check_credentials()
    creds = emu.bad_credentials(server.url)
    with pytest.raises(InvalidCredentials) as info:
        await make(emu, server, client, creds).check_credentials()
    assert creds["api_key"] not in str(info.value) and "\n" not in str(info.value) and "API Keys" in str(info.value)
    emu.violations.assert_clean()


async def test_read_only_key_reads_but_cannot_write(small, client):
    """Verify Only works with a read-only key (lists, export); every write says clearly the key cannot write."""
    emu, server = small
    sg = make(emu, server, client, emu.read_only_credentials(server.url))
    await sg.check_credentials()
    assert len(await sg.lists()) == 4
    first = (await collect(sg.members(emu.list_id)))[:1]
    assert first
    for action in (sg.unsubscribe, sg.delete, sg.resubscribe):
        with pytest.raises(InsufficientScope, match="cannot write"):
            await action(first)
    assert not emu.is_unsubscribed(first[0].email) and not emu.is_deleted(first[0].email)
    emu.violations.assert_clean()


@pytest.mark.parametrize(
    "creds, field",
    [
        ({}, "api_key"),
        ({"api_key": "ngeVfQFYQlKU0ufo8x5d1A"}, "api_key"),  # the key's ID, not the key
        ({"api_key": "SG.ngeVfQFYQlKU0ufo8x5d1A"}, "api_key"),  # cut short
        ({"api_key": "SG.ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoT f-09kqeF8tAmbihYzrnopKc"}, "api_key"),  # a space inside
        ({"api_key": emulator_module.GOOD_KEY, "region": "us-east-1"}, "region"),
    ],
)
def test_new_user_mistakes_are_one_sentence_without_the_secret(creds, field):
    """A missing, truncated or mangled key, or an unknown region: one sentence naming the field, no secret."""
    with pytest.raises(InvalidConfiguration) as info:
        SendGrid(creds)
    message = str(info.value)
    assert info.value.field == field and "\n" not in message and message.endswith(".")
    assert "TwL2iGABf9DHoT" not in message and "ngeVfQFYQlKU0ufo8x5d1A" not in message


def test_region_and_base_url():
    """EU regional subusers go to api.eu.sendgrid.com; a base_url in user credentials is ignored; the key never shows."""
    assert SendGrid({"api_key": emulator_module.GOOD_KEY}).base_url == "https://api.sendgrid.com"
    eu = SendGrid({"api_key": emulator_module.GOOD_KEY, "region": "EU"})
    assert eu.base_url == "https://api.eu.sendgrid.com"
    smuggled = SendGrid({"api_key": emulator_module.GOOD_KEY, "base_url": "http://127.0.0.1:1"})
    assert smuggled.base_url == "https://api.sendgrid.com" and emulator_module.GOOD_KEY not in repr(smuggled)
    pasted = SendGrid({"api_key": f"Bearer {emulator_module.GOOD_KEY}"})  # copied with the header's scheme
    assert pasted.auth_headers()["Authorization"] == f"Bearer {emulator_module.GOOD_KEY}"


# --- lists and members -------------------------------------------------------------------
async def test_lists_segments_and_all_contacts_with_counts(big, client):
    """Lists (page_token paging), segments 2.0 and the whole account, each with its kind and count."""
    emu, server = big
    before = emu.counters["list_pages"]
    found = {pl.id: pl for pl in await make(emu, server, client, lists_page_size=1).lists()}
    assert emu.counters["list_pages"] - before == 2  # two lists, one per page: the page_token was followed
    assert found[emu.list_id].kind == "list" and found[emu.list_id].subscriber_count == 10_500
    assert found[emulator_module.SECOND_LIST].subscriber_count == 0
    assert found[SEGMENT].kind == "segment" and found[SEGMENT].subscriber_count == 1_050
    assert found["all"].kind == "all" and found["all"].subscriber_count == 10_500
    emu.violations.assert_clean()


async def test_export_streams_ten_thousand_members_once_each_file_by_file(big, client):
    """The export is created, polled until ready, and its three gzip files are fetched one at a time.

    The first member arrives while only the first file has been requested; every member is seen
    exactly once, including rows whose quoted fields hold commas, quotes and newlines.
    """
    emu, server = big
    before = dict(emu.counters)
    members = make(emu, server, client).members(emu.list_id)
    first = await members.__anext__()
    assert emu.counters["downloads"] - before.get("downloads", 0) == 1
    rest = await collect(members)
    emails = [first.email, *(c.email for c in rest)]
    assert len(emails) == 10_500 == len(set(emails))
    assert emails[0] == "member0@example.com" and emails[-1] == "member10499@example.com"
    assert all(c.list_id == emu.list_id and c.id.startswith(emulator_module.CONTACT_PREFIX) for c in rest[:5])
    assert emu.counters["exports"] - before.get("exports", 0) == 1
    assert emu.counters["export_polls"] - before.get("export_polls", 0) == 2  # pending, then ready
    assert emu.counters["downloads"] - before.get("downloads", 0) == 3
    emu.violations.assert_clean()  # includes: no Authorization header went to the download host


async def test_json_export_and_uncompressed_files(big, client):
    """JSON-lines exports (`contact_id`, not `id`) and files that arrive without gzip read the same."""
    emu, server = big
    emu.state.gzip = False
    try:
        emails = [c.email async for c in make(emu, server, client, export_format="json").members(emu.list_id)]
    finally:
        emu.state.gzip = True
    assert len(emails) == 10_500 == len(set(emails))
    emu.violations.assert_clean()


async def test_segment_and_all_contacts_members(big, client):
    """A segment exports by segment_ids; `all` exports the whole account."""
    emu, server = big
    sg = make(emu, server, client)
    segment = [c.email for c in await collect(sg.members(SEGMENT))]
    assert len(segment) == 1_050 and segment[1] == "member10@example.com"
    assert len(await collect(sg.members("all"))) == 10_500
    emu.violations.assert_clean()


async def test_unknown_or_malformed_list_is_list_not_found(small, client):
    """An unknown list or segment is ListNotFound; a malformed id is refused before any request."""
    emu, server = small
    sg = make(emu, server, client)
    for missing in (str(uuid.uuid4()), f"segment:{uuid.uuid4()}"):
        with pytest.raises(ListNotFound):
            await collect(sg.members(missing))
    before = emu.counters["requests"]
    with pytest.raises(ListNotFound, match="no list"):
        await collect(sg.members("1234"))
    assert emu.counters["requests"] == before and emu.counters["exports"] == 0
    emu.violations.assert_clean()


async def test_export_failure_and_timeout_are_clear(small, client):
    """A `failure` export names SendGrid's reason; one that never finishes gives up within the bounded wait."""
    emu, server = small
    emu.state.export_outcome = "failure"
    with pytest.raises(ConnectorError, match="could not export .*internal error"):
        await collect(make(emu, server, client).members(emu.list_id))
    emu.state.export_outcome = "pending"
    started = time.monotonic()
    with pytest.raises(PlatformUnavailable, match="in time"):
        await collect(make(emu, server, client, export_max_wait=0.2).members(emu.list_id))
    assert time.monotonic() - started < 2
    emu.violations.assert_clean()


async def test_download_recovers_from_503_and_from_a_dropped_transfer(small, client):
    """The file host's 503s are retried; a transfer cut mid-file restarts and skips rows already given."""
    emu, server = small
    emu.state.rows_per_file = 5000
    emu.state.tricky_every = 0
    emu.faults.add(Fault(status=503, path_prefix="/sg-exports/"), times=2)
    emails = [c.email async for c in make(emu, server, client).members(emu.list_id)]
    assert len(emails) == 120 == len(set(emails)) and emu.faults.injected == 2

    big_emu = emulator_module.build(members=3000)
    with serve(big_emu.app) as big_server:
        big_emu.state.break_after_blocks = 2  # the first transfer dies after 1,000 rows
        emails = [c.email async for c in make(big_emu, big_server, client).members(big_emu.list_id)]
        assert len(emails) == 3000 == len(set(emails)) and big_emu.counters["downloads"] == 2
        big_emu.violations.assert_clean()
    emu.violations.assert_clean()


# --- the incremental parser --------------------------------------------------------------
def _csv_file(rows: int) -> bytes:
    lines = ["EMAIL,FIRST_NAME,CONTACT_ID,CREATED_AT"]
    lines += [f'p{i}@example.com,"Multi\nline, ""quoted""",id-{i},2024-01-01T00:00:00Z' for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode()


async def _chunked(data: bytes, size: int, pulled: list[int]):
    for start in range(0, len(data), size):
        pulled.append(start)
        yield data[start : start + size]


async def test_parser_yields_rows_before_the_file_is_read():
    """Gzip CSV is decompressed and parsed chunk by chunk: the first row comes after one chunk of many."""
    data = gzip.compress(_csv_file(5000))
    pulled: list[int] = []
    rows = export_rows(_chunked(data, 1024, pulled))
    assert await rows.__anext__() == ("id-0", "p0@example.com")
    assert len(pulled) <= 2 and len(data) // 1024 > 20
    rest = [row async for row in rows]
    assert len(rest) == 4999 and rest[-1] == ("id-4999", "p4999@example.com")


async def test_parser_reads_json_lines_and_concatenated_gzip_members():
    """JSON lines, split across two gzip members (as a concatenated file has), parse in full."""
    lines = [json.dumps({"contact_id": f"c{i}", "email": f"j{i}@example.com", "first_name": "x"}) for i in range(300)]
    data = gzip.compress("\n".join(lines[:150]).encode() + b"\n") + gzip.compress("\n".join(lines[150:]).encode())
    rows = [row async for row in export_rows(_chunked(data, 100, []))]
    assert len(rows) == 300 and rows[0] == ("c0", "j0@example.com") and rows[-1] == ("c299", "j299@example.com")


async def test_parser_refuses_files_it_cannot_read():
    """A file without CONTACT_ID/EMAIL columns, or cut inside a quoted field, is a clear error."""
    with pytest.raises(ConnectorError, match="CONTACT_ID"):
        [row async for row in export_rows(_chunked(b"NAME,PHONE\r\na,b\r\n", 4, []))]
    with pytest.raises(ConnectorError, match="quoted"):
        [row async for row in export_rows(_chunked(b'EMAIL,CONTACT_ID\r\n"a@b.c,1\r\n', 4, []))]


# --- writes ------------------------------------------------------------------------------
async def test_unsubscribe_shows_on_later_reads_is_idempotent_and_undoable(small, client):
    """A global suppression: visible through the API, skipped by the next export, repeatable, undoable."""
    emu, server = small
    sg = make(emu, server, client)
    targets = (await collect(sg.members(emu.list_id)))[:3]
    outcome = await sg.unsubscribe(targets)
    assert sorted(outcome.done) == sorted(c.id for c in targets) and not outcome.failed
    assert all(emu.is_unsubscribed(c.email) for c in targets)
    check = await client.get(f"{server.url}/v3/asm/suppressions/global/{targets[0].email}", headers=sg.auth_headers())
    assert check.json() == {"recipient_email": targets[0].email}
    assert len((await sg.unsubscribe(targets)).done) == 3  # already suppressed: done, no error
    remaining = [c.email for c in await collect(sg.members(emu.list_id))]
    assert len(remaining) == 117 and targets[0].email not in remaining
    assert (await sg.resubscribe(targets[:1])).done == [targets[0].id]
    assert not emu.is_unsubscribed(targets[0].email)
    assert (await sg.resubscribe(targets[:1])).done == [targets[0].id]  # not suppressed any more: still done
    emu.violations.assert_clean()


async def test_unsubscribe_is_batched_and_isolates_a_refused_batch(client):
    """1,200 addresses take two calls. A malformed address is never sent. When SendGrid refuses a
    batch with 400, the addresses are retried one by one, so one bad address cannot block the rest."""
    emu = emulator_module.build(members=1300)
    with serve(emu.app) as server:
        sg = make(emu, server, client)
        targets = [Contact(id=emulator_module.contact_id(i), email=f"member{i}@example.com") for i in range(1200)]
        assert len((await sg.unsubscribe(targets)).done) == 1200 and emu.counters["suppress_calls"] == 2
        mixed = [Contact(id="x1", email="member1250@example.com"), Contact(id="x2", email="member1251@example.com"),
                 Contact(id="x3", email="not@@valid"), Contact(id="x4", email="")]
        emu.faults.add(Fault(status=400, body={"errors": [{"field": "recipient_emails", "message": "invalid email"}]},
                             path_prefix="/v3/asm/suppressions/global"))
        emu.faults.add(Fault(status=400, body={"errors": [{"field": "recipient_emails", "message": "invalid email"}]},
                             path_prefix="/v3/asm/suppressions/global"))
        outcome = await sg.unsubscribe(mixed)
        assert outcome.done == ["x2"] and set(outcome.failed) == {"x1", "x3", "x4"}
        assert emu.is_unsubscribed("member1251@example.com") and not emu.is_unsubscribed("member1250@example.com")
        assert emu.faults.injected == 2 and emu.counters["suppress_calls"] == 3
        emu.violations.assert_clean()


async def test_delete_is_an_async_job_confirmed_and_repeat_is_success(small, client):
    """Deletion jobs of 100 ids are polled until completed; the contacts are gone; repeating is done too."""
    emu, server = small
    sg = make(emu, server, client)
    targets = await collect(sg.members(emu.list_id))
    outcome = await sg.delete(targets[:105])
    assert sorted(outcome.done) == sorted(c.id for c in targets[:105]) and not outcome.failed
    assert emu.counters["delete_calls"] == 2 and emu.counters["job_polls"] >= 2
    assert all(emu.is_deleted(c.email) for c in targets[:105]) and emu.counters["deleted"] == 105
    assert len((await sg.delete(targets[:2])).done) == 2  # already gone
    assert (await sg.delete([Contact(id="42", email="x@example.com")])).failed  # not a SendGrid id
    assert len(await collect(sg.members(emu.list_id))) == 15
    emu.violations.assert_clean()


async def test_delete_still_queued_after_the_wait_is_accepted(small, client):
    """A job SendGrid accepted but has not run within `delete_wait` counts as done; it runs later."""
    emu, server = small
    sg = make(emu, server, client, delete_wait=0.0)
    target = (await collect(sg.members(emu.list_id)))[7]
    assert (await sg.delete([target])).done == [target.id]
    assert not emu.is_deleted(target.email)  # queued only
    await collect(sg.members(emu.list_id))  # time passes
    assert emu.is_deleted(target.email)
    emu.violations.assert_clean()


# --- rate limits and failures ---------------------------------------------------------------
@pytest.mark.parametrize(
    "retry_after, reset_in",
    [(0, None), (None, 1), (None, None)],
    ids=["retry-after", "x-ratelimit-reset", "backoff-only"],
)
async def test_recovers_from_429(small, client, retry_after, reset_in):
    """SendGrid's 429 is retried: after Retry-After, after X-RateLimit-Reset (epoch), or with backoff."""
    emu, server = small
    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
    if reset_in is not None:
        headers["X-RateLimit-Reset"] = str(int(time.time()) + reset_in)
    body = {"errors": [{"field": None, "message": "too many requests"}]}
    emu.faults.add(Fault(status=429, retry_after=retry_after, headers=headers, body=body), times=1 if reset_in else 2)
    await make(emu, server, client).check_credentials()
    assert emu.faults.injected == (1 if reset_in else 2)


async def test_spent_rate_limit_window_is_waited_out_before_a_429(small, client):
    """When X-RateLimit-Remaining reaches 0 the next call waits for X-RateLimit-Reset: no 429 is ever provoked."""
    emu, server = small
    emu.state.rate_limit = 2
    found = await make(emu, server, client, lists_page_size=1).lists()
    assert len(found) == 4 and emu.counters["429"] == 0
    emu.violations.assert_clean()


async def test_recovers_from_5xx_and_gives_up_clearly(small, client):
    """One 500 is retried away; a lasting outage becomes PlatformUnavailable in one sentence."""
    emu, server = small
    sg = make(emu, server, client)
    emu.faults.add(Fault(status=500), times=1)
    await sg.check_credentials()
    emu.faults.add(Fault(status=503), times=10)
    with pytest.raises(PlatformUnavailable, match="unavailable"):
        await sg.check_credentials()


# --- verify-first: no webhook, polling instead --------------------------------------------------
def test_no_new_subscriber_webhook_is_a_clear_refusal():
    """SendGrid sends no new-subscriber webhook: the webhook methods refuse in one sentence."""
    sg = SendGrid({"api_key": emulator_module.GOOD_KEY})
    request = WebhookRequest("POST", "https://lw.test/webhooks/sendgrid/c1", {}, {}, b"[]", datetime.now(timezone.utc))
    with pytest.raises(UnsupportedAction, match="no new-subscriber webhook"):
        sg.authenticate_webhook(request, WebhookSecrets(url_token="t"))
    with pytest.raises(UnsupportedAction):
        sg.parse_webhook(request)


async def test_webhook_registration_is_refused(small, client):
    emu, server = small
    with pytest.raises(UnsupportedAction):
        await make(emu, server, client).register_webhook("https://lw.test/webhooks/sendgrid/c1")


async def test_contacts_since_is_ascending_complete_and_keeps_a_high_water_mark(small, client):
    """130 new contacts (more than a search returns) come oldest first by bisecting the window;
    polling again from the last created_at finds nothing, then exactly the next newcomer."""
    emu, server = small
    sg = make(emu, server, client)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    mark = now - timedelta(seconds=300)
    for k in range(130):
        emu.add_member(emu.list_id, f"new{k}@example.org", now - timedelta(seconds=200 - k))
    found = await collect(sg.contacts_since(mark))
    assert [c.email for c in found] == [f"new{k}@example.org" for k in range(130)]
    assert all(isinstance(c, Contact) and c.created_at > mark for c in found)
    assert emu.counters["searches"] > 3  # the window really was split: 50 per search at most
    mark = found[-1].created_at
    assert await collect(sg.contacts_since(mark)) == []
    emu.add_member(emu.list_id, "latest@example.org", now - timedelta(seconds=5))
    assert [c.email for c in await collect(sg.contacts_since(mark))] == ["latest@example.org"]
    assert [c.email for c in await collect(sg.contacts_since(None))][-1] == "latest@example.org"  # default lookback
    emu.violations.assert_clean()


async def test_contacts_since_warns_when_one_second_holds_more_than_a_search_returns(small, client, caplog):
    """60 contacts created in the same second: 50 are returned, and the limit is logged, not hidden."""
    emu, server = small
    moment = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=30)
    for k in range(60):
        emu.add_member(emu.list_id, f"burst{k}@example.org", moment)
    with caplog.at_level(logging.WARNING, logger="core.connectors.sendgrid"):
        found = await collect(make(emu, server, client).contacts_since(moment - timedelta(seconds=60)))
    assert len(found) == 50 and "more than 50" in caplog.text
    emu.violations.assert_clean()


async def test_emulator_refuses_sgql_it_does_not_know_with_sendgrids_error_body(small, client):
    """The emulator parses only the SGQL the connector sends; anything else is SendGrid's 400 error shape."""
    emu, server = small
    headers = {"Authorization": f"Bearer {emulator_module.GOOD_KEY}"}
    reply = await client.post(f"{server.url}/v3/marketing/contacts/search", json={"query": "email LIKE 'a%'"}, headers=headers)
    assert reply.status_code == 400 and reply.json()["errors"][0]["field"] == "query"
    emu.violations.assert_clean()
