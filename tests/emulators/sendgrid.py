"""SendGrid Marketing Campaigns emulator, after twilio/sendgrid-oai's per-area OpenAPI 3.1 files.

Every API request is checked against the spec whose paths contain it (contacts, lists,
segments 2.0, suppressions; see contract.SpecRouter). The export download host, S3 in real life, is
served here under `/sg-exports/` and is outside every spec. Any Authorization header sent to it
is recorded as a violation, since the API key must never go there.

`Bearer SG.…` keys: a wrong or missing key gets 401 `authorization required`; a read-only key
reads (exports and searches too) but gets 403 `access forbidden` on writes. Members of the main
list are generated lazily from their index (`member{i}@example.com`, created a minute apart from
2024-01-01), so 100,000 cost only the changes made. Every 10th base member is also in the
segment. Exports become `ready` on the second status poll. Delete jobs are applied when they
complete (second status poll, or when a later export starts). Each reply carries
`X-RateLimit-*`; `state.rate_limit` turns on real 429s.
"""

from __future__ import annotations

import base64
import json
import re
import secrets as pysecrets
import time
import uuid
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.emulators.base import Emulator
from tests.emulators.contract import ContractViolations, SpecRouter
from tests.emulators.faults import FaultMiddleware, FaultPlan

SPEC_FILES = ("sendgrid-mc-contacts.json", "sendgrid-mc-lists.json", "sendgrid-mc-segments.json", "sendgrid-suppressions.json")
SPEC_SERVER = "https://api.sendgrid.com"
DOWNLOAD_PREFIX = "/sg-exports/"

GOOD_KEY = "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"
READ_ONLY_KEY = "SG.r3adOnlyKeyId00000000A.R3adOnlySecretPart0000000000000000000000000"
WRONG_KEY = "SG.wr0ngKeyId0000000000000.Wr0ngSecretPart000000000000000000000000000000"
MAIN_LIST = "7d1f3b2a-0c4e-4b8a-9f6d-1a2b3c4d5e6f"
SECOND_LIST = "0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
ENGAGED_SEGMENT = "3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1b"
CONTACT_PREFIX = "5e7c0000-0000-4000-8000-"  # + 12 hex digits of the contact's index
BASE_CREATED = datetime(2024, 1, 1, tzinfo=timezone.utc)
ADVERTISED_LIMIT = 600  # X-RateLimit-Limit when no limit is enforced
CSV_COLUMNS = ("EMAIL", "FIRST_NAME", "LAST_NAME", "ALTERNATE_EMAILS", "CONTACT_ID", "CREATED_AT", "UPDATED_AT")
SGQL_TIME = r"'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d))'"
SGQL_WINDOW = re.compile(
    rf"^\s*created_at\s*>\s*TIMESTAMP\s*{SGQL_TIME}(?:\s+AND\s+created_at\s*<=\s*TIMESTAMP\s*{SGQL_TIME})?\s*$",
    re.IGNORECASE,
)


def sg_error(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """SendGrid's error body: `{"errors": [{"field": ..., "message": ...}]}`."""
    return JSONResponse({"errors": [{"field": field, "message": message}]}, status, headers=headers)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def contact_id(index: int) -> str:
    return f"{CONTACT_PREFIX}{index:012x}"


def index_of(cid: str) -> int | None:
    if cid.startswith(CONTACT_PREFIX) and len(cid) == len(CONTACT_PREFIX) + 12:
        try:
            return int(cid[len(CONTACT_PREFIX):], 16)
        except ValueError:
            return None
    return None


@dataclass
class Extra:
    email: str
    list_ids: tuple[str, ...]
    created_at: datetime


@dataclass
class SGState:
    members: int
    lists: dict[str, str] = field(default_factory=lambda: {MAIN_LIST: "Newsletter", SECOND_LIST: "Customers"})
    segments: dict[str, dict] = field(default_factory=lambda: {ENGAGED_SEGMENT: {"name": "Engaged", "parent": MAIN_LIST}})
    extra: dict[int, Extra] = field(default_factory=dict)  # contacts added after build, by index
    deleted: set[int] = field(default_factory=set)
    suppressed: dict[str, int] = field(default_factory=dict)  # email -> created (epoch), insertion ordered
    exports: dict[str, dict] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    # knobs a test may turn
    gzip: bool = True
    rows_per_file: int = 5000  # emulator's choice, so 10,000+ members span several files
    ready_after: int = 2  # export status polls until `ready`
    export_outcome: str = "ready"  # "ready", "failure" or "pending" (never finishes)
    rate_limit: int | None = None  # requests per one-second window; None advertises but never refuses
    tricky_every: int = 997  # every n-th member gets a first name with a comma, quotes and a newline
    break_after_blocks: int | None = None  # the next download drops its connection after this many 500-row blocks
    # rate-limit window
    window: int = 0
    window_count: int = 0

    @property
    def next_index(self) -> int:
        return max([self.members - 1, *self.extra]) + 1

    def email(self, i: int) -> str | None:
        if i in self.deleted:
            return None
        if i in self.extra:
            return self.extra[i].email
        return f"member{i}@example.com" if 0 <= i < self.members else None

    def created(self, i: int) -> datetime:
        return self.extra[i].created_at if i in self.extra else BASE_CREATED + timedelta(minutes=i)

    def list_ids(self, i: int) -> tuple[str, ...]:
        return self.extra[i].list_ids if i in self.extra else (MAIN_LIST,)

    def in_target(self, i: int, kind: str, ident: str | None) -> bool:
        if self.email(i) is None:
            return False
        if kind == "all":
            return True
        if kind == "list":
            return ident in self.list_ids(i)
        return i not in self.extra and i % 10 == 0 and self.segments[ident]["parent"] in self.list_ids(i)

    def indices(self) -> Iterator[int]:
        yield from range(self.members)
        yield from sorted(self.extra)

    def count(self, kind: str, ident: str | None) -> int:
        """Cheap counts: the lazily generated base corrected by every recorded change."""
        if kind == "segment":
            base = -(-self.members // 10) - sum(1 for i in self.deleted if i < self.members and i % 10 == 0)
            return base if self.segments[ident]["parent"] == MAIN_LIST else 0
        base = 0 if kind == "list" and ident != MAIN_LIST else self.members - sum(1 for i in self.deleted if i < self.members)
        return base + sum(1 for i in self.extra if self.in_target(i, kind, ident))

    def find(self, email: str) -> int | None:
        email = email.lower()
        for i, extra in self.extra.items():
            if extra.email.lower() == email and i not in self.deleted:
                return i
        number = email.removeprefix("member").removesuffix("@example.com")
        if number.isdigit() and int(number) < self.members and int(number) not in self.deleted:
            return int(number)
        return None

    def settle(self) -> None:
        """Time passes: every queued delete job runs."""
        for job in self.jobs.values():
            self.finish(job)

    def finish(self, job: dict) -> None:
        if job["status"] != "pending":
            return
        deleted = 0
        for cid in job["ids"]:
            i = index_of(cid)
            if i is not None and self.email(i) is not None:
                self.deleted.add(i)
                deleted += 1
        job.update(status="completed", deleted=deleted, finished_at=iso(datetime.now(timezone.utc)))


def contact_json(state: SGState, i: int) -> dict:
    created = iso(state.created(i))
    segments = [ENGAGED_SEGMENT] if state.in_target(i, "segment", ENGAGED_SEGMENT) else []
    return {"id": contact_id(i), "email": state.email(i), "first_name": "", "last_name": "", "alternate_emails": [],
            "list_ids": list(state.list_ids(i)), "segment_ids": segments, "custom_fields": {},
            "created_at": created, "updated_at": created,
            "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/contacts/{contact_id(i)}"}}


class RateLimitMiddleware:
    """`X-RateLimit-Limit/Remaining/Reset` on every API reply; a real 429 when `state.rate_limit` is set."""

    def __init__(self, app: ASGIApp, state: SGState, counters: Counter) -> None:
        self.app = app
        self.state = state
        self.counters = counters

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v3/"):
            await self.app(scope, receive, send)
            return
        state = self.state
        now = int(time.time())
        if now != state.window:
            state.window, state.window_count = now, 0
        state.window_count += 1
        limit = state.rate_limit or ADVERTISED_LIMIT
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - state.window_count)),
                   "X-RateLimit-Reset": str(now + 1)}
        if state.rate_limit is not None and state.window_count > state.rate_limit:
            self.counters["429"] += 1
            await sg_error(429, "too many requests", headers=headers)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *((k.lower().encode(), v.encode()) for k, v in headers.items())]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build(*, members: int = 0, seed: int = 0) -> Emulator:
    state = SGState(members=members)
    counters: Counter = Counter()
    violations = ContractViolations()

    def key_of(request: Request) -> str | None:
        counters["requests"] += 1
        auth = request.headers.get("authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else None
        return key if key in (GOOD_KEY, READ_ONLY_KEY) else None

    unauthorized = lambda: sg_error(401, "authorization required")  # noqa: E731
    forbidden = lambda: sg_error(403, "access forbidden")  # noqa: E731

    def guard(request: Request, *, write: bool = False) -> Response | None:
        key = key_of(request)
        if key is None:
            return unauthorized()
        accept = request.headers.get("accept")
        if accept and "json" not in accept and "*/*" not in accept:
            return sg_error(406, "invalid Accept header")
        if write and key == READ_ONLY_KEY:
            return forbidden()
        return None

    # --- lists, segments, counts ---------------------------------------------------------
    async def lists(request: Request) -> Response:
        if refused := guard(request):
            return refused
        try:
            size = int(float(request.query_params.get("page_size", 100)))
            start = int(base64.urlsafe_b64decode(request.query_params["page_token"]).decode()) if request.query_params.get("page_token") else 0
        except (ValueError, UnicodeDecodeError):
            return sg_error(400, "invalid page_token or page_size", "page_token")
        if not 1 <= size <= 1000:
            return sg_error(400, "page_size must be between 1 and 1000", "page_size")
        rows = [{"id": lid, "name": name, "contact_count": state.count("list", lid),
                 "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/lists/{lid}"}} for lid, name in state.lists.items()]
        meta = {"self": f"{SPEC_SERVER}/v3/marketing/lists?page_size={size}", "count": len(rows)}
        if start + size < len(rows):
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            meta["next"] = f"{SPEC_SERVER}/v3/marketing/lists?page_size={size}&page_token={token}"
        counters["list_pages"] += 1
        return JSONResponse({"result": rows[start : start + size], "_metadata": meta})

    async def one_list(request: Request) -> Response:
        if refused := guard(request):
            return refused
        lid = request.path_params["id"]
        if lid not in state.lists:
            return sg_error(404, "resource not found", "id")  # exact 404 body unverified
        return JSONResponse({"id": lid, "name": state.lists[lid], "contact_count": state.count("list", lid),
                             "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/lists/{lid}"}})

    def segment_json(sid: str) -> dict:
        segment = state.segments[sid]
        return {"id": sid, "name": segment["name"], "contacts_count": state.count("segment", sid),
                "created_at": "2024-01-02T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z",
                "sample_updated_at": "2024-01-02T00:00:00Z", "next_sample_update": "2024-01-02T01:00:00Z",
                "parent_list_ids": [segment["parent"]], "query_version": "2", "status": {"query_validation": "VALID"}}

    async def segments(request: Request) -> Response:
        if refused := guard(request):
            return refused
        return JSONResponse({"results": [segment_json(sid) for sid in state.segments],
                             "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/segments/2.0"}})

    async def one_segment(request: Request) -> Response:
        if refused := guard(request):
            return refused
        sid = request.path_params["id"]
        if sid not in state.segments:
            return sg_error(404, "segment not found", "segment_id")  # exact 404 body unverified
        return JSONResponse(segment_json(sid))

    async def contact_count(request: Request) -> Response:
        if refused := guard(request):
            return refused
        total = state.count("all", None)
        return JSONResponse({"contact_count": total, "billable_count": total})

    # --- export job and its download host --------------------------------------------------
    async def create_export(request: Request) -> Response:
        if refused := guard(request):  # an export only reads: a read-only key may run one (assumed)
            return refused
        body = await request.json()
        list_ids, segment_ids = body.get("list_ids") or [], body.get("segment_ids") or []
        unknown = [i for i in list_ids if i not in state.lists] + [i for i in segment_ids if i not in state.segments]
        if unknown:
            return sg_error(400, f"unknown id {unknown[0]}", "list_ids" if unknown[0] in list_ids else "segment_ids")
        if len(list_ids) + len(segment_ids) > 1:
            return sg_error(400, "this emulator exports one list or segment at a time", "list_ids")
        state.settle()
        kind, ident = ("list", list_ids[0]) if list_ids else ("segment", segment_ids[0]) if segment_ids else ("all", None)
        eid = str(uuid.uuid4())
        now = iso(datetime.now(timezone.utc))
        state.exports[eid] = {"kind": kind, "ident": ident, "file_type": body.get("file_type", "csv"), "polls": 0,
                              "status": "pending", "created_at": now, "token": pysecrets.token_hex(8), "rows": None}
        counters["exports"] += 1
        return JSONResponse({"id": eid, "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/contacts/exports/{eid}"}}, 202)

    async def export_status(request: Request) -> Response:
        if refused := guard(request):
            return refused
        eid = request.path_params["id"]
        job = state.exports.get(eid)
        if job is None:
            return sg_error(404, "export not found", "id")
        job["polls"] += 1
        counters["export_polls"] += 1
        if job["status"] == "pending" and job["polls"] >= state.ready_after and state.export_outcome != "pending":
            job["status"] = state.export_outcome
            if job["status"] == "ready":  # a snapshot, 4 bytes per contact
                job["rows"] = array("I", (i for i in state.indices() if state.in_target(i, job["kind"], job["ident"])))
        now = iso(datetime.now(timezone.utc))
        reply: dict[str, Any] = {"id": eid, "status": job["status"], "created_at": job["created_at"], "updated_at": now,
                                 "expires_at": iso(datetime.now(timezone.utc) + timedelta(hours=72)),
                                 "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/contacts/exports/{eid}"}}
        if job["status"] == "ready":
            parts = max(1, -(-len(job["rows"]) // state.rows_per_file))
            suffix = ".gzip" if state.gzip else ""
            host = str(request.base_url).rstrip("/")
            signed = f"?X-Amz-Signature={job['token']}"  # a stand-in for S3's pre-signed query
            reply.update(completed_at=now, contact_count=len(job["rows"]),
                         urls=[f"{host}{DOWNLOAD_PREFIX}{eid}/{n}.{job['file_type']}{suffix}{signed}" for n in range(parts)])
        elif job["status"] == "failure":
            reply["message"] = "The export failed because of an internal error."
        return JSONResponse(reply)

    def export_lines(job: dict, part: int) -> Iterator[str]:
        rows = job["rows"][part * state.rows_per_file : (part + 1) * state.rows_per_file]
        csv_file = job["file_type"] == "csv"
        if csv_file:
            yield ",".join(CSV_COLUMNS) + "\r\n"
        for i in rows:
            email = state.email(i) or f"deleted{i}@example.com"  # the file is a snapshot
            created = iso(state.created(i))
            first = 'Ann, "the first"\nof her name' if state.tricky_every and i % state.tricky_every == 0 else f"First{i}"
            if csv_file:
                quoted = '"' + first.replace('"', '""') + '"' if any(c in first for c in ',"\n') else first
                yield f"{email},{quoted},Last,,{contact_id(i)},{created},{created}\r\n"
            else:  # JSON lines, with `contact_id` rather than `id`, as real exports have
                yield json.dumps({"contact_id": contact_id(i), "created_at": created, "custom_fields": {}, "email": email,
                                  "first_name": first, "last_name": "Last", "updated_at": created}) + "\n"

    async def download(request: Request) -> Response:
        counters["downloads"] += 1
        if "authorization" in request.headers:
            violations.errors.append(f"GET {request.url.path}: the export download carried an Authorization header")
            return Response("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
                            400, media_type="application/xml")
        eid, name = request.path_params["id"], request.path_params["name"]
        job = state.exports.get(eid)
        if job is None or job["status"] != "ready" or request.query_params.get("X-Amz-Signature") != job["token"]:
            return Response("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", 403, media_type="application/xml")
        part = int(name.split(".", 1)[0])

        breaking, state.break_after_blocks = state.break_after_blocks, None

        def body() -> Iterator[bytes]:
            compressor = zlib.compressobj(wbits=31) if state.gzip else None
            block: list[str] = []
            sent = 0
            for line in export_lines(job, part):
                block.append(line)
                if len(block) >= 500:
                    if breaking is not None and sent >= breaking:
                        raise ConnectionResetError("emulated transfer failure")  # uvicorn drops the connection
                    sent += 1
                    counters["download_blocks"] += 1
                    data = "".join(block).encode()
                    block.clear()
                    out = compressor.compress(data) if compressor else data
                    if out:
                        yield out
            data = "".join(block).encode()
            yield (compressor.compress(data) + compressor.flush()) if compressor else data

        # S3 serves the stored object as is: gzip bytes without a Content-Encoding header.
        return StreamingResponse(body(), media_type="application/octet-stream")

    # --- search (the SGQL forms the connector sends, nothing else) -------------------------------
    async def search(request: Request) -> Response:
        if refused := guard(request):
            return refused
        query = (await request.json()).get("query", "")
        match = SGQL_WINDOW.match(query)
        if not match:  # SendGrid's exact wording for a bad query is unverified
            return sg_error(400, "invalid query: this emulator understands only created_at windows", "query")
        after = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        until = datetime.fromisoformat(match.group(2).replace("Z", "+00:00")) if match.group(2) else None

        def inside(moment: datetime) -> bool:
            return moment > after and (until is None or moment <= until)

        # base members are created a minute apart: their window is arithmetic, not a scan
        first = max(0, int((after - BASE_CREATED).total_seconds() // 60) + 1)
        last = state.members - 1 if until is None else min(state.members - 1, int((until - BASE_CREATED).total_seconds() // 60))
        hits = [i for i in sorted(state.extra, reverse=True) if state.email(i) and inside(state.created(i))]
        in_base = max(0, last - first + 1) - sum(1 for i in state.deleted if first <= i <= last and i < state.members)
        sample, i = hits[:50], last
        while len(sample) < 50 and i >= first:  # newest first: the order is undocumented, so do not rely on it
            if i not in state.deleted:
                sample.append(i)
            i -= 1
        counters["searches"] += 1
        return JSONResponse({"result": [contact_json(state, i) for i in sample], "contact_count": len(hits) + in_base,
                             "_metadata": {"self": f"{SPEC_SERVER}/v3/marketing/contacts/search"}})

    # --- writes: suppressions and deletion -------------------------------------------------------
    async def suppress(request: Request) -> Response:
        if refused := guard(request, write=True):
            return refused
        body = await request.json()
        if extra := sorted(set(body) - {"recipient_emails"}):
            violations.errors.append(f"POST {request.url.path}: wrote fields other than recipient_emails: {extra}")
        emails = body.get("recipient_emails") or []
        if not isinstance(emails, list) or any(not isinstance(e, str) or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", e) for e in emails):
            return sg_error(400, "recipient_emails must be valid email addresses", "recipient_emails")  # wording unverified
        for email in emails:
            state.suppressed.setdefault(email.lower(), int(time.time()))
        counters["unsubscribed"] += len(emails)
        counters["suppress_calls"] += 1
        return JSONResponse({"recipient_emails": emails}, 201)

    async def one_suppression(request: Request) -> Response:
        email = request.path_params["email"].lower()
        if refused := guard(request, write=request.method == "DELETE"):
            return refused
        if request.method == "GET":
            return JSONResponse({"recipient_email": email} if email in state.suppressed else {})
        state.suppressed.pop(email, None)
        counters["resubscribed"] += 1
        return Response(status_code=204)

    async def unsubscribes(request: Request) -> Response:
        if refused := guard(request):
            return refused
        limit = min(max(int(request.query_params.get("limit", 500)), 1), 500)
        offset = max(int(request.query_params.get("offset", 0)), 0)
        rows = list(state.suppressed.items())[offset : offset + limit]
        counters["suppression_pages"] += 1
        return JSONResponse([{"created": created, "email": email} for email, created in rows])

    async def delete_contacts(request: Request) -> Response:
        if refused := guard(request, write=True):
            return refused
        if "delete_all_contacts" in request.query_params:
            violations.errors.append("DELETE /v3/marketing/contacts: asked to delete ALL contacts")
            return sg_error(400, "refusing delete_all_contacts in the emulator", "delete_all_contacts")
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids:
            return sg_error(400, "either ids or delete_all_contacts is required", "ids")  # wording unverified
        jid = str(uuid.uuid4())
        state.jobs[jid] = {"ids": ids, "polls": 0, "status": "pending", "started_at": iso(datetime.now(timezone.utc))}
        counters["delete_calls"] += 1
        return JSONResponse({"job_id": jid}, 202)

    async def job_status(request: Request) -> Response:
        if refused := guard(request):
            return refused
        job = state.jobs.get(request.path_params["id"])
        if job is None:
            return sg_error(404, "job not found", "id")
        job["polls"] += 1
        counters["job_polls"] += 1
        if job["polls"] >= 2:
            before = len(state.deleted)
            state.finish(job)
            counters["deleted"] += len(state.deleted) - before
        reply = {"id": request.path_params["id"], "status": job["status"], "job_type": "delete", "started_at": job["started_at"],
                 "results": {"requested_count": len(job["ids"]), "deleted_count": job.get("deleted", 0), "errored_count": 0}}
        if job.get("finished_at"):
            reply["finished_at"] = job["finished_at"]
        return JSONResponse(reply)

    async def other_write(request: Request) -> Response:
        """Anything else that writes (an upsert, a list edit) touches more than subscription state."""
        violations.errors.append(f"{request.method} {request.url.path}: a write the connector must never make")
        return sg_error(405, "not allowed in the emulator")

    app = Starlette(routes=[
        Route("/v3/marketing/lists", lists),
        Route("/v3/marketing/lists/{id}", one_list),
        Route("/v3/marketing/segments/2.0", segments),
        Route("/v3/marketing/segments/2.0/{id}", one_segment),
        Route("/v3/marketing/contacts/count", contact_count),
        Route("/v3/marketing/contacts/exports", create_export, methods=["POST"]),
        Route("/v3/marketing/contacts/exports/{id}", export_status),
        Route("/v3/marketing/contacts/imports/{id}", job_status),
        Route("/v3/marketing/contacts/search", search, methods=["POST"]),
        Route("/v3/marketing/contacts", delete_contacts, methods=["DELETE"]),
        Route("/v3/marketing/contacts", other_write, methods=["PUT", "POST", "PATCH"]),
        Route("/v3/asm/suppressions/global", suppress, methods=["POST"]),
        Route("/v3/asm/suppressions/global/{email}", one_suppression, methods=["GET", "DELETE"]),
        Route("/v3/suppression/unsubscribes", unsubscribes),
        Route(DOWNLOAD_PREFIX + "{id}/{name}", download),
        Route("/v3/{rest:path}", other_write, methods=["PUT", "POST", "PATCH", "DELETE"]),
    ])
    faults = FaultPlan()

    def add_member(list_id: str, email: str, created_at: datetime | None = None) -> str:
        i = state.next_index
        state.extra[i] = Extra(email=email, list_ids=(list_id,), created_at=created_at or datetime.now(timezone.utc))
        return contact_id(i)

    def credentials(key: str):
        return lambda base_url: {"api_key": key}

    return Emulator(
        slug="sendgrid",
        app=FaultMiddleware(SpecRouter(RateLimitMiddleware(app, state, counters), SPEC_FILES, violations, base_url=SPEC_SERVER,
                                         passthrough=(DOWNLOAD_PREFIX,)), faults),
        faults=faults,
        list_id=MAIN_LIST,
        state=state,
        counters=counters,
        violations=violations,
        credentials=credentials(GOOD_KEY),
        bad_credentials=credentials(WRONG_KEY),
        read_only_credentials=credentials(READ_ONLY_KEY),
        is_unsubscribed=lambda email: email.lower() in state.suppressed,
        is_deleted=lambda email: state.find(email) is None,
        add_member=add_member,
    )
