"""The Slack transport: a Bolt app over the core (slash commands, modals, buttons, App Home).

Layout: `asgi.install` mounts it (routes /slack/events, /slack/install, /slack/oauth_redirect; 503
with an explanation when Slack is not configured); `app` builds the Bolt app for the configured
mode; `listeners/` hold one module per command or surface, each acking at once and continuing in a
tracked task (`acking`); `blocks/` build every message and view, checked against Block Kit's limits
(`blocks.limits`). State and work are the core's (`services`: connections, workspaces, policies,
credits, jobs); `job_messages` keeps a job's channel message in step with the core's job events,
throttled by `progress`.
"""
