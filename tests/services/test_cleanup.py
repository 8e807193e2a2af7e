"""Cleanup planning: the seed defaults, a disabled rule keeps, keywords come first, Verify Only
plans nothing, and a rule the platform cannot carry out is refused (never silently changed)."""

from __future__ import annotations

import pytest

from core.cleanup import DEFAULT_POLICY, CleanupRuleRefused, Policy, PolicyError, Rule, check_policy, plan
from core.connectors import get_platform
from core.services import Services
from core.verify.status import Category, Status


def test_seed_defaults() -> None:
    assert DEFAULT_POLICY.rule(Category.INVALID) == Rule(True, "unsubscribe")
    assert DEFAULT_POLICY.rule(Category.DISPOSABLE) == Rule(True, "delete")
    for category in (Category.CATCH_ALL, Category.UNKNOWN, Category.RISKY):
        assert DEFAULT_POLICY.rule(category) == Rule(False, "keep")
    assert DEFAULT_POLICY.describe() == "Invalid: Unsubscribe · Disposable: Delete"


@pytest.mark.parametrize(("status", "action"), [
    (Status.VALID, "keep"), (Status.INVALID, "unsubscribe"), (Status.DISPOSABLE, "delete"),
    (Status.CATCH_ALL, "keep"), (Status.UNKNOWN, "keep"), (Status.SPAMTRAP, "keep"), (Status.ROLE_ACCOUNT, "keep"),
])
def test_plan_with_the_defaults(status: Status, action: str) -> None:
    assert plan(status, DEFAULT_POLICY).action == action


def test_risky_groups_three_statuses_and_a_disabled_rule_keeps() -> None:
    policy = Policy.from_rules({Category.RISKY: (True, "delete"), Category.INVALID: (False, "delete")})
    assert {plan(s, policy).action for s in (Status.RISKY, Status.SPAMTRAP, Status.ROLE_ACCOUNT)} == {"delete"}
    assert plan(Status.INVALID, policy).action == "keep"
    assert plan(Status.SPAMTRAP, policy).because == "risky"


def test_verify_only_plans_nothing_and_keywords_come_first() -> None:
    assert plan(Status.INVALID, None).action == "keep"
    assert plan(Status.INVALID, DEFAULT_POLICY, keyword="whitelist").action == "keep"
    assert plan(Status.VALID, DEFAULT_POLICY, keyword="blacklist") .action == "unsubscribe"


def test_delete_on_convertkit_is_refused_not_changed() -> None:
    kit = get_platform("convertkit")
    with pytest.raises(CleanupRuleRefused) as err:
        check_policy(DEFAULT_POLICY, kit.capabilities, kit.display_name)
    assert err.value.category is Category.DISPOSABLE and "Unsubscribe or Keep" in str(err.value)
    check_policy(Policy.from_rules({Category.DISPOSABLE: (True, "unsubscribe")}), kit.capabilities, kit.display_name)
    check_policy(None, kit.capabilities, kit.display_name)  # verify only needs no write at all
    check_policy(Policy.from_rules({Category.DISPOSABLE: (False, "delete")}), kit.capabilities, kit.display_name)


def test_policy_json_round_trip_and_errors() -> None:
    policy = Policy.from_rules({Category.CATCH_ALL: (True, "unsubscribe")}, blacklist_action="delete")
    assert Policy.from_json(policy.to_json()) == policy
    with pytest.raises(PolicyError):
        Policy.from_json({"bogus": {"enabled": True, "action": "keep"}})
    with pytest.raises(PolicyError):
        Policy.from_json({"invalid": {"enabled": True, "action": "explode"}})


async def test_stored_policies_fall_back_from_connection_to_workspace_to_defaults(services: Services) -> None:
    from core.storage.models import Connection

    assert await services.policies.get("T1") == DEFAULT_POLICY
    workspace = Policy.from_rules({Category.UNKNOWN: (True, "unsubscribe")})
    await services.policies.set("T1", workspace, by="U1")
    assert await services.policies.get("T1") == workspace
    await Connection.create(id="cnx_1", workspace_id="T1", platform="mailerlite", name="N",
                            credentials=services.box.seal({}), settings={})
    assert await services.policies.get("T1", "cnx_1") == workspace
    own = Policy.from_rules({Category.RISKY: (True, "delete")})
    await services.policies.set("T1", own, connection_id="cnx_1")
    assert await services.policies.get("T1", "cnx_1") == own
    assert await services.policies.get("T1") == workspace
