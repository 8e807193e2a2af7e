"""Reading a JSON request body safely: content type, size cap, parse errors, shape and field checks.

Every failure is an `ApiError` with the documented shape; nothing here can raise a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from api.errors import ApiError, invalid_request

MAX_BODY_BYTES = 1_048_576  # 100 addresses of 320 characters fit many times over


async def read_json_object(request: Request, *, allowed: Iterable[str], max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The body as a JSON object with only `allowed` keys; 415, 413 or 400 otherwise."""
    content_type = media_type(request)
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json.")
    raw = await read_body(request, max_bytes)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise invalid_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    try:  # "\ud800" is valid JSON but no text: refuse it here rather than fail while answering
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise invalid_request("The request body contains an unpaired UTF-16 surrogate (\\uD800-\\uDFFF).") from None
    allowed_set = set(allowed)
    unknown = sorted(k for k in body if k not in allowed_set)
    if unknown:
        raise invalid_request(f"Unknown field '{unknown[0]}'. Allowed fields: {', '.join(sorted(allowed_set))}.",
                              field=unknown[0])
    return body


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `max_bytes` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # counted as it arrives: a lying Content-Length cannot get past the cap
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"The request body is larger than {max_bytes} bytes.")


def expect_type(body: dict[str, Any], name: str, kind: type | tuple[type, ...], label: str) -> Any:
    """body[name] if present and of `kind` (bool is not an int here); None when absent."""
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise invalid_request(f"The '{name}' field must be {label}.", field=name)
    if not isinstance(value, kind):
        raise invalid_request(f"The '{name}' field must be {label}.", field=name)
    return value
