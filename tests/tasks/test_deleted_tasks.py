"""A deleted task disappears at once — from every list, count, page, export and work queue —
before the purge job has run; its unique id is free again; the purge (a real worker) then
removes it. And no raw SQL in the apps reads ``tasks_task`` without the deleted filter."""

import ast
import json
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from projects.progress import task_counts
from queues import services as export_services
from tasks import selectors, services
from tasks.models import StageRun, Task, TaskDeletion, TaskEvent

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_tasks(project, manager, annotator):
    gone = services.task_create(
        actor=manager, project=project, name="Gone task", unique_id="ep-1", annotators=["ana"]
    )
    kept = services.task_create(
        actor=manager, project=project, name="Kept task", unique_id="ep-2", annotators=["ana"]
    )
    services.stage_start(actor=annotator, task=gone, stage_key="annotate")  # in My work
    return gone, kept


def delete_over_the_api(api_as, manager, task, capture) -> None:
    with capture(execute=True):  # the purge job is enqueued after commit; no worker runs yet
        response = api_as(manager).post(
            "/api/v1/tasks/batch/", {"action": "delete", "ids": [task.pk]}, format="json"
        )
    assert response.json() == {"affected": 1}


def test_a_deleted_task_vanishes_everywhere_at_once_and_the_purge_removes_it(
    two_tasks,
    project,
    manager,
    annotator,
    api_as,
    client,
    run_jobs,
    django_capture_on_commit_callbacks,
):
    gone, kept = two_tasks
    delete_over_the_api(api_as, manager, gone, django_capture_on_commit_callbacks)
    assert Task.all_objects.filter(pk=gone.pk, deleted_at__isnull=False).exists()  # not purged

    # The list API (ids read first, then rows: raw SQL built from the ORM's) and its count.
    listing = api_as(manager).get(f"/api/v1/tasks/?project={project.pk}").json()
    assert [t["name"] for t in listing["results"]] == ["Kept task"]
    assert listing["count"] == 1
    assert api_as(manager).get(f"/api/v1/tasks/{gone.pk}/").status_code == 404
    # /tasks/ and its tab counts (raw SQL around the ORM's).
    client.force_login(manager)
    page = client.get(reverse("tasks:list")).content.decode()
    assert "Kept task" in page and "Gone task" not in page
    assert client.get(reverse("tasks:detail", args=[gone.pk])).status_code == 404
    counts, _ = selectors.status_counts(selectors.task_list_for_user(user=manager, filters={}))
    assert counts == {"all": 1, "pending_start": 1}
    # The project dashboard.
    assert task_counts(project_ids=[project.pk])[project.pk].total == 1
    assert client.get(reverse("projects:detail", args=[project.slug])).status_code == 200
    # My work and claiming: the run ana had started went with the task.
    assert {r.task_id for r in selectors.my_work_runs(user=annotator)} == {kept.pk}
    client.force_login(annotator)
    assert "Gone task" not in client.get(reverse("workspace:mine")).content.decode()
    claimed = api_as(annotator).post("/api/v1/tasks/next/")
    assert claimed.json()["id"] == kept.pk
    # An export of every task of the project (a real worker).
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = export_services.export_start(
            actor=manager, project=project, format="jsonl", options={"include_unfinished": True}
        )
    run_jobs("exports")
    export.refresh_from_db()
    assert export.status == "finished", export.error
    lines = (export_services.export_dir(export) / "tasks.jsonl").read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["Kept task"]

    # The unique id is free at once: the same episode can be sent again before the purge.
    again = services.task_create(actor=manager, project=project, name="Again", unique_id="ep-1")
    run_jobs("default")  # the purge
    assert not Task.all_objects.filter(pk=gone.pk).exists()
    assert not TaskEvent.objects.filter(task_id=gone.pk).exists()
    assert set(Task.objects.values_list("unique_id", flat=True)) == {"ep-1", "ep-2"}
    assert StageRun.objects.filter(task=again).exists()


def test_a_purge_that_did_not_run_is_finished_by_the_next(
    two_tasks, project, manager, api_as, run_jobs, redis_conn, django_capture_on_commit_callbacks
):
    gone, kept = two_tasks
    delete_over_the_api(api_as, manager, gone, django_capture_on_commit_callbacks)
    redis_conn.flushdb()  # the job is lost (Redis emptied, or its worker died before it ran)
    assert Task.all_objects.filter(pk=gone.pk).exists()
    assert not Task.objects.filter(pk=gone.pk).exists()  # still hidden meanwhile
    delete_over_the_api(api_as, manager, kept, django_capture_on_commit_callbacks)
    run_jobs("default")  # the second delete's purge takes both
    assert not Task.all_objects.exists()


def test_deleting_a_deleted_task_again_counts_nothing(
    two_tasks, manager, api_as, django_capture_on_commit_callbacks
):
    gone, _ = two_tasks
    delete_over_the_api(api_as, manager, gone, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(manager).post(
            "/api/v1/tasks/batch/", {"action": "delete", "ids": [gone.pk]}, format="json"
        )
    assert response.json() == {"affected": 0}
    assert TaskDeletion.objects.filter(task_ids__contains=[gone.pk]).count() == 1


APPS = [
    "activity", "audits", "blueprints", "core", "experience", "notifications", "projects",
    "queues", "reports", "tasks",
]  # fmt: skip
READS_TASKS = re.compile(r"\b(FROM|JOIN)\s+tasks_task\b(?!_)", re.IGNORECASE)


def test_no_raw_sql_reads_tasks_without_the_deleted_filter():
    """Raw SQL does not go through Task.objects: every literal that reads ``tasks_task``
    must say ``deleted_at`` (the purge's own statements are ORM-built)."""
    forgotten = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                elif isinstance(node, ast.JoinedStr):
                    text = "".join(
                        v.value
                        for v in node.values
                        if isinstance(v, ast.Constant) and isinstance(v.value, str)
                    )
                else:
                    continue
                if READS_TASKS.search(text) and "deleted_at" not in text:
                    forgotten.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not forgotten, forgotten


# A read of events keyed by one task (a page or API of a deleted task answers 404 first).
KEYED_BY_TASK = re.compile(r"""\btask(_id)?(__in)?\s*=|task__deleted_at""")
WRITES = re.compile(r"TaskEvent\.objects\.(bulk_create|create)\(")
READS_EVENTS = re.compile(r"\b(FROM|JOIN)\s+tasks_taskevent\b", re.IGNORECASE)


def test_every_read_of_events_across_tasks_leaves_the_deleted_tasks_out():
    """A deleted task's events wait for the purge (tasks.services.deletion): every statement
    that reads ``TaskEvent.objects`` is keyed by a task or filters ``task__deleted_at``, and
    raw SQL that reads ``tasks_taskevent`` says ``deleted_at``."""
    forgotten = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.Return | ast.Expr):
                    text = ast.get_source_segment(source, node) or ""
                    reads = text.count("TaskEvent.objects.") - len(WRITES.findall(text))
                    if reads and not KEYED_BY_TASK.search(text):
                        forgotten.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if READS_EVENTS.search(node.value) and "deleted_at" not in node.value:
                        forgotten.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not forgotten, forgotten


def test_a_deleted_tasks_history_waits_for_the_purge_and_counts_nowhere_meanwhile(
    task, project, manager, annotator, reviewer, run_jobs, django_capture_on_commit_callbacks
):
    from reports.dashboard import reviewer_section
    from reports.periods import Period
    from reports.selectors import activity

    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    today = Period(timezone.localdate(), timezone.localdate())

    def reviews() -> tuple[int, float]:
        table, _ = activity(period=today, project_ids=[project.pk])
        everyone, _ = activity(period=today)
        mine = sum(cell["reviews"] for cell in table[reviewer.pk].values())
        assert mine == sum(cell["reviews"] for cell in everyone[reviewer.pk].values())
        return reviewer_section(user=reviewer)["reviewed_today"], mine

    assert reviews() == (1, 1)
    with django_capture_on_commit_callbacks(execute=True):
        services.task_delete(actor=manager, task=task)
    assert TaskEvent.objects.filter(task_id=task.pk, kind="review_approved").exists()  # kept
    assert reviews() == (0, 0)  # as after the purge
    run_jobs("default")
    assert not TaskEvent.objects.filter(task_id=task.pk).exists()
    assert reviews() == (0, 0)


def test_a_deleted_tasks_delivery_leaves_the_audit_queue_at_once(
    project, manager, annotator, reviewer, dataset
):
    from audits import services as audits
    from tests.audits.test_audit_services import delivered

    gone, kept = (
        delivered(project, manager, annotator, reviewer, dataset, name=name, boxes=1)
        for name in ("gone", "kept")
    )
    project.settings = {"audit_percent": 100}
    project.save(update_fields=["settings"])
    assert audits.audit_queue(actor=reviewer).count() == 2
    services.task_delete(actor=manager, task=gone)  # its delivery waits for the purge
    assert [d.task_id for d in audits.audit_queue(actor=reviewer)] == [kept.pk]
    assert audits.audit_claim_next(actor=reviewer).task_id == kept.pk


def test_the_daily_clean_up_purges_what_a_lost_purge_left(
    two_tasks, manager, api_as, run_jobs, redis_conn, django_capture_on_commit_callbacks
):
    import django_rq

    from queues.jobs import clean_exports_job

    gone, kept = two_tasks
    delete_over_the_api(api_as, manager, gone, django_capture_on_commit_callbacks)
    redis_conn.flushdb()  # the purge job is lost
    django_rq.get_queue("default", commit_mode="auto").enqueue(clean_exports_job)
    run_jobs("default")
    assert not Task.all_objects.filter(pk=gone.pk).exists()
    assert Task.objects.filter(pk=kept.pk).exists()


def test_acting_on_a_task_deleted_meanwhile_answers_404(
    two_tasks, manager, annotator, api_as, django_capture_on_commit_callbacks
):
    from django.http import Http404

    gone, kept = two_tasks
    stale = Task.objects.get(pk=kept.pk)  # read by a request before the delete
    delete_over_the_api(api_as, manager, kept, django_capture_on_commit_callbacks)
    with pytest.raises(Http404):
        services.stage_start(actor=annotator, task=stale, stage_key="annotate")
    response = api_as(annotator).post(f"/api/v1/tasks/{kept.pk}/stages/annotate/start/")
    assert response.status_code == 404


# --- what the audits, the webhooks and project deletion see of a deleted task ---------------


def test_a_deleted_tasks_callback_is_never_sent(
    api_as, manager, annotator, reviewer, project, run_jobs, settings,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from tasks.models import Delivery
    from tests.tasks.test_api_journey import Receiver

    settings.STAGECRAFT_ALLOW_PRIVATE_CALLBACKS = True
    receiver = Receiver(failures=0)
    try:
        task = services.task_create(
            actor=manager, project=project, name="Hooked", annotators=["ana"],
            callback_url=receiver.url,
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):  # the send job is queued
            services.stage_start(actor=annotator, task=task, stage_key="annotate")
            services.stage_submit(actor=annotator, task=task, stage_key="annotate")
            services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
        delivery = Delivery.objects.get(task_id=task.pk)
        assert delivery.callback == "pending"
        delete_over_the_api(api_as, manager, task, django_capture_on_commit_callbacks)
        run_jobs("webhooks")  # the job queued before the delete runs now
        assert receiver.received == []
        delivery.refresh_from_db()
        assert delivery.callback == "failed"
        assert [a.error for a in delivery.attempts.all()] == ["task deleted"]
    finally:
        receiver.close()


@pytest.fixture
def audited(project, manager, annotator, reviewer, dataset):
    """A delivered task with a completed audit (two errors: one accepted, one waiting for
    the annotator's answer) and an open audit of another."""
    from audits import services as audits
    from tests.audits.test_audit_services import delivered

    done, open_ = (
        delivered(project, manager, annotator, reviewer, dataset, name=name, boxes=1)
        for name in ("Audited task", "Open audit task")
    )
    completed = audits.audit_create(actor=reviewer, task=done, kind="fixless")
    accepted, _ = (
        audits.finding_add(
            actor=reviewer,
            audit=completed,
            type="error",
            category="geometry",
            annotation=done.boxes[0].pk,
            note="Too loose",
        )  # fmt: skip
        for _ in range(2)
    )
    audits.finding_respond(actor=annotator, finding=accepted, response="accept")  # counts
    completed = audits.audit_complete(actor=reviewer, audit=completed)
    return done, completed, open_, audits.audit_create(actor=reviewer, task=open_, kind="fixless")


def test_acting_on_an_open_audit_of_a_deleted_task_answers_404(
    audited, api_as, manager, reviewer, django_capture_on_commit_callbacks
):
    from django.http import Http404

    from audits import services as audits

    _, _, task, audit = audited
    delete_over_the_api(api_as, manager, task, django_capture_on_commit_callbacks)
    response = api_as(reviewer).post(f"/api/v1/audits/{audit.pk}/complete/", {}, format="json")
    assert response.status_code == 404, response.content
    finding = api_as(reviewer).post(
        f"/api/v1/audits/{audit.pk}/findings/", {"type": "flag", "note": "x"}, format="json"
    )
    assert finding.status_code == 404
    with pytest.raises(Http404):  # the service itself, reached with the audit object
        audits.audit_complete(actor=reviewer, audit=audit)


def test_a_deleted_tasks_audits_are_no_longer_listed_counted_or_opened(
    audited, project, api_as, client, manager, reviewer, annotator,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from audits.rollups import quality_refresh
    from audits.selectors import audited_tasks, project_quality
    from reports.dashboard import feedback_waiting, reviewer_section

    task, completed, _, open_audit = audited
    quality_refresh(project)
    counts = project_quality(project=project)["counts"]
    assert (counts["audits"], counts["errors"]) == (1, 1)
    assert [a.pk for a in audited_tasks(project=project)] == [completed.pk]
    assert [f.task_id for f in feedback_waiting(user=annotator)["findings"]] == [task.pk]
    assert reviewer_section(user=reviewer)["audited_today"] == 1
    delete_over_the_api(api_as, manager, task, django_capture_on_commit_callbacks)

    listed = api_as(reviewer).get("/api/v1/audits/").json()
    assert [a["id"] for a in listed["results"]] == [open_audit.pk]
    assert api_as(reviewer).get(f"/api/v1/audits/{completed.pk}/").status_code == 404
    client.force_login(reviewer)
    assert "Audited task" not in client.get(reverse("audits:list")).content.decode()
    assert client.get(reverse("audits:detail", args=[completed.pk])).status_code == 404
    assert not audited_tasks(project=project).exists()
    quality_refresh(project)  # the delete marked the project's figures to be rebuilt
    counts = project_quality(project=project)["counts"]
    assert (counts["audits"], counts["errors"]) == (0, 0)
    # The annotator's dashboard no longer asks to answer a finding on the deleted task.
    assert feedback_waiting(user=annotator)["findings"] == []
    assert reviewer_section(user=reviewer)["audited_today"] == 0  # as after the purge


def test_a_post_pinned_to_a_deleted_task_no_longer_links_to_it(
    two_tasks, project, manager, annotator, api_as, client, django_capture_on_commit_callbacks
):
    from experience import services as experience

    gone, _ = two_tasks
    post = experience.post_create(
        actor=annotator, project=project, title="Grip", body="Close slowly.", task=gone.pk
    )
    client.force_login(annotator)
    page = f"/projects/{project.slug}/experience/{post.pk}/"
    assert reverse("tasks:detail", args=[gone.pk]) in client.get(page).content.decode()
    delete_over_the_api(api_as, manager, gone, django_capture_on_commit_callbacks)
    shown = client.get(page).content.decode()
    assert "Grip" in shown and reverse("tasks:detail", args=[gone.pk]) not in shown
    listed = client.get(f"/projects/{project.slug}/experience/").content.decode()
    assert "Grip" in listed and reverse("tasks:detail", args=[gone.pk]) not in listed


def test_a_project_whose_tasks_all_await_their_purge_is_deleted_with_them(
    two_tasks, project, manager, api_as, django_capture_on_commit_callbacks
):
    from projects import services as project_services
    from projects.models import Project

    for task in two_tasks:
        delete_over_the_api(api_as, manager, task, django_capture_on_commit_callbacks)
    assert Task.all_objects.filter(project=project).count() == 2  # no purge has run
    project_services.project_delete(actor=manager, project=project)
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Task.all_objects.filter(pk__in=[t.pk for t in two_tasks]).exists()
    assert not TaskEvent.objects.filter(task_id__in=[t.pk for t in two_tasks]).exists()
