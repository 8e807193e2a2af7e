"""Block Kit's documented limits, in one table, and a checker for messages and views.

slack_sdk's model classes check per-element lengths but not blocks per message or action_id
uniqueness, and plain dicts are never checked at all; Slack answers `invalid_blocks` at run time.
Tests run every recorded Web API call through `violations()` so a builder that breaks a limit fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
STATIC_OPTIONS = 100
OPTION_TEXT = 75
OPTION_VALUE = 150
CONFIRM = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
ID_LENGTH = 255  # block_id, action_id, callback_id
PLACEHOLDER = 150
VIEW_TITLE = 24  # also submit and close
PRIVATE_METADATA = 3000
INPUT_LABEL = 2000
MESSAGE_TEXT = 40_000


def truncate(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis, for names users chose (list names...)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj or "")


def _element(el: dict[str, Any], where: str, action_ids: set[str]) -> Iterator[str]:
    kind = el.get("type")
    action_id = el.get("action_id")
    if action_id is not None:
        if len(action_id) > ID_LENGTH:
            yield f"{where}: action_id longer than {ID_LENGTH}"
        if action_id in action_ids:
            yield f"{where}: duplicate action_id {action_id!r}"
        action_ids.add(action_id)
    if kind == "button":
        if len(_text(el.get("text"))) > BUTTON_TEXT:
            yield f"{where}: button text longer than {BUTTON_TEXT}"
        if len(str(el.get("value", ""))) > BUTTON_VALUE:
            yield f"{where}: button value longer than {BUTTON_VALUE}"
    if "placeholder" in el and len(_text(el["placeholder"])) > PLACEHOLDER:
        yield f"{where}: placeholder longer than {PLACEHOLDER}"
    options = list(el.get("options") or [])
    if kind in ("static_select", "multi_static_select") and not (0 < len(options) <= STATIC_OPTIONS or el.get("option_groups")):
        yield f"{where}: static select needs 1-{STATIC_OPTIONS} options, has {len(options)}"
    for opt in options + ([el["initial_option"]] if el.get("initial_option") else []) + list(el.get("initial_options") or []):
        yield from _option(opt, where)
    confirm = el.get("confirm")
    if confirm:
        for key, limit in CONFIRM.items():
            if len(_text(confirm.get(key))) > limit:
                yield f"{where}: confirm {key} longer than {limit}"


def _option(opt: dict[str, Any], where: str) -> Iterator[str]:
    if len(_text(opt.get("text"))) > OPTION_TEXT:
        yield f"{where}: option text longer than {OPTION_TEXT}"
    if len(str(opt.get("value", ""))) > OPTION_VALUE:
        yield f"{where}: option value longer than {OPTION_VALUE}"


def options_violations(options: list[dict[str, Any]]) -> list[str]:
    """Checks for a `block_suggestion` answer (external select options)."""
    found = [f"more than {STATIC_OPTIONS} options"] if len(options) > STATIC_OPTIONS else []
    for opt in options:
        found.extend(_option(opt, "options"))
    return found


def blocks_violations(blocks: list[dict[str, Any]], *, max_blocks: int) -> list[str]:
    found: list[str] = []
    if len(blocks) > max_blocks:
        found.append(f"{len(blocks)} blocks, more than {max_blocks}")
    action_ids: set[str] = set()
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"block {i} ({block.get('type')})"
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                found.append(f"{where}: duplicate block_id {block_id!r}")
            if len(block_id) > ID_LENGTH:
                found.append(f"{where}: block_id longer than {ID_LENGTH}")
            block_ids.add(block_id)
        kind = block.get("type")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                found.append(f"{where}: section needs text or fields")
            if len(_text(block.get("text"))) > SECTION_TEXT:
                found.append(f"{where}: text longer than {SECTION_TEXT}")
            fields = block.get("fields") or []
            if len(fields) > SECTION_FIELDS:
                found.append(f"{where}: more than {SECTION_FIELDS} fields")
            found.extend(f"{where}: field longer than {FIELD_TEXT}" for f in fields if len(_text(f)) > FIELD_TEXT)
            if block.get("accessory"):
                found.extend(_element(block["accessory"], where, action_ids))
        elif kind == "header":
            if not 0 < len(_text(block.get("text"))) <= HEADER_TEXT:
                found.append(f"{where}: header text must be 1-{HEADER_TEXT} characters")
        elif kind == "context":
            if not 0 < len(block.get("elements") or []) <= CONTEXT_ELEMENTS:
                found.append(f"{where}: context needs 1-{CONTEXT_ELEMENTS} elements")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= ACTIONS_ELEMENTS:
                found.append(f"{where}: actions needs 1-{ACTIONS_ELEMENTS} elements")
            for el in elements:
                found.extend(_element(el, where, action_ids))
        elif kind == "input":
            if len(_text(block.get("label"))) > INPUT_LABEL:
                found.append(f"{where}: label longer than {INPUT_LABEL}")
            found.extend(_element(block.get("element") or {}, where, action_ids))
    return found


def message_violations(message: dict[str, Any]) -> list[str]:
    """Checks for chat.postMessage / chat.update / chat.postEphemeral / response_url bodies."""
    found = blocks_violations(list(message.get("blocks") or []), max_blocks=MESSAGE_BLOCKS)
    if message.get("blocks") and not message.get("text"):
        found.append("blocks without a fallback `text` (notifications would be empty)")
    if len(str(message.get("text") or "")) > MESSAGE_TEXT:
        found.append(f"text longer than {MESSAGE_TEXT}")
    return found


def view_violations(view: dict[str, Any]) -> list[str]:
    """Checks for views.open / views.update / views.publish, and `response_action: update` views."""
    found = blocks_violations(list(view.get("blocks") or []), max_blocks=VIEW_BLOCKS)
    for key in ("title", "submit", "close"):
        if key in view and not 0 < len(_text(view[key])) <= VIEW_TITLE:
            found.append(f"view {key} must be 1-{VIEW_TITLE} characters")
    if view.get("type") == "modal" and "title" not in view:
        found.append("modal without a title")
    if len(str(view.get("private_metadata") or "")) > PRIVATE_METADATA:
        found.append(f"private_metadata longer than {PRIVATE_METADATA}")
    if len(str(view.get("callback_id") or "")) > ID_LENGTH:
        found.append(f"callback_id longer than {ID_LENGTH}")
    return found
