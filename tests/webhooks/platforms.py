"""Each platform as verify-first meets it: connect it, sign someone up, and the delivery it would send.

Deliveries are built the way each platform builds them, with the emulators' own helpers where
they have one (Mailchimp's outbox, HubSpot's and Klaviyo's signatures, Brevo's and Kit's
deliveries) and from the platform's documented format otherwise (MailerLite, ActiveCampaign),
signed or tokened with the secret the registration left in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.emulators import (
    activecampaign,
    brevo,
    convertkit,
    hubspot,
    klaviyo,
    mailchimp,
    mailerlite,
    sendgrid,
)
from tests.emulators.base import Emulator


@dataclass
class Hook:
    """One HTTP delivery, as a platform would send it."""

    method: str
    path: str  # with the query
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def with_query(path_or_url: str, **changes: str) -> str:
    parts = urlsplit(path_or_url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Platform:
    slug: str
    module = None
    members = 0
    can_delete = True
    arbitrary_emails = True  # False: only the emulator's own member{n}@example.com exist (MailerLite)
    has_window = True  # deliveries carry a time that a replay outside the window fails

    def __init__(self, app, emu: Emulator, emu_url: str) -> None:
        self.app = app
        self.emu = emu
        self.emu_url = emu_url
        self.cnx = None

    @property
    def services(self):
        return self.app.services

    async def connect(self, workspace: str, *, verify_first: bool = True):
        self.cnx = await self.services.connections.create(workspace, self.slug, self.emu.credentials(self.emu_url),
                                                          base_url=self.emu_url, name=f"{self.slug} test")
        if verify_first:
            await self.app.verify_first.registrar.turn_on(workspace, self.cnx.id)
        await self.after_connect(workspace)
        self.cnx = await self.services.connections.get(workspace, self.cnx.id)
        return self.cnx

    async def after_connect(self, workspace: str) -> None:
        pass

    async def secrets(self):
        return await self.services.connections.webhook_secrets(self.cnx.id)

    @property
    def path(self) -> str:
        return f"/webhooks/{self.slug}/{self.cnx.id}"

    def subscribe(self, email: str) -> str:
        return self.emu.add_member(self.emu.list_id, email)

    async def delivery(self, email: str, contact_id: str, *, stale: bool = False) -> Hook:
        raise NotImplementedError

    async def forged(self, hook: Hook) -> Hook:
        """The same delivery with a wrong signature or token."""
        raise NotImplementedError

    async def resign(self, hook: Hook, body: bytes) -> Hook:
        """A genuine delivery with another body, signed as the platform would sign it (for malformed bodies)."""
        return Hook(hook.method, hook.path, hook.headers, body)

    def unsubscribed(self, email: str) -> bool:
        return self.emu.is_unsubscribed(email)

    def deleted(self, email: str) -> bool:
        return self.emu.is_deleted(email)


class Mailchimp(Platform):
    slug, module = "mailchimp", mailchimp


    async def delivery(self, email, contact_id, *, stale=False) -> Hook:
        [hook] = [h for h in self.emu.state.webhooks.values() if h["list_id"] == self.emu.list_id]  # one per audience
        if stale:
            body = mailchimp.subscribe_form(email, self.emu.list_id, fired_at=datetime.now(UTC) - timedelta(hours=2))
        else:
            url, body = [(u, b) for u, b in self.emu.state.outbox if f"={email}&".encode() in b.replace(b"%40", b"@")][-1]
            assert url == hook["url"]
        return Hook("POST", path_of(hook["url"]), {"content-type": "application/x-www-form-urlencoded",
                                                    "user-agent": "MailChimp"}, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, with_query(hook.path, token="not-the-token"), hook.headers, hook.body)


class HubSpot(Platform):
    slug, module = "hubspot", hubspot
    event_ids = itertools.count(int(time.time()) % 10**6 * 1000)

    async def after_connect(self, workspace):
        await self.app.verify_first.registrar.set_signing_secret(workspace, self.cnx.id, hubspot.CLIENT_SECRET)

    async def delivery(self, email, contact_id, *, stale=False, secret: str = hubspot.CLIENT_SECRET) -> Hook:
        body = json.dumps(hubspot.creation_events([int(contact_id)], start_event=next(self.event_ids))).encode()
        stamp = int((time.time() - (600 if stale else 0)) * 1000)
        headers = hubspot.webhook_headers(self.app.url + self.path, body, secret=secret, timestamp_ms=stamp)
        return Hook("POST", self.path, headers, body)

    async def forged(self, hook: Hook) -> Hook:
        headers = hubspot.webhook_headers(self.app.url + self.path, hook.body, secret="not-the-app-secret")
        return Hook(hook.method, hook.path, headers, hook.body)

    async def resign(self, hook: Hook, body: bytes) -> Hook:
        return Hook(hook.method, hook.path, hubspot.webhook_headers(self.app.url + self.path, body), body)


class MailerLite(Platform):
    slug, module = "mailerlite", mailerlite
    members = 40
    arbitrary_emails = False

    def subscribe(self, email: str) -> str:
        local = email.partition("@")[0]
        assert local.startswith("member") and email.endswith("@example.com"), "MailerLite's emulator knows only its members"
        return str(mailerlite.BASE_ID + int(local.removeprefix("member")))

    async def delivery(self, email, contact_id, *, stale=False, secret: str | None = None) -> Hook:
        [hook] = self.emu.state.webhooks.values()
        created = datetime.now(UTC) - timedelta(hours=2 if stale else 0)
        body = json.dumps({"event": "subscriber.created", "id": contact_id, "email": email, "status": "active",
                           "source": "api", "created_at": created.strftime("%Y-%m-%d %H:%M:%S")}).encode()
        key = (secret or hook["secret"]).encode()
        return Hook("POST", self.path, {"content-type": "application/json",
                                        "signature": hmac.new(key, body, hashlib.sha256).hexdigest()}, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, hook.path, {**hook.headers, "signature": "0" * 64}, hook.body)

    async def resign(self, hook: Hook, body: bytes) -> Hook:
        [registered] = self.emu.state.webhooks.values()
        signature = hmac.new(registered["secret"].encode(), body, hashlib.sha256).hexdigest()
        return Hook(hook.method, hook.path, {**hook.headers, "signature": signature}, body)


class ActiveCampaign(Platform):
    slug, module = "activecampaign", activecampaign

    async def delivery(self, email, contact_id, *, stale=False) -> Hook:
        [hook] = self.emu.state.webhooks.values()
        sent = datetime.now(UTC).astimezone() - timedelta(hours=1 if stale else 0)
        body = urlencode([("type", "subscribe"), ("date_time", sent.isoformat(timespec="seconds")),
                          ("initiated_from", "public"), ("initiated_by", "public"), ("list", self.emu.list_id),
                          ("contact[id]", contact_id), ("contact[email]", email), ("contact[first_name]", ""),
                          ("contact[ip]", "10.0.0.1")]).encode()
        return Hook("POST", path_of(hook["url"]), {"content-type": "application/x-www-form-urlencoded"}, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, with_query(hook.path, token="not-the-token"), hook.headers, hook.body)


class Brevo(Platform):
    slug, module = "brevo", brevo

    async def delivery(self, email, contact_id, *, stale=False) -> Hook:
        at = time.time() - (13 * 3600 if stale else 0)
        headers, body = brevo.delivery(self.emu.state, email, int(self.emu.list_id), at=at)
        return Hook("POST", self.path, headers, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, hook.path, {**hook.headers, "authorization": "Bearer not-the-token"}, hook.body)


class Kit(Platform):
    slug, module = "convertkit", convertkit
    can_delete = False
    has_window = False  # Kit sends no event time: a replay is only ever a duplicate

    async def delivery(self, email, contact_id, *, stale=False) -> Hook:
        query, body = convertkit.delivery(self.emu.state, email)
        return Hook("POST", f"{self.path}?{urlencode(query)}", {"content-type": "application/json"}, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, with_query(hook.path, token="not-the-token"), hook.headers, hook.body)


class Klaviyo(Platform):
    slug, module = "klaviyo", klaviyo

    async def connect(self, workspace: str, *, verify_first: bool = True):
        """Klaviyo takes only https endpoints, as a production public URL is; the loopback app is plain http."""
        registrar = self.app.verify_first.registrar
        plain = registrar.settings
        registrar.settings = plain.model_copy(update={"public_url": plain.public_url.replace("http://", "https://")})
        try:
            return await super().connect(workspace, verify_first=verify_first)
        finally:
            registrar.settings = plain

    async def delivery(self, email, contact_id, *, stale=False, secret: str | None = None) -> Hook:
        [hook] = self.emu.state.webhooks.values()
        secret = secret or (await self.secrets()).signing_secret
        event = klaviyo.subscribed_event(contact_id, event_id=uuid.uuid4().hex[:12])
        sent = datetime.now(UTC) - timedelta(minutes=10 if stale else 0)
        headers, body = klaviyo.webhook_delivery(hook["id"], secret, [event], sent=sent)
        return Hook("POST", self.path, headers, body)

    async def forged(self, hook: Hook) -> Hook:
        return Hook(hook.method, hook.path, {**hook.headers, "klaviyo-signature": "0" * 64}, hook.body)

    def unsubscribed(self, email: str) -> bool:
        self.emu.state.settle()  # Klaviyo's jobs finish later; the emulator applies them on the next request
        return self.emu.is_unsubscribed(email)

    def deleted(self, email: str) -> bool:
        self.emu.state.settle()
        return self.emu.is_deleted(email)

    async def resign(self, hook: Hook, body: bytes) -> Hook:
        secret = (await self.secrets()).signing_secret
        stamp = hook.headers["klaviyo-timestamp"]
        signature = hmac.new(secret.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
        return Hook(hook.method, hook.path, {**hook.headers, "klaviyo-signature": signature}, body)


class SendGrid(Platform):
    slug, module = "sendgrid", sendgrid
    has_window = False

    def subscribe(self, email: str) -> str:
        return self.emu.add_member(self.emu.list_id, email, created_at=datetime.now(UTC))

    async def poll(self) -> int:
        view = await self.services.connections.find(self.cnx.id)
        return await self.app.verify_first.poller.poll(view, force=True)


WEBHOOK_PLATFORMS = [Mailchimp, HubSpot, MailerLite, ActiveCampaign, Brevo, Kit, Klaviyo]
ALL_PLATFORMS = [*WEBHOOK_PLATFORMS, SendGrid]
