# Fills the progress columns of existing rows: every run's project from its task; a done
# task's finished_at from the completion of its last completed run (the definition progress
# used before the column), its last change when no run completed (every stage skipped).
# Plain SQL, the same on SQLite and PostgreSQL; one statement per table.

from django.db import migrations

RUN_PROJECT = """
UPDATE tasks_stagerun SET project_id = (
    SELECT t.project_id FROM tasks_task t WHERE t.id = tasks_stagerun.task_id
)
"""

TASK_FINISHED = """
UPDATE tasks_task SET finished_at = CASE
    WHEN status IN ('review_passed', 'data_submitted') THEN COALESCE(
        (SELECT MAX(r.completed_at) FROM tasks_stagerun r
         WHERE r.task_id = tasks_task.id AND r.status = 'completed'),
        updated_at
    )
END
"""


def backfill(connection) -> None:
    """Set ``StageRun.project`` and ``Task.finished_at`` of every row (idempotent)."""
    with connection.cursor() as cursor:
        cursor.execute(RUN_PROJECT)
        cursor.execute(TASK_FINISHED)


def forwards(apps, schema_editor) -> None:
    backfill(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0010_progress_columns")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
