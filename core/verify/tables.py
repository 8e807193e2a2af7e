"""The verifier's reference data: disposable, role, free-provider and known-not-catch-all lists,
and typo suggestions. Loaded once per process from `data/` and the disposable-email-domains package.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources

from disposable_email_domains import blocklist as _disposable_blocklist

_SEPARATORS = re.compile(r"[._-]")


@cache
def _table(name: str) -> tuple[str, ...]:
    text = resources.files("core.verify").joinpath("data", name).read_text(encoding="utf-8")
    rows = (line.split("#", 1)[0].strip().lower() for line in text.splitlines())
    return tuple(row for row in rows if row)


@cache
def _role_set() -> frozenset[str]:
    return frozenset(_SEPARATORS.sub("", role) for role in _table("role_local_parts.txt"))


def _parents(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


@lru_cache(maxsize=65_536)
def is_disposable(domain: str) -> bool:
    """The domain or a parent of it is on the disposable list (sub-domains of throwaway services too)."""
    return any(parent in _disposable_blocklist for parent in _parents(domain))


def is_role(local_part: str) -> bool:
    base = local_part.lower().split("+", 1)[0]
    return _SEPARATORS.sub("", base) in _role_set()


def is_free_provider(domain: str) -> bool:
    return domain in _free_set()


@cache
def _free_set() -> frozenset[str]:
    return frozenset(_table("free_providers.txt"))


def known_not_catch_all(domain: str) -> bool:
    return domain in _not_catch_all_set()


@cache
def _not_catch_all_set() -> frozenset[str]:
    return frozenset(_table("not_catch_all.txt"))


def popular_domains() -> tuple[str, ...]:
    return _table("popular_domains.txt")


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps count once), giving up above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=16_384)
def suggest_domain(domain: str) -> str | None:
    """The popular domain a mistyped one most likely meant, or None.

    Only called for domains that do not resolve, so a real domain that happens to look like
    gmail.com is never "corrected". Short domains allow one edit, longer ones two.
    """
    if domain in popular_domains():
        return None
    limit = 1 if len(domain) <= 6 else 2
    best: tuple[int, int, str] | None = None
    for rank, candidate in enumerate(popular_domains()):
        d = _distance(domain, candidate, limit)
        if d <= limit and (best is None or (d, rank) < best[:2]):
            best = (d, rank, candidate)
    return best[2] if best else None
