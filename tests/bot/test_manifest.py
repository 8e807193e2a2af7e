"""manifest.yml imports as-is: it validates against Slack's published manifest schema and declares what the bot serves."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from bot.app import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "slack" / "manifest.schema.json"


def load_manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def test_manifest_has_no_schema_errors() -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(load_manifest())]
    assert errors == []


def test_schema_check_catches_a_broken_manifest() -> None:
    """The validation above can fail: a command without its slash is rejected."""
    manifest = load_manifest()
    manifest["features"]["slash_commands"][0]["command"] = "verify"
    schema = json.loads(SCHEMA.read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(manifest))


def test_manifest_declares_commands_events_interactivity_and_redirect() -> None:
    manifest = load_manifest()
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/verify", "/clean-list", "/listwarden"}
    assert all(c["url"].endswith("/slack/events") for c in manifest["features"]["slash_commands"])
    settings = manifest["settings"]
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["message_menu_options_url"].endswith("/slack/events")  # external selects
    assert manifest["oauth_config"]["redirect_urls"] == ["https://listwarden.example.com/slack/oauth_redirect"]
    assert manifest["features"]["shortcuts"][0]["callback_id"] == "verify_file"


def test_manifest_scopes_are_the_ones_the_oauth_install_requests() -> None:
    """One list of scopes: what the manifest grants is exactly what /slack/install asks for, and no more."""
    assert load_manifest()["oauth_config"]["scopes"]["bot"] == BOT_SCOPES
