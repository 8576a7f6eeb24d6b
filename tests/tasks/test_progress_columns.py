"""The columns the task services keep for progress (projects.progress): ``Task.finished_at``
follows the status machine (done → set, reopened by a review or an audit → cleared, done
again → set again, data submitted → kept), ``StageRun.project`` is the task's on every path
that creates runs, and the migration's backfill fills both on existing rows."""

import datetime as dt
import importlib

import pytest
from django.db import connection
from django.db.models import F

from audits import services as audits
from projects import progress
from projects import services as project_services
from tasks import services
from tasks.models import StageRun, Task

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def annotate_and_submit(task, annotator, sample) -> None:
    run = task.runs.get(stage_key="annotate")
    if run.status == "ready":
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
    services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="object", sample=sample.pk,
        data={"frame": 0, "x": 1, "y": 1, "w": 4, "h": 4},
    )  # fmt: skip
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")


def finished(task) -> dt.datetime | None:
    task.refresh_from_db()
    return task.finished_at


def test_finished_at_is_set_when_done_cleared_when_reopened_and_kept_when_submitted(
    project, manager, annotator, reviewer, dataset, time_machine
):
    project.delivery = "stage"  # stage-level delivery: a done task's annotate stage is audited
    project.save(update_fields=["delivery"])
    sample = dataset.samples.order_by("index").first()
    time_machine.move_to(at(2, 9), tick=False)
    task = services.task_create(
        actor=manager, project=project, name="T", datasets=[dataset.pk], annotators=["ana"]
    )
    annotate_and_submit(task, annotator, sample)
    assert finished(task) is None  # waiting for review
    # A reject sends it back: still not done.
    time_machine.move_to(at(3, 9), tick=False)
    services.stage_review(
        actor=reviewer, task=task, stage_key="review", decision="reject", comment="Redo"
    )
    assert finished(task) is None
    annotate_and_submit(task, annotator, sample)
    time_machine.move_to(at(4, 10), tick=False)
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    assert finished(task) == at(4, 10) and task.status == "review_passed"
    # A standard audit's reject reopens it: cleared.
    time_machine.move_to(at(5, 9), tick=False)
    audit = audits.audit_create(actor=reviewer, task=task, stage="annotate", kind="standard")
    audits.audit_complete(actor=reviewer, audit=audit, decision="reject", note="Boxes")
    assert finished(task) is None and task.status == "in_progress"
    # Done again: set again, on the day of the second pass.
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    time_machine.move_to(at(6, 11), tick=False)
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    assert finished(task) == at(6, 11)
    # Its data submitted (an export): still finished when it was.
    time_machine.move_to(at(7, 9), tick=False)
    assert services.task_mark_submitted(actor=manager, tasks=[task]) == 1
    assert finished(task) == at(6, 11) and task.status == "data_submitted"
    # Progress counts it once, on the day it finished last.
    days = progress.completions_per_day(
        project_ids=[project.pk], start=dt.date(2026, 3, 3), end=dt.date(2026, 3, 7)
    )
    assert [(d.day.day, d.tasks) for d in days] == [(3, 0), (4, 0), (5, 0), (6, 1), (7, 0)]


def test_every_path_that_creates_runs_gives_them_the_tasks_project(project, manager):
    other = project_services.project_create(actor=manager, name="Other")
    single = services.task_create(actor=manager, project=project, name="one")
    many = services.task_create_many(
        actor=manager, project=other, items=[{"name": "a"}, {"name": "b"}]
    )
    assert set(StageRun.objects.filter(task=single).values_list("project_id", flat=True)) == {
        project.pk
    }
    assert set(StageRun.objects.filter(task__in=many).values_list("project_id", flat=True)) == {
        other.pk
    }
    # A run saved on its own (fixtures, the admin) takes its task's project.
    extra = StageRun.objects.create(task=single, stage_key="extra", kind="annotate")
    assert extra.project_id == project.pk
    assert not StageRun.objects.exclude(project_id=F("task__project_id")).exists()


def test_the_migration_backfills_both_columns(
    project, manager, annotator, reviewer, dataset, time_machine
):
    backfill = importlib.import_module("tasks.migrations.0011_progress_columns_backfill").backfill
    other = project_services.project_create(actor=manager, name="Other")
    sample = dataset.samples.order_by("index").first()
    time_machine.move_to(at(2, 9), tick=False)
    done = services.task_create(
        actor=manager, project=project, name="done", datasets=[dataset.pk], annotators=["ana"]
    )
    waiting = services.task_create(actor=manager, project=project, name="open")
    annotate_and_submit(done, annotator, sample)
    time_machine.move_to(at(3, 15), tick=False)
    services.stage_review(actor=reviewer, task=done, stage_key="review", decision="approve")
    # Rows as they were before the columns: every run in the wrong project, no finished_at.
    StageRun.objects.update(project=other)
    Task.objects.update(finished_at=None)
    backfill(connection)
    assert not StageRun.objects.exclude(project_id=F("task__project_id")).exists()
    assert StageRun.objects.filter(project=project).count() == 4
    # The done task finished when its last run completed (the review); the open one did not.
    assert finished(done) == at(3, 15)
    assert finished(waiting) is None
