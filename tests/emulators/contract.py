"""Validate every request an emulator receives against the platform's official OpenAPI spec.

A mismatch is recorded and fails the test (see `ContractViolations.assert_clean`): the emulator is
a contract test of our client, not a mirror of it.

Loading, for the specs as they are published:
- `load_document(filename)`: the file as a dict, YAML or JSON, with the fixes esp-specs/SOURCES.md
  describes for YAML (a TAB, PyYAML's timestamp resolver, integer response codes).
- `reduce_document(document, served)`: only the paths an emulator serves plus everything they
  `$ref` (Klaviyo's 3 MB spec builds in a fraction of a second once reduced).
- `load_spec(filename, validate=..., served=...)`: the OpenAPI object, cached per process.
  `validate=False` skips openapi-spec-validator for documents it rejects over parts we never use
  (Brevo's `senders` schema, a Klaviyo `default` matching both branches of a `oneOf`); requests
  are still validated against them.
- `SpecRouter`: an API published as several files (SendGrid) routes each request to the spec
  whose path templates match it; a path in none of them is a violation too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.starlette.requests import StarletteOpenAPIRequest
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPECS = Path(__file__).resolve().parents[3] / "shared" / "esp-specs"


# --- loading ------------------------------------------------------------------------------------
def _yaml_loader() -> type:
    """A safe loader without the timestamp resolver (an example date in brevo.yaml is out of range)."""
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in base.yaml_implicit_resolvers.items()
    }
    return Loader


def _keys_to_str(node: Any) -> Any:
    """Unquoted response codes (`200:`) come back as ints; OpenAPI wants strings."""
    if isinstance(node, dict):
        return {str(k): _keys_to_str(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_keys_to_str(v) for v in node]
    return node


@cache
def load_document(filename: str) -> dict:
    """A spec file as a dict (cached: treat it as read-only)."""
    path = SPECS / filename
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        text = text.replace("\t", "  ")  # one TAB makes brevo.yaml invalid YAML
        return _keys_to_str(yaml.load(text, Loader=_yaml_loader()))
    return json.loads(text)


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def reduce_document(document: Mapping[str, Any], served: Mapping[str, Sequence[str]]) -> dict:
    """The spec cut down to `served` ({path template: [methods]}) and the transitive closure of their `$ref`s."""
    paths = {p: {m: document["paths"][p][m] for m in methods} for p, methods in served.items()}
    for template in served:  # path-level parameters apply to every method
        if "parameters" in document["paths"][template]:
            paths[template]["parameters"] = document["paths"][template]["parameters"]
    components: dict[str, dict] = {}
    todo: set[str] = set()
    _refs(paths, todo)
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/")
        node = document["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        _refs(node, todo)
    if "securitySchemes" in document.get("components", {}):
        components["securitySchemes"] = document["components"]["securitySchemes"]
    reduced = {k: document[k] for k in ("openapi", "info", "servers", "security") if k in document}
    reduced["paths"] = paths
    reduced["components"] = components
    return reduced


def _served_key(served: Mapping[str, Sequence[str]] | None) -> tuple | None:
    return None if served is None else tuple(sorted((p, tuple(sorted(ms))) for p, ms in served.items()))


_specs: dict[tuple, OpenAPI] = {}


def load_spec(filename: str, *, validate: bool = True, served: Mapping[str, Sequence[str]] | None = None) -> OpenAPI:
    """The OpenAPI object for a spec file, built once per process for each (validate, served)."""
    key = (filename, validate, _served_key(served))
    spec = _specs.get(key)
    if spec is None:
        if validate and served is None and not filename.endswith((".yaml", ".yml")):
            spec = OpenAPI.from_file_path(str(SPECS / filename))
        else:
            document = load_document(filename)
            if served is not None:
                document = reduce_document(document, served)
            config = None if validate else Config(spec_validator_cls=None)
            spec = OpenAPI.from_dict(document, config=config) if config else OpenAPI.from_dict(document)
        _specs[key] = spec
    return spec


# --- checking -----------------------------------------------------------------------------------
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


def path_pattern(template: str) -> re.Pattern[str]:
    """A regex for an OpenAPI path template: each `{param}` matches one path segment."""
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


class SpecRouter:
    """Validates each request against the one spec whose path templates match it.

    For an API published as several spec files (SendGrid: contacts, lists, segments,
    suppressions). Literal templates are tried before templated ones, so `/contacts/count` is not
    taken for `/contacts/{id}`. Paths starting with one of `passthrough` (a download host that is
    not the API) go straight to the app; any other path no spec has is a violation.
    """

    def __init__(self, app: ASGIApp, filenames: Iterable[str], violations: ContractViolations, *, base_url: str,
                 passthrough: Sequence[str] = (), validate: bool = True) -> None:
        self.app = app
        self.violations = violations
        self.passthrough = tuple(passthrough)
        self.platform = base_url
        self.routes: list[tuple[re.Pattern[str], ContractMiddleware]] = []
        for filename in filenames:
            checker = ContractMiddleware(app, load_spec(filename, validate=validate), violations, base_url=base_url)
            for template in load_document(filename)["paths"]:
                self.routes.append((path_pattern(template), checker))
        self.routes.sort(key=lambda route: "[^/]+" in route[0].pattern)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.passthrough and scope["path"].startswith(self.passthrough)):
            await self.app(scope, receive, send)
            return
        for pattern, checker in self.routes:
            if pattern.match(scope["path"]):
                await checker(scope, receive, send)
                return
        self.violations.errors.append(f"{scope['method']} {scope['path']}: no spec of {self.platform} has this path")
        await self.app(scope, receive, send)
