"""Batch delete, assign and update: the same queries for 5 tasks as for 200 (the ids travel as
one array, events and moved runs are written set-based), and what each task still gets: its
event, its moved runs with their events and notifications, the quality marks."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits.models import QualityDirty
from notifications.models import Notification
from projects import services as project_services
from projects.models import Role
from tasks import batch, services
from tasks.models import StageRun, Task, TaskDeletion, TaskEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
# One bound for every size: what a call costs besides its tasks (the selection, people,
# locks, events, moved runs and their notifications; a delete also clears the posts' pins
# and cancels the callbacks not yet sent).
MAX_QUERIES = {"delete by ids": 20, "delete by filter": 21, "assign": 24, "update": 5}


@pytest.fixture
def ben(project, manager):
    user = UserFactory(username="ben")
    project_services.membership_add(actor=manager, project=project, user=user, role=Role.ANNOTATOR)
    return user


def in_progress(project, manager, annotator, n: int, name: str) -> list[Task]:
    """``n`` tasks naming ana, their annotate runs in progress for her since an hour ago."""
    tasks = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"{name} {i}", "batch": name, "annotators": ["ana"]} for i in range(n)],
    )
    StageRun.objects.filter(task__in=tasks, stage_key="annotate").update(
        status="in_progress",
        assignee=annotator,
        started_at=timezone.now() - datetime.timedelta(hours=1),
        active_seconds=60,
    )
    return tasks


def call(action: str, manager, project, tasks: list[Task], name: str) -> int:
    ids = [t.pk for t in tasks]
    if action == "delete by filter":
        selection = batch.batch_selection(
            user=manager, filters={"project": project.pk, "batch": name}
        )
    else:
        selection = batch.batch_selection(user=manager, ids=ids)
    if action.startswith("delete"):
        return batch.task_batch_delete(actor=manager, selection=selection)
    if action == "assign":
        return batch.task_batch_assign(actor=manager, selection=selection, annotators=["ben"])
    return batch.task_batch_update(
        actor=manager, selection=selection, priority="urgent", batch=f"{name} done"
    )


@pytest.mark.parametrize("action", list(MAX_QUERIES))
def test_each_batch_action_takes_the_same_queries_for_5_and_200_tasks(
    action, project, manager, annotator, ben, django_assert_max_num_queries
):
    counts = {}
    for n in (5, 200):
        tasks = in_progress(project, manager, annotator, n, f"b{n}")
        with django_assert_max_num_queries(MAX_QUERIES[action]):
            with CaptureQueriesContext(connection) as captured:
                assert call(action, manager, project, tasks, f"b{n}") == n
        counts[n] = len(captured.captured_queries)
    assert counts[5] == counts[200], counts


def test_batch_assign_moves_the_runs_in_progress_with_their_time_events_and_notices(
    project, manager, annotator, ben
):
    tasks = in_progress(project, manager, annotator, 30, "move")
    other = in_progress(project, manager, annotator, 2, "stay")
    assert call("assign", manager, project, tasks, "move") == 30
    runs = StageRun.objects.filter(task__in=tasks, stage_key="annotate")
    assert {(r.assignee_id, r.status) for r in runs} == {(ben.pk, "in_progress")}
    for run in runs:  # the hour ana spent is kept; ben's time starts now
        assert run.active_seconds >= 60 + 3600 - 5
        assert timezone.now() - run.started_at < datetime.timedelta(minutes=1)
        assert run.last_active_at is None
    assigned = TaskEvent.objects.filter(kind="assigned", task__in=tasks)
    assert assigned.count() == 30
    assert {(e.actor_id, e.stage_key) for e in assigned} == {(manager.pk, "")}
    assert all(e.data == {"annotators": ["ben"], "reviewers": None} for e in assigned)
    assert all(timezone.now() - e.created_at < datetime.timedelta(minutes=1) for e in assigned)
    moved = TaskEvent.objects.filter(kind="run_transferred", task__in=tasks)
    assert moved.count() == 30
    assert {(e.data["from"], e.data["to"], e.data["via"]) for e in moved} == {
        ("ana", "ben", "reassign")
    }
    assert Notification.objects.filter(user=ben, task__in=tasks).count() == 30
    assert {u.username for t in tasks for u in t.annotators.all()} == {"ben"}
    # Tasks outside the selection are untouched.
    assert set(
        StageRun.objects.filter(task__in=other, stage_key="annotate").values_list(
            "assignee_id", flat=True
        )
    ) == {annotator.pk}
    assert not TaskEvent.objects.filter(task__in=other, kind="assigned").exists()


def test_batch_update_writes_one_event_per_task_with_the_changes(project, manager, annotator):
    tasks = in_progress(project, manager, annotator, 12, "night")
    due = timezone.now() + datetime.timedelta(days=2)
    selection = batch.batch_selection(user=manager, ids=[t.pk for t in tasks[:10]])
    assert batch.task_batch_update(actor=manager, selection=selection, due_at=due, batch=" late ")
    changed = Task.objects.filter(pk__in=[t.pk for t in tasks[:10]])
    assert set(changed.values_list("due_at", "batch")) == {(due, "late")}
    events = TaskEvent.objects.filter(kind="updated")
    assert sorted(e.task_id for e in events) == sorted(t.pk for t in tasks[:10])
    assert all(
        e.data == {"due_at": due.isoformat(), "batch": "late"} and e.actor_id == manager.pk
        for e in events
    )
    assert set(Task.objects.filter(pk__in=[t.pk for t in tasks[10:]]).values_list("batch")) == {
        ("night",)
    }


def test_batch_delete_by_filter_takes_the_tasks_with_their_rows_and_marks_quality(
    project, manager, annotator, run_jobs, django_capture_on_commit_callbacks
):
    gone = in_progress(project, manager, annotator, 8, "gone")
    kept = in_progress(project, manager, annotator, 3, "kept")
    QualityDirty.objects.all().delete()
    ids = [t.pk for t in gone]
    history = list(TaskEvent.objects.filter(task_id__in=ids).values_list("pk", flat=True))
    assert history
    with django_capture_on_commit_callbacks(execute=True):
        assert call("delete by filter", manager, project, gone, "gone") == 8
    # At once: hidden, their runs and people gone, one record says who deleted them; their
    # history waits for the purge.
    assert set(Task.objects.values_list("pk", flat=True)) == {t.pk for t in kept}
    assert not StageRun.objects.filter(task_id__in=ids).exists()
    assert list(TaskEvent.objects.filter(task_id__in=ids).values_list("pk", flat=True)) == history
    assert list(TaskDeletion.objects.values_list("project", "actor", "task_ids")) == [
        (project.pk, manager.pk, sorted(ids))
    ]
    assert not Task.annotators.through.objects.filter(task_id__in=ids).exists()
    run_jobs("default")  # the purge: the task rows and their events
    assert not Task.all_objects.filter(pk__in=ids).exists()
    assert not TaskEvent.objects.filter(task_id__in=ids).exists()
    assert TaskDeletion.objects.get().task_ids == sorted(ids)  # the record outlives the purge
    assert StageRun.objects.filter(task__in=kept).count() == 2 * 3
    assert QualityDirty.objects.filter(project=project, day=None).exists()
