# Indexes that another index's leading columns already cover (issue 15, creation speed): every
# created task, stage run and event paid for the extra copy. A btree on (a, b, ...) answers every
# lookup on a, so the foreign keys keep an index each through:
#   tasks_task (project, status)  -> task_list_status_idx / task_status_progress_idx
#   tasks_stagerun (task_id)      -> stagerun_unique_replica (task_id, stage_key, replica)
#   tasks_stagerun (assignee_id)  -> (assignee_id, status)
#   tasks_taskevent (task_id)     -> (task_id, kind)
# The foreign keys are altered in the state only: the database drops the indexes and keeps its
# constraints (Django's AlterField would drop and re-add, and so re-check, each constraint).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = {  # index: (table, column)
    "tasks_stagerun_assignee_id_d1dc3ee6": ("tasks_stagerun", "assignee_id"),
    "tasks_stagerun_task_id_ef8509bf": ("tasks_stagerun", "task_id"),
    "tasks_taskevent_task_id_bfe419b4": ("tasks_taskevent", "task_id"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0021_task_live_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="task",
            name="tasks_task_project_b78682_idx",
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"',
                    reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")',
                )
                for index, (table, column) in DROPPED.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="stagerun",
                    name="assignee",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="stage_runs",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="stagerun",
                    name="task",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="tasks.task",
                    ),
                ),
                migrations.AlterField(
                    model_name="taskevent",
                    name="task",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="tasks.task",
                    ),
                ),
            ],
        ),
    ]
