"""The bulk API cleans ordinary items without running the serializer per item
(tasks.validation.task_item_clean): it must accept exactly what TaskInputSerializer accepts,
clean it to the same values, and leave every error to the serializer's own messages; a bad
item anywhere answers 400 naming the item's index and field, and creates nothing."""

from datetime import UTC, datetime

import pytest
from rest_framework.exceptions import ValidationError

from tasks.api import TaskInputSerializer
from tasks.models import Task
from tasks.validation import task_item_clean

BASE = {"project": 7, "name": "episode 1"}
FULL = {
    **BASE,
    "blueprint": "default",
    "description": "  a description  ",
    "priority": "high",
    "datasets": [3, 4],
    "annotators": ["ana", " bob "],
    "reviewers": ["ravi"],
    "due_at": "2030-01-02T03:04:05Z",
    "batch": "day 1",
    "metadata": {"episode": 1, "nested": {"k": [1, 2]}, "none": None},
    "callback_url": "https://example.com/hook",
    "unique_id": "ep-1",
    "not_a_field": "ignored",
}
PAYLOADS = [
    BASE,
    FULL,
    {**BASE, "name": "  padded  "},
    {**BASE, "name": "épisode 3 🤖"},
    {**BASE, "name": "x" * 300},
    {**BASE, "name": "  " + "x" * 300 + "  "},  # 300 once stripped
    {**BASE, "name": "x" * 301},
    {**BASE, "name": "   "},
    {**BASE, "name": ""},
    {**BASE, "name": "a\x00b"},
    {**BASE, "name": "a\ud800b"},
    {**BASE, "name": 5},
    {**BASE, "name": 2.5},
    {**BASE, "name": True},
    {**BASE, "name": None},
    {**BASE, "name": ["x"]},
    {"project": 7},
    {"name": "t"},
    {**BASE, "project": "12"},
    {**BASE, "project": "12.0"},
    {**BASE, "project": 12.0},
    {**BASE, "project": 1.5},
    {**BASE, "project": True},
    {**BASE, "project": None},
    {**BASE, "project": "seven"},
    {**BASE, "priority": "urgent"},
    {**BASE, "priority": "HIGH"},
    {**BASE, "priority": ""},
    {**BASE, "priority": None},
    {**BASE, "datasets": []},
    {**BASE, "datasets": ["3"]},
    {**BASE, "datasets": [True]},
    {**BASE, "datasets": "3"},
    {**BASE, "datasets": {"a": 1}},
    {**BASE, "datasets": None},
    {**BASE, "annotators": []},
    {**BASE, "annotators": [""]},
    {**BASE, "annotators": [1]},
    {**BASE, "annotators": "ana"},
    {**BASE, "annotators": [None]},
    {**BASE, "reviewers": ["a\x00"]},
    {**BASE, "due_at": None},
    {**BASE, "due_at": "2030-01-02"},
    {**BASE, "due_at": "2030-01-02T03:04:05+02:00"},
    {**BASE, "due_at": "2030-01-02T03:04:05"},
    {**BASE, "due_at": "tomorrow"},
    {**BASE, "due_at": 5},
    {**BASE, "metadata": {}},
    {**BASE, "metadata": []},
    {**BASE, "metadata": None},
    {**BASE, "metadata": "x"},
    {**BASE, "blueprint": ""},
    {**BASE, "blueprint": "b" * 201},
    {**BASE, "blueprint": None},
    {**BASE, "description": 12},
    {**BASE, "description": None},
    {**BASE, "batch": "b" * 201},
    {**BASE, "callback_url": ""},
    {**BASE, "callback_url": "u" * 1001},
    {**BASE, "unique_id": "  u-1  "},
    {**BASE, "unique_id": False},
    [],
    "episode",
    None,
    7,
]


@pytest.mark.parametrize("raw", PAYLOADS, ids=range(len(PAYLOADS)))
def test_items_clean_as_the_serializer_cleans_them(raw):
    serializer = TaskInputSerializer()
    try:
        expected = dict(serializer.run_validation(raw))
    except ValidationError:
        expected = None
    got = task_item_clean(raw, serializer.fields)
    if expected is None:
        assert got is None  # the serializer answers with its own errors
    else:
        # An item the fast path declines is still accepted: the serializer cleans it.
        assert got is None or got == expected


def test_ordinary_items_skip_the_serializer():
    fields = TaskInputSerializer().fields
    got = task_item_clean(FULL, fields)
    assert got is not None
    assert got["name"] == "episode 1" and got["description"] == "a description"
    assert got["annotators"] == ["ana", "bob"]
    assert got["due_at"] == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert "not_a_field" not in got
    minimal = task_item_clean(BASE, fields)
    assert minimal == {
        "project": 7,
        "name": "episode 1",
        "description": "",
        "priority": "normal",
        "datasets": [],
        "annotators": [],
        "reviewers": [],
        "due_at": None,
        "batch": "",
        "metadata": {},
        "callback_url": "",
        "unique_id": "",
    }


@pytest.mark.django_db
def test_a_bad_item_answers_400_naming_its_index_and_field_and_creates_nothing(
    api_as, manager, project
):
    client = api_as(manager)
    good = [{"project": project.pk, "name": f"t{i}", "metadata": {"i": i}} for i in range(5)]
    cases = [
        ({"project": project.pk, "name": "   "}, "name", "This field may not be blank."),
        ({"project": project.pk, "name": "t", "priority": "asap"}, "priority", None),
        ({"project": project.pk, "name": "t", "metadata": [1]}, "metadata", None),
        ({"project": project.pk, "name": "t", "annotators": [""]}, "annotators", None),
        ({"project": project.pk, "name": "t", "due_at": "soon"}, "due_at", None),
        ({"project": project.pk, "name": "x" * 301}, "name", None),
    ]
    for bad, field, message in cases:
        response = client.post("/api/v1/tasks/bulk/", [*good[:3], bad, *good[3:]], format="json")
        assert response.status_code == 400, (bad, response.content)
        body = response.json()
        assert list(body) == ["[3]"] and field in body["[3]"], body
        if message:
            assert body["[3]"][field] == [message]
    assert not Task.objects.filter(project=project).exists()


@pytest.mark.django_db
def test_items_the_serializer_accepts_are_created_as_it_cleans_them(api_as, manager, project):
    client = api_as(manager)
    items = [
        {"project": str(project.pk), "name": "  numeric project id  "},
        {"project": project.pk, "name": 42, "priority": "urgent", "due_at": "2030-01-02"},
        {"project": project.pk, "name": "t", "unique_id": "  u-1 ", "metadata": {"k": None}},
    ]
    response = client.post("/api/v1/tasks/bulk/", items, format="json")
    assert response.status_code == 201, response.content
    tasks = list(Task.objects.filter(pk__in=response.json()["ids"]).order_by("pk"))
    assert [t.name for t in tasks] == ["numeric project id", "42", "t"]
    assert tasks[1].priority == "urgent" and tasks[1].due_at.year == 2030
    assert (tasks[2].unique_id, tasks[2].metadata) == ("u-1", {"k": None})
