"""MailerLite (new API) emulator after developers.mailerlite.com and the official JS SDK's types.

Bearer token; a bad token gets 401 `{"message":"Unauthenticated."}`; a read-only token reads
but gets 403 on writes. Groups are page-paginated, group members cursor-paginated. Members of
the main group are generated lazily from their id, so 100,000 cost only the changes made.
"""

from __future__ import annotations

import base64
import secrets as pysecrets
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import Emulator
from tests.emulators.faults import FaultMiddleware, FaultPlan

GOOD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.good-token-0001"
READ_ONLY_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.read-only-0002"
WRONG_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.wrong-token-0003"
MAIN_GROUP = "1001"
BASE_ID = 90_000_000  # MailerLite ids are large numbers sent as strings


@dataclass
class MLState:
    members: int
    groups: dict[str, str] = field(default_factory=lambda: {MAIN_GROUP: "Newsletter", "1002": "Customers"})
    segments: dict[str, str] = field(default_factory=lambda: {"3001": "Engaged"})
    status: dict[int, str] = field(default_factory=dict)  # overrides of the default "active"
    deleted: set[int] = field(default_factory=set)
    webhooks: dict[str, dict] = field(default_factory=dict)

    def email(self, sid: int) -> str | None:
        n = sid - BASE_ID
        return f"member{n}@example.com" if 0 <= n < self.members and sid not in self.deleted else None

    def active_count(self) -> int:
        return self.members - len(self.deleted) - sum(1 for s, v in self.status.items() if v != "active" and s not in self.deleted)


def subscriber_json(sid: int, email: str, status: str) -> dict:
    return {"id": str(sid), "email": email, "status": status, "source": "api", "sent": 0, "opens_count": 0,
            "clicks_count": 0, "fields": {"name": None, "last_name": None}, "subscribed_at": "2024-05-01 10:00:00",
            "unsubscribed_at": None, "created_at": "2024-05-01 10:00:00", "updated_at": "2024-05-01 10:00:00"}


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = MLState(members=members)
    counters: Counter = Counter()

    def token_of(request: Request) -> str | None:
        counters["requests"] += 1
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        return token if token in (GOOD_TOKEN, READ_ONLY_TOKEN) else None

    unauthenticated = lambda: JSONResponse({"message": "Unauthenticated."}, 401)  # noqa: E731
    unauthorized = lambda: JSONResponse({"message": "This action is unauthorized."}, 403)  # noqa: E731
    not_found = lambda: JSONResponse({"message": "Resource not found."}, 404)  # noqa: E731

    async def subscribers(request: Request) -> JSONResponse:
        if not token_of(request):
            return unauthenticated()
        return JSONResponse({"total": state.active_count()})

    def page_of(request: Request, rows: list[dict]) -> JSONResponse:
        limit = int(request.query_params.get("limit", 25))
        page = int(request.query_params.get("page", 1))
        last = max(1, -(-len(rows) // limit))
        return JSONResponse({"data": rows[(page - 1) * limit : page * limit], "links": {},
                             "meta": {"current_page": page, "last_page": last, "per_page": limit, "total": len(rows)}})

    async def groups(request: Request) -> JSONResponse:
        if not token_of(request):
            return unauthenticated()
        rows = [{"id": gid, "name": name, "active_count": state.active_count() if gid == MAIN_GROUP else 0,
                 "unsubscribed_count": 0, "created_at": "2024-01-01 00:00:00"} for gid, name in state.groups.items()]
        return page_of(request, rows)

    async def segments(request: Request) -> JSONResponse:
        if not token_of(request):
            return unauthenticated()
        return page_of(request, [{"id": sid, "name": name, "total": 0, "created_at": "2024-01-01 00:00:00"} for sid, name in state.segments.items()])

    async def group_members(request: Request) -> JSONResponse:
        if not token_of(request):
            return unauthenticated()
        gid = request.path_params["id"]
        if gid not in state.groups:
            return not_found()
        wanted = request.query_params.get("filter[status]", "active")
        limit = min(int(request.query_params.get("limit", 25)), 1000)
        cursor = request.query_params.get("cursor")
        start = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else BASE_ID
        page: list[dict] = []
        sid = start
        end = BASE_ID + state.members if gid == MAIN_GROUP else start
        while sid < end and len(page) < limit:
            email = state.email(sid)
            status = state.status.get(sid, "active")
            if email and status == wanted:
                page.append(subscriber_json(sid, email, status))
            sid += 1
        more = sid < end
        next_cursor = base64.urlsafe_b64encode(str(sid).encode()).decode() if more else None
        return JSONResponse({"data": page, "links": {"next": None}, "meta": {"path": str(request.url.path), "per_page": limit,
                             "next_cursor": next_cursor, "prev_cursor": cursor}})

    async def segment_members(request: Request) -> JSONResponse:
        if not token_of(request):
            return unauthenticated()
        if request.path_params["id"] not in state.segments:
            return not_found()
        return JSONResponse({"data": [], "meta": {"total": 0, "count": 0, "last": None, "next_cursor": None}})

    async def one_subscriber(request: Request) -> Response:
        token = token_of(request)
        if not token:
            return unauthenticated()
        if token == READ_ONLY_TOKEN:
            return unauthorized()
        sid = int(request.path_params["id"])
        email = state.email(sid)
        if email is None:
            return not_found()
        if request.method == "DELETE":
            state.deleted.add(sid)
            counters["deleted"] += 1
            return Response(status_code=204)
        body = await request.json()
        if set(body) - {"status"} or body.get("status") not in ("active", "unsubscribed"):
            return JSONResponse({"message": "The given data was invalid.", "errors": {"status": ["The selected status is invalid."]}}, 422)
        state.status[sid] = body["status"]
        counters["unsubscribed" if body["status"] == "unsubscribed" else "subscribed"] += 1
        return JSONResponse({"data": subscriber_json(sid, email, body["status"])})

    async def forget(request: Request) -> JSONResponse:
        token = token_of(request)
        if not token:
            return unauthenticated()
        if token == READ_ONLY_TOKEN:
            return unauthorized()
        sid = int(request.path_params["id"])
        if state.email(sid) is None:
            return not_found()
        state.deleted.add(sid)
        counters["deleted"] += 1
        return JSONResponse({"message": "Subscriber will be forgotten in 30 days.", "data": {"id": str(sid)}})

    async def webhooks(request: Request) -> JSONResponse:
        token = token_of(request)
        if not token:
            return unauthenticated()
        if token == READ_ONLY_TOKEN:
            return unauthorized()
        body = await request.json()
        if not body.get("url") or not body.get("events"):
            return JSONResponse({"message": "The given data was invalid.", "errors": {"url": ["The url field is required."]}}, 422)
        wid = str(len(state.webhooks) + 70_000_001)
        state.webhooks[wid] = {"id": wid, "name": body.get("name"), "url": body["url"], "events": body["events"],
                               "enabled": body.get("enabled", True), "secret": pysecrets.token_hex(16)}
        return JSONResponse({"data": state.webhooks[wid]}, 201)

    async def one_webhook(request: Request) -> Response:
        if not token_of(request):
            return unauthenticated()
        if state.webhooks.pop(request.path_params["id"], None) is None:
            return not_found()
        return Response(status_code=204)

    app = Starlette(routes=[
        Route("/api/subscribers", subscribers),
        Route("/api/subscribers/{id:int}", one_subscriber, methods=["PUT", "DELETE"]),
        Route("/api/subscribers/{id:int}/forget", forget, methods=["POST"]),
        Route("/api/groups", groups),
        Route("/api/groups/{id}/subscribers", group_members),
        Route("/api/segments", segments),
        Route("/api/segments/{id}/subscribers", segment_members),
        Route("/api/webhooks", webhooks, methods=["POST"]),
        Route("/api/webhooks/{id}", one_webhook, methods=["DELETE"]),
    ])
    faults = FaultPlan()

    def find(email: str) -> int | None:
        number = email.removeprefix("member").removesuffix("@example.com")
        return BASE_ID + int(number) if number.isdigit() else None

    def credentials(token: str):
        return lambda base_url: {"api_key": token}

    return Emulator(
        slug="mailerlite",
        app=FaultMiddleware(app, faults),
        faults=faults,
        list_id=MAIN_GROUP,
        state=state,
        counters=counters,
        credentials=credentials(GOOD_TOKEN),
        bad_credentials=credentials(WRONG_TOKEN),
        read_only_credentials=credentials(READ_ONLY_TOKEN),
        is_unsubscribed=lambda email: (sid := find(email)) is not None and state.status.get(sid) == "unsubscribed",
        is_deleted=lambda email: (sid := find(email)) is None or state.email(sid) is None,
    )
