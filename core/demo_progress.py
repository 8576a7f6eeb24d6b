"""Demo data for the project's dashboard (issue 14), part of ``seed_demo`` (core/demo.py).

Three weeks of finished work in the demo project, a task or two on most days, so the
Overview's throughput chart, time per run and ETA have real history; and a backlog of open
tasks (some overdue, some due soon, two started) so there is remaining work to estimate.
Everything runs through the services; only the times are moved back afterwards, one
``update()`` per table and task (nothing in the app moves time: demo history is the one
place where rows must look older than they are).
"""

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from projects.models import Dataset, DatasetFormat, ImportStatus, Project

HISTORY_BATCH = "progress-history"
BACKLOG_BATCH = "backlog"
# Days ago each history task finished (16 tasks over three weeks, busier lately).
FINISHED_DAYS_AGO = (1, 1, 2, 3, 3, 4, 5, 6, 8, 9, 10, 11, 13, 15, 17, 20)
BACKLOG_TASKS = 10


def seed_demo_progress(project: Project, users: dict) -> list[str]:
    """Finished history and an open backlog in the demo project. Does nothing once the
    project has history tasks."""
    from tasks.models import Task

    if Task.objects.filter(project=project, batch=HISTORY_BATCH).exists():
        return []
    with transaction.atomic():  # all or nothing: a half-seeded history is not seeded again
        return _seed(project, users)


def _seed(project: Project, users: dict) -> list[str]:
    from tasks import services as task_services

    manager = users["manager"]
    people = ["annotator", "annotator2"]
    history = task_services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {
                "name": f"Episode batch {n + 1:02}",
                "annotators": [people[n % 2]],
                "reviewers": ["reviewer"],
                "batch": HISTORY_BATCH,
            }
            for n in range(len(FINISHED_DAYS_AGO))
        ],
    )
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    for n, (task, days_ago) in enumerate(zip(history, FINISHED_DAYS_AGO, strict=True)):
        _finish(task, users[people[n % 2]], users["reviewer"])
        finished = today - dt.timedelta(days=days_ago, hours=-(10 + n % 6))
        # Annotators got quicker over the weeks: 9 to 25 minutes a run.
        _backdate(task.pk, finished, active=540 + (days_ago * 47 + n * 13) % 960)
    # The backlog is work to do: each task gets an episode to label (Start next task gives
    # the overdue ones first, and a task without a dataset has nothing to open).
    episodes = list(
        Dataset.objects.filter(
            project=project, format=DatasetFormat.HDF5, status=ImportStatus.FINISHED
        )
        .order_by("name")
        .values_list("pk", flat=True)
    )
    backlog = task_services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {
                "name": f"Backlog episode {n + 1:02}",
                "datasets": [episodes[n % len(episodes)]] if episodes else [],
                "annotators": people,
                "reviewers": ["reviewer"],
                "batch": BACKLOG_BATCH,
                "priority": "high" if n < 2 else "normal",
                # Two overdue, two due within two days, the rest next week and after.
                "due_at": now + dt.timedelta(days=(-2, -1, 1, 1.5)[n] if n < 4 else n + 3),
            }
            for n in range(BACKLOG_TASKS)
        ],
    )
    from audits.rollups import quality_touch_tasks  # the rows moved: rebuild their figures

    quality_touch_tasks([t.pk for t in history])
    for n, task in enumerate(backlog[:2]):  # two under way, one each
        task_services.stage_start(actor=users[people[n]], task=task, stage_key="segments")
    return [t.name for t in [*history, *backlog]]


def _finish(task, annotator, reviewer) -> None:
    """Grasp segments and (no samples to box) objects through the services; a review when
    the blueprint's route sends the task to one."""
    from tasks import services as task_services
    from tasks.models import StageRun

    task_services.stage_start(actor=annotator, task=task, stage_key="segments")
    task_services.annotation_create(
        actor=annotator, task=task, stage="segments", label="gripper_open",
        data={"start": 10, "end": 40}, attributes={"description": "grasp the block"},
    )  # fmt: skip
    task_services.stage_submit(actor=annotator, task=task, stage_key="segments")
    task_services.stage_start(actor=annotator, task=task, stage_key="objects")
    task_services.stage_submit(actor=annotator, task=task, stage_key="objects")
    review = StageRun.objects.filter(
        task=task, stage_key="full_review", status=StageRun.Status.READY
    ).exists()
    if review:
        task_services.stage_review(
            actor=reviewer, task=task, stage_key="full_review", decision="approve"
        )


def _backdate(task_id: int, finished: dt.datetime, active: float) -> None:
    """Move the task's rows so that its work finished at ``finished``, each annotate run
    having taken ``active`` seconds."""
    from audits.models import ReviewOutcome
    from tasks.models import Annotation, Delivery, StageRun, Task, TaskEvent

    shift = timezone.now() - finished
    created = shift + dt.timedelta(seconds=active * 2 + 3600)  # created an hour before work
    Task.objects.filter(pk=task_id).update(
        created_at=F("created_at") - created,
        updated_at=F("updated_at") - shift,
        finished_at=F("finished_at") - shift,
    )
    runs = StageRun.objects.filter(task_id=task_id)
    runs.update(
        started_at=F("started_at") - shift,
        last_active_at=F("last_active_at") - shift,
        submitted_at=F("submitted_at") - shift,
        completed_at=F("completed_at") - shift,
    )
    # The two annotate runs one after the other, ``active`` seconds each.
    for offset, key in ((active, "segments"), (0, "objects")):
        runs.filter(stage_key=key).update(
            active_seconds=active,
            completed_at=F("completed_at") - dt.timedelta(seconds=offset),
            submitted_at=F("submitted_at") - dt.timedelta(seconds=offset),
            started_at=F("completed_at") - dt.timedelta(seconds=offset + active),
        )
    TaskEvent.objects.filter(task_id=task_id).update(created_at=F("created_at") - shift)
    Annotation.objects.filter(task_id=task_id).update(
        created_at=F("created_at") - shift, updated_at=F("updated_at") - shift
    )
    Delivery.objects.filter(task_id=task_id).update(created_at=F("created_at") - shift)
    ReviewOutcome.objects.filter(task_id=task_id).update(created_at=F("created_at") - shift)
