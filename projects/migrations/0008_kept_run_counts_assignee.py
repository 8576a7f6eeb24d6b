"""The kept run counts by assignee too (``RunCount.assignee_id``): the Overview's runs in
progress per annotator come from them instead of grouping every run in progress (250,000 at
1,000,000 tasks). The run triggers of 0006 are replaced to group by it, and the run counts are
recomputed from the runs."""

import importlib

from django.db import migrations, models

RUN_KEY = "project_id, stage_key, kind, status, assignee_id"

FUNCTIONS = f"""
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


def _recount(schema_editor, key: str) -> None:
    schema_editor.execute(
        f"WITH gone AS (DELETE FROM projects_runcount) "
        f"INSERT INTO projects_runcount ({key}, n) SELECT {key}, count(*) FROM tasks_stagerun "
        f"GROUP BY {key}"
    )


def rebuild(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS)
    _recount(schema_editor, RUN_KEY)


def back(apps, schema_editor):
    """0006's run functions and counts again (the column goes after this)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    before = importlib.import_module("projects.migrations.0006_kept_counts")
    schema_editor.execute(FUNCTIONS.replace(", assignee_id", ""))
    _recount(schema_editor, before.RUN_KEY)


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0007_kept_counts_due_hour"),
    ]

    operations = [
        migrations.AddField(
            model_name="runcount",
            name="assignee_id",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(rebuild, back, elidable=False),
    ]
