"""Project progress (projects.progress): known answers on a constructed history, the API's
shape and readers, the Overview page and the dashboard's cards with bounded queries."""

import datetime as dt

import pytest
from django.urls import reverse

from projects import progress
from projects import services as project_services
from projects.models import Role
from tasks import services as task_services
from tasks.models import StageRun, Task, TaskStatus

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 18, 12, 0, tzinfo=UTC)  # a Wednesday


def at(day: int, hour: int) -> dt.datetime:
    """March ``day`` 2026 at ``hour`` (UTC, the suite's time zone)."""
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def _done(task, annotator, reviewer, day: int, seconds: float) -> None:
    """The task's annotate run completed at 09:00 of ``day`` after ``seconds`` of work, its
    review at 10:00: done."""
    runs = StageRun.objects.filter(task=task)
    runs.filter(stage_key="annotate").update(
        status="completed", assignee=annotator, active_seconds=seconds,
        started_at=at(day, 8), submitted_at=at(day, 9), completed_at=at(day, 9),
    )  # fmt: skip
    runs.filter(stage_key="review").update(
        status="completed", assignee=reviewer, started_at=at(day, 10), completed_at=at(day, 10)
    )
    Task.objects.filter(pk=task.pk).update(
        status=TaskStatus.REVIEW_PASSED, finished_at=at(day, 10)
    )  # what the status machine sets when the review passes


@pytest.fixture
def history(project, manager, annotator, reviewer, time_machine):
    """Eleven tasks of the default blueprint (annotate → review), created on 1 March:

    - T1, T2 done on 17 March; T3 on 15 March; T4–T6 on 13 March; T7 today (18 March, 08:00
      the annotate run, 10:00 its review);
    - T8 annotated on 17 March (11:00), its review in progress;
    - T9 being annotated by ana since 09:00 today; T10 (due yesterday) and T11 (due tomorrow)
      waiting to be started.
    ana annotated T1–T8 in 100, 200, … 800 seconds.
    """
    time_machine.move_to(NOW, tick=False)
    tasks = task_services.task_create_many(
        actor=manager, project=project, items=[{"name": f"T{n}"} for n in range(1, 12)]
    )
    Task.objects.filter(project=project).update(created_at=at(1, 9))
    t = {n: task for n, task in enumerate(tasks, start=1)}
    for n, day in ((1, 17), (2, 17), (3, 15), (4, 13), (5, 13), (6, 13), (7, 18)):
        _done(t[n], annotator, reviewer, day, seconds=n * 100)
    StageRun.objects.filter(task=t[7], stage_key="annotate").update(
        started_at=at(18, 7), submitted_at=at(18, 8), completed_at=at(18, 8)
    )
    StageRun.objects.filter(task=t[8], stage_key="annotate").update(
        status="completed", assignee=annotator, active_seconds=800,
        started_at=at(17, 10), submitted_at=at(17, 11), completed_at=at(17, 11),
    )  # fmt: skip
    StageRun.objects.filter(task=t[8], stage_key="review").update(
        status="in_progress", assignee=reviewer, started_at=at(17, 12)
    )
    Task.objects.filter(pk=t[8].pk).update(status=TaskStatus.PENDING_REVIEW)
    StageRun.objects.filter(task=t[9], stage_key="annotate").update(
        status="in_progress", assignee=annotator, started_at=at(18, 9)
    )
    Task.objects.filter(pk=t[9].pk).update(status=TaskStatus.IN_PROGRESS)
    Task.objects.filter(pk=t[10].pk).update(due_at=at(17, 12))
    Task.objects.filter(pk=t[11].pk).update(due_at=at(19, 10))
    Task.objects.filter(pk=t[1].pk).update(due_at=at(10, 12))  # done: not overdue
    return t


def test_completions_per_day_count_tasks_on_their_last_run_and_work_runs(project, history):
    days = progress.completions_per_day(
        project_ids=[project.pk], start=dt.date(2026, 3, 12), end=dt.date(2026, 3, 18)
    )
    assert [(d.day.day, d.tasks, d.runs) for d in days] == [
        (12, 0, 0),
        (13, 3, 6),
        (14, 0, 0),
        (15, 1, 2),
        (16, 0, 0),
        (17, 2, 5),  # T8's annotate run counts, T8 is not done
        (18, 1, 2),
    ]


def test_eta_is_the_ewma_of_the_last_fourteen_days(project, history):
    figures = progress.project_progress(project=project)
    assert figures["total"] == 11
    assert figures["by_status"] == {
        "pending_start": 2,
        "in_progress": 1,
        "pending_review": 1,
        "review_passed": 7,
        "data_submitted": 0,
    }
    assert (figures["done"], figures["remaining"], figures["percent_complete"]) == (7, 4, 63.6)
    assert (figures["overdue"], figures["due_soon"]) == (1, 1)
    # The window is 4–17 March (today left out), tasks finished per day, oldest first:
    # 0 … 0, 3 (13th, 4 days before yesterday), 0, 1 (15th, 2 days before), 0, 2 (17th).
    # Weights 0.5 ** (age / 3.5): w0 = 1, w2 = 0.672950, w4 = 0.452862; Σw over 14 days =
    # (1 − 0.5 ** 4) / (1 − 0.5 ** (1 / 3.5)) = 5.218055.
    # rate = (2·1 + 1·0.672950 + 3·0.452862) / 5.218055 = 4.031536 / 5.218055 = 0.772613/day.
    # Remaining 4 tasks: 4 / 0.772613 = 5.177238 days = 447,313 s.
    # Spread: weighted variance 1.079692, effective days (Σw)² / Σw² = 8.939868, standard
    # error √(1.079692 / 8.939868) = 0.347524; range 4 / (rate ± error) = 308,534–813,006 s.
    assert figures["throughput_per_day"] == 0.77
    assert figures["eta_seconds"] == 447313
    assert figures["eta_range"] == [308534, 813006]
    assert figures["eta_date"] == dt.datetime(2026, 3, 23, 16, 15, 13, 381774, tzinfo=UTC)


def test_eta_needs_three_days_with_finished_tasks(project, history):
    # Without T3 (15th), two days remain with finished tasks in the window: no ETA.
    StageRun.objects.filter(task=history[3]).update(status="ready", completed_at=None)
    Task.objects.filter(pk=history[3].pk).update(status=TaskStatus.PENDING_START, finished_at=None)
    figures = progress.project_progress(project=project)
    assert figures["eta_seconds"] is None and figures["eta_range"] is None
    assert figures["eta_reason"].startswith("Fewer than 3 days")


def test_eta_pure_function():
    flat = progress.eta_estimate(daily=[2] * 14, remaining=10, now=NOW)
    assert (flat.rate, flat.rate_error, flat.seconds) == (2.0, 0.0, 5 * 86400)
    assert flat.range == [5 * 86400, 5 * 86400]
    assert progress.eta_estimate(daily=[0] * 12 + [5, 5], remaining=3).seconds is None
    finished = progress.eta_estimate(daily=[1, 1, 1], remaining=0, now=NOW)
    assert (finished.seconds, finished.date) == (0.0, NOW)


def test_eta_far_out_is_no_date_and_no_server_error():
    # Bursty days: the rate minus its error is barely above zero, so the slow end would be
    # millions of days away (a date Python cannot hold): no slow end.
    bursty = progress.eta_estimate(
        daily=[0, 0, 0, 0, 0, 168, 331, 0, 0, 0, 0, 23, 0, 0], remaining=400, now=NOW
    )
    assert bursty.seconds is not None and bursty.high_seconds is None
    assert bursty.high_date is None and bursty.date > NOW
    # A trickle against a mountain: more than ten years is no estimate, and says so.
    trickle = progress.eta_estimate(daily=[0] * 11 + [1, 1, 1], remaining=10**7, now=NOW)
    assert (trickle.seconds, trickle.date) == (None, None)
    assert trickle.rate and trickle.reason == "At the recent pace, more than 10 years."


def test_stage_funnel_counts_and_alerts(project, history):
    funnel = {s.key: s for s in progress.stage_funnel(project=project)}
    annotate, review = funnel["annotate"], funnel["review"]
    assert list(funnel) == ["annotate", "review"]  # the blueprint's order
    # T10, T11 ready; T9 in progress; T8 waiting for its review; T1–T7 done.
    assert (annotate.blocked, annotate.ready, annotate.in_progress) == (0, 2, 1)
    assert (annotate.in_review, annotate.done) == (1, 7)
    assert (review.blocked, review.ready, review.in_progress, review.done) == (3, 0, 1, 7)
    assert not annotate.alert
    # Three days on with nothing started: the ready annotate runs are stalled.
    later = {s.key: s for s in progress.stage_funnel(project=project, now=NOW + dt.timedelta(3))}
    assert later["annotate"].alert == "stalled"
    assert later["annotate"].alert_text == "2 ready, none started in the last 24 hours"


def test_annotator_table(project, history, annotator, manager, reviewer):
    # A second annotator with nothing done yet is listed with zeros.
    project_services.membership_add(
        actor=manager, project=project, user=reviewer, role=Role.ANNOTATOR
    )
    rows = {r.username: r for r in progress.annotator_table(project=project)}
    ana = rows["ana"]
    # T1–T8: 100 … 800 s; the median of eight is between the 4th and 5th: (400 + 500) / 2.
    assert (ana.in_progress, ana.done_7d, ana.median_seconds) == (1, 8, 450.0)
    assert (rows["ravi"].in_progress, rows["ravi"].done_7d, rows["ravi"].median_seconds) == (
        0,
        0,
        None,
    )


def test_efficiency_by_week(project, history):
    weeks = progress.efficiency_trend(project=project, weeks=2)
    assert [w.week for w in weeks] == [dt.date(2026, 3, 9), dt.date(2026, 3, 16)]
    # Week of 9 March: T3 (Sunday the 15th) to T6 = 300, 400, 500, 600 s; week of 16 March:
    # T1, T2, T7, T8 = 100, 200, 700, 800 s. Both: mean 450, median (400 + 500) / 2 = 450.
    assert (weeks[0].runs, weeks[0].mean_seconds, weeks[0].median_seconds) == (4, 450.0, 450.0)
    assert (weeks[1].runs, weeks[1].mean_seconds, weeks[1].median_seconds) == (4, 450.0, 450.0)


# --- the API -----------------------------------------------------------------------------


def test_progress_api_shape(project, history, api_as, manager, django_assert_max_num_queries):
    url = reverse("api:project-progress", args=[project.pk])
    client = api_as(manager)
    with django_assert_max_num_queries(15):
        response = client.get(url)
    assert response.status_code == 200
    body = response.json()
    assert {
        "total", "by_status", "percent_complete", "throughput_per_day", "eta_seconds",
        "eta_range", "stages", "annotators",
    } <= set(body)  # fmt: skip
    assert body["eta_seconds"] == 447313 and body["eta_range"] == [308534, 813006]
    assert body["stages"][0] == {
        "key": "annotate", "title": "annotate", "kind": "annotate", "blocked": 0, "ready": 2,
        "in_progress": 1, "in_review": 1, "done": 7, "alert": "",
    }  # fmt: skip
    ana = next(a for a in body["annotators"] if a["username"] == "ana")
    assert {k: ana[k] for k in ("in_progress", "done_7d", "median_seconds")} == {
        "in_progress": 1,
        "done_7d": 8,
        "median_seconds": 450.0,
    }
    assert len(body["throughput"]) == 28 and body["throughput"][-1]["day"] == "2026-03-18"


def test_progress_api_readers(project, api_as, users):
    url = reverse("api:project-progress", args=[project.pk])
    assert api_as(users["reviewer"]).get(url).status_code == 200
    refused = api_as(users["annotator"]).get(url)
    assert refused.status_code == 403 and "progress" in refused.json()["detail"]
    assert api_as(users["outsider"]).get(url).status_code == 404


# --- pages -------------------------------------------------------------------------------


def test_overview_shows_figures_to_a_manager(
    client, project, history, manager, django_assert_max_num_queries
):
    client.force_login(manager)
    with django_assert_max_num_queries(25):
        response = client.get(reverse("projects:detail", args=[project.slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "63.6%" in html and "7 of 11 tasks done" in html
    assert "in 6.0 days" not in html and "in 5.2 days" in html
    assert 'data-eta-seconds="447313"' in html
    assert "T10" in html and "Overdue" in html  # the overdue task, named
    assert "450 s" not in html and "8 min" in html  # ana's median, 450 s


def test_overview_htmx_refresh_is_the_figures_only(client, project, history, manager):
    client.force_login(manager)
    response = client.get(reverse("projects:detail", args=[project.slug]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="project-figures"')
    assert "Team" not in html


def test_an_annotator_sees_project_figures_and_only_their_own_row(
    client, project, history, annotator, manager
):
    project_services.membership_add(
        actor=manager, project=project, user=manager, role=Role.ANNOTATOR
    )
    client.force_login(annotator)
    html = client.get(reverse("projects:detail", args=[project.slug])).content.decode()
    assert "in 5.2 days" in html and "Your work" in html
    assert ">maya<" not in html  # another annotator's row
    assert "T10" not in html  # overdue tasks are named to managers and reviewers only


def test_tasks_tab_is_the_task_list_of_the_project(client, project, manager):
    client.force_login(manager)
    response = client.get(reverse("projects:tasks", args=[project.slug]))
    assert response.status_code == 302
    assert response.url == f"{reverse('tasks:list')}?project={project.pk}"


def test_dashboard_cards_cost_the_same_for_more_projects(
    client, project, history, manager, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(manager)
    with CaptureQueriesContext(connection) as one:
        html = client.get("/").content.decode()
    assert "Projects you manage" in html and "Pick and place" in html
    assert 'data-eta-seconds="447313"' in html
    assert "1 overdue task" in html
    for n in range(3):
        other = project_services.project_create(actor=manager, name=f"Other {n}")
        task_services.task_create_many(actor=manager, project=other, items=[{"name": "x"}])
    # The new projects' ready runs were never started: their stages may be stalled, which
    # costs one query (the oldest open tasks of such stages, for all projects at once).
    with django_assert_max_num_queries(len(one.captured_queries) + 1):
        html = client.get("/").content.decode()
    assert html.count('class="card project-card"') == 4
    for n in range(3, 8):
        other = project_services.project_create(actor=manager, name=f"Other {n}")
        task_services.task_create_many(actor=manager, project=other, items=[{"name": "x"}])
    with django_assert_max_num_queries(len(one.captured_queries) + 1):
        html = client.get("/").content.decode()
    assert html.count('class="card project-card"') == 9


def test_dashboard_for_an_annotator_has_no_cards(client, project, annotator):
    client.force_login(annotator)
    html = client.get("/").content.decode()
    assert "project-card" not in html and "Pick and place" in html


def test_the_demo_history_gives_the_overview_an_eta(settings):
    from django.core.management import call_command

    from projects.models import Project

    settings.STAGECRAFT_DEMO_PROGRESS = True
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent: the history once
    project = Project.objects.get(slug="pick-and-place")
    assert Task.objects.filter(project=project, batch="progress-history").count() == 16
    figures = progress.project_progress(project=project)
    assert figures["remaining"] > 0 and figures["eta_seconds"] is not None
    assert figures["eta"].active_days >= 3
    assert figures["overdue"] == 2 and figures["due_soon"] == 2
    people = {a.username: a for a in figures["annotators"]}
    assert 9 * 60 <= people["annotator"].median_seconds <= 25 * 60


def test_start_next_task_on_the_demo_opens_an_episode_to_label(settings):
    """The demo's backlog (overdue and high priority, so first in line) has episodes: before,
    "Start next task" opened a backlog task that said "no samples: add a dataset first"."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tasks import services

    settings.STAGECRAFT_DEMO_PROGRESS = True
    call_command("seed_demo")
    backlog = Task.objects.filter(name__startswith="Backlog episode")
    assert backlog.count() and not backlog.filter(datasets=None).exists()
    annotator = get_user_model().objects.get(username="annotator")
    run = services.stage_claim_next(actor=annotator)
    assert run is not None and run.task.datasets.exists(), run
