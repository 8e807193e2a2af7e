"""What the REST API keeps: hashed keys, validation results by contextId, Idempotency-Key replays."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ApiKey(Model):
    id = fields.CharField(primary_key=True, max_length=32)  # "key_..."
    workspace = fields.ForeignKeyField("models.Workspace", related_name="api_keys", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=255)
    digest = fields.CharField(max_length=64, unique=True)  # SHA-256 hex of the key; the key itself is never stored
    roles = fields.JSONField(default=list)  # ["approver"]
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class ValidationResult(Model):
    context_id = fields.CharField(primary_key=True, max_length=40)  # "ctx_..."
    workspace_id = fields.CharField(max_length=64)
    email = fields.TextField()
    payload = fields.JSONField()  # the item exactly as the API answered it
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "validation_result"


class IdempotencyRecord(Model):
    """A first answer to replay (Idempotency-Key), or a claim that something was seen (Slack event ids)."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=128)
    key = fields.CharField(max_length=255)
    status = fields.IntField(null=True)
    body = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "idempotency_record"
        unique_together = (("scope", "key"),)
