"""Kept counts of the tasks due in each minute (``TaskDueCount``), so the dashboards' overdue
and due-soon figures count no task: whole hours come from ``projects_taskcount`` (0007) and
the two hours that ``now`` and ``now`` + 48 h cut from this table, by minute (0007 counted
those hours' tasks through the (project, due) index: 30 ms when 16,000 tasks were due in the
hour 48 hours away, at 1,000,000 tasks). The task triggers' functions of 0007 are replaced to
append to both tables in the same statement, and the minute counts are computed from the
tasks."""

import importlib

from django.db import migrations, models

before = importlib.import_module("projects.migrations.0007_kept_counts_due_hour")

TASK_KEY = before.TASK_KEY
TASK_COLUMNS = before.TASK_COLUMNS
DUE_KEY = "project_id, status, due_minute"
# The UTC minute whatever the session's time zone.
MINUTE = "date_trunc('minute', due_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
DUE_COLUMNS = f"project_id, status, {MINUTE} AS due_minute"
LIVE = "deleted_at IS NULL"
DUE = f"{LIVE} AND due_at IS NOT NULL"


def _added(rows: str, sign: str) -> str:
    return f"""
  INSERT INTO projects_taskcount ({TASK_KEY}, n)
  SELECT {TASK_KEY}, {sign}count(*) FROM (
    SELECT {TASK_COLUMNS} FROM {rows} WHERE {LIVE}
  ) AS t GROUP BY {TASK_KEY};
  INSERT INTO projects_taskduecount ({DUE_KEY}, n)
  SELECT {DUE_KEY}, {sign}count(*) FROM (
    SELECT {DUE_COLUMNS} FROM {rows} WHERE {DUE}
  ) AS t GROUP BY {DUE_KEY};"""


FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION stagecraft_task_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_added("new_rows", "")}
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_task_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_added("old_rows", "-")}
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION stagecraft_task_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO projects_taskcount ({TASK_KEY}, n)
  SELECT {TASK_KEY}, sum(n) FROM (
    SELECT {TASK_COLUMNS}, -1 AS n FROM old_rows WHERE {LIVE}
    UNION ALL
    SELECT {TASK_COLUMNS}, 1 AS n FROM new_rows WHERE {LIVE}
  ) AS change GROUP BY {TASK_KEY} HAVING sum(n) <> 0;
  INSERT INTO projects_taskduecount ({DUE_KEY}, n)
  SELECT {DUE_KEY}, sum(n) FROM (
    SELECT {DUE_COLUMNS}, -1 AS n FROM old_rows WHERE {DUE}
    UNION ALL
    SELECT {DUE_COLUMNS}, 1 AS n FROM new_rows WHERE {DUE}
  ) AS change GROUP BY {DUE_KEY} HAVING sum(n) <> 0;
  RETURN NULL;
END $$;
"""


def rebuild(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS)
    # Writers that began before the new functions (committed with this migration) would
    # append no minute rows, and a snapshot taken before they commit would not see their
    # tasks: wait for them, and hold new ones off until the migration commits.
    schema_editor.execute("LOCK TABLE tasks_task IN SHARE MODE")
    schema_editor.execute(
        f"INSERT INTO projects_taskduecount ({DUE_KEY}, n) SELECT {DUE_KEY}, count(*) FROM ("
        f"SELECT {DUE_COLUMNS} FROM tasks_task WHERE {DUE}) AS t GROUP BY {DUE_KEY}"
    )


def back(apps, schema_editor):
    """0007's functions again (the table goes after this)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(before.FUNCTIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0009_dataset_files_version"),
    ]

    operations = [
        migrations.CreateModel(
            name="TaskDueCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("status", models.CharField(max_length=20)),
                ("due_minute", models.DateTimeField()),
                ("n", models.BigIntegerField()),
                (
                    "project",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["project", "due_minute"], name="taskduecount_minute_idx")
                ],
            },
        ),
        migrations.RunPython(rebuild, back, elidable=False),
    ]
