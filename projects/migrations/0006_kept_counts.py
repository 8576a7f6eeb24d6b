"""Kept counts for the dashboards (issue 15): ``projects_taskcount`` and ``projects_runcount``
hold changes of the task counts per (project, status, blueprint version) and of the stage-run
counts per (project, stage, kind, status); PostgreSQL triggers on ``tasks_task`` and
``tasks_stagerun`` append them in the transaction of the change, whatever wrote it (the
services, a bulk ``UPDATE``, ``COPY``). Statement-level triggers with transition tables: one
grouped ``INSERT`` per statement, never a row lock (rows are only appended, so concurrent
writers never wait for each other; ``projects.counts.compact`` folds them). A task counts
while ``deleted_at`` is null (a soft delete takes it out, the purge's DELETE of a deleted
task does not take it out twice). A run counts until it is
deleted: deleting tasks (``tasks.services.deletion``) deletes their runs in the transaction
that hides the tasks.

PostgreSQL only (SQLite migrates the tables and keeps them empty; its dashboards count the
tasks). The counts of existing tasks are computed here once.
"""

import django.db.models.deletion
from django.db import migrations, models

TASK_KEY = "project_id, status, blueprint_id"
RUN_KEY = "project_id, stage_key, kind, status"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION stagecraft_task_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_taskcount ({TASK_KEY}, n)
  SELECT {TASK_KEY}, count(*) FROM new_rows WHERE deleted_at IS NULL GROUP BY {TASK_KEY};
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_task_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_taskcount ({TASK_KEY}, n)
  SELECT {TASK_KEY}, -count(*) FROM old_rows WHERE deleted_at IS NULL GROUP BY {TASK_KEY};
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_task_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_taskcount ({TASK_KEY}, n)
  SELECT {TASK_KEY}, sum(n) FROM (
    SELECT {TASK_KEY}, -1 AS n FROM old_rows WHERE deleted_at IS NULL
    UNION ALL
    SELECT {TASK_KEY}, 1 AS n FROM new_rows WHERE deleted_at IS NULL
  ) AS change GROUP BY {TASK_KEY} HAVING sum(n) <> 0;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_run_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_runcount ({RUN_KEY}, n)
  SELECT {RUN_KEY}, count(*) FROM new_rows GROUP BY {RUN_KEY};
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_run_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_runcount ({RUN_KEY}, n)
  SELECT {RUN_KEY}, -count(*) FROM old_rows GROUP BY {RUN_KEY};
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_run_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_runcount ({RUN_KEY}, n)
  SELECT {RUN_KEY}, sum(n) FROM (
    SELECT {RUN_KEY}, -1 AS n FROM old_rows
    UNION ALL
    SELECT {RUN_KEY}, 1 AS n FROM new_rows
  ) AS change GROUP BY {RUN_KEY} HAVING sum(n) <> 0;
  RETURN NULL;
END $$;
"""

TRIGGERS = [
    (table, event, f"stagecraft_{kind}_counts_{event.lower()}")
    for table, kind in (("tasks_task", "task"), ("tasks_stagerun", "run"))
    for event in ("INSERT", "UPDATE", "DELETE")
]


def _trigger_sql(table: str, event: str, function: str) -> str:
    tables = {
        "INSERT": "NEW TABLE AS new_rows",
        "DELETE": "OLD TABLE AS old_rows",
        "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }[event]
    return (
        f"CREATE TRIGGER {function} AFTER {event} ON {table} REFERENCING {tables} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS)
    for table, event, function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        schema_editor.execute(_trigger_sql(table, event, function))
    # The counts of the tasks already there (the triggers see what comes after).
    schema_editor.execute(
        f"INSERT INTO projects_taskcount ({TASK_KEY}, n) SELECT {TASK_KEY}, count(*) "
        f"FROM tasks_task WHERE deleted_at IS NULL GROUP BY {TASK_KEY}"
    )
    schema_editor.execute(
        f"INSERT INTO projects_runcount ({RUN_KEY}, n) "
        f"SELECT {RUN_KEY}, count(*) FROM tasks_stagerun GROUP BY {RUN_KEY}"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, _event, function in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0005_alter_dataset_format"),
        ("tasks", "0019_task_deleted_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="RunCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stage_key", models.CharField(max_length=64)),
                ("kind", models.CharField(max_length=20)),
                ("status", models.CharField(max_length=20)),
                ("n", models.BigIntegerField()),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="TaskCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("status", models.CharField(max_length=20)),
                ("blueprint_id", models.BigIntegerField()),
                ("n", models.BigIntegerField()),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
