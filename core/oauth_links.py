"""Links that start a platform OAuth connect (Mailchimp, HubSpot), for one workspace, that nobody can forge.

    url = oauth_start_url(settings, services.box, "hubspot", workspace_id="T1", user_id="U1", name="CRM")
    ticket = read_ticket(services.box, request.query_params["ticket"], "hubspot")   # None: forged, stale or another platform's

The browser that opens the link carries no proof of who it is, so the link itself says which
workspace the new connection belongs to, sealed with the instance's secret key (Fernet:
encrypted and authenticated) and valid for `TICKET_TTL`. A link for a workspace can only come
from someone that workspace trusts (Slack, a holder of its API key); nobody can type one up for
another workspace. `GET /oauth/{platform}/start?ticket=...` (served by the REST API) then issues
the single-use OAuth `state` (core/oauth_states.py) and redirects to the platform.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from core.settings import Settings
from core.storage.crypto import SecretBox, SecretKeyError

TICKET_TTL = timedelta(minutes=30)
PURPOSE = "oauth-start"


@dataclass(frozen=True)
class StartTicket:
    platform: str
    workspace_id: str
    user_id: str | None
    name: str | None  # the connection's name, if one was chosen before signing in


def make_ticket(box: SecretBox, platform: str, *, workspace_id: str, user_id: str | None = None,
                name: str | None = None, ttl: timedelta = TICKET_TTL) -> str:
    return box.seal({"purpose": PURPOSE, "platform": platform, "workspace_id": workspace_id, "user_id": user_id,
                     "name": name, "expires": int(time.time() + ttl.total_seconds())})


def read_ticket(box: SecretBox, ticket: str, platform: str) -> StartTicket | None:
    """The ticket's contents if it is genuine, unexpired and for this platform; None otherwise."""
    if not ticket or len(ticket) > 4096:
        return None
    try:
        data = box.open(ticket)
    except (SecretKeyError, ValueError, TypeError):  # forged, corrupted, or sealed with a key no longer held
        return None
    if (not isinstance(data, dict) or data.get("purpose") != PURPOSE or data.get("platform") != platform
            or not isinstance(data.get("workspace_id"), str) or not isinstance(data.get("expires"), int)
            or data["expires"] < time.time()):
        return None
    return StartTicket(platform, data["workspace_id"], data.get("user_id"), data.get("name"))


def oauth_start_url(settings: Settings, box: SecretBox, platform: str, *, workspace_id: str,
                    user_id: str | None = None, name: str | None = None) -> str:
    """`{LISTWARDEN_PUBLIC_URL}/oauth/{platform}/start?ticket=...`: open it in a browser to connect."""
    ticket = make_ticket(box, platform, workspace_id=workspace_id, user_id=user_id, name=name)
    return f"{settings.public_url.rstrip('/')}/oauth/{platform}/start?{urlencode({'ticket': ticket})}"
