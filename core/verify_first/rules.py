"""What verify-first does with one new subscriber: keyword rules first, then the checks, then the action.

- a whitelist match is kept, unverified (keeping someone by mistake is recoverable);
- a blacklist match gets the cleanup rules' blacklist action, unverified;
- otherwise the address is verified, and its status's category is acted on only when the
  connection's check for it is on (seed 001: `nonexistent`, `disposable`, `catch_all`, `unknown`,
  `risky`; normal turns on the first two, aggressive all). The action is the one the connection's
  cleanup rules (core/cleanup.py) give that category, or Unsubscribe where those say Keep: a check
  that is on asks for the address to be cleaned, and Unsubscribe is the removal that can be undone.

The platform's limits are never worked around silently: an action it cannot do (Kit cannot
delete) is recorded as failed with the reason, so the digest says which rule to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.checks import ConnectionSettings
from core.cleanup import Action, Planned, Policy
from core.connectors.base import Capabilities
from core.keywords import KeywordMatcher
from core.verify.status import Status, category_of


@dataclass(frozen=True)
class VerifyFirstRules:
    settings: ConnectionSettings
    policy: Policy
    matcher: KeywordMatcher
    capabilities: Capabilities

    def keyword(self, email: str) -> Planned | None:
        """The keyword step: a plan without verification, or None to go on and verify."""
        match = self.matcher.match(email)
        if match == "whitelist":
            return Planned("keep", "whitelist")
        if match == "blacklist":
            return Planned(self.policy.blacklist_action, "blacklist")
        return None

    def after_verification(self, status: Status | str) -> Planned:
        category = category_of(status)
        if category is None:
            return Planned("keep", "")
        if category not in self.settings.gated():
            return Planned("keep", str(category))
        action: Action = self.policy.rule(category).action
        return Planned("unsubscribe" if action == "keep" else action, str(category))

    def unsupported(self, action: str) -> str | None:
        """Why the platform cannot do `action`, or None if it can."""
        if action == "delete" and not self.capabilities.can_delete:
            return "this platform cannot delete contacts; set the rule to Unsubscribe"
        if action == "unsubscribe" and not self.capabilities.can_unsubscribe:
            return "this platform cannot unsubscribe contacts through its API"
        return None
