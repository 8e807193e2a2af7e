"""Builders for the modals and messages: what they show, and that each stays within Block Kit's limits."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.blocks import clean_list as ui
from bot.blocks.limits import message_violations, view_violations
from bot.blocks.summary import APPROVE_ACTION, DOWNLOAD_ACTION, decided, planned_actions_line, report_blocks, summary_blocks
from core.cleanup import DEFAULT_POLICY, Policy
from core.jobs.states import State
from core.jobs.views import JobView


def job(**fields) -> JobView:
    base = dict(id="job_1", workspace_id="T1", kind="cleanup", state=State.AWAITING_APPROVAL, connection_id="cnx_1",
                list_id="L1", list_name="Newsletter", policy=DEFAULT_POLICY, requester="U1", approver=None, rejected_by=None,
                reject_reason=None, cancelled_by=None, error=None, paused_reason=None, notify={}, params={},
                estimated=2460, total=2465, ingest_done=True, unique=2460, processed=2460, charged=2460, refunded=12,
                status_counts={"valid": 900, "invalid": 312, "disposable": 40, "catch_all": 1203, "role_account": 5},
                planned_counts={"unsubscribe:invalid": 312, "delete:disposable": 40, "keep:catch_all": 1203,
                                "keep:risky": 5, "keep:": 900}, expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    base.update(fields)
    return JobView(**base)


def _actions(view: dict) -> list[str]:
    out = []
    for block in view["blocks"]:
        for el in block.get("elements", []) + ([block["element"]] if "element" in block else []):
            if "action_id" in el:
                out.append(el["action_id"])
    return out


def test_rules_show_the_policy_and_hide_delete_where_the_platform_cannot_delete() -> None:
    state = ui.ModalState(channel="C1", connection_id="c1", mode=ui.CLEAN_AUTO)
    kit = ui.ConnectionChoice("c1", "Kit", "Kit (ConvertKit)", can_delete=False)
    view = ui.clean_list_view(state, [kit], policy=DEFAULT_POLICY)
    assert view_violations(view) == []
    selects = {b["block_id"]: b["elements"] for b in view["blocks"] if b.get("block_id", "").startswith("rule:")}
    assert [o["value"] for o in selects["rule:disposable"][1]["options"]] == ["keep", "unsubscribe"]
    assert selects["rule:invalid"][0]["initial_options"] and "initial_options" not in selects["rule:catch_all"][0]
    mailchimp = ui.ConnectionChoice("c1", "Main", "Mailchimp", can_delete=True)
    remembered = Policy.from_rules({"catch_all": (True, "unsubscribe")})
    view = ui.clean_list_view(state, [mailchimp], policy=remembered)
    selects = {b["block_id"]: b["elements"] for b in view["blocks"] if b.get("block_id", "").startswith("rule:")}
    assert selects["rule:disposable"][1]["initial_option"]["value"] == "delete"
    assert selects["rule:catch_all"][0]["initial_options"] and selects["rule:catch_all"][1]["initial_option"]["value"] == "unsubscribe"


def test_verify_only_mode_has_no_rules_and_every_action_id_is_unique() -> None:
    state = ui.ModalState(channel="C1", connection_id="c1")
    view = ui.clean_list_view(state, [ui.ConnectionChoice("c1", "Main", "Mailchimp", True)], policy=DEFAULT_POLICY,
                              estimate_line="Estimated cost: *1,000 credits*")
    assert not any(b.get("block_id", "").startswith("rule:") for b in view["blocks"])
    assert len(_actions(view)) == len(set(_actions(view)))
    assert view["blocks"][1]["element"]["type"] == "external_select"  # lists are searched, never a 100-option list


def test_submitted_policy_reads_the_view_state_and_keeps_what_was_asked() -> None:
    values = {"rule:disposable": {"rule_enabled_disposable": {"selected_options": [{"value": "on"}]},
                                  "rule_action_disposable": {"selected_option": {"value": "delete"}}},
              "rule:invalid": {"rule_enabled_invalid": {"selected_options": []},
                               "rule_action_invalid": {"selected_option": {"value": "unsubscribe"}}}}
    policy = ui.submitted_policy(values, DEFAULT_POLICY)
    assert policy.rule("disposable").effective == "delete"  # never silently changed: the core refuses it on ConvertKit
    assert policy.rule("invalid").enabled is False
    assert policy.rule("catch_all") == DEFAULT_POLICY.rule("catch_all")  # not shown: the policy's own


def test_list_option_shows_kind_and_count_within_option_limits() -> None:
    option = ui.list_option("abc", "Newsletter " * 20, "audience", 12400)
    assert option["text"]["text"].endswith("…") and len(option["text"]["text"]) <= 75
    assert ui.list_option("abc", "VIP", "tag", 12400)["text"]["text"] == "VIP · tag · 12,400 subscribers"
    assert ui.list_option("abc", "All", "segment", None)["text"]["text"] == "All · segment · size unknown"


def test_summary_plans_actions_in_words_and_offers_approval_with_a_confirm() -> None:
    assert planned_actions_line(job().planned_counts) == \
        "Unsubscribe 312 invalid · Delete 40 disposable · Keep 1,203 catch-all · Keep 5 risky"
    blocks = summary_blocks(job(), subject="*Newsletter* on *Main*", with_buttons=True)
    text = str(blocks)
    assert message_violations({"text": "summary", "blocks": blocks}) == []
    assert "(5 repeated rows counted once)" in text and "Credits charged: 2,460 · refunded: 12" in text
    approve = next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == APPROVE_ACTION)
    assert approve["style"] == "primary" and approve["confirm"]["confirm"]["text"] == "Approve"
    assert "Unsubscribe 312 invalid" in approve["confirm"]["text"]["text"]
    after = decided(blocks, "Approved by <@U2>")
    actions = [e["action_id"] for b in after if b["type"] == "actions" for e in b["elements"]]
    assert actions == [DOWNLOAD_ACTION] and after[-1]["elements"][0]["text"] == "Approved by <@U2>"


def test_verify_only_summary_has_no_plan_and_no_approval() -> None:
    blocks = summary_blocks(job(kind="verify_list", policy=None, state=State.DONE), subject="*L*", with_buttons=False)
    actions = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == [DOWNLOAD_ACTION] and "Planned" not in str(blocks)


def test_report_names_failures_in_plain_words() -> None:
    done = job(state=State.DONE, approver="U2", applied_counts={"delete": 40},
               failure_counts={"this API key is read-only": 312})
    text = str(report_blocks(done, subject="*Newsletter* on *Main*"))
    assert "0 unsubscribed · 40 deleted. Approved by <@U2>." in text
    assert "this API key is read-only: 312 contacts not changed" in text


def test_a_list_with_a_very_long_name_stays_within_limits() -> None:
    long = job(list_name="N" * 5000, status_counts={s: 10**6 for s in ("valid", "invalid", "unknown")})
    blocks = summary_blocks(long, subject="*" + "N" * 5000 + "*", with_buttons=True)
    assert message_violations({"text": "summary", "blocks": blocks}) == []
