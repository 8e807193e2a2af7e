"""The integrations API on the core's connections, against real connectors and their emulators on loopback.

Each test runs on MailerLite and Brevo (single-key platforms like seed 001's Klaviyo example, which
test_seed001.py runs; Klaviyo's emulator paces its list counts as Klaviyo does, a second each).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from core.checks import PRESETS
from core.connectors import get_platform
from core.storage.models import Connection
from tests.api.conftest import Api, Platform, served
from tests.emulators.faults import Fault


@pytest.fixture(params=["mailerlite", "brevo"])
def platform(request):
    with served(request.param, members=3) as p:
        yield p


@pytest.fixture
async def api(make_api, platform) -> AsyncIterator[Api]:
    async with make_api(platforms=(platform,)) as api:
        yield api


async def connect(api: Api, platform: Platform, **extra):
    return await api.post(f"/v1/integrations/{platform.slug}/connections", {"credentials": platform.form(), **extra})


async def test_connect_checks_live_and_never_returns_credentials(api, platform):
    """A 201 means the platform accepted the key; no answer, and no row, shows the key in clear."""
    response = await connect(api, platform, name="Marketing Klaviyo")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Marketing Klaviyo" and body["status"] == "active" and body["auto_floss_enabled"] is True
    assert body["settings"] == {"aggressiveness": "normal", "verify_first": False, "checks": PRESETS["normal"]}
    secret = platform.form()["api_key"]
    for path in ("/v1/integrations", f"/v1/integrations/{platform.slug}",
                 f"/v1/integrations/{platform.slug}/connections/{body['id']}",
                 f"/v1/integrations/{platform.slug}/connections/{body['id']}/lists"):
        answer = await api.get(path)
        assert answer.status_code == 200 and secret not in answer.text and "credentials" not in answer.text
    assert secret not in response.text
    [row] = await Connection.all().values("credentials")
    assert secret not in str(row)  # sealed at rest


async def test_name_defaults_to_the_display_name_and_unicode_names_round_trip(api, platform):
    assert (await connect(api, platform)).json()["name"] == get_platform(platform.slug).display_name
    name = "Rundbrief \u00fc\u00f1\u00ee \u2709\ufe0f \u65b0\u95fb \U0001f680"
    created = (await connect(api, platform, name=f"  {name}  ")).json()
    assert created["name"] == name
    assert (await api.get(f"/v1/integrations/{platform.slug}/connections/{created['id']}")).json()["name"] == name


async def test_wrong_key_is_400_and_saves_nothing(api, platform):
    response = await api.post(f"/v1/integrations/{platform.slug}/connections", {"credentials": platform.form("bad")})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_credentials"
    listed = (await api.get(f"/v1/integrations/{platform.slug}")).json()
    assert listed["connections"] == [] and listed["status"] == "available"


@pytest.mark.parametrize("body,field", [({}, "credentials"), ({"credentials": "k"}, "credentials"),
                                        ({"credentials": {}}, "credentials.api_key"),
                                        ({"credentials": {"api_key": 5}}, "credentials.api_key"),
                                        ({"credentials": {"api_key": "k" * 5000}}, "credentials.api_key"),
                                        ({"credentials": {"api_key": "k", "base_url": "http://169.254.169.254"}},
                                         "credentials.base_url"),
                                        ({"credentials": {"api_key": "k", "access_token": "t"}}, "credentials.access_token"),
                                        ({"credentials": {"api_key": "k"}, "name": ""}, "name"),
                                        ({"credentials": {"api_key": "k"}, "name": "a\nb"}, "name"),
                                        ({"credentials": {"api_key": "k"}, "name": 7}, "name"),
                                        ({"credentials": {"api_key": "k"}, "colour": "red"}, "colour")])
async def test_missing_or_malformed_credentials_name_the_field(api, platform, body, field):
    """Only the platform's own credential fields are taken: never a base URL or OAuth material (no SSRF)."""
    response = await api.post(f"/v1/integrations/{platform.slug}/connections", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert await Connection.all().count() == 0


async def test_a_platform_that_is_rate_limiting_is_503_with_retry_after_and_saves_nothing(api, platform):
    platform.emulator.faults.add(Fault(status=429, retry_after=300), times=3)
    response = await connect(api, platform)
    assert response.status_code == 503 and response.json()["error"]["code"] == "platform_rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert (await api.get(f"/v1/integrations/{platform.slug}")).json()["connections"] == []


async def test_patch_semantics(api, platform):
    cid = (await connect(api, platform)).json()["id"]
    url = f"/v1/integrations/{platform.slug}/connections/{cid}"
    both = await api.patch(url, {"aggressiveness": "normal", "checks": {"risky": True}})
    assert both.status_code == 400 and "mutually exclusive" in both.json()["error"]["message"]
    empty = await api.patch(url, {})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_request"
    for bad in ({"checks": {"nope": True}}, {"checks": {"risky": "yes"}}, {"checks": {}}, {"checks": []},
                {"aggressiveness": "wild"}, {"aggressiveness": 1}, {"verify_first": "true"}, {"verify_first": 1},
                {"verify_first": True, "name": ""}, {"verify_first": True, "auto_floss_enabled": "no"},
                {"verify_first": True, "credentials": {}}):
        answer = await api.patch(url, bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", (bad, answer.text)
    # a refused update changed nothing
    assert (await api.get(url)).json()["settings"] == {"aggressiveness": "normal", "verify_first": False,
                                                      "checks": PRESETS["normal"]}
    custom = (await api.patch(url, {"checks": {"catch_all": True}})).json()
    assert custom["settings"]["aggressiveness"] == "custom"  # editing any gate makes it custom
    assert custom["settings"]["checks"] == {**PRESETS["normal"], "catch_all": True}
    aggressive = (await api.patch(url, {"aggressiveness": "aggressive"})).json()
    assert aggressive["settings"]["checks"] == PRESETS["aggressive"]
    back = (await api.patch(url, {"aggressiveness": "normal"})).json()
    assert back["settings"]["checks"] == PRESETS["normal"]
    renamed = (await api.patch(url, {"name": "Weekly \u00e9t\u00e9", "auto_floss_enabled": False})).json()
    assert (renamed["name"], renamed["auto_floss_enabled"]) == ("Weekly \u00e9t\u00e9", False)
    assert renamed["settings"] == back["settings"]


async def test_keyword_rules_add_bulk_list_delete(api, platform):
    cid = (await connect(api, platform)).json()["id"]
    base = f"/v1/integrations/{platform.slug}/connections/{cid}"
    one = await api.post(base + "/whitelist", {"keyword": "ceo"})
    assert one.status_code == 201 and [r["keyword"] for r in one.json()["rules"]] == ["ceo"]
    bulk = await api.post(base + "/whitelist", {"keywords": ["vip", "CEO", "\u00e9quipe"]})
    assert [r["keyword"] for r in bulk.json()["rules"]] == ["vip", "ceo", "\u00e9quipe"]  # CEO is the existing rule
    rules = (await api.get(base + "/whitelist")).json()["rules"]
    assert [r["keyword"] for r in rules] == ["ceo", "vip", "\u00e9quipe"]
    assert set(rules[0]) == {"id", "keyword", "created_at"}
    assert (await api.get(base + "/blacklist")).json() == {"rules": []}
    gone = await api.delete(f"{base}/whitelist/{rules[0]['id']}")
    assert gone.status_code == 204
    again = await api.delete(f"{base}/whitelist/{rules[0]['id']}")
    assert again.status_code == 404
    for bad in ({}, {"keyword": ""}, {"keyword": "   "}, {"keyword": "a", "keywords": ["b"]}, {"keywords": []},
                {"keywords": [3]}, {"keywords": "spam"}, {"keyword": "x" * 300}, {"keyword": "\u00df" * 200}, {"keywords": ["ok"] * 1001},
                {"keyword": "tab\there"}):
        answer = await api.post(base + "/blacklist", bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", bad
    assert (await api.get(base + "/blacklist")).json() == {"rules": []}


async def test_disconnect_keeps_the_record_and_reconnect_restores_it(api, platform):
    cid = (await connect(api, platform)).json()["id"]
    url = f"/v1/integrations/{platform.slug}/connections/{cid}"
    off = await api.delete(url)
    assert off.status_code == 200 and off.json()["status"] == "disconnected"
    assert (await api.get(url)).json()["status"] == "disconnected"
    sync = await api.post(url + "/sync")
    assert sync.status_code == 409 and sync.json()["error"]["code"] == "connection_disconnected"
    on = await api.post(url + "/reconnect")
    assert on.status_code == 200 and on.json()["status"] == "active"
    with_new_key = await api.post(url + "/reconnect", {"credentials": platform.form("bad")})
    assert with_new_key.status_code == 400 and with_new_key.json()["error"]["code"] == "invalid_credentials"
    assert (await api.get(url)).json()["status"] == "active"  # a refused key changes nothing


async def test_lists_and_sync_now(api, platform):
    cid = (await connect(api, platform)).json()["id"]
    base = f"/v1/integrations/{platform.slug}/connections/{cid}"
    lists = (await api.get(base + "/lists")).json()["lists"]
    mine = [pl for pl in lists if pl["id"] == platform.emulator.list_id]
    assert mine and mine[0]["synced_at"]
    count = mine[0]["subscriber_count"]
    synced = await api.post(base + "/sync")
    assert synced.status_code == 200
    assert synced.json()["connection"]["last_synced_at"] is not None
    fresh = [pl for pl in synced.json()["lists"] if pl["id"] == platform.emulator.list_id]
    assert fresh[0]["subscriber_count"] == count and fresh[0]["synced_at"] >= mine[0]["synced_at"]
    assert (await api.get(base + "/lists")).json()["lists"] == synced.json()["lists"]


async def test_connections_are_private_to_their_workspace_and_platform(api, platform):
    cid = (await connect(api, platform)).json()["id"]
    outsider = await api.new_key("outsider", workspace="W2")
    other = await api.get(f"/v1/integrations/{platform.slug}/connections/{cid}", outsider)
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    wrong_type = "sendgrid"
    assert (await api.get(f"/v1/integrations/{wrong_type}/connections/{cid}")).status_code == 404
    assert (await api.get(f"/v1/integrations/{platform.slug}/connections/cnx_nope")).status_code == 404


async def test_concurrent_retries_with_one_idempotency_key_create_one_connection(api, platform):
    headers = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(*(api.post(f"/v1/integrations/{platform.slug}/connections",
                                              {"credentials": platform.form()}, headers=headers) for _ in range(5)))
    assert {r.status_code for r in answers} == {201} and len({r.json()["id"] for r in answers}) == 1
    assert len((await api.get(f"/v1/integrations/{platform.slug}")).json()["connections"]) == 1


async def test_an_idempotency_key_is_bound_to_its_request(api, platform):
    """The same key with another body is refused (422), a failed first try is not remembered, and
    another workspace's identical key is its own."""
    headers = {"Idempotency-Key": "k-1"}
    url = f"/v1/integrations/{platform.slug}/connections"
    failed = await api.post(url, {"credentials": platform.form("bad")}, headers=headers)
    assert failed.status_code == 400
    first = await api.post(url, {"credentials": platform.form()}, headers=headers)
    assert first.status_code == 201  # the fixed retry goes through under the same key
    other = await api.post(url, {"credentials": platform.form(), "name": "Another"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    for bad in ("", "x" * 300, "caf\u00e9".encode("latin-1")):
        answer = await api.post(url, {"credentials": platform.form()}, headers={"Idempotency-Key": bad})
        assert answer.status_code == 400 and answer.json()["error"]["field"] == "Idempotency-Key", bad
    await api.services.credits.grant("W2", 5)
    outsider = await api.new_key("outsider", workspace="W2")
    theirs = await api.post(url, {"credentials": platform.form()}, key=outsider, headers=headers)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


async def test_the_catalog_lists_every_platform_with_its_connect_form(api, platform):
    from core.connectors import platforms

    body = (await api.get("/v1/integrations")).json()
    assert [i["type"] for i in body["integrations"]] == list(platforms())
    for item in body["integrations"]:
        cls = get_platform(item["type"])
        assert [f["name"] for f in item["credential_fields"]] == [f.name for f in cls.credential_fields]
        assert item["connectable_via_api"] is True  # every platform in the tree takes an API key
        assert item["status"] == "available" and item["connections"] == []
    for slug in ("nope", "KLAVIYO", "%E2%9C%89", "a" * 300, "getresponse"):
        missing = await api.get(f"/v1/integrations/{slug}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", slug
