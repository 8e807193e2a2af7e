"""ActiveCampaign API v3 emulator, after the public reference (no official spec in esp-specs).

`Api-Token` header; a bad or missing key gets 403 (AC's choice, not 401); a read-only user
reads but gets AC's permission 403 body on writes. Members are generated lazily from their id
(`member{id-1}@example.com` in list "1"), so 100,000 of them cost only the changes made.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.emulators.base import Emulator
from tests.emulators.faults import FaultMiddleware, FaultPlan

GOOD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
READ_ONLY_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
WRONG_KEY = "0000000000000000000000000000000000000000000000000000000000000000"
ACCOUNT_URL = "https://acme.api-us1.com"
MAIN_LIST = "1"


@dataclass
class ACState:
    members: int
    lists: dict[str, str] = field(default_factory=lambda: {MAIN_LIST: "Newsletter", "2": "Customers"})
    extra: dict[int, str] = field(default_factory=dict)  # contacts added after build
    status: dict[tuple[str, int], int] = field(default_factory=dict)  # (list, contact) -> 1 active / 2 unsub
    deleted: set[int] = field(default_factory=set)
    webhooks: dict[str, dict] = field(default_factory=dict)

    @property
    def max_id(self) -> int:
        return max([self.members, *self.extra])

    def email(self, cid: int) -> str | None:
        if cid in self.deleted:
            return None
        if cid in self.extra:
            return self.extra[cid]
        return f"member{cid - 1}@example.com" if 1 <= cid <= self.members else None

    def list_status(self, list_id: str, cid: int) -> int | None:
        if self.email(cid) is None:
            return None
        if (list_id, cid) in self.status:
            return self.status[(list_id, cid)]
        return 1 if list_id == MAIN_LIST and cid <= self.members else None

    def find(self, email: str) -> int | None:
        for cid, known in self.extra.items():
            if known == email and cid not in self.deleted:
                return cid
        if email.startswith("member") and email.endswith("@example.com"):
            number = email[len("member") : -len("@example.com")]
            if number.isdigit() and int(number) < self.members and int(number) + 1 not in self.deleted:
                return int(number) + 1
        return None

    def count(self, list_id: str, status: int) -> int:
        """Cheap count: the lazily generated base, corrected by every recorded change."""
        base = self.members if list_id == MAIN_LIST and status == 1 else 0
        touched = {cid for (lid, cid) in self.status if lid == list_id} | self.deleted
        for cid in touched:
            was = 1 if list_id == MAIN_LIST and cid <= self.members and status == 1 else 0
            now = 1 if self.list_status(list_id, cid) == status else 0
            base += now - was
        return base


def contact_json(cid: int, email: str) -> dict:
    return {"cdate": "2024-05-01T10:00:00-05:00", "email": email, "phone": "", "firstName": "", "lastName": "",
            "bounced_hard": "0", "deleted": "0", "links": {}, "id": str(cid), "organization": None}


def forbidden_write(what: str) -> JSONResponse:
    return JSONResponse({"errors": [{"status": 403, "title": "Forbidden", "detail": f"You do not have permission to {what}."}]}, 403)


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = ACState(members=members)
    counters: Counter = Counter()

    def key_of(request: Request) -> str | None:
        counters["requests"] += 1
        key = request.headers.get("api-token")
        return key if key in (GOOD_KEY, READ_ONLY_KEY) else None

    def denied() -> JSONResponse:
        # AC answers a missing or wrong Api-Token with 403; the body is undocumented.
        return JSONResponse({"message": "Forbidden"}, 403)

    async def users_me(request: Request) -> JSONResponse:
        if not key_of(request):
            return denied()
        return JSONResponse({"user": {"username": "jdoe", "firstName": "J", "lastName": "Doe", "email": "jdoe@acme.test", "links": {}, "id": "1"}})

    def paging(request: Request) -> tuple[int, int]:
        limit = min(max(int(request.query_params.get("limit", 20)), 1), 100)
        return limit, max(int(request.query_params.get("offset", 0)), 0)

    async def lists(request: Request) -> JSONResponse:
        if not key_of(request):
            return denied()
        limit, offset = paging(request)
        rows = [{"stringid": name.lower(), "userid": "1", "name": name, "cdate": "2018-08-06T16:30:41-05:00", "links": {}, "id": lid}
                for lid, name in state.lists.items()]
        return JSONResponse({"lists": rows[offset : offset + limit], "meta": {"total": str(len(rows))}})

    async def one_list(request: Request) -> JSONResponse:
        if not key_of(request):
            return denied()
        lid = request.path_params["id"]
        if lid not in state.lists:
            return JSONResponse({"message": f"No Result found for List with id {lid}"}, 404)
        return JSONResponse({"list": {"id": lid, "name": state.lists[lid], "links": {}}})

    async def contacts(request: Request) -> JSONResponse:
        if not key_of(request):
            return denied()
        q = request.query_params
        limit, offset = paging(request)
        list_id = q.get("listid")
        status = int(q.get("status", -1))
        after = int(q.get("id_greater", 0))

        def matches(cid: int) -> bool:
            if state.email(cid) is None:
                return False
            if list_id is None:
                return True
            current = state.list_status(list_id, cid)
            return current is not None and (status == -1 or current == status)

        ids = (cid for cid in range(after + 1, state.max_id + 1) if matches(cid))
        page = list(itertools.islice(ids, offset, offset + limit))
        if list_id is not None and status != -1:
            total = state.count(list_id, status)
        else:
            total = sum(1 for cid in range(1, state.max_id + 1) if matches(cid))
        return JSONResponse({"scoreValues": [], "contacts": [contact_json(c, state.email(c)) for c in page],
                             "meta": {"total": str(total), "page_input": {"listid": list_id or 0, "limit": limit, "offset": offset, "status": status}}})

    async def contact_lists(request: Request) -> JSONResponse:
        key = key_of(request)
        if not key:
            return denied()
        if key == READ_ONLY_KEY:
            return forbidden_write("edit contacts")
        try:
            body = (await request.json())["contactList"]
            lid, cid, status = str(body["list"]), int(body["contact"]), int(body["status"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"title": "The contactList was not valid", "detail": "", "code": "field_invalid"}]}, 422)
        if lid not in state.lists or state.email(cid) is None:
            return JSONResponse({"message": f"No Result found for Subscriber with id {cid}"}, 404)
        state.status[(lid, cid)] = status
        counters["unsubscribed" if status == 2 else "subscribed"] += 1
        return JSONResponse({"contacts": [contact_json(cid, state.email(cid))],
                             "contactList": {"contact": str(cid), "list": lid, "status": status, "id": str(cid)}})

    async def delete_contact(request: Request) -> JSONResponse:
        key = key_of(request)
        if not key:
            return denied()
        if key == READ_ONLY_KEY:
            return forbidden_write("delete contacts")
        cid = int(request.path_params["id"])
        if state.email(cid) is None:
            return JSONResponse({"message": f"No result found for contact with id {cid}"}, 404)
        state.deleted.add(cid)
        counters["deleted"] += 1
        return JSONResponse({})

    async def create_webhook(request: Request) -> JSONResponse:
        key = key_of(request)
        if not key:
            return denied()
        if key == READ_ONLY_KEY:
            return forbidden_write("manage webhooks")
        hook = (await request.json()).get("webhook") or {}
        missing = [f for f in ("name", "url", "events", "sources") if not hook.get(f)]
        if missing:
            return JSONResponse({"errors": [{"title": f"The {missing[0]} field is required", "code": "field_missing"}]}, 422)
        hid = str(len(state.webhooks) + 1)
        state.webhooks[hid] = {**hook, "id": hid, "links": []}
        return JSONResponse({"webhook": state.webhooks[hid]}, 201)

    async def delete_webhook(request: Request) -> JSONResponse:
        if not key_of(request):
            return denied()
        hid = request.path_params["id"]
        if state.webhooks.pop(hid, None) is None:
            return JSONResponse({"message": f"No Result found for Webhook with id {hid}"}, 404)
        return JSONResponse({})

    app = Starlette(routes=[
        Route("/api/3/users/me", users_me),
        Route("/api/3/lists", lists),
        Route("/api/3/lists/{id}", one_list),
        Route("/api/3/contacts", contacts),
        Route("/api/3/contacts/{id:int}", delete_contact, methods=["DELETE"]),
        Route("/api/3/contactLists", contact_lists, methods=["POST"]),
        Route("/api/3/webhooks", create_webhook, methods=["POST"]),
        Route("/api/3/webhooks/{id}", delete_webhook, methods=["DELETE"]),
    ])
    faults = FaultPlan()

    def add_member(list_id: str, email: str) -> str:
        cid = state.max_id + 1
        state.extra[cid] = email
        state.status[(list_id, cid)] = 1
        return str(cid)

    def credentials(key: str):
        return lambda base_url: {"api_url": ACCOUNT_URL, "api_key": key}

    return Emulator(
        slug="activecampaign",
        app=FaultMiddleware(app, faults),
        faults=faults,
        list_id=MAIN_LIST,
        state=state,
        counters=counters,
        credentials=credentials(GOOD_KEY),
        bad_credentials=credentials(WRONG_KEY),
        read_only_credentials=credentials(READ_ONLY_KEY),
        is_unsubscribed=lambda email: (cid := state.find(email)) is not None and state.list_status(MAIN_LIST, cid) == 2,
        is_deleted=lambda email: state.find(email) is None,
        add_member=add_member,
    )
