"""The dashboards' kept counts (``projects.counts``, PostgreSQL triggers): they follow task
creation through COPY, stage transitions through the services, bulk UPDATEs, batch delete
and its purge; reconcile repairs them; the dashboard's figures are the same as counting the
tasks and runs, with the same queries for 4 and 64 tasks (``test_dashboard_queries``)."""

from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from projects import counts, progress
from projects.models import RunCount, TaskCount, TaskDueCount
from tasks import batch, services
from tasks.models import StageRun, Task, TaskStatus

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the counts are kept by PostgreSQL triggers"
    ),
]


def kept_tasks(project) -> dict:
    c = progress.task_counts(project_ids=[project.pk])[project.pk]
    return {status: n for status, n in c.by_status.items() if n}


def true_tasks(project) -> dict:
    return dict(Counter(Task.objects.filter(project=project).values_list("status", flat=True)))


def kept_runs(project) -> dict:
    return {(key, status): n for _, key, _, status, n, _ in counts.run_rows([project.pk])}


def kept_people(project) -> dict:
    rows = counts.runs_by_person(project.pk, kinds=["annotate"], status="in_progress")
    return {row["assignee_id"]: row["n"] for row in rows}


def true_runs(project) -> dict:
    return dict(
        Counter(StageRun.objects.filter(project=project).values_list("stage_key", "status"))
    )


def kept_due(project) -> dict:
    """(status, due minute) -> tasks, from the kept minute counts (non-zero)."""
    found: Counter = Counter()
    for status, minute, n in TaskDueCount.objects.filter(project=project).values_list(
        "status", "due_minute", "n"
    ):
        found[(status, minute)] += n
    return {key: n for key, n in found.items() if n}


def true_due(project) -> dict:
    return dict(
        Counter(
            (status, due.replace(second=0, microsecond=0))
            for status, due in Task.objects.filter(
                project=project, due_at__isnull=False
            ).values_list("status", "due_at")
        )
    )


def make(project, manager, n: int):
    return services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(n)]
    )


def test_counts_follow_creation_transitions_and_bulk_updates(project, manager, annotator, reviewer):
    made = make(project, manager, 5)  # COPY of the tasks and their runs
    assert kept_tasks(project) == {TaskStatus.PENDING_START: 5} == true_tasks(project)
    assert kept_runs(project) == {("annotate", "ready"): 5, ("review", "blocked"): 5}
    one, two = made[0], made[1]
    services.stage_start(actor=annotator, task=one, stage_key="annotate")
    services.stage_submit(actor=annotator, task=one, stage_key="annotate")
    services.stage_start(actor=annotator, task=two, stage_key="annotate")
    assert kept_tasks(project) == {"pending_start": 3, "in_progress": 1, "pending_review": 1}
    assert kept_tasks(project) == true_tasks(project)
    services.stage_review(actor=reviewer, task=one, stage_key="review", decision="approve")
    assert kept_tasks(project)["review_passed"] == 1
    assert kept_runs(project) == true_runs(project)
    assert kept_runs(project)[("annotate", "in_progress")] == 1
    assert kept_people(project) == {annotator.pk: 1}  # made[1]'s run, by whom
    # A bulk UPDATE outside the services (fixtures, SQL) is counted as well.
    Task.objects.filter(pk__in=[t.pk for t in made[2:]]).update(status=TaskStatus.IN_PROGRESS)
    StageRun.objects.filter(task__in=made[2:], stage_key="annotate").update(status="in_progress")
    assert (
        kept_tasks(project)
        == true_tasks(project)
        == {
            "in_progress": 4,
            "review_passed": 1,
        }
    )
    assert kept_runs(project) == true_runs(project)


def test_batch_delete_and_purge_leave_the_counts_once(
    project, manager, annotator, run_jobs, django_capture_on_commit_callbacks
):
    made = make(project, manager, 6)
    services.stage_start(actor=annotator, task=made[0], stage_key="annotate")
    selection = batch.batch_selection(user=manager, ids=[t.pk for t in made[:4]])
    with django_capture_on_commit_callbacks(execute=True):
        assert batch.task_batch_delete(actor=manager, selection=selection) == 4
    assert kept_tasks(project) == {"pending_start": 2} == true_tasks(project)
    assert kept_runs(project) == {("annotate", "ready"): 2, ("review", "blocked"): 2}
    run_jobs("default")  # the purge deletes the hidden task rows: not counted twice
    assert Task.all_objects.filter(project=project).count() == 2
    assert kept_tasks(project) == {"pending_start": 2}
    assert kept_runs(project) == true_runs(project)


def test_reconcile_repairs_wrong_counts_and_says_what_it_fixed(project, manager, capsys):
    make(project, manager, 3)
    blueprint_id = Task.objects.filter(project=project).first().blueprint_id
    # Counts gone wrong (e.g. rows written with the triggers disabled).
    TaskCount.objects.create(project=project, status="in_progress", blueprint_id=blueprint_id, n=7)
    RunCount.objects.create(
        project=project, stage_key="annotate", kind="annotate", status="ready", n=-1
    )
    assert kept_tasks(project) == {"pending_start": 3, "in_progress": 7}
    call_command("reconcile_counts", project=[project.pk])
    said = capsys.readouterr().out
    assert f"projects_taskcount ({project.pk}, 'in_progress', {blueprint_id}, None): -7" in said
    assert "2 count(s) corrected." in said
    assert kept_tasks(project) == {"pending_start": 3} == true_tasks(project)
    assert kept_runs(project) == true_runs(project)
    # Every key of the project is one row now; a second run finds nothing.
    assert TaskCount.objects.filter(project=project).count() == 1
    assert counts.reconcile([project.pk]) == []


def test_the_minute_counts_follow_due_dates_statuses_deletion_and_reconcile(
    project, manager, annotator, django_capture_on_commit_callbacks
):
    made = make(project, manager, 6)
    assert kept_due(project) == {}  # no due date, no minute row
    at = timezone.now().replace(second=0, microsecond=0) + timezone.timedelta(hours=5)
    seconds = timezone.timedelta(seconds=1)
    Task.objects.filter(pk__in=[t.pk for t in made[:3]]).update(due_at=at + 10 * seconds)
    Task.objects.filter(pk__in=[t.pk for t in made[3:5]]).update(due_at=at + 70 * seconds)
    minute = timezone.timedelta(minutes=1)
    assert kept_due(project) == {("pending_start", at): 3, ("pending_start", at + minute): 2}
    services.stage_start(actor=annotator, task=made[0], stage_key="annotate")  # status moves
    Task.objects.filter(pk=made[3].pk).update(due_at=None)  # a due date taken away
    Task.objects.filter(pk=made[5].pk).update(due_at=at + 59 * seconds)  # one given
    assert kept_due(project) == true_due(project)
    assert kept_due(project) == {
        ("in_progress", at): 1,
        ("pending_start", at): 3,
        ("pending_start", at + minute): 1,
    }
    selection = batch.batch_selection(user=manager, ids=[made[1].pk, made[4].pk])
    with django_capture_on_commit_callbacks(execute=True):
        batch.task_batch_delete(actor=manager, selection=selection)
    assert kept_due(project) == {("in_progress", at): 1, ("pending_start", at): 2}
    # Wrong rows (written with the triggers off) are repaired, and compaction keeps the sums.
    TaskDueCount.objects.create(project=project, status="pending_start", due_minute=at, n=4)
    assert [c.table for c in counts.reconcile([project.pk])] == ["projects_taskduecount"]
    assert kept_due(project) == true_due(project)
    counts.compact([project.pk])
    assert TaskDueCount.objects.filter(project=project).count() == 2
    assert kept_due(project) == true_due(project)


def test_minutes_a_day_past_are_dropped_and_gone_projects_forgotten(project, manager):
    """Reads never take a minute of an hour gone by: compaction and reconcile drop minutes
    more than a day past (no correction said for them), and reconcile of every project drops
    the rows of a project that no longer exists."""
    made = make(project, manager, 2)
    now = timezone.now().replace(second=0, microsecond=0)
    past, soon = now - timezone.timedelta(days=2), now + timezone.timedelta(hours=3)
    Task.objects.filter(pk=made[0].pk).update(due_at=past)
    Task.objects.filter(pk=made[1].pk).update(due_at=soon)
    assert kept_due(project) == {("pending_start", past): 1, ("pending_start", soon): 1}
    counts.compact([project.pk])
    assert kept_due(project) == {("pending_start", soon): 1}
    Task.objects.filter(pk=made[0].pk).update(status=TaskStatus.IN_PROGRESS)  # -1 / +1, past
    assert counts.reconcile([project.pk]) == []
    assert kept_due(project) == {("pending_start", soon): 1}
    figures = progress.task_counts(project_ids=[project.pk])[project.pk]
    assert (figures.overdue, figures.due_soon) == (1, 1)  # the past hour from the hour counts
    gone = project.pk + 10_000
    TaskDueCount.objects.create(project_id=gone, status="ready", due_minute=soon, n=3)
    assert ("projects_taskduecount", (gone, "ready", soon), -3) in [
        (c.table, c.key, c.change) for c in counts.reconcile()
    ]
    assert not TaskDueCount.objects.filter(project_id=gone).exists()


def test_compaction_folds_the_crowded_keys_and_leaves_single_rows_in_place(project, manager):
    made = make(project, manager, 2)
    soon = timezone.now().replace(second=0, microsecond=0) + timezone.timedelta(hours=3)
    Task.objects.filter(pk=made[0].pk).update(due_at=soon)
    Task.objects.filter(pk=made[1].pk).update(due_at=soon + timezone.timedelta(minutes=5))
    counts.compact([project.pk])
    alone = TaskDueCount.objects.get(
        project=project, due_minute=soon + timezone.timedelta(minutes=5)
    )
    for status in (TaskStatus.IN_PROGRESS, TaskStatus.PENDING_START, TaskStatus.IN_PROGRESS):
        Task.objects.filter(pk=made[0].pk).update(status=status)
    assert TaskDueCount.objects.filter(project=project, due_minute=soon).count() > 2
    counts.compact([project.pk])
    assert list(
        TaskDueCount.objects.filter(project=project, due_minute=soon).values_list("status", "n")
    ) == [("in_progress", 1)]  # the crowded key folded, its zero dropped
    assert TaskDueCount.objects.get(pk=alone.pk).n == 1  # the single row untouched
    assert kept_due(project) == true_due(project)


def test_the_overview_lists_cut_where_its_figures_cut(project, manager):
    """A task due 15 s before ``now``, in the same minute: not overdue yet, in the figures, in
    the Overview's lists and in the task list's overdue filter alike."""
    made = make(project, manager, 1)
    now = (timezone.now() + timezone.timedelta(hours=2)).replace(second=45, microsecond=0)
    Task.objects.filter(pk=made[0].pk).update(due_at=now.replace(second=30))
    figures = progress.task_counts(project_ids=[project.pk], now=now)[project.pk]
    overdue, soon = progress.overdue_tasks(project=project, now=now)
    assert (figures.overdue, figures.due_soon) == (0, 1)
    assert ([t.pk for t in overdue], [t.pk for t in soon]) == ([], [made[0].pk])
    later = now + timezone.timedelta(seconds=15)  # the next minute: overdue everywhere
    figures = progress.task_counts(project_ids=[project.pk], now=later)[project.pk]
    overdue, soon = progress.overdue_tasks(project=project, now=later)
    assert (figures.overdue, figures.due_soon) == (1, 0)
    assert ([t.pk for t in overdue], [t.pk for t in soon]) == ([made[0].pk], [])


def test_a_read_folds_a_crowded_project(project, manager, monkeypatch):
    made = make(project, manager, 3)
    for _ in range(4):  # each statement appends change rows
        Task.objects.filter(pk=made[0].pk).update(status=TaskStatus.IN_PROGRESS)
        Task.objects.filter(pk=made[0].pk).update(status=TaskStatus.PENDING_START)
    assert TaskCount.objects.filter(project=project).count() > 3
    monkeypatch.setattr(counts, "COMPACT_ABOVE", 3)
    assert kept_tasks(project) == {"pending_start": 3}
    assert TaskCount.objects.filter(project=project).count() == 1
    assert kept_tasks(project) == {"pending_start": 3}


@pytest.mark.parametrize("minute", [0, 1, 59])
def test_the_dashboard_figures_equal_counting_the_tasks(
    project, manager, annotator, reviewer, monkeypatch, minute
):
    """The known answer: the Overview's figures from the kept counts and from counting, at
    the start, inside and at the end of an hour (the due-hour edges)."""
    made = make(project, manager, 12)
    now = timezone.now().replace(minute=minute, second=30)
    Task.objects.filter(pk__in=[t.pk for t in made[:3]]).update(
        due_at=now - timezone.timedelta(days=1)
    )
    hours = timezone.timedelta(hours=1)
    second = timezone.timedelta(seconds=1)
    # Due in hours the kept counts add whole, in the hours ``now`` and ``soon`` cut, and on
    # both sides of the minutes they cut (``now`` is 30 s into its minute: overdue is due
    # before that minute began, due soon before the same minute 48 hours on).
    dues = (3 * hours, -hours / 3, hours / 3, 47.8 * hours, 49 * hours)
    dues += (-31 * second, -29 * second, 48 * hours - 31 * second, 48 * hours - 29 * second)
    for task, due in zip(made[3:], dues, strict=True):
        Task.objects.filter(pk=task.pk).update(due_at=now + due)
    for task in made[:3]:
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
    services.stage_submit(actor=annotator, task=made[0], stage_key="annotate")
    services.stage_review(actor=reviewer, task=made[0], stage_key="review", decision="approve")
    services.stage_submit(actor=annotator, task=made[1], stage_key="annotate")

    def figures():
        got = progress.project_progress(project=project, now=now)
        stages = [
            (s.key, s.blocked, s.ready, s.in_progress, s.in_review, s.done, s.alert)
            for s in got["stages"]
        ]
        keys = ("total", "by_status", "done", "overdue", "due_soon", "eta_reason")
        people = [(a.user_id, a.in_progress, a.done_7d) for a in got["annotators"]]
        return {k: got[k] for k in keys}, stages, people

    kept = figures()
    monkeypatch.setattr(counts, "kept", lambda: False)
    counted = figures()
    assert kept == counted
    # Overdue: two of made[:3] (one is done), -20 min, -31 s. Due soon: -29 s (its minute
    # has not ended), +20 min, +3 h, +47.8 h, +48 h - 31 s.
    assert kept[0]["overdue"] == 4 and kept[0]["due_soon"] == 5
    assert ("annotate", 0, 9, 1, 1, 1, "") in kept[1]  # made[1] waits for its review
    assert (annotator.pk, 1, 2) in kept[2]  # one run in progress, two done this week
