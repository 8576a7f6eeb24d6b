"""Tasks through the pick-and-place and default blueprints, via the real services."""

import pytest

from blueprints import services as blueprint_services
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from tasks import services
from tasks.models import StageRun, Task

pytestmark = pytest.mark.django_db


def runs(task):
    return {r.stage_key: r.status for r in task.runs.all()}


@pytest.fixture
def pick(project, manager):
    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example="pick-and-place"
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    return blueprint


def test_a_project_and_a_name_are_enough(project, manager):
    task = services.task_create(actor=manager, project=project, name="Episode 1")
    assert task.blueprint.name == "default" and task.status == "pending_start"
    assert runs(task) == {"annotate": "ready", "review": "blocked"}
    # One event for the creation, carrying the stage it opened.
    assert list(task.events.values_list("kind", "data")) == [
        (
            "created",
            {
                "blueprint": "default v1",
                "stages": [{"kind": "stage_ready", "stage": "annotate", "reason": ""}],
            },
        )
    ]


def test_default_flow_to_review_passed_with_a_task_delivery(project, manager, annotator, reviewer):
    task = services.task_create(
        actor=manager, project=project, name="t", annotators=["ana"], reviewers=["ravi"]
    )
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task.refresh_from_db()
    assert task.status == "in_progress"
    services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    task.refresh_from_db()
    assert task.status == "pending_review"
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    task.refresh_from_db()
    assert task.status == "review_passed"
    (delivery,) = task.deliveries.all()
    assert delivery.stage_key == "" and delivery.callback == "none"
    assert [a["label"] for a in delivery.payload["annotations"]] == ["outcome"]
    kinds = list(task.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["stage_completed", "status_changed", "delivered"] or "delivered" in kinds


def test_reject_reopens_for_the_same_annotator_with_feedback(project, manager, annotator, reviewer):
    task = services.task_create(actor=manager, project=project, name="t")
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_start(actor=reviewer, task=task, stage_key="review")
    services.stage_review(
        actor=reviewer, task=task, stage_key="review", decision="reject", comment="Box the cup"
    )
    task.refresh_from_db()
    annotate = task.runs.get(stage_key="annotate")
    assert (annotate.status, annotate.attempt, annotate.assignee, annotate.feedback) == (
        "in_progress",
        2,
        annotator,
        "Box the cup",
    )
    assert task.status == "in_progress"
    review = task.runs.get(stage_key="review")
    assert review.status == "blocked" and review.assignee == reviewer
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    task.refresh_from_db()
    assert task.status == "review_passed"
    first_pass = list(
        task.events.filter(kind__startswith="review_").values_list("data__first_pass", flat=True)
    )
    assert first_pass == [True, False]


def test_checks_refuse_a_submit_with_their_messages(project, manager, annotator, pick):
    task = services.task_create(actor=manager, project=project, name="t")
    services.stage_start(actor=annotator, task=task, stage_key="segments")
    services.annotation_create(
        actor=annotator,
        task=task,
        stage="segments",
        label="gripper_open",
        data={"start": 5, "end": 20},
    )
    services.annotation_create(
        actor=annotator,
        task=task,
        stage="segments",
        label="gripper_open",
        data={"start": 15, "end": 30},
        attributes={"description": "grasp"},
    )
    with pytest.raises(ApplicationError) as info:
        services.stage_submit(actor=annotator, task=task, stage_key="segments")
    messages = info.value.extra["checks"]
    assert any("overlaps" in m for m in messages)
    assert any("lacks the required description" in m for m in messages)
    assert task.runs.get(stage_key="segments").status == "in_progress"


def test_annotations_only_of_the_stage_taxonomy_and_with_fresh_versions(
    project, manager, annotator, pick
):
    task = services.task_create(actor=manager, project=project, name="t")
    with pytest.raises(InvalidTransition):
        services.annotation_create(
            actor=annotator,
            task=task,
            stage="segments",
            label="gripper_open",
            data={"start": 0, "end": 1},
        )
    services.stage_start(actor=annotator, task=task, stage_key="segments")
    with pytest.raises(ApplicationError, match="adds only gripper_open"):
        services.annotation_create(
            actor=annotator, task=task, stage="segments", label="object", data={}
        )
    a = services.annotation_create(
        actor=annotator,
        task=task,
        stage="segments",
        label="gripper_open",
        data={"start": 0, "end": 1},
        attributes={"description": "x"},
    )
    services.annotation_update(
        actor=annotator, annotation=a, version=1, data={"start": 0, "end": 4}
    )
    with pytest.raises(Conflict) as info:
        services.annotation_update(
            actor=annotator, annotation=a, version=1, data={"start": 0, "end": 9}
        )
    assert info.value.extra["version"] == 2


def test_status_machine_refuses_illegal_jumps(project, manager):
    task = services.task_create(actor=manager, project=project, name="t")
    with pytest.raises(InvalidTransition, match="cannot go from pending start to data submitted"):
        services.task_transition(task=task, to="data_submitted")


def test_unique_id_makes_creation_safe_to_retry(project, manager):
    first = services.task_create(actor=manager, project=project, name="t", unique_id="ext-1")
    with pytest.raises(Conflict) as info:
        services.task_create(actor=manager, project=project, name="t", unique_id="ext-1")
    assert info.value.extra == {"task": first.pk}


def test_bulk_creation_of_5000_tasks_with_bounded_queries(
    project, manager, django_assert_max_num_queries
):
    items = [{"name": f"task {i}", "annotators": ["ana"]} for i in range(5000)]
    with django_assert_max_num_queries(30):
        tasks = services.task_create_many(actor=manager, project=project, items=items)
    assert len(tasks) == 5000
    assert StageRun.objects.filter(task__project=project).count() == 10000
    assert Task.annotators.through.objects.count() == 5000


def test_creation_is_one_event_and_the_history_shows_each_stage_it_opened(
    project, manager, pick, client, api_as
):
    """The creation writes one ``created`` event carrying the stages it opened (instead of
    one event per stage); the task's history page and the events API still show each."""
    task = services.task_create(
        actor=manager, project=project, name="t", blueprint="pick-and-place"
    )
    opened = [r.stage_key for r in task.runs.order_by("id") if r.status == "ready"]
    assert len(opened) >= 2  # segments and objects run in parallel
    (created,) = task.events.all()
    assert created.kind == "created" and created.actor == manager
    assert [(s["kind"], s["stage"]) for s in created.data["stages"]] == [
        ("stage_ready", key) for key in opened
    ]
    client.force_login(manager)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    line = f"created by {manager.username} from pick-and-place v1" + "".join(
        f" · stage ready {key}" for key in opened
    )
    assert line in page
    events = api_as(manager).get(f"/api/v1/tasks/{task.pk}/events/").json()
    assert [(e["kind"], e["actor"], e["data"]["stages"]) for e in events] == [
        ("created", manager.username, created.data["stages"])
    ]
