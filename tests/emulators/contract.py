"""Validate every request an emulator receives against the platform's official OpenAPI spec.

A mismatch is recorded and fails the test (see `ContractViolations.assert_clean`): the emulator is
a contract test of our client, not a mirror of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from openapi_core import OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPECS = Path(__file__).resolve().parents[3] / "shared" / "esp-specs"


@lru_cache(maxsize=None)
def load_spec(filename: str) -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / filename))


@dataclass
class ContractViolations:
    errors: list[str] = field(default_factory=list)
    checked: int = 0

    def assert_clean(self) -> None:
        assert not self.errors, "requests broke the official spec:\n" + "\n".join(self.errors)


class ContractMiddleware:
    """Buffers the request body, validates the request against the spec, then replays it to the app.

    `server_prefix` is stripped so the spec's own server path (e.g. "/v3") matches.
    """

    def __init__(self, app: ASGIApp, spec: OpenAPI, violations: ContractViolations, *, base_url: str) -> None:
        self.app = app
        self.spec = spec
        self.violations = violations
        self.base_url = base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)

        # Present the request as if it had been sent to the spec's server URL.
        spec_scope = dict(scope)
        host = self.base_url.split("://", 1)[1].split("/", 1)[0]
        spec_scope["scheme"] = self.base_url.split("://", 1)[0]
        spec_scope["server"] = (host, None)
        spec_scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [(b"host", host.encode())]
        prefix = "/" + self.base_url.split("://", 1)[1].partition("/")[2]
        spec_scope["path"] = prefix.rstrip("/") + scope["path"] if prefix != "/" else scope["path"]
        request = Request(spec_scope)
        self.violations.checked += 1
        try:
            errors = list(self.spec.iter_request_errors(StarletteOpenAPIRequest(request, body=body)))
        except Exception as exc:  # a spec the validator cannot handle is a finding too
            errors = [exc]
        for error in errors:
            detail = getattr(error, "__cause__", None) or error
            self.violations.errors.append(f"{scope['method']} {scope['path']}: {error} ({detail})")

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
