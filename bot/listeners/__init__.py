"""Bolt listeners, one module per command or surface; each exposes `register(app, services)`."""
