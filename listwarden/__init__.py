"""Composition root: builds the one ASGI app and the `listwarden` command from core and transports."""
