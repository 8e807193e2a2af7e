"""POST /v1/email/validate: dedupe, credits, refunds, rate limits and every kind of bad input.

The verifier is the real one, aimed at the loopback mail servers of conftest.build_world; the
SMTP host's counters show what was (not) verified. Addresses are unique per test because the
verifier remembers recent answers.
"""

from __future__ import annotations

import json

import pytest

from core.storage.models import ValidationResult

REQUIRED = {"error": {"code": "invalid_request", "message": "The 'emails' field is required and must be an array"}}


def example_host(world):
    return next(h for h in world.hosts if h.name == "mx.example.com")


async def test_duplicates_are_verified_and_charged_once(api, world):
    """Case and surrounding spaces do not make a new address: one RCPT and one credit each, first spelling kept."""
    before_rcpt, before = example_host(world).stats.rcpt, await api.balance()
    body = (await api.post("/v1/email/validate", {"emails": ["user1@example.com", "USER1@Example.com",
                                                            " user1@example.com ", "user2@example.com"]})).json()
    assert body["creditsUsed"] == 2
    assert [r["email"] for r in body["results"]] == ["user1@example.com", "user2@example.com"]
    assert await api.balance() == before - 2
    assert example_host(world).stats.rcpt - before_rcpt <= 3  # two addresses (and at most one catch-all probe)


@pytest.mark.parametrize("body", [{}, {"emails": "a@b.c"}, {"emails": None}, {"emails": {"a": 1}}, {"emails": 5}])
async def test_missing_or_non_array_emails_is_the_documented_400(api, body):
    response = await api.post("/v1/email/validate", body)
    assert response.status_code == 400 and response.json() == REQUIRED


@pytest.mark.parametrize("emails,fragment", [([], "at least 1"), ([f"u{i}@example.com" for i in range(101)], "at most 100"),
                                              (["a@example.com", 5], "Item 1"), ([None], "Item 0"), ([True], "Item 0"),
                                              ([["a@example.com"]], "Item 0"), (["x" * 400], "longer than")])
async def test_bad_email_arrays_are_400_and_charge_nothing(api, emails, fragment):
    before = await api.balance()
    response = await api.post("/v1/email/validate", {"emails": emails})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"] and error["field"] == "emails"
    assert await api.balance() == before


async def test_exactly_100_emails_are_accepted(api):
    emails = [f"user{i}@example.com" for i in range(100, 200)]
    response = await api.post("/v1/email/validate", {"emails": emails})
    assert response.status_code == 200 and response.json()["creditsUsed"] == 100
    assert {r["result"]["classifier"] for r in response.json()["results"]} == {"valid"}
    assert await ValidationResult.filter(workspace_id="W1").count() == 100  # each one fetchable by its contextId


async def test_unicode_addresses_round_trip(api):
    emails = ["jos\u00e9@b\u00fccher.example", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "\U0001f600@acme.example"]
    response = await api.post("/v1/email/validate", {"emails": emails})
    assert response.status_code == 200
    assert [r["email"] for r in response.json()["results"]] == emails


async def test_unknown_fields_are_refused(api):
    response = await api.post("/v1/email/validate", {"emails": ["a@example.com"], "mode": "fast"})
    assert response.status_code == 400 and response.json()["error"]["field"] == "mode"


@pytest.mark.parametrize("content,ctype,status,code", [
    (b"{nope", "application/json", 400, "invalid_request"),
    (b"", "application/json", 400, "invalid_request"),
    (b"\xff\xfe", "application/json", 400, "invalid_request"),
    (b'["a@b.c"]', "application/json", 400, "invalid_request"),
    (b'"emails"', "application/json", 400, "invalid_request"),
    (b'{"emails":["a@b.c"]}', "text/plain", 415, "unsupported_media_type"),
    (b'{"emails":["a@b.c"]}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"emails":["a@b.c"]}', "", 415, "unsupported_media_type"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "invalid_request"),
    (b'{"emails":["\\ud800@example.com"]}', "application/json", 400, "invalid_request"),
    (b'{"emails":[1e999999]}', "application/json", 400, "invalid_request"),
    (b'{"emails":["a@example.com"],"emails":7}', "application/json", 400, "invalid_request"),
])
async def test_malformed_bodies_get_the_error_shape_never_a_500(api, content, ctype, status, code):
    headers = {**api.auth(), "Content-Type": ctype} if ctype else api.auth()
    before = await api.balance()
    response = await api.client.post("/v1/email/validate", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code and "Traceback" not in response.text
    assert await api.balance() == before


async def test_json_with_a_charset_or_a_json_suffix_is_fine(api):
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"):
        response = await api.client.post("/v1/email/validate", content=b'{"emails":["ann@acme.example"]}',
                                         headers={**api.auth(), "Content-Type": ctype})
        assert response.status_code == 200, (ctype, response.text)


async def test_huge_bodies_are_413_even_when_streamed_without_a_length(api):
    big = json.dumps({"emails": ["a" * 1000 + "@example.com"] * 1100}).encode()
    response = await api.client.post("/v1/email/validate", content=big, headers={**api.auth(),
                                                                                 "Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(40):
            yield b" " * 65536

    streamed = await api.client.post("/v1/email/validate", content=chunks(), headers={
        **api.auth(), "Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "payload_too_large"


async def test_out_of_credits_is_402_with_the_shortfall_and_verifies_nothing(make_api, world):
    async with make_api(world=world, credits=2) as api:
        before_rcpt = example_host(world).stats.rcpt
        response = await api.post("/v1/email/validate", {"emails": ["user3@example.com", "user4@example.com",
                                                                   "user5@example.com"]})
        assert response.status_code == 402
        error = response.json()["error"]
        assert (error["code"], error["needed"], error["balance"], error["shortfall"]) == ("insufficient_credits", 3, 2, 1)
        assert example_host(world).stats.rcpt == before_rcpt and await api.balance() == 2


async def test_unknown_results_are_refunded(api):
    """A server that will not say whether a mailbox exists gives "unknown": the credit comes back (seed 000)."""
    before = await api.balance()
    body = (await api.post("/v1/email/validate", {"emails": ["kim@company.com", "ann@acme.example"]})).json()
    statuses = [r["result"]["classifier"] for r in body["results"]]
    assert statuses == ["risky", "valid"]
    assert body["creditsUsed"] == 1 and await api.balance() == before - 1


async def test_per_key_rate_limit_is_429_with_retry_after(make_api, world):
    """3 a minute: a burst of 3, then 429 with the seconds until the next token (20); other keys are unaffected."""
    async with make_api(world=world, LISTWARDEN_API_RATE_PER_MINUTE=3) as api:
        codes = [(await api.get("/v1/integrations")).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = await api.get("/v1/integrations")
        assert limited.json() == {"error": {"code": "rate_limit_exceeded",
                                            "message": "Rate limit exceeded. Please wait before making more requests"}}
        assert 19 <= int(limited.headers["Retry-After"]) <= 20
        other = await api.new_key("other")
        assert (await api.get("/v1/integrations", other)).status_code == 200


async def test_unknown_paths_and_methods_answer_in_the_error_shape(api):
    missing = await api.get("/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    newline = await api.get("/v1/nope%0Aagain")
    assert newline.status_code == 404 and newline.json()["error"]["code"] == "not_found"
    wrong = await api.get("/v1/email/validate")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"
