"""Rows are inserted unsealed: a new primary key `id` (insertion order), `sequence`, `prev_hash`
and `hash` empty until the sealer fills them, `xid` (the writing transaction), and occurred_at
from the database's clock by default.

Rows that exist already are sealed: they keep their sequence and hashes, and get id = sequence,
so the console's insertion order stays the chain order for them.
"""

import django.db.models.functions.datetime
from django.db import migrations, models


def ids_follow_sequence(apps, schema_editor):
    table = "audit_auditevent"
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor == "postgresql":
            # The migration runs as the table owner; the append-only trigger is off for this
            # one statement, inside the migration's transaction.
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update")
            cursor.execute(f"UPDATE {table} SET id = sequence")
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_update")
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"GREATEST((SELECT max(id) FROM {table}), 1))"
            )
        else:
            cursor.execute(f"UPDATE {table} SET id = sequence")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_triggers"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditevent",
            options={
                "ordering": [models.OrderBy(models.F("sequence"), descending=True, nulls_first=True)]
            },
        ),
        # In two steps: PostgreSQL cannot drop NOT NULL while the column is the primary key.
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(unique=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="id",
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
        migrations.RunPython(ids_follow_sequence, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.PositiveBigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="xid",
            field=models.PositiveBigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="occurred_at",
            field=models.DateTimeField(
                db_default=django.db.models.functions.datetime.Now(), db_index=True
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("sequence__isnull", True)),
                fields=["xid", "id"],
                name="audit_unsealed",
            ),
        ),
    ]
