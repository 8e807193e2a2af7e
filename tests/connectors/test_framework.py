"""The shared connector framework (http.py, base.py, polling.py, webhook_auth.py), against a toy platform on loopback.

The eight platform suites prove each connector; these prove the mechanisms they now share, so a
new platform can rely on them: limits (sliding windows, endpoint limits, in-flight caps, pauses),
429 policy hooks, credential hooks, downloads without our auth header, job polling, the schema.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.connectors import platforms
from core.connectors.base import (
    AccountInfo,
    Capabilities,
    Connector,
    Contact,
    CredentialField,
    PlatformList,
    WebhookRegistration,
)
from core.connectors.errors import (
    ConnectorError,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
    RateLimited,
)
from core.connectors.http import (
    PlatformHttp,
    RateLimit,
    SlidingWindow,
    TokenBucket,
    retry_after_seconds,
    spent_window_seconds,
)
from core.connectors.polling import poll
from core.connectors.webhook_auth import choose_secret, token_matches, with_url_token
from tests.emulators.contract import (
    ContractViolations,
    SpecRouter,
    load_document,
    reduce_document,
)
from tests.emulators.server import serve


# --- a toy platform -----------------------------------------------------------------------------
class ToyState:
    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.counters: Counter = Counter()
        self.reply_headers: dict[str, str] = {}
        self.status_queue: list[tuple[int, dict[str, str], dict]] = []
        self.file = bytes(range(256)) * 2000  # 512,000 bytes
        self.drop_after: int | None = None  # the next download dies after this many bytes
        self.auth_seen: list[str | None] = []


def toy_app(state: ToyState) -> Starlette:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        state.arrivals.setdefault(name, []).append(time.monotonic())
        state.auth_seen.append(request.headers.get("authorization"))
        if state.status_queue:
            status, headers, body = state.status_queue.pop(0)
            return JSONResponse(body, status, headers=headers)
        if name == "renew" and request.headers.get("authorization") != "Bearer fresh":
            return JSONResponse({"category": "EXPIRED"}, 401)
        if name == "slow":
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            await asyncio.sleep(0.1)
            state.in_flight -= 1
        return JSONResponse({"ok": name}, headers=state.reply_headers)

    async def download(request: Request) -> Response:
        state.counters["downloads"] += 1
        state.auth_seen.append(request.headers.get("authorization"))
        if state.status_queue:
            status, headers, body = state.status_queue.pop(0)
            return JSONResponse(body, status, headers=headers)
        breaking, state.drop_after = state.drop_after, None

        def body():
            sent = 0
            for start in range(0, len(state.file), 8192):
                if breaking is not None and sent >= breaking:
                    raise ConnectionResetError("emulated transfer failure")
                chunk = state.file[start : start + 8192]
                sent += len(chunk)
                yield chunk

        return StreamingResponse(body(), media_type="application/octet-stream")

    return Starlette(routes=[Route("/api/{name}", endpoint), Route("/files/export.bin", download)])


class Toy(Connector):
    """Not registered: a platform that exists only here."""

    slug = "toy"
    display_name = "Toy"
    credential_fields = (
        CredentialField("api_key", "API key", "Settings > API"),
        CredentialField("region", "Region", "Where the account lives.", secret=False, required=False,
                        choices=(("global", "Global"), ("eu", "EU")), default="global"),
    )
    stored_keys = ("account_code",)
    capabilities = Capabilities()
    default_base_url = "https://api.toy.example"
    rate_limit = None
    endpoint_limits: ClassVar[Mapping[str, Any]] = {"slow": RateLimit(2, 0.5, sliding=True)}

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.token = "stale"
        self.renewals = 0

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def limits_for(self, method: str, path: str, params: Mapping[str, Any] | None) -> tuple[str, ...]:
        return ("slow",) if path.endswith("api/limited") else ()

    async def on_unauthorized(self, response: httpx.Response) -> bool:
        self.renewals += 1
        if self.options.get("can_renew", True):
            self.token = "fresh"
            return True
        return False

    def retry_after(self, response: httpx.Response) -> float | ConnectorError | None:
        policy = response.headers.get("x-policy")
        if policy == "daily":
            return RateLimited("Toy's daily limit is spent; try again tomorrow.", platform=self.slug)
        if policy == "short":
            return 0.05
        return None

    async def check_credentials(self) -> AccountInfo:
        await self.http.request("GET", "api/me")
        return AccountInfo(account_id=None)

    async def lists(self) -> list[PlatformList]:
        return [PlatformList("1", "One", "list", 7), PlatformList("2", "Two", "list", None)]

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        yield Contact("1", "a@b.c")


@pytest.fixture
def toy():
    state = ToyState()
    with serve(toy_app(state)) as server:
        yield state, server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def make(server, client, **options) -> Toy:
    connector = Toy({"api_key": "k-123"}, base_url=server.url, options=options)
    connector.http = PlatformHttp(connector, client=client, backoff_base=0.01, max_retries=3)
    return connector


def reply(headers: dict[str, str], status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", "https://x"))


# --- header arithmetic ---------------------------------------------------------------------------
def test_a_reset_in_the_past_waits_zero_and_never_adds_tokens():
    """X-RateLimit-Reset already past gives 0, not a negative wait; pausing by a negative amount
    neither adds tokens nor shortens a pause already in force."""
    assert retry_after_seconds(reply({"x-ratelimit-reset": str(int(time.time()) - 30)})) == 0.0
    assert retry_after_seconds(reply({"ratelimit-reset": "-4"})) == 0.0
    assert retry_after_seconds(reply({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(reply({"retry-after": "not a date"})) is None
    bucket = TokenBucket(RateLimit(10, 1.0))
    bucket.tokens = 2.0
    bucket.pause(-100)
    assert bucket.tokens <= 2.0 and bucket.paused_for() == 0.0
    bucket.pause(5)
    bucket.pause(-100)
    assert bucket.paused_for() > 4.5


def test_remaining_zero_means_wait_for_the_reset():
    assert spent_window_seconds(reply({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})) == 2.0
    assert spent_window_seconds(reply({"x-sib-ratelimit-remaining": "0", "x-sib-ratelimit-reset": "1"})) == 1.0
    assert spent_window_seconds(reply({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "2"})) is None
    assert spent_window_seconds(reply({"x-ratelimit-remaining": "0"})) is None  # no reset: nothing to wait for


def test_sliding_window_never_lets_more_than_its_limit_into_any_window():
    """A bucket whose burst equals its rate sends twice the limit inside one fixed window; the sliding window does not."""
    bucket, window = TokenBucket(RateLimit(5, 1.0)), SlidingWindow(RateLimit(5, 1.0, sliding=True))
    sent_bucket = sent_window = 0
    for _ in range(20):  # a burst of attempts at t=0
        if bucket.wait_time() == 0:
            bucket._take()
            sent_bucket += 1
        if window.wait_time() == 0:
            window._take()
            sent_window += 1
    assert sent_bucket == sent_window == 5
    bucket.updated -= 0.999  # a moment later, still inside the same fixed second for the platform
    bucket._refill()
    assert bucket.wait_time() == 0  # the bucket refilled ~5 tokens: 10 inside one second
    assert window.wait_time() > 0.9  # the window waits until the first send leaves it


# --- limits over real HTTP ------------------------------------------------------------------------
async def test_endpoint_limit_is_a_sliding_window_and_leaves_other_endpoints_alone(toy, client):
    """/api/limited draws on its own 2-per-0.5 s window; /api/free meanwhile is not held up."""
    state, server = toy
    connector = make(server, client)
    started = time.monotonic()
    await asyncio.gather(*(connector.http.request("GET", "api/limited") for _ in range(6)))
    arrivals = state.arrivals["limited"]
    assert time.monotonic() - started >= 1.0
    assert all(b - a >= 0.5 for a, b in zip(arrivals, arrivals[2:], strict=False))  # never 3 within 0.5 s
    started = time.monotonic()
    await asyncio.gather(*(connector.http.request("GET", "api/free") for _ in range(6)))
    assert time.monotonic() - started < 0.5


async def test_in_flight_cap_is_per_account(toy, client):
    """max_in_flight holds the account to that many requests at once, across its connector instances."""
    state, server = toy
    first, second = make(server, client, max_in_flight=2), make(server, client, max_in_flight=2)
    await asyncio.gather(*(c.http.request("GET", "api/slow") for c in (first, second) for _ in range(4)))
    assert state.max_in_flight == 2
    state.max_in_flight = 0
    await asyncio.gather(*(make(server, client).http.request("GET", "api/slow") for _ in range(6)))
    assert state.max_in_flight > 2  # without the cap they overlap


async def test_a_spent_window_holds_the_next_request_until_the_reset(toy, client):
    state, server = toy
    connector = make(server, client)
    state.reply_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.3"}
    await connector.http.request("GET", "api/free")
    state.reply_headers = {}
    await connector.http.request("GET", "api/free")
    first, second = state.arrivals["free"]
    assert second - first >= 0.3


async def test_429_pauses_only_the_endpoint_it_came_from(toy, client):
    """A 429 on a request with an endpoint limit pauses that limit; the account's other calls go on."""
    state, server = toy
    connector = make(server, client)
    state.status_queue = [(429, {"retry-after": "0.4"}, {})]
    started = time.monotonic()
    limited = asyncio.create_task(connector.http.request("GET", "api/limited"))
    await asyncio.sleep(0.1)
    await connector.http.request("GET", "api/free")
    assert time.monotonic() - started < 0.3
    await limited
    assert time.monotonic() - started >= 0.4


async def test_connector_decides_a_429s_wait_or_that_it_is_final(toy, client):
    state, server = toy
    connector = make(server, client)
    state.status_queue = [(429, {"x-policy": "short", "retry-after": "30"}, {})]
    started = time.monotonic()
    await connector.http.request("GET", "api/free")
    assert time.monotonic() - started < 1  # the connector's 0.05 s, not Retry-After's 30 s
    state.status_queue = [(429, {"x-policy": "daily"}, {})] * 3
    with pytest.raises(RateLimited, match="tomorrow"):
        await connector.http.request("GET", "api/free")
    assert len(state.status_queue) == 2  # final: no retries


async def test_a_long_retry_after_is_rate_limited_at_once_with_when(toy, client):
    state, server = toy
    connector = make(server, client)
    state.status_queue = [(429, {"retry-after": "7200"}, {})]
    with pytest.raises(RateLimited) as caught:
        await connector.http.request("GET", "api/free")
    assert "in about 2 hours" in str(caught.value) and caught.value.retry_after == 7200
    sent = len(state.arrivals["free"])
    with pytest.raises(RateLimited):  # the account stays paused without asking again
        await connector.http.request("GET", "api/free")
    assert len(state.arrivals["free"]) == sent


async def test_limits_survive_a_new_event_loop(toy):
    """Limiters are kept per event loop, so a second loop (a new test, a worker) never meets the first one's."""
    state, server = toy

    async def burst() -> None:
        async with httpx.AsyncClient() as client:
            connector = make(server, client)
            await asyncio.gather(*(connector.http.request("GET", "api/limited") for _ in range(3)))

    await burst()
    await asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(burst()))
    assert len(state.arrivals["limited"]) == 6


# --- credential hooks -----------------------------------------------------------------------------
async def test_401_renews_once_and_retries_with_the_new_header(toy, client):
    state, server = toy
    connector = make(server, client)
    response = await connector.http.request("GET", "api/renew")
    assert response.json() == {"ok": "renew"} and connector.renewals == 1
    assert state.auth_seen[-2:] == ["Bearer stale", "Bearer fresh"]
    stuck = make(server, client, can_renew=False)
    with pytest.raises(InvalidCredentials) as caught:
        await stuck.http.request("GET", "api/renew")
    assert stuck.renewals == 1 and "stale" not in str(caught.value)


async def test_before_request_runs_before_every_authenticated_request(toy, client):
    state, server = toy
    connector = make(server, client)
    calls: list[str] = []

    async def before() -> None:
        calls.append(connector.token)
        connector.token = "fresh"

    connector.before_request = before  # type: ignore[method-assign]
    await connector.http.request("GET", "api/renew")
    await connector.http.request("GET", "api/free", auth=False)  # not the API as this account: no hook, no header
    assert calls == ["stale"] and state.auth_seen[-2:] == ["Bearer fresh", None]


async def test_update_credentials_hands_the_whole_set_to_the_caller(toy, client):
    _, server = toy
    saved: list[dict] = []

    async def persist(credentials: dict) -> None:
        saved.append(credentials)

    connector = make(server, client, on_credentials_change=persist)
    await connector.update_credentials({"account_code": "ac-9"})
    assert saved == [{"api_key": "k-123", "region": "global", "account_code": "ac-9"}]
    assert Toy(saved[0]).credentials["account_code"] == "ac-9"  # a declared stored key survives validation


# --- downloads -------------------------------------------------------------------------------------
async def test_stream_without_auth_retries_and_resumes_a_broken_transfer(toy, client):
    """A pre-signed link gets no Authorization header; a 503 is retried; a transfer cut midway is
    reopened and the caller still sees every byte exactly once."""
    state, server = toy
    connector = make(server, client)
    state.status_queue = [(503, {}, {})]
    state.drop_after = 200_000
    received = b"".join([chunk async for chunk in connector.http.stream(f"{server.url}/files/export.bin", auth=False)])
    assert received == state.file and state.counters["downloads"] == 3
    assert state.auth_seen == [None, None, None]


async def test_stream_refuses_plain_http_links_and_says_when_a_link_expired(toy, client):
    state, server = toy
    https_connector = Toy({"api_key": "k-123"})
    with pytest.raises(ConnectorError, match="not https"):
        [c async for c in https_connector.http.stream(f"{server.url}/files/export.bin", auth=False)]
    state.status_queue = [(403, {}, {"error": "AccessDenied"})]
    with pytest.raises(ConnectorError) as caught:
        [c async for c in make(server, client).http.stream(f"{server.url}/files/export.bin", auth=False)]
    assert "may have expired" in str(caught.value) and caught.value.status == 403
    state.status_queue = [(503, {}, {})] * 10
    with pytest.raises(PlatformUnavailable):
        [c async for c in make(server, client).http.stream(f"{server.url}/files/export.bin", auth=False)]


# --- polling ---------------------------------------------------------------------------------------
async def test_poll_checks_at_once_then_backs_off_until_done_or_deadline():
    seen: list[float] = []

    async def job(done_after: int):
        seen.append(time.monotonic())
        return "ready" if len(seen) >= done_after else None

    assert await poll(lambda: job(1), interval=10, timeout=1) == "ready"  # no wait when already done
    seen.clear()
    assert await poll(lambda: job(4), interval=0.02, max_interval=0.08, factor=2, timeout=5) == "ready"
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert gaps[0] >= 0.02 and gaps[2] >= 0.07 and gaps[1] < gaps[2] + 0.05
    seen.clear()
    started = time.monotonic()
    assert await poll(lambda: job(10**6), interval=0.05, timeout=0.2) is None
    assert time.monotonic() - started < 0.3


# --- the schema and the interface -------------------------------------------------------------------
def test_choices_default_and_stored_keys_in_validation():
    assert Toy({"api_key": " k "}).credentials == {"api_key": "k", "region": "global"}
    assert Toy({"api_key": "k", "region": "EU"}).credentials["region"] == "eu"
    with pytest.raises(InvalidConfiguration) as caught:
        Toy({"api_key": "k", "region": "mars"})
    assert str(caught.value) == "Region must be global or eu." and caught.value.field == "region"
    kept = Toy({"api_key": "k", "account_code": "x1", "unknown": "dropped", "expires_in": "60"}).credentials
    assert kept["account_code"] == "x1" and "unknown" not in kept
    assert abs(int(kept["expires_at"]) - (time.time() + 60)) < 5  # a token response's lifetime, as an epoch


async def test_subscriber_count_defaults_to_the_lists_count():
    toy = Toy({"api_key": "k"})
    assert await toy.subscriber_count("1") == 7 and await toy.subscriber_count("2") is None
    with pytest.raises(ListNotFound):
        await toy.subscriber_count("nope")


def test_every_platform_takes_the_connection_secret_and_returns_a_registration():
    """register_webhook(url, list_id, *, secret) -> WebhookRegistration, on all eight platforms."""
    found = platforms()
    assert set(found) >= {"mailchimp", "klaviyo", "hubspot", "brevo", "activecampaign", "mailerlite", "sendgrid", "convertkit"}
    for cls in found.values():
        signature = inspect.signature(cls.register_webhook)
        assert list(signature.parameters)[:3] == ["self", "url", "list_id"], cls.slug
        assert signature.parameters["secret"].kind is inspect.Parameter.KEYWORD_ONLY, cls.slug
        assert "WebhookRegistration" in str(signature.return_annotation), cls.slug
    assert WebhookRegistration.__dataclass_fields__.keys() == {"ids", "secrets", "url"}


def test_url_tokens():
    assert choose_secret("https://x/h?token=abc", None) == "abc"
    assert choose_secret("https://x/h?token=abc", "mine") == "mine"
    assert len(choose_secret("https://x/h", None)) >= 32
    assert with_url_token("https://x/h?a=1&token=old", "new") == "https://x/h?a=1&token=new"
    assert token_matches({"token": "new"}, "new") and not token_matches({"token": "x"}, "new")
    assert not token_matches({"token": ""}, None) and not token_matches({}, "")


# --- contract loading ---------------------------------------------------------------------------------
def test_published_specs_load_as_dicts_and_reduce():
    brevo = load_document("brevo.yaml")
    assert all(isinstance(code, str) for op in brevo["paths"]["/contacts"].values() if isinstance(op, dict)
               for code in op.get("responses", {}))
    reduced = reduce_document(load_document("klaviyo.json"), {"/api/lists": ["get"]})
    assert list(reduced["paths"]) == ["/api/lists"] and reduced["components"]["schemas"]


async def test_spec_router_flags_a_path_no_spec_has():
    violations = ContractViolations()

    async def app(scope, receive, send):
        await Response("ok")(scope, receive, send)

    router = SpecRouter(app, ["sendgrid-mc-lists.json", "sendgrid-mc-segments.json"], violations,
                        base_url="https://api.sendgrid.com", passthrough=("/files/",))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router), base_url="http://t") as raw:
        await raw.get("/v3/marketing/lists", params={"page_size": 10}, headers={"Authorization": "Bearer SG.x"})
        await raw.get("/files/anything")
        await raw.get("/v3/marketing/nowhere")
    assert violations.checked == 1
    assert len(violations.errors) == 1 and "no spec" in violations.errors[0]


# --- never a traceback ---------------------------------------------------------------------------------
class Buggy(Toy):
    """A connector that trips over a reply it did not expect, everywhere."""

    async def lists(self) -> list[PlatformList]:
        return {}["lists"]  # a KeyError, as a missing field in a reply would give

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        yield Contact("1", "a@b.c")
        raise TypeError("'NoneType' object is not subscriptable")

    def parse_webhook(self, request):
        raise AttributeError("'list' object has no attribute 'get'")

    def authenticate_webhook(self, request, secrets):
        raise ValueError("bad base64")


async def test_unexpected_errors_reach_the_user_as_one_sentence_and_the_log_in_full(caplog):
    buggy = Buggy({"api_key": "k"})
    with pytest.raises(ConnectorError) as caught:
        await buggy.lists()
    assert str(caught.value) == ("Toy answered in a way Listwarden did not expect; try again, and report it if it keeps "
                                 "happening.") and caught.value.__cause__ is None
    assert "KeyError" in caplog.text  # the operator sees what happened
    seen = []
    with pytest.raises(ConnectorError):
        async for contact in buggy.members("1"):
            seen.append(contact)
    assert len(seen) == 1  # what streamed before the failure was delivered
    from core.connectors.errors import WebhookMalformed, WebhookRejected

    with pytest.raises(WebhookMalformed):
        buggy.parse_webhook(None)
    with pytest.raises(WebhookRejected):  # a delivery that cannot be checked is refused, never let through
        buggy.authenticate_webhook(None, None)
    with pytest.raises(ListNotFound):  # our own errors pass untouched
        await Toy({"api_key": "k"}).subscriber_count("nope")


def test_no_platform_can_exceed_its_documented_window():
    """A token bucket lets `burst` through at once and then `rate` more in the same window, so a bucket
    must keep burst + rate * window within the limit; sliding windows are exact by construction."""
    from core.connectors.http import as_limits

    documented = {"activecampaign": (5, 1.0), "mailerlite": (120, 60.0), "hubspot": (100, 10.0), "convertkit": (120, 60.0),
                  "brevo": (10, 1.0), "klaviyo": (75, 1.0), "sendgrid": (10, 1.0)}
    for slug, (most, window) in documented.items():
        for limit in as_limits(platforms()[slug].rate_limit):
            if limit.sliding:
                assert limit.requests <= most or limit.per_seconds > window, slug
                continue
            burst = limit.burst or limit.requests
            assert burst + limit.requests / limit.per_seconds * window <= most, slug
