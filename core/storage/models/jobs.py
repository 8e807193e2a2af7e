"""Jobs, their items, and the audit of every action applied to a platform."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Job(Model):
    id = fields.CharField(primary_key=True, max_length=32)  # "job_..."
    workspace = fields.ForeignKeyField("models.Workspace", related_name="jobs", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=32)  # verify_list | cleanup | bulk_file | (plug-ins)
    state = fields.CharField(max_length=24, default="queued", db_index=True)
    connection = fields.ForeignKeyField("models.Connection", related_name="jobs", null=True, on_delete=fields.SET_NULL)
    list_id = fields.CharField(max_length=255, null=True)
    list_name = fields.CharField(max_length=512, null=True)
    rules = fields.JSONField(null=True)  # the cleanup policy as it was when the job started; null: verify only
    params = fields.JSONField(null=True)  # kind-specific (a file's header and delimiter, ...)
    notify = fields.JSONField(null=True)  # opaque to the core: where a transport shows this job
    requester = fields.CharField(max_length=64, null=True)
    approver = fields.CharField(max_length=64, null=True)
    rejected_by = fields.CharField(max_length=64, null=True)
    reject_reason = fields.TextField(null=True)
    cancelled_by = fields.CharField(max_length=64, null=True)
    error = fields.TextField(null=True)  # one plain sentence
    paused_reason = fields.TextField(null=True)
    # progress
    estimated = fields.IntField(null=True)  # what the list said it held, before reading it
    total = fields.IntField(default=0)  # rows read so far (final once ingest_done)
    ingest_done = fields.BooleanField(default=False)
    unique = fields.IntField(default=0)  # distinct addresses among them
    processed = fields.IntField(default=0)  # distinct addresses verified
    charged = fields.IntField(default=0)
    charged_through = fields.IntField(default=0)  # pending items up to this seq are paid for (a chunk's charge moves it)
    refunded = fields.IntField(default=0)
    status_counts = fields.JSONField(default=dict)
    planned_counts = fields.JSONField(default=dict)  # "unsubscribe:invalid" -> n
    applied_counts = fields.JSONField(default=dict)  # action -> n
    failure_counts = fields.JSONField(default=dict)  # reason -> n
    # running
    lease_owner = fields.CharField(max_length=128, null=True)
    lease_until = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    kicked_at = fields.DatetimeField(null=True)
    # timestamps
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    started_at = fields.DatetimeField(null=True)
    verified_at = fields.DatetimeField(null=True)
    approved_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)  # approval deadline

    class Meta:
        table = "job"
        indexes = (("workspace_id", "created_at"),)


class JobItem(Model):
    """One input row: its address, result, planned and applied action. Written in bulk (core.jobs.items)."""

    id = fields.BigIntField(primary_key=True)
    job = fields.ForeignKeyField("models.Job", related_name="items", on_delete=fields.CASCADE)
    seq = fields.IntField()  # input position, from 1
    email = fields.TextField()
    address_key = fields.CharField(max_length=320)  # the dedupe key (case-folded, trimmed)
    contact_id = fields.CharField(max_length=255, null=True)
    row = fields.BinaryField(null=True)  # a bulk file's input row, CSV-encoded bytes exactly as read (any encoding)
    duplicate_of = fields.IntField(null=True)  # seq of the first row with this address
    stage = fields.CharField(max_length=12, default="pending")  # pending | verified | duplicate
    charged = fields.BooleanField(default=False)  # set when its result is recorded (until then: job.charged_through)
    refunded = fields.BooleanField(default=False)
    status = fields.CharField(max_length=16, null=True)
    result = fields.JSONField(null=True)
    planned_action = fields.CharField(max_length=16, null=True)  # keep | unsubscribe | delete
    plan_reason = fields.CharField(max_length=16, null=True)  # the category, "whitelist" or "blacklist"
    action_state = fields.CharField(max_length=12, null=True)  # sending | done | failed | reconciled
    action_key = fields.CharField(max_length=128, null=True)  # idempotency key of the platform write
    action_error = fields.TextField(null=True)
    applied_at = fields.DatetimeField(null=True)
    worker = fields.CharField(max_length=128, null=True)

    class Meta:
        table = "job_item"
        unique_together = (("job", "seq"),)
        # every index is rewritten on each item update: only those a query needs ((job_id, seq) is the unique one)
        indexes = (("job_id", "address_key"), ("job_id", "planned_action", "action_state"))


class ActionAudit(Model):
    """One contact changed in a platform: enough to say who, what, when, and to undo it."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=128, unique=True)  # the item's action idempotency key
    job_id = fields.CharField(max_length=32, null=True, db_index=True)
    workspace_id = fields.CharField(max_length=64)
    connection_id = fields.CharField(max_length=32)
    platform = fields.CharField(max_length=32)
    list_id = fields.CharField(max_length=255, null=True)
    contact_id = fields.CharField(max_length=255)
    email = fields.TextField()
    action = fields.CharField(max_length=16)  # unsubscribe | delete
    actor = fields.CharField(max_length=64, null=True)  # who approved it
    applied_at = fields.DatetimeField(auto_now_add=True)
    undone_at = fields.DatetimeField(null=True)
    undo_error = fields.TextField(null=True)

    class Meta:
        table = "action_audit"
