from tortoise import fields, migrations
from tortoise.migrations import operations as ops

STAGE_INDEX = "idx_job_item_job_id_b19bd1"  # tortoise's name for the (job_id, stage, seq) index


class _RemoveIndexIfPresent(ops.RemoveIndex):
    """RemoveIndex that tolerates the index being gone already: on SQLite, 0002's table rebuild
    (tortoise's `_remake_table`) dropped every index of job_item."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None:
            await state_editor._run_sql(f'DROP INDEX IF EXISTS "{STAGE_INDEX}"')


class Migration(migrations.Migration):
    """A job's charge mark (the pending items up to it are paid for), so charging a chunk is one
    write to the job instead of one per item; one index less to rewrite on every item update; and
    job_item's other indexes put back on SQLite, where 0002's table rebuild lost them."""

    dependencies = [('models', '0002_item_plan_reason_and_raw_row')]

    initial = False

    operations = [
        ops.AddField(model_name='Job', name='charged_through', field=fields.IntField(default=0)),
        _RemoveIndexIfPresent(model_name='JobItem', name=None, fields=['job_id', 'stage', 'seq']),
        ops.RunSQL([  # no-ops where they exist (PostgreSQL never lost them)
            'CREATE UNIQUE INDEX IF NOT EXISTS "uid_job_item_job_id_fa5001" ON "job_item" ("job_id", "seq")',
            'CREATE INDEX IF NOT EXISTS "idx_job_item_job_id_0a3716" ON "job_item" ("job_id", "address_key")',
            'CREATE INDEX IF NOT EXISTS "idx_job_item_job_id_5d4d17" ON "job_item" ("job_id", "planned_action", "action_state")',
        ]),
    ]
