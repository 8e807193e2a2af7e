"""REST API keys: generated once, shown once, stored only as a SHA-256 digest.

Keys carry 256 bits of randomness, so an unsalted fast hash is enough (there is nothing to
brute-force) and a lookup is one indexed equality.

    plaintext, key = await services.api_keys.create("default", name="CRM sync", roles={"approver"})
    key = await services.api_keys.authenticate(bearer)   # None: answer 401
    await services.api_keys.revoke(key.id)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.storage.ids import new_id
from core.storage.models import ApiKey
from core.storage.sql import utcnow
from core.workspaces import Workspaces

KEY_PREFIX = "lw_"
ROLES = frozenset({"approver"})
MAX_NAME = 100


class ApiKeyError(ValueError):
    """A refused key request; the message says what to change."""


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ApiKeyView:
    """A stored key; never holds the key itself."""

    id: str
    workspace_id: str
    name: str
    roles: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.name!r}{' revoked' if self.revoked_at else ''}>"


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(row.id, row.workspace_id, row.name, frozenset(row.roles or ()), row.created_at,  # type: ignore[attr-defined]
                      row.revoked_at, row.last_used_at)


def _check(name: str, roles: Iterable[str]) -> tuple[str, frozenset[str]]:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise ApiKeyError(f"The key name must be 1 to {MAX_NAME} printable characters.")
    wanted = frozenset(roles)
    unknown = sorted(wanted - ROLES)
    if unknown:
        raise ApiKeyError(f"Unknown role {unknown[0]!r}; roles are: {', '.join(sorted(ROLES))}.")
    return name, wanted


class ApiKeys:
    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    async def create(self, workspace_id: str, *, name: str, roles: Iterable[str] = (),
                     created_by: str | None = None) -> tuple[str, ApiKeyView]:
        """(the plaintext key, to show once; the stored record)."""
        name, wanted = _check(name, roles)
        plaintext = generate_key()
        view = await self.add_hashed(new_id("key"), workspace_id, name=name, digest=hash_key(plaintext),
                                     roles=wanted, created_by=created_by)
        return plaintext, view

    async def add_hashed(self, key_id: str, workspace_id: str, *, name: str, digest: str, roles: Iterable[str] = (),
                         created_by: str | None = None) -> ApiKeyView:
        """Store a key generated elsewhere, by its digest only."""
        name, wanted = _check(name, roles)
        await self.workspaces.ensure(workspace_id)
        row = await ApiKey.create(id=key_id, workspace_id=workspace_id, name=name, digest=digest,
                                  roles=sorted(wanted), created_by=created_by)
        return _view(row)

    async def authenticate(self, plaintext: str) -> ApiKeyView | None:
        """The active key this bearer token is, or None."""
        if not plaintext or not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
            return None
        view = await self.by_digest(hash_key(plaintext))
        if view is None or not view.active:
            return None
        await ApiKey.filter(id=view.id).update(last_used_at=utcnow())
        return view

    async def by_digest(self, digest: str) -> ApiKeyView | None:
        row = await ApiKey.filter(digest=digest).first()
        return None if row is None else _view(row)

    async def revoke(self, key_id: str) -> bool:
        return bool(await ApiKey.filter(id=key_id, revoked_at=None).update(revoked_at=utcnow()))

    async def list(self, workspace_id: str | None = None) -> list[ApiKeyView]:
        query = ApiKey.all() if workspace_id is None else ApiKey.filter(workspace_id=workspace_id)
        return [_view(row) for row in await query.order_by("created_at", "id")]
