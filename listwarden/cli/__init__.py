"""The `listwarden` command. Each sub-command lives in its own module and registers here."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = [
    "listwarden.cli.serve:serve",
    "listwarden.cli.config:config",
    "listwarden.cli.verify:verify",
    "listwarden.cli.db:db",
    "listwarden.cli.worker:worker",
    "listwarden.cli.jobs:jobs",
    "listwarden.cli.credits:credits",
    "listwarden.cli.apikey:apikey",
    "listwarden.cli.connectors:connectors",
    "listwarden.cli.webhooks:webhooks",
]


class _LazyGroup(click.Group):
    """Imports a sub-command's module only when that command runs: `listwarden verify` should not
    pay for uvicorn, the ORM or Slack at start-up."""

    def __init__(self, *args: object, specs: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._specs = {spec.partition(":")[2].replace("_", "-"): spec for spec in specs}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._specs)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = self._specs.get(name)
        if spec is None:
            return None
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, specs=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="listwarden")
def main() -> None:
    """Listwarden: email-list hygiene for your own servers, run from Slack, webhooks or a REST API."""
