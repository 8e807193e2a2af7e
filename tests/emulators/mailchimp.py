"""Mailchimp Marketing API 3.0 emulator, after the official SDK (mailchimp-marketing-python) and docs.

Mailchimp publishes no OpenAPI spec in esp-specs, so there is no ContractMiddleware; instead the
emulator checks what it can itself and records breaches in `violations`: every write may carry
only the email address and subscription status, page sizes stay within the documented 1,000,
query parameters are the documented ones.

Faithful parts: paths under `/3.0`, HTTP Basic with any user name and the key as password (or
`Bearer` for OAuth tokens), `application/problem+json` errors (type/title/status/detail/instance),
offset/count paging with `total_items`, `fields`/`exclude_fields` with dot notation, member ids
that are the MD5 of the lower-cased email, the batch subscribe/unsubscribe endpoint with its
`new_members`/`updated_members`/`errors`, archive vs permanent delete (a permanently deleted
address cannot be re-imported; a self-unsubscribed one is in "compliance state"), per-audience
webhooks whose URL is first validated with a GET, the OAuth metadata call, and the limit of 10
simultaneous connections per user answered with 429 and no Retry-After. Members of the main
audience are generated lazily from their position, so 100,000 cost only the changes made.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractViolations
from tests.emulators.faults import FaultMiddleware, FaultPlan

DC = "us21"
GOOD_KEY = "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c20-us21"
READ_ONLY_KEY = "7c2e4a6b8d0f1e3c5a7b9d1f3e5c7a90-us21"  # a user with the "viewer" role
WRONG_KEY = "00000000000000000000000000000000-us21"
WRONG_DC_KEY = GOOD_KEY.replace("-us21", "-us6")  # the right secret, the wrong data centre
OAUTH_TOKEN = "5d41402abc4b2a76b9719d911017c592"  # Mailchimp OAuth tokens never expire
VIEWER_OAUTH_TOKEN = "7d793037a0760186574b0282f2f435e7"
MAIN_LIST = "a6b5da1054"
OTHER_LIST = "b7c6eb2165"
SAVED_SEGMENT = 101  # every 10th member of the main audience
TAG_SEGMENT = 202  # a tag ("static" segment): every 100th member
CONNECTION_LIMIT = 10
PAGE_MAX = 1000
BATCH_MAX = 500
ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
WRITE_ROLES = ("owner", "admin", "manager")

MEMBER_QUERY = {"fields", "exclude_fields", "count", "offset", "email_type", "status", "since_timestamp_opt",
                "before_timestamp_opt", "since_last_changed", "before_last_changed", "unique_email_id",
                "vip_only", "interest_category_id", "interest_ids", "interest_match", "sort_field", "sort_dir",
                "since_last_campaign", "unsubscribed_since"}
SEGMENT_MEMBER_QUERY = {"fields", "exclude_fields", "count", "offset", "include_cleaned", "include_transactional",
                        "include_unsubscribed"}
LISTS_QUERY = {"fields", "exclude_fields", "count", "offset", "before_date_created", "since_date_created",
               "before_campaign_last_sent", "since_campaign_last_sent", "email", "sort_field", "sort_dir",
               "has_ecommerce_store", "include_total_contacts"}
SEGMENTS_QUERY = {"fields", "exclude_fields", "count", "offset", "type", "since_created_at", "before_created_at",
                  "include_cleaned", "include_transactional", "include_unsubscribed", "since_updated_at",
                  "before_updated_at"}
MEMBER_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": ERROR_TYPE, "title": title, "status": status, "detail": detail, "instance": str(uuid.uuid4()), **extra}
    return JSONResponse(body, status, media_type="application/problem+json; charset=utf-8",
                        headers={"X-Request-Id": body["instance"]})


def not_found() -> JSONResponse:
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def forbidden() -> JSONResponse:
    # The error glossary's generic 403; a viewer-role user gets it on writes.
    return problem(403, "Forbidden", "You are not permitted to access this resource.")


def select_fields(doc: Any, fields: str | None, exclude: str | None) -> Any:
    """Mailchimp's `fields` / `exclude_fields`: comma-separated, dot notation into sub-objects and arrays."""

    def tree(spec: str) -> dict:
        root: dict = {}
        for path in filter(None, (p.strip() for p in spec.split(","))):
            node = root
            for part in path.split("."):
                node = node.setdefault(part, {})
        return root

    def keep(obj: Any, t: dict) -> Any:
        if isinstance(obj, list):
            return [keep(x, t) for x in obj]
        if not isinstance(obj, dict):
            return obj
        return {k: (keep(obj[k], sub) if sub else obj[k]) for k, sub in t.items() if k in obj}

    def drop(obj: Any, t: dict) -> Any:
        if isinstance(obj, list):
            return [drop(x, t) for x in obj]
        if not isinstance(obj, dict):
            return obj
        return {k: (drop(v, t[k]) if t.get(k) else v) for k, v in obj.items() if not (k in t and not t[k])}

    if fields:
        doc = keep(doc, tree(fields))
    if exclude:
        doc = drop(doc, tree(exclude))
    return doc


@dataclass
class Member:
    email: str
    status: str = "subscribed"
    self_unsubscribed: bool = False  # unsubscribed by the person (or bounced): "compliance state"


@dataclass
class MCState:
    members: int  # lazily generated members of MAIN_LIST at positions 0..members-1
    lists: dict[str, str] = field(default_factory=lambda: {MAIN_LIST: "Newsletter", OTHER_LIST: "Customers"})
    touched: dict[int, Member] = field(default_factory=dict)  # position -> member whose state changed
    extra: list[tuple[str, str]] = field(default_factory=list)  # (list_id, email) added after build
    forgotten: set[str] = field(default_factory=set)  # (list_id + hash) permanently deleted
    other: dict[str, dict[str, Member]] = field(default_factory=lambda: defaultdict(dict))  # OTHER_LIST etc.: hash -> member
    webhooks: dict[str, dict] = field(default_factory=dict)
    outbox: list[tuple[str, bytes]] = field(default_factory=list)  # webhook deliveries Mailchimp would POST
    latency: float = 0.0  # seconds each request takes, so concurrent requests overlap
    page_counts: list[int] = field(default_factory=list)  # `count` of every member-page request
    _hash_index: dict[str, int] | None = None
    _gaps: list[int] | None = None  # sorted positions that are not subscribed (cache)

    # --- the main audience, by position -------------------------------------------
    @property
    def size(self) -> int:
        return self.members + sum(1 for lid, _ in self.extra if lid == MAIN_LIST)

    def email_at(self, pos: int) -> str:
        if pos < self.members:
            return f"member{pos}@example.com"
        return [e for lid, e in self.extra if lid == MAIN_LIST][pos - self.members]

    def member_at(self, pos: int) -> Member | None:
        """None once permanently deleted."""
        member = self.touched.get(pos)
        if member is None:
            member = Member(self.email_at(pos))
        if MAIN_LIST + subscriber_hash(member.email) in self.forgotten:
            return None
        return member

    def position(self, hash_or_email: str) -> int | None:
        key = subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()
        if self._hash_index is None:  # built on the first write by hash, not while streaming
            self._hash_index = {subscriber_hash(self.email_at(p)): p for p in range(self.size)}
        return self._hash_index.get(key)

    def change(self, pos: int, **updates: Any) -> Member:
        member = self.touched.get(pos) or Member(self.email_at(pos))
        for name, value in updates.items():
            setattr(member, name, value)
        self.touched[pos] = member
        self._gaps = None
        return member

    def gaps(self) -> list[int]:
        """Sorted positions that are not subscribed: only touched positions can be."""
        if self._gaps is None:
            self._gaps = sorted(p for p in self.touched if (m := self.member_at(p)) is None or m.status != "subscribed")
        return self._gaps

    def subscribed_count(self) -> int:
        return self.size - len(self.gaps())

    def subscribed_from(self, offset: int):
        """Positions of subscribed members, starting at the `offset`-th one, without a full scan."""
        gaps = self.gaps()
        gap_set = set(gaps)
        pos = offset
        while pos - bisect.bisect_left(gaps, pos) < offset:
            pos += offset - (pos - bisect.bisect_left(gaps, pos))
        while pos < self.size:
            if pos not in gap_set:
                yield pos
            pos += 1

    # --- any audience, by hash --------------------------------------------------------
    def find(self, list_id: str, hash_or_email: str) -> tuple[int | None, Member | None]:
        if list_id == MAIN_LIST:
            pos = self.position(hash_or_email)
            return pos, (self.member_at(pos) if pos is not None else None)
        key = subscriber_hash(hash_or_email) if "@" in hash_or_email else hash_or_email.lower()
        return None, (None if list_id + key in self.forgotten else self.other[list_id].get(key))

    def set_member(self, list_id: str, pos: int | None, member: Member, **updates: Any) -> Member:
        if list_id == MAIN_LIST and pos is not None:
            return self.change(pos, **updates)
        for name, value in updates.items():
            setattr(member, name, value)
        self.other[list_id][subscriber_hash(member.email)] = member
        return member

    def add(self, list_id: str, email: str, status: str = "subscribed", source: str = "admin") -> str:
        key = subscriber_hash(email)
        self.forgotten.discard(list_id + key)  # a real signup form brings a forgotten address back
        if list_id == MAIN_LIST:
            pos = self.position(email)
            if pos is not None:  # back after an archive or a permanent delete: same position, fresh state
                self.change(pos, status=status, self_unsubscribed=False)
            else:
                self.extra.append((list_id, email))
                pos = self.size - 1
                if self._hash_index is not None:
                    self._hash_index[key] = pos
                if status != "subscribed":
                    self.change(pos, status=status)
                self._gaps = None
        else:
            self.other[list_id][key] = Member(email, status)
        if status == "subscribed":
            self.queue_subscribe_webhooks(list_id, email, source)
        return key

    def queue_subscribe_webhooks(self, list_id: str, email: str, source: str) -> None:
        """What Mailchimp would POST to each webhook of the audience that listens to this source."""
        for hook in self.webhooks.values():
            if hook["list_id"] == list_id and hook["events"].get("subscribe") and hook["sources"].get(source):
                self.outbox.append((hook["url"], subscribe_form(email, list_id)))

    def counts(self, list_id: str) -> Counter:
        if list_id == MAIN_LIST:
            c = Counter(m.status for p in self.gaps() if (m := self.member_at(p)) is not None)
            c["subscribed"] = self.subscribed_count()
            return c
        return Counter(m.status for m in self.other[list_id].values())


def subscribe_form(email: str, list_id: str, *, fired_at: datetime | None = None, web_id: str = "8a25ff1d98") -> bytes:
    """A `subscribe` delivery exactly as Mailchimp form-encodes it (bracketed keys, `fired_at` in UTC)."""
    stamp = (fired_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S")
    return urlencode([("type", "subscribe"), ("fired_at", stamp), ("data[id]", web_id), ("data[list_id]", list_id),
                      ("data[email]", email), ("data[email_type]", "html"), ("data[merges][EMAIL]", email),
                      ("data[merges][FNAME]", ""), ("data[merges][LNAME]", ""), ("data[ip_opt]", "10.20.10.30"),
                      ("data[ip_signup]", "10.20.10.30")]).encode()


def member_json(member: Member, list_id: str) -> dict:
    h = subscriber_hash(member.email)
    return {"id": h, "email_address": member.email, "unique_email_id": h[:10], "contact_id": h[::-1],
            "full_name": "", "web_id": int(h[:7], 16), "email_type": "html", "status": member.status,
            "consents_to_one_to_one_messaging": True, "merge_fields": {"FNAME": "", "LNAME": ""},
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0}, "ip_signup": "", "timestamp_signup": "",
            "ip_opt": "10.20.10.30", "timestamp_opt": "2024-05-01T10:00:00+00:00", "member_rating": 2,
            "last_changed": "2024-05-01T10:00:00+00:00", "language": "", "vip": False, "email_client": "",
            "location": {"latitude": 0, "longitude": 0, "gmtoff": 0, "dstoff": 0, "country_code": "", "timezone": ""},
            "source": "API - Generic", "tags_count": 0, "tags": [], "list_id": list_id, "_links": []}


class ConnectionLimit:
    """Mailchimp allows 10 simultaneous connections per user; the 11th gets 429 (no Retry-After)."""

    def __init__(self, app: ASGIApp, state: MCState, counters: Counter) -> None:
        self.app = app
        self.state = state
        self.counters = counters
        self.in_flight: Counter = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.counters["requests"] += 1
        who = dict(scope["headers"]).get(b"authorization", b"")
        if self.in_flight[who] >= CONNECTION_LIMIT:
            self.counters["429"] += 1
            await problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")(scope, receive, send)
            return
        self.in_flight[who] += 1
        self.counters["max_in_flight"] = max(self.counters["max_in_flight"], self.in_flight[who])
        try:
            if self.state.latency:
                await asyncio.sleep(self.state.latency)
            await self.app(scope, receive, send)
        finally:
            self.in_flight[who] -= 1


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = MCState(members=members)
    counters: Counter = Counter()
    violations = ContractViolations()
    roles = {GOOD_KEY: "owner", READ_ONLY_KEY: "viewer", OAUTH_TOKEN: "owner", VIEWER_OAUTH_TOKEN: "viewer"}

    def violation(request: Request, text: str) -> None:
        violations.errors.append(f"{request.method} {request.url.path}: {text}")

    def who(request: Request) -> tuple[str | None, JSONResponse | None]:
        """(role, None) for a good key or token, else (None, the 401 Mailchimp sends)."""
        violations.checked += 1
        auth = request.headers.get("authorization", "")
        secret = None
        if auth.startswith("Basic "):
            try:
                _, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                secret = None
        elif auth.startswith("Bearer "):
            secret = auth[7:]
        if not secret:
            return None, problem(401, "API Key Missing", "Your request did not include an API key.")
        if secret not in roles:  # a wrong key and a right key for another data centre look the same
            return None, problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter.")
        return roles[secret], None

    def paging(request: Request, allowed: set[str]) -> tuple[int, int]:
        q = request.query_params
        for name in q:
            if name not in allowed:
                violation(request, f"query parameter {name!r} is not documented here")
        count = int(q.get("count", 10))
        if count > PAGE_MAX:
            violation(request, f"count={count} is over the documented maximum of {PAGE_MAX}")
        return max(0, min(count, PAGE_MAX)), max(0, int(q.get("offset", 0)))

    def reply(request: Request, doc: dict, status: int = 200) -> JSONResponse:
        q = request.query_params
        return JSONResponse(select_fields(doc, q.get("fields"), q.get("exclude_fields")), status)

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except ValueError:
            return None

    # --- account ---------------------------------------------------------------------------
    async def root(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        return reply(request, {"account_id": "8d3a3db4d97663a9074efcc16", "login_id": "4242", "account_name": "Acme Hats",
                               "email": "owner@acme.test", "first_name": "Ann", "last_name": "Owner", "username": "acmehats",
                               "role": role, "member_since": "2020-01-01T00:00:00+00:00", "pricing_plan_type": "monthly",
                               "account_timezone": "UTC", "pro_enabled": False, "total_subscribers": state.subscribed_count(),
                               "_links": []})

    async def ping(request: Request) -> Response:
        _, denied = who(request)
        return denied or JSONResponse({"health_status": "Everything's Chimpy!"})

    async def oauth_metadata(request: Request) -> Response:
        # login.mailchimp.com answers with `Authorization: OAuth <token>`; its error body is undocumented.
        auth = request.headers.get("authorization", "")
        token = auth[6:] if auth.startswith("OAuth ") else None
        counters["metadata"] += 1
        if token not in (OAUTH_TOKEN, VIEWER_OAUTH_TOKEN):
            return JSONResponse({"error": "invalid_token", "error_description": "Invalid or expired token"}, 401)
        return JSONResponse({"dc": DC, "role": roles[token], "accountname": "Acme Hats", "user_id": 4242,
                             "login": {"email": "owner@acme.test", "login_id": 4242, "login_name": "acmehats"},
                             "login_url": "https://login.mailchimp.com", "api_endpoint": f"https://{DC}.api.mailchimp.com"})

    # --- audiences and segments -------------------------------------------------------------
    def segment_positions(sid: int):
        step = 10 if sid == SAVED_SEGMENT else 100
        for pos in range(0, state.size, step):
            member = state.member_at(pos)
            if member is not None and member.status == "subscribed":
                yield pos

    async def lists(request: Request) -> Response:
        _, denied = who(request)
        if denied:
            return denied
        count, offset = paging(request, LISTS_QUERY)
        rows = []
        for lid, name in state.lists.items():
            c = state.counts(lid)
            rows.append({"id": lid, "web_id": int(lid[:6], 16), "name": name, "double_optin": False, "visibility": "prv",
                         "stats": {"member_count": c["subscribed"], "unsubscribe_count": c["unsubscribed"],
                                   "cleaned_count": c["cleaned"], "member_count_since_send": c["subscribed"],
                                   "campaign_count": 0}, "_links": []})
        return reply(request, {"lists": rows[offset : offset + count], "total_items": len(rows), "constraints": {}, "_links": []})

    async def segments(request: Request) -> Response:
        _, denied = who(request)
        if denied:
            return denied
        lid = request.path_params["list_id"]
        if lid not in state.lists:
            return not_found()
        count, offset = paging(request, SEGMENTS_QUERY)
        rows = []
        if lid == MAIN_LIST:
            for sid, name, kind in ((SAVED_SEGMENT, "Every tenth", "saved"), (TAG_SEGMENT, "VIP", "static")):
                rows.append({"id": sid, "name": name, "member_count": sum(1 for _ in segment_positions(sid)), "type": kind,
                             "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00",
                             "list_id": lid, "_links": []})
        wanted = request.query_params.get("type")
        rows = [r for r in rows if not wanted or r["type"] == wanted]
        return reply(request, {"segments": rows[offset : offset + count], "list_id": lid, "total_items": len(rows), "_links": []})

    async def list_members(request: Request) -> Response:
        _, denied = who(request)
        if denied:
            return denied
        lid = request.path_params["list_id"]
        if lid not in state.lists:
            return not_found()
        count, offset = paging(request, MEMBER_QUERY)
        state.page_counts.append(count)
        counters["member_pages"] += 1
        wanted = request.query_params.get("status")
        if wanted and wanted not in MEMBER_STATUSES:
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.",
                           errors=[{"field": "status", "message": "Value is not one of the accepted values."}])
        if lid == MAIN_LIST and wanted == "subscribed":
            page = []
            for pos in state.subscribed_from(offset):
                if len(page) >= count:
                    break
                page.append(member_json(state.member_at(pos), lid))
            total = state.subscribed_count()
        else:
            if lid == MAIN_LIST:
                pool = (m for p in range(state.size) if (m := state.member_at(p)) is not None)
            else:
                pool = iter(state.other[lid].values())
            # Without a status filter Mailchimp leaves archived contacts out.
            chosen = [m for m in pool if (m.status == wanted if wanted else m.status != "archived")]
            page, total = [member_json(m, lid) for m in chosen[offset : offset + count]], len(chosen)
        return reply(request, {"members": page, "list_id": lid, "total_items": total, "_links": []})

    async def segment_members(request: Request) -> Response:
        _, denied = who(request)
        if denied:
            return denied
        lid, sid = request.path_params["list_id"], request.path_params["segment_id"]
        if lid != MAIN_LIST or sid not in (str(SAVED_SEGMENT), str(TAG_SEGMENT)):
            return not_found()
        count, offset = paging(request, SEGMENT_MEMBER_QUERY)
        state.page_counts.append(count)
        counters["member_pages"] += 1
        chosen = list(segment_positions(int(sid)))  # unsubscribed and cleaned are left out by default
        page = [member_json(state.member_at(p), lid) for p in chosen[offset : offset + count]]
        return reply(request, {"members": page, "total_items": len(chosen), "_links": []})

    # --- writes: subscription state only ------------------------------------------------------
    def compliance_refusal(member: Member) -> str | None:
        if member.self_unsubscribed or member.status == "cleaned":
            return f"{member.email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."
        return None

    async def batch(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        lid = request.path_params["list_id"]
        if role not in WRITE_ROLES:
            return forbidden()
        if lid not in state.lists:
            return not_found()
        for name in request.query_params:
            if name not in ("skip_merge_validation", "skip_duplicate_check"):
                violation(request, f"query parameter {name!r} is not documented here")
        body = await body_of(request)
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.",
                           errors=[{"field": "members", "message": "Required fields were not provided: members"}])
        for key in set(body) - {"members", "update_existing"}:
            violation(request, f"batch body sets {key!r}; only members and update_existing may be sent")
        if len(body["members"]) > BATCH_MAX:
            return problem(400, "Invalid Resource", f"You can only batch up to {BATCH_MAX} members at a time.")
        counters["batch_requests"] += 1
        addresses = [str(m.get("email_address") or "").lower() for m in body["members"] if isinstance(m, dict)]
        if len(addresses) != len(set(addresses)):
            violation(request, "the same address appears twice in one batch (Mailchimp rejects duplicates)")
        update = bool(body.get("update_existing"))
        created, updated, errors = [], [], []
        for item in body["members"]:
            if not isinstance(item, dict):
                errors.append({"email_address": "", "error": "Member data is not an object.", "error_code": "ERROR_GENERIC",
                               "field": "", "field_message": ""})
                continue
            for key in set(item) - {"email_address", "status"}:
                violation(request, f"batch member sets {key!r}; only email_address and status may be written")
            email, status = str(item.get("email_address") or ""), item.get("status")
            if status not in ("subscribed", "unsubscribed"):
                violation(request, f"batch member status {status!r}; Listwarden only subscribes or unsubscribes")
            if "@" not in email:
                errors.append({"email_address": email, "error": f"{email} looks fake or invalid, please enter a real email address.",
                               "error_code": "ERROR_GENERIC", "field": "email_address", "field_message": "Invalid email address"})
                continue
            if lid + subscriber_hash(email) in state.forgotten:
                errors.append({"email_address": email, "error": f"{email} was permanently deleted and cannot be re-imported. "
                               "The contact must re-subscribe to get back on the list.", "error_code": "ERROR_GENERIC",
                               "field": "", "field_message": ""})
                continue
            pos, member = state.find(lid, email)
            if member is None:
                state.add(lid, email, status, source="api")
                created.append(member_json(Member(email, status), lid))
                counters["created"] += 1
                continue
            if not update:
                errors.append({"email_address": email, "error": f"{email} is already a list member, do you want to update? "
                               "please provide update_existing:true in the request body", "error_code": "ERROR_CONTACT_EXISTS",
                               "field": "", "field_message": ""})
                continue
            if status == "subscribed" and (refusal := compliance_refusal(member)):
                errors.append({"email_address": email, "error": refusal, "error_code": "ERROR_GENERIC", "field": "", "field_message": ""})
                continue
            was = member.status
            member = state.set_member(lid, pos, member, status=status)
            if was != status:
                counters["unsubscribed" if status == "unsubscribed" else "subscribed"] += 1
            updated.append(member_json(member, lid))
        return JSONResponse({"new_members": created, "updated_members": updated, "errors": errors,
                             "total_created": len(created), "total_updated": len(updated), "error_count": len(errors), "_links": []})

    async def one_member(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        lid, key = request.path_params["list_id"], request.path_params["subscriber_hash"]
        if request.method != "GET" and role not in WRITE_ROLES:
            return forbidden()
        if lid not in state.lists:
            return not_found()
        pos, member = state.find(lid, key)
        if member is None:
            return not_found()
        if request.method == "GET":
            return reply(request, member_json(member, lid))
        if request.method == "DELETE":
            if member.status in ("archived", "cleaned", "pending"):
                response = problem(405, "Method Not Allowed", "This list member cannot be removed. "
                                   "Can not archive a contact that is bounced, pending or archived")
                response.headers["Allow"] = "GET, PUT"
                return response
            state.set_member(lid, pos, member, status="archived")
            counters["deleted"] += 1
            return Response(status_code=204)
        body = await body_of(request)  # PATCH
        if not isinstance(body, dict):
            return problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
        for k in set(body) - {"status"}:
            violation(request, f"PATCH sets {k!r}; only status may be written")
        status = body.get("status")
        if status not in ("subscribed", "unsubscribed"):
            violation(request, f"PATCH status {status!r}; Listwarden only subscribes or unsubscribes")
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.",
                           errors=[{"field": "status", "message": "Value is not one of the accepted values."}])
        if status == "subscribed" and (refusal := compliance_refusal(member)):
            return problem(400, "Member In Compliance State", refusal)
        was = member.status
        member = state.set_member(lid, pos, member, status=status)
        if was != status:
            counters["unsubscribed" if status == "unsubscribed" else "subscribed"] += 1
        return JSONResponse(member_json(member, lid))

    async def delete_permanent(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        if role not in WRITE_ROLES:
            return forbidden()
        lid, key = request.path_params["list_id"], request.path_params["subscriber_hash"]
        if lid not in state.lists:
            return not_found()
        pos, member = state.find(lid, key)
        if member is None:
            return not_found()
        state.forgotten.add(lid + subscriber_hash(member.email))
        if lid == MAIN_LIST:
            state.change(pos)  # touched, so the position drops out of every subscribed page
        else:
            state.other[lid].pop(subscriber_hash(member.email), None)
        counters["deleted"] += 1
        counters["deleted_permanently"] += 1
        return Response(status_code=204)

    # --- webhooks ------------------------------------------------------------------------------
    async def webhooks(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        lid = request.path_params["list_id"]
        if lid not in state.lists:
            return not_found()
        if request.method == "GET":
            hooks = [h for h in state.webhooks.values() if h["list_id"] == lid]
            return reply(request, {"webhooks": hooks, "list_id": lid, "total_items": len(hooks), "_links": []})
        if role not in WRITE_ROLES:
            return forbidden()
        body = await body_of(request)
        if not isinstance(body, dict) or not body.get("url"):
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.",
                           errors=[{"field": "url", "message": "This value should not be blank."}])
        for key in set(body) - {"url", "events", "sources"}:
            violation(request, f"webhook body sets {key!r}")
        url = str(body["url"])
        host = urlsplit(url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            # Mailchimp GETs the URL before saving; only loopback URLs can be reached from a test.
            counters["webhook_validations"] += 1
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    check = await client.get(url)
                ok = check.status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                # The exact wording of this refusal is not documented.
                return problem(400, "Invalid Resource", "The resource submitted could not be validated. "
                               "For field-specific details, see the 'errors' array.",
                               errors=[{"field": "url", "message": "The URL did not answer our validation GET request with a 200."}])
        hid = hashlib.md5(f"{lid}{url}{len(state.webhooks)}".encode()).hexdigest()[:10]
        kinds = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
        events = {k: bool((body.get("events") or {}).get(k)) for k in kinds}
        sources = {k: bool((body.get("sources") or {}).get(k)) for k in ("user", "admin", "api")}
        state.webhooks[hid] = {"id": hid, "url": url, "events": events, "sources": sources, "list_id": lid, "_links": []}
        return JSONResponse(state.webhooks[hid])

    async def one_webhook(request: Request) -> Response:
        role, denied = who(request)
        if denied:
            return denied
        if role not in WRITE_ROLES:
            return forbidden()
        hook = state.webhooks.get(request.path_params["webhook_id"])
        if hook is None or hook["list_id"] != request.path_params["list_id"]:
            return not_found()
        del state.webhooks[hook["id"]]
        return Response(status_code=204)

    app = Starlette(routes=[
        Route("/3.0/", root),
        Route("/3.0/ping", ping),
        Route("/oauth2/metadata", oauth_metadata),
        Route("/3.0/lists", lists),
        Route("/3.0/lists/{list_id}", batch, methods=["POST"]),
        Route("/3.0/lists/{list_id}/segments", segments),
        Route("/3.0/lists/{list_id}/segments/{segment_id}/members", segment_members),
        Route("/3.0/lists/{list_id}/members", list_members),
        Route("/3.0/lists/{list_id}/members/{subscriber_hash}", one_member, methods=["GET", "PATCH", "DELETE"]),
        Route("/3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent", delete_permanent, methods=["POST"]),
        Route("/3.0/lists/{list_id}/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/3.0/lists/{list_id}/webhooks/{webhook_id}", one_webhook, methods=["DELETE"]),
    ])
    faults = FaultPlan()

    def probe(email: str) -> Member | None:
        return state.find(MAIN_LIST, email)[1]

    def credentials(key: str):
        return lambda base_url: {"api_key": key}

    return Emulator(
        slug="mailchimp",
        app=FaultMiddleware(ConnectionLimit(app, state, counters), faults),
        faults=faults,
        list_id=MAIN_LIST,
        state=state,
        counters=counters,
        violations=violations,
        credentials=credentials(GOOD_KEY),
        bad_credentials=credentials(WRONG_KEY),
        read_only_credentials=credentials(READ_ONLY_KEY),
        is_unsubscribed=lambda email: (m := probe(email)) is not None and m.status == "unsubscribed",
        is_deleted=lambda email: (m := probe(email)) is None or m.status == "archived",
        add_member=lambda list_id, email: state.add(list_id, email),
    )
