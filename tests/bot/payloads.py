"""Slack's request bodies, in the exact shapes Slack sends, and the signing of them.

Shapes follow Slack's documented payload examples: slash commands are form bodies, interactions
are a form body with one `payload` field of JSON, events are JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

SECRET = "test-signing-secret"
TEAM = {"id": "T0TEAM", "domain": "test"}
CHANNEL_ID = "C0CHAN"


def signed_headers(body: str, *, ts: int | None = None, secret: str = SECRET, content_type: str) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(ts), "x-slack-signature": signature, "content-type": content_type}


def slash_command(command: str, text: str, *, response_url: str, user: str = "U0ALICE", trigger_id: str = "trig-1") -> str:
    return urlencode({
        "token": "deprecated-verification-token", "team_id": TEAM["id"], "team_domain": TEAM["domain"],
        "channel_id": CHANNEL_ID, "channel_name": "marketing", "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "api_app_id": "A0APP", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id,
    })


def interaction(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]}


def block_actions(action: dict[str, Any], *, user: str = "U0ALICE", response_url: str | None = None,
                  message: dict[str, Any] | None = None, view: dict[str, Any] | None = None,
                  container: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {
        "type": "block_actions", "team": TEAM, "user": _user(user), "api_app_id": "A0APP",
        "token": "deprecated", "trigger_id": "trig-2", "is_enterprise_install": False, "enterprise": None,
        "actions": [{"action_ts": f"{time.time():.6f}", "block_id": action.get("block_id", "b"), **action}],
        "container": container or {"type": "message", "message_ts": (message or {}).get("ts", "1.1"),
                                   "channel_id": CHANNEL_ID, "is_ephemeral": False},
    }
    if message is not None:
        payload["message"] = message
        payload["channel"] = {"id": CHANNEL_ID, "name": "marketing"}
    if response_url:
        payload["response_url"] = response_url
    if view is not None:
        payload["view"] = view
    return interaction(payload)


def view_payload(view: dict[str, Any], *, values: dict[str, Any], view_id: str = "V00001") -> dict[str, Any]:
    """A view as Slack sends it back: what we opened plus id, hash, team and the full state."""
    return {"id": view_id, "team_id": TEAM["id"], "type": view.get("type", "modal"), "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "state": {"values": values}, "hash": "156772938.1827394", "title": view.get("title"),
            "clear_on_close": False, "notify_on_close": False, "close": view.get("close"), "submit": view.get("submit"),
            "previous_view_id": None, "root_view_id": view_id, "app_id": "A0APP", "external_id": "",
            "app_installed_team_id": TEAM["id"], "bot_id": "B0BOT"}


def view_submission(view: dict[str, Any], *, user: str = "U0ALICE") -> str:
    return interaction({"type": "view_submission", "team": TEAM, "user": _user(user), "api_app_id": "A0APP",
                        "token": "deprecated", "trigger_id": "trig-3", "view": view, "response_urls": [],
                        "is_enterprise_install": False, "enterprise": None})


def block_suggestion(action_id: str, block_id: str, value: str, *, view: dict[str, Any], user: str = "U0ALICE") -> str:
    return interaction({"type": "block_suggestion", "user": _user(user), "container": {"type": "view", "view_id": view["id"]},
                        "api_app_id": "A0APP", "token": "deprecated", "action_id": action_id, "block_id": block_id,
                        "value": value, "team": TEAM, "view": view, "enterprise": None, "is_enterprise_install": False})


def message_shortcut(callback_id: str, message: dict[str, Any], *, response_url: str, user: str = "U0ALICE") -> str:
    return interaction({"type": "message_action", "token": "deprecated", "action_ts": f"{time.time():.6f}",
                        "team": TEAM, "user": _user(user), "channel": {"id": CHANNEL_ID, "name": "marketing"},
                        "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
                        "trigger_id": "trig-4", "response_url": response_url, "message_ts": message["ts"],
                        "message": message})


def event(inner: dict[str, Any], *, event_id: str = "Ev0001") -> str:
    return json.dumps({"token": "deprecated", "team_id": TEAM["id"], "api_app_id": "A0APP", "event": inner,
                       "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
                       "authorizations": [{"enterprise_id": None, "team_id": TEAM["id"], "user_id": "U0BOT",
                                           "is_bot": True, "is_enterprise_install": False}],
                       "is_ext_shared_channel": False})
