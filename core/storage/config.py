"""How tortoise is configured from DATABASE_URL: one function, used by serve, workers, the CLI and tests.

SQLite gets WAL (tortoise's default), `busy_timeout` so that a second process (a CLI command
beside `serve`) waits for a write lock instead of failing, and `synchronous=NORMAL`, which in
WAL mode loses nothing when a process is killed (only on power loss). `postgresql://` is
accepted as a spelling of `postgres://` (asyncpg); `?schema=NAME` puts every table in NAME.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise.backends.base.config_generator import expand_db_url

from core.storage.backends import ENGINES

APP = "models"
MODELS_MODULE = "core.storage.models"
MIGRATIONS_MODULE = "core.storage.migrations"
SQLITE_DEFAULTS = {"busy_timeout": "10000", "synchronous": "NORMAL"}
DEFAULT_URL = "sqlite://listwarden.sqlite3"


def normalize_url(url: str) -> str:
    """The URL tortoise should open: SQLite pragmas filled in, PostgreSQL spellings unified."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres+asyncpg", "asyncpg"):
        return "postgres://" + rest
    if scheme != "sqlite":
        return url
    path, _, query = rest.partition("?")
    params = dict(parse_qsl(query))
    for key, value in SQLITE_DEFAULTS.items():
        params.setdefault(key, value)
    return f"sqlite://{path}?{urlencode(params)}"


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite://") else "postgres"


def postgres_schema(url: str) -> str | None:
    """The `?schema=` of a PostgreSQL URL, which must exist before tables are created in it."""
    if dialect_of(url) != "postgres":
        return None
    return dict(parse_qsl(urlsplit(url).query)).get("schema")


def without_schema(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    return urlunsplit(parts._replace(query=query))


def connection_config(url: str) -> dict[str, Any]:
    """tortoise's expansion of the URL, served by our cancel-safe clients (core/storage/backends)."""
    config = expand_db_url(normalize_url(url))
    config["engine"] = ENGINES.get(config["engine"], config["engine"])
    return config


def tortoise_config(url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(url)},
        "apps": {APP: {"models": [MODELS_MODULE], "migrations": MIGRATIONS_MODULE, "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


# For tortoise's own CLI: `TORTOISE_ORM=core.storage.config.TORTOISE_ORM tortoise makemigrations`
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL", DEFAULT_URL))
