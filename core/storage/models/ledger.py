"""The credit ledger: every grant, charge and refund as an entry; a balance is their sum."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class CreditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    workspace = fields.ForeignKeyField("models.Workspace", related_name="credit_entries", on_delete=fields.CASCADE)
    amount = fields.IntField()  # + grant/refund, - charge
    kind = fields.CharField(max_length=16)  # grant | charge | refund
    reason = fields.CharField(max_length=255, default="")
    key = fields.CharField(max_length=160, unique=True, null=True)  # idempotency: a retried entry is not written twice
    job_id = fields.CharField(max_length=32, null=True)
    actor = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "credit_entry"
        indexes = (("workspace_id", "created_at"),)
