"""Name and description search that does not scan: trigram GIN indexes (PostgreSQL's
``pg_trgm``) on ``UPPER(name)`` and ``UPPER(description)`` — the expressions Django's
``icontains`` compares with ``LIKE`` — so ``?search=`` reads the index. PostgreSQL only:
the extension operation does nothing elsewhere and the indexes are created by SQL only on
PostgreSQL, so SQLite (``make run``) migrates and keeps its plain ``LIKE``. The indexes are
not in the model's Meta (SQLite has no GIN)."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "task_name_trgm_idx": "name",
    "task_description_trgm_idx": "description",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON tasks_task "
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):
    dependencies = [("tasks", "0013_progress_task_status_index")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(create, drop, elidable=False),
    ]
