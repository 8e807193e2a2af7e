"""HubSpot CRM v3 emulator, after developers.hubspot.com and HubSpot's public spec collection.

HubSpot's specs are not licensed for use here, so instead of ContractMiddleware the handlers
check each request against the documented shape themselves and record every mismatch, every
unknown route and every write to a contact property in `violations`.

Bearer tokens: private-app tokens with fixed scopes (full, read-only, and "starter" without the
Marketing Hub Enterprise batch scopes), plus OAuth access tokens issued by `/oauth/v1/token`
that expire. Errors use HubSpot's body `{"status":"error","message","correlationId","category"}`;
every reply carries `X-HubSpot-RateLimit-*`, and an enforced limit answers 429 with `policyName`.
Members of the main list are generated lazily from their id (`member{n}@example.com`, contact
id 1001+n), so 100,000 cost only the changes made. Subscription state is kept per email
address, as HubSpot does, and shows in the read-only `hs_email_optout` property.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets as pysecrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractViolations
from tests.emulators.faults import FaultMiddleware, FaultPlan

GOOD_TOKEN = "pat-na1-11111111-2222-4333-8444-555555555555"
READ_ONLY_TOKEN = "pat-na1-22222222-3333-4444-8555-666666666666"
STARTER_TOKEN = "pat-eu1-33333333-4444-4555-8666-777777777777"  # no Marketing Hub Enterprise batch scopes
WRONG_TOKEN = "pat-na1-99999999-9999-4999-8999-999999999999"
CLIENT_ID = "emu-client-id"
CLIENT_SECRET = "emu-client-secret-0000-1111"  # also the app secret that signs webhooks
PORTAL_ID = 62515
BASE_ID = 1001  # contact id of member0
MAIN_LIST, ACTIVE_LIST, SNAPSHOT_LIST, COMPANY_LIST = "11", "12", "13", "14"

READ = {"crm.objects.contacts.read", "crm.lists.read", "subscriptions-status-read"}
WRITE = {"crm.objects.contacts.write", "subscriptions-status-write"}
BATCH = {"subscription-status-batch-read", "subscription-status-batch-write"}
SCOPES = {GOOD_TOKEN: READ | WRITE | BATCH, READ_ONLY_TOKEN: set(READ), STARTER_TOKEN: READ | WRITE}
DEFINITIONS = ((101, "Marketing Information"), (102, "One to One"))


def iso(at: float | None = None) -> str:
    return datetime.fromtimestamp(at or time.time(), tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return JSONResponse(body, status)


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> int | None:
    try:
        return int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class OAuthToken:
    scopes: set[str]
    expires_at: float


@dataclass
class HSState:
    members: int
    lists: dict[str, dict] = field(default_factory=lambda: {
        MAIN_LIST: {"name": "Newsletter", "processingType": "MANUAL", "objectTypeId": "0-1"},
        ACTIVE_LIST: {"name": "Engaged (every third member)", "processingType": "DYNAMIC", "objectTypeId": "0-1"},
        SNAPSHOT_LIST: {"name": "Webinar snapshot", "processingType": "SNAPSHOT", "objectTypeId": "0-1"},
        COMPANY_LIST: {"name": "Target companies", "processingType": "DYNAMIC", "objectTypeId": "0-2"},
    })
    extra: dict[int, str | None] = field(default_factory=dict)  # contacts added after build (email may be None)
    extra_lists: dict[int, set[str]] = field(default_factory=dict)
    archived: set[int] = field(default_factory=set)
    opted_out: set[str] = field(default_factory=set)  # lower-case emails opted out of all email
    tokens: dict[str, OAuthToken] = field(default_factory=dict)
    refresh: dict[str, set[str]] = field(default_factory=dict)  # live refresh tokens -> scopes
    refresh_delay: float = 0.0  # seconds the token endpoint takes (to provoke concurrent refreshes)
    no_email_contact: int = 0  # a main-list member without an email address

    # --- model ---------------------------------------------------------------------------
    def exists(self, cid: int) -> bool:
        if cid in self.archived:
            return False
        return cid in self.extra or BASE_ID <= cid < BASE_ID + self.members

    def email(self, cid: int) -> str | None:
        if not self.exists(cid):
            return None
        return self.extra[cid] if cid in self.extra else f"member{cid - BASE_ID}@example.com"

    def in_list(self, list_id: str, cid: int) -> bool:
        if not self.exists(cid):
            return False
        if cid in self.extra:
            return list_id in self.extra_lists.get(cid, set())
        if list_id == MAIN_LIST:
            return True
        return list_id == ACTIVE_LIST and (cid - BASE_ID) % 3 == 0

    def list_ids_after(self, list_id: str, after: int) -> Iterator[int]:
        """Member ids in ascending order after `after`, lazily."""
        if list_id in (MAIN_LIST, ACTIVE_LIST):
            start = max(BASE_ID, after + 1)
            if list_id == ACTIVE_LIST:
                start += (-(start - BASE_ID)) % 3
            for cid in range(start, BASE_ID + self.members, 3 if list_id == ACTIVE_LIST else 1):
                if cid not in self.archived:
                    yield cid
        for cid in sorted(self.extra):
            if cid > after and self.in_list(list_id, cid):
                yield cid

    def list_size(self, list_id: str) -> int:
        base = 0
        if list_id == MAIN_LIST:
            base = self.members
        elif list_id == ACTIVE_LIST:
            base = (self.members + 2) // 3
        base -= sum(1 for cid in self.archived if cid not in self.extra and BASE_ID <= cid < BASE_ID + self.members
                    and (list_id == MAIN_LIST or (list_id == ACTIVE_LIST and (cid - BASE_ID) % 3 == 0)))
        return base + sum(1 for cid in self.extra if self.in_list(list_id, cid))

    def all_ids_after(self, after: int) -> Iterator[int]:
        for cid in range(max(BASE_ID, after + 1), BASE_ID + self.members):
            if cid not in self.archived:
                yield cid
        for cid in sorted(self.extra):
            if cid > after and self.exists(cid):
                yield cid

    def total_contacts(self) -> int:
        return self.members + len(self.extra) - len(self.archived)

    def find(self, email: str) -> int | None:
        email = email.lower()
        for cid, known in self.extra.items():
            if known and known.lower() == email and self.exists(cid):
                return cid
        number = email.removeprefix("member").removesuffix("@example.com")
        if number.isdigit() and self.exists(BASE_ID + int(number)) and BASE_ID + int(number) not in self.extra:
            return BASE_ID + int(number)
        return None

    def add_contact(self, email: str | None, lists: set[str]) -> int:
        cid = max([BASE_ID + self.members - 1, *self.extra]) + 1
        self.extra[cid] = email
        self.extra_lists[cid] = set(lists)
        return cid

    # --- OAuth ---------------------------------------------------------------------------
    def issue_oauth(self, scopes: set[str] | None = None, lifetime: float = 1800) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair, as the authorization-code exchange would give."""
        access, refresh = f"CNT{pysecrets.token_urlsafe(24)}", f"na1-{uuid.uuid4()}"
        granted = set(scopes if scopes is not None else READ | WRITE | BATCH)
        self.tokens[access] = OAuthToken(granted, time.time() + lifetime)
        self.refresh[refresh] = granted
        return access, refresh

    def expire(self, access_token: str) -> None:
        self.tokens[access_token].expires_at = time.time() - 5


def contact_json(cid: int, email: str | None, properties: list[str], opted_out: bool) -> dict:
    stamp = "2024-05-01T10:00:00.000Z"
    values = {"hs_object_id": str(cid), "createdate": stamp, "lastmodifieddate": stamp}
    for name in properties:
        if name == "email":
            values["email"] = email
        elif name == "hs_email_optout":
            values["hs_email_optout"] = "true" if opted_out else "false"
        else:
            values.setdefault(name, None)
    return {"id": str(cid), "properties": values, "createdAt": stamp, "updatedAt": stamp, "archived": False}


class RateLimitMiddleware:
    """Counts requests per token in HubSpot's rolling window, adds X-HubSpot-RateLimit-* headers, and
    (when `enforce`) answers 429 TEN_SECONDLY_ROLLING once the window is full."""

    def __init__(self, app: ASGIApp, counters: Counter, *, limit: int, interval_ms: int, enforce: bool) -> None:
        self.app, self.counters = app, counters
        self.limit, self.interval, self.enforce = limit, interval_ms / 1000, enforce
        self.windows: dict[bytes, deque[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.counters["requests"] += 1
        token = dict(scope["headers"]).get(b"authorization", b"")
        window = self.windows.setdefault(token, deque())
        now = time.monotonic()
        while window and now - window[0] > self.interval:
            window.popleft()
        headers = [] if scope["path"].endswith("/search") and "objects" in scope["path"] else [
            (b"x-hubspot-ratelimit-max", str(self.limit).encode()),
            (b"x-hubspot-ratelimit-remaining", str(max(0, self.limit - len(window) - 1)).encode()),
            (b"x-hubspot-ratelimit-interval-milliseconds", str(int(self.interval * 1000)).encode()),
            (b"x-hubspot-ratelimit-daily", b"250000"),
            (b"x-hubspot-ratelimit-daily-remaining", b"249000"),
        ]  # search endpoints do not send the standard headers
        if self.enforce and len(window) >= self.limit and scope["path"] != "/oauth/v1/token":
            self.counters["429"] += 1
            response = JSONResponse({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                                     "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                                     "policyName": "TEN_SECONDLY_ROLLING"}, 429)
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return
        window.append(now)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, with_headers)


def build(*, members: int = 0, seed: int = 0, lists: int = 0, enforce_rate_limit: bool = False,
          rate_limit: int = 100, rate_interval_ms: int = 10_000) -> Emulator:
    """`lists` adds that many empty static contact lists (to page the list search); the rate-limit
    arguments make the emulator itself answer 429 once a token exceeds `rate_limit` per interval."""
    state = HSState(members=members)
    for i in range(lists):
        state.lists[str(1000 + i)] = {"name": f"Imported list {i}", "processingType": "MANUAL", "objectTypeId": "0-1"}
    state.no_email_contact = state.add_contact(None, {MAIN_LIST})  # HubSpot contacts need not have an email
    counters: Counter = Counter()
    violations = ContractViolations()

    def violation(request: Request, detail: str) -> None:
        violations.errors.append(f"{request.method} {request.url.path}: {detail}")

    def authorize(request: Request, *needed: str) -> JSONResponse | None:
        """None if the bearer token is live and has one of `needed` (all read scopes if empty)."""
        violations.checked += 1
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token in SCOPES:
            scopes = SCOPES[token]
        elif token in state.tokens:
            grant = state.tokens[token]
            if grant.expires_at <= time.time():
                ago = int(time.time() - grant.expires_at)
                return error(401, "EXPIRED_AUTHENTICATION", f"The OAuth token used to make this call expired {ago} second(s) ago.",
                             context={"expire time": [iso(grant.expires_at)]})
            scopes = grant.scopes
        else:
            return error(401, "INVALID_AUTHENTICATION",
                         "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
                         "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
        if needed and not scopes & set(needed):
            return error(403, "MISSING_SCOPES",
                         "This app hasn't been granted all required scopes to make this call. Read more about required "
                         "scopes here: https://developers.hubspot.com/scopes.",
                         errors=[{"message": "One or more of the following scopes are required.",
                                  "context": {"requiredGranularScopes": list(needed)}}],
                         links={"scopes": "https://developers.hubspot.com/scopes"})
        return None

    async def json_body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            violation(request, "body is not JSON")
            return None

    def invalid(request: Request, detail: str) -> JSONResponse:
        violation(request, detail)
        return error(400, "VALIDATION_ERROR", f"Invalid input JSON: {detail}")

    # --- contacts ----------------------------------------------------------------------
    async def contacts_page(request: Request) -> Response:
        if (refused := authorize(request, "crm.objects.contacts.read")) is not None:
            return refused
        query = request.query_params
        limit = int(query.get("limit", 10))
        if not 1 <= limit <= 100:
            return invalid(request, f"limit {limit} is outside 1..100")
        after = int(query["after"]) if query.get("after", "").isdigit() else 0
        properties = [p for p in query.get("properties", "").split(",") if p]
        page: list[dict] = []
        last = None
        for cid in state.all_ids_after(after):
            if len(page) == limit:
                last = page[-1]["id"]
                break
            email = state.email(cid)
            page.append(contact_json(cid, email, properties, bool(email) and email.lower() in state.opted_out))
        body: dict[str, Any] = {"results": page}
        if last is not None:
            body["paging"] = {"next": {"after": last, "link": f"{request.url.path}?after={last}"}}
        return JSONResponse(body)

    async def contacts_search(request: Request) -> Response:
        if (refused := authorize(request, "crm.objects.contacts.read")) is not None:
            return refused
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("limit", 10), int) or body.get("limit", 10) > 200:
            return invalid(request, "search body must be an object with limit <= 200")
        unknown = set(body) - {"filterGroups", "sorts", "query", "properties", "limit", "after"}
        if unknown:
            return invalid(request, f"unknown search fields {sorted(unknown)}")
        first = next(state.all_ids_after(0), None)
        results = [contact_json(first, state.email(first), body.get("properties") or [], False)] if first and body.get("limit", 10) else []
        return JSONResponse({"total": state.total_contacts(), "results": results})

    async def one_contact(request: Request) -> Response:
        if request.method != "GET":
            violation(request, "a contact's properties were written (only subscription state may change)")
            return error(400, "VALIDATION_ERROR", "Listwarden must not write contact properties.")
        if (refused := authorize(request, "crm.objects.contacts.read")) is not None:
            return refused
        raw = request.path_params["id"]
        cid = int(raw) if raw.isdigit() else -1
        if not state.exists(cid):
            return error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [raw]})
        email = state.email(cid)
        properties = [p for p in request.query_params.get("properties", "").split(",") if p]
        return JSONResponse(contact_json(cid, email, properties, bool(email) and email.lower() in state.opted_out))

    async def batch_read(request: Request) -> Response:
        if (refused := authorize(request, "crm.objects.contacts.read")) is not None:
            return refused
        counters["batch_reads"] += 1
        body = await json_body(request)
        if not isinstance(body, dict) or any(k not in body for k in ("inputs", "properties", "propertiesWithHistory")):
            return invalid(request, "batch read needs inputs, properties and propertiesWithHistory")
        inputs = body["inputs"]
        if not isinstance(inputs, list) or len(inputs) > 100 or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in inputs):
            return invalid(request, "inputs must be at most 100 objects with a string id")
        results, missing = [], []
        for item in inputs:
            cid = int(item["id"]) if item["id"].isdigit() else -1
            if state.exists(cid):
                email = state.email(cid)
                results.append(contact_json(cid, email, body["properties"], bool(email) and email.lower() in state.opted_out))
            else:
                missing.append(item["id"])
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(), "completedAt": iso()}
        if missing:
            answer.update(numErrors=1, errors=[{"status": "error", "category": "OBJECT_NOT_FOUND",
                                                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                                                           "Check that ids are valid.", "context": {"ids": missing}}])
            return JSONResponse(answer, 207)
        return JSONResponse(answer)

    async def batch_archive(request: Request) -> Response:
        if (refused := authorize(request, "crm.objects.contacts.write")) is not None:
            return refused
        counters["archive_calls"] += 1
        body = await json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) > 100 or set(body) != {"inputs"} or \
                not all(isinstance(i, dict) and set(i) == {"id"} and isinstance(i["id"], str) for i in inputs):
            return invalid(request, "archive needs only inputs: at most 100 {id} objects")
        for item in inputs:
            cid = int(item["id"]) if item["id"].isdigit() else -1
            if state.exists(cid):  # archiving an archived or unknown id is silently accepted
                state.archived.add(cid)
                counters["deleted"] += 1
        return Response(status_code=204)

    async def gdpr_delete(request: Request) -> Response:
        if (refused := authorize(request, "crm.objects.contacts.write")) is not None:
            return refused
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("objectId"), str) or set(body) - {"objectId", "idProperty"}:
            return invalid(request, "gdpr-delete needs objectId (and optionally idProperty)")
        if body.get("idProperty") == "email":
            violation(request, "gdpr-delete by email puts unknown addresses on HubSpot's block list")
        cid = int(body["objectId"]) if body["objectId"].isdigit() else -1
        if not state.exists(cid):
            return error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [body["objectId"]]})
        state.archived.add(cid)
        counters["deleted"] += 1
        counters["gdpr_deleted"] += 1
        return Response(status_code=204)

    async def contact_writes(request: Request) -> Response:
        violation(request, "contacts were created or their properties written (only subscription state may change)")
        return error(400, "VALIDATION_ERROR", "Listwarden must not write contact properties.")

    # --- lists ---------------------------------------------------------------------------
    def list_json(list_id: str) -> dict:
        meta = state.lists[list_id]
        size = state.list_size(list_id) if meta["objectTypeId"] == "0-1" else 7
        return {"listId": list_id, "name": meta["name"], "objectTypeId": meta["objectTypeId"],
                "processingType": meta["processingType"], "processingStatus": "COMPLETE", "listVersion": 1,
                "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-05-01T00:00:00.000Z", "size": size,
                "additionalProperties": {"hs_list_size": str(size), "hs_last_record_added_at": "1714521600000"}}

    async def lists_search(request: Request) -> Response:
        if (refused := authorize(request, "crm.lists.read")) is not None:
            return refused
        counters["list_searches"] += 1
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("offset"), int) or not isinstance(body.get("additionalProperties"), list):
            return invalid(request, "ListSearchRequest requires offset (integer) and additionalProperties (array)")
        unknown = set(body) - {"offset", "count", "query", "processingTypes", "additionalProperties", "listIds", "sort"}
        count = body.get("count", 20)
        if unknown or not isinstance(count, int) or not 1 <= count <= 500:
            return invalid(request, f"bad search fields {sorted(unknown)} or count {count} outside 1..500")
        wanted = set(body.get("processingTypes") or ("MANUAL", "SNAPSHOT", "DYNAMIC"))
        query = str(body.get("query") or "").lower()
        rows = [lid for lid in sorted(state.lists, key=int)
                if state.lists[lid]["processingType"] in wanted and query in state.lists[lid]["name"].lower()]
        offset = body["offset"]
        page = rows[offset : offset + count]
        lists_out = []
        for lid in page:
            item = list_json(lid)
            item.pop("size")
            props = {k: v for k, v in item["additionalProperties"].items() if k in body["additionalProperties"] or k == "hs_list_size"}
            item["additionalProperties"] = props
            lists_out.append(item)
        return JSONResponse({"lists": lists_out, "offset": offset + len(page), "hasMore": offset + len(page) < len(rows), "total": len(rows)})

    async def one_list(request: Request) -> Response:
        if (refused := authorize(request, "crm.lists.read")) is not None:
            return refused
        list_id = request.path_params["list_id"]
        if list_id not in state.lists:
            return error(404, "OBJECT_NOT_FOUND", f"List does not exist with listId {list_id}")
        return JSONResponse({"list": list_json(list_id)})

    async def memberships(request: Request) -> Response:
        if (refused := authorize(request, "crm.lists.read")) is not None:
            return refused
        list_id = request.path_params["list_id"]
        if list_id not in state.lists:
            return error(404, "OBJECT_NOT_FOUND", f"List does not exist with listId {list_id}")
        counters["membership_pages"] += 1
        limit = int(request.query_params.get("limit", 100))
        if not 1 <= limit <= 250:
            return invalid(request, f"limit {limit} is outside 1..250")
        after_token = request.query_params.get("after")
        after = decode_cursor(after_token) if after_token else 0
        if after is None:
            return invalid(request, "after is not a paging token we issued")
        page: list[int] = []
        more = False
        for cid in state.list_ids_after(list_id, after) if state.lists[list_id]["objectTypeId"] == "0-1" else ():
            if len(page) == limit:
                more = True
                break
            page.append(cid)
        body: dict[str, Any] = {"results": [{"recordId": str(cid), "membershipTimestamp": "2024-05-01T10:00:00.000Z"} for cid in page],
                                "total": state.list_size(list_id)}
        if more:
            token = encode_cursor(page[-1])
            body["paging"] = {"next": {"after": token, "link": f"{request.url.path}?limit={limit}&after={token}"}}
        return JSONResponse(body)

    # --- communication preferences (v4) ----------------------------------------------------
    def statuses(email: str, reason: str) -> list[dict]:
        return [{"channel": "EMAIL", "source": "Listwarden via API", "status": "UNSUBSCRIBED", "subscriberIdString": email,
                 "subscriptionId": sid, "subscriptionName": name, "timestamp": iso(), "setStatusSuccessReason": reason}
                for sid, name in DEFINITIONS]

    def opt_out(email: str) -> str:
        if email.lower() in state.opted_out:
            return "NO_STATUS_CHANGE"
        state.opted_out.add(email.lower())
        counters["unsubscribed"] += 1
        return "UNSUBSCRIBE_FROM_ALL_OCCURRED"

    def channel_ok(request: Request) -> JSONResponse | None:
        if request.query_params.get("channel") != "EMAIL":
            return invalid(request, "query parameter channel=EMAIL is required")
        return None

    async def batch_unsubscribe_all(request: Request) -> Response:
        if (refused := authorize(request, "subscription-status-batch-write")) is not None:
            return refused
        if (bad := channel_ok(request)) is not None:
            return bad
        counters["batch_unsubscribe_calls"] += 1
        body = await json_body(request)
        if not isinstance(body, dict) or set(body) != {"inputs"} or not isinstance(body["inputs"], list) or \
                not all(isinstance(i, str) for i in body["inputs"]):
            return invalid(request, "BatchInputString needs only inputs: an array of strings")
        results, bad_inputs = [], []
        for email in body["inputs"]:
            if "@" not in email:
                bad_inputs.append(email)
                continue
            results.append({"subscriberIdString": email, "statuses": statuses(email, opt_out(email))})
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": iso(), "startedAt": iso(), "completedAt": iso()}
        if bad_inputs:
            answer.update(numErrors=len(bad_inputs), errors=[{"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid email address",
                                                               "context": {"subscriberIdString": bad_inputs}, "errors": [], "links": {}}])
        return JSONResponse(answer)

    async def unsubscribe_all(request: Request) -> Response:
        email = request.path_params["subscriber"]
        if request.method == "GET":
            if (refused := authorize(request, "subscriptions-status-read")) is not None:
                return refused
            wide = [{"channel": "EMAIL", "status": "UNSUBSCRIBED", "subscriberIdString": email, "timestamp": iso(),
                     "wideStatusType": "PORTAL_WIDE"}] if email.lower() in state.opted_out else []
            return JSONResponse({"status": "COMPLETE", "results": wide, "startedAt": iso(), "completedAt": iso()})
        if (refused := authorize(request, "subscriptions-status-write")) is not None:
            return refused
        if (bad := channel_ok(request)) is not None:
            return bad
        counters["unsubscribe_calls"] += 1
        if await request.body():
            violation(request, "unsubscribe-all takes no body")
        if "@" not in email:
            return error(400, "VALIDATION_ERROR", f"{email} is not a valid email address")
        return JSONResponse({"status": "COMPLETE", "results": statuses(email, opt_out(email)), "startedAt": iso(), "completedAt": iso()})

    # --- OAuth token endpoint ------------------------------------------------------------
    async def token(request: Request) -> Response:
        counters["token_requests"] += 1
        form = parse_qs((await request.body()).decode())
        value = lambda name: (form.get(name) or [""])[0]  # noqa: E731
        if value("client_id") != CLIENT_ID or value("client_secret") != CLIENT_SECRET:
            return JSONResponse({"status": "BAD_CLIENT_ID", "message": "missing or unknown client id",
                                 "correlationId": str(uuid.uuid4())}, 400)
        if value("grant_type") != "refresh_token":
            return JSONResponse({"status": "BAD_GRANT_TYPE", "message": "unsupported grant type",
                                 "correlationId": str(uuid.uuid4())}, 400)
        refresh = value("refresh_token")
        if refresh not in state.refresh:
            return JSONResponse({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token",
                                 "correlationId": str(uuid.uuid4())}, 400)
        if state.refresh_delay:
            await asyncio.sleep(state.refresh_delay)
        counters["token_refreshes"] += 1
        access = f"CNT{pysecrets.token_urlsafe(24)}"
        state.tokens[access] = OAuthToken(set(state.refresh[refresh]), time.time() + 1800)
        return JSONResponse({"token_type": "bearer", "refresh_token": refresh, "access_token": access, "expires_in": 1800})

    async def not_found(request: Request, exc: HTTPException) -> Response:
        violation(request, f"no such HubSpot endpoint (HTTP {exc.status_code})")
        return error(exc.status_code, "OBJECT_NOT_FOUND" if exc.status_code == 404 else "VALIDATION_ERROR",
                     f"Unable to route {request.method} {request.url.path}")

    app = Starlette(
        routes=[
            Route("/crm/v3/objects/contacts", contacts_page, methods=["GET"]),
            Route("/crm/v3/objects/contacts", contact_writes, methods=["POST"]),
            Route("/crm/v3/objects/contacts/search", contacts_search, methods=["POST"]),
            Route("/crm/v3/objects/contacts/batch/read", batch_read, methods=["POST"]),
            Route("/crm/v3/objects/contacts/batch/archive", batch_archive, methods=["POST"]),
            Route("/crm/v3/objects/contacts/batch/{op:str}", contact_writes, methods=["POST"]),
            Route("/crm/v3/objects/contacts/gdpr-delete", gdpr_delete, methods=["POST"]),
            Route("/crm/v3/objects/contacts/{id}", one_contact, methods=["GET", "PATCH", "DELETE"]),
            Route("/crm/v3/lists/search", lists_search, methods=["POST"]),
            Route("/crm/v3/lists/{list_id}", one_list, methods=["GET"]),
            Route("/crm/v3/lists/{list_id}/memberships", memberships, methods=["GET"]),
            Route("/communication-preferences/v4/statuses/batch/unsubscribe-all", batch_unsubscribe_all, methods=["POST"]),
            Route("/communication-preferences/v4/statuses/{subscriber}/unsubscribe-all", unsubscribe_all, methods=["GET", "POST"]),
            Route("/oauth/v1/token", token, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    faults = FaultPlan()
    # Outermost: every request is counted and carries the rate-limit headers, injected faults too.
    limited = RateLimitMiddleware(FaultMiddleware(app, faults), counters, limit=rate_limit,
                                  interval_ms=rate_interval_ms, enforce=enforce_rate_limit)

    def add_member(list_id: str, email: str) -> str:
        return str(state.add_contact(email, {list_id}))

    def is_deleted(email: str) -> bool:
        return state.find(email) is None

    return Emulator(
        slug="hubspot",
        app=limited,
        faults=faults,
        list_id=MAIN_LIST,
        state=state,
        counters=counters,
        violations=violations,
        credentials=lambda base_url: {"api_key": GOOD_TOKEN},
        bad_credentials=lambda base_url: {"api_key": WRONG_TOKEN},
        read_only_credentials=lambda base_url: {"api_key": READ_ONLY_TOKEN},
        is_unsubscribed=lambda email: email.lower() in state.opted_out,
        is_deleted=is_deleted,
        add_member=add_member,
    )


def webhook_headers(url: str, body: bytes, *, secret: str = CLIENT_SECRET, timestamp_ms: int | None = None,
                    method: str = "POST") -> dict[str, str]:
    """The headers HubSpot sends with a delivery: v3 signature and timestamp, plus the v1 signature."""
    stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    uri = url
    for encoded, plain in (("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"), ("%24", "$"),
                           ("%27", "'"), ("%28", "("), ("%29", ")"), ("%2A", "*"), ("%2C", ","), ("%3B", ";")):
        uri = uri.replace(encoded, plain)
    v3 = base64.b64encode(hmac.new(secret.encode(), method.encode() + uri.encode() + body + stamp.encode(), hashlib.sha256).digest())
    return {
        "content-type": "application/json",
        "x-hubspot-signature-v3": v3.decode(),
        "x-hubspot-request-timestamp": stamp,
        "x-hubspot-signature-version": "v1",
        "x-hubspot-signature": hashlib.sha256(secret.encode() + body).hexdigest(),
        "user-agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon",
    }


def creation_events(contact_ids: list[int], *, start_event: int = 1, kind: str = "contact.creation") -> list[dict]:
    """A `contact.creation` delivery body as HubSpot batches it (no email: only the object id)."""
    now = int(time.time() * 1000)
    events = []
    for offset, cid in enumerate(contact_ids):
        event = {"eventId": start_event + offset, "subscriptionId": 12345, "portalId": PORTAL_ID, "appId": 54321,
                 "occurredAt": now, "subscriptionType": kind, "attemptNumber": 0, "objectId": cid,
                 "changeFlag": "NEW", "changeSource": "CRM"}
        if kind == "object.creation":
            event["objectTypeId"] = "0-1"
        events.append(event)
    return events
