"""OAuth 2.0 authorize URLs for the platforms that offer OAuth (Mailchimp, HubSpot).

Authorize URL, code exchange and refresh are implemented (Mailchimp tokens do
not expire; HubSpot's last 30 minutes).  Mailchimp's metadata call (data
centre) and refreshing automatically before expiry inside a connector are still to do.  The client id comes
from settings so that one fact lives in one place.
"""

from __future__ import annotations

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
    """The platform refused the authorization code; the message never holds a secret."""


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
    """POST a form to the token endpoint and keep only the token fields we store."""
    async with httpx.AsyncClient(timeout=15.0) as client:
        try:
            response = await client.post(token_url or provider.token_url, data=form)
        except httpx.HTTPError:
            raise OAuthExchangeFailed(f"Could not reach {slug} to finish connecting; try again shortly.") from None
    if response.status_code != 200:
        raise OAuthExchangeFailed(f"{slug} refused the authorization (HTTP {response.status_code}); start the connection again.")
    try:
        body = response.json()
        credentials = {"access_token": str(body["access_token"])}
    except (ValueError, KeyError, TypeError):
        raise OAuthExchangeFailed(f"{slug} answered the token request without an access token; start the connection again.") from None
    if body.get("refresh_token"):
        credentials["refresh_token"] = body["refresh_token"]
    if body.get("expires_in") is not None:
        credentials["expires_in"] = str(body["expires_in"])
    return credentials
