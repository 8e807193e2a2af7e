"""A connection to one account on an email platform, its synced lists and its keyword rules."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Connection(Model):
    id = fields.CharField(primary_key=True, max_length=32)  # "cnx_..."
    workspace = fields.ForeignKeyField("models.Workspace", related_name="connections", on_delete=fields.CASCADE)
    platform = fields.CharField(max_length=32)  # connector slug
    name = fields.CharField(max_length=255)
    status = fields.CharField(max_length=16, default="active")  # active | disconnected
    credentials = fields.TextField()  # Fernet token of the JSON credentials; never decrypted outside core.connections
    base_url = fields.CharField(max_length=512, null=True)  # override: an emulator, a region
    account_id = fields.CharField(max_length=255, null=True)
    settings = fields.JSONField()  # {"verify_first", "aggressiveness", "checks"} as in seed 001
    auto_floss_enabled = fields.BooleanField(default=True)
    notice_channel = fields.CharField(max_length=64, null=True)  # Slack channel for verify-first notices
    webhook_secrets = fields.TextField(null=True)  # Fernet token: url_token / signing_secret
    webhook_id = fields.CharField(max_length=255, null=True)  # the platform's id for our registered webhook
    poll_cursor = fields.DatetimeField(null=True)  # polling fallback's high-water mark
    last_error = fields.TextField(null=True)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_synced_at = fields.DatetimeField(null=True)

    class Meta:
        table = "connection"
        indexes = (("workspace_id", "platform"),)

    def __str__(self) -> str:  # tortoise's default shows the pk only; say so explicitly (never credentials)
        return f"Connection {self.pk}"


class SyncedList(Model):
    id = fields.BigIntField(primary_key=True)
    connection = fields.ForeignKeyField("models.Connection", related_name="lists", on_delete=fields.CASCADE)
    list_id = fields.CharField(max_length=255)  # the platform's id
    name = fields.CharField(max_length=512)
    kind = fields.CharField(max_length=16)
    subscriber_count = fields.IntField(null=True)
    position = fields.IntField(default=0)  # the platform's order
    synced_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "synced_list"
        unique_together = (("connection", "list_id"),)


class KeywordRule(Model):
    id = fields.CharField(primary_key=True, max_length=32)  # "kw_..."
    connection = fields.ForeignKeyField("models.Connection", related_name="keyword_rules", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)  # whitelist | blacklist
    keyword = fields.CharField(max_length=255)
    folded = fields.CharField(max_length=255)  # casefolded, for matching and uniqueness
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "keyword_rule"
        unique_together = (("connection", "kind", "folded"),)


class PlatformOAuthState(Model):
    """The `state` of a Mailchimp/HubSpot authorize round trip: single use, short-lived."""

    state = fields.CharField(primary_key=True, max_length=64)
    platform = fields.CharField(max_length=32)
    workspace_id = fields.CharField(max_length=64)
    user_id = fields.CharField(max_length=64, null=True)
    data = fields.JSONField(null=True)  # e.g. the connection name, a reconnect target
    expires_at = fields.DatetimeField()

    class Meta:
        table = "platform_oauth_state"
