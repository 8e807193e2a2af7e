"""Listwarden's core: everything that is not a transport (Slack, webhooks, REST, CLI)."""
