"""mailfloss's integrations API (seed 001): platforms, connections, cleaning settings, keyword rules.

Credentials go in through connect (and reconnect) and never come out: every answer is built from
the core's views (`ConnectionView.public()` is seed 001's connection object), which hold none.
A client can only send a platform's own credential fields: OAuth material and base URLs are the
OAuth flow's and the operator's (LISTWARDEN_PLATFORM_BASE_URLS), never a caller's.
"""

from __future__ import annotations

from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.body import expect_type, read_json_object
from api.context import ApiContext
from api.endpoint import endpoint, path_id, resource
from api.errors import ApiError, invalid_request, not_found
from api.idempotency import read_key
from api.text import is_line
from core.apikeys import ApiKeyView
from core.checks import AGGRESSIVENESS, CHECKS
from core.connections import ConnectionView, UnknownPlatform
from core.connectors import platforms
from core.connectors.base import Connector
from core.oauth_links import TICKET_TTL, oauth_start_url

MAX_NAME = 200
MAX_KEYWORD = 80  # rules are kept case-folded in 255 characters, and folding can triple a string ("ﬃ" -> "ffi")
MAX_BULK = 1000
MAX_CREDENTIAL = 4096


def platform_class(api: ApiContext, slug: str) -> type[Connector]:
    """The connector class for a slug (sendinblue -> brevo); 404 for an unknown one."""
    try:
        return api.services.connections.platform(slug)
    except UnknownPlatform:
        raise not_found(f"Unknown integration type '{slug[:64]}'.") from None


def connectable_by_api(cls: type[Connector]) -> bool:
    return cls.auth != "oauth"


def has_oauth_app(api: ApiContext, cls: type[Connector]) -> bool:
    return cls.auth != "api_key" and bool(getattr(api.settings, f"{cls.slug}_client_id", None))


def describe_platform(cls: type[Connector], connections: list[ConnectionView], *, oauth: bool) -> dict[str, Any]:
    caps = cls.capabilities
    return {
        "type": cls.slug,
        "name": cls.display_name,
        "status": "connected" if any(c.active for c in connections) else "available",
        "auth": cls.auth,
        "connectable_via_api": connectable_by_api(cls),
        "oauth_available": oauth,
        "credential_fields": [{"name": f.name, "label": f.label, "help": f.help, "required": f.required,
                               "secret": f.secret, "choices": [value for value, _ in f.choices]}
                              for f in cls.credential_fields],
        "capabilities": {"can_unsubscribe": caps.can_unsubscribe, "can_delete": caps.can_delete,
                         "list_kinds": [str(k) for k in caps.list_kinds]},
        "connections": [c.public() for c in connections],
    }


async def find_connection(request: Request, key: ApiKeyView, api: ApiContext) -> tuple[type[Connector], ConnectionView]:
    """The connection named by the path, in the key's workspace and of the path's platform; 404 otherwise."""
    cls = platform_class(api, request.path_params["type"])
    connection_id = path_id(request, "id", "connection")
    connection = await api.services.connections.get(key.workspace_id, connection_id)
    if connection.platform != cls.slug:
        raise not_found(f"No {cls.display_name} connection {connection_id} in this workspace.")
    return cls, connection


@endpoint
async def list_integrations(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    mine = await api.services.connections.list(key.workspace_id)
    out = [describe_platform(cls, [c for c in mine if c.platform == slug], oauth=has_oauth_app(api, cls))
           for slug, cls in platforms().items()]
    return JSONResponse({"integrations": out})


@endpoint
async def get_integration(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    cls = platform_class(api, request.path_params["type"])
    connections = await api.services.connections.list(key.workspace_id, cls.slug)
    return JSONResponse(describe_platform(cls, connections, oauth=has_oauth_app(api, cls)))


def parse_credentials(cls: type[Connector], body: dict[str, Any]) -> dict[str, str]:
    """The platform's credential fields, as strings; the platform's own checks say which field is wrong."""
    credentials = body.get("credentials")
    if not isinstance(credentials, dict):
        raise invalid_request("The 'credentials' field is required and must be an object.", field="credentials")
    allowed = {f.name for f in cls.credential_fields}
    for name, value in credentials.items():
        if name not in allowed:
            raise invalid_request(f"Unknown credential field '{name[:64]}' for {cls.display_name}; "
                                  f"expected {', '.join(sorted(allowed))}.", field=f"credentials.{name[:64]}")
        if not isinstance(value, str) or len(value) > MAX_CREDENTIAL:
            raise invalid_request(f"Credential field '{name}' must be a string of at most {MAX_CREDENTIAL} characters.",
                                  field=f"credentials.{name}")
    return dict(cls.validate_credentials(credentials))  # InvalidConfiguration names the field (a 400)


def parse_name(body: dict[str, Any]) -> str | None:
    name = expect_type(body, "name", str, "a string")
    if name is None:
        return None
    if not is_line(name, MAX_NAME):
        raise invalid_request(f"The 'name' field must be 1 to {MAX_NAME} characters on one line, not all blank.",
                              field="name")
    return name.strip()


@endpoint
async def connect(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    cls = platform_class(api, request.path_params["type"])
    if not connectable_by_api(cls):
        url = oauth_start_url(api.settings, api.services.box, cls.slug, workspace_id=key.workspace_id, user_id=key.id)
        raise ApiError(422, "oauth_required", f"{cls.display_name} connects through OAuth only: open the oauth_url "
                                              "in a browser to sign in.", oauth_url=url)
    idempotency_key = read_key(request.headers.get("idempotency-key"))
    body = await read_json_object(request, allowed=("name", "credentials"))
    name = parse_name(body)
    credentials = parse_credentials(cls, body)

    async def create() -> tuple[int, dict[str, Any]]:
        services = api.services
        await services.credits.require(key.workspace_id, 1)  # seed 001: 402 when out of credits
        connection = await services.connections.create(key.workspace_id, cls.slug, credentials, name=name,
                                                       created_by=key.id, base_url=api.platform_base_url(cls.slug))
        return 201, connection.public()

    status, answer = await api.gate.run(api.services, f"connect:{key.workspace_id}:{cls.slug}", idempotency_key,
                                        {"name": name, "credentials": credentials}, create)
    return JSONResponse(answer, status_code=status)


@endpoint
async def oauth_link(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """A browser link that connects this platform to the key's workspace through OAuth (valid 30 minutes)."""
    cls = platform_class(api, request.path_params["type"])
    if cls.auth == "api_key":
        raise ApiError(422, "oauth_unsupported", f"{cls.display_name} connects with an API key only: "
                                                 f"POST /v1/integrations/{cls.slug}/connections.")
    if not has_oauth_app(api, cls):
        raise ApiError(422, "oauth_not_configured", f"{cls.display_name} sign-in is not set up on this instance "
                                                    f"(set {cls.slug.upper()}_CLIENT_ID and {cls.slug.upper()}_CLIENT_SECRET).")
    body = await optional_body(request, ("name",))
    url = oauth_start_url(api.settings, api.services.box, cls.slug, workspace_id=key.workspace_id, user_id=key.id,
                          name=parse_name(body))
    return JSONResponse({"url": url, "expires_in": int(TICKET_TTL.total_seconds())}, status_code=201)


@endpoint
async def get_connection(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    _, connection = await find_connection(request, key, api)
    return JSONResponse(connection.public())


PATCH_FIELDS = ("verify_first", "aggressiveness", "checks", "name", "auto_floss_enabled")


@endpoint
async def update_connection(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """A partial update; every field is checked before anything is written, so a bad one changes nothing."""
    _, connection = await find_connection(request, key, api)
    body = await read_json_object(request, allowed=PATCH_FIELDS)
    if not body:
        raise invalid_request(f"Send at least one of {', '.join(PATCH_FIELDS)}.")
    if "aggressiveness" in body and "checks" in body:
        raise invalid_request("'aggressiveness' and 'checks' are mutually exclusive; send one or the other.",
                              field="checks")
    name = parse_name(body)
    auto = expect_type(body, "auto_floss_enabled", bool, "true or false")
    verify_first = expect_type(body, "verify_first", bool, "true or false")
    level = expect_type(body, "aggressiveness", str, "one of " + ", ".join(AGGRESSIVENESS))
    if level is not None and level not in AGGRESSIVENESS:
        raise invalid_request(f"The 'aggressiveness' field must be one of {', '.join(AGGRESSIVENESS)}.",
                              field="aggressiveness")
    checks = body.get("checks")
    if "checks" in body and (not isinstance(checks, dict) or not checks or
                             any(g not in CHECKS or not isinstance(v, bool) for g, v in checks.items())):
        raise invalid_request(f"The 'checks' field must be an object of check names ({', '.join(CHECKS)}) "
                              "to true or false.", field="checks")
    connections = api.services.connections
    if verify_first is not None or level is not None or checks is not None:
        connection = await connections.update_settings(key.workspace_id, connection.id, verify_first=verify_first,
                                                       aggressiveness=level, checks=checks)
    if name is not None:
        connection = await connections.rename(key.workspace_id, connection.id, name)
    if auto is not None:
        connection = await connections.set_auto_floss(key.workspace_id, connection.id, auto)
    return JSONResponse(connection.public())


@endpoint
async def disconnect(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """Automatic cleaning stops; the record (and its sealed credentials, for reconnect) stays."""
    _, connection = await find_connection(request, key, api)
    return JSONResponse((await api.services.connections.disconnect(key.workspace_id, connection.id)).public())


async def optional_body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A JSON body where one is sent; an empty body (no Content-Type needed) is {}."""
    if request.headers.get("content-length") in (None, "0") and "transfer-encoding" not in request.headers:
        return {}
    return await read_json_object(request, allowed=allowed)


@endpoint
async def reconnect(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """Check the stored credentials (or new ones in `credentials`) live again, then mark the connection active."""
    cls, connection = await find_connection(request, key, api)
    body = await optional_body(request, ("credentials",))
    credentials = parse_credentials(cls, body) if "credentials" in body else None
    updated = await api.services.connections.reconnect(key.workspace_id, connection.id, credentials)
    return JSONResponse(updated.public())


def lists_payload(found: list[Any]) -> list[dict[str, Any]]:
    from core.storage.sql import iso

    return [{"id": pl.id, "name": pl.name, "kind": pl.kind, "subscriber_count": pl.subscriber_count,
             "synced_at": iso(pl.synced_at)} for pl in found]


@endpoint
async def connection_lists(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """The lists as of the last sync (connect, reconnect or Sync Now), with their counts."""
    _, connection = await find_connection(request, key, api)
    found = await api.services.connections.lists(key.workspace_id, connection.id)
    return JSONResponse({"lists": lists_payload(found)})


@endpoint
async def sync_now(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    """Sync Now: fresh lists and counts from the platform (409 while disconnected)."""
    _, connection = await find_connection(request, key, api)
    connections = api.services.connections
    found = await connections.sync(key.workspace_id, connection.id)
    refreshed = await connections.get(key.workspace_id, connection.id)
    return JSONResponse({"connection": refreshed.public(), "lists": lists_payload(found)})


# --- keyword rules -------------------------------------------------------------------------------
@endpoint
async def list_rules(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    _, connection = await find_connection(request, key, api)
    rules = await api.services.keywords.list(connection.id, request.path_params["kind"])
    return JSONResponse({"rules": [r.public() for r in rules]})


def parse_keywords(body: dict[str, Any]) -> list[str]:
    if ("keyword" in body) == ("keywords" in body):
        raise invalid_request("Send 'keyword' (one rule) or 'keywords' (bulk add), not both or neither.")
    field = "keyword" if "keyword" in body else "keywords"
    raw = [body["keyword"]] if field == "keyword" else body["keywords"]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_BULK:
        raise invalid_request(f"'keywords' must be an array of 1 to {MAX_BULK} strings.", field=field)
    out: list[str] = []
    for word in raw:
        if not isinstance(word, str) or not is_line(word, MAX_KEYWORD):
            raise invalid_request(f"Each keyword must be 1 to {MAX_KEYWORD} characters on one line, not all blank.",
                                  field=field)
        out.append(word.strip())
    return out


@endpoint
async def add_rules(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    _, connection = await find_connection(request, key, api)
    keywords = parse_keywords(await read_json_object(request, allowed=("keyword", "keywords")))
    added = await api.services.keywords.add(connection.id, request.path_params["kind"], keywords)
    return JSONResponse({"rules": [r.public() for r in added]}, status_code=201)


@endpoint
async def delete_rule(request: Request, key: ApiKeyView, api: ApiContext) -> Response:
    _, connection = await find_connection(request, key, api)
    rule_id = path_id(request, "rule_id", "keyword rule")
    if not await api.services.keywords.delete(connection.id, request.path_params["kind"], rule_id):
        raise not_found("No such keyword rule.")
    return Response(status_code=204)


class RuleKindConvertor(Convertor[str]):
    """Matches only "whitelist" or "blacklist", so /lists and /sync never reach the rule handlers."""

    regex = "whitelist|blacklist"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("rulekind", RuleKindConvertor())

BASE = "/integrations/{type}/connections/{id}"
KIND = "{kind:rulekind}"

routes = [
    resource("/integrations", get=list_integrations),
    resource("/integrations/{type}", get=get_integration),
    resource("/integrations/{type}/connections", post=connect),
    resource("/integrations/{type}/oauth", post=oauth_link),
    resource(BASE, get=get_connection, patch=update_connection, delete=disconnect),
    resource(BASE + "/reconnect", post=reconnect),
    resource(BASE + "/lists", get=connection_lists),
    resource(BASE + "/sync", post=sync_now),
    resource(BASE + "/" + KIND, get=list_rules, post=add_rules),
    resource(BASE + "/" + KIND + "/{rule_id}", delete=delete_rule),
]
