"""A connection's cleaning settings in mailfloss's shape (seed 001): verify_first, aggressiveness, checks.

Each check gate turns on one cleanup category of seed 000 for automatic (verify-first) cleaning;
`nonexistent` is the invalid category. `normal` removes what surely bounces or is throwaway;
`aggressive` turns every gate on; editing any gate makes the level `custom`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from core.verify.status import Category

Aggressiveness = Literal["normal", "aggressive", "custom"]
AGGRESSIVENESS: tuple[str, ...] = ("normal", "aggressive", "custom")
CHECKS: tuple[str, ...] = ("nonexistent", "disposable", "catch_all", "unknown", "risky")
CATEGORY_OF_CHECK: dict[str, Category] = {
    "nonexistent": Category.INVALID,
    "disposable": Category.DISPOSABLE,
    "catch_all": Category.CATCH_ALL,
    "unknown": Category.UNKNOWN,
    "risky": Category.RISKY,
}
PRESETS: dict[str, dict[str, bool]] = {
    "normal": {"nonexistent": True, "disposable": True, "catch_all": False, "unknown": False, "risky": False},
    "aggressive": dict.fromkeys(CHECKS, True),
}


class SettingsError(ValueError):
    """A settings update that breaks the rules; `field` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ConnectionSettings:
    verify_first: bool = False  # nothing automatic happens until someone turns it on
    aggressiveness: Aggressiveness = "normal"
    checks: Mapping[str, bool] = field(default_factory=lambda: dict(PRESETS["normal"]))

    def to_json(self) -> dict[str, Any]:
        return {"verify_first": self.verify_first, "aggressiveness": self.aggressiveness, "checks": dict(self.checks)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ConnectionSettings:
        data = data or {}
        level = data.get("aggressiveness", "normal")
        checks = dict(PRESETS.get(level, PRESETS["normal"]))
        checks.update({k: bool(v) for k, v in (data.get("checks") or {}).items() if k in CHECKS})
        return cls(bool(data.get("verify_first", False)), level, checks)

    def gated(self) -> frozenset[Category]:
        """The categories these checks clean automatically."""
        return frozenset(CATEGORY_OF_CHECK[name] for name, on in self.checks.items() if on)


def update_settings(current: ConnectionSettings, *, verify_first: bool | None = None,
                    aggressiveness: str | None = None, checks: Mapping[str, Any] | None = None) -> ConnectionSettings:
    """A partial update with mailfloss's rules: at least one field; aggressiveness xor checks; a check edit is custom."""
    if verify_first is None and aggressiveness is None and checks is None:
        raise SettingsError("Give at least one of verify_first, aggressiveness or checks.")
    if aggressiveness is not None and checks is not None:
        raise SettingsError("Send aggressiveness or checks, not both in one request.", field="checks")
    updated = current
    if verify_first is not None:
        if not isinstance(verify_first, bool):
            raise SettingsError("verify_first must be true or false.", field="verify_first")
        updated = replace(updated, verify_first=verify_first)
    if aggressiveness is not None:
        if aggressiveness not in AGGRESSIVENESS:
            raise SettingsError("aggressiveness must be normal, aggressive or custom.", field="aggressiveness")
        if aggressiveness != "custom":
            updated = replace(updated, aggressiveness=aggressiveness, checks=dict(PRESETS[aggressiveness]))
        else:
            updated = replace(updated, aggressiveness="custom")
    if checks is not None:
        if not isinstance(checks, Mapping) or not checks:
            raise SettingsError("checks must be an object of check names to true/false.", field="checks")
        unknown = sorted(set(checks) - set(CHECKS))
        if unknown:
            raise SettingsError(f"Unknown check {unknown[0]!r}; checks are: {', '.join(CHECKS)}.", field="checks")
        if any(not isinstance(v, bool) for v in checks.values()):
            raise SettingsError("Each check is true or false.", field="checks")
        merged = {**current.checks, **checks}
        updated = replace(updated, aggressiveness="custom", checks=merged)
    return updated
