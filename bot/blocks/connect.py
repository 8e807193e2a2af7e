"""The "Connect a platform" modal, rendered from each connector's credential schema (`credential_fields`)."""

from __future__ import annotations

import json
from typing import Any

from bot.blocks.limits import truncate
from core.connectors.base import Connector, CredentialField

CALLBACK_ID = "connect_platform"
PLATFORM_BLOCK = "platform"
PLATFORM_ACTION = "connect_pick_platform"
OAUTH_ACTION = "connect_oauth"
NAME_BLOCK = "name"
FIELD_PREFIX = "cred:"  # block_id and action_id of each credential field: cred:<field name>


def _plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(truncate(text, 75)), "value": value[:150]}


def field_block(f: CredentialField) -> dict[str, Any]:
    """A text input, or a select when the field is a choice (SendGrid's region)."""
    element: dict[str, Any]
    if f.choices:
        options = [_option(label, value) for value, label in f.choices][:100]
        element = {"type": "static_select", "action_id": FIELD_PREFIX + f.name, "options": options}
        default = next((o for o in options if o["value"] == f.default), None)
        if default:
            element["initial_option"] = default
    else:
        element = {"type": "plain_text_input", "action_id": FIELD_PREFIX + f.name}
        if f.placeholder:
            element["placeholder"] = _plain(truncate(f.placeholder, 150))
    hint = f.help + (" Stored encrypted; never shown again." if f.secret else "")
    return {"type": "input", "block_id": FIELD_PREFIX + f.name, "optional": not f.required or bool(f.default),
            "label": _plain(truncate(f.label, 2000)), "hint": _plain(truncate(hint, 2000)), "element": element}


def connect_view(platforms: dict[str, type[Connector]], *, selected: str | None = None,
                 metadata: dict[str, Any] | None = None, oauth_url: str | None = None,
                 note: str | None = None) -> dict[str, Any]:
    """Step 1 shows only the platform select; once one is picked, its fields and a name follow."""
    metadata = dict(metadata or {})
    reconnecting = bool(metadata.get("reconnect"))
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append({"type": "section", "block_id": "note", "text": {"type": "mrkdwn", "text": truncate(note, 3000)}})
    options = [_option(cls.display_name, slug) for slug, cls in platforms.items()][:100]
    if not reconnecting:  # a reconnect keeps its platform
        select: dict[str, Any] = {"type": "static_select", "action_id": PLATFORM_ACTION, "options": options,
                                  "placeholder": _plain("Choose a platform")}
        if selected:
            select["initial_option"] = _option(platforms[selected].display_name, selected)
        blocks.append({"type": "input", "block_id": PLATFORM_BLOCK, "dispatch_action": True,
                       "label": _plain("Platform"), "element": select})
    view: dict[str, Any] = {"type": "modal", "callback_id": CALLBACK_ID,
                            "title": _plain("Update credentials" if reconnecting else "Connect a platform"),
                            "close": _plain("Cancel"), "private_metadata": json.dumps({**metadata, "platform": selected})}
    if selected:
        cls = platforms[selected]
        if cls.auth in ("oauth", "api_key_or_oauth") and oauth_url:
            blocks.append({"type": "section", "block_id": "oauth",
                           "text": {"type": "mrkdwn", "text": f"Sign in to {cls.display_name} to connect without an API key."},
                           "accessory": {"type": "button", "action_id": OAUTH_ACTION, "url": oauth_url[:3000],
                                         "text": _plain(f"Sign in with {truncate(cls.display_name, 40)}")}})
        elif cls.auth == "oauth":
            blocks.append({"type": "section", "block_id": "oauth", "text": {"type": "mrkdwn", "text":
                           f"{cls.display_name} connects through OAuth, which needs an OAuth app: the instance admin sets "
                           f"`{selected.upper()}_CLIENT_ID` and `{selected.upper()}_CLIENT_SECRET`."}})
        if cls.auth != "oauth":
            blocks.extend(field_block(f) for f in cls.credential_fields)
            if not reconnecting:
                blocks.append({"type": "input", "block_id": NAME_BLOCK, "label": _plain("Connection name"),
                               "hint": _plain("To tell several connections of one platform apart."),
                               "element": {"type": "plain_text_input", "action_id": NAME_BLOCK, "max_length": 80,
                                           "initial_value": truncate(metadata.get("name") or cls.display_name, 80)}})
            view["submit"] = _plain("Save" if reconnecting else "Connect")
    if not options:  # no connector module installed: say so rather than show an empty select
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "No email platform connectors are installed on this instance."}}]
    view["blocks"] = blocks
    return view


def submitted_fields(values: dict[str, Any]) -> tuple[dict[str, str], str]:
    """(credentials by field name, connection name) from a view_submission's state."""
    credentials: dict[str, str] = {}
    for block_id, actions in values.items():
        if block_id.startswith(FIELD_PREFIX):
            state = actions.get(block_id) or {}
            value = state.get("value") if "value" in state else (state.get("selected_option") or {}).get("value")
            credentials[block_id.removeprefix(FIELD_PREFIX)] = (value or "").strip()
    name = (((values.get(NAME_BLOCK) or {}).get(NAME_BLOCK) or {}).get("value") or "").strip()
    return credentials, name
