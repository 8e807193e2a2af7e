"""Secrets at rest: platform credentials, webhook secrets and Slack tokens, sealed with Fernet.

Keys come from LISTWARDEN_SECRET_KEY (comma-separated, newest first: MultiFernet decrypts with
any and encrypts with the first, so adding a key in front and running `listwarden db
rotate-secrets` rotates). Without it, on SQLite, a key is generated on first run into a 0600 file
beside the database and the log says where; on PostgreSQL the key must be set, because several
machines share the database and a file on one of them would lock the others out.

Nothing here ever formats a secret into a message: errors say which setting to fix, not what it held.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings

log = logging.getLogger(__name__)
KEY_FILE_SUFFIX = ".key"  # listwarden.sqlite3 -> listwarden.key (in .gitignore)


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or not the one the data was sealed with."""


class SecretBox:
    """Seals and opens JSON values. Its repr shows how many keys it holds, never a key."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("No secret key: set LISTWARDEN_SECRET_KEY.")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(
                "LISTWARDEN_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
            ) from None
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"<SecretBox keys={self.key_count}>"

    def seal(self, value: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(dict(value), separators=(",", ":")).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretKeyError(
                "Stored secrets cannot be decrypted with LISTWARDEN_SECRET_KEY: it is not the key they were "
                "sealed with (keep the old key after the new one while rotating)."
            ) from None

    def rotate(self, token: str) -> str:
        """The same secret sealed with the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyError("A stored secret cannot be decrypted with any configured key.") from None


def key_file_for(settings: Settings) -> Path | None:
    """Where the generated key lives: beside the SQLite file (None for PostgreSQL or :memory:)."""
    db = settings.sqlite_path
    return None if db is None else db.with_suffix(KEY_FILE_SUFFIX)


def load_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        keys = [k.strip().encode() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
        return SecretBox(keys)
    path = key_file_for(settings)
    if path is None:
        if settings.database_url.startswith("sqlite://"):  # an in-memory database: the key lives as long as it does
            return SecretBox([Fernet.generate_key()])
        raise SecretKeyError("Set LISTWARDEN_SECRET_KEY: with PostgreSQL the key is never generated into a local file.")
    return SecretBox([_read_or_create(path)])


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    log.warning("generated a new secret key for stored credentials at %s (mode 0600); back it up with the "
                "database, or set LISTWARDEN_SECRET_KEY", path.resolve())
    return key
