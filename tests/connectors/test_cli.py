"""`listwarden connectors` as a user runs it: every platform, its connect form and what it can do."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from core.connectors import platforms
from listwarden.cli import main

SLUGS = {"mailchimp", "klaviyo", "hubspot", "brevo", "activecampaign", "mailerlite", "sendgrid", "convertkit"}


def run(*args: str):
    return CliRunner().invoke(main, ["connectors", *args])


def test_json_lists_every_platform_with_its_fields_and_capabilities():
    """--json holds each platform's slug, auth fields (label, secret, where to find it) and capabilities,
    exactly as the connector classes declare them."""
    result = run("--json")
    assert result.exit_code == 0, result.output
    listed = {item["slug"]: item for item in json.loads(result.output)}
    assert set(listed) == set(platforms()) and SLUGS <= set(listed)
    for slug, cls in platforms().items():
        item = listed[slug]
        assert item["name"] == cls.display_name
        assert [f["name"] for f in item["fields"]] == [f.name for f in cls.credential_fields]
        assert all(f["label"] and f["help"] and isinstance(f["secret"], bool) for f in item["fields"])
        assert item["capabilities"]["can_delete"] == cls.capabilities.can_delete
        assert item["capabilities"]["list_kinds"] == [str(k) for k in cls.capabilities.list_kinds]
    assert listed["convertkit"]["capabilities"]["can_delete"] is False and listed["convertkit"]["aliases"] == ["kit"]
    assert listed["brevo"]["aliases"] == ["sendinblue"]
    region = next(f for f in listed["sendgrid"]["fields"] if f["name"] == "region")
    assert [c["value"] for c in region["choices"]] == ["global", "eu"] and region["default"] == "global" and not region["secret"]
    assert listed["sendgrid"]["capabilities"]["polling"] and listed["sendgrid"]["capabilities"]["webhooks"] == "none"


def test_text_shows_where_to_find_each_key_and_whether_it_is_secret():
    result = run()
    assert result.exit_code == 0, result.output
    text = result.output
    for cls in platforms().values():
        assert f"{cls.display_name} ({cls.slug}" in text
    assert "API URL [api_url] (not secret; required)" in text  # ActiveCampaign
    assert "https://youraccount.api-us1.com" in text  # URLs are not broken across lines
    assert "Can: unsubscribe; cannot delete, resubscribe" in text  # Kit
    assert "Client-side limits: 10 requests at once" in text  # Mailchimp
    assert "Traceback" not in text


def test_one_platform_by_slug_or_alias_and_a_clear_sentence_for_an_unknown_one():
    result = run("sendinblue")
    assert result.exit_code == 0 and result.output.startswith("Brevo (brevo, also sendinblue)")
    assert "HubSpot" not in result.output
    result = run("mailgunn")
    assert result.exit_code == 2
    assert result.output.strip().startswith("Listwarden has no platform called 'mailgunn'") and "Traceback" not in result.output


def test_registered_as_a_subcommand():
    """The real command line finds it (listwarden/cli/__init__.py's SUBCOMMANDS)."""
    done = subprocess.run([sys.executable, "-m", "listwarden", "connectors", "mailchimp", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [item] = json.loads(done.stdout)
    assert item["slug"] == "mailchimp" and item["auth"] == "api_key_or_oauth"
