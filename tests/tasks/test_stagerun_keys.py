"""A stage run's (task, project) references its task's (id, project) — one foreign key
checked at commit instead of one for each column (migration tasks 0025) — and the
completions index holds completed runs only, still read by every reader of completed work."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from projects.progress import project_overview
from projects.services import project_create
from tasks import services
from tasks.models import StageRun

pytestmark = pytest.mark.django_db

postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the composite key is PostgreSQL's"
)


def _keys(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        return dict(cursor.fetchall())


@postgresql
def test_a_run_has_one_key_for_its_task_and_project():
    keys = _keys("tasks_stagerun")
    assert keys.pop("stagerun_task_project_fk") == (
        "FOREIGN KEY (task_id, project_id) REFERENCES tasks_task(id, project_id) "
        "DEFERRABLE INITIALLY DEFERRED"
    )
    assert [d for d in keys.values() if "task_id" in d or "project_id" in d] == []


@postgresql
def test_a_run_of_another_project_or_of_no_task_is_refused_at_commit(project, manager):
    task = services.task_create(actor=manager, project=project, name="t")
    other = project_create(actor=manager, name="Other")
    run = task.runs.get(stage_key="annotate")
    for change in ({"project_id": other.pk}, {"task_id": task.pk + 1000}):
        with pytest.raises(IntegrityError), transaction.atomic():
            StageRun.objects.filter(pk=run.pk).update(**change)
            with connection.cursor() as cursor:  # the deferred check now, not at the commit
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@postgresql
def test_completed_work_is_read_from_the_completions_index(project, manager, annotator, reviewer):
    """Every query of the Overview that reads a project's runs completed since a time uses
    stagerun_project_done_idx, now partial (completed_at IS NOT NULL): the time condition
    implies it."""
    for i in range(3):
        task = services.task_create(actor=manager, project=project, name=f"t{i}")
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    with CaptureQueriesContext(connection) as captured:
        project_overview(project=project, user=manager)
    readers = [
        q["sql"]
        for q in captured.captured_queries
        if '"tasks_stagerun"."project_id"' in q["sql"]
        and '"tasks_stagerun"."completed_at" >=' in q["sql"]
    ]
    assert len(readers) >= 3  # completions per day, the annotators' table, the weekly trend
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in readers:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "stagerun_project_done_idx" in plan, (sql, plan)
