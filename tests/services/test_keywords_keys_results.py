"""Keyword rules, API keys (hashed, shown once), validation results by contextId, idempotency
records and platform OAuth states: each is stored the way its transport needs it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.apikeys import ApiKeyError, hash_key
from core.connections import Connection
from core.keywords import KeywordError
from core.services import Services
from core.storage.models import ApiKey


async def _connection(services: Services) -> str:
    await services.workspaces.ensure("T1")
    row = await Connection.create(id="cnx_1", workspace_id="T1", platform="mailerlite", name="N",
                                  credentials=services.box.seal({}), settings={})
    return row.id


async def test_keyword_rules_bulk_add_list_delete_and_match(services: Services) -> None:
    cnx = await _connection(services)
    rules = await services.keywords.add(cnx, "blacklist", ["spam", "Test", "SPAM"])
    assert [r.keyword for r in rules] == ["spam", "Test", "spam"]  # a repeat returns the existing rule
    assert rules[0].id == rules[2].id
    await services.keywords.add(cnx, "whitelist", ["vip"])
    assert [r.keyword for r in await services.keywords.list(cnx, "blacklist")] == ["spam", "Test"]
    matcher = await services.keywords.matcher(cnx)
    assert matcher.match("test.user@acme.com") == "blacklist"
    assert matcher.match("vip.test@acme.com") == "whitelist"  # the whitelist wins
    assert matcher.match("ann@acme.com") is None
    assert await services.keywords.delete(cnx, "blacklist", rules[0].id)
    assert not await services.keywords.delete(cnx, "blacklist", rules[0].id)
    assert rules[1].public().keys() == {"id", "keyword", "created_at"}
    with pytest.raises(KeywordError):
        await services.keywords.add(cnx, "blacklist", ["  "])


async def test_api_keys_are_stored_hashed_authenticate_and_revoke(services: Services) -> None:
    plaintext, key = await services.api_keys.create("T1", name="CRM sync", roles={"approver"})
    assert plaintext.startswith("lw_") and plaintext not in repr(key)
    row = await ApiKey.get(id=key.id)
    assert row.digest == hash_key(plaintext) and plaintext not in str(await ApiKey.all().values())
    found = await services.api_keys.authenticate(plaintext)
    assert found is not None and found.id == key.id and found.roles == {"approver"}
    assert await services.api_keys.authenticate("lw_wrong") is None
    assert await services.api_keys.revoke(key.id)
    assert await services.api_keys.authenticate(plaintext) is None
    assert not await services.api_keys.revoke(key.id)
    with pytest.raises(ApiKeyError):
        await services.api_keys.create("T1", name="x", roles={"owner"})


async def test_validation_results_by_context_id(services: Services) -> None:
    await services.workspaces.ensure("T1")
    item = {"email": "a@b.c", "contextId": "ctx_1", "result": {"score": 10, "description": []}}
    await services.results.save("T1", [item])
    assert await services.results.get("T1", "ctx_1") == item
    assert await services.results.get("T2", "ctx_1") is None  # another workspace's result is not found
    assert await services.results.prune(timedelta(days=1)) == 0
    assert await services.results.prune(timedelta(seconds=-1)) == 1


async def test_idempotency_replay_and_claim(services: Services) -> None:
    idem = services.idempotency
    assert await idem.replay("connect:T1", "k1") is None
    assert await idem.remember("connect:T1", "k1", 201, {"id": "cnx_1"})
    assert not await idem.remember("connect:T1", "k1", 201, {"id": "cnx_2"})  # the first answer stays
    assert await idem.replay("connect:T1", "k1") == (201, {"id": "cnx_1"})
    assert await idem.claim("slack-event", "Ev1") and not await idem.claim("slack-event", "Ev1")


async def test_platform_oauth_state_is_single_use(services: Services) -> None:
    state = await services.oauth_states.issue("hubspot", workspace_id="T1", user_id="U1", data={"name": "CRM"})
    found = await services.oauth_states.consume(state)
    assert found is not None and found.data == {"name": "CRM"} and found.workspace_id == "T1"
    assert await services.oauth_states.consume(state) is None
    expired = await services.oauth_states.issue("hubspot", workspace_id="T1", ttl=timedelta(seconds=-1))
    assert await services.oauth_states.consume(expired) is None
