"""The stage runs' composite key of 0025, (task_id, project_id) → the task's (id,
project_id), goes back to the task's own key on task_id (project_id keeps none: it is a copy
of the task's). The check of the composite key, planned while the statistics said the task
table was empty (a new database, a table just emptied), read the plain project index and
filtered every task of the project by id — each check grew with the project (a 20,000-task
bulk creation: 0.5 ms of PostgreSQL a task). The single-column key finds the task by its
primary key whatever the statistics say. The unique (id, project) it needed goes too."""

import django.db.models.deletion
from django.db import migrations, models

FK = "stagerun_task_project_fk"


def drop_key(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE tasks_stagerun DROP CONSTRAINT IF EXISTS {FK}")


def add_key(apps, schema_editor):  # as 0025 made it
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE tasks_stagerun ADD CONSTRAINT {FK} FOREIGN KEY (task_id, project_id) "
        "REFERENCES tasks_task (id, project_id) DEFERRABLE INITIALLY DEFERRED NOT VALID"
    )
    schema_editor.execute(f"ALTER TABLE tasks_stagerun VALIDATE CONSTRAINT {FK}")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0025_stagerun_task_project_key"),
    ]

    operations = [
        migrations.RunPython(drop_key, add_key, elidable=False),
        migrations.RemoveConstraint(
            model_name="task",
            name="task_id_project_key",
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
    ]
