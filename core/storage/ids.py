"""Public ids: a short prefix saying what it is, then 48 random bits ("cnx_8f3a1c0e5b7d")."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"
