"""`listwarden webhooks`: verify-first set-up from the command line.

    listwarden webhooks setup CONNECTION_ID       # the URL to paste, whether it is registered or polled, the platform's steps
    listwarden webhooks set-secret CONNECTION_ID  # the platform's signing secret (HubSpot: the app's client secret), read hidden
    listwarden webhooks sync                      # register/remove webhooks now instead of within LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS
    listwarden webhooks status                    # deliveries in the inbox by state
    listwarden webhooks channel CONNECTION_ID C0123ABCD  # the Slack channel for the connection's digest
    listwarden webhooks work                      # process deliveries (and poll, register, send digests) in a process of its own
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _run(work: Callable[[Any, Any], Awaitable[T]]) -> T:
    """`work(services, registrar)` on the configured database."""
    from core.settings import get_settings
    from core.verify_first.registration import Registrar
    from listwarden.cli._db import opened_services

    async def main() -> T:
        from core.connectors.http import close_shared_client

        async with opened_services() as services:
            try:
                return await work(services, Registrar(services, get_settings()))
            finally:
                await close_shared_client()

    return asyncio.run(main())


async def _connection(services, connection_id: str):
    view = await services.connections.find(connection_id)
    if view is None:
        raise click.ClickException(f"No connection {connection_id}.")
    return view


@click.group()
def webhooks() -> None:
    """Verify-first webhooks: set-up, secrets, registration, the inbox."""


@webhooks.command("setup")
@click.argument("connection_id")
def setup(connection_id: str) -> None:
    """How a connection's new subscribers reach Listwarden, and what to paste where if anything."""

    async def work(services, registrar):
        view = await _connection(services, connection_id)
        return view, await registrar.setup(view)

    view, info = _run(work)
    click.echo(f"{view.name} ({view.platform}, {view.id}): verify-first {'on' if view.settings.verify_first else 'off'}.")
    if info.polled or not info.url:
        click.echo("This platform sends no new-subscriber webhook: Listwarden asks it for new contacts every "
                   "LISTWARDEN_POLL_SECONDS. Nothing to set up.")
        return
    if info.automatic:
        state = "registered" if info.registered else "not registered yet (it is, within LISTWARDEN_VERIFY_FIRST_SYNC_SECONDS of verify-first being on)"
        click.echo(f"Listwarden registers the webhook with the platform itself: {state}.")
    click.echo(f"Webhook URL: {info.url}")
    if info.steps:
        click.echo(f"To add it by hand: {info.steps}")
    if info.needs_secret:
        click.echo(f"Then give Listwarden the signing secret: listwarden webhooks set-secret {view.id}")


@webhooks.command("set-secret")
@click.argument("connection_id")
@click.option("--secret", prompt="Signing secret", hide_input=True, help="Read hidden from the terminal when not given.")
def set_secret(connection_id: str, secret: str) -> None:
    """Store the platform's webhook signing secret for a connection set up by hand (sealed at rest)."""

    async def work(services, registrar):
        view = await _connection(services, connection_id)
        await registrar.set_signing_secret(view.workspace_id, view.id, secret)
        return view

    try:
        view = _run(work)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Stored the signing secret of {view.name}; its deliveries are checked against it from now on.")


@webhooks.command("sync")
def sync() -> None:
    """Register webhooks for connections with verify-first on, and remove those of connections turned off or disconnected."""

    async def work(services, registrar):
        await registrar.sync_once()
        return await services.connections.verify_first_connections()

    for view in _run(work):
        click.echo(f"{view.id}\t{view.platform}\t{'registered' if view.webhook_id else 'no webhook'}\t{view.name}")


@webhooks.command("status")
def status() -> None:
    """How many deliveries are pending, being processed, done and failed."""

    async def work(services, registrar):
        return {state: await services.deliveries.count(state) for state in ("pending", "processing", "done", "failed")}

    for state, count in _run(work).items():
        click.echo(f"{state}\t{count:,}")


@webhooks.command("work")
def work() -> None:
    """Process verify-first deliveries here, beside `listwarden serve` processes that only accept them.

    Run the web processes with LISTWARDEN_WEBHOOK_PROCESSOR=false and one or more of these: the
    receivers then answer without sharing their event loop with verification and cleanup.
    """
    import signal

    from core.settings import get_settings
    from core.verify_first.service import VerifyFirst
    from listwarden.cli._db import opened_services

    async def main() -> None:
        from core.connectors.http import close_shared_client

        async with opened_services() as services:
            verify_first = VerifyFirst(services, get_settings())
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await verify_first.start()
            click.echo("Processing verify-first deliveries; stop with Ctrl-C or SIGTERM.", err=True)
            try:
                await stop.wait()
            finally:
                await verify_first.stop()
                await services.job_system.engine.close()
                await close_shared_client()

    asyncio.run(main())


@webhooks.command("channel")
@click.argument("connection_id")
@click.argument("channel", required=False)
def channel(connection_id: str, channel: str | None) -> None:
    """The Slack channel (its id, e.g. C0123ABCD) for a connection's verify-first digest; none given: no digest."""

    async def work(services, registrar):
        view = await _connection(services, connection_id)
        return await services.connections.set_notice_channel(view.workspace_id, view.id, channel)

    view = _run(work)
    if view.notice_channel:
        click.echo(f"{view.name}: digests go to {view.notice_channel} (invite the Listwarden app to that channel).")
    else:
        click.echo(f"{view.name}: no digest.")
