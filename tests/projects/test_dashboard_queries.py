"""The project dashboard (``/projects/<slug>/``) costs the same queries however many tasks
the project has, and its stalled and idle alerts look at the age of the open work's tasks
without reading every open run (``projects.progress._old_open_work``)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from projects import progress
from tasks import services as task_services
from tasks.models import StageRun, Task, TaskStatus

pytestmark = pytest.mark.django_db


def _add_tasks(project, manager, annotator, reviewer, n: int) -> None:
    """``n`` tasks of each kind the dashboard counts: waiting for a start, being annotated,
    waiting for review, done (a week old, nothing moved in the last days: the stages'
    alerts read the ages of their tasks)."""
    now = timezone.now()
    week_ago = now - dt.timedelta(days=7)
    made = task_services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(4 * n)]
    )
    ids = [t.pk for t in made]
    Task.objects.filter(pk__in=ids).update(created_at=week_ago, due_at=now - dt.timedelta(1))
    busy, review, done = ids[n : 2 * n], ids[2 * n : 3 * n], ids[3 * n :]
    runs = StageRun.objects.filter(task_id__in=ids)
    runs.filter(task_id__in=busy, stage_key="annotate").update(
        status="in_progress", assignee=annotator, started_at=week_ago
    )
    Task.objects.filter(pk__in=busy).update(status=TaskStatus.IN_PROGRESS)
    runs.filter(task_id__in=review + done, stage_key="annotate").update(
        status="completed", assignee=annotator, started_at=week_ago, completed_at=week_ago,
        submitted_at=week_ago, active_seconds=60,
    )  # fmt: skip
    runs.filter(task_id__in=review, stage_key="review").update(status="ready")
    Task.objects.filter(pk__in=review).update(status=TaskStatus.PENDING_REVIEW)
    runs.filter(task_id__in=done, stage_key="review").update(
        status="completed", assignee=reviewer, started_at=week_ago, completed_at=week_ago
    )
    Task.objects.filter(pk__in=done).update(status=TaskStatus.REVIEW_PASSED, finished_at=week_ago)


def _page_queries(client, project) -> tuple[int, str]:
    url = reverse("projects:detail", args=[project.slug])
    client.get(url)  # rollups of days the new tasks marked are rebuilt once, not per view
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries), response.content.decode()


def test_project_dashboard_queries_do_not_grow_with_tasks(
    client, project, manager, annotator, reviewer, django_assert_max_num_queries
):
    client.force_login(manager)
    _add_tasks(project, manager, annotator, reviewer, 1)
    few, html = _page_queries(client, project)
    assert "1 of 4 tasks done" in html and "Stalled" in html  # the alerts' probes ran
    _add_tasks(project, manager, annotator, reviewer, 15)
    many, html = _page_queries(client, project)
    assert "16 of 64 tasks done" in html and "Stalled" in html
    assert many == few
    with django_assert_max_num_queries(25):
        client.get(reverse("projects:detail", args=[project.slug]))


def test_stalled_and_idle_need_work_older_than_their_limits(project, manager, annotator):
    now = timezone.now()
    made = task_services.task_create_many(
        actor=manager, project=project, items=[{"name": "a"}, {"name": "b"}]
    )
    tasks = Task.objects.filter(pk__in=[t.pk for t in made])
    tasks.update(created_at=now - dt.timedelta(hours=2))

    def annotate():
        return {s.key: s for s in progress.stage_funnel(project=project, now=now)}["annotate"]

    # Ready work nobody started, but its tasks came in two hours ago: not stalled yet.
    assert annotate().ready == 2 and annotate().alert == ""
    tasks.update(created_at=now - dt.timedelta(hours=30))
    assert annotate().alert == "stalled"
    assert annotate().alert_text == "2 ready, none started in the last 24 hours"
    # Both started two days ago (not stalled), nothing finished: idle once the tasks are
    # older than three days, not before.
    StageRun.objects.filter(task__in=tasks, stage_key="annotate").update(
        status="in_progress", assignee=annotator, started_at=now - dt.timedelta(days=2)
    )
    assert annotate().alert == ""
    tasks.update(created_at=now - dt.timedelta(days=4))
    stage = annotate()
    assert stage.alert == "idle" and stage.alert_text == "2 open, none finished in the last 3 days"
    # One run finished yesterday: the stage moves, no alert.
    StageRun.objects.filter(task=made[0], stage_key="annotate").update(
        status="completed", completed_at=now - dt.timedelta(days=1)
    )
    assert annotate().alert == ""
