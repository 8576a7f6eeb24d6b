"""One task filter (tasks.filters) for the list page, the API list, batch actions and exports:
the same keys everywhere, the same tasks chosen, unknown keys refused by the API."""

import pytest

from queues.models import Export
from tasks import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def tasks(project, manager):
    items = [
        {"name": "night cup", "batch": "night", "priority": "high", "reviewers": ["ravi"]},
        {"name": "night tool", "batch": "night", "priority": "low"},
        {"name": "day cup", "batch": "day", "priority": "high", "reviewers": ["ravi"]},
    ]
    return services.task_create_many(actor=manager, project=project, items=items)


FILTER = {"batch": "night", "reviewer": "ravi", "search": "cup"}


def test_page_api_batch_and_export_choose_the_same_tasks(client, api_as, manager, project, tasks):
    api = api_as(manager)
    listed = api.get("/api/v1/tasks/", {**FILTER, "project": project.pk}).json()
    assert [t["name"] for t in listed["results"]] == ["night cup"]

    client.force_login(manager)
    page = client.get("/tasks/", {"batch": "night", "reviewer": "ravi", "q": "cup"})
    assert page.context["matching"] == 1

    affected = api.post(
        "/api/v1/tasks/batch/",
        {"action": "update", "filter": FILTER, "priority": "urgent"},
        format="json",
    )
    assert affected.json() == {"affected": 1}
    assert {t.name for t in project.tasks.filter(priority="urgent")} == {"night cup"}

    started = api.post(
        "/api/v1/exports/",
        {
            "project": project.pk,
            "format": "jsonl",
            "filter": {**FILTER, "due_before": "2030-01-01"},
        },
        format="json",
    )
    assert started.status_code in (200, 201, 202), started.content
    export = Export.objects.get(pk=started.json()["id"])
    assert export.selection == {"filter": {**FILTER, "due_before": "2030-01-01"}}


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "/api/v1/tasks/", {"priority": "whenever"}),
        ("post", "/api/v1/tasks/batch/", {"action": "delete", "filter": {"colour": "red"}}),
        ("post", "/api/v1/tasks/batch/", {"action": "delete", "filter": {"due_before": "soon"}}),
        ("post", "/api/v1/exports/", {"format": "jsonl", "filter": {"colour": "red"}}),
    ],
)
def test_a_bad_filter_is_a_400_naming_it_and_changes_nothing(
    api_as, manager, project, tasks, method, url, body
):
    if url == "/api/v1/exports/":
        body = {**body, "project": project.pk}
    kwargs = {"format": "json"} if method == "post" else {}
    response = getattr(api_as(manager), method)(url, body, **kwargs)
    assert response.status_code == 400, response.content
    text = response.content.decode()
    assert any(word in text for word in ("priority", "colour", "due_before")), text
    assert project.tasks.count() == 3
    assert not Export.objects.exists()


def test_the_page_leaves_out_a_bad_value_instead_of_failing(client, manager, tasks):
    client.force_login(manager)
    page = client.get("/tasks/", {"priority": "whenever", "due_before": "soon", "batch": "day"})
    assert page.status_code == 200
    assert page.context["matching"] == 1
    text = page.content.decode()
    assert "Left out of the filter: priority “whenever” must be one of" in text
    assert "due_before “soon” must be a date (YYYY-MM-DD)" in text
