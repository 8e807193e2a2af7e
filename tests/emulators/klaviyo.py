"""Klaviyo emulator after the official OpenAPI spec (klaviyo/openapi stable.json, revision 2026-07-15).

`Authorization: Klaviyo-API-Key pk_...` plus a required `revision` header; JSON:API documents;
errors as `{"errors":[{id,status,code,title,detail,source}]}`. A wrong key gets 401, the read-only
key reads but gets 403 on writes. Lists/segments page by 10, profiles by 100, cursors in
`links.next`. Per-endpoint fixed-window limits (burst per second, steady per minute) answer 429
with Retry-After; `state.tiers` lifts them. Unsubscribe/subscribe/deletion jobs answer 202 and are
applied only when the next request reaches the account, as an asynchronous job would be.

Every request goes through ContractMiddleware with a reduced copy of the spec: only the paths
served here plus everything they `$ref`. The full 3 MB spec does not load in openapi-core at all
(openapi-spec-validator rejects a `default` that matches both branches of a `oneOf` in an
unrelated template schema), and the reduced one builds in a fraction of a second.

Members of the main list are generated lazily from their index, so 100,000 cost only the changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from openapi_core import OpenAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractMiddleware, ContractViolations, load_document, load_spec, reduce_document
from tests.emulators.faults import FaultMiddleware, FaultPlan

SPEC_FILE = "klaviyo.json"
SPEC_SERVER = "https://a.klaviyo.com"
REVISION = "2026-07-15"
JSONAPI = "application/vnd.api+json"
GOOD_KEY = "pk_" + "a1" * 17  # 34 characters after pk_, as Klaviyo issues them
READ_ONLY_KEY = "pk_" + "b2" * 17
WRONG_KEY = "pk_" + "c3" * 17
MAIN_LIST = "Y6nRLr"
VIP_LIST = "Tk4sUP"  # double opt-in list, empty at start
SEGMENT = "Sg7Eng"  # every third generated member
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)  # generated profile i was created BASE_TIME + i seconds
EXTRAS = 2  # list members that cannot receive email: one unsubscribed, one hard-bounced
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PREFIX = "01J"

# The paths this emulator serves, with their methods, for the reduced contract spec.
SERVED = {
    "/api/lists": ["get"],
    "/api/lists/{id}": ["get"],
    "/api/segments": ["get"],
    "/api/segments/{id}": ["get"],
    "/api/lists/{id}/profiles": ["get"],
    "/api/segments/{id}/profiles": ["get"],
    "/api/profiles": ["get"],
    "/api/profiles/{id}": ["get"],
    "/api/profile-subscription-bulk-delete-jobs": ["post"],
    "/api/profile-subscription-bulk-create-jobs": ["post"],
    "/api/data-privacy-deletion-jobs": ["post"],
    "/api/webhooks": ["get", "post"],
    "/api/webhooks/{id}": ["get", "delete"],
    "/api/webhook-topics": ["get"],
}
TOPICS = (
    "event:klaviyo.bounced_email", "event:klaviyo.clicked_email", "event:klaviyo.opened_email",
    "event:klaviyo.received_email", "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.subscribed_to_email_marketing", "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.subscribed_to_sms_marketing", "event:klaviyo.sent_sms",
)
# (burst per second, steady per minute), from each operation's x-klaviyo-ratelimit.
TIER_LIMITS = {"L": (75, 750), "S": (3, 60), "XS": (1, 15)}


@lru_cache(maxsize=None)
def reduced_spec_dict() -> dict:
    """The official spec cut down to SERVED and the transitive closure of their `$ref`s."""
    return reduce_document(load_document(SPEC_FILE), SERVED)


def load_reduced_spec() -> OpenAPI:
    """Once per process (the full file does not load in openapi-core; see the module docstring)."""
    return load_spec(SPEC_FILE, served=SERVED)


def profile_id(index: int) -> str:
    digits = ""
    n = index
    while True:
        n, r = divmod(n, 32)
        digits = CROCKFORD[r] + digits
        if n == 0:
            break
    return ID_PREFIX + digits.rjust(23, "0")


def profile_index(pid: str) -> int | None:
    if len(pid) != 26 or not pid.startswith(ID_PREFIX):
        return None
    n = 0
    for ch in pid[len(ID_PREFIX) :]:
        value = CROCKFORD.find(ch)
        if value < 0:
            return None
        n = n * 32 + value
    return n


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


@dataclass
class KState:
    members: int
    lists: dict[str, dict] = field(default_factory=lambda: {
        MAIN_LIST: {"name": "Newsletter", "opt_in_process": "single_opt_in"},
        VIP_LIST: {"name": "VIP (double opt-in)", "opt_in_process": "double_opt_in"},
    })
    segments: dict[str, str] = field(default_factory=lambda: {SEGMENT: "Engaged"})
    added_email: dict[int, str] = field(default_factory=dict)  # profiles beyond the generated ones
    added_created: dict[int, datetime] = field(default_factory=dict)
    by_email: dict[str, int] = field(default_factory=dict)  # for added profiles
    joined: dict[str, list[int]] = field(default_factory=dict)  # list id -> added members in join order
    removed: dict[str, set[int]] = field(default_factory=dict)  # list id -> members taken out of it
    consent: dict[int, str] = field(default_factory=dict)  # overrides of the generated consent
    suppression: dict[int, list[dict]] = field(default_factory=dict)
    list_suppressions: dict[int, list[dict]] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    pending: list[tuple[int, str, dict]] = field(default_factory=list)  # (due request number, kind, body)
    webhooks: dict[str, dict] = field(default_factory=dict)
    webhooks_enabled: bool = True  # False: an account without system webhooks (not Advanced KDP)
    tiers: dict[str, tuple[int, int] | None] = field(default_factory=lambda: dict(TIER_LIMITS))
    windows: dict[str, list[float]] = field(default_factory=dict)  # limiter key -> [sec, n_sec, min, n_min]
    request_no: int = 0
    next_added: int = -1  # index of the next profile created after the generated ones
    counters: Counter = field(default_factory=Counter)

    @property
    def generated(self) -> int:
        return self.members + EXTRAS

    # --- profiles ----------------------------------------------------------------
    def email(self, index: int) -> str | None:
        if index in self.deleted:
            return None
        if 0 <= index < self.members:
            return f"member{index}@example.com"
        if index == self.members:
            return "unsubscribed0@example.com"
        if index == self.members + 1:
            return "bounced0@example.com"
        return self.added_email.get(index)

    def find(self, email: str) -> int | None:
        email = email.strip().lower()
        match = re.fullmatch(r"member(\d+)@example\.com", email)
        if match and int(match.group(1)) < self.members and int(match.group(1)) not in self.deleted:
            return int(match.group(1))
        for index in (self.members, self.members + 1):
            if self.email(index) == email:
                return index
        index = self.by_email.get(email)
        return index if index is not None and index not in self.deleted else None

    def created(self, index: int) -> datetime:
        return self.added_created.get(index) or BASE_TIME + timedelta(seconds=index)

    def consent_of(self, index: int) -> str:
        default = "UNSUBSCRIBED" if index == self.members else "NEVER_SUBSCRIBED" if index == self.members + 1 else "SUBSCRIBED"
        return self.consent.get(index, default)

    def suppressions_of(self, index: int) -> list[dict]:
        if index in self.suppression:
            return self.suppression[index]
        if index == self.members:
            return [{"reason": "UNSUBSCRIBE", "timestamp": stamp(BASE_TIME)}]
        if index == self.members + 1:
            return [{"reason": "HARD_BOUNCE", "timestamp": stamp(BASE_TIME)}]
        return []

    def can_receive(self, index: int) -> bool:
        return self.consent_of(index) != "UNSUBSCRIBED" and not self.suppressions_of(index)

    def new_profile(self, email: str) -> int:
        index = self.next_added = max(self.next_added, self.generated)
        self.next_added += 1
        self.added_email[index] = email.strip().lower()
        self.added_created[index] = datetime.now(timezone.utc)
        self.by_email[email.strip().lower()] = index
        self.consent[index] = "NEVER_SUBSCRIBED"
        return index

    def all_profiles(self, start: int = 0) -> Iterator[int]:
        for index in range(start, self.generated):
            if index not in self.deleted:
                yield index
        for index in sorted(self.added_email):
            if index >= start and index not in self.deleted:
                yield index

    # --- lists --------------------------------------------------------------------
    def in_list(self, list_id: str, index: int) -> bool:
        if index in self.deleted or index in self.removed.get(list_id, ()):
            return False
        return (list_id == MAIN_LIST and 0 <= index < self.generated) or index in self.joined.get(list_id, [])

    def list_sequence(self, list_id: str) -> tuple[range, list[int]]:
        """Positions of a list's members: generated ones first, then those who joined later."""
        return (range(self.generated) if list_id == MAIN_LIST else range(0)), self.joined.get(list_id, [])

    def list_count(self, list_id: str) -> int:
        generated, later = self.list_sequence(list_id)
        gone = {i for i in (self.removed.get(list_id, set()) | self.deleted) if i in generated}
        return len(generated) - len(gone) + sum(1 for i in later if self.in_list(list_id, i))

    def in_segment(self, index: int, *, alive: bool = True) -> bool:
        return 0 <= index < self.members and index % 3 == 0 and not (alive and index in self.deleted)

    def segment_count(self) -> int:
        return math.ceil(self.members / 3) - sum(1 for i in self.deleted if self.in_segment(i, alive=False))

    def join(self, list_id: str, index: int) -> None:
        self.removed.get(list_id, set()).discard(index)
        if not self.in_list(list_id, index):
            self.joined.setdefault(list_id, []).append(index)

    # --- jobs ----------------------------------------------------------------------
    def settle(self, upto: int | None = None) -> None:
        """Apply every queued job due by request number `upto` (all of them when None)."""
        keep: list[tuple[int, str, dict]] = []
        for due, kind, body in self.pending:
            if upto is None or due <= upto:
                self.apply(kind, body)
            else:
                keep.append((due, kind, body))
        self.pending = keep

    def apply(self, kind: str, job: dict) -> None:
        now = stamp(datetime.now(timezone.utc))
        if kind == "deletion":
            index = self.find(job["email"]) if job.get("email") else profile_index(job.get("id") or "")
            if index is not None and self.email(index) is not None:
                self.deleted.add(index)
                self.counters["deleted"] += 1
            return
        list_id = job.get("list_id")
        for email in job["emails"]:
            index = self.find(email)
            if index is None:
                # "If a profile cannot be found matching the given identifier(s), a new profile will be created"
                index = self.new_profile(email)
                self.counters["created"] += 1
            if kind == "unsubscribe":
                if list_id and self.in_list(list_id, index):
                    self.removed.setdefault(list_id, set()).add(index)
                    marks = self.list_suppressions.setdefault(index, [])
                    if not any(m["list_id"] == list_id for m in marks):
                        marks.append({"list_id": list_id, "reason": "UNSUBSCRIBE", "timestamp": now})
                        self.counters["unsubscribed"] += 1
                elif self.consent_of(index) != "UNSUBSCRIBED":
                    # "Profiles not in the specified list will be globally unsubscribed."
                    self.consent[index] = "UNSUBSCRIBED"
                    self.suppression[index] = [*self.suppressions_of(index), {"reason": "UNSUBSCRIBE", "timestamp": now}]
                    self.counters["unsubscribed"] += 1
            else:  # subscribe
                self.consent[index] = "SUBSCRIBED"
                # "This API will remove any UNSUBSCRIBE, SPAM_REPORT or USER_SUPPRESSED suppressions"
                self.suppression[index] = [s for s in self.suppressions_of(index) if s["reason"] not in ("UNSUBSCRIBE", "SPAM_REPORT", "USER_SUPPRESSED")]
                if list_id:
                    self.list_suppressions[index] = [m for m in self.list_suppressions.get(index, []) if m["list_id"] != list_id]
                    self.join(list_id, index)
                self.counters["subscribed"] += 1


def error(status: int, code: str, title: str, detail: str, *, parameter: str | None = None,
          pointer: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    source: dict[str, str] = {}
    if parameter:
        source["parameter"] = parameter
    if pointer:
        source["pointer"] = pointer
    body = {"errors": [{"id": str(uuid.uuid4()), "status": status, "code": code, "title": title,
                        "detail": detail, "source": source, "links": {}, "meta": {}}]}
    return JSONResponse(body, status, headers=headers, media_type=JSONAPI)


def document(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers=headers, media_type=JSONAPI)


def sparse(attributes: dict, fields: str | None) -> dict:
    """Klaviyo's sparse fieldsets, dotted paths included (`subscriptions.email.marketing.consent`)."""
    if not fields:
        return attributes
    out: dict = {}
    for name in (f.strip() for f in fields.split(",") if f.strip()):
        source: Any = attributes
        target = out
        parts = name.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(source, dict) or part not in source:
                break
            if depth == len(parts) - 1:
                target[part] = source[part]
            else:
                source = source[part]
                if source is None:
                    target[part] = None
                    break
                target = target.setdefault(part, {})
    return out


FILTER = re.compile(r"^(equals|any|greater-than|less-than|greater-or-equal|less-or-equal)\(([a-z_.]+),(.+)\)$")


def parse_filter(text: str) -> tuple[str, str, Any]:
    """One `op(field,value)` term; values are quoted strings, lists of them, or bare datetimes."""
    match = FILTER.match(text.strip())
    if not match:
        raise ValueError(f"Invalid filter provided: {text[:80]}")
    op, name, raw = match.groups()
    raw = raw.strip()
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise ValueError("Invalid list value in filter")
        items = [i.strip() for i in raw[1:-1].split(",") if i.strip()]
        value: Any = [i[1:-1] if len(i) >= 2 and i[0] == i[-1] and i[0] in "'\"" else i for i in items]
        if len(value) > 100:
            raise ValueError("Filter lists are limited to 100 values")
    elif raw[:1] in "'\"" and raw[-1:] == raw[:1]:
        value = raw[1:-1]
    else:
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"Invalid value in filter: {raw[:40]}") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
    return op, name, value


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = KState(members=members)
    counters = state.counters
    violations = ContractViolations()
    spec = reduced_spec_dict()

    def operation(path_template: str, method: str) -> dict:
        return spec["paths"][path_template][method]

    # --- cross-cutting: auth, revision, jobs, rate tiers -----------------------------------
    def gate(request: Request, limiter: str, tier: str, *, write: bool) -> JSONResponse | None:
        counters["requests"] += 1
        state.request_no += 1
        state.settle(upto=state.request_no)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Klaviyo-API-Key "):
            return error(401, "not_authenticated", "Authentication credentials were not provided.",
                         "Missing or invalid authorization scheme. Please use Klaviyo-API-Key.")
        key = auth[len("Klaviyo-API-Key ") :]
        if key not in (GOOD_KEY, READ_ONLY_KEY):
            return error(401, "authentication_failed", "Incorrect authentication credentials.", "Incorrect authentication credentials.")
        revision = request.headers.get("revision")
        if not revision:
            return error(400, "missing_revision", "Missing revision header.", "The revision header is required.", parameter="revision")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
            return error(400, "invalid_revision", "Invalid revision.", f"{revision} is not a valid revision.", parameter="revision")
        limited = throttle(limiter, tier)
        if limited is not None:
            return limited
        if write and key == READ_ONLY_KEY:
            counters["403"] += 1
            return error(403, "permission_denied", "You do not have permission to perform this action.",
                         "You do not have permission to perform this action.")
        return None

    def throttle(limiter: str, tier: str) -> JSONResponse | None:
        limits = state.tiers.get(tier)
        if limits is None:
            return None
        burst, steady = limits
        now = time.time()
        second, minute = math.floor(now), math.floor(now / 60)
        window = state.windows.setdefault(limiter, [second, 0, minute, 0])
        if window[0] != second:
            window[0], window[1] = second, 0
        if window[2] != minute:
            window[2], window[3] = minute, 0
        if window[1] >= burst or window[3] >= steady:
            counters["429"] += 1
            wait = (second + 1 - now) if window[3] < steady else ((minute + 1) * 60 - now)
            return error(429, "throttled", "Request was throttled.",
                         f"Request was throttled. Expected available in {max(1, math.ceil(wait))} second.",
                         headers={"Retry-After": str(max(1, math.ceil(wait)))})
        window[1] += 1
        window[3] += 1
        return None

    def rate_headers(tier: str) -> dict[str, str]:
        limits = state.tiers.get(tier) or TIER_LIMITS[tier]
        return {"RateLimit-Limit": str(limits[1]), "RateLimit-Remaining": str(limits[1] - 1), "RateLimit-Reset": "60"}

    def cursor_link(request: Request, position: int | None) -> dict[str, str]:
        links = {"self": str(request.url)}
        if position is not None:
            query = dict(request.query_params)
            query["page[cursor]"] = base64.urlsafe_b64encode(f"pos:{position}".encode()).decode()
            links["next"] = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
        return links

    def cursor_of(request: Request) -> int | JSONResponse:
        raw = request.query_params.get("page[cursor]")
        if not raw:
            return 0
        try:
            text = base64.urlsafe_b64decode(raw.encode()).decode()
            if not text.startswith("pos:"):
                raise ValueError
            return int(text[4:])
        except ValueError:
            return error(400, "invalid", "Invalid input.", "Invalid page cursor.", parameter="page[cursor]")

    def page_size(request: Request, default: int, maximum: int) -> int | JSONResponse:
        try:
            size = int(request.query_params.get("page[size]", default))
        except ValueError:
            return error(400, "invalid", "Invalid input.", "page[size] must be an integer.", parameter="page[size]")
        if not 1 <= size <= maximum:
            return error(400, "invalid", "Invalid input.", f"page[size] must be between 1 and {maximum}.", parameter="page[size]")
        return size

    def check_filter(request: Request, path_template: str) -> tuple[str, str, Any] | None | JSONResponse:
        text = request.query_params.get("filter")
        if not text:
            return None
        allowed = operation(path_template, "get").get("x-klaviyo-filters") or {}
        try:
            op, name, value = parse_filter(text)
        except ValueError as exc:
            return error(400, "invalid", "Invalid input.", str(exc), parameter="filter")
        ops = allowed.get(name, {}).get("operators", {})
        if op not in ops.get("single", []) + ops.get("list", []):
            return error(400, "invalid", "Invalid input.", f"'{op}' is not a valid operator for '{name}'.", parameter="filter")
        return op, name, value

    # --- documents ---------------------------------------------------------------------
    def list_resource(request: Request, list_id: str, *, count: bool) -> dict:
        meta = state.lists[list_id]
        attributes = {"name": meta["name"], "created": stamp(BASE_TIME), "updated": stamp(BASE_TIME), "opt_in_process": meta["opt_in_process"]}
        if count:
            attributes["profile_count"] = state.list_count(list_id)
        base = str(request.base_url).rstrip("/")
        return {"type": "list", "id": list_id, "attributes": sparse(attributes, request.query_params.get("fields[list]")),
                "relationships": {
                    "profiles": {"links": {"self": f"{base}/api/lists/{list_id}/relationships/profiles", "related": f"{base}/api/lists/{list_id}/profiles"}},
                    "tags": {"links": {"self": f"{base}/api/lists/{list_id}/relationships/tags", "related": f"{base}/api/lists/{list_id}/tags"}},
                },
                "links": {"self": f"{base}/api/lists/{list_id}"}}

    def segment_resource(request: Request, segment_id: str, *, count: bool) -> dict:
        attributes = {"name": state.segments[segment_id], "created": stamp(BASE_TIME), "updated": stamp(BASE_TIME),
                      "is_active": True, "is_processing": False, "is_starred": False}
        if count:
            attributes["profile_count"] = state.segment_count()
        base = str(request.base_url).rstrip("/")
        return {"type": "segment", "id": segment_id, "attributes": sparse(attributes, request.query_params.get("fields[segment]")),
                "links": {"self": f"{base}/api/segments/{segment_id}"}}

    def profile_resource(request: Request, index: int, *, joined: bool) -> dict:
        created = stamp(state.created(index))
        attributes: dict[str, Any] = {
            "email": state.email(index), "phone_number": None, "external_id": None, "first_name": None, "last_name": None,
            "organization": None, "locale": None, "title": None, "image": None, "created": created, "updated": created,
            # latitude/longitude are left out rather than null: the spec makes them nullable oneOf(string, number),
            # which openapi-core rejects for null, and the response test checks our bodies against the spec.
            "last_event_date": None, "location": {"address1": None, "address2": None, "city": None, "country": None,
                                                  "region": None, "zip": None, "timezone": None, "ip": None},
            "properties": {},
        }
        if joined:
            attributes["joined_group_at"] = created
        if "subscriptions" in (request.query_params.get("additional-fields[profile]") or "").split(","):
            consent = state.consent_of(index)
            attributes["subscriptions"] = {
                "email": {"marketing": {
                    "can_receive_email_marketing": state.can_receive(index), "consent": consent,
                    "consent_timestamp": created if consent != "NEVER_SUBSCRIBED" else None, "last_updated": created,
                    "method": "API" if consent != "NEVER_SUBSCRIBED" else None, "method_detail": "", "custom_method_detail": None,
                    "double_optin": False, "suppression": state.suppressions_of(index),
                    "list_suppressions": state.list_suppressions.get(index, []),
                }},
            }
        base = str(request.base_url).rstrip("/")
        return {"type": "profile", "id": profile_id(index), "attributes": sparse(attributes, request.query_params.get("fields[profile]")),
                "links": {"self": f"{base}/api/profiles/{profile_id(index)}"}}

    # --- lists and segments ------------------------------------------------------------------
    async def get_lists(request: Request) -> Response:
        if (refused := gate(request, "get_lists", "L", write=False)) is not None:
            return refused
        size = page_size(request, 10, 10)
        start = cursor_of(request)
        for value in (size, start):
            if isinstance(value, JSONResponse):
                return value
        ids = sorted(state.lists)
        rows = [list_resource(request, i, count=False) for i in ids[start : start + size]]
        more = start + size < len(ids)
        return document({"data": rows, "links": cursor_link(request, start + size if more else None)}, headers=rate_headers("L"))

    async def get_segments(request: Request) -> Response:
        if (refused := gate(request, "get_segments", "L", write=False)) is not None:
            return refused
        size = page_size(request, 10, 10)
        start = cursor_of(request)
        for value in (size, start):
            if isinstance(value, JSONResponse):
                return value
        ids = sorted(state.segments)
        rows = [segment_resource(request, i, count=False) for i in ids[start : start + size]]
        more = start + size < len(ids)
        return document({"data": rows, "links": cursor_link(request, start + size if more else None)}, headers=rate_headers("L"))

    async def get_list(request: Request) -> Response:
        count = "profile_count" in (request.query_params.get("additional-fields[list]") or "").split(",")
        limiter, tier = ("get_list:profile_count", "XS") if count else ("get_list", "L")
        if (refused := gate(request, limiter, tier, write=False)) is not None:
            return refused
        list_id = request.path_params["id"]
        if list_id not in state.lists:
            return error(404, "not_found", "Not found.", f"A list with id {list_id} does not exist.")
        if count:
            counters["counts"] += 1
        return document({"data": list_resource(request, list_id, count=count), "links": {"self": str(request.url)}}, headers=rate_headers(tier))

    async def get_segment(request: Request) -> Response:
        count = "profile_count" in (request.query_params.get("additional-fields[segment]") or "").split(",")
        limiter, tier = ("get_segment:profile_count", "XS") if count else ("get_segment", "L")
        if (refused := gate(request, limiter, tier, write=False)) is not None:
            return refused
        segment_id = request.path_params["id"]
        if segment_id not in state.segments:
            return error(404, "not_found", "Not found.", f"A segment with id {segment_id} does not exist.")
        if count:
            counters["counts"] += 1
        return document({"data": segment_resource(request, segment_id, count=count), "links": {"self": str(request.url)}}, headers=rate_headers(tier))

    async def group_profiles(request: Request) -> Response:
        is_segment = request.url.path.startswith("/api/segments/")
        template = "/api/segments/{id}/profiles" if is_segment else "/api/lists/{id}/profiles"
        if (refused := gate(request, template, "L", write=False)) is not None:
            return refused
        group = request.path_params["id"]
        if (is_segment and group not in state.segments) or (not is_segment and group not in state.lists):
            kind = "segment" if is_segment else "list"
            return error(404, "not_found", "Not found.", f"A {kind} with id {group} does not exist.")
        size = page_size(request, 20, 100)
        start = cursor_of(request)
        term = check_filter(request, template)
        for value in (size, start, term):
            if isinstance(value, JSONResponse):
                return value
        wanted: set[int] | None = None
        if term is not None:
            op, name, value = term
            if name != "email" or op not in ("any", "equals"):
                return error(400, "invalid", "Invalid input.", f"This emulator does not filter members on {op}({name}).", parameter="filter")
            wanted = {i for i in (state.find(v) for v in (value if isinstance(value, list) else [value])) if i is not None}
        counters["member_pages" if wanted is None else "member_lookups"] += 1
        rows: list[dict] = []
        position = start
        if wanted is not None:  # a filter by email reads the matching members only, in index order
            matching = sorted(i for i in wanted if (state.in_segment(i) if is_segment else state.in_list(group, i)))
            rows = [profile_resource(request, i, joined=True) for i in matching[start : start + size]]
            position, more = start + len(rows), start + size < len(matching)
        elif is_segment:
            while position < state.members and len(rows) < size:
                if state.in_segment(position):
                    rows.append(profile_resource(request, position, joined=True))
                position += 1
            more = position < state.members
        else:
            generated, later = state.list_sequence(group)
            end = len(generated) + len(later)
            while position < end and len(rows) < size:
                index = generated[position] if position < len(generated) else later[position - len(generated)]
                if state.in_list(group, index):
                    rows.append(profile_resource(request, index, joined=True))
                position += 1
            more = position < end
        return document({"data": rows, "links": cursor_link(request, position if more else None)}, headers=rate_headers("L"))

    # --- profiles ---------------------------------------------------------------------
    async def get_profiles(request: Request) -> Response:
        if (refused := gate(request, "get_profiles", "L", write=False)) is not None:
            return refused
        size = page_size(request, 20, 100)
        start = cursor_of(request)
        term = check_filter(request, "/api/profiles")
        for value in (size, start, term):
            if isinstance(value, JSONResponse):
                return value
        sort = request.query_params.get("sort")
        if sort not in (None, "created", "id"):
            return error(400, "invalid", "Invalid input.", "This emulator sorts profiles by created or id only.", parameter="sort")
        candidates: Iterator[int]
        if term is None:
            candidates = state.all_profiles(start)
        else:
            op, name, value = term
            if name in ("id", "email") and op in ("any", "equals"):
                values = value if isinstance(value, list) else [value]
                found = [profile_index(v) if name == "id" else state.find(v) for v in values]
                wanted = sorted({i for i in found if i is not None and state.email(i) is not None})
                candidates = iter([i for i in wanted if i >= start])
            elif name == "created" and op == "greater-than" and isinstance(value, datetime):
                # generated profile i was created at BASE_TIME + i s; later ones (index >= generated) just now
                first = max(start, min(math.floor((value - BASE_TIME).total_seconds()) + 1, state.generated), 0)
                candidates = (i for i in state.all_profiles(first) if state.created(i) > value)
            else:
                return error(400, "invalid", "Invalid input.", f"This emulator does not filter profiles on {op}({name}).", parameter="filter")
        rows: list[dict] = []
        next_position: int | None = None
        for index in candidates:
            if len(rows) == size:
                next_position = index
                break
            rows.append(profile_resource(request, index, joined=False))
        return document({"data": rows, "links": cursor_link(request, next_position)}, headers=rate_headers("L"))

    async def get_profile(request: Request) -> Response:
        if (refused := gate(request, "get_profile", "L", write=False)) is not None:
            return refused
        index = profile_index(request.path_params["id"])
        if index is None or state.email(index) is None:
            return error(404, "not_found", "Not found.", f"A profile with id {request.path_params['id']} does not exist.")
        return document({"data": profile_resource(request, index, joined=False), "links": {"self": str(request.url)}}, headers=rate_headers("L"))

    # --- consent and privacy jobs ---------------------------------------------------------------
    async def json_body(request: Request) -> dict | JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "invalid", "Invalid input.", "The request body is not valid JSON.", pointer="/data")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return error(400, "invalid", "Invalid input.", "'data' is a required field.", pointer="/data")
        return body

    def job_profiles(data: dict, allowed_marketing: set[str], kind: str) -> list[str] | JSONResponse:
        profiles = (((data.get("attributes") or {}).get("profiles") or {}).get("data")) or []
        if not profiles:
            return error(400, "invalid", "Invalid input.", "At least one profile is required.", pointer="/data/attributes/profiles/data")
        if len(profiles) > 100 and kind == "unsubscribe":
            return error(400, "invalid", "Invalid input.", "A maximum of 100 profiles can be submitted.", pointer="/data/attributes/profiles/data")
        emails: list[str] = []
        for n, profile in enumerate(profiles):
            attributes = profile.get("attributes") or {}
            extra = set(attributes) - {"email", "subscriptions"}
            if extra:
                violations.errors.append(f"{kind} job wrote fields other than subscription state: {sorted(extra)}")
            subscriptions = attributes.get("subscriptions") or {}
            if set(subscriptions) - {"email"}:
                violations.errors.append(f"{kind} job touched channels other than email: {sorted(set(subscriptions) - {'email'})}")
            marketing = (subscriptions.get("email") or {}).get("marketing") or {}
            if set(marketing) - allowed_marketing:
                violations.errors.append(f"{kind} job set consent fields {sorted(set(marketing) - allowed_marketing)}")
            email = attributes.get("email")
            if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                return error(400, "invalid", "Invalid input.", f"Invalid email address: {email!r}.", pointer=f"/data/attributes/profiles/data/{n}/attributes/email")
            emails.append(email)
        return emails

    def job_list(data: dict) -> str | None | JSONResponse:
        rel = ((data.get("relationships") or {}).get("list") or {}).get("data")
        if not rel:
            return None
        if rel.get("id") not in state.lists:
            return error(404, "not_found", "Not found.", f"A list with id {rel.get('id')} does not exist.", pointer="/data/relationships/list/data/id")
        return rel["id"]

    async def bulk_unsubscribe(request: Request) -> Response:
        if (refused := gate(request, "bulk_unsubscribe", "L", write=True)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        emails = job_profiles(body["data"], {"consent"}, "unsubscribe")
        list_id = job_list(body["data"])
        for value in (emails, list_id):
            if isinstance(value, JSONResponse):
                return value
        counters["unsubscribe_jobs"] += 1
        state.pending.append((state.request_no + 1, "unsubscribe", {"emails": emails, "list_id": list_id}))
        return Response(status_code=202)

    async def bulk_subscribe(request: Request) -> Response:
        if (refused := gate(request, "bulk_subscribe", "L", write=True)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        data = body["data"]
        attributes = data.get("attributes") or {}
        emails = job_profiles(data, {"consent", "consented_at"}, "subscribe")
        list_id = job_list(data)
        for value in (emails, list_id):
            if isinstance(value, JSONResponse):
                return value
        if not attributes.get("historical_import"):
            opt_in = state.lists[list_id]["opt_in_process"] if list_id else "account default"
            violations.errors.append(f"subscribe job without historical_import may send a confirmation email (list opt-in: {opt_in})")
        else:
            for profile in data["attributes"]["profiles"]["data"]:
                consented = ((((profile.get("attributes") or {}).get("subscriptions") or {}).get("email") or {}).get("marketing") or {}).get("consented_at")
                try:
                    when = datetime.fromisoformat(str(consented).replace("Z", "+00:00"))
                except ValueError:
                    return error(400, "invalid", "Invalid input.", "consented_at is required when historical_import is true.",
                                 pointer="/data/attributes/profiles/data/attributes/subscriptions/email/marketing/consented_at")
                if when.tzinfo is None or when > datetime.now(timezone.utc):
                    return error(400, "invalid", "Invalid input.", "consented_at must be in the past.",
                                 pointer="/data/attributes/profiles/data/attributes/subscriptions/email/marketing/consented_at")
        if len(emails) > 1000:  # type: ignore[arg-type]
            return error(400, "invalid", "Invalid input.", "A maximum of 1000 profiles can be submitted.", pointer="/data/attributes/profiles/data")
        counters["subscribe_jobs"] += 1
        state.pending.append((state.request_no + 1, "subscribe", {"emails": emails, "list_id": list_id}))
        return Response(status_code=202)

    async def deletion_job(request: Request) -> Response:
        if (refused := gate(request, "data_privacy_deletion", "S", write=True)) is not None:
            return refused
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        profile = (((body["data"].get("attributes") or {}).get("profile") or {}).get("data")) or {}
        attributes = profile.get("attributes") or {}
        identifiers = [k for k in ("email", "phone_number") if attributes.get(k)] + (["id"] if profile.get("id") else [])
        if len(identifiers) != 1:
            return error(400, "invalid", "Invalid input.", "Exactly one of email, phone_number or id is required.", pointer="/data/attributes/profile/data")
        counters["deletion_jobs"] += 1
        state.pending.append((state.request_no + 1, "deletion", {"email": attributes.get("email"), "id": profile.get("id")}))
        return Response(status_code=202)

    # --- webhooks ------------------------------------------------------------------------
    def webhooks_gate(request: Request, limiter: str, *, write: bool) -> JSONResponse | None:
        refused = gate(request, limiter, "XS", write=write)
        if refused is not None:
            return refused
        if not state.webhooks_enabled:
            return error(403, "permission_denied", "You do not have permission to perform this action.",
                         "This account does not have access to system webhooks.")
        return None

    def webhook_resource(request: Request, hook: dict) -> dict:
        base = str(request.base_url).rstrip("/")
        return {"type": "webhook", "id": hook["id"],
                "attributes": {"name": hook["name"], "description": None, "endpoint_url": hook["endpoint_url"],
                               "enabled": hook["enabled"], "created_at": hook["created_at"], "updated_at": hook["created_at"]},
                "relationships": {"webhook-topics": {"data": [{"type": "webhook-topic", "id": t} for t in hook["topics"]],
                                                     "links": {"self": f"{base}/api/webhooks/{hook['id']}/relationships/webhook-topics",
                                                               "related": f"{base}/api/webhooks/{hook['id']}/webhook-topics"}}},
                "links": {"self": f"{base}/api/webhooks/{hook['id']}"}}

    async def webhook_topics(request: Request) -> Response:
        if (refused := webhooks_gate(request, "get_webhook_topics", write=False)) is not None:
            return refused
        base = str(request.base_url).rstrip("/")
        rows = [{"type": "webhook-topic", "id": t, "links": {"self": f"{base}/api/webhook-topics/{t}"}} for t in TOPICS]
        return document({"data": rows, "links": {"self": str(request.url)}})

    async def webhooks(request: Request) -> Response:
        write = request.method == "POST"
        if (refused := webhooks_gate(request, "create_webhook" if write else "get_webhooks", write=write)) is not None:
            return refused
        if not write:
            return document({"data": [webhook_resource(request, h) for h in state.webhooks.values()], "links": {"self": str(request.url)}})
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        attributes = body["data"].get("attributes") or {}
        topics = [t.get("id") for t in (((body["data"].get("relationships") or {}).get("webhook-topics") or {}).get("data") or [])]
        if not str(attributes.get("endpoint_url", "")).startswith("https://"):
            return error(400, "invalid", "Invalid input.", "endpoint_url must be an https URL.", pointer="/data/attributes/endpoint_url")
        if len(str(attributes.get("secret_key") or "")) < 16:
            return error(400, "invalid", "Invalid input.", "secret_key must be at least 16 characters.", pointer="/data/attributes/secret_key")
        if not topics or any(t not in TOPICS for t in topics):
            return error(400, "invalid", "Invalid input.", "Unknown webhook topic.", pointer="/data/relationships/webhook-topics")
        hook_id = "01JWH" + uuid.uuid4().hex[:21].upper()
        state.webhooks[hook_id] = {"id": hook_id, "name": attributes.get("name"), "endpoint_url": attributes["endpoint_url"],
                                   "secret_key": attributes["secret_key"], "topics": topics, "enabled": True,
                                   "created_at": stamp(datetime.now(timezone.utc))}
        return document({"data": webhook_resource(request, state.webhooks[hook_id]), "links": {"self": f"{str(request.base_url).rstrip('/')}/api/webhooks/{hook_id}"}}, 201)

    async def one_webhook(request: Request) -> Response:
        write = request.method == "DELETE"
        if (refused := webhooks_gate(request, "delete_webhook" if write else "get_webhook", write=write)) is not None:
            return refused
        hook_id = request.path_params["id"]
        if hook_id not in state.webhooks:
            return error(404, "not_found", "Not found.", f"A webhook with id {hook_id} does not exist.")
        if not write:
            return document({"data": webhook_resource(request, state.webhooks[hook_id]), "links": {"self": str(request.url)}})
        del state.webhooks[hook_id]
        return Response(status_code=204)

    app = Starlette(routes=[
        Route("/api/lists", get_lists),
        Route("/api/lists/{id}", get_list),
        Route("/api/lists/{id}/profiles", group_profiles),
        Route("/api/segments", get_segments),
        Route("/api/segments/{id}", get_segment),
        Route("/api/segments/{id}/profiles", group_profiles),
        Route("/api/profiles", get_profiles),
        Route("/api/profiles/{id}", get_profile),
        Route("/api/profile-subscription-bulk-delete-jobs", bulk_unsubscribe, methods=["POST"]),
        Route("/api/profile-subscription-bulk-create-jobs", bulk_subscribe, methods=["POST"]),
        Route("/api/data-privacy-deletion-jobs", deletion_job, methods=["POST"]),
        Route("/api/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/api/webhooks/{id}", one_webhook, methods=["GET", "DELETE"]),
        Route("/api/webhook-topics", webhook_topics),
    ])
    faults = FaultPlan()
    wrapped = ContractMiddleware(FaultMiddleware(app, faults), load_reduced_spec(), violations, base_url=SPEC_SERVER)

    def add_member(list_id: str, email: str) -> str:
        """A new subscriber joins a list now (created now, SUBSCRIBED), as a signup form would do."""
        index = state.find(email)
        if index is None:
            index = state.new_profile(email)
        state.consent[index] = "SUBSCRIBED"
        state.join(list_id, index)
        return profile_id(index)

    def is_unsubscribed(email: str) -> bool:
        index = state.find(email)
        if index is None:
            return False
        return state.consent_of(index) == "UNSUBSCRIBED" or any(m["list_id"] == MAIN_LIST for m in state.list_suppressions.get(index, []))

    def credentials(key: str):
        return lambda base_url: {"api_key": key}

    return Emulator(
        slug="klaviyo",
        app=wrapped,
        faults=faults,
        list_id=MAIN_LIST,
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


def webhook_delivery(hook_id: str, secret: str, events: list[dict], *, sent: datetime | None = None,
                     account_id: str = "AbC123") -> tuple[dict[str, str], bytes]:
    """What Klaviyo POSTs to a system webhook: (lower-case headers, raw body), signed as documented."""
    sent = sent or datetime.now(timezone.utc)
    body = json.dumps({"data": events, "meta": {"klaviyo_account_id": account_id, "klaviyo_webhook_id": hook_id,
                                                "timestamp": sent.isoformat()}}).encode()
    timestamp = str(int(sent.timestamp()))
    signature = hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return ({"content-type": "application/json", "klaviyo-webhook-id": hook_id, "klaviyo-signature": signature,
             "klaviyo-timestamp": timestamp}, body)


def subscribed_event(profile: str, *, event_id: str = "4L3cwQae2TX", email: str | None = None) -> dict:
    """One `data[]` item for the Subscribed to Email Marketing topic (a Get Event document)."""
    payload: dict[str, Any] = {"data": {
        "type": "event", "id": event_id,
        "attributes": {"timestamp": int(time.time()), "event_properties": {}, "datetime": stamp(datetime.now(timezone.utc)),
                       "uuid": str(uuid.uuid4())},
        "relationships": {"profile": {"data": {"type": "profile", "id": profile}},
                          "metric": {"data": {"type": "metric", "id": "SubEm1"}}},
    }}
    if email:
        payload["included"] = [{"type": "profile", "id": profile, "attributes": {"email": email}}]
    return {"external_id": event_id, "topic": "event:klaviyo.subscribed_to_email_marketing", "payload": payload}
