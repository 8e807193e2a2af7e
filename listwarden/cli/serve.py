"""`listwarden serve`: uvicorn on the one ASGI app."""

from __future__ import annotations

import click
import uvicorn

from core.settings import get_settings


@click.command()
@click.option("--host", default=None, help="Bind address (default LISTWARDEN_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default LISTWARDEN_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run Listwarden: Slack, webhooks and the REST API on one port."""
    settings = get_settings()
    uvicorn.run(
        "listwarden.app:app_factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
    )
