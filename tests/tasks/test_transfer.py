"""Transfer (hand over, move) and reassignment that moves work (tasks.services.transfer)."""

import pytest
from django.core.exceptions import PermissionDenied

from core.exceptions import ApplicationError, InvalidTransition
from notifications.models import Notification
from projects import services as project_services
from projects.models import Role
from tasks import services
from tasks.batch import batch_selection, task_batch_assign
from tasks.models import StageRun, Task, TaskEvent
from tasks.services.transfer import run_transfer, transfer_candidates
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ben(project, manager):
    user = UserFactory(username="ben")
    project_services.membership_add(
        actor=manager, project=project, user=user, role=Role.ANNOTATOR, skills=["robotics"]
    )
    return user


@pytest.fixture
def cleo(project, manager):
    user = UserFactory(username="cleo")
    project_services.membership_add(actor=manager, project=project, user=user, role=Role.ANNOTATOR)
    return user


def annotate_run(task) -> StageRun:
    return task.runs.get(stage_key="annotate")


def assign(manager, task, **people):
    selection = batch_selection(user=manager, ids=[task.pk])
    return task_batch_assign(actor=manager, selection=selection, **people)


def test_reassignment_moves_the_run_in_progress_and_both_people_act_correctly(
    manager, annotator, ben, task
):
    before = annotate_run(task)
    assign(manager, task, annotators=["ben"])
    run = annotate_run(task)
    assert (run.assignee, run.status, run.attempt) == (ben, "in_progress", before.attempt)
    assert task.annotations.get().author == annotator  # the work is kept
    moved = TaskEvent.objects.get(task=task, kind="run_transferred")
    assert moved.data | {"reason": ""} == {
        "replica": 0, "from": "ana", "to": "ben", "reason": "", "via": "reassign", "attempt": 1,
    }  # fmt: skip
    assert moved.stage_key == "annotate" and moved.actor == manager
    # Ben hears of the work he was given; the manager who moved it hears nothing.
    assert [n.user for n in Notification.objects.all()] == [ben]
    # The new annotator continues: edits the annotation and submits.
    first = task.annotations.get()
    services.annotation_update(
        actor=ben, annotation=first, version=first.version, data={"value": "failure"}
    )
    # The old one is refused with a clear message.
    with pytest.raises(PermissionDenied, match="annotator"):
        services.annotation_create(
            actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "x"}
        )
    with pytest.raises(PermissionDenied, match="You are not an annotator of this task"):
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_submit(actor=ben, task=task, stage_key="annotate")
    assert annotate_run(task).status == "completed"
    assert Task.objects.get(pk=task.pk).status == "pending_review"


def test_several_people_added_asks_and_moves_answers(manager, annotator, ben, cleo, task):
    with pytest.raises(ApplicationError) as asked:
        assign(manager, task, annotators=["ben", "cleo"])
    assert asked.value.field == "moves"
    assert "ana's 1 open run to ben or cleo" in asked.value.message
    assert asked.value.extra["choices"] == {"ana": ["ben", "cleo"]}
    assert annotate_run(task).assignee == annotator  # nothing changed
    assert list(Task.objects.get(pk=task.pk).annotators.values_list("username", flat=True)) == [
        "ana"
    ]
    assign(manager, task, annotators=["ben", "cleo"], moves={"ana": "cleo"})
    assert annotate_run(task).assignee == cleo
    with pytest.raises(ApplicationError, match="not among the new annotators"):
        assign(manager, task, annotators=["ben"], moves={"cleo": "olga"})


def test_removed_with_nobody_added_sends_the_run_back_to_the_pool_with_its_work(
    manager, annotator, ben, task
):
    assign(manager, task, annotators=["ana", "ben"])
    assert annotate_run(task).assignee == annotator  # ana still named: nothing moves
    assign(manager, task, annotators=["ben"])
    run = annotate_run(task)
    assert (run.assignee, run.status, run.started_at) == (None, "ready", None)
    moved = TaskEvent.objects.get(task=task, kind="run_transferred")
    assert moved.data["to"] == "" and moved.data["unassigned"] is True
    assert "back to the pool" in moved.data["reason"]
    assert task.annotations.count() == 1
    services.stage_start(actor=ben, task=task, stage_key="annotate")
    assert annotate_run(task).assignee == ben


def test_reassigning_reviewers_moves_a_reserved_review_run(manager, annotator, reviewer, task):
    other = UserFactory(username="rita")
    project_services.membership_add(
        actor=manager, project=task.project, user=other, role=Role.REVIEWER
    )
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_start(actor=reviewer, task=task, stage_key="review")
    assign(manager, task, reviewers=["rita"])
    review = task.runs.get(stage_key="review")
    assert (review.assignee, review.status) == (other, "in_progress")
    assert TaskEvent.objects.get(task=task, kind="run_transferred").data["from"] == "ravi"


def test_the_task_edit_path_and_task_update_move_work_too(manager, annotator, ben, cleo, task):
    with pytest.raises(ApplicationError) as asked:
        services.task_update(actor=manager, task=task, annotators=["ben", "cleo"])
    assert asked.value.field == "moves"
    services.task_update(actor=manager, task=task, annotators=["ben", "cleo"], moves={"ana": "ben"})
    assert annotate_run(task).assignee == ben


def test_hand_over_keeps_the_work_and_time_and_the_new_person_continues(
    annotator, ben, task, manager
):
    run = annotate_run(task)
    run.active_seconds = 100
    run.save(update_fields=["active_seconds"])
    moved = run_transfer(
        actor=annotator, task=task, stage_key="annotate", to_user=ben, reason="going on leave"
    )
    assert (moved.assignee, moved.status, moved.attempt) == (ben, "in_progress", 1)
    assert moved.active_seconds >= 100 and moved.started_at is not None
    event = TaskEvent.objects.get(task=task, kind="run_transferred")
    assert event.actor == annotator
    assert {k: event.data[k] for k in ("replica", "from", "to", "reason", "via")} == {
        "replica": 0, "from": "ana", "to": "ben", "reason": "going on leave", "via": "handover",
    }  # fmt: skip
    # ben was not named on the task: the transfer names him, and says so.
    assert event.data["added_to_task"] is True
    assert set(task.annotators.values_list("username", flat=True)) == {"ana", "ben"}
    services.annotation_create(
        actor=ben, task=task, stage="annotate", label="outcome", data={"value": "failure"}
    )
    with pytest.raises(PermissionDenied, match="This stage is ben's"):
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_submit(actor=ben, task=task, stage_key="annotate")


def test_transfer_refusals(annotator, ben, cleo, manager, task, reviewer):
    with pytest.raises(ApplicationError, match="Say why") as refused:
        run_transfer(actor=annotator, task=task, stage_key="annotate", to_user=ben, reason=" ")
    assert refused.value.field == "reason"
    with pytest.raises(ApplicationError, match="already holds"):
        run_transfer(actor=manager, task=task, stage_key="annotate", to_user=annotator, reason="x")
    with pytest.raises(ApplicationError, match="cannot take it: not an annotator"):
        run_transfer(actor=annotator, task=task, stage_key="annotate", to_user=reviewer, reason="x")
    with pytest.raises(ApplicationError, match="lacks skills"):
        spec_needs_robotics(task)
        run_transfer(actor=annotator, task=task, stage_key="annotate", to_user=cleo, reason="x")
    # Someone else's run: an annotator may not transfer it.
    with pytest.raises(PermissionDenied, match="Only the run's annotator or a manager"):
        run_transfer(actor=ben, task=task, stage_key="annotate", to_user=ben, reason="mine now")
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    with pytest.raises(InvalidTransition, match="completed"):
        run_transfer(actor=manager, task=task, stage_key="annotate", to_user=ben, reason="x")
    assert not TaskEvent.objects.filter(kind="run_transferred").exists()


def spec_needs_robotics(task) -> None:
    """Give the task's annotate stage a required skill (a new blueprint version)."""
    from blueprints.models import Blueprint

    definition = dict(task.blueprint.definition)
    stages = [dict(s) for s in definition["stages"]]
    stages[0]["params"] = {**stages[0].get("params", {}), "required_skills": ["robotics"]}
    definition["stages"] = stages
    from django.utils import timezone

    Blueprint.objects.filter(pk=task.blueprint_id).update(
        definition=definition, updated_at=timezone.now()
    )
    task.blueprint.refresh_from_db()


def test_a_manager_moves_a_ready_reserved_run(manager, annotator, ben, task):
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    review = task.runs.get(stage_key="review")
    other = UserFactory(username="rita")
    project_services.membership_add(
        actor=manager, project=task.project, user=other, role=Role.REVIEWER
    )
    review.assignee = task.reviewers.get()
    review.save(update_fields=["assignee"])
    moved = run_transfer(
        actor=manager, task=task, stage_key="review", to_user=other, reason="ravi is away"
    )
    assert (moved.assignee, moved.status, moved.started_at) == (other, "ready", None)
    assert TaskEvent.objects.get(kind="run_transferred").data["via"] == "manager"


def test_transfer_candidates_are_the_eligible_annotators_of_the_project(annotator, ben, cleo, task):
    run = annotate_run(task)
    assert [u.username for u in transfer_candidates(task=task, run=run)] == ["ben", "cleo"]
    spec_needs_robotics(task)
    assert [u.username for u in transfer_candidates(task=task, run=run)] == ["ben"]


def test_batch_reassignment_of_100_tasks_has_bounded_queries(
    manager, annotator, ben, project, django_assert_max_num_queries
):
    tasks = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"t{i}", "annotators": ["ana"]} for i in range(100)],
    )
    StageRun.objects.filter(task__in=tasks, stage_key="annotate").update(
        status="in_progress", assignee=annotator
    )
    selection = batch_selection(user=manager, ids=[t.pk for t in tasks])
    with django_assert_max_num_queries(30):
        assert task_batch_assign(actor=manager, selection=selection, annotators=["ben"]) == 100
    assert (
        StageRun.objects.filter(task__in=tasks, assignee=ben, status="in_progress").count() == 100
    )
    assert TaskEvent.objects.filter(kind="run_transferred", task__in=tasks).count() == 100


def test_transfer_api(api_as, annotator, ben, reviewer, manager, task):
    url = f"/api/v1/tasks/{task.pk}/stages/annotate/transfer/"
    assert api_as(reviewer).post(url, {"username": "ben", "reason": "x"}).status_code == 403
    # ben is not named on the task: he does not see it.
    assert api_as(ben).post(url, {"username": "ben", "reason": "x"}).status_code == 404
    refused = api_as(annotator).post(url, {"username": "ben", "reason": ""}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()
    unknown = api_as(annotator).post(url, {"username": "nobody", "reason": "x"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["username"] == ["No user named nobody."]
    done = api_as(annotator).post(url, {"username": "ben", "reason": "on leave"}, format="json")
    assert done.status_code == 200, done.json()
    stage = next(s for s in done.json()["stages"] if s["key"] == "annotate")
    assert (stage["assignee"], stage["status"]) == ("ben", "in_progress")
    # Now ben's: ana may not move it back, the manager may.
    assert api_as(annotator).post(url, {"username": "ana", "reason": "x"}).status_code == 403
    back = api_as(manager).post(url, {"username": "ana", "reason": "back"}, format="json")
    assert back.status_code == 200
    vias = list(
        TaskEvent.objects.filter(kind="run_transferred")
        .order_by("id")
        .values_list("data__via", flat=True)
    )
    assert vias == ["handover", "manager"]


def test_batch_api_and_task_patch_take_moves(api_as, manager, annotator, ben, cleo, task):
    body = {"action": "assign", "ids": [task.pk], "annotators": ["ben", "cleo"]}
    asked = api_as(manager).post("/api/v1/tasks/batch/", body, format="json")
    assert asked.status_code == 400
    assert "moves" in asked.json() and asked.json()["choices"] == {"ana": ["ben", "cleo"]}
    done = api_as(manager).post(
        "/api/v1/tasks/batch/", {**body, "moves": {"ana": "cleo"}}, format="json"
    )
    assert done.status_code == 200 and annotate_run(task).assignee == cleo
    url = f"/api/v1/tasks/{task.pk}/"
    patched = api_as(manager).patch(
        url, {"annotators": ["ana", "ben"], "moves": {"cleo": "ana"}}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert annotate_run(task).assignee == annotator
    assert sorted(patched.json()["annotators"]) == ["ana", "ben"]


def test_task_page_transfer_form_and_readable_history(client, annotator, ben, manager, task):
    client.force_login(annotator)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'aria-label="Hand over annotate"' in page and '<option value="ben">' in page
    response = client.post(
        f"/tasks/{task.pk}/stages/annotate/transfer/",
        {"username": "ben", "reason": "going on leave", "replica": "0"},
    )
    assert response.status_code == 302
    assert annotate_run(task).assignee == ben
    client.force_login(manager)
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "ana handed annotate to ben: going on leave (ben now named on the task)" in page
    assert 'aria-label="Move annotate"' in page  # managers move it on
    # A refusal is a message, not an error page.
    response = client.post(
        f"/tasks/{task.pk}/stages/annotate/transfer/",
        {"username": "ana", "reason": ""},
        follow=True,
    )
    assert "Say why the work is transferred." in response.content.decode()


def test_batch_bar_member_pickers_and_the_reassignment_question(
    client, manager, annotator, ben, cleo, task
):
    client.force_login(manager)
    page = client.get(f"/tasks/?project={task.project_id}").content.decode()
    assert 'role="group" aria-label="Annotators"' in page
    assert 'name="annotators" value="ben"' in page and 'name="reviewers" value="ravi"' in page
    assert 'name="annotators" value="ravi"' not in page  # only the role's people
    assert 'placeholder="ana, noah"' not in page
    post = {"ids": [str(task.pk)], "action": "assign", "annotators": ["ben", "cleo"]}
    asked = client.post("/tasks/batch/", post, HTTP_HX_REQUEST="true").content.decode()
    assert "Who takes over the work in progress?" in asked
    assert 'name="move:ana"' in asked and '<option value="cleo">cleo</option>' in asked
    assert "ana's 1 open run goes to" in asked
    assert f'value="{task.pk}" aria-label="Select Fixture task" checked' in asked  # kept
    assert 'name="annotators" value="cleo" checked' in asked
    assert annotate_run(task).assignee == annotator
    done = client.post("/tasks/batch/", {**post, "move:ana": "cleo"}, HTTP_HX_REQUEST="true")
    assert "Reassigned 1 task." in done.content.decode()
    assert annotate_run(task).assignee == cleo


def test_consensus_replica_of_someone_who_already_holds_another_asks(project, manager):
    from tests.tasks.test_flows import activate, annotators

    activate(project, manager, "driving-scene")
    a1, a2, a3 = annotators(project, manager, "a1", "a2", "a3", skills=["driving"])
    task = services.task_create(actor=manager, project=project, name="clip")  # anyone
    services.stage_start(actor=a1, task=task, stage_key="weather")
    services.stage_start(actor=a3, task=task, stage_key="weather")
    with pytest.raises(ApplicationError) as asked:
        assign(manager, task, annotators=["a3"])  # a3 already holds a weather replica
    assert asked.value.field == "moves"
    assert "a1's 1 open run to nobody named (back to the pool)" in asked.value.message
    with pytest.raises(ApplicationError) as asked:
        assign(manager, task, annotators=["a2", "a3"])  # both added: which one?
    assert asked.value.extra["choices"] == {"a1": ["a2", "a3"]}
    with pytest.raises(ApplicationError, match="already holds another replica"):
        assign(manager, task, annotators=["a2", "a3"], moves={"a1": "a3"})
    assign(manager, task, annotators=["a2", "a3"], moves={"a1": "a2"})
    holders = set(
        task.runs.filter(stage_key="weather").values_list("assignee__username", flat=True)
    )
    assert holders == {"a2", "a3", None}


def test_the_edit_page_asks_who_takes_over(client, manager, annotator, ben, cleo, task):
    client.force_login(manager)
    form = {"name": task.name, "priority": "normal", "annotators": ["ben", "cleo"]}
    form["reviewers"] = ["ravi"]
    asked = client.post(f"/tasks/{task.pk}/edit/", form)
    assert asked.status_code == 200
    body = asked.content.decode()
    assert "Who takes over the work in progress?" in body and 'name="move:ana"' in body
    done = client.post(f"/tasks/{task.pk}/edit/", {**form, "move:ana": "cleo"})
    assert done.status_code == 302 and annotate_run(task).assignee == cleo


def test_a_run_nobody_holds_is_assigned_not_transferred(manager, annotator, ben, task):
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    with pytest.raises(ApplicationError, match="Nobody holds stage “review”"):
        run_transfer(actor=manager, task=task, stage_key="review", to_user=ben, reason="x")


def test_a_reviewer_does_not_hand_over_a_review_but_a_manager_moves_it(
    manager, annotator, reviewer, task
):
    rita = UserFactory(username="rita")
    project_services.membership_add(
        actor=manager, project=task.project, user=rita, role=Role.REVIEWER
    )
    task.reviewers.add(rita)
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_start(actor=reviewer, task=task, stage_key="review")
    with pytest.raises(PermissionDenied, match="a manager moves it"):
        run_transfer(actor=reviewer, task=task, stage_key="review", to_user=rita, reason="busy")
    moved = run_transfer(actor=manager, task=task, stage_key="review", to_user=rita, reason="busy")
    assert moved.assignee == rita
