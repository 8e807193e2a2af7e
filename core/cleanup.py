"""Cleanup planning: from a verification result and the policy, keep, unsubscribe or delete.

The policy is the five categories of seed 000 (Category in core/verify/status.py), each with
an enable toggle and an action, defaulting to: Invalid on/Unsubscribe, Disposable on/Delete,
Catch-all off/Keep, Unknown off/Keep, Risky (risky, spamtrap, role_account) off/Keep.
A disabled category keeps its contacts whatever its action says. "Verify only" is no policy
at all (None) and plans nothing.

The platform constrains the plan but never silently changes it: a rule asking for Delete on a
platform that cannot delete (ConvertKit) is refused with CleanupRuleRefused when the job is
set up, so the person who chose it can choose again.

Keyword rules come first: a whitelisted address is kept, a blacklisted one gets the policy's
`blacklist_action` (unsubscribe unless set otherwise).

    policy = await services.policies.get("T1", connection_id)        # the connection's, else the workspace's, else defaults
    check_policy(policy, connector.capabilities, connector.display_name)  # raises CleanupRuleRefused
    plan(Status.INVALID, policy)  # -> Planned("unsubscribe", "invalid")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.connectors.base import Capabilities
from core.storage.models import CleanupPolicy as PolicyRow
from core.verify.status import Category, Status, category_of
from core.workspaces import Workspaces

Action = Literal["keep", "unsubscribe", "delete"]
ACTIONS: tuple[Action, ...] = ("keep", "unsubscribe", "delete")
CATEGORY_ORDER: tuple[Category, ...] = (Category.INVALID, Category.DISPOSABLE, Category.CATCH_ALL, Category.UNKNOWN,
                                        Category.RISKY)
CATEGORY_LABELS: dict[Category, str] = {Category.INVALID: "Invalid", Category.DISPOSABLE: "Disposable",
                                        Category.CATCH_ALL: "Catch-all", Category.UNKNOWN: "Unknown",
                                        Category.RISKY: "Risky"}


@dataclass(frozen=True)
class Rule:
    enabled: bool
    action: Action

    @property
    def effective(self) -> Action:
        return self.action if self.enabled else "keep"


DEFAULT_RULES: dict[Category, Rule] = {
    Category.INVALID: Rule(True, "unsubscribe"),
    Category.DISPOSABLE: Rule(True, "delete"),
    Category.CATCH_ALL: Rule(False, "keep"),
    Category.UNKNOWN: Rule(False, "keep"),
    Category.RISKY: Rule(False, "keep"),
}


class PolicyError(ValueError):
    """A policy that cannot be read (unknown category or action)."""


class CleanupRuleRefused(ValueError):
    """A rule the platform cannot carry out; the message names the rule and what to pick instead."""

    def __init__(self, category: Category | None, action: Action, platform: str) -> None:
        what = f"the {CATEGORY_LABELS[category]} rule" if category is not None else "the blacklist rule"
        alternative = "Unsubscribe or Keep" if action == "delete" else "Keep"
        super().__init__(f"{platform} cannot {action} contacts, so {what} cannot be set to {action.capitalize()}; "
                         f"choose {alternative} instead.")
        self.category = category
        self.action = action
        self.platform = platform


@dataclass(frozen=True)
class Policy:
    rules: Mapping[Category, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    blacklist_action: Action = "unsubscribe"

    def rule(self, category: Category) -> Rule:
        return self.rules.get(category, DEFAULT_RULES[category])

    def actions_used(self) -> set[Action]:
        return {self.rule(c).effective for c in CATEGORY_ORDER} | {self.blacklist_action}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {str(c): {"enabled": self.rule(c).enabled, "action": self.rule(c).action}
                                for c in CATEGORY_ORDER}
        data["blacklist_action"] = self.blacklist_action
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Policy:
        rules: dict[Category, Rule] = dict(DEFAULT_RULES)
        for key, value in data.items():
            if key == "blacklist_action":
                continue
            try:
                category = Category(key)
            except ValueError:
                raise PolicyError(f"Unknown cleanup category {key!r}.") from None
            if not isinstance(value, Mapping) or value.get("action", "keep") not in ACTIONS:
                raise PolicyError(f"The {key} rule needs an action: keep, unsubscribe or delete.")
            rules[category] = Rule(bool(value.get("enabled", False)), value.get("action", "keep"))
        blacklist = data.get("blacklist_action", "unsubscribe")
        if blacklist not in ACTIONS:
            raise PolicyError("blacklist_action must be keep, unsubscribe or delete.")
        return cls(rules, blacklist)

    @classmethod
    def from_rules(cls, rules: Mapping[Category | str, tuple[bool, str]], blacklist_action: Action = "unsubscribe") -> Policy:
        """From the (enabled, action) pairs a Slack modal or API request carries."""
        return cls.from_json({**{str(c): {"enabled": e, "action": a} for c, (e, a) in rules.items()},
                              "blacklist_action": blacklist_action})

    def describe(self) -> str:
        """e.g. "Invalid: Unsubscribe · Disposable: Delete" (enabled, non-keep rules only)."""
        parts = [f"{CATEGORY_LABELS[c]}: {self.rule(c).action.capitalize()}" for c in CATEGORY_ORDER
                 if self.rule(c).effective != "keep"]
        return " · ".join(parts) or "Keep everything"


DEFAULT_POLICY = Policy()


def check_policy(policy: Policy | None, capabilities: Capabilities, platform: str) -> None:
    """Refuse a policy the platform cannot carry out (never change it behind the user's back)."""
    if policy is None:
        return
    allowed = {"keep", *(["unsubscribe"] if capabilities.can_unsubscribe else []),
               *(["delete"] if capabilities.can_delete else [])}
    for category in CATEGORY_ORDER:
        rule = policy.rule(category)
        if rule.effective not in allowed:
            raise CleanupRuleRefused(category, rule.action, platform)
    if policy.blacklist_action not in allowed:
        raise CleanupRuleRefused(None, policy.blacklist_action, platform)


@dataclass(frozen=True)
class Planned:
    action: Action
    because: str  # a category ("invalid"), "whitelist" or "blacklist"; "" for a valid address


def plan(status: Status | str | None, policy: Policy | None, keyword: str | None = None) -> Planned:
    """The action for one contact. Verify only (policy None) plans nothing: keep."""
    if policy is None:
        return Planned("keep", "")
    if keyword == "whitelist":
        return Planned("keep", "whitelist")
    if keyword == "blacklist":
        return Planned(policy.blacklist_action, "blacklist")
    category = category_of(status) if status else None
    if category is None:
        return Planned("keep", "")
    return Planned(policy.rule(category).effective, str(category))


class CleanupPolicies:
    """The stored policies: one per workspace, optionally one per connection overriding it."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    async def get(self, workspace_id: str, connection_id: str | None = None) -> Policy:
        rows = {row.connection_id: row for row in await PolicyRow.filter(workspace_id=workspace_id)}  # type: ignore[attr-defined]
        row = rows.get(connection_id) if connection_id is not None else None
        row = row or rows.get(None)
        return DEFAULT_POLICY if row is None else Policy.from_json(row.rules)

    async def set(self, workspace_id: str, policy: Policy, *, connection_id: str | None = None,
                  by: str | None = None) -> None:
        await self.workspaces.ensure(workspace_id)
        updated = await PolicyRow.filter(workspace_id=workspace_id, connection_id=connection_id).update(
            rules=policy.to_json(), updated_by=by)
        if not updated:
            await PolicyRow.create(workspace_id=workspace_id, connection_id=connection_id, rules=policy.to_json(), updated_by=by)
