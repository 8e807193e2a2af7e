"""The Slack transport: a Bolt app over the core (slash commands, modals, buttons, App Home)."""
