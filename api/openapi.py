"""The OpenAPI 3.1 description of /v1, served at /openapi.json and checked by schemathesis in tests.

Written out by hand from the same constants the handlers and the core use (limits, checks,
aggressiveness presets, job states, cleanup categories), so the spec and the code cannot drift
apart on those facts.
"""

from __future__ import annotations

from typing import Any

from api.body import MAX_BODY_BYTES
from api.routes.email import MAX_EMAIL_LENGTH, MAX_EMAILS
from api.routes.integrations import MAX_BULK, MAX_CREDENTIAL, MAX_KEYWORD, MAX_NAME
from api.routes.jobs import CSV_TYPES, MODES
from api.text import PATTERN as LINE
from core.checks import AGGRESSIVENESS, CHECKS, PRESETS
from core.cleanup import ACTIONS, CATEGORY_ORDER

CHECK = {"type": "string", "enum": ["pass", "fail", "n/a"]}
JOB_STATES = ["queued", "running", "paused", "awaiting_approval", "approved", "applying", "done", "failed",
              "cancelled", "expired"]
COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
TIME = {"type": ["string", "null"], "format": "date-time"}
ERROR_DESCRIPTIONS = {
    400: "Invalid request: not JSON, an unknown field, a wrong type, a value out of range, or credentials the "
         "platform refused (`field` names the field).",
    401: 'Missing, unknown or revoked API key: always `{"error":{"code":"unauthorized","message":"Invalid API key"}}`.',
    402: "Out of verification credits: `needed`, `balance` and `shortfall` say by how much.",
    403: "This key may not do this (approving needs an approver key; four-eyes: not the requester's own job).",
    404: "No such resource (or it belongs to another workspace).",
    409: "Not possible in the current state (a disconnected connection; a job not awaiting approval or still verifying).",
    413: "The body is too large.",
    415: "The body is not sent as application/json (or as a CSV/TXT file for a file job).",
    422: "Cannot be done this way: an OAuth-only platform (`oauth_url` says where to connect), a platform without "
         "OAuth, or an Idempotency-Key reused for a different request.",
    429: "Per-key rate limit exceeded; `Retry-After` says how many seconds to wait.",
    502: "The email platform failed or could not be reached.",
    503: "The email platform is rate limiting this account (`Retry-After` says how long).",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": ERROR_DESCRIPTIONS[status],
                                "content": {"application/json": {"schema": ref("Error")}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}}
    return response


def ok(description: str, schema: dict[str, Any] | None, status: int = 200) -> dict[str, Any]:
    if schema is None:
        return {str(status): {"description": description}}
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema}}}}


def operation(summary: str, responses: dict[str, Any], errors: tuple[int, ...], *, body: dict[str, Any] | None = None,
              params: list[dict[str, Any]] | None = None, op_id: str, body_required: bool = True,
              description: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id,
                          "responses": {**responses, **{str(s): error(s) for s in sorted({*errors, 401, 429})}}}
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


TYPE = path_param("type", "Platform slug: activecampaign, brevo (sendinblue is an alias), convertkit (kit), hubspot, "
                          "klaviyo, mailchimp, mailerlite, sendgrid.")
ID = path_param("id", "Connection id, e.g. cnx_8f3a...")
JOB = path_param("job_id", "Job id, e.g. job_1a2b...")
BODY_ERRORS = (400, 413, 415)
PLATFORM_ERRORS = (502, 503)

RULE_OBJECT = {"type": "object", "additionalProperties": False,
               "properties": {"enabled": {"type": "boolean"}, "action": {"type": "string", "enum": list(ACTIONS)}}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "field": {"type": "string", "description": "The request field at fault."},
            "oauth_url": {"type": "string", "description": "Where to connect an OAuth-only platform."},
            "needed": {"type": "integer"}, "balance": {"type": "integer"}, "shortfall": {"type": "integer"}}}},
    },
    "ValidateRequest": {
        "type": "object", "required": ["emails"], "additionalProperties": False,
        "properties": {"emails": {"type": "array", "minItems": 1, "maxItems": MAX_EMAILS,
                                  "items": {"type": "string", "maxLength": MAX_EMAIL_LENGTH},
                                  "description": f"1 to {MAX_EMAILS} addresses; duplicates are verified and charged once."}},
    },
    "ValidationResult": {
        "type": "object", "required": ["syntax", "mx", "mailbox", "score", "classifier", "description", "smtpResponse"],
        "properties": {
            "syntax": CHECK, "mx": CHECK, "mailbox": CHECK,
            "score": {"type": "integer", "minimum": 0, "maximum": 10},
            "classifier": {"type": "string", "enum": ["valid", "risky", "invalid"]},
            "description": {"type": "array", "items": {"type": "string"},
                            "description": "Flags: role_email, disposable, catchall, blacklist, invalid_syntax, "
                                           "invalid_mx, mailbox_full, mailbox_disabled, and Listwarden's own."},
            "smtpResponse": {"type": "string", "description": "e.g. \"250 OK\"; empty when no SMTP answer."},
        },
    },
    "ValidationItem": {
        "type": "object", "required": ["email", "contextId", "result"],
        "properties": {"email": {"type": "string"}, "contextId": {"type": "string"}, "result": ref("ValidationResult")},
    },
    "ValidateResponse": {
        "type": "object", "required": ["creditsUsed", "results"],
        "properties": {"creditsUsed": {"type": "integer", "minimum": 0},
                       "results": {"type": "array", "items": ref("ValidationItem")}},
    },
    "Checks": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {gate: {"type": "boolean"} for gate in CHECKS},
        "description": "Cleanup gates for automatic cleaning. Presets: " + "; ".join(
            f"{level} = {', '.join(g for g, on in gates.items() if on)}" for level, gates in PRESETS.items()),
    },
    "Connection": {
        "type": "object",
        "required": ["id", "name", "status", "auto_floss_enabled", "created_at", "last_synced_at", "settings"],
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "disconnected"]},
            "auto_floss_enabled": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "last_synced_at": TIME,
            "settings": {"type": "object", "required": ["aggressiveness", "verify_first", "checks"],
                         "properties": {"aggressiveness": {"type": "string", "enum": list(AGGRESSIVENESS)},
                                        "verify_first": {"type": "boolean"}, "checks": ref("Checks")}},
        },
    },
    "Integration": {
        "type": "object",
        "required": ["type", "name", "status", "auth", "connectable_via_api", "oauth_available", "credential_fields",
                     "capabilities", "connections"],
        "properties": {
            "type": {"type": "string"}, "name": {"type": "string"},
            "status": {"type": "string", "enum": ["connected", "available"]},
            "auth": {"type": "string", "enum": ["api_key", "oauth", "api_key_or_oauth"]},
            "connectable_via_api": {"type": "boolean"},
            "oauth_available": {"type": "boolean", "description": "This instance has an OAuth app for the platform."},
            "credential_fields": {"type": "array", "items": {
                "type": "object", "required": ["name", "label", "help", "required", "secret", "choices"],
                "properties": {"name": {"type": "string"}, "label": {"type": "string"}, "help": {"type": "string"},
                               "required": {"type": "boolean"}, "secret": {"type": "boolean"},
                               "choices": {"type": "array", "items": {"type": "string"}}}}},
            "capabilities": {"type": "object", "required": ["can_unsubscribe", "can_delete", "list_kinds"],
                             "properties": {"can_unsubscribe": {"type": "boolean"}, "can_delete": {"type": "boolean"},
                                            "list_kinds": {"type": "array", "items": {"type": "string"}}}},
            "connections": {"type": "array", "items": ref("Connection")},
        },
    },
    "Credentials": {
        "type": "object", "maxProperties": 10,
        "additionalProperties": {"type": "string", "maxLength": MAX_CREDENTIAL},
        "description": "The platform's credential_fields (GET /v1/integrations/{type}): api_key; api_url + api_key "
                       "(ActiveCampaign); api_key, or api_key + api_secret (ConvertKit v3).",
    },
    "ConnectRequest": {
        "type": "object", "required": ["credentials"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": LINE,
                                "description": "Defaults to the platform's display name."},
                       "credentials": ref("Credentials")},
    },
    "ReconnectRequest": {
        "type": "object", "additionalProperties": False,
        "properties": {"credentials": ref("Credentials")},
        "description": "Optional: new credentials to check and keep (otherwise the stored ones are checked again).",
    },
    "OAuthLinkRequest": {
        "type": "object", "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": LINE}},
    },
    "OAuthLink": {
        "type": "object", "required": ["url", "expires_in"],
        "properties": {"url": {"type": "string", "description": "Open it in a browser: it signs in with the platform "
                                                                "and creates the connection in this key's workspace."},
                       "expires_in": {"type": "integer"}},
    },
    "ConnectionUpdate": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "not": {"required": ["aggressiveness", "checks"]},
        "description": "Partial update. aggressiveness and checks are mutually exclusive; editing a check makes "
                       "aggressiveness custom; normal and aggressive set their preset checks.",
        "properties": {"verify_first": {"type": "boolean"},
                       "aggressiveness": {"type": "string", "enum": list(AGGRESSIVENESS)}, "checks": ref("Checks"),
                       "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": LINE},
                       "auto_floss_enabled": {"type": "boolean"}},
    },
    "PlatformList": {
        "type": "object", "required": ["id", "name", "kind", "subscriber_count", "synced_at"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
                       "subscriber_count": {"type": ["integer", "null"]}, "synced_at": TIME},
    },
    "KeywordRule": {
        "type": "object", "required": ["id", "keyword", "created_at"],
        "description": "Addresses containing `keyword` (case-insensitive) are always kept (whitelist) or always "
                       "removed (blacklist); when both match, the whitelist wins.",
        "properties": {"id": {"type": "string"}, "keyword": {"type": "string"},
                       "created_at": {"type": "string", "format": "date-time"}},
    },
    "RuleAdd": {
        "type": "object", "additionalProperties": False,
        "description": "One of keyword (add one) or keywords (bulk add); adding a keyword that is there already "
                       "returns the existing rule.",
        "oneOf": [{"required": ["keyword"]}, {"required": ["keywords"]}],
        "properties": {"keyword": {"type": "string", "minLength": 1, "maxLength": MAX_KEYWORD, "pattern": LINE},
                       "keywords": {"type": "array", "minItems": 1, "maxItems": MAX_BULK,
                                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_KEYWORD,
                                              "pattern": LINE}}},
    },
    "CleanupRules": {
        "type": "object", "additionalProperties": False,
        "description": "The five cleanup categories (seed 000), each enabled or not with an action, and the action "
                       "for blacklisted addresses. Categories left out keep their defaults: invalid on/unsubscribe, "
                       "disposable on/delete, catch_all, unknown and risky off/keep.",
        "properties": {**{str(c): RULE_OBJECT for c in CATEGORY_ORDER},
                       "blacklist_action": {"type": "string", "enum": list(ACTIONS)}},
    },
    "JobRequest": {
        "type": "object", "required": ["connection_id", "list_id"], "additionalProperties": False,
        "properties": {"connection_id": {"type": "string", "minLength": 1, "maxLength": 255},
                       "list_id": {"type": "string", "minLength": 1, "maxLength": 255},
                       "mode": {"type": "string", "enum": list(MODES), "default": "verify",
                                "description": "clean: after verification, wait for approval, then unsubscribe or "
                                               "delete what the rules say."},
                       "rules": ref("CleanupRules")},
        "dependentSchemas": {"rules": {"required": ["mode"], "properties": {"mode": {"const": "clean"}}}},
        "description": "A list to verify; with mode clean, then cleaned after approval by the rules given (or the "
                       "connection's stored policy). `rules` goes with mode clean only.",
    },
    "Job": {
        "type": "object",
        "required": ["id", "kind", "mode", "state", "progress", "counts", "planned", "applied", "failures", "credits",
                     "created_at"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "description": "verify_list, cleanup or bulk_file"},
            "mode": {"type": "string", "enum": list(MODES)},
            "state": {"type": "string", "enum": JOB_STATES},
            "connection_id": {"type": ["string", "null"]}, "list_id": {"type": ["string", "null"]},
            "list_name": {"type": ["string", "null"]},
            "rules": {"anyOf": [ref("CleanupRules"), {"type": "null"}]},
            "progress": {"type": "object", "required": ["total", "rows", "unique", "duplicates", "processed", "ingest_done"],
                         "properties": {"total": {"type": "integer", "description": "Addresses to verify, as far as known."},
                                        "rows": {"type": "integer"}, "unique": {"type": "integer"},
                                        "duplicates": {"type": "integer"}, "processed": {"type": "integer"},
                                        "ingest_done": {"type": "boolean"}}},
            "counts": {**COUNTS, "description": "Addresses per status (valid, invalid, disposable, catch_all, ...)."},
            "planned": {**COUNTS, "description": "Contacts per planned action (keep, unsubscribe, delete)."},
            "applied": {**COUNTS, "description": "Contacts changed per action."},
            "failures": {**COUNTS, "description": "Contacts the platform refused, per reason."},
            "credits": {"type": "object", "required": ["charged", "refunded", "used"],
                        "properties": {k: {"type": "integer"} for k in ("charged", "refunded", "used")}},
            "requester": {"type": ["string", "null"]}, "approver": {"type": ["string", "null"]},
            "rejected_by": {"type": ["string", "null"]}, "reject_reason": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]}, "paused_reason": {"type": ["string", "null"]},
            **{name: TIME for name in ("created_at", "started_at", "verified_at", "approved_at", "finished_at",
                                       "expires_at")},
        },
    },
}


def _rule_paths(kind: str) -> dict[str, Any]:
    base = f"/v1/integrations/{{type}}/connections/{{id}}/{kind}"
    rules = {"type": "object", "required": ["rules"], "properties": {"rules": {"type": "array", "items": ref("KeywordRule")}}}
    return {
        base: {
            "get": operation(f"List {kind} keyword rules", ok("The rules", rules), (404,), params=[TYPE, ID],
                             op_id=f"list_{kind}"),
            "post": operation(f"Add {kind} keyword rules (one or bulk)", ok("The rules for the keywords sent", rules, 201),
                              (*BODY_ERRORS, 404), body=ref("RuleAdd"), params=[TYPE, ID], op_id=f"add_{kind}"),
        },
        base + "/{rule_id}": {
            "delete": operation(f"Delete one {kind} rule", ok("Deleted", None, 204), (404,),
                                params=[TYPE, ID, path_param("rule_id", "Rule id, e.g. kw_...")],
                                op_id=f"delete_{kind}"),
        },
    }


def build_spec(server_url: str) -> dict[str, Any]:
    conn = "/v1/integrations/{type}/connections/{id}"
    lists = {"type": "array", "items": ref("PlatformList")}
    file_body = {"type": "string", "description": "The file: one address per line, or a CSV whose header names an "
                                                  "email column (or pick it with ?column=)."}
    paths: dict[str, Any] = {
        "/v1/email/validate": {"post": operation(
            f"Validate 1 to {MAX_EMAILS} addresses (CampaignKit's shape)", ok("Results", ref("ValidateResponse")),
            (*BODY_ERRORS, 402), body=ref("ValidateRequest"), op_id="validate_emails",
            description="Each unique address costs one credit; unknown results are refunded (creditsUsed says what was "
                        "kept). Every result can be fetched again by its contextId.")},
        "/v1/email/results/{contextId}": {"get": operation(
            "Fetch a validation result again", ok("The result", ref("ValidationItem")), (404,),
            params=[path_param("contextId", "contextId from a validation")], op_id="get_result")},
        "/v1/integrations": {"get": operation(
            "Every platform, connected or available, with its connections",
            ok("Integrations", {"type": "object", "required": ["integrations"],
                                "properties": {"integrations": {"type": "array", "items": ref("Integration")}}}),
            (), op_id="list_integrations")},
        "/v1/integrations/{type}": {"get": operation(
            "One platform and all its connections", ok("The integration", ref("Integration")), (404,),
            params=[TYPE], op_id="get_integration")},
        "/v1/integrations/{type}/connections": {"post": operation(
            "Connect: the credentials are checked live by fetching the lists", ok("Connected", ref("Connection"), 201),
            (*BODY_ERRORS, 402, 404, 422, *PLATFORM_ERRORS), body=ref("ConnectRequest"),
            params=[TYPE, {"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                           "description": "A retried connect with the same key returns the first result (kept a day)."}],
            op_id="connect")},
        "/v1/integrations/{type}/oauth": {"post": operation(
            "A browser link that connects the platform through OAuth", ok("The link", ref("OAuthLink"), 201),
            (*BODY_ERRORS, 404, 422), body=ref("OAuthLinkRequest"), body_required=False, params=[TYPE],
            op_id="oauth_link")},
        conn: {
            "get": operation("One connection", ok("The connection", ref("Connection")), (404,), params=[TYPE, ID],
                             op_id="get_connection"),
            "patch": operation("Update cleaning settings (partial)", ok("Updated", ref("Connection")), (*BODY_ERRORS, 404),
                               body=ref("ConnectionUpdate"), params=[TYPE, ID], op_id="update_connection"),
            "delete": operation("Disconnect: automatic cleaning stops, the record stays",
                                ok("Disconnected", ref("Connection")), (404,), params=[TYPE, ID], op_id="disconnect"),
        },
        conn + "/reconnect": {"post": operation(
            "Reconnect (the credentials are checked live)", ok("Reconnected", ref("Connection")),
            (*BODY_ERRORS, 404, *PLATFORM_ERRORS), body=ref("ReconnectRequest"), body_required=False,
            params=[TYPE, ID], op_id="reconnect")},
        conn + "/lists": {"get": operation(
            "The connection's lists with their counts, as of the last sync", ok("Lists", {
                "type": "object", "required": ["lists"], "properties": {"lists": lists}}),
            (404,), params=[TYPE, ID], op_id="connection_lists")},
        conn + "/sync": {"post": operation(
            "Sync now: fresh lists and counts from the platform", ok("Synced", {
                "type": "object", "required": ["connection", "lists"],
                "properties": {"connection": ref("Connection"), "lists": lists}}),
            (400, 404, 409, *PLATFORM_ERRORS), params=[TYPE, ID], op_id="sync_now")},
        "/v1/jobs": {"post": {**operation(
            "Start a job: verify (or clean) a connection's list, or verify an uploaded file",
            ok("Started", ref("Job"), 202), (*BODY_ERRORS, 402, 404, 409, *PLATFORM_ERRORS), op_id="create_job",
            params=[{"name": "column", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 200},
                     "description": "File jobs: the header of the email column."},
                    {"name": "filename", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 255},
                     "description": "File jobs: the file's name (.csv, .tsv or .txt helps tell its shape)."}]),
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": ref("JobRequest")},
                **{media: {"schema": file_body} for media in CSV_TYPES}}}}},
        "/v1/jobs/{job_id}": {"get": operation("State and progress", ok("The job", ref("Job")), (404,),
                                               params=[JOB], op_id="get_job")},
        "/v1/jobs/{job_id}/results.csv": {"get": operation(
            "Stream the results as CSV",
            {"200": {"description": "A list job: contact_id, email, status, score, classifier, flags, suggestion, "
                                    "smtp_code, smtp_message, mx_host, reason, planned_action, applied. A file job: "
                                    "every row of the file with the result columns appended.",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}}, (404, 409), params=[JOB],
            op_id="job_results")},
        "/v1/jobs/{job_id}/approve": {"post": operation(
            "Approve a clean job awaiting approval (approver keys only)", ok("Approved: applying", ref("Job"), 202),
            (403, 404, 409), params=[JOB], op_id="approve_job")},
        **_rule_paths("whitelist"),
        **_rule_paths("blacklist"),
    }
    for item in paths.values():  # answers that every operation may give
        for op in item.values():
            op["responses"].setdefault("500", {"description": "Unexpected server error (logged; no detail is sent).",
                                               "content": {"application/json": {"schema": ref("Error")}}})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Listwarden API", "version": "1",
                 "description": "Email validation (CampaignKit-compatible) and email-platform integrations "
                                "(mailfloss-compatible) on your own Listwarden, plus durable verification jobs. "
                                f"JSON bodies are at most {MAX_BODY_BYTES} bytes."},
        "servers": [{"url": server_url.rstrip("/")}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "description": "Authorization: Bearer KEY "
                                                                         "(`listwarden apikey create`)."}}},
    }
