"""``manage.py export`` chooses tasks with the export API's filter (the same keys, validated by
the same code) or ids, instead of always exporting the whole project."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from queues.models import Export
from tasks.models import Task

from .test_export_episodes import finished_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def tasks(project, manager, dataset):
    ids = finished_tasks(project, manager, dataset, 5)
    Task.objects.filter(pk__in=ids[:2]).update(batch="monday")
    Task.objects.filter(pk__in=ids[2:]).update(batch="tuesday", priority=2)
    return ids


def exported(slug, *args) -> Export:
    call_command("export", slug, "--as", "maya", *args, stdout=io.StringIO())
    return Export.objects.order_by("-pk").first()


def test_the_command_takes_the_api_filter(project, manager, tasks, api_as, tmp_path):
    monday = exported(project.slug, "--format", "jsonl", "--batch", "monday")
    assert monday.selection == {"filter": {"batch": "monday"}}
    assert monday.manifest["tasks"] == tasks[:2]
    from queues.exporters.jsonl import FILE

    lines = (tmp_path / "media" / "exports" / monday.path / FILE).read_text().splitlines()
    assert [json.loads(line)["task"] for line in lines] == tasks[:2]
    # The same filter through the API chooses the same tasks.
    response = api_as(manager).post(
        "/api/v1/exports/",
        {"project": project.pk, "format": "coco", "filter": {"batch": "monday"}},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert Export.objects.get(pk=response.json()["id"]).selection == monday.selection
    everything = exported(project.slug, "--format", "jsonl")
    assert everything.manifest["tasks"] == tasks


def test_ids_and_several_filter_keys(project, tasks):
    assert exported(project.slug, "--format", "jsonl", "--ids", f"{tasks[0]},{tasks[3]}").manifest[
        "tasks"
    ] == [tasks[0], tasks[3]]
    chosen = exported(project.slug, "--format", "jsonl", "--batch", "tuesday", "--status",
                      "review_passed", "--due-before", "2100-01-01")  # fmt: skip
    assert chosen.selection["filter"] == {
        "batch": "tuesday",
        "status": "review_passed",
        "due_before": "2100-01-01",
    }
    assert chosen.manifest["tasks"] == []  # no task has a due date: none is due before


def test_bad_filters_are_refused_like_the_api_refuses_them(project, tasks):
    before = Export.objects.count()
    for args, said in (
        (["--status", "nonsense"], "status must be one of"),
        (["--due-after", "yesterday"], "must be a date"),
        (["--batch", "monday", "--ids", str(tasks[0])], "not both"),
        (["--ids", "1,x"], "--ids takes task ids"),
    ):
        with pytest.raises(CommandError, match=said):
            call_command("export", project.slug, "--as", "maya", "--format", "jsonl", *args)
    assert Export.objects.count() == before
