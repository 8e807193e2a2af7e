"""Webhook secrets for platforms that sign nothing: a secret token carried in our URL.

Mailchimp, ActiveCampaign and Kit send no signature, so the only thing that authenticates a
delivery is a token only we and the platform know, in the URL we register. These helpers put
it there and check it in constant time.
"""

from __future__ import annotations

import hmac
import secrets as pysecrets
from collections.abc import Mapping
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit


def new_secret() -> str:
    """A fresh webhook secret: 256 bits, URL-safe."""
    return pysecrets.token_urlsafe(32)


def url_token(url: str) -> str | None:
    """The `token` query parameter of a URL, if it has one."""
    values = parse_qs(urlsplit(url).query).get("token") or []
    return values[0] if values and values[0] else None


def choose_secret(url: str, secret: str | None) -> str:
    """The connection's secret when given, else a token already in the URL, else a new one."""
    return secret or url_token(url) or new_secret()


def with_url_token(url: str, token: str) -> str:
    """`url` with `?token=` set to `token` (replacing any token already there), other parameters kept."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query["token"] = [token]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def token_matches(query: Mapping[str, str], expected: str | None) -> bool:
    """Constant-time check of the delivery's `?token=` against the stored one; no stored token never matches."""
    if not expected:
        return False
    return hmac.compare_digest(str(query.get("token", "")).encode(), expected.encode())
