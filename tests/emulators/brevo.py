"""Brevo API v3 emulator, after the official spec (esp-specs/brevo.yaml) and developers.brevo.com.

Every request is validated against the official spec by ContractMiddleware. `api-key` header; a
bad key gets 401 `{"code":"unauthorized","message":"Key not found"}`. Brevo documents no
read-only API key (scopes exist only for OAuth apps), so the restricted key here reads but gets
403 `permission_denied` on writes: an assumption, the code the spec's errorModel offers for it.
Members of list 2 are `member{id-1}@example.com` for ids 1..members, generated from the id, so
100,000 cost only the changes made. Contacts endpoints send the `x-sib-ratelimit-*` headers, and
`state.rps_limit` turns on a per-second limit answered with 429 (no Retry-After, as documented).
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from openapi_core import OpenAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractMiddleware, ContractViolations, load_spec
from tests.emulators.faults import FaultMiddleware, FaultPlan

GOOD_KEY = "xkeysib-" + "a1b2c3d4" * 8 + "-GoodKey000000001"
READ_ONLY_KEY = "xkeysib-" + "f0e1d2c3" * 8 + "-ReadOnly00000002"
WRONG_KEY = "xkeysib-" + "00000000" * 8 + "-WrongKey00000003"
SPEC_FILE = "brevo.yaml"
SPEC_SERVER = "https://api.brevo.com/v3"
MAIN_LIST = 2
OTHER_LIST = 7
SEGMENT = 11  # "Engaged": every tenth contact of the main list (ids 1, 11, 21, ...)
EXTRA_BASE = 100_000_000  # ids of contacts added after build
OWNER_ID = EXTRA_BASE - 1  # the account's own registered email: Brevo refuses to delete it (405)
OWNER_EMAIL = "owner@acme.test"
SUBSCRIPTION_FIELDS = {"emailBlacklisted"}
IDENTIFIERS = {"id", "email", "sms"}


def brevo_spec() -> OpenAPI:
    """The official spec, loaded once per process with the fixes SOURCES.md describes (contract.load_document).

    The document itself fails openapi-spec-validator (a `senders` schema), so spec validation is
    off; requests still are validated.
    """
    return load_spec(SPEC_FILE, validate=False)


@dataclass
class BrevoState:
    members: int
    lists: dict[int, str] = field(default_factory=lambda: {MAIN_LIST: "Newsletter", OTHER_LIST: "Customers"})
    segments: dict[int, str] = field(default_factory=lambda: {SEGMENT: "Engaged"})
    blacklisted: set[int] = field(default_factory=set)
    deleted: list[int] = field(default_factory=list)  # sorted, for lazy offset paging
    extra: dict[int, tuple[str, set[int]]] = field(default_factory=dict)  # id -> (email, list ids)
    list_unsubscribed: dict[int, set[int]] = field(default_factory=dict)  # id -> lists unsubscribed from
    webhooks: dict[int, dict] = field(default_factory=dict)
    rps_limit: int | None = None  # per-second limit on /contacts, off by default
    window: list[float] = field(default_factory=lambda: [0.0, 0])  # [second, requests in it]

    def __post_init__(self) -> None:
        self.extra[OWNER_ID] = (OWNER_EMAIL, set())

    def is_deleted(self, cid: int) -> bool:
        i = bisect.bisect_left(self.deleted, cid)
        return i < len(self.deleted) and self.deleted[i] == cid

    def delete(self, cid: int) -> None:
        if not self.is_deleted(cid):
            bisect.insort(self.deleted, cid)

    def email(self, cid: int) -> str | None:
        if self.is_deleted(cid):
            return None
        if cid in self.extra:
            return self.extra[cid][0]
        return f"member{cid - 1}@example.com" if 1 <= cid <= self.members else None

    def list_ids(self, cid: int) -> list[int]:
        if cid in self.extra:
            return sorted(self.extra[cid][1])
        return [MAIN_LIST]

    def find(self, email: str) -> int | None:
        email = email.lower()
        for cid, (known, _) in self.extra.items():
            if known.lower() == email and not self.is_deleted(cid):
                return cid
        number = email.removeprefix("member").removesuffix("@example.com")
        if email.startswith("member") and email.endswith("@example.com") and number.isdigit():
            cid = int(number) + 1
            return cid if self.email(cid) else None
        return None

    def base_alive(self) -> int:
        return self.members - bisect.bisect_right(self.deleted, self.members)

    def nth_base(self, n: int) -> int:
        """The id of the n-th (0-based) surviving generated contact: binary search over deletions."""
        lo, hi = 1, self.members
        while lo < hi:
            mid = (lo + hi) // 2
            if mid - bisect.bisect_right(self.deleted, mid) >= n + 1:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def list_page(self, list_id: int, offset: int, limit: int) -> tuple[list[int], int]:
        """Ids in creation order (`sort=asc`) and the list's total, without materialising the list."""
        extras = [cid for cid, (_, lists) in sorted(self.extra.items()) if list_id in lists and not self.is_deleted(cid)]
        base = self.base_alive() if list_id == MAIN_LIST else 0
        total = base + len(extras)
        ids: list[int] = []
        if offset < base:
            cid = self.nth_base(offset)
            while cid <= self.members and len(ids) < limit:
                if not self.is_deleted(cid):
                    ids.append(cid)
                cid += 1
        start = max(0, offset - base)
        ids.extend(extras[start : start + limit - len(ids)])
        return ids, total

    def segment_ids(self) -> list[int]:
        return [cid for cid in range(1, self.members + 1, 10) if not self.is_deleted(cid)]


def contact_json(state: BrevoState, cid: int) -> dict:
    return {"email": state.email(cid), "id": cid, "emailBlacklisted": cid in state.blacklisted, "smsBlacklisted": False,
            "createdAt": "2024-05-01T10:00:00.000+02:00", "modifiedAt": "2024-05-01T10:00:00.000+02:00",
            "listIds": state.list_ids(cid), "listUnsubscribed": sorted(state.list_unsubscribed.get(cid, ())),
            "attributes": {}}


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status, headers=headers)


def list_addition_payload(email: str, list_ids: list[int], *, webhook_id: int, at: float) -> dict:
    """A marketing `listAddition` delivery, after developers.brevo.com/docs/marketing-webhooks.

    `id` is the webhook's id there; `key` and `ts_event` are taken from the page's other events
    (unverified for this one); `date` is in CET/CEST, `ts`/`ts_event` in UTC seconds.
    """
    return {"id": webhook_id, "email": email, "event": "list_addition", "key": "xkeysib-redacted", "list_id": list_ids,
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at + 3600)), "ts": int(at), "ts_event": int(at),
            "api_key_name": ""}


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = BrevoState(members=members)
    counters: Counter = Counter()
    violations = ContractViolations()

    def key_of(request: Request) -> str | None:
        counters["requests"] += 1
        key = request.headers.get("api-key")
        return key if key in (GOOD_KEY, READ_ONLY_KEY) else None

    def unauthorized() -> JSONResponse:
        return error(401, "unauthorized", "Key not found")

    def permission_denied() -> JSONResponse:
        # Undocumented for API keys: the spec's errorModel code for a refused permission.
        return error(403, "permission_denied", "This API key does not have permission to modify contacts")

    def limited(request: Request) -> tuple[JSONResponse | None, dict[str, str]]:
        """Brevo's x-sib-ratelimit-* headers on /contacts, and a 429 when rps_limit is on."""
        if state.rps_limit is None:
            return None, {"x-sib-ratelimit-limit": "10", "x-sib-ratelimit-remaining": "9", "x-sib-ratelimit-reset": "1"}
        now = time.monotonic()
        second = math.floor(now)
        if state.window[0] != second:
            state.window[:] = [second, 0]
        state.window[1] += 1
        remaining = state.rps_limit - state.window[1]
        headers = {"x-sib-ratelimit-limit": str(state.rps_limit), "x-sib-ratelimit-remaining": str(max(remaining, 0)),
                   "x-sib-ratelimit-reset": str(max(1, math.ceil(second + 1 - now)))}
        if remaining < 0:
            counters["429"] += 1
            # The 429 body is undocumented; the errorModel has no code for it.
            return error(429, "too_many_requests", "Too many requests", headers), headers
        return None, headers

    def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
        value = int(request.query_params.get(name, default))
        if value < 0 or (maximum is not None and value > maximum):
            raise ValueError(name)
        return value

    async def account(request: Request) -> JSONResponse:
        if not key_of(request):
            return unauthorized()
        return JSONResponse({"email": OWNER_EMAIL, "firstName": "Jo", "lastName": "Doe", "companyName": "Acme",
                             "address": {"city": "Paris", "street": "1 rue", "zipCode": "75001", "country": "France"},
                             "plan": [{"type": "free", "credits": 300, "creditsType": "sendLimit"}],
                             "relay": {"enabled": True, "data": {"userName": OWNER_EMAIL, "relay": "smtp-relay.brevo.com", "port": 587}}})

    async def get_lists(request: Request) -> JSONResponse:
        if not key_of(request):
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        try:
            limit, offset = int_param(request, "limit", 10, 50), int_param(request, "offset", 0)
        except ValueError:
            return error(400, "out_of_range", "Limit exceeds max value", headers)
        rows = []
        for lid, name in sorted(state.lists.items(), reverse=request.query_params.get("sort", "desc") == "desc"):
            ids_total = state.list_page(lid, 0, 0)[1]
            black = (sum(1 for c in state.blacklisted if lid in state.list_ids(c) and state.email(c)))
            rows.append({"id": lid, "name": name, "totalSubscribers": ids_total - black, "totalBlacklisted": black,
                         "uniqueSubscribers": ids_total, "folderId": 1})
        return JSONResponse({"lists": rows[offset : offset + limit], "count": len(rows)}, headers=headers)

    async def list_contacts(request: Request) -> JSONResponse:
        if not key_of(request):
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        lid = int(request.path_params["listId"])
        if lid not in state.lists:
            return error(404, "document_not_found", "List ID does not exist", headers)
        try:
            limit, offset = int_param(request, "limit", 50, 500), int_param(request, "offset", 0)
        except ValueError:
            return error(400, "out_of_range", "Limit exceeds max value", headers)
        if request.query_params.get("sort", "desc") != "asc":
            _, total = state.list_page(lid, 0, 0)
            ids, _ = state.list_page(lid, max(0, total - offset - limit), min(limit, max(0, total - offset)))
            ids.reverse()
        else:
            ids, total = state.list_page(lid, offset, limit)
        counters["member_pages"] += 1
        counters["largest_page"] = max(counters["largest_page"], len(ids))
        return JSONResponse({"contacts": [contact_json(state, c) for c in ids], "count": total}, headers=headers)

    async def all_contacts(request: Request) -> JSONResponse:
        if not key_of(request):
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        try:
            limit, offset = int_param(request, "limit", 50, 1000), int_param(request, "offset", 0)
        except ValueError:
            return error(400, "out_of_range", "Limit exceeds max value", headers)
        segment = request.query_params.get("segmentId")
        if segment is None:
            return error(400, "missing_parameter", "This emulator serves GET /contacts for a segmentId only", headers)
        if int(segment) not in state.segments:
            return error(400, "invalid_parameter", "Segment ID does not exist", headers)  # undocumented status
        ids = state.segment_ids()
        if request.query_params.get("sort", "desc") == "desc":
            ids.reverse()
        counters["member_pages"] += 1
        return JSONResponse({"contacts": [contact_json(state, c) for c in ids[offset : offset + limit]], "count": len(ids)},
                            headers=headers)

    async def segments(request: Request) -> JSONResponse:
        if not key_of(request):
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        try:
            limit, offset = int_param(request, "limit", 10, 50), int_param(request, "offset", 0)
        except ValueError:
            return error(400, "out_of_range", "Limit exceeds max value", headers)
        rows = [{"id": sid, "segmentName": name, "categoryName": "Engagement", "updatedAt": "2024-05-01T10:00:00.000Z"}
                for sid, name in sorted(state.segments.items())]
        return JSONResponse({"segments": rows[offset : offset + limit], "count": len(rows)}, headers=headers)

    def check_write(what: str, body: dict, allowed: set[str]) -> None:
        """Listwarden may write only subscription state: anything else is a violation of our own rule."""
        touched = set(body) - allowed
        if touched:
            violations.errors.append(f"{what}: wrote {sorted(touched)}, not only subscription state")

    def set_blacklisted(cid: int, value: bool) -> None:
        if value:
            state.blacklisted.add(cid)
            counters["unsubscribed"] += 1
        else:
            state.blacklisted.discard(cid)
            counters["subscribed"] += 1

    async def batch(request: Request) -> Response:
        key = key_of(request)
        if not key:
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        if key == READ_ONLY_KEY:
            return permission_denied()
        try:
            items = (await request.json())["contacts"]
            assert isinstance(items, list) and all(isinstance(i, dict) for i in items)
        except (ValueError, KeyError, AssertionError):
            return error(400, "invalid_parameter", "contacts is required", headers)
        counters["batches"] += 1
        success, failure = [], []
        for item in items:
            given = IDENTIFIERS & set(item)
            check_write("POST /contacts/batch", item, SUBSCRIPTION_FIELDS | given)
            if len(given) != 1:
                return error(400, "invalid_parameter", "Pass only one of the contact identifiers: email, id or sms", headers)
            cid = item["id"] if "id" in item else state.find(str(item.get("email", "")))
            if not isinstance(cid, int) or state.email(cid) is None:
                failure.append(item.get("id", -1))
                continue
            if "emailBlacklisted" in item:
                set_blacklisted(cid, bool(item["emailBlacklisted"]))
            success.append(cid)
        if failure:
            # 207 is not in the Nov-2024 spec; the current reference documents it for partial updates.
            return JSONResponse({"successIds": success, "failureIds": failure}, 207, headers=headers)
        return Response(status_code=204, headers=headers)

    def identify(request: Request) -> int | None:
        raw = request.path_params["identifier"]
        kind = request.query_params.get("identifierType")
        if kind == "contact_id" or (kind is None and raw.isdigit()):
            return int(raw) if raw.isdigit() and state.email(int(raw)) else None
        return state.find(raw)

    async def one_contact(request: Request) -> Response:
        key = key_of(request)
        if not key:
            return unauthorized()
        refused, headers = limited(request)
        if refused:
            return refused
        if key == READ_ONLY_KEY:
            return permission_denied()
        cid = identify(request)
        if cid is None:
            return error(404, "document_not_found", "Contact does not exist", headers)
        if request.method == "DELETE":
            if cid == OWNER_ID:
                return error(405, "method_not_allowed", "You're not allowed to delete registered email contact with Brevo", headers)
            state.delete(cid)
            counters["deleted"] += 1
            return Response(status_code=204, headers=headers)
        body = await request.json()
        check_write("PUT /contacts/{identifier}", body, SUBSCRIPTION_FIELDS)
        if "emailBlacklisted" in body:
            set_blacklisted(cid, bool(body["emailBlacklisted"]))
        return Response(status_code=204, headers=headers)

    async def create_webhook(request: Request) -> JSONResponse:
        key = key_of(request)
        if not key:
            return unauthorized()
        if key == READ_ONLY_KEY:
            return permission_denied()
        body = await request.json()
        if not body.get("url") or not body.get("events"):
            return error(400, "missing_parameter", "url and events are required")
        wid = len(state.webhooks) + 501
        state.webhooks[wid] = {"id": wid, **body}
        return JSONResponse({"id": wid}, 201)

    async def delete_webhook(request: Request) -> Response:
        key = key_of(request)
        if not key:
            return unauthorized()
        if key == READ_ONLY_KEY:
            return permission_denied()
        if state.webhooks.pop(int(request.path_params["webhookId"]), None) is None:
            return error(404, "document_not_found", "Webhook not found")
        return Response(status_code=204)

    app = Starlette(routes=[
        Route("/account", account),
        Route("/contacts", all_contacts),
        Route("/contacts/lists", get_lists),
        Route("/contacts/lists/{listId:int}/contacts", list_contacts),
        Route("/contacts/segments", segments),
        Route("/contacts/batch", batch, methods=["POST"]),
        Route("/contacts/{identifier}", one_contact, methods=["PUT", "DELETE"]),
        Route("/webhooks", create_webhook, methods=["POST"]),
        Route("/webhooks/{webhookId:int}", delete_webhook, methods=["DELETE"]),
    ])
    faults = FaultPlan()
    # Contract outermost: requests answered by an injected fault are validated too.
    wrapped = ContractMiddleware(FaultMiddleware(app, faults), brevo_spec(), violations, base_url=SPEC_SERVER)

    def add_member(list_id: str, email: str) -> str:
        cid = EXTRA_BASE + len(state.extra)
        state.extra[cid] = (email, {int(list_id)})
        return str(cid)

    def credentials(key: str):
        return lambda base_url: {"api_key": key}

    def is_unsubscribed(email: str) -> bool:
        cid = state.find(email)
        return cid is not None and cid in state.blacklisted

    return Emulator(
        slug="brevo",
        app=wrapped,
        faults=faults,
        list_id=str(MAIN_LIST),
        state=state,
        counters=counters,
        violations=violations,
        credentials=credentials(GOOD_KEY),
        bad_credentials=credentials(WRONG_KEY),
        read_only_credentials=credentials(READ_ONLY_KEY),
        is_unsubscribed=is_unsubscribed,
        is_deleted=lambda email: state.find(email) is None,
        add_member=add_member,
    )


def delivery(state: BrevoState, email: str, list_id: int, *, at: float | None = None) -> tuple[dict[str, str], bytes]:
    """Headers and body Brevo would POST to the registered marketing webhook for a list addition."""
    [hook] = [h for h in state.webhooks.values() if "listAddition" in h.get("events", [])]
    headers = {"content-type": "application/json"}
    auth = hook.get("auth") or {}
    if auth.get("type") == "bearer":
        headers["authorization"] = f"Bearer {auth['token']}"
    body = list_addition_payload(email, [list_id], webhook_id=hook["id"], at=time.time() if at is None else at)
    return headers, json.dumps(body).encode()
