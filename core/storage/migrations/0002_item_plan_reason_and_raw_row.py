from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    """A job item's plan reason; its input row becomes raw bytes (JSON text cannot carry the undecodable
    bytes a CSV may hold, and PostgreSQL rejects them). The JSON column held nothing yet, so it is
    dropped and re-added rather than cast (PostgreSQL has no jsonb-to-bytea cast)."""

    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.RemoveField(model_name='JobItem', name='row'),
        ops.AddField(model_name='JobItem', name='row', field=fields.BinaryField(null=True)),
        ops.AddField(model_name='JobItem', name='plan_reason', field=fields.CharField(null=True, max_length=16)),
    ]
