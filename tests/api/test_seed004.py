"""Seed 004 (CampaignKit validation API): every example request and response, field for field.

The example request goes over HTTP to the app, whose verifier talks to loopback DNS and SMTP
servers built to match the example's situations: a mailbox that exists on a server answering
"250 OK", a domain with no mail route. The third example (admin@company.com: a role address,
mailbox "n/a", smtpResponse "", score 5, still charged) is a verifier answer that Listwarden's
status table does not give for a live server: a role mailbox whose server cannot be checked is
"unknown" there (and refunded, seed 000). So that item is checked twice: its documented JSON
from the verifier's result type through the same mapping the endpoint uses, and its live
answer over HTTP against a server that refuses to answer verifiers, where what must hold is the
shape and the refund.
"""

from __future__ import annotations

import pytest

from api.campaignkit import result_object
from core.verify.result import Result
from core.verify.status import Classifier, Status

EXAMPLE_REQUEST = {"emails": ["valid@example.com", "invalid@fake-domain.xyz", "admin@company.com"]}
EXAMPLE_RESPONSE = {
    "creditsUsed": 3,
    "results": [
        {"email": "valid@example.com", "contextId": "ctx_abc123",
         "result": {"syntax": "pass", "mx": "pass", "mailbox": "pass", "score": 10, "classifier": "valid",
                    "description": [], "smtpResponse": "250 OK"}},
        {"email": "invalid@fake-domain.xyz", "contextId": "ctx_def456",
         "result": {"syntax": "pass", "mx": "fail", "mailbox": "n/a", "score": 0, "classifier": "invalid",
                    "description": ["invalid_mx"], "smtpResponse": ""}},
        {"email": "admin@company.com", "contextId": "ctx_ghi789",
         "result": {"syntax": "pass", "mx": "pass", "mailbox": "n/a", "score": 5, "classifier": "risky",
                    "description": ["role_email"], "smtpResponse": ""}},
    ],
}
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "Invalid API key"}}
BAD_REQUEST = {"error": {"code": "invalid_request", "message": "The 'emails' field is required and must be an array"}}
RATE_LIMITED = {"error": {"code": "rate_limit_exceeded",
                          "message": "Rate limit exceeded. Please wait before making more requests"}}


def without_context_ids(body: dict) -> dict:
    return {**body, "results": [{k: v for k, v in item.items() if k != "contextId"} for item in body["results"]]}


async def test_the_example_request_gets_the_example_response(api):
    """Over HTTP with the real verifier: the first two results are the example's, field for field; the
    contextIds are ours to mint (ctx_...), and each fetches its result again."""
    response = await api.post("/v1/email/validate", EXAMPLE_REQUEST)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["email"] for r in body["results"]] == EXAMPLE_REQUEST["emails"]
    assert all(r["contextId"].startswith("ctx_") for r in body["results"])
    expected = without_context_ids(EXAMPLE_RESPONSE)["results"]
    got = without_context_ids(body)["results"]
    assert got[:2] == expected[:2]
    # admin@company.com: the server refuses verifiers, so the role mailbox cannot be checked
    admin = got[2]["result"]
    assert {k: admin[k] for k in ("syntax", "mx", "mailbox", "classifier")} == {
        "syntax": "pass", "mx": "pass", "mailbox": "n/a", "classifier": "risky"}
    assert "role_email" in admin["description"] and 4 <= admin["score"] <= 5
    assert body["creditsUsed"] == 2  # the unknown answer is refunded (seed 000); the example charged it
    for item in body["results"]:
        again = await api.get(f"/v1/email/results/{item['contextId']}")
        assert again.status_code == 200 and again.json() == item


@pytest.mark.parametrize("example", EXAMPLE_RESPONSE["results"], ids=lambda e: e["email"])
def test_each_example_result_is_what_the_mapping_gives_for_that_verifier_answer(example):
    """The endpoint turns a verifier Result into the result object; for the example's three answers
    that object is the documented one, field for field."""
    answers = {
        "valid@example.com": Result("valid@example.com", "valid@example.com", Status.VALID, 10, Classifier.VALID,
                                    (), "pass", "pass", "pass", 250, "OK"),
        "invalid@fake-domain.xyz": Result("invalid@fake-domain.xyz", "invalid@fake-domain.xyz", Status.INVALID, 0,
                                          Classifier.INVALID, ("invalid_mx",), "pass", "fail", "n/a"),
        "admin@company.com": Result("admin@company.com", "admin@company.com", Status.RISKY, 5, Classifier.RISKY,
                                    ("role_email",), "pass", "pass", "n/a"),
    }
    assert result_object(answers[example["email"]]) == example["result"]


async def test_two_addresses_use_two_credits(api):
    """The seed's credits example: validateEmails(['email1@example.com', 'email2@example.com']) -> 2."""
    before = await api.balance()
    body = (await api.post("/v1/email/validate", {"emails": ["email1@example.com", "email2@example.com"]})).json()
    assert body["creditsUsed"] == 2 and await api.balance() == before - 2


async def test_the_code_examples_single_address(api):
    """The JavaScript, Python and PHP examples send ['test@example.com'] and read classifier and score."""
    body = (await api.post("/v1/email/validate", {"emails": ["test@example.com"]})).json()
    assert body["creditsUsed"] == 1
    [item] = body["results"]
    assert item["email"] == "test@example.com"
    # what the examples print: "test@example.com: risky (Score: 6/10)" (test@ is a role mailbox)
    assert (item["result"]["classifier"], item["result"]["score"]) == ("risky", 6)
    assert "role_email" in item["result"]["description"]


async def test_duplicates_are_charged_once(api):
    """"Duplicate emails in the same request are deduplicated automatically and only consume one credit"."""
    body = (await api.post("/v1/email/validate", {"emails": ["email1@example.com", "EMAIL1@example.com",
                                                            "email1@example.com"]})).json()
    assert body["creditsUsed"] == 1 and len(body["results"]) == 1


async def test_documented_error_bodies(api):
    """401, 400 and 429 bodies exactly as the seed prints them."""
    unauthorized = await api.client.post("/v1/email/validate", json=EXAMPLE_REQUEST,
                                         headers={"Authorization": "Bearer YOUR_API_KEY"})
    assert unauthorized.status_code == 401 and unauthorized.json() == UNAUTHORIZED
    missing = await api.client.post("/v1/email/validate", json=EXAMPLE_REQUEST)
    assert missing.status_code == 401 and missing.json() == UNAUTHORIZED
    bad = await api.post("/v1/email/validate", {})
    assert bad.status_code == 400 and bad.json() == BAD_REQUEST


async def test_documented_rate_limit_body(make_api, world):
    async with make_api(world=world, LISTWARDEN_API_RATE_PER_MINUTE=1) as api:
        assert (await api.post("/v1/email/validate", {"emails": ["email1@example.com"]})).status_code == 200
        limited = await api.post("/v1/email/validate", EXAMPLE_REQUEST)
        assert limited.status_code == 429 and limited.json() == RATE_LIMITED
        assert int(limited.headers["Retry-After"]) >= 1
