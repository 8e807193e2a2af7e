"""A workspace (a Slack team, or "default" for an instance used only through the API) and its people."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Workspace(Model):
    id = fields.CharField(primary_key=True, max_length=64)  # Slack team id
    name = fields.CharField(max_length=255, default="")
    four_eyes = fields.BooleanField(default=True)  # a requester may not approve their own cleanup
    approver_group = fields.CharField(max_length=64, null=True)  # Slack user group whose members approve
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "workspace"


class WorkspaceMember(Model):
    """A role given inside Listwarden (Slack admins are admins without a row)."""

    id = fields.BigIntField(primary_key=True)
    workspace = fields.ForeignKeyField("models.Workspace", related_name="members", on_delete=fields.CASCADE)
    user_id = fields.CharField(max_length=64)
    role = fields.CharField(max_length=16)  # admin | approver | member
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "workspace_member"
        unique_together = (("workspace", "user_id"),)


class CleanupPolicy(Model):
    """The five categories with enabled and action: a workspace default, or one connection's own."""

    id = fields.BigIntField(primary_key=True)
    workspace = fields.ForeignKeyField("models.Workspace", related_name="policies", on_delete=fields.CASCADE)
    connection = fields.ForeignKeyField("models.Connection", related_name="policies", null=True, on_delete=fields.CASCADE)
    rules = fields.JSONField()  # {"invalid": {"enabled": true, "action": "unsubscribe"}, ...}
    updated_by = fields.CharField(max_length=64, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "cleanup_policy"
        unique_together = (("workspace", "connection"),)
