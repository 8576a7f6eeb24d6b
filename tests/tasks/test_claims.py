"""Claiming the next run: capacity is one atomic decision, and priority means urgency."""

import threading
from collections import Counter

import pytest
from django.db import connection

from projects import services as project_services
from projects.models import Membership
from tasks import selectors, services
from tasks.models import StageRun
from tests.factories import UserFactory


def annotators(project, manager, *names, capacity=10):
    users = []
    for name in names:
        user = UserFactory(username=name)
        project_services.membership_add(
            actor=manager, project=project, user=user, role="annotator", capacity=capacity
        )
        users.append(user)
    return users


@pytest.mark.django_db(transaction=True)
def test_sixteen_simultaneous_claims_by_two_annotators_hold_capacity_and_share_nothing(manager):
    project = project_services.project_create(actor=manager, name="Race")
    people = annotators(project, manager, "c1", "c2", capacity=2)
    services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(12)]
    )
    claimed, errors = [], []
    barrier = threading.Barrier(16)

    def claim(user):
        try:
            barrier.wait()
            run = services.stage_claim_next(actor=user)
            if run is not None:
                claimed.append((user.username, run.pk))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(people[i % 2],)) for i in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    runs = [pk for _, pk in claimed]
    assert len(runs) == len(set(runs)), "a run was handed to two claims"
    assert Counter(name for name, _ in claimed) == {"c1": 2, "c2": 2}
    held = Counter(
        StageRun.objects.filter(status="in_progress").values_list("assignee__username", flat=True)
    )
    assert held == {"c1": 2, "c2": 2}


@pytest.mark.django_db
def test_a_full_annotator_gets_nothing_until_a_run_is_submitted(project, manager, annotator):
    Membership.objects.filter(user=annotator, role="annotator").update(capacity=1)
    services.task_create_many(actor=manager, project=project, items=[{"name": "a"}, {"name": "b"}])
    first = services.stage_claim_next(actor=annotator)
    assert first is not None
    assert services.stage_claim_next(actor=annotator) is None


@pytest.mark.django_db
def test_priority_means_urgency_in_my_work_in_claims_and_in_the_task_list(
    project, manager, annotator
):
    from tasks.selectors import task_list_for_user

    order = ["low", "high", "normal", "urgent"]
    services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": p, "priority": p, "annotators": ["ana"]} for p in order],
    )
    most_urgent_first = ["urgent", "high", "normal", "low"]
    mine = [r.task.priority for r in selectors.my_work_runs(user=annotator)]
    assert mine == most_urgent_first
    listed = task_list_for_user(user=manager, filters={"ordering": "-priority"})
    assert [t.priority for t in listed] == most_urgent_first
    listed = task_list_for_user(user=manager, filters={"ordering": "priority"})
    assert [t.priority for t in listed] == most_urgent_first[::-1]
    assert services.stage_claim_next(actor=annotator).task.priority == "urgent"
    assert services.stage_claim_next(actor=annotator).task.priority == "high"
