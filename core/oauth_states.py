"""The `state` of a platform OAuth round trip (Mailchimp, HubSpot connect): issued, then used once.

    state = await services.oauth_states.issue("hubspot", workspace_id="T1", user_id="U1", data={"name": "CRM"})
    found = await services.oauth_states.consume(request.query_params["state"])  # None: expired or reused
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from core.storage.models import PlatformOAuthState
from core.storage.sql import utcnow

STATE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class OAuthState:
    state: str
    platform: str
    workspace_id: str
    user_id: str | None
    data: Mapping[str, Any] = field(default_factory=dict)


class PlatformOAuthStates:
    async def issue(self, platform: str, *, workspace_id: str, user_id: str | None = None,
                    data: Mapping[str, Any] | None = None, ttl: timedelta = STATE_TTL) -> str:
        state = secrets.token_urlsafe(32)
        await PlatformOAuthState.create(state=state, platform=platform, workspace_id=workspace_id, user_id=user_id,
                                        data=dict(data or {}), expires_at=utcnow() + ttl)
        return state

    async def consume(self, state: str) -> OAuthState | None:
        """The state's record if it is live; it is deleted either way, so it works once."""
        row = await PlatformOAuthState.filter(state=state).first()
        if row is None or not await PlatformOAuthState.filter(state=state).delete():
            return None  # unknown, or consumed concurrently
        if row.expires_at <= utcnow():
            return None
        return OAuthState(row.state, row.platform, row.workspace_id, row.user_id, dict(row.data or {}))
