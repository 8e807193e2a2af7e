"""CampaignKit's validation API (seed 004): POST /email/validate and GET /email/results/{contextId}.

Credits: the unique addresses are charged up front in one ledger entry (402 with the shortfall
when the balance cannot cover them, before anything is verified); unknown results are refunded
(the status table says which), and a request that fails midway refunds everything.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.body import read_json_object
from api.campaignkit import result_item
from api.context import ApiContext
from api.endpoint import endpoint, path_id, resource
from api.errors import invalid_request, not_found
from core.apikeys import ApiKeyView
from core.results import new_context_id
from core.verify.status import info

log = logging.getLogger(__name__)
MAX_EMAILS = 100
MAX_EMAIL_LENGTH = 320
EMAILS_REQUIRED = "The 'emails' field is required and must be an array"  # seed 004, word for word


def parse_emails(body: dict[str, Any]) -> list[str]:
    """The unique addresses, first spelling kept, in request order; 400 for every malformed shape."""
    emails = body.get("emails")
    if not isinstance(emails, list):
        raise invalid_request(EMAILS_REQUIRED)
    if not emails:
        raise invalid_request("The 'emails' array must contain at least 1 email.", field="emails")
    if len(emails) > MAX_EMAILS:
        raise invalid_request(f"The 'emails' array may contain at most {MAX_EMAILS} emails; split larger batches.",
                              field="emails")
    unique: dict[str, str] = {}
    for i, email in enumerate(emails):
        if not isinstance(email, str):
            raise invalid_request(f"Item {i} of 'emails' must be a string.", field="emails")
        if len(email) > MAX_EMAIL_LENGTH:
            raise invalid_request(f"Item {i} of 'emails' is longer than {MAX_EMAIL_LENGTH} characters.", field="emails")
        unique.setdefault(email.strip().casefold(), email.strip())  # duplicates are verified and charged once
    return list(unique.values())


@endpoint
async def validate(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    emails = parse_emails(await read_json_object(request, allowed=("emails",)))
    services = api.services
    ledger_key = f"api:validate:{secrets.token_hex(12)}"
    charged = await services.credits.charge(key.workspace_id, len(emails), reason="api validate", key=ledger_key)
    try:
        verifier = await api.verifier()
        results = await asyncio.gather(*(verifier.verify(email) for email in emails))
        refunded = sum(1 for r in results if info(r.status).refunded)
        items = [result_item(email, new_context_id(), result) for email, result in zip(emails, results, strict=True)]
        await services.results.save(key.workspace_id, items)
    except BaseException:
        # nothing delivered, nothing owed (shielded: a client that hung up must not cancel the refund)
        await asyncio.shield(services.credits.refund(key.workspace_id, charged, reason="api validate failed",
                                                     key=f"{ledger_key}:refund"))
        raise
    if refunded:
        await services.credits.refund(key.workspace_id, refunded, reason="unknown results refunded",
                                      key=f"{ledger_key}:refund")
    return JSONResponse({"creditsUsed": charged - refunded, "results": items})


@endpoint
async def stored_result(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    item = await api.services.results.get(key.workspace_id, path_id(request, "context_id", "validation result", longest=40))
    if item is None:
        raise not_found("No validation result with this contextId.")
    return JSONResponse(item)


routes = [
    resource("/email/validate", post=validate),
    resource("/email/results/{context_id}", get=stored_result),
]
