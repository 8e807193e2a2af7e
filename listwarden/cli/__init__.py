"""The `listwarden` command. Each sub-command lives in its own module and registers here."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = [
    "listwarden.cli.serve:serve",
    "listwarden.cli.config:config",
    "listwarden.cli.verify:verify",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="listwarden")
def main() -> None:
    """Listwarden: email-list hygiene for your own servers, run from Slack, webhooks or a REST API."""


for _spec in SUBCOMMANDS:
    _module, _, _attr = _spec.partition(":")
    main.add_command(getattr(importlib.import_module(_module), _attr))
