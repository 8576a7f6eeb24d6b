"""The queries of each stage action on the demo's blueprint (pick-and-place), as the people
who do the work (an annotator with the robotics skill, a reviewer; nobody an administrator,
so the permission checks are paid as in production), on a task with a two-episode dataset.

Each action locks the task once and reads what it needs in a bounded number of queries,
whatever the number of tasks and runs in the project: the same counts with 1 task or with
many, many of them held by the same people. Behaviour is checked along the way: events,
notifications, quality marks and review outcomes are all still written.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits.models import QualityDirty, ReviewOutcome
from notifications.models import Notification
from tasks import services
from tasks.models import Delivery, StageRun, TaskEvent

pytestmark = pytest.mark.django_db

# Queries per call inside the test's transaction (savepoints, not BEGIN/COMMIT; the quality
# mark re-written after commit is not run here). Before the reads were batched: start 13
# (12 when the task's status stays), box 12, submit 19, segment 10, submit routed 19,
# review start 13, reject 26, resubmit 19, approve 22.
BOUNDS = {
    "start": 8,
    "box": 8,
    "submit": 10,
    "segment": 6,
    "submit_routed": 11,
    "review_start": 7,
    "review_reject": 13,
    "resubmit": 11,
    "review_approve": 13,
}


@pytest.fixture
def pick_and_place(project, manager):
    from blueprints import services as blueprint_services

    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example="pick-and-place"
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    return project


def _task(project, manager, dataset, name):
    # The night shift's work is always reviewed (the blueprint's route, rule 5).
    return services.task_create(
        actor=manager,
        project=project,
        name=name,
        datasets=[dataset.pk],
        annotators=["ana"],
        reviewers=["ravi"],
        batch="night-shift",
    )


class Counted:
    """Each call's queries, by kind, under ``django_assert_max_num_queries``."""

    def __init__(self, assert_max):
        self.assert_max = assert_max
        self.counts: dict[str, list[int]] = {}

    def __call__(self, kind, function, **kwargs):
        with self.assert_max(BOUNDS[kind]) as captured:
            result = function(**kwargs)
        self.counts.setdefault(kind, []).append(len(captured))
        return result


def _flow(task, annotator, reviewer, dataset, call) -> None:
    """A task's whole life: objects (a box on its sampled episode), segments (a grasp), the
    route sends it to full review, rejected once with a comment, reworked, approved."""
    from tasks.services.base import spec_for

    objects = spec_for(task.blueprint).by_key["objects"]
    samples = list(dataset.samples.order_by("index"))
    (sampled,) = services.stage_samples(task=task, stage=objects, samples=samples)
    call("start", services.stage_start, actor=annotator, task=task, stage_key="objects")
    call(
        "box", services.annotation_create, actor=annotator, task=task, stage="objects",
        label="object", sample=sampled.pk, data={"frame": 0, "x": 1, "y": 1, "w": 4, "h": 4},
        attributes={"category": "cup"},
    )  # fmt: skip
    call("submit", services.stage_submit, actor=annotator, task=task, stage_key="objects")
    call("start", services.stage_start, actor=annotator, task=task, stage_key="segments")
    call(
        "segment", services.annotation_create, actor=annotator, task=task, stage="segments",
        label="gripper_open", data={"start": 1, "end": 3}, attributes={"description": "grasp"},
    )  # fmt: skip
    call("submit_routed", services.stage_submit, actor=annotator, task=task,
         stage_key="segments")  # fmt: skip
    call("review_start", services.stage_start, actor=reviewer, task=task, stage_key="full_review")
    call(
        "review_reject", services.stage_review, actor=reviewer, task=task,
        stage_key="full_review", decision="reject", comment="The grasp ends too early.",
    )  # fmt: skip
    for key in ("objects", "segments"):
        call("resubmit", services.stage_submit, actor=annotator, task=task, stage_key=key)
    call("review_approve", services.stage_review, actor=reviewer, task=task,
         stage_key="full_review", decision="approve")  # fmt: skip


def test_each_stage_action_stays_within_a_handful_of_queries(
    pick_and_place, manager, annotator, reviewer, dataset, django_assert_max_num_queries
):
    call = Counted(django_assert_max_num_queries)
    task = _task(pick_and_place, manager, dataset, "Episode pair")
    _flow(task, annotator, reviewer, dataset, call)

    # Everything a stage action did is still there.
    runs = {r.stage_key: r for r in task.runs.all()}
    assert runs["route"].routed_to == "full_review"
    assert runs["tool_detail"].status == StageRun.Status.SKIPPED  # a cup, not a tool
    assert runs["objects"].attempt == runs["segments"].attempt == 2
    assert (runs["objects"].samples_total, runs["objects"].samples_complete) == (1, 1)
    assert runs["full_review"].status == StageRun.Status.COMPLETED
    assert runs["full_review"].assignee == reviewer
    task.refresh_from_db()
    assert task.status == "review_passed"
    kinds = list(task.events.order_by("id").values_list("kind", flat=True))
    for kind in ("stage_started", "stage_submitted", "stage_routed", "stage_skipped"):
        assert kind in kinds
    assert kinds.count("review_rejected") == kinds.count("review_approved") == 1
    assert kinds.count("stage_reopened") == 2
    assert kinds[-3:] == ["review_approved", "status_changed", "delivered"]
    assert Delivery.objects.filter(task=task, stage_key="").count() == 1
    # Sent back: ana is told (once per reopened stage), with the reviewer's comment.
    told = Notification.objects.filter(user=annotator, kind="review_rejected")
    assert told.count() == 2
    assert all("The grasp ends too early." in n.message for n in told)
    # Review outcomes: the first decision counts towards the first-pass rate, the second not.
    outcomes = ReviewOutcome.objects.filter(task=task).order_by("id")
    assert [(o.stage_key, o.attempt, o.accepted, o.first) for o in outcomes] == [
        ("segments", 1, False, True),
        ("objects", 1, False, True),
        ("segments", 2, True, False),
        ("objects", 2, True, False),
    ]
    assert QualityDirty.objects.filter(project=pick_and_place).exists()


def test_the_queries_do_not_grow_with_the_project(
    pick_and_place, manager, annotator, reviewer, dataset, django_assert_max_num_queries
):
    small = Counted(django_assert_max_num_queries)
    _flow(_task(pick_and_place, manager, dataset, "First"), annotator, reviewer, dataset, small)
    # Forty more tasks on the same dataset, each with work started, submitted and reviewed
    # by the same people: their runs, events, outcomes and deliveries are never read.
    for i in range(40):
        other = _task(pick_and_place, manager, dataset, f"Other {i}")
        _flow(other, annotator, reviewer, dataset, Counted(django_assert_max_num_queries))
    assert StageRun.objects.filter(task__project=pick_and_place).count() > 200
    large = Counted(django_assert_max_num_queries)
    _flow(_task(pick_and_place, manager, dataset, "Last"), annotator, reviewer, dataset, large)
    assert large.counts == small.counts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no FOR UPDATE")
def test_starting_locks_only_the_task_row(pick_and_place, manager, annotator, reviewer, dataset):
    """One lock per action: the task's row, not its project's or blueprint's (every action
    of a project would queue behind one another on the project row)."""
    task = _task(pick_and_place, manager, dataset, "Locks")
    with CaptureQueriesContext(connection) as captured:
        services.stage_start(actor=annotator, task=task, stage_key="objects")
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1
    assert locks[0].endswith('FOR UPDATE OF "tasks_task"')
    assert TaskEvent.objects.filter(task=task, kind="stage_started").count() == 1
