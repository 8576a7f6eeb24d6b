import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks import services
from tasks.models import Task

pytestmark = pytest.mark.django_db


def list_queries(client, n_tasks, project, manager) -> int:
    Task.objects.all().delete()
    services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {"name": f"t{i}", "annotators": ["ana"], "reviewers": ["ravi"]} for i in range(n_tasks)
        ],
    )
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("tasks:list") + "?sort=name")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_list_queries_do_not_grow_with_tasks(client, manager, project):
    client.force_login(manager)
    client.get(reverse("tasks:list"))  # warm the content-type cache
    assert list_queries(client, 10, project, manager) == list_queries(
        client, 1000, project, manager
    )


def test_list_fragment_for_htmx_and_bad_filters_are_ignored(client, manager, project):
    services.task_create(actor=manager, project=project, name="alpha", priority="urgent")
    client.force_login(manager)
    body = client.get(
        reverse("tasks:list") + "?priority=urgent&due_before=notadate&project=abc&sort=evil",
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert body.lstrip().startswith('<section id="task-results"')
    assert "alpha" in body


def test_edit_page_changes_fields_and_people(client, manager, project, task):
    client.force_login(manager)
    response = client.post(
        reverse("tasks:edit", args=[task.pk]),
        {
            "name": "Renamed",
            "priority": "low",
            "annotators": [],
            "reviewers": ["ravi"],
            "batch": "b",
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.name, task.priority, task.batch) == ("Renamed", "low", "b")
    assert list(task.annotators.all()) == []
    assert task.events.filter(kind="assigned").exists()


@pytest.mark.django_db
def test_my_work_lists_review_runs_for_the_projects_reviewers(
    client, project, manager, annotator, reviewer
):
    from tasks import services

    named = services.task_create(
        actor=manager, project=project, name="Named", annotators=["ana"], reviewers=["ravi"]
    )
    unnamed = services.task_create(actor=manager, project=project, name="Anyone reviews")
    for task in (named, unnamed):
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    client.force_login(reviewer)
    page = client.get("/workspace/?done=approved").content.decode()
    assert "Named" in page and "Anyone reviews" in page and "Review approved." in page
    assert "Start next task" not in page  # reviewers claim no annotate work
    client.force_login(annotator)
    assert "Anyone reviews" not in client.get("/workspace/").content.decode()


@pytest.mark.django_db
def test_review_next_claims_the_most_urgent_review_but_never_of_ones_own_work(
    client, api_as, project, manager, annotator, reviewer
):
    from projects.services import membership_add

    membership_add(actor=manager, project=project, user=annotator, role="reviewer")
    tasks = {}
    for name, priority in (("normal", "normal"), ("urgent", "urgent")):
        tasks[name] = services.task_create(
            actor=manager, project=project, name=name, priority=priority
        )
        services.stage_start(actor=annotator, task=tasks[name], stage_key="annotate")
        services.stage_submit(actor=annotator, task=tasks[name], stage_key="annotate")
    # ana reviews too, but both tasks are her own work: nothing for her.
    assert api_as(annotator).post("/api/v1/tasks/next/", {"kind": "review"}).status_code == 204
    client.force_login(reviewer)
    response = client.post("/workspace/next/", {"kind": "review"})
    assert response.url == f"/workspace/{tasks['urgent'].pk}/review/"
    run = tasks["urgent"].runs.get(stage_key="review")
    assert (run.status, run.assignee) == ("in_progress", reviewer)
    answer = api_as(reviewer).post("/api/v1/tasks/next/", {"kind": "review"}, format="json")
    assert answer.json()["name"] == "normal"
    assert api_as(reviewer).post("/api/v1/tasks/next/", {"kind": "x"}).status_code == 400


def test_the_action_bar_changes_nothing_without_a_chosen_value(client, manager, project):
    from datetime import UTC, datetime

    tasks = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": "a", "due_at": datetime(2030, 1, 1, tzinfo=UTC)}],
    )
    client.force_login(manager)

    def post(**data):
        return client.post(reverse("tasks:batch"), {"ids": [tasks[0].pk], **data}, follow=True)

    said = [str(m) for m in post(action="priority", new_priority="").context["messages"]]
    assert said == ["Choose a priority first."]
    said = [str(m) for m in post(action="due", new_due="").context["messages"]]
    assert said == ["Choose a due date first (or Clear due date)."]
    tasks[0].refresh_from_db()
    assert (tasks[0].priority, tasks[0].due_at.year) == ("normal", 2030)
    said = [str(m) for m in post(action="clear_due").context["messages"]]
    assert said == ["Updated 1 task."]
    tasks[0].refresh_from_db()
    assert tasks[0].due_at is None
