"""The Jobs API over the core's durable jobs (core/jobs): verify or clean a connection's list, or a CSV.

    POST /jobs  {"connection_id", "list_id", "mode": "verify"|"clean", "rules"?}  -> 202 the job
    POST /jobs  (Content-Type: text/csv or text/plain, the file as the body)        -> 202 a bulk_file job
    GET  /jobs/{id}                 state and progress
    GET  /jobs/{id}/results.csv     the results, streamed (a bulk file: its own rows plus the result columns)
    POST /jobs/{id}/approve         a clean job awaiting approval goes ahead (approver keys only)

A job started by an API key has the key's id as requester; with four-eyes on, another approver
key must approve it. Everything is refused up front that cannot work (unknown or disconnected
connection, a rule the platform cannot carry out, too few credits for the list: 402 with the
shortfall); the rest happens in the background and shows in GET /jobs/{id}.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from api.body import expect_type, media_type, read_json_object, too_large
from api.context import ApiContext
from api.endpoint import endpoint, path_id, resource
from api.errors import ApiError, invalid_request, not_found
from core.apikeys import ApiKeyView
from core.cleanup import CATEGORY_ORDER, Policy
from core.storage.sql import iso

CSV_TYPES = ("text/csv", "text/plain", "text/tab-separated-values", "application/octet-stream")
MODES = ("verify", "clean")
VERIFYING = ("preparing", "queued", "running", "paused")  # results.csv is ready once verification is over
SPOOL_BYTES = 1_048_576  # an upload is kept in memory up to this, then in a temporary file


def job_object(job: Any) -> dict[str, Any]:
    """A job as the API shows it (schema `Job` in /openapi.json)."""
    return {
        "id": job.id, "kind": job.kind, "mode": job.mode, "state": str(job.state),
        "connection_id": job.connection_id, "list_id": job.list_id, "list_name": job.list_name,
        "rules": None if job.policy is None else job.policy.to_json(),
        "progress": {"total": job.expected, "rows": job.total, "unique": job.unique, "duplicates": job.duplicates,
                     "processed": job.processed, "ingest_done": job.ingest_done},
        "counts": dict(sorted(job.status_counts.items())),
        "planned": dict(sorted(job.planned().items())),
        "applied": dict(sorted(job.applied_counts.items())),
        "failures": dict(sorted(job.failure_counts.items())),
        "credits": {"charged": job.charged, "refunded": job.refunded, "used": job.credits_used},
        "requester": job.requester, "approver": job.approver, "rejected_by": job.rejected_by,
        "reject_reason": job.reject_reason, "error": job.error, "paused_reason": job.paused_reason,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "verified_at": iso(job.verified_at),
        "approved_at": iso(job.approved_at), "finished_at": iso(job.finished_at), "expires_at": iso(job.expires_at),
    }


def parse_rules(value: Any) -> Policy:
    """A cleanup policy in the core's JSON shape: {"invalid": {"enabled", "action"}, ..., "blacklist_action"}."""
    known = {str(c) for c in CATEGORY_ORDER} | {"blacklist_action"}
    if not isinstance(value, dict) or any(k not in known for k in value):
        raise invalid_request(f"The 'rules' field must be an object with the keys {', '.join(sorted(known))}.",
                              field="rules")
    for category, rule in value.items():
        if category == "blacklist_action":
            continue
        if (not isinstance(rule, dict) or set(rule) - {"enabled", "action"}
                or not isinstance(rule.get("enabled", False), bool)):
            raise invalid_request(f"The '{category}' rule must be {{\"enabled\": true|false, \"action\": "
                                  "\"keep\"|\"unsubscribe\"|\"delete\"}.", field="rules")
    return Policy.from_json(value)  # PolicyError names a bad action (a 400)


async def spool_upload(request: Request, max_bytes: int) -> tempfile.SpooledTemporaryFile:
    """The request body in a temporary file (memory up to SPOOL_BYTES), refused with 413 past `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115  (closed by the caller)
    size, pending = 0, bytearray()
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            pending += chunk
            if len(pending) >= SPOOL_BYTES:  # past the first megabyte the spool is a file: write off the event loop
                await asyncio.to_thread(spool.write, bytes(pending))
                pending.clear()
        await asyncio.to_thread(spool.write, bytes(pending))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def start_file_job(request: Request, key: ApiKeyView, api: ApiContext) -> Any:
    column = request.query_params.get("column") or None
    filename = request.query_params.get("filename") or ("upload.csv" if media_type(request) == "text/csv" else "upload.txt")
    if (column and len(column) > 200) or len(filename) > 255:
        raise invalid_request("The 'column' and 'filename' parameters are at most 200 and 255 characters.")
    spool = await spool_upload(request, api.settings.api_max_upload_bytes)
    try:
        return await api.jobs.start_bulk_file(key.workspace_id, spool, requester=key.id, filename=filename,
                                                       column=column)
    finally:
        spool.close()


async def start_list_job(request: Request, key: ApiKeyView, api: ApiContext) -> Any:
    body = await read_json_object(request, allowed=("connection_id", "list_id", "mode", "rules"))
    connection_id = expect_type(body, "connection_id", str, "a string")
    list_id = expect_type(body, "list_id", str, "a string")
    for name, value in (("connection_id", connection_id), ("list_id", list_id)):
        if not value or len(value) > 255:
            raise invalid_request(f"'{name}' is required: a string of 1 to 255 characters (or upload a CSV as text/csv).",
                                  field=name)
    if len(connection_id) > 32:  # longer than any id we mint: it names no connection
        raise not_found(f"No connection {connection_id[:64]} in this workspace.")
    mode = expect_type(body, "mode", str, "verify or clean") or "verify"
    if mode not in MODES:
        raise invalid_request("The 'mode' field must be verify or clean.", field="mode")
    if "rules" in body and mode != "clean":
        raise invalid_request("'rules' only applies to mode clean.", field="rules")
    jobs = api.jobs
    if mode == "verify":
        return await jobs.start_verify_list(key.workspace_id, connection_id, list_id, requester=key.id)
    policy = parse_rules(body["rules"]) if "rules" in body else await api.services.policies.get(key.workspace_id,
                                                                                               connection_id)
    return await jobs.start_cleanup(key.workspace_id, connection_id, list_id, requester=key.id, policy=policy)


@endpoint
async def create_job(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    if media_type(request) in CSV_TYPES:
        job = await start_file_job(request, key, api)
    else:
        job = await start_list_job(request, key, api)
    return JSONResponse(job_object(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


async def job_or_404(request: Request, key: ApiKeyView, api: ApiContext) -> Any:
    job = await api.jobs.get(path_id(request, "job_id", "job"), key.workspace_id)
    if job is None or str(job.state) == "preparing":
        raise not_found("No such job.")
    return job


@endpoint
async def get_job(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    return JSONResponse(job_object(await job_or_404(request, key, api)))


@endpoint
async def results_csv(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    job = await job_or_404(request, key, api)
    if str(job.state) in VERIFYING:
        raise ApiError(409, "job_not_verified", f"The job is {str(job.state).replace('_', ' ')}; its results are ready "
                                                "once verification is over.")
    return StreamingResponse(api.jobs.results_csv(job.id), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{job.id}.csv"'})


@endpoint
async def approve_job(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    if "approver" not in key.roles:
        raise ApiError(403, "forbidden", "This API key may not approve cleanups; create one with "
                                         "`listwarden apikey create --approver`.")
    job = await job_or_404(request, key, api)
    jobs = api.jobs
    if not await jobs.approve(job.id, key.id):  # ApprovalRefused (four eyes) is a 403
        now = await jobs.get(job.id, key.workspace_id)
        state = str(now.state if now is not None else job.state).replace("_", " ")
        raise ApiError(409, "invalid_state", f"The job is {state}, not awaiting approval.")
    return JSONResponse(job_object(await jobs.get(job.id, key.workspace_id)), status_code=202)


routes = [
    resource("/jobs", post=create_job),
    resource("/jobs/{job_id}", get=get_job),
    resource("/jobs/{job_id}/results.csv", get=results_csv),
    resource("/jobs/{job_id}/approve", post=approve_job),
]
