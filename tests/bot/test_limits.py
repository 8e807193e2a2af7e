"""The Block Kit limit checker catches what Slack would reject, so the per-call checks in `slack` can fail."""

from __future__ import annotations

from bot.blocks.limits import message_violations, options_violations, view_violations

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}


def test_more_than_50_blocks_in_a_message_is_caught() -> None:
    assert message_violations({"text": "t", "blocks": [SECTION] * 50}) == []
    assert "51 blocks, more than 50" in message_violations({"text": "t", "blocks": [SECTION] * 51})[0]


def test_more_than_100_blocks_in_a_view_and_long_titles_are_caught() -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Clean list: Newsletter 2026"}, "blocks": [SECTION] * 101}
    problems = view_violations(view)
    assert any("101 blocks" in p for p in problems) and any("title" in p for p in problems)


def test_duplicate_action_ids_and_oversized_options_are_caught() -> None:
    button = {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}}
    blocks = [{"type": "actions", "elements": [button, button]}]
    assert any("duplicate action_id" in p for p in message_violations({"text": "t", "blocks": blocks}))
    select = {"type": "static_select", "action_id": "s",
              "options": [{"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)]}
    assert any("1-100 options" in p for p in view_violations({"type": "home", "blocks": [{"type": "actions", "elements": [select]}]}))
    assert options_violations([{"text": {"type": "plain_text", "text": "a"}, "value": "v" * 151}])


def test_text_lengths_and_missing_fallback_text_are_caught() -> None:
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    assert any("3000" in p for p in message_violations({"text": "t", "blocks": [long_section]}))
    assert any("fallback" in p for p in message_violations({"blocks": [SECTION]}))
