"""OAuth 2.0 for the platforms that offer it (Mailchimp, HubSpot): authorize URL, code exchange, refresh.

Mailchimp tokens do not expire; HubSpot's last 30 minutes. Tokens come back as credentials to
store: `access_token`, `refresh_token` and `expires_at` (epoch seconds, so a stored value stays
meaningful). Inside a connector, HubSpot refreshes before expiry and once on an expired-token
401 (`before_request` / `on_unauthorized`); Mailchimp learns its data centre through the
metadata call on first use and hands it back through `on_credentials_change`. The client id and
secret come from settings (passed in, or the process settings) so that one fact lives in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from core.settings import Settings, get_settings


@dataclass(frozen=True)
class OAuthProvider:
    """Where a platform's OAuth endpoints are and which scopes we ask for."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()


PROVIDERS: dict[str, OAuthProvider] = {
    "mailchimp": OAuthProvider(
        authorize_url="https://login.mailchimp.com/oauth2/authorize",
        token_url="https://login.mailchimp.com/oauth2/token",
    ),
    "hubspot": OAuthProvider(
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",
        scopes=("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.lists.read"),
    ),
}


class OAuthNotConfigured(Exception):
    """The platform has no OAuth, or its client id is not set."""


def build_authorize_url(slug: str, state: str, redirect_uri: str, settings: Settings | None = None) -> str:
    """The URL to send a user to so they grant us access; `state` is echoed back for CSRF checking."""
    provider = PROVIDERS.get(slug)
    if provider is None:
        raise OAuthNotConfigured(f"{slug} does not support OAuth connections.")
    settings = settings or get_settings()
    client_id = getattr(settings, f"{slug}_client_id", None)
    if not client_id:
        raise OAuthNotConfigured(f"Set {slug.upper()}_CLIENT_ID to connect {slug} with OAuth.")
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state}
    if provider.scopes:
        params["scope"] = " ".join(provider.scopes)
    return f"{provider.authorize_url}?{urlencode(params)}"


class OAuthExchangeFailed(Exception):
    """The token endpoint refused or failed; the message never holds a secret.

    `status` is the token endpoint's HTTP status (None: it could not be reached). `retryable`
    tells "try again shortly" (unreachable, 429, 5xx) from "connect again" (the grant was refused).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


async def complete_oauth(
    slug: str,
    code: str,
    redirect_uri: str,
    settings: Settings | None = None,
    token_url: str | None = None,
) -> dict[str, str]:
    """Swap an authorization code for tokens; `token_url` overrides the endpoint for emulators."""
    provider = PROVIDERS.get(slug)
    if provider is None:
        raise OAuthNotConfigured(f"{slug} does not support OAuth connections.")
    settings = settings or get_settings()
    client_id = getattr(settings, f"{slug}_client_id", None)
    secret = getattr(settings, f"{slug}_client_secret", None)
    if not client_id or secret is None:
        raise OAuthNotConfigured(f"Set {slug.upper()}_CLIENT_ID and {slug.upper()}_CLIENT_SECRET to connect {slug} with OAuth.")
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": secret.get_secret_value(),
        "redirect_uri": redirect_uri,
        "code": code,
    }
    return await _token_request(slug, provider, form, token_url)


async def refresh_tokens(
    slug: str, refresh_token: str, settings: Settings | None = None, token_url: str | None = None
) -> dict[str, str]:
    """Trade a refresh token for a new access token (HubSpot access tokens expire after 30 minutes)."""
    provider = PROVIDERS.get(slug)
    if provider is None:
        raise OAuthNotConfigured(f"{slug} does not support OAuth connections.")
    settings = settings or get_settings()
    client_id = getattr(settings, f"{slug}_client_id", None)
    secret = getattr(settings, f"{slug}_client_secret", None)
    if not client_id or secret is None:
        raise OAuthNotConfigured(f"Set {slug.upper()}_CLIENT_ID and {slug.upper()}_CLIENT_SECRET to connect {slug} with OAuth.")
    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": secret.get_secret_value(),
        "refresh_token": refresh_token,
    }
    return await _token_request(slug, provider, form, token_url)


async def _token_request(slug: str, provider: OAuthProvider, form: dict[str, str], token_url: str | None) -> dict[str, str]:
    """POST a form to the token endpoint and keep only the token fields we store.

    A client of its own rather than the shared one: token calls are rare, and this one is never
    bound to an event loop that has since closed.
    """
    async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as client:
        try:
            response = await client.post(token_url or provider.token_url, data=form)
        except httpx.HTTPError:
            raise OAuthExchangeFailed(f"Could not reach {slug} to finish connecting; try again shortly.") from None
    status = response.status_code
    if status == 429 or status >= 500:
        raise OAuthExchangeFailed(f"{slug} could not finish the sign-in just now (HTTP {status}); try again shortly.", status=status)
    if status != 200:
        raise OAuthExchangeFailed(f"{slug} refused the authorization (HTTP {status}); start the connection again.", status=status)
    try:
        body = response.json()
        credentials = {"access_token": str(body["access_token"])}
    except (ValueError, KeyError, TypeError):
        raise OAuthExchangeFailed(
            f"{slug} answered the token request without an access token; start the connection again.", status=status
        ) from None
    if body.get("refresh_token"):
        credentials["refresh_token"] = str(body["refresh_token"])
    try:
        lifetime = float(body["expires_in"]) if body.get("expires_in") is not None else None
    except (TypeError, ValueError):
        lifetime = None
    if lifetime is not None:
        credentials["expires_at"] = str(int(time.time() + lifetime))  # epoch: still right when read back later
    return credentials
