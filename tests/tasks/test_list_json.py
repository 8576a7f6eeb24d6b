"""The list API builds its page from plain rows (tasks.selectors.task_rows, issue 15), not
TaskSerializer per task: each task in the list must read exactly as the task's own
endpoint (TaskSerializer) shows it — keys, their order and values — with its runs, people,
datasets and deliveries, and a page costs the same queries whatever it holds."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import services
from tasks.models import Delivery

pytestmark = pytest.mark.django_db

KEYS = [
    "id", "project", "name", "description", "status", "priority", "batch", "blueprint",
    "datasets", "annotators", "reviewers", "stages", "metadata", "callback_url", "unique_id",
    "callback", "created_at", "updated_at", "due_at",
]  # fmt: skip


def full_task(manager, annotator, project, dataset, name="Full"):
    task = services.task_create(
        actor=manager,
        project=project,
        name=name,
        description="Pick the cup",
        priority="urgent",
        datasets=[dataset.pk],
        annotators=["ana"],
        reviewers=["ravi"],
        due_at="2030-01-02T03:04:05Z",
        batch="b7",
        metadata={"shelf": 3, "tags": ["a", "b"]},
        callback_url="https://example.com/hook?token=secret",
        unique_id=f"u-{name}",
    )
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    Delivery.objects.create(task=task, payload={}, callback=Delivery.Callback.SUCCEEDED)
    Delivery.objects.create(task=task, payload={}, callback=Delivery.Callback.FAILED)
    task.refresh_from_db()
    return task


def listed(api, project, task_id: int) -> dict:
    body = api.get("/api/v1/tasks/", {"project": project.pk}).json()
    return next(item for item in body["results"] if item["id"] == task_id)


def test_a_listed_task_reads_as_its_own_endpoint(manager, annotator, project, dataset, api_as):
    task = full_task(manager, annotator, project, dataset)
    services.task_create(actor=manager, project=project, name="Bare")
    api = api_as(manager)
    item = listed(api, project, task.pk)
    detail = api.get(f"/api/v1/tasks/{task.pk}/").json()
    assert json.dumps(item) == json.dumps(detail)  # same keys, same order, same values
    assert list(item) == KEYS
    annotate = next(s for s in item["stages"] if s["key"] == "annotate")
    assert annotate == {
        "key": "annotate", "kind": "annotate", "replica": 0, "status": "in_progress",
        "assignee": "ana", "attempt": 1, "routed_to": "", "feedback": "", "agreement": None,
    }  # fmt: skip
    assert {k: item[k] for k in KEYS if k not in ("stages", "created_at", "updated_at")} == {
        "id": task.pk,
        "project": project.pk,
        "name": "Full",
        "description": "Pick the cup",
        "status": "in_progress",
        "priority": "urgent",
        "batch": "b7",
        "blueprint": {"name": task.blueprint.name, "version": task.blueprint.version},
        "datasets": [dataset.pk],
        "annotators": ["ana"],
        "reviewers": ["ravi"],
        "metadata": {"shelf": 3, "tags": ["a", "b"]},
        "callback_url": "https://example.com/hook?token=secret",
        "unique_id": "u-Full",
        "callback": "failed",  # the latest delivery's
        "due_at": "2030-01-02T03:04:05Z",
    }
    assert item["created_at"].endswith("Z") and item["updated_at"] >= item["created_at"]
    bare = next(
        t
        for t in api.get("/api/v1/tasks/", {"project": project.pk}).json()["results"]
        if t["name"] == "Bare"
    )
    assert json.dumps(bare) == json.dumps(api.get(f"/api/v1/tasks/{bare['id']}/").json())
    assert (bare["callback"], bare["due_at"], bare["datasets"]) == (None, None, [])


def test_the_callback_url_is_left_out_for_who_may_not_change_the_project(
    manager, annotator, project, dataset, api_as
):
    task = full_task(manager, annotator, project, dataset)
    api = api_as(annotator)
    item = listed(api, project, task.pk)
    assert "callback_url" not in item
    assert json.dumps(item) == json.dumps(api.get(f"/api/v1/tasks/{task.pk}/").json())


def test_a_page_of_full_tasks_costs_the_same_queries_at_any_size(
    manager, annotator, project, dataset, api_as, django_assert_max_num_queries
):
    api = api_as(manager)
    path = f"/api/v1/tasks/?project={project.pk}"

    def count() -> int:
        api.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured.captured_queries)

    for i in range(2):
        full_task(manager, annotator, project, dataset, name=f"a{i}")
    few = count()
    for i in range(8):
        full_task(manager, annotator, project, dataset, name=f"b{i}")
    with django_assert_max_num_queries(16):
        api.get(path)
    assert count() == few
