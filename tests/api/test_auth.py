"""API keys: every bad or missing key gets exactly CampaignKit's 401 body; keys are stored hashed and
revoking one stops it at once; the approver role is what lets a key approve a cleanup."""

from __future__ import annotations

import pytest

from core.apikeys import hash_key
from core.storage.models import ApiKey

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "Invalid API key"}}
ENDPOINTS = [("POST", "/v1/email/validate"), ("GET", "/v1/email/results/ctx_1"), ("GET", "/v1/integrations"),
             ("GET", "/v1/integrations/klaviyo"), ("POST", "/v1/integrations/klaviyo/connections"),
             ("POST", "/v1/integrations/hubspot/oauth"),
             ("PATCH", "/v1/integrations/klaviyo/connections/cnx_1"),
             ("DELETE", "/v1/integrations/klaviyo/connections/cnx_1"),
             ("GET", "/v1/integrations/klaviyo/connections/cnx_1/whitelist"),
             ("POST", "/v1/jobs"), ("GET", "/v1/jobs/job_1"), ("GET", "/v1/jobs/job_1/results.csv"),
             ("POST", "/v1/jobs/job_1/approve")]
BAD_HEADERS = [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"},
               {"Authorization": "lw_abc"}, {"Authorization": "Bearer lw_" + "x" * 43},
               {"Authorization": "Bearer " + "lw_" + "y" * 5000}, {"Authorization": "Bearer \u00e9\u00e8".encode("latin-1")}]


@pytest.mark.parametrize("method,path", ENDPOINTS)
async def test_every_endpoint_answers_401_without_a_valid_key(api, method, path):
    """Before anything else (even a 404 or a bad body), a request without a valid key is the one 401."""
    for headers in BAD_HEADERS:
        response = await api.client.request(method, path, headers=headers, json={"emails": ["a@b.c"]})
        assert response.status_code == 401, (headers, response.text)
        assert response.json() == UNAUTHORIZED


async def test_a_revoked_key_is_refused_and_the_others_keep_working(api):
    other = await api.new_key("other")
    assert (await api.get("/v1/integrations")).status_code == 200
    [key] = [k for k in await api.services.api_keys.list("W1") if k.name == "main"]
    assert await api.services.api_keys.revoke(key.id)
    refused = await api.get("/v1/integrations")
    assert refused.status_code == 401 and refused.json() == UNAUTHORIZED
    assert (await api.get("/v1/integrations", other)).status_code == 200


async def test_keys_are_stored_only_as_digests(api):
    rows = await ApiKey.all().values()
    assert rows and all(api.key not in str(row) for row in rows)
    assert any(row["digest"] == hash_key(api.key) for row in rows)


async def test_the_key_is_never_echoed_in_any_error(api):
    response = await api.client.post("/v1/email/validate", content=b"{not json", headers={
        **api.auth(), "Content-Type": "application/json"})
    assert response.status_code == 400 and api.key not in response.text


async def test_each_workspace_sees_only_its_own_results(api):
    """A contextId minted for one workspace's key is a 404 for another workspace's key."""
    outsider = await api.new_key("outsider", workspace="W2")
    item = (await api.post("/v1/email/validate", {"emails": ["ann@acme.example"]})).json()["results"][0]
    hidden = await api.get(f"/v1/email/results/{item['contextId']}", outsider)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
