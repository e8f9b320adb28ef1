"""A job's output column becomes `json` on PostgreSQL (see inference.fields.OutputJSONField).

A database migrated before the field said so keeps `jsonb` until this runs; one created since
(0003's AlterField already asks the field for its type) has `json` and is left alone.
"""

from django.db import DatabaseError, migrations, transaction


def _set_type(apps, schema_editor, wanted: str) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    table = apps.get_model("inference", "Job")._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'output_json'",
            [table],
        )
        (current,) = cursor.fetchone()
    if current == wanted:
        return
    column, quoted = schema_editor.quote_name("output_json"), schema_editor.quote_name(table)
    schema_editor.execute(f"ALTER TABLE {quoted} ALTER COLUMN {column} TYPE {wanted} USING {column}::{wanted}")
    # A new type drops the column's compression setting: lz4 again, as 0003 set it (pglz took
    # ~70 ms to store 256 vectors as json, lz4 ~8 ms).
    if connection.pg_version >= 140000:
        try:
            with transaction.atomic(using=connection.alias):
                schema_editor.execute(f"ALTER TABLE {quoted} ALTER COLUMN {column} SET COMPRESSION lz4")
        except DatabaseError:  # lz4 is a build option; without it pglz stays
            pass


def to_json(apps, schema_editor):
    _set_type(apps, schema_editor, "json")


def to_jsonb(apps, schema_editor):
    _set_type(apps, schema_editor, "jsonb")


class Migration(migrations.Migration):
    dependencies = [
        ("inference", "0004_job_owner_active_index"),
    ]

    operations = [migrations.RunPython(to_json, to_jsonb)]
