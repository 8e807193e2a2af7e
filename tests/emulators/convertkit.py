"""Kit (ConvertKit) emulator, API v4 and v3, after developers.kit.com and the official SDK Kit/ConvertKitSDK-PHP.

Kit publishes its v4 spec only on its site (not in esp-specs), so there is no contract check; the
emulator still records any write beyond subscription state in `violations`. v4: `X-Kit-Api-Key`,
cursor paging newest first (`after=end_cursor`, per_page <= 1000, `include_total_count`); v3:
`api_key`/`api_secret` parameters, 50 subscriptions a page. A bad key gets 401; Kit documents no
read-only key, so the restricted key here reads but gets 403 on writes (an assumption). 429s are
the documented plain-text `Retry later` without Retry-After. Subscribers of tag 1 are
`member{n}@example.com` with id BASE_ID+n, generated from the id.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractViolations
from tests.emulators.faults import FaultMiddleware, FaultPlan

GOOD_KEY = "kit_" + "c0ffee00" * 4
READ_ONLY_KEY = "kit_" + "0ead0000" * 4
WRONG_KEY = "kit_" + "00000000" * 4
V3_KEY = "V3PublicKeyAbCdEf012345"
V3_SECRET = "V3SecretAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
BASE_ID = 5_000_000
MAIN_TAG, OTHER_TAG, FORM, SEGMENT = 1, 2, 10, 20
V3_PAGE = 50
SUBSCRIBE_EVENTS = {"subscriber.subscriber_activate", "subscriber.form_subscribe", "subscriber.tag_add"}


@dataclass
class KitState:
    members: int
    tags: dict[int, str] = field(default_factory=lambda: {MAIN_TAG: "Newsletter", OTHER_TAG: "Customers"})
    forms: dict[int, str] = field(default_factory=lambda: {FORM: "Signup form"})  # every 4th member of the tag
    segments: dict[int, str] = field(default_factory=lambda: {SEGMENT: "Engaged"})
    cancelled: set[int] = field(default_factory=set)
    extra: dict[int, tuple[str, set[int]]] = field(default_factory=dict)  # id -> (email, tag ids)
    webhooks: dict[int, dict] = field(default_factory=dict)
    limit: int | None = None  # requests per rolling window per key; off by default
    window: float = 60.0
    seen: deque = field(default_factory=deque)

    def email(self, sid: int) -> str | None:
        if sid in self.extra:
            return self.extra[sid][0]
        n = sid - BASE_ID
        return f"member{n}@example.com" if 0 <= n < self.members else None

    def find(self, email: str) -> int | None:
        for sid, (known, _) in self.extra.items():
            if known.lower() == email.lower():
                return sid
        number = email.lower().removeprefix("member").removesuffix("@example.com")
        if email.lower().startswith("member") and email.lower().endswith("@example.com") and number.isdigit():
            sid = BASE_ID + int(number)
            return sid if self.email(sid) else None
        return None

    def in_list(self, kind: str, lid: int, sid: int) -> bool:
        if sid in self.extra:
            return kind == "tag" and lid in self.extra[sid][1]
        if kind == "tag":
            return lid == MAIN_TAG and self.email(sid) is not None
        return lid == FORM and self.email(sid) is not None and (sid - BASE_ID) % 4 == 0

    def ids_desc(self, kind: str, lid: int, below: int | None):
        """Members newest first (Kit's order), lazily, starting below a cursor id."""
        for sid in sorted((s for s in self.extra if self.in_list(kind, lid, s)), reverse=True):
            if below is None or sid < below:
                yield sid
        top = BASE_ID + self.members - 1 if below is None or below > BASE_ID + self.members else below - 1
        step = 1 if kind == "tag" else 4
        if kind != "tag":
            top -= (top - BASE_ID) % 4
        sid = top
        while sid >= BASE_ID:
            if self.in_list(kind, lid, sid):
                yield sid
            sid -= step

    def count(self, kind: str, lid: int) -> int:
        if kind == "tag":
            base = self.members if lid == MAIN_TAG else 0
        else:
            base = -(-self.members // 4) if lid == FORM else 0
        extra = sum(1 for s in self.extra if self.in_list(kind, lid, s))
        gone = sum(1 for s in self.cancelled if self.in_list(kind, lid, s))
        return base + extra - gone


def cursor(sid: int) -> str:
    return base64.b64encode(json.dumps([sid]).encode()).decode()


def uncursor(raw: str) -> int:
    return int(json.loads(base64.b64decode(raw))[0])


def subscriber_json(state: KitState, sid: int) -> dict:
    return {"id": sid, "first_name": None, "email_address": state.email(sid), "state": "cancelled" if sid in state.cancelled else "active",
            "created_at": "2024-05-01T10:00:00Z", "fields": {}}


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = KitState(members=members)
    counters: Counter = Counter()
    violations = ContractViolations()

    def auth(request: Request, *, v3_secret: bool = False) -> tuple[str | None, Response | None]:
        """(key, refusal). v4 by header; v3 by api_secret (or the public api_key where allowed)."""
        counters["requests"] += 1
        if state.limit is not None:
            now = time.monotonic()
            while state.seen and now - state.seen[0] > state.window:
                state.seen.popleft()
            if len(state.seen) >= state.limit:
                counters["429"] += 1
                return None, PlainTextResponse("Retry later", 429)
            state.seen.append(now)
        if request.url.path.startswith("/v4/"):
            key = request.headers.get("x-kit-api-key")
            if key in (GOOD_KEY, READ_ONLY_KEY):
                return key, None
            # v4's 401 body is not documented beyond "check the error message".
            return None, JSONResponse({"errors": ["The API key is invalid"]}, 401)
        params = dict(request.query_params)
        if request.method in ("POST", "PUT") and request.headers.get("content-type", "").startswith("application/json"):
            params.update(json.loads(request.state.body or b"{}"))
        if params.get("api_secret") == V3_SECRET:
            return V3_SECRET, None
        if not v3_secret and params.get("api_key") == V3_KEY:
            return V3_KEY, None
        if v3_secret and params.get("api_key") == V3_KEY:
            return None, JSONResponse({"error": "Authorization Failed", "message": "API Secret not present"}, 401)
        return None, JSONResponse({"error": "Authorization Failed", "message": "API Key not present"}, 401)

    def read_only() -> JSONResponse:
        # Kit documents no read-only API key; this is the emulator's stand-in refusal.
        return JSONResponse({"errors": ["This API key does not have permission to modify subscribers"]}, 403)

    async def with_body(request: Request) -> None:
        request.state.body = await request.body()

    # --- v4 ------------------------------------------------------------------------------------------
    async def account(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        return JSONResponse({"user": {"email": "owner@acme.test"},
                             "account": {"id": 3001, "name": "Acme", "plan_type": "creator", "primary_email_address": "owner@acme.test",
                                         "created_at": "2023-02-17T11:43:55Z"}})

    def per_page(request: Request) -> int:
        value = int(request.query_params.get("per_page", 500))
        if not 1 <= value <= 1000:
            raise ValueError
        return value

    def collection(request: Request, name: str, rows: dict[int, str]) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        try:
            size = per_page(request)
        except ValueError:
            return JSONResponse({"errors": ["per_page must be between 1 and 1000"]}, 422)
        items = [{"id": i, "name": n, "created_at": "2023-02-17T11:43:55Z"} for i, n in sorted(rows.items(), reverse=True)]
        after = request.query_params.get("after")
        if after:
            items = [i for i in items if i["id"] < uncursor(after)]
        page, more = items[:size], len(items) > size
        return JSONResponse({name: page, "pagination": {"has_previous_page": bool(after), "has_next_page": more,
                             "start_cursor": cursor(page[0]["id"]) if page else None,
                             "end_cursor": cursor(page[-1]["id"]) if page else None, "per_page": size}})

    async def tags(request: Request) -> Response:
        return collection(request, "tags", state.tags)

    async def forms(request: Request) -> Response:
        return collection(request, "forms", state.forms)

    async def segments(request: Request) -> Response:
        return collection(request, "segments", state.segments)

    async def v4_members(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        kind = "tag" if request.url.path.startswith("/v4/tags/") else "form"
        lid = request.path_params["id"]
        if lid not in (state.tags if kind == "tag" else state.forms):
            return JSONResponse({"errors": ["Not Found"]}, 404)
        try:
            size = per_page(request)
        except ValueError:
            return JSONResponse({"errors": ["per_page must be between 1 and 1000"]}, 422)
        status = request.query_params.get("status", "active")
        after = request.query_params.get("after")
        page: list[dict] = []
        more = False
        for sid in state.ids_desc(kind, lid, uncursor(after) if after else None):
            if status != "all" and ("cancelled" if sid in state.cancelled else "active") != status:
                continue
            if len(page) == size:
                more = True
                break
            page.append({**subscriber_json(state, sid), ("tagged_at" if kind == "tag" else "added_at"): "2024-05-01T10:00:00Z"})
        counters["member_pages"] += 1
        counters["largest_page"] = max(counters["largest_page"], len(page))
        pagination = {"has_previous_page": bool(after), "has_next_page": more,
                      "start_cursor": cursor(page[0]["id"]) if page else None,
                      "end_cursor": cursor(page[-1]["id"]) if page else None, "per_page": size}
        if request.query_params.get("include_total_count") == "true":
            pagination["total_count"] = state.count(kind, lid) if status == "active" else None
        return JSONResponse({"subscribers": page, "pagination": pagination})

    async def find_subscribers(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        email = request.query_params.get("email_address", "")
        sid = state.find(email) if email else None
        rows = [subscriber_json(state, sid)] if sid is not None else []
        return JSONResponse({"subscribers": rows, "pagination": {"has_previous_page": False, "has_next_page": False,
                             "start_cursor": None, "end_cursor": None, "per_page": 500}})

    async def v4_unsubscribe(request: Request) -> Response:
        await with_body(request)
        key, refused = auth(request)
        if refused:
            return refused
        if key == READ_ONLY_KEY:
            return read_only()
        if request.state.body.strip() not in (b"", b"{}"):
            violations.errors.append(f"POST {request.url.path}: sent a body {request.state.body[:80]!r}")
        sid = request.path_params["id"]
        if state.email(sid) is None:
            return JSONResponse({"errors": ["Not Found"]}, 404)
        state.cancelled.add(sid)
        counters["unsubscribed"] += 1
        return Response(status_code=204)  # the subscriber's state becomes "cancelled"

    async def v4_webhooks(request: Request) -> Response:
        await with_body(request)
        key, refused = auth(request)
        if refused:
            return refused
        if key == READ_ONLY_KEY:
            return read_only()
        body = json.loads(request.state.body or b"{}")
        event = body.get("event") or {}
        if not body.get("target_url") or event.get("name") not in SUBSCRIBE_EVENTS | {"subscriber.subscriber_unsubscribe"}:
            return JSONResponse({"errors": ["Target url can't be blank", "Event name is not valid"]}, 422)
        wid = len(state.webhooks) + 901
        state.webhooks[wid] = {"id": wid, "account_id": 3001, "event": {**event, "initiator_value": None}, "target_url": body["target_url"]}
        return JSONResponse({"webhook": state.webhooks[wid]}, 201)

    async def v4_webhook(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        if key == READ_ONLY_KEY:
            return read_only()
        if state.webhooks.pop(request.path_params["id"], None) is None:
            return JSONResponse({"errors": ["Not Found"]}, 404)
        return Response(status_code=204)

    # --- v3 ------------------------------------------------------------------------------------------
    async def v3_account(request: Request) -> Response:
        key, refused = auth(request, v3_secret=True)
        if refused:
            return refused
        return JSONResponse({"name": "Acme", "plan_type": "creator", "primary_email_address": "owner@acme.test"})

    async def v3_tags(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        return JSONResponse({"tags": [{"id": i, "name": n, "created_at": "2016-02-28T08:07:00Z"} for i, n in state.tags.items()]})

    async def v3_forms(request: Request) -> Response:
        key, refused = auth(request)
        if refused:
            return refused
        return JSONResponse({"forms": [{"id": i, "name": n, "type": "embed", "created_at": "2016-02-28T08:07:00Z"} for i, n in state.forms.items()]})

    async def v3_subscriptions(request: Request) -> Response:
        key, refused = auth(request, v3_secret=True)
        if refused:
            return refused
        kind = "tag" if request.url.path.startswith("/v3/tags/") else "form"
        lid = request.path_params["id"]
        if lid not in (state.tags if kind == "tag" else state.forms):
            return JSONResponse({"error": "Not Found", "message": "The entity you were trying to find doesn't exist"}, 404)
        wanted = request.query_params.get("subscriber_state", "active")
        page = max(1, int(request.query_params.get("page", 1)))
        ids = [s for s in state.ids_desc(kind, lid, None) if ("cancelled" if s in state.cancelled else "active") == wanted]
        if request.query_params.get("sort_order", "asc") == "asc":
            ids.reverse()
        chunk = ids[(page - 1) * V3_PAGE : page * V3_PAGE]
        counters["member_pages"] += 1
        return JSONResponse({"total_subscriptions": len(ids), "page": page, "total_pages": max(1, -(-len(ids) // V3_PAGE)),
                             "subscriptions": [{"id": 70_000_000 + s, "state": "active", "created_at": "2016-02-28T08:07:00Z",
                                                "source": None, "referrer": None, "subscribable_id": lid, "subscribable_type": kind,
                                                "subscriber": subscriber_json(state, s)} for s in chunk]})

    async def v3_unsubscribe(request: Request) -> Response:
        await with_body(request)
        key, refused = auth(request, v3_secret=True)
        if refused:
            return refused
        body = json.loads(request.state.body or b"{}")
        if set(body) - {"api_secret", "email"}:
            violations.errors.append(f"PUT /v3/unsubscribe: wrote {sorted(set(body) - {'api_secret', 'email'})}")
        sid = state.find(str(body.get("email", "")))
        if sid is None:
            return JSONResponse({"error": "Not Found", "message": "The subscriber you were trying to find doesn't exist"}, 404)
        state.cancelled.add(sid)
        counters["unsubscribed"] += 1
        return JSONResponse({"subscriber": subscriber_json(state, sid)})

    async def v3_hooks(request: Request) -> Response:
        await with_body(request)
        key, refused = auth(request, v3_secret=True)
        if refused:
            return refused
        body = json.loads(request.state.body or b"{}")
        event = body.get("event") or {}
        wid = len(state.webhooks) + 901
        state.webhooks[wid] = {"id": wid, "account_id": 3001, "event": event, "target_url": body.get("target_url")}
        return JSONResponse({"rule": {"id": wid, "account_id": 3001, "event": {"name": event.get("name", "").split(".")[-1]}}})

    async def v3_hook(request: Request) -> Response:
        key, refused = auth(request, v3_secret=True)
        if refused:
            return refused
        if state.webhooks.pop(request.path_params["id"], None) is None:
            return JSONResponse({"error": "Not Found", "message": "Not Found"}, 404)
        return JSONResponse({"success": True})

    app = Starlette(routes=[
        Route("/v4/account", account),
        Route("/v4/tags", tags),
        Route("/v4/forms", forms),
        Route("/v4/segments", segments),
        Route("/v4/tags/{id:int}/subscribers", v4_members),
        Route("/v4/forms/{id:int}/subscribers", v4_members),
        Route("/v4/subscribers", find_subscribers),
        Route("/v4/subscribers/{id:int}/unsubscribe", v4_unsubscribe, methods=["POST"]),
        Route("/v4/webhooks", v4_webhooks, methods=["POST"]),
        Route("/v4/webhooks/{id:int}", v4_webhook, methods=["DELETE"]),
        Route("/v3/account", v3_account),
        Route("/v3/tags", v3_tags),
        Route("/v3/forms", v3_forms),
        Route("/v3/tags/{id:int}/subscriptions", v3_subscriptions),
        Route("/v3/forms/{id:int}/subscriptions", v3_subscriptions),
        Route("/v3/unsubscribe", v3_unsubscribe, methods=["PUT"]),
        Route("/v3/automations/hooks", v3_hooks, methods=["POST"]),
        Route("/v3/automations/hooks/{id:int}", v3_hook, methods=["DELETE"]),
    ])
    faults = FaultPlan()

    def add_member(list_id: str, email: str) -> str:
        sid = BASE_ID + 10_000_000 + len(state.extra)
        state.extra[sid] = (email, {int(list_id.partition(":")[2])})
        return str(sid)

    def credentials(key: str):
        return lambda base_url: {"api_key": key}

    def is_unsubscribed(email: str) -> bool:
        sid = state.find(email)
        return sid is not None and sid in state.cancelled

    return Emulator(
        slug="convertkit",
        app=FaultMiddleware(app, faults),
        faults=faults,
        list_id=f"tag:{MAIN_TAG}",
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


def v3_credentials(base_url: str) -> dict[str, str]:
    return {"api_key": V3_KEY, "api_secret": V3_SECRET}


def delivery(state: KitState, email: str) -> tuple[dict[str, str], bytes]:
    """Query and body Kit would POST to the registered webhook for a subscriber activation (KIT-V3 _webhooks.md)."""
    [hook] = list(state.webhooks.values())
    query = {k: v[0] for k, v in parse_qs(urlsplit(hook["target_url"]).query).items()}
    sid = state.find(email)
    body = {"subscriber": {"id": sid if sid is not None else 9_999_999, "first_name": None, "email_address": email, "state": "active",
                           "created_at": "2018-02-15T19:40:24.913Z", "fields": {}}}
    return query, json.dumps(body).encode()
