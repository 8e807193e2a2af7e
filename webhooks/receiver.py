"""POST /webhooks/{platform}/{connection_id}: authenticate, parse, store, answer. Nothing else.

In order, each step refusing with its own status:
- a body over LISTWARDEN_WEBHOOK_MAX_BODY: 413 (read no further than the limit);
- an unknown platform or connection, or one of another platform: 404; a disconnected one: 410;
- the connector's `authenticate_webhook` (signature, token, replay window; constant-time): 401;
- the connector's `parse_webhook`: 400 for a body it cannot read;
- the delivery written to the inbox (`services.deliveries.accept`), deduplicated by the event
  ids or the body's hash, before the 2xx goes back in the platform's own shape
  (`connector.webhook_response`). A delivery that announces no new subscriber (another event
  type, Mailchimp's GET check) is answered the same way and not stored.

The work (verification, cleanup) happens in the background (core/verify_first); a 2xx means it
will be done even if this process dies right after answering. A connection's status and
secrets are reused for LISTWARDEN_WEBHOOK_CACHE_SECONDS, so a flood of deliveries costs one
INSERT each.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.connections import ConnectionView
from core.connectors import get_platform
from core.connectors.base import Connector, WebhookRequest, WebhookSecrets
from core.connectors.errors import UnsupportedAction, WebhookMalformed, WebhookRejected
from core.settings import Settings
from core.storage.sql import utcnow
from core.verify_first import VerifyFirst
from core.verify_first.inbox import Inbox
from core.verify_first.requests import dedupe_key

log = logging.getLogger(__name__)
CACHE_ENTRIES = 10_000


class BodyTooLarge(Exception):
    pass


def refusal(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


@dataclass(frozen=True)
class Target:
    """What a receiver needs of a connection: looked up once per cache period."""

    view: ConnectionView | None
    secrets: WebhookSecrets
    connector: Connector | None
    broken: bool = False  # its stored credentials or secrets cannot be used (a changed secret key): 503


class Receiver:
    def __init__(self, services, settings: Settings, verify_first: VerifyFirst) -> None:
        self.services = services
        self.settings = settings
        self.verify_first = verify_first
        self.max_body = settings.webhook_max_body
        public = urlsplit(settings.public_url)
        self._public = (public.scheme or "http", public.netloc, public.path.rstrip("/"))
        self._targets: OrderedDict[str, tuple[float, Target]] = OrderedDict()
        self.inbox = Inbox(services.deliveries)
        verify_first.listeners.append(self.forget)

    def forget(self, connection_id: str) -> None:
        self._targets.pop(connection_id, None)

    async def target(self, connection_id: str) -> Target:
        now = time.monotonic()
        hit = self._targets.get(connection_id)
        if hit is not None and now - hit[0] < self.settings.webhook_cache_seconds:
            return hit[1]
        connections = self.services.connections
        view = await connections.find(connection_id)
        target = Target(None, WebhookSecrets(), None)
        if view is not None:
            try:
                connector = await connections.connector(view.workspace_id, view.id) if view.active else None
                target = Target(view, await connections.webhook_secrets(view.id), connector)
            except Exception:
                log.exception("connection %s cannot be used to check its webhooks", connection_id)
                target = Target(view, WebhookSecrets(), None, broken=True)
        self._targets[connection_id] = (now, target)
        self._targets.move_to_end(connection_id)
        while len(self._targets) > CACHE_ENTRIES:
            self._targets.popitem(last=False)
        return target

    async def read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def public_url(self, request: Request) -> str:
        """The URL as the platform called it (HubSpot signs it): our public base, the path and query as sent."""
        scheme, netloc, prefix = self._public
        query = request.scope.get("query_string", b"").decode("latin-1")
        return urlunsplit((scheme, netloc, prefix + request.scope["path"], query, ""))

    async def endpoint(self, request: Request) -> Response:
        try:
            body = await self.read_body(request)
        except BodyTooLarge:
            return refusal(413, "too_large", f"A webhook body may be at most {self.max_body:,} bytes.")
        try:
            cls = get_platform(request.path_params["platform"])
        except KeyError:
            return refusal(404, "unknown_platform", "Listwarden has no such platform.")
        target = await self.target(request.path_params["connection_id"])
        view = target.view
        if view is None or view.platform != cls.slug:
            return refusal(404, "unknown_connection", "No such connection.")
        if target.broken:
            return refusal(503, "unavailable", "This connection cannot be checked right now; send it again later.")
        if not view.active or target.connector is None:
            return refusal(410, "disconnected", "This connection is disconnected; remove the webhook from the platform.")
        connector = target.connector
        raw_query = request.scope.get("query_string", b"")
        hook = WebhookRequest(method=request.method, url=self.public_url(request),
                              headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},
                              query=dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)) if raw_query else {},
                              body=body, received_at=utcnow())
        try:
            connector.authenticate_webhook(hook, target.secrets)
            events = connector.parse_webhook(hook)
        except WebhookRejected as err:
            return refusal(401, "unauthorized", str(err))
        except WebhookMalformed as err:
            return refusal(400, "malformed", str(err))
        except UnsupportedAction as err:
            return refusal(404, "no_webhooks", str(err))
        except Exception:  # a body the connector chokes on is still the sender's bad input, never our 500
            log.exception("%s could not read a webhook delivery", cls.slug)
            return refusal(400, "malformed", f"{cls.display_name} webhook body could not be read.")
        if events:
            try:
                await self.inbox.accept(connection_id=view.id, platform=cls.slug, dedupe_key=dedupe_key(events, body),
                                        body=body, method=request.method, url=hook.url, headers=hook.headers, query=hook.query)
            except Exception:
                log.exception("a %s delivery could not be stored", cls.slug)
                return refusal(503, "unavailable", "The delivery could not be stored; send it again.")
            self.verify_first.wake()
        status, content, media_type = connector.webhook_response(hook)
        return Response(content, status_code=status, media_type=media_type)
