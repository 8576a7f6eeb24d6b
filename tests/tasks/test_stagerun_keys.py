"""A stage run's only key to its task is task_id (project_id is a copy of the task's and
carries no key: one check a run at commit fewer), and it finds the task by its primary key
even when the statistics say the table is empty; the completions index holds completed runs
only, still read by every reader of completed work (migrations tasks 0025, 0026)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from projects.progress import project_overview
from tasks import services
from tasks.models import StageRun, Task

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
def test_a_run_has_one_key_its_task_and_the_check_reads_the_primary_key(project, manager):
    keys = _keys("tasks_stagerun")
    assert [d for d in keys.values() if "project_id" in d] == []
    assert "FOREIGN KEY (task_id) REFERENCES tasks_task(id) DEFERRABLE INITIALLY DEFERRED" in (
        keys.values()
    )
    # The check PostgreSQL plans for that key, planned on statistics that say the task table
    # holds nothing though it has pages (a table just emptied): the primary key, not an index
    # that reads a whole project (the composite key of 0025 got the project's index here).
    made = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(500)]
    )
    Task.objects.filter(pk__in=[t.pk for t in made]).delete()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(
            "PREPARE ri_check(bigint) AS "
            "SELECT 1 FROM ONLY tasks_task x WHERE id = $1 FOR KEY SHARE OF x"
        )
        cursor.execute("EXPLAIN EXECUTE ri_check(1)")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE ri_check")
    assert "tasks_task_pkey" in plan, plan


@postgresql
def test_a_run_of_no_task_is_refused_and_created_runs_carry_their_tasks_project(project, manager):
    tasks = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(3)]
    )
    runs = StageRun.objects.filter(task__in=tasks)
    assert runs.count() == 6 and {r.project_id for r in runs} == {project.pk}
    run = runs.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        StageRun.objects.filter(pk=run.pk).update(task_id=tasks[-1].pk + 1000)
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
