"""Stage actions on many tasks at once (tasks.services.batch_stages): the same scenario run
through the per-task services in one project and through the batched ones in another gives
the same runs, events, review outcomes, comments, deliveries, notifications and kept counts;
a batch is refused whole when a task may not take the action; its queries do not grow with
the number of tasks."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits.models import ReviewOutcome
from blueprints.services import blueprint_activate_newest, blueprint_save
from core.exceptions import ApplicationError
from notifications.models import Notification
from projects import counts
from projects.models import Project, Role
from projects.services import membership_add, project_create
from tasks import services
from tasks.models import Comment, Delivery, StageRun, Task, TaskEvent
from tasks.services.batch_stages import stage_review_many, stage_start_many
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Two annotate stages in parallel, a logic stage routing the night shift's work to a review
# of both (the rest is done), every decision taken by people.
ROUTED = {
    "name": "batch-routing",
    "taxonomy": [
        {"key": "segment", "kind": "segment"},
        {"key": "outcome", "kind": "classification", "choices": ["success", "failure"]},
    ],
    "stages": [
        {"key": "a", "kind": "annotate", "classes": ["segment"]},
        {"key": "b", "kind": "annotate", "classes": ["outcome"]},
        {
            "key": "route",
            "kind": "logic",
            "depends_on": ["a", "b"],
            "rules": [{"match": "batch", "batches": ["night"], "to": "check"}],
            "else": "done",
        },
        {"key": "check", "kind": "review", "depends_on": ["route"], "reviews": ["a", "b"]},
    ],
}
BATCHES = ["night", "night", "night", "night", "day"]


def _project(name, manager, annotator, reviewer, delivery="task"):
    project = project_create(actor=manager, name=name)
    membership_add(actor=manager, project=project, user=annotator, role=Role.ANNOTATOR)
    membership_add(actor=manager, project=project, user=reviewer, role=Role.REVIEWER)
    blueprint_save(actor=manager, project=project, definition=ROUTED)
    blueprint_activate_newest(actor=manager, project=project, name="batch-routing")
    if delivery != "task":
        Project.objects.filter(pk=project.pk).update(delivery=delivery)
        project.refresh_from_db()
    tasks = [
        services.task_create(
            actor=manager,
            project=project,
            name=f"episode {i}",
            batch=batch,
            annotators=["ana"],
            reviewers=["ravi"],
        )
        for i, batch in enumerate(BATCHES)
    ]
    return project, tasks


def _scenario(tasks, annotator, reviewer, batched: bool) -> None:
    def start(chosen, key, actor):
        if batched:
            stage_start_many(actor=actor, task_ids=[t.pk for t in chosen], stage_key=key)
        else:
            for t in chosen:
                services.stage_start(actor=actor, task=t, stage_key=key)

    def review(chosen, decision, comment=""):
        ids = [t.pk for t in chosen]
        if batched:
            stage_review_many(
                actor=reviewer, task_ids=ids, stage_key="check", decision=decision, comment=comment
            )
        else:
            for t in chosen:
                services.stage_review(
                    actor=reviewer, task=t, stage_key="check", decision=decision, comment=comment
                )

    def submit(chosen):
        for t in chosen:
            for key in ("a", "b"):
                services.stage_submit(actor=annotator, task=t, stage_key=key)

    start(tasks, "a", annotator)
    start(tasks[:2], "a", annotator)  # started twice: harmless
    start(tasks, "b", annotator)
    submit(tasks)  # the route decides on the second submit: night → check, day → done
    start(tasks[:1], "check", reviewer)
    review(tasks[:2], "reject", "The grasp ends too early.")  # tasks[1]'s review was ready
    submit(tasks[:2])  # the rework, back to the review
    review(tasks[:4], "approve", "Fine now.")


def _runs(task):
    return [
        (r.stage_key, r.replica, r.kind, r.status, r.attempt, r.assignee_id, r.routed_to,
         r.reason, r.feedback, r.rejected, r.started_at is not None,
         r.submitted_at is not None, r.completed_at is not None)
        for r in StageRun.objects.filter(task=task).order_by("stage_key", "replica")
    ]  # fmt: skip


def _events(task):
    def data(d):
        ids = {"comment_id", "delivery"}
        return {k: (v is not None) if k in ids else v for k, v in d.items()}

    return [
        (e.kind, e.stage_key, e.actor_id, data(e.data))
        for e in TaskEvent.objects.filter(task=task).order_by("id")
    ]


def _rest(task):
    outcomes = sorted(
        ReviewOutcome.objects.filter(task=task).values_list(
            "stage_key", "replica", "attempt", "annotator_id", "decided_by_id", "source",
            "accepted", "first",
        )
    )  # fmt: skip
    comments = sorted(
        Comment.objects.filter(task=task).values_list("kind", "body", "stage_key", "author_id")
    )
    deliveries = [
        (d.stage_key, d.payload["status"], d.payload.get("attempt"), len(d.payload["annotations"]))
        for d in Delivery.objects.filter(task=task).order_by("id")
    ]
    notes = sorted(Notification.objects.filter(task=task).values_list("user_id", "kind", "message"))
    task.refresh_from_db()
    return task.status, task.finished_at is not None, outcomes, comments, deliveries, notes


def _kept(project):
    runs = sorted(row[1:5] for row in counts.run_rows([project.pk]))
    return runs, counts.status_totals([project.pk])


@pytest.mark.parametrize("delivery", ["task", "stage"])
def test_batched_stage_actions_do_what_the_per_task_services_do(
    manager, annotator, reviewer, delivery
):
    one, singly = _project("One by one", manager, annotator, reviewer, delivery)
    many, batched = _project("In batches", manager, annotator, reviewer, delivery)
    _scenario(singly, annotator, reviewer, batched=False)
    _scenario(batched, annotator, reviewer, batched=True)

    for a, b in zip(singly, batched, strict=True):
        assert _runs(a) == _runs(b)
        assert _events(a) == _events(b)
        assert _rest(a) == _rest(b)
    # Every task through: the night shift reviewed (two of them rejected once), the day's done.
    assert {t.status for t in Task.objects.filter(project=many)} == {"review_passed"}
    assert TaskEvent.objects.filter(task__project=many, kind="review_rejected").count() == 2
    assert TaskEvent.objects.filter(task__project=many, kind="stage_reopened").count() == 4
    assert Notification.objects.filter(task__project=many, user=annotator).count() == 4
    # The kept counts follow, the same in both projects and equal to counting.
    assert _kept(one) == _kept(many)
    assert counts.reconcile([one.pk, many.pk]) == []


def test_a_batch_is_refused_whole_when_a_task_may_not_take_the_action(
    manager, annotator, reviewer, outsider
):
    project, tasks = _project("Refused", manager, annotator, reviewer)
    stage_start_many(actor=annotator, task_ids=[t.pk for t in tasks], stage_key="a")
    stage_start_many(actor=annotator, task_ids=[t.pk for t in tasks], stage_key="b")
    for t in tasks:
        for key in ("a", "b"):
            services.stage_submit(actor=annotator, task=t, stage_key=key)
    events = TaskEvent.objects.count()
    night, day = tasks[0], tasks[4]  # the day's review was skipped: the task is done

    with pytest.raises(ApplicationError) as refused:
        stage_review_many(
            actor=reviewer, task_ids=[night.pk, day.pk, 10**9], stage_key="check",
            decision="approve",
        )  # fmt: skip
    assert refused.value.field == "ids"
    assert [r["task"] for r in refused.value.extra["refused"]] == [day.pk, 10**9]
    assert "skipped, not in progress" in refused.value.message
    assert "not found" in refused.value.message
    # An annotator does not review; nobody sees another project's tasks.
    for actor in (annotator, outsider):
        with pytest.raises(ApplicationError):
            stage_review_many(
                actor=actor, task_ids=[night.pk], stage_key="check", decision="approve"
            )
    with pytest.raises(ApplicationError) as refused:
        stage_review_many(actor=outsider, task_ids=[night.pk], stage_key="check",
                          decision="approve")  # fmt: skip
    assert refused.value.extra["refused"] == [{"task": night.pk, "reason": "not found"}]
    for bad in ([], ["1"], [True], "1,2"):
        with pytest.raises(ApplicationError):
            stage_start_many(actor=annotator, task_ids=bad, stage_key="a")
    with pytest.raises(ApplicationError):
        stage_review_many(actor=reviewer, task_ids=[night.pk], stage_key="check", decision="ok")
    # Nothing was written, and the night task is still waiting for its review.
    assert TaskEvent.objects.count() == events
    assert night.runs.get(stage_key="check").status == StageRun.Status.READY
    stage_review_many(actor=reviewer, task_ids=[night.pk], stage_key="check", decision="approve")
    assert Task.objects.get(pk=night.pk).status == "review_passed"


def test_a_batch_takes_the_same_queries_for_3_tasks_as_for_12(manager, annotator, reviewer):
    project, _ = _project("Counted", manager, annotator, reviewer)
    tasks = [
        services.task_create(
            actor=manager, project=project, name=f"night {i}", batch="night",
            annotators=["ana"], reviewers=["ravi"],
        )
        for i in range(15)
    ]  # fmt: skip
    stage_start_many(actor=annotator, task_ids=[t.pk for t in tasks], stage_key="a")
    stage_start_many(actor=annotator, task_ids=[t.pk for t in tasks], stage_key="b")
    for t in tasks:
        for key in ("a", "b"):
            services.stage_submit(actor=annotator, task=t, stage_key=key)
    found = {}
    for size, chosen in (("few", tasks[:3]), ("many", tasks[3:])):
        ids = [t.pk for t in chosen]
        with CaptureQueriesContext(connection) as start:
            stage_start_many(actor=reviewer, task_ids=ids, stage_key="check")
        with CaptureQueriesContext(connection) as reject:
            stage_review_many(actor=reviewer, task_ids=ids, stage_key="check",
                              decision="reject", comment="Again.")  # fmt: skip
        for t in chosen:
            for key in ("a", "b"):
                services.stage_submit(actor=annotator, task=t, stage_key=key)
        with CaptureQueriesContext(connection) as approve:
            stage_review_many(actor=reviewer, task_ids=ids, stage_key="check",
                              decision="approve")  # fmt: skip
        found[size] = (len(start), len(reject), len(approve))
    assert found["few"] == found["many"]
    start, reject, approve = found["many"]
    assert start <= 13 and reject <= 21 and approve <= 21, found
    done = Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("status", flat=True)
    assert set(done) == {"review_passed"}


def test_the_batch_api_starts_a_stage_and_decides_reviews_for_a_manager(
    manager, annotator, reviewer, api_as
):
    project, tasks = _project("Through the API", manager, annotator, reviewer)
    night = [t.pk for t in tasks[:4]]
    client = api_as(manager)
    answer = client.post(
        "/api/v1/tasks/batch/",
        {"action": "start", "ids": [t.pk for t in tasks], "stage": "a"},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"affected": 5}
    assert set(StageRun.objects.filter(task__in=tasks, stage_key="a").values_list(
        "status", "assignee")) == {("in_progress", manager.pk)}  # fmt: skip
    stage_start_many(actor=annotator, task_ids=[t.pk for t in tasks], stage_key="b")
    for t in tasks:
        services.stage_submit(actor=manager, task=t, stage_key="a")
        services.stage_submit(actor=annotator, task=t, stage_key="b")
    # The manager annotated stage a: nobody reviews their own work, so all is refused.
    refused = client.post(
        "/api/v1/tasks/batch/",
        {"action": "approve", "ids": night, "stage": "check"},
        format="json",
    )
    assert refused.status_code == 400
    assert [r["task"] for r in refused.json()["refused"]] == night
    assert "Nobody reviews their own work." in refused.json()["ids"][0]
    # Another manager rejects by filter (the night shift's tasks of the project).
    other = UserFactory(username="mona")
    membership_add(actor=manager, project=project, user=other, role=Role.MANAGER)
    answer = api_as(other).post(
        "/api/v1/tasks/batch/",
        {"action": "reject", "filter": {"project": project.pk, "status": "pending_review"},
         "stage": "check", "comment": "Redo the grasp."},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"affected": 4}
    assert set(Task.objects.filter(pk__in=night).values_list("status", flat=True)) == {
        "in_progress"
    }
    assert Comment.objects.filter(task__in=night, body="Redo the grasp.").count() == 4
    # Reviewers and annotators do not act in batches; a bad stage is a clear 400.
    for user in (reviewer, annotator):
        answer = api_as(user).post(
            "/api/v1/tasks/batch/", {"action": "approve", "ids": night, "stage": "check"},
            format="json",
        )  # fmt: skip
        assert answer.status_code == 403
    answer = client.post(
        "/api/v1/tasks/batch/", {"action": "start", "ids": night, "stage": "nope"}, format="json"
    )
    assert answer.status_code == 400
    assert "no stage “nope”" in answer.json()["ids"][0]
