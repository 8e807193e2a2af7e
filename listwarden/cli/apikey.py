"""`listwarden apikey`: create (printed once), list and revoke REST API keys.

Keys live in the database as SHA-256 digests (core/apikeys.py): the plain key is printed by
`create` and never again. An admin can also create one from the App Home in Slack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _run(work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(services)` on the configured database (migrated first in the embedded default, as `serve` does)."""
    from listwarden.cli._db import opened_services

    async def main() -> T:
        async with opened_services() as services:
            return await work(services)

    from core.apikeys import ApiKeyError

    try:
        return asyncio.run(main())
    except ApiKeyError as err:
        raise click.ClickException(str(err)) from None


@click.group()
def apikey() -> None:
    """Manage REST API keys (Authorization: Bearer KEY)."""


@apikey.command("create")
@click.option("--name", required=True, help="What the key is for, e.g. 'CRM sync'.")
@click.option("--workspace", default="default", show_default=True,
              help="Workspace (Slack team id) the key acts for; 'default' on an instance used only through the API.")
@click.option("--approver", is_flag=True, help="The key may approve cleanups (POST /v1/jobs/{id}/approve).")
def create(name: str, workspace: str, approver: bool) -> None:
    """Create a key and print it once: only its hash is stored."""
    plain, key = _run(lambda s: s.api_keys.create(workspace, name=name, roles={"approver"} if approver else (),
                                                  created_by="cli"))
    roles = f", roles: {', '.join(sorted(key.roles))}" if key.roles else ""
    click.echo(f"Created API key {key.id} ({key.name}, workspace {key.workspace_id}{roles}). "
               "Copy it now; it will not be shown again:", err=True)
    click.echo(plain)


@apikey.command("list")
@click.option("--workspace", default=None, help="Only this workspace's keys.")
def list_keys(workspace: str | None) -> None:
    """Every key with its id, workspace, roles and state (never the key itself)."""
    keys = _run(lambda s: s.api_keys.list(workspace))
    if not keys:
        click.echo("No API keys yet: `listwarden apikey create --name NAME`.")
        return
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"last used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
        roles = ",".join(sorted(key.roles)) or "-"
        click.echo(f"{key.id}\t{key.workspace_id}\t{roles}\t{state}\t{used}\t{key.name}")


@apikey.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by its id (key_...); it stops working at once."""
    if not _run(lambda s: s.api_keys.revoke(key_id)):
        raise click.ClickException(f"No active key with id {key_id}.")
    click.echo(f"Revoked {key_id}.")
