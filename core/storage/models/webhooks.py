"""Webhook deliveries, written before the 2xx goes back (the durable inbox of issue 6)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WebhookDelivery(Model):
    id = fields.BigIntField(primary_key=True)
    connection_id = fields.CharField(max_length=32)
    platform = fields.CharField(max_length=32)
    dedupe_key = fields.CharField(max_length=160)  # the platform's event id, or a hash of the body
    method = fields.CharField(max_length=8, default="POST")
    url = fields.TextField(default="")
    headers = fields.JSONField(default=dict)
    query = fields.JSONField(default=dict)
    body = fields.BinaryField()
    state = fields.CharField(max_length=12, default="pending")  # pending | processing | done | failed
    attempts = fields.IntField(default=0)
    lease_until = fields.DatetimeField(null=True)
    error = fields.TextField(null=True)
    result = fields.JSONField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True)
    processed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_delivery"
        unique_together = (("connection_id", "dedupe_key"),)
        indexes = (("state", "id"),)
