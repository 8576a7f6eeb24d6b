"""PATCH refuses fields it cannot change (read-only or unknown) instead of ignoring them."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "field, value",
    [
        ("status", "review_passed"),
        ("id", 999),
        ("project", 999),
        ("blueprint", {"name": "default", "version": 2}),
        ("stages", []),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_it_refuses_a_read_only_task_field(api_as, manager, task, field, value):
    url = f"/api/v1/tasks/{task.pk}/"
    response = api_as(manager).patch(url, {field: value, "name": "Renamed"}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert "read-only" in response.json()[field][0]
    task.refresh_from_db()
    assert (task.name, task.status) == ("Fixture task", "in_progress")  # nothing applied


def test_it_says_how_a_task_status_changes(api_as, manager, task):
    response = api_as(manager).patch(
        f"/api/v1/tasks/{task.pk}/", {"status": "review_passed"}, format="json"
    )
    assert response.status_code == 400
    assert "stage actions" in response.json()["status"][0]


def test_it_refuses_an_unknown_task_field(api_as, manager, task):
    response = api_as(manager).patch(
        f"/api/v1/tasks/{task.pk}/", {"priorty": "high"}, format="json"
    )
    assert response.status_code == 400
    assert "priorty" in response.json()


def test_it_still_changes_writable_task_fields(api_as, manager, task):
    response = api_as(manager).patch(
        f"/api/v1/tasks/{task.pk}/", {"name": "Renamed", "priority": "high"}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["priority"]) == ("Renamed", "high")


def test_it_refuses_a_read_only_project_field(api_as, manager, project):
    response = api_as(manager).patch(
        f"/api/v1/projects/{project.pk}/", {"slug": "elsewhere", "name": "New"}, format="json"
    )
    assert response.status_code == 400
    assert "read-only" in response.json()["slug"][0]
    project.refresh_from_db()
    assert (project.slug, project.name) == ("pick-and-place", "Pick and place")


@pytest.mark.parametrize("field, value", [("label", "object"), ("stage", "review"), ("sample", 1)])
def test_it_refuses_a_read_only_annotation_field(api_as, annotator, task, field, value):
    annotation = task.first_annotation
    response = api_as(annotator).patch(
        f"/api/v1/tasks/{task.pk}/annotations/{annotation.pk}/",
        {"version": annotation.version, field: value},
        format="json",
    )
    assert response.status_code == 400
    assert "read-only" in response.json()[field][0]
    annotation.refresh_from_db()
    assert (annotation.label, annotation.version) == ("outcome", 1)
