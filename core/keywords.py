"""Keyword rules per connection: a whitelist keeps an address unverified, a blacklist removes it.

A rule matches an address containing its keyword, case-insensitively. Adding a keyword that is
already there returns the existing rule (bulk add is idempotent). When both lists match, the
whitelist wins: keeping someone by mistake is recoverable, removing them is not.

    await services.keywords.add(cnx_id, "blacklist", ["spam", "test"])
    matcher = await services.keywords.matcher(cnx_id)
    matcher.match("test.user@acme.com")  # -> "blacklist"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tortoise.exceptions import IntegrityError

from core.storage.ids import new_id
from core.storage.models import KeywordRule
from core.storage.sql import iso

RuleKind = Literal["whitelist", "blacklist"]
KINDS: tuple[RuleKind, ...] = ("whitelist", "blacklist")
MAX_KEYWORD = 255


class KeywordError(ValueError):
    """A keyword that cannot be a rule (empty, too long, wrong kind)."""


@dataclass(frozen=True)
class KeywordRuleView:
    id: str
    kind: RuleKind
    keyword: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "keyword": self.keyword, "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class KeywordMatcher:
    whitelist: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()

    def match(self, email: str) -> RuleKind | None:
        address = email.casefold()
        if any(word in address for word in self.whitelist):
            return "whitelist"
        if any(word in address for word in self.blacklist):
            return "blacklist"
        return None

    def __bool__(self) -> bool:
        return bool(self.whitelist or self.blacklist)


def _view(row: KeywordRule) -> KeywordRuleView:
    return KeywordRuleView(row.id, row.kind, row.keyword, row.created_at)  # type: ignore[arg-type]


def _clean(keyword: Any) -> str:
    if not isinstance(keyword, str) or not keyword.strip():
        raise KeywordError("A keyword is a non-empty string.")
    keyword = keyword.strip()
    if len(keyword) > MAX_KEYWORD:
        raise KeywordError(f"A keyword is at most {MAX_KEYWORD} characters.")
    return keyword


class KeywordRules:
    async def add(self, connection_id: str, kind: RuleKind, keywords: Iterable[str]) -> list[KeywordRuleView]:
        """The rule for each keyword, in order; keywords already present are not added twice."""
        if kind not in KINDS:
            raise KeywordError("A rule is a whitelist or blacklist rule.")
        wanted = [_clean(k) for k in keywords]
        existing = {r.folded: r for r in await KeywordRule.filter(connection_id=connection_id, kind=kind)}
        out: list[KeywordRuleView] = []
        for keyword in wanted:
            folded = keyword.casefold()
            row = existing.get(folded)
            if row is None:
                try:
                    row = await KeywordRule.create(id=new_id("kw"), connection_id=connection_id, kind=kind,
                                                   keyword=keyword, folded=folded)
                except IntegrityError:  # added concurrently
                    row = await KeywordRule.get(connection_id=connection_id, kind=kind, folded=folded)
                existing[folded] = row
            out.append(_view(row))
        return out

    async def list(self, connection_id: str, kind: RuleKind | None = None) -> list[KeywordRuleView]:
        query = KeywordRule.filter(connection_id=connection_id)
        if kind is not None:
            query = query.filter(kind=kind)
        return [_view(row) for row in await query.order_by("created_at", "id")]

    async def delete(self, connection_id: str, kind: RuleKind, rule_id: str) -> bool:
        return bool(await KeywordRule.filter(connection_id=connection_id, kind=kind, id=rule_id).delete())

    async def matcher(self, connection_id: str | None) -> KeywordMatcher:
        if connection_id is None:
            return KeywordMatcher()
        rows = await KeywordRule.filter(connection_id=connection_id).values_list("kind", "folded")
        return KeywordMatcher(tuple(f for k, f in rows if k == "whitelist"), tuple(f for k, f in rows if k == "blacklist"))
