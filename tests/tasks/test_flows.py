"""Consensus, stage-level delivery, logic routing and concurrency through the services."""

import threading

import pytest
from django.db import connection

from blueprints import services as blueprint_services
from core.exceptions import InvalidTransition
from projects import services as project_services
from tasks import services
from tasks.models import StageRun, Task
from tests.factories import UserFactory


def activate(project, manager, example):
    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example=example
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    return blueprint


def annotators(project, manager, *names, skills=()):
    users = []
    for name in names:
        user = UserFactory(username=name)
        project_services.membership_add(
            actor=manager, project=project, user=user, role="annotator", skills=list(skills)
        )
        users.append(user)
    return users


@pytest.mark.django_db
def test_consensus_needs_different_annotators_and_measures_agreement(project, manager):
    activate(project, manager, "driving-scene")
    a, b, c = annotators(project, manager, "a1", "a2", "a3", skills=["driving"])
    task = services.task_create(actor=manager, project=project, name="clip")
    weather = task.runs.filter(stage_key="weather")
    assert weather.count() == 3 and set(weather.values_list("status", flat=True)) == {"ready"}
    for user, value in ((a, "rain"), (b, "rain"), (c, "fog")):
        services.stage_start(actor=user, task=task, stage_key="weather")
        # Starting again gives the same run back, never a second one.
        assert services.stage_start(actor=user, task=task, stage_key="weather").assignee == user
        services.annotation_create(
            actor=user, task=task, stage="weather", label="weather", data={"value": value}
        )
        services.stage_submit(actor=user, task=task, stage_key="weather")
    runs = list(task.runs.filter(stage_key="weather"))
    assert {r.assignee.username for r in runs} == {"a1", "a2", "a3"}
    assert {r.status for r in runs} == {"completed"}
    assert runs[0].agreement == pytest.approx(1 / 3, abs=1e-3)  # one pair of three agrees
    event = task.events.get(kind="consensus")
    assert event.data["agreed"] is False and event.data["threshold"] == 0.7


@pytest.mark.django_db
def test_stage_level_delivery_delivers_each_annotate_stage_as_it_completes(
    project, manager, annotator
):
    project.delivery = "stage"
    project.save()
    activate(project, manager, "pick-and-place")
    task = services.task_create(actor=manager, project=project, name="t")
    services.stage_start(actor=annotator, task=task, stage_key="objects")
    services.stage_submit(actor=annotator, task=task, stage_key="objects")
    assert list(task.deliveries.values_list("stage_key", flat=True)) == ["objects"]
    services.stage_start(actor=annotator, task=task, stage_key="segments")
    services.annotation_create(
        actor=annotator, task=task, stage="segments", label="gripper_open",
        data={"start": 1, "end": 5}, attributes={"description": "grasp"},
    )  # fmt: skip
    services.stage_submit(actor=annotator, task=task, stage_key="segments")
    assert list(task.deliveries.values_list("stage_key", flat=True)) == ["objects", "segments"]
    payload = task.deliveries.get(stage_key="segments").payload
    assert [a["label"] for a in payload["annotations"]] == ["gripper_open"]


@pytest.mark.django_db
def test_logic_routing_through_the_services(project, manager, annotator, reviewer):
    activate(project, manager, "pick-and-place")
    routed = {}
    for i in range(12):
        task = services.task_create(actor=manager, project=project, name=f"t{i}", batch="day")
        services.stage_start(actor=annotator, task=task, stage_key="objects")
        services.stage_submit(actor=annotator, task=task, stage_key="objects")
        services.stage_start(actor=annotator, task=task, stage_key="segments")
        services.annotation_create(
            actor=annotator, task=task, stage="segments", label="gripper_open",
            data={"start": 1, "end": 5}, attributes={"description": "g"},
        )  # fmt: skip
        services.stage_submit(actor=annotator, task=task, stage_key="segments")
        route = task.runs.get(stage_key="route")
        task.refresh_from_db()
        routed[route.routed_to] = routed.get(route.routed_to, 0) + 1
        expected = "pending_review" if route.routed_to == "full_review" else "review_passed"
        assert task.status == expected, (route.reason, task.status)
        # Evaluating again never re-rolls.
        services.task_update(actor=manager, task=task, description="touched")
        assert task.runs.get(stage_key="route").routed_to == route.routed_to
    assert set(routed) <= {"full_review", "done"} and sum(routed.values()) == 12


@pytest.mark.django_db
def test_the_wrong_people_cannot_act(project, manager, annotator, reviewer):
    task = services.task_create(actor=manager, project=project, name="t", annotators=["ana"])
    other = annotators(project, manager, "bob")[0]
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="not an annotator of this task"):
        services.stage_start(actor=other, task=task, stage_key="annotate")
    with pytest.raises(PermissionDenied, match="Only annotators annotate"):
        services.stage_start(actor=reviewer, task=task, stage_key="annotate")
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    with pytest.raises(InvalidTransition, match="is blocked, not ready"):
        services.stage_start(actor=reviewer, task=task, stage_key="review")
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    project_services.membership_add(actor=manager, project=project, user=annotator, role="reviewer")
    with pytest.raises(PermissionDenied, match="Nobody reviews their own work"):
        services.stage_review(actor=annotator, task=task, stage_key="review", decision="approve")


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_and_claims_leave_a_consistent_state(manager):
    project = project_services.project_create(actor=manager, name="Race")
    users = annotators(project, manager, "r1", "r2", "r3", "r4")
    task = services.task_create(actor=manager, project=project, name="t")
    claimed, errors = [], []
    barrier = threading.Barrier(len(users))

    def claim(user):
        try:
            barrier.wait()
            run = services.stage_claim_next(actor=user)
            if run is not None:
                claimed.append(user.username)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in users]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and len(claimed) == 1  # one run, one winner
    winner = next(u for u in users if u.username == claimed[0])

    results = []
    barrier = threading.Barrier(2)

    def submit():
        try:
            barrier.wait()
            services.stage_submit(
                actor=winner, task=Task.objects.get(pk=task.pk), stage_key="annotate"
            )
            results.append("ok")
        except InvalidTransition:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == ["ok", "refused"]
    task.refresh_from_db()
    assert task.status == "pending_review"
    assert task.events.filter(kind="stage_submitted").count() == 1
    assert StageRun.objects.get(task=task, stage_key="review").status == "ready"


def use(project, manager, text):
    import yaml

    blueprint, _ = blueprint_services.blueprint_save(
        actor=manager, project=project, definition=yaml.safe_load(text), source=text
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)


VOTE_THEN_MAYBE_CHECK = """
name: vote
taxonomy: [{key: weather, kind: classification, choices: [clear, rain, fog]}]
stages:
  - {key: vote, kind: consensus, classes: [weather], annotators: 3, agreement: 0.9}
  - key: route
    kind: logic
    depends_on: [vote]
    rules: [{match: annotator, users: [v3], to: check}]
    else: done
  - {key: check, kind: review, depends_on: [route], reviews: [vote]}
"""


def vote(task, people, values):
    for user, value in zip(people, values, strict=True):
        services.stage_start(actor=user, task=task, stage_key="vote")
        label = task.annotations.filter(stage_key="vote", author=user).first()
        if label:
            services.annotation_update(
                actor=user, annotation=label, version=label.version,
                data={"value": value},
            )  # fmt: skip
        else:
            services.annotation_create(
                actor=user, task=task, stage="vote", label="weather", data={"value": value}
            )
        services.stage_submit(actor=user, task=task, stage_key="vote")


@pytest.mark.django_db
def test_the_annotator_rule_sees_the_third_consensus_annotator_not_the_reviewer(
    project, manager, reviewer
):
    use(project, manager, VOTE_THEN_MAYBE_CHECK.replace("users: [v3]", "users: [v3, ravi]"))
    people = annotators(project, manager, "v1", "v2", "v3")
    task = services.task_create(actor=manager, project=project, name="third")
    vote(task, people, ["rain", "rain", "rain"])
    route = task.runs.get(stage_key="route")
    assert (route.routed_to, route.reason) == ("check", "rule 1: by v3, ravi")

    task = services.task_create(actor=manager, project=project, name="others")
    vote(task, people[:2] + annotators(project, manager, "v4"), ["rain"] * 3)
    assert task.runs.get(stage_key="route").routed_to == "done"


@pytest.mark.django_db
def test_rework_after_a_reject_is_reviewed_again_and_not_delivered_before(
    project, manager, reviewer
):
    use(project, manager, VOTE_THEN_MAYBE_CHECK)
    people = annotators(project, manager, "v1", "v2", "v4")
    task = services.task_create(actor=manager, project=project, name="t")
    vote(task, people, ["rain", "fog", "clear"])  # they disagree: the review is forced
    assert task.runs.get(stage_key="check").status == "ready"
    assert not task.deliveries.exists()
    services.stage_review(
        actor=reviewer, task=task, stage_key="check", decision="reject", comment="It rains"
    )
    vote(task, people, ["rain", "rain", "rain"])  # fixed: they agree, routing says done
    task.refresh_from_db()
    assert task.runs.get(stage_key="route").routed_to == "done"
    check = task.runs.get(stage_key="check")
    assert (check.status, check.reason) == ("ready", "rework of vote after a reject")
    assert task.status == "pending_review"
    assert not task.deliveries.exists()
    services.stage_review(actor=reviewer, task=task, stage_key="check", decision="approve")
    task.refresh_from_db()
    assert task.status == "review_passed"
    assert task.deliveries.count() == 1


@pytest.mark.django_db
def test_a_root_logic_stage_routes_when_the_task_is_created(project, manager):
    use(
        project,
        manager,
        """
name: intake
taxonomy: [{key: object, kind: box}]
stages:
  - key: intake
    kind: logic
    rules: [{match: batch, batches: [night], to: careful}]
    else: quick
  - {key: careful, kind: annotate, depends_on: [intake], classes: [object]}
  - {key: quick, kind: annotate, depends_on: [intake], classes: [object]}
""",
    )
    night, day = services.task_create_many(
        actor=manager, project=project, items=[{"name": "n", "batch": "night"}, {"name": "d"}]
    )
    assert dict(night.runs.values_list("stage_key", "status")) == {
        "intake": "completed", "careful": "ready", "quick": "skipped",
    }  # fmt: skip
    assert night.runs.get(stage_key="intake").routed_to == "careful"
    assert dict(day.runs.values_list("stage_key", "status"))["quick"] == "ready"
    # The creation's one event records the route and each stage it opened or skipped.
    (created,) = night.events.all()
    assert created.kind == "created"
    assert [(s["kind"], s["stage"], s.get("to")) for s in created.data["stages"]] == [
        ("stage_routed", "intake", "careful"),
        ("stage_ready", "careful", None),
        ("stage_skipped", "quick", None),
    ]
    assert all(s["reason"] for s in created.data["stages"][::2])  # the route, the skip say why
