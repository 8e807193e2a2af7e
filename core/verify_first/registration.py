"""The platform's side of verify-first: our webhook registered while it is on, removed when it is not.

Where a platform's API allows it (Mailchimp, MailerLite, ActiveCampaign, Brevo, Kit, Klaviyo),
the webhook is registered as soon as a connection has verify-first on, and removed when it is
turned off or the connection is disconnected: `sync_once()` does both for every connection, and
runs every LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS, so whichever transport flipped the setting,
the platform follows. Transports that want it at once call `turn_on` / `turn_off` / `disconnect`.

Elsewhere (HubSpot: webhooks belong to an app) `setup()` gives the URL to paste and the
platform's own steps; platforms without a new-subscriber webhook (SendGrid), and Klaviyo
accounts without system webhooks, are polled instead (polling.py).

The secret a delivery must carry is stored before the platform is asked to register the
webhook, because Mailchimp checks the URL (a GET with our token) while it registers it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from core.connections import ConnectionView
from core.connectors import get_platform
from core.connectors.base import Connector, WebhookSecrets
from core.connectors.errors import ConnectorError, InvalidCredentials, UnsupportedAction
from core.connectors.webhook_auth import new_secret, with_url_token
from core.settings import Settings
from core.storage.sql import utcnow

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE = 300.0  # seconds before a failed registration is tried again
RETRY_AFTER_UNSUPPORTED = 3600.0  # an account without webhooks (Klaviyo) is polled; asked again hourly


def webhook_url(settings: Settings, platform: str, connection_id: str) -> str:
    """The URL a platform posts new subscribers to (without any token)."""
    return f"{settings.public_url.rstrip('/')}/webhooks/{quote(platform)}/{quote(connection_id)}"


@dataclass(frozen=True)
class WebhookSetup:
    """What a transport shows for a connection's verify-first setup."""

    url: str  # to paste (with ?token= where the platform signs nothing); "" when polled
    automatic: bool  # Listwarden registers (and removes) the webhook itself
    registered: bool  # it is registered now
    polled: bool  # no webhook: Listwarden asks the platform for new contacts every LISTWARDEN_POLL_SECONDS
    needs_secret: bool  # the user must give Listwarden the platform's signing secret (HubSpot's app secret)
    steps: str  # the platform's own steps for pasting the URL


class Registrar:
    def __init__(self, services, settings: Settings, on_change: Callable[[str], None] | None = None) -> None:
        self.services = services
        self.settings = settings
        self.on_change = on_change or (lambda connection_id: None)
        self._not_before: dict[str, float] = {}  # connection id -> monotonic time of the next attempt
        self._unsupported: set[str] = set()  # registration refused for good (Klaviyo without webhooks)

    # --- what each connection needs --------------------------------------------------------------
    def polled(self, view: ConnectionView) -> bool:
        caps = get_platform(view.platform).capabilities
        if not caps.polling or view.webhook_id:
            return False
        return caps.webhooks == "none" or view.id in self._unsupported

    async def setup(self, view: ConnectionView) -> WebhookSetup:
        cls = get_platform(view.platform)
        caps = cls.capabilities
        polled = self.polled(view)
        secrets = await self.services.connections.webhook_secrets(view.id)
        url = "" if caps.webhooks == "none" else webhook_url(self.settings, cls.slug, view.id)
        if url and caps.webhooks == "token" and secrets.url_token:
            url = with_url_token(url, secrets.url_token)
        return WebhookSetup(url=url, automatic=caps.webhook_registration, registered=bool(view.webhook_id),
                            polled=polled, needs_secret=caps.webhooks == "signed" and not caps.webhook_registration,
                            steps=cls.webhook_steps)

    # --- explicit moves for transports -----------------------------------------------------------
    async def turn_on(self, workspace_id: str, connection_id: str) -> ConnectionView:
        view = await self.services.connections.update_settings(workspace_id, connection_id, verify_first=True)
        self._not_before.pop(connection_id, None)
        await self.ensure(view)
        return await self.services.connections.get(workspace_id, connection_id)

    async def turn_off(self, workspace_id: str, connection_id: str) -> ConnectionView:
        view = await self.services.connections.update_settings(workspace_id, connection_id, verify_first=False)
        await self.remove(view)
        return await self.services.connections.get(workspace_id, connection_id)

    async def disconnect(self, workspace_id: str, connection_id: str) -> ConnectionView:
        """Remove our webhook from the platform while the credentials still work, then disconnect."""
        view = await self.services.connections.get(workspace_id, connection_id)
        await self.remove(view)
        return await self.services.connections.disconnect(workspace_id, connection_id)

    async def set_signing_secret(self, workspace_id: str, connection_id: str, secret: str) -> None:
        """The platform's signing secret, for webhooks set up by hand (HubSpot: the app's client secret)."""
        view = await self.services.connections.get(workspace_id, connection_id)
        secret = secret.strip()
        if not secret:
            raise ValueError("The signing secret is empty.")
        current = await self.services.connections.webhook_secrets(view.id)
        await self.services.connections.set_webhook(view.id, WebhookSecrets(url_token=current.url_token, signing_secret=secret),
                                                    view.webhook_id)
        self.on_change(view.id)

    # --- keeping the platforms in step ------------------------------------------------------------
    async def sync_once(self) -> None:
        connections = self.services.connections
        for view in await connections.verify_first_connections():
            try:
                await self.ensure(view)
            except Exception:
                log.exception("verify-first set-up of connection %s failed", view.id)
        from core.storage.models import Connection

        for connection_id in await Connection.filter(webhook_id__isnull=False).values_list("id", flat=True):
            view = await connections.find(connection_id)
            if view is not None and not (view.active and view.settings.verify_first):
                try:
                    await self.remove(view)
                except Exception:
                    log.exception("removing the webhook of connection %s failed", view.id)

    async def ensure(self, view: ConnectionView) -> None:
        """Registered where the platform allows it; a polling mark set where it is polled."""
        caps = get_platform(view.platform).capabilities
        due = time.monotonic() >= self._not_before.get(view.id, 0.0)
        if caps.webhook_registration and not view.webhook_id and due:
            await self.register(view)
            view = await self.services.connections.find(view.id) or view
        if self.polled(view) and view.poll_cursor is None:
            await self.services.connections.set_poll_cursor(view.id, utcnow())  # new subscribers from now on

    async def register(self, view: ConnectionView) -> bool:
        connections = self.services.connections
        current = await connections.webhook_secrets(view.id)
        secret = current.url_token or current.signing_secret or new_secret()
        await connections.set_webhook(view.id, WebhookSecrets(url_token=secret, signing_secret=secret), None)
        self.on_change(view.id)
        try:
            connector = await connections.connector(view.workspace_id, view.id)
            registration = await connector.register_webhook(webhook_url(self.settings, view.platform, view.id), None,
                                                            secret=secret)
        except UnsupportedAction as err:
            log.info("connection %s: %s", view.id, err)
            self._unsupported.add(view.id)
            self._not_before[view.id] = time.monotonic() + RETRY_AFTER_UNSUPPORTED
            return False
        except ConnectorError as err:
            log.warning("connection %s: could not register the verify-first webhook: %s", view.id, err)
            self._not_before[view.id] = time.monotonic() + RETRY_AFTER_FAILURE
            return False
        await connections.set_webhook(view.id, registration.secrets, ",".join(registration.ids))
        self._unsupported.discard(view.id)
        self.on_change(view.id)
        log.info("connection %s: verify-first webhook registered with %s", view.id, view.platform)
        return True

    async def remove(self, view: ConnectionView) -> None:
        if not view.webhook_id:
            return
        try:
            connector: Connector = await self.services.connections.connector(view.workspace_id, view.id, allow_disconnected=True)
            for hook_id in filter(None, view.webhook_id.split(",")):
                await connector.unregister_webhook(hook_id)
        except (InvalidCredentials, UnsupportedAction) as err:
            # nothing more we can do from here; the platform's deliveries get 410 from now on
            log.warning("connection %s: webhook left on the platform (%s); remove it there", view.id, err)
        await self.services.connections.set_webhook(view.id, None, None)
        self.on_change(view.id)
        log.info("connection %s: verify-first webhook removed from %s", view.id, view.platform)
