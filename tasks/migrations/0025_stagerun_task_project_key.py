"""A stage run's task and project are checked by one foreign key, (task_id, project_id) →
the task's (id, project_id), instead of one key each: one check a run at commit instead of
two, and the database now knows the run's project is its task's (it only trusted the
creating code). The completions index holds completed runs only (its readers all ask for
completed_at from a time on); a new task's runs are no longer written into it.

The composite key is PostgreSQL's (as Django's keys, deferred to the commit); SQLite, the
development database, keeps no key for the two columns."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FK = "stagerun_task_project_fk"


def add_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # NOT VALID then VALIDATE: the existing runs are checked without blocking writes.
    schema_editor.execute(
        f"ALTER TABLE tasks_stagerun ADD CONSTRAINT {FK} FOREIGN KEY (task_id, project_id) "
        "REFERENCES tasks_task (id, project_id) DEFERRABLE INITIALLY DEFERRED NOT VALID"
    )
    schema_editor.execute(f"ALTER TABLE tasks_stagerun VALIDATE CONSTRAINT {FK}")


def drop_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE tasks_stagerun DROP CONSTRAINT IF EXISTS {FK}")


class Migration(migrations.Migration):
    dependencies = [
        ("blueprints", "0002_default_blueprints"),
        ("projects", "0009_dataset_files_version"),
        ("tasks", "0024_taskdeletion"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="stagerun",
            name="stagerun_project_done_idx",
        ),
        migrations.AddIndex(
            model_name="stagerun",
            index=models.Index(
                condition=models.Q(("completed_at__isnull", False)),
                fields=[
                    "project",
                    "completed_at",
                    "kind",
                    "status",
                    "stage_key",
                    "assignee",
                    "active_seconds",
                    "started_at",
                ],
                name="stagerun_project_done_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="task",
            constraint=models.UniqueConstraint(
                fields=("id", "project"), name="task_id_project_key"
            ),
        ),
        migrations.AlterField(
            model_name="stagerun",
            name="project",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AlterField(
            model_name="stagerun",
            name="task",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="runs",
                to="tasks.task",
            ),
        ),
        migrations.RunPython(add_key, drop_key, elidable=False),
    ]
