"""The /clean-list modal: connection, list (external select with search), mode, rules.

The five categories, their labels and their seed defaults are the core's (core/cleanup.py);
this module only lays them out. Delete is not offered where the platform cannot delete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.blocks.limits import truncate
from core.cleanup import ACTIONS, CATEGORY_LABELS, CATEGORY_ORDER, Policy
from core.verify.status import Category

CALLBACK_ID = "clean_list"
CONNECTION_BLOCK, CONNECTION_ACTION = "connection", "clean_pick_connection"
LIST_ACTION = "clean_pick_list"
MODE_BLOCK, MODE_ACTION = "mode", "clean_pick_mode"
VERIFY_ONLY, CLEAN_AUTO = "verify_only", "clean_auto"
RULE_ENABLED, RULE_ACTION = "rule_enabled_", "rule_action_"  # + category
ACTION_WORDS = {"keep": "Keep", "unsubscribe": "Unsubscribe", "delete": "Delete"}
ERROR_VALUE = "error"  # the option shown when a connection's lists cannot be loaded

CATEGORY_MEANINGS: dict[Category, str] = {
    Category.INVALID: "Addresses that will bounce.",
    Category.DISPOSABLE: "Throwaway addresses from disposable-mail providers.",
    Category.CATCH_ALL: "Domains that accept every address; the mailbox cannot be confirmed.",
    Category.UNKNOWN: "No definite answer; the credit is refunded.",
    Category.RISKY: "Risky addresses, spam traps and role accounts (info@, support@…).",
}


def list_block_id(connection_id: str) -> str:
    """A new block id per connection, so Slack drops the list picked under another connection."""
    return f"list:{connection_id}"


def rule_block_id(category: Category | str) -> str:
    return f"rule:{category}"


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(truncate(text, 75)), "value": value[:150]}


def list_option(list_id: str, name: str, kind: str, count: int | None) -> dict[str, Any]:
    """`Newsletter · list · 12,400 subscribers`, value = the platform's list id."""
    size = f"{count:,} subscribers" if count is not None else "size unknown"
    return _option(f"{name} · {kind} · {size}", list_id)


@dataclass(frozen=True)
class ConnectionChoice:
    id: str
    name: str
    platform_name: str
    can_delete: bool


@dataclass
class ModalState:
    """What the modal remembers between updates (in private_metadata)."""

    channel: str
    connection_id: str | None = None
    list_id: str | None = None
    list_label: str | None = None
    subscriber_count: int | None = None
    mode: str = VERIFY_ONLY

    def metadata(self) -> str:
        return json.dumps({"channel": self.channel, "connection": self.connection_id, "list": self.list_id,
                           "label": self.list_label and self.list_label[:150], "count": self.subscriber_count,
                           "mode": self.mode})

    @classmethod
    def from_metadata(cls, raw: str) -> ModalState:
        data = json.loads(raw or "{}")
        return cls(channel=data.get("channel", ""), connection_id=data.get("connection"), list_id=data.get("list"),
                   list_label=data.get("label"), subscriber_count=data.get("count"), mode=data.get("mode") or VERIFY_ONLY)


def no_connection_view(channel: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": CALLBACK_ID, "title": _plain("Clean a list"), "close": _plain("Close"),
            "private_metadata": ModalState(channel=channel).metadata(),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
                        "No email platform is connected to this workspace yet. Connect one, then run `/clean-list` again."}},
                       {"type": "actions", "block_id": "connect", "elements": [
                           {"type": "button", "action_id": "clean_connect", "style": "primary",
                            "text": _plain("Connect a platform")}]}]}


def rules_blocks(policy: Policy, *, can_delete: bool, platform_name: str) -> list[dict[str, Any]]:
    """A checkbox and a Keep/Unsubscribe/Delete select per category, seeded from the policy."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain("Rules")}]
    choices = [a for a in ACTIONS if a != "delete" or can_delete]
    for category in CATEGORY_ORDER:
        rule = policy.rule(category)
        action = rule.action if rule.action in choices else "unsubscribe"
        enable = _option("Enable", "on")
        checkbox: dict[str, Any] = {"type": "checkboxes", "action_id": RULE_ENABLED + category, "options": [enable]}
        if rule.enabled:
            checkbox["initial_options"] = [enable]
        blocks.append({"type": "section", "block_id": f"rule_text:{category}",
                       "text": {"type": "mrkdwn", "text": f"*{CATEGORY_LABELS[category]}* — {CATEGORY_MEANINGS[category]}"}})
        blocks.append({"type": "actions", "block_id": rule_block_id(category), "elements": [
            checkbox,
            {"type": "static_select", "action_id": RULE_ACTION + category,
             "options": [_option(ACTION_WORDS[c], c) for c in choices],
             "initial_option": _option(ACTION_WORDS[action], action)}]})
    if not can_delete:
        blocks.append({"type": "context", "block_id": "no_delete", "elements": [{"type": "mrkdwn", "text":
                       truncate(f"{platform_name} cannot delete contacts through its API, so Delete is not offered.", 3000)}]})
    return blocks


def clean_list_view(state: ModalState, connections: list[ConnectionChoice], *, policy: Policy,
                    estimate_line: str | None = None) -> dict[str, Any]:
    chosen = next((c for c in connections if c.id == state.connection_id), None)
    conn_options = [_option(f"{c.name} ({c.platform_name})", c.id) for c in connections][:100]
    conn_select: dict[str, Any] = {"type": "static_select", "action_id": CONNECTION_ACTION, "options": conn_options,
                                   "placeholder": _plain("Choose a connection")}
    if chosen:
        conn_select["initial_option"] = _option(f"{chosen.name} ({chosen.platform_name})", chosen.id)
    blocks: list[dict[str, Any]] = [{"type": "input", "block_id": CONNECTION_BLOCK, "dispatch_action": True,
                                     "label": _plain("Connection"), "element": conn_select}]
    if chosen:
        list_select: dict[str, Any] = {"type": "external_select", "action_id": LIST_ACTION, "min_query_length": 0,
                                       "placeholder": _plain("Search lists, segments, tags…")}
        if state.list_id and state.list_label:
            list_select["initial_option"] = _option(state.list_label, state.list_id)
        blocks.append({"type": "input", "block_id": list_block_id(chosen.id), "dispatch_action": True,
                       "label": _plain("List"), "element": list_select})
        if estimate_line:
            blocks.append({"type": "context", "block_id": "estimate", "elements": [{"type": "mrkdwn", "text": estimate_line}]})
        modes = [_option("Verify only", VERIFY_ONLY), _option("Clean automatically", CLEAN_AUTO)]
        blocks.append({"type": "input", "block_id": MODE_BLOCK, "dispatch_action": True, "label": _plain("Mode"),
                       "element": {"type": "radio_buttons", "action_id": MODE_ACTION, "options": modes,
                                   "initial_option": modes[1] if state.mode == CLEAN_AUTO else modes[0]},
                       "hint": _plain("Clean automatically still waits for a teammate to approve the cleanup.")})
        if state.mode == CLEAN_AUTO:
            blocks.extend(rules_blocks(policy, can_delete=chosen.can_delete, platform_name=chosen.platform_name))
    view: dict[str, Any] = {"type": "modal", "callback_id": CALLBACK_ID, "title": _plain("Clean a list"),
                            "close": _plain("Cancel"), "private_metadata": state.metadata(), "blocks": blocks}
    if chosen:
        view["submit"] = _plain("Start")
    return view


def submitted_mode(values: dict[str, Any], default: str) -> str:
    picked = ((values.get(MODE_BLOCK) or {}).get(MODE_ACTION) or {}).get("selected_option") or {}
    return picked.get("value") or default


def submitted_policy(values: dict[str, Any], base: Policy) -> Policy:
    """The rules as submitted; the platform's limits are the core's to enforce (check_policy), never changed here."""
    rules: dict[Category, tuple[bool, str]] = {}
    for category in CATEGORY_ORDER:
        block = values.get(rule_block_id(category))
        if block is None:  # the modal never showed the rules (mode switched without an update): the seeded ones
            rule = base.rule(category)
            rules[category] = (rule.enabled, rule.action)
            continue
        enabled = bool((block.get(RULE_ENABLED + category) or {}).get("selected_options"))
        picked = ((block.get(RULE_ACTION + category) or {}).get("selected_option") or {}).get("value")
        rules[category] = (enabled, picked if picked in ACTIONS else base.rule(category).action)
    return Policy.from_rules(rules, blacklist_action=base.blacklist_action)
