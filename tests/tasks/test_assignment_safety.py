"""Assignment under pressure: two applies at once, people with two roles, managers who also
annotate, selections too large, and numbers no form should send."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from projects.models import Membership, Role
from tasks import services
from tasks.batch import batch_selection
from tasks.models import StageRun
from tasks.services import assignment
from tests.tasks.test_assignment import person, reserve


@pytest.mark.django_db(transaction=True)
def test_two_applies_at_once_never_take_a_person_past_capacity(project, manager, monkeypatch):
    Membership.objects.filter(project=project, role=Role.ANNOTATOR).delete()
    ann = person(project, manager, "a", capacity=1)
    first = services.task_create(actor=manager, project=project, name="t1")
    second = services.task_create(actor=manager, project=project, name="t2")
    # Hold each apply between reading the loads and writing its plan until the other has
    # read too (or 2 s): without the project lock both read load 0 and both assign.
    barrier = threading.Barrier(2)
    read_loads = assignment.open_loads

    def loads_then_wait(*args, **kwargs):
        found = read_loads(*args, **kwargs)
        try:
            barrier.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(assignment, "open_loads", loads_then_wait)
    results = []

    def apply(task):
        try:
            plan = services.auto_assign_apply(
                actor=manager, selection=batch_selection(user=manager, ids=[task.pk])
            )
            results.append(plan.counts())
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(t,)) for t in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=len) == [{}, {"a": 1}]
    assert StageRun.objects.filter(assignee=ann).count() == 1


pytestmark = pytest.mark.django_db


def test_a_person_with_two_roles_is_held_to_the_capacity_of_the_role(
    project, manager, annotator, task
):
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    Membership.objects.filter(project=project, role=Role.REVIEWER).delete()
    task.reviewers.clear()
    ben = person(project, manager, "ben", role=Role.REVIEWER, capacity=0)
    person_again = Membership.objects.create(
        project=project, user=ben, role=Role.ANNOTATOR, capacity=10
    )
    assert person_again.capacity == 10
    plan = services.auto_assign_plan(
        actor=manager, selection=batch_selection(user=manager, ids=[task.pk])
    )
    assert plan.counts() == {}  # as a reviewer ben takes nothing more (capacity 0)
    assert "at capacity" in plan.unassignable[0]["reason"]


def test_auto_assign_never_hands_a_task_named_for_others_to_a_manager_who_annotates(
    project, manager, annotator
):
    Membership.objects.create(project=project, user=manager, role=Role.ANNOTATOR)
    reserve(project, manager, annotator, 1)  # ana is busier than the manager
    named = services.task_create(actor=manager, project=project, name="ana's", annotators=["ana"])
    plan = services.auto_assign_plan(
        actor=manager, selection=batch_selection(user=manager, ids=[named.pk])
    )
    assert plan.counts() == {"ana": 1}


def test_a_selection_too_large_is_said_in_the_panel(client, manager, task, monkeypatch):
    monkeypatch.setattr(assignment, "MAX_TASKS", 0)
    client.force_login(manager)
    url = reverse("tasks:auto-assign")
    for extra in ({}, {"apply": "1", "token": "x"}):
        response = client.post(url, {"ids": [str(task.pk)], **extra})
        assert response.status_code == 200
        assert "At most 0 tasks per auto-assign" in response.content.decode()
    assert (
        not StageRun.objects.filter(task=task)
        .exclude(assignee=None)
        .exclude(status="in_progress")
        .exists()
    )


@pytest.mark.parametrize("number", ["²", "9" * 5000])
def test_numbers_no_form_sends_are_refused_not_a_server_error(
    client, manager, project, task, number
):
    client.force_login(manager)
    assert client.post(reverse("tasks:auto-assign"), {"ids": [number]}).status_code == 200
    transfer = reverse("tasks:transfer", args=[task.pk, "annotate"])
    assert client.post(transfer, {"replica": number, "username": "x"}).status_code == 302
    assert client.get(reverse("reports:team"), {"project": number}).status_code == 404
    api = f"/api/v1/reports/team/?project={number}"
    assert client.get(api).status_code == 400
    assert client.get("/api/v1/activity/", {"project": number}).status_code == 200
