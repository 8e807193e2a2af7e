"""`listwarden connectors`: every email platform Listwarden connects to, its connect form and what it can do.

The text comes straight from each connector's class attributes (`credential_fields`,
`capabilities`, `webhook_steps`), the same schema Slack and the REST API render their forms
from, so this listing cannot drift from what they show.
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import click

from core.connectors import ALIASES, get_platform, platforms
from core.connectors.base import Connector
from core.connectors.http import as_limits

AUTH = {"api_key": "API key", "oauth": "OAuth sign-in", "api_key_or_oauth": "API key or OAuth sign-in"}
WEBHOOKS = {
    "signed": "signed by the platform",
    "token": "unsigned; a secret token we give the platform authenticates it",
    "none": "none",
}


UNITS = ((3600.0, "hour"), (60.0, "minute"), (1.0, "second"))


def _window(seconds: float) -> str:
    for size, unit in UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"a {unit}" if count == 1 else f"{count} {unit}s"
    return f"{seconds:g} seconds"


def _rate(connector: type[Connector]) -> list[str]:
    """The client-side limits, in words: "10 a second", "10 requests at once", "stricter on some endpoints"."""
    out = [f"{limit.requests} per {_window(limit.per_seconds).removeprefix('a ')}" for limit in as_limits(connector.rate_limit)]
    if connector.max_in_flight:
        out.append(f"{connector.max_in_flight} requests at once")
    if connector.endpoint_limits:
        out.append("stricter on some endpoints")
    return out


def describe(connector: type[Connector]) -> dict[str, Any]:
    """One platform as plain data (the --json output)."""
    caps = connector.capabilities
    return {
        "slug": connector.slug,
        "name": connector.display_name,
        "aliases": sorted(alias for alias, slug in ALIASES.items() if slug == connector.slug),
        "auth": connector.auth,
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "help": f.help,
                "secret": f.secret,
                "required": f.required,
                "placeholder": f.placeholder,
                "choices": [{"value": value, "label": label} for value, label in f.choices],
                "default": f.default,
            }
            for f in connector.credential_fields
        ],
        "capabilities": {
            "list_kinds": [str(kind) for kind in caps.list_kinds],
            "can_unsubscribe": caps.can_unsubscribe,
            "can_delete": caps.can_delete,
            "can_resubscribe": caps.can_resubscribe,
            "webhooks": caps.webhooks,
            "webhook_registration": caps.webhook_registration,
            "polling": caps.polling,
        },
        "webhook_steps": connector.webhook_steps or None,
        "rate_limits": _rate(connector),
    }


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False)


def render(connector: type[Connector]) -> str:
    """One platform as text for a terminal."""
    info = describe(connector)
    caps = info["capabilities"]
    aliases = f", also {', '.join(info['aliases'])}" if info["aliases"] else ""
    lines = [f"{info['name']} ({info['slug']}{aliases}): {AUTH.get(info['auth'], info['auth'])}"]
    lines.append(f"  Lists: {', '.join(caps['list_kinds'])}")
    can = [name for name, ok in (("unsubscribe", caps["can_unsubscribe"]), ("delete", caps["can_delete"]),
                                 ("resubscribe (undo)", caps["can_resubscribe"])) if ok]
    cannot = [name for name, ok in (("unsubscribe", caps["can_unsubscribe"]), ("delete", caps["can_delete"]),
                                    ("resubscribe", caps["can_resubscribe"])) if not ok]
    lines.append(f"  Can: {', '.join(can) or 'read only'}" + (f"; cannot {', '.join(cannot)}" if cannot else ""))
    hook = WEBHOOKS[caps["webhooks"]]
    if caps["webhooks"] != "none":
        hook += "; Listwarden registers it" if caps["webhook_registration"] else "; you paste the URL in the platform"
    if caps["polling"]:
        hook += "; new contacts can also be polled" if caps["webhooks"] != "none" else "; new contacts are polled instead"
    lines.append(f"  New-subscriber webhook: {hook}")
    if info["rate_limits"]:
        lines.append(f"  Client-side limits: {', '.join(info['rate_limits'])}")
    lines.append("  Connect with:")
    for f in info["fields"]:
        flags = ["secret" if f["secret"] else "not secret", "required" if f["required"] else "optional"]
        if f["choices"]:
            flags.append("one of " + ", ".join(c["value"] for c in f["choices"]))
        if f["default"]:
            flags.append(f"default {f['default']}")
        lines.append(f"    {f['label']} [{f['name']}] ({'; '.join(flags)})")
        lines.append(_wrap(f["help"], "      "))
    if info["webhook_steps"]:
        lines.append("  Registering the webhook by hand:")
        lines.append(_wrap(info["webhook_steps"], "    "))
    return "\n".join(lines)


@click.command()
@click.argument("platform", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the platforms as JSON.")
def connectors(platform: str | None, as_json: bool) -> None:
    """List the email platforms Listwarden connects to, with their auth fields and capabilities.

    PLATFORM (a slug such as mailchimp, or an alias such as sendinblue) shows just that one.
    """
    if platform:
        try:
            chosen = [get_platform(platform.strip().lower())]
        except KeyError:
            known = ", ".join(platforms())
            click.echo(f"Listwarden has no platform called {platform!r}; choose one of: {known}.", err=True)
            sys.exit(2)
    else:
        chosen = list(platforms().values())
    if as_json:
        click.echo(json.dumps([describe(c) for c in chosen], indent=2))
        return
    click.echo("\n\n".join(render(c) for c in chosen))
