"""Slack installations, bots and OAuth states for Bolt's stores (core.storage.slack); tokens encrypted."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SlackInstallation(Model):
    id = fields.BigIntField(primary_key=True)
    client_id = fields.CharField(max_length=64, null=True)
    app_id = fields.CharField(max_length=32, null=True)
    enterprise_id = fields.CharField(max_length=32, null=True)
    enterprise_name = fields.CharField(max_length=255, null=True)
    enterprise_url = fields.CharField(max_length=255, null=True)
    team_id = fields.CharField(max_length=32, null=True)
    team_name = fields.CharField(max_length=255, null=True)
    bot_id = fields.CharField(max_length=32, null=True)
    bot_user_id = fields.CharField(max_length=32, null=True)
    bot_scopes = fields.TextField(null=True)
    bot_token_expires_at = fields.DatetimeField(null=True)
    user_id = fields.CharField(max_length=32)
    user_scopes = fields.TextField(null=True)
    user_token_expires_at = fields.DatetimeField(null=True)
    incoming_webhook_channel = fields.CharField(max_length=255, null=True)
    incoming_webhook_channel_id = fields.CharField(max_length=32, null=True)
    incoming_webhook_configuration_url = fields.TextField(null=True)
    is_enterprise_install = fields.BooleanField(default=False)
    token_type = fields.CharField(max_length=32, null=True)
    secrets = fields.TextField()  # Fernet token: bot/user tokens, refresh tokens, incoming webhook URL
    installed_at = fields.DatetimeField()

    class Meta:
        table = "slack_installation"
        indexes = (("client_id", "enterprise_id", "team_id", "user_id", "installed_at"),)


class SlackBot(Model):
    id = fields.BigIntField(primary_key=True)
    client_id = fields.CharField(max_length=64, null=True)
    app_id = fields.CharField(max_length=32, null=True)
    enterprise_id = fields.CharField(max_length=32, null=True)
    enterprise_name = fields.CharField(max_length=255, null=True)
    team_id = fields.CharField(max_length=32, null=True)
    team_name = fields.CharField(max_length=255, null=True)
    bot_id = fields.CharField(max_length=32, null=True)
    bot_user_id = fields.CharField(max_length=32, null=True)
    bot_scopes = fields.TextField(null=True)
    bot_token_expires_at = fields.DatetimeField(null=True)
    is_enterprise_install = fields.BooleanField(default=False)
    secrets = fields.TextField()  # Fernet token: bot token and refresh token
    installed_at = fields.DatetimeField()

    class Meta:
        table = "slack_bot"
        indexes = (("client_id", "enterprise_id", "team_id", "installed_at"),)


class SlackOAuthState(Model):
    state = fields.CharField(primary_key=True, max_length=64)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "slack_oauth_state"
