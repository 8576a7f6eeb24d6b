"""Pre-labels (issues 16/17): our own exports imported back as pre-labels through the API and
a real worker; a corrupt file, unknown labels; accept, edit, delete and submit."""

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from core.exceptions import ApplicationError
from queues import services as export_services
from tasks import services
from tasks.models import Annotation, Task, TaskEvent
from tasks.services.prelabels import _key, prelabels_import, prelabels_resolve

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def demo(transactional_db, demo_seeder):
    from projects.models import Project

    demo_seeder.seed()
    users = {u.username: u for u in get_user_model().objects.all()}
    project = Project.objects.get(slug="pick-and-place")
    target = Task.objects.get(project=project, name="Morning episodes 1")
    return project, users, target


def export(project, manager, fmt, run_jobs, capture):
    with capture(execute=True):
        done, _ = export_services.export_start(actor=manager, project=project, format=fmt)
    run_jobs("exports")
    done.refresh_from_db()
    assert done.status == "finished", done.error
    return export_services.export_dir(done)


def upload(client, project, run_jobs, capture, name, raw, **fields):
    with capture(execute=True):
        response = client.post(
            f"/api/v1/projects/{project.pk}/preannotations/",
            {"file": SimpleUploadedFile(name, raw), **fields},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    run_jobs("imports")
    state = client.get(f"/api/v1/projects/{project.pk}/preannotations/{response.json()['id']}/")
    assert state.status_code == 200
    return state.json()


def exported_boxes(project):
    finished = Task.objects.filter(project=project, status__in=["review_passed", "data_submitted"])
    return Annotation.objects.filter(task__in=finished, kind="box")


@pytest.mark.parametrize("fmt", ["jsonl", "coco", "lerobot"])
def test_our_exports_come_back_as_prelabels(
    demo, api_as, run_jobs, django_capture_on_commit_callbacks, fmt
):
    project, users, target = demo
    folder = export(project, users["manager"], fmt, run_jobs, django_capture_on_commit_callbacks)
    if fmt == "jsonl":
        raw, name, stage = (folder / "tasks.jsonl").read_bytes(), "tasks.jsonl", ""
    elif fmt == "coco":
        raw, name, stage = (folder / "annotations.json").read_bytes(), "annotations.json", "objects"
    else:  # the dataset zipped, as people move it: the sidecar is found inside
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in folder.rglob("*"):
                if path.is_file():
                    archive.write(path, f"my-dataset/{path.relative_to(folder)}")
        raw, name, stage = buffer.getvalue(), "my-dataset.zip", ""
    client = api_as(users["manager"])
    state = upload(
        client, project, run_jobs, django_capture_on_commit_callbacks, name, raw,
        format=fmt, stage=stage, task=target.pk, source_detail=f"{fmt} round trip",
    )  # fmt: skip
    assert state["status"] == "finished", state["error"]
    summary = state["summary"]
    made = list(Annotation.objects.filter(task=target).order_by("id"))
    assert summary["created"] == len(made) > 0
    assert {a.source for a in made} == {"prelabel"}
    assert {a.source_detail for a in made} == {f"{fmt} round trip"}
    assert all(a.author_id is None for a in made)
    # Every box of the export is back with its geometry (on the samples the target task's
    # draw of the objects stage annotates; the others are skipped, each with its reason).
    boxes = {(b.sample_id, _key(b.data)) for b in exported_boxes(project)}
    back = {(a.sample_id, _key(a.data)) for a in made if a.kind == "box"}
    drawn = {
        s.pk
        for s in services.stage_samples(
            task=target,
            stage=services.spec_for(target.blueprint).by_key["objects"],
            samples=list(target.datasets.first().samples.all()),
        )
    }
    assert back == {b for b in boxes if b[0] in drawn}
    assert all(a.attributes == {"category": "block"} for a in made if a.kind == "box")
    if fmt != "coco":  # the segments stage's segment too (the same one twice: one is made)
        assert [a.data for a in made if a.kind == "segment"] == [{"start": 20, "end": 45}]
    if back != {b for b in boxes}:
        assert any("not among the samples" in reason for reason in summary["reasons"])
    assert summary["created"] + summary["skipped"] >= len(boxes)
    events = TaskEvent.objects.filter(task=target, kind="prelabels_imported")
    assert sum(e.data["count"] for e in events) == len(made)
    # Importing the same file again makes nothing twice.
    again = upload(
        client, project, run_jobs, django_capture_on_commit_callbacks, name, raw,
        format=fmt, stage=stage, task=target.pk,
    )  # fmt: skip
    assert again["summary"]["created"] == 0
    assert Annotation.objects.filter(task=target).count() == len(made)


def test_tasks_are_found_by_unique_id_and_submitted_stages_are_left_alone(demo):
    project, users, target = demo
    target.unique_id = "ep-001"
    target.save(update_fields=["unique_id"])
    done = Task.objects.get(project=project, name="Delivered to training")
    segment = {"label": "gripper_open", "kind": "segment", "stage": "segments",
               "data": {"start": 1, "end": 5}, "attributes": {"description": "x"}}  # fmt: skip
    lines = [
        {"task": 999_999, "unique_id": "ep-001", "annotations": [segment]},
        {"task": done.pk, "unique_id": None, "annotations": [segment]},
        {"task": 999_998, "annotations": [segment]},
    ]
    raw = "\n".join(json.dumps(line) for line in lines).encode()
    summary = prelabels_import(actor=users["manager"], project=project, format="jsonl", raw=raw)
    assert summary["created"] == 1
    assert Annotation.objects.get(task=target).data == {"start": 1, "end": 5}
    assert summary["reasons"] == {
        f"stage “segments” of task #{done.pk} is already submitted": 1,
        "task #999998 is not in this project": 1,
    }


def test_a_corrupt_file_is_refused_whole(
    demo, api_as, run_jobs, django_capture_on_commit_callbacks
):
    project, users, target = demo
    good = {"task": target.pk, "annotations": [
        {"label": "gripper_open", "stage": "segments", "data": {"start": 1, "end": 2},
         "attributes": {"description": "x"}}]}  # fmt: skip
    raw = (json.dumps(good) + "\n" + '{"task": 1, "annotations": [\n').encode()
    client = api_as(users["manager"])
    state = upload(client, project, run_jobs, django_capture_on_commit_callbacks,
                   "tasks.jsonl", raw, format="jsonl")  # fmt: skip
    assert state["status"] == "failed"
    assert "line 2 is not JSON" in state["error"]
    assert not Annotation.objects.filter(task=target).exists()  # line 1 was fine: not kept
    coco = {
        "images": [],
        "categories": [{"id": 1, "name": "object"}],
        "annotations": [{"id": 7, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4]}],
    }
    raw = json.dumps(coco).encode()
    state = upload(client, project, run_jobs, django_capture_on_commit_callbacks,
                   "annotations.json", raw, format="coco", stage="objects")  # fmt: skip
    assert (state["status"], state["error"]) == ("failed", "COCO annotation 7 points at no image.")
    # Refused before queueing: an unknown format, COCO without a stage, another project's task.
    response = client.post(
        f"/api/v1/projects/{project.pk}/preannotations/",
        {"file": SimpleUploadedFile("a.json", b"{}"), "format": "coco"},
        format="multipart",
    )
    assert response.status_code == 400 and "stage" in response.json()
    response = client.post(
        f"/api/v1/projects/{project.pk}/preannotations/",
        {"file": SimpleUploadedFile("a.json", b"{}"), "format": "yaml"},
        format="multipart",
    )
    assert response.status_code == 400 and "format" in response.json()
    assert (
        client.get(f"/api/v1/projects/{project.pk}/preannotations/{'0' * 32}/").status_code == 404
    )
    assert client.get(f"/api/v1/projects/{project.pk}/preannotations/../").status_code == 404


def test_unknown_labels_are_reported_not_dropped_silently(demo):
    project, users, target = demo
    objects = services.spec_for(target.blueprint).by_key["objects"]
    every = list(target.datasets.first().samples.order_by("index"))
    sample = services.stage_samples(task=target, stage=objects, samples=every)[0]
    coco = {
        "images": [{"id": 1, "file_name": f"images/{sample.pk}_cam_high_000000.jpg",
                    "width": 96, "height": 96}],
        "categories": [{"id": 1, "name": "object"}, {"id": 2, "name": "banana"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [5, 2, 3, 4]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
             "attributes": {"category": "cup"}},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 2, 300, 4]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 2, 0, 4]},
        ],
    }  # fmt: skip
    summary = prelabels_import(
        actor=users["manager"], project=project, format="coco", raw=json.dumps(coco).encode(),
        stage="objects", task_id=target.pk,
    )  # fmt: skip
    assert summary["unknown_labels"] == {"banana": 2}
    assert (
        "annotation 1: label “banana” is not in stage “objects”'s taxonomy" in summary["examples"]
    )
    assert "data.w: w must be more than 0." in summary["reasons"]
    assert (summary["created"], summary["skipped"]) == (2, 3)
    made = Annotation.objects.filter(task=target).order_by("id")
    assert [a.data["w"] for a in made] == [3, 300]  # inside_frame is a submit check
    assert made[0].attributes == {"category": "cup"}


def prelabelled(project, users, target):
    """Two segment pre-labels in the target's segments stage, started by the annotator."""
    raw = json.dumps({"task": target.pk, "annotations": [
        {"label": "gripper_open", "stage": "segments", "data": {"start": s, "end": s + 3},
         "attributes": {"description": f"grasp {s}"}} for s in (1, 10, 20)]}).encode()  # fmt: skip
    assert (
        prelabels_import(actor=users["manager"], project=project, format="jsonl", raw=raw)[
            "created"
        ]
        == 3
    )
    services.stage_start(actor=users["annotator"], task=target, stage_key="segments")
    return list(Annotation.objects.filter(task=target).order_by("id"))


def test_the_annotator_accepts_edits_deletes_and_then_submits(demo, api_as):
    project, users, target = demo
    first, second, third = prelabelled(project, users, target)
    client = api_as(users["annotator"])
    submit = f"/api/v1/tasks/{target.pk}/stages/segments/submit/"
    response = client.post(submit)
    assert response.status_code == 400
    assert "3 pre-label(s) are neither accepted nor deleted" in response.json()["prelabels"][0]
    url = f"/api/v1/tasks/{target.pk}/stages/segments/prelabels/"
    response = client.post(url, {"action": "accept", "ids": [first.pk]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["count"], body["annotations"][0]["source"]) == (1, "accepted")
    assert body["annotations"][0]["author"] == "annotator"
    # Editing a pre-label accepts it.
    response = client.patch(
        f"/api/v1/tasks/{target.pk}/annotations/{second.pk}/",
        {"version": second.version, "data": {"start": 11, "end": 14}},
        format="json",
    )
    assert response.status_code == 200 and response.json()["source"] == "accepted"
    response = client.post(url, {"action": "delete"}, format="json")
    assert response.json()["count"] == 1 and response.json()["ids"] == [third.pk]
    assert not Annotation.objects.filter(pk=third.pk).exists()
    kinds = list(
        TaskEvent.objects.filter(task=target, kind__startswith="prelabels_").values_list(
            "kind", "data__count"
        )
    )
    assert kinds == [("prelabels_imported", 3), ("prelabels_accepted", 1),
                     ("prelabels_accepted", 1), ("prelabels_deleted", 1)]  # fmt: skip
    # The annotation's own Delete on a pre-label is recorded too.
    fourth = prelabels_import(
        actor=users["manager"], project=project, format="jsonl",
        raw=json.dumps({"task": target.pk, "annotations": [
            {"label": "gripper_open", "stage": "segments", "data": {"start": 30, "end": 31},
             "attributes": {"description": "x"}}]}).encode(),
    )  # fmt: skip
    assert fourth["created"] == 1
    extra = Annotation.objects.get(task=target, source="prelabel")
    response = client.delete(f"/api/v1/tasks/{target.pk}/annotations/{extra.pk}/")
    assert response.status_code == 204
    last = TaskEvent.objects.filter(task=target).latest("id")
    assert (last.kind, last.data["annotations"]) == ("prelabels_deleted", [extra.pk])
    assert client.post(submit).status_code == 200
    # The task's history says it, with the counts.
    manager = Client()
    manager.force_login(users["manager"])
    history = manager.get(f"/tasks/{target.pk}/").text
    assert "prelabels imported segments by manager: 3 from JSONL import" in history
    assert "prelabels accepted segments by annotator: 1" in history
    # Nobody else resolves them: the reviewer is not the stage's annotator.
    response = api_as(users["reviewer"]).post(url, {"action": "accept"}, format="json")
    assert response.status_code in {403, 409}


def test_accept_all_is_a_handful_of_queries(demo, api_as, django_assert_max_num_queries):
    project, users, target = demo
    prelabelled(project, users, target)
    client = api_as(users["annotator"])
    url = f"/api/v1/tasks/{target.pk}/stages/segments/prelabels/"
    with django_assert_max_num_queries(20):
        response = client.post(url, {"action": "accept"}, format="json")
    assert response.json()["count"] == 3
    assert set(Annotation.objects.filter(task=target).values_list("source", flat=True)) == {
        "accepted"
    }
    assert client.post(url, {"action": "accept", "ids": ["x"]}, format="json").status_code == 400
    assert client.post(url, {"action": "keep"}, format="json").status_code == 400


def test_the_project_page_uploads_and_shows_the_result(
    demo, client, run_jobs, django_capture_on_commit_callbacks
):
    project, users, target = demo
    page = f"/projects/{project.slug}/data/prelabels/"
    client.force_login(users["manager"])
    assert "Import them as pre-labels" in client.get(f"/projects/{project.slug}/data/").text
    annotations = [
        {"label": "gripper_open", "stage": "segments", "data": {"start": 1, "end": 2},
         "attributes": {"description": "x"}},
        {"label": "banana", "stage": "segments", "data": {"start": 1, "end": 2}},
    ]  # fmt: skip
    raw = json.dumps({"task": target.pk, "annotations": annotations}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page,
            {"file": SimpleUploadedFile("model.jsonl", raw), "format": "jsonl",
             "source_detail": "model v1"},
        )  # fmt: skip
    assert response.status_code == 302 and response.url == page
    text = client.get(page).text
    assert "queued" in text and 'hx-trigger="every 2s"' in text  # follows the running import
    run_jobs("imports")
    text = client.get(page, HTTP_HX_REQUEST="true").text
    assert "<h1>" not in text and "1 created in 1 task, 1 skipped" in text
    assert "Unknown labels: <strong>banana</strong> (1)" in text and "every 2s" not in text
    assert Annotation.objects.get(task=target).source_detail == "model v1"
    # COCO without a stage: said on the form, nothing queued.
    response = client.post(
        page, {"file": SimpleUploadedFile("a.json", b"{}"), "format": "coco", "stage": ""}
    )
    assert response.status_code == 200 and "COCO boxes name no stage" in response.text
    # Annotators see the imports, not the form.
    client.force_login(users["annotator"])
    text = client.get(page).text
    assert "model.jsonl" in text and "Import pre-labels</button>" not in text


def test_the_import_reads_the_same_number_of_queries_for_one_task_or_four(demo):
    project, users, _ = demo
    names = ["Morning episodes 1", "Morning episodes 2", "Morning episodes 3", "Reach and grasp"]
    tasks = list(Task.objects.filter(project=project, name__in=names).order_by("pk"))

    def raw(chosen, start):
        segment = {
            "label": "gripper_open",
            "stage": "segments",
            "data": {"start": start, "end": start + 2},
            "attributes": {"description": "x"},
        }
        return "\n".join(
            json.dumps({"task": t.pk, "annotations": [segment] * 3}) for t in chosen
        ).encode()  # fmt: skip

    def count(chosen, start):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            summary = prelabels_import(
                actor=users["manager"], project=project, format="jsonl", raw=raw(chosen, start)
            )
        assert summary["created"] == len(chosen)  # the same segment three times: one made
        return len(queries)

    one, four = count(tasks[:1], 1), count(tasks, 10)
    assert one == four <= 12, (one, four)
    assert Annotation.objects.filter(task__in=tasks, source="prelabel").count() == 5


def test_an_import_whose_worker_died_is_failed_and_made_nothing(demo, run_jobs):
    from tasks.jobs import import_prelabels_failed
    from tasks.services.prelabels import prelabel_import_get, prelabel_import_start

    project, users, target = demo
    record = prelabel_import_start(
        actor=users["manager"], project=project, format="jsonl",
        upload=SimpleUploadedFile("a.jsonl", b'{"task": 1, "annotations": []}'),
    )  # fmt: skip

    class Job:  # what RQ hands the failure callback: the job's arguments
        args = (project.pk, record["id"])

    from core.jobs import WorkerLost

    import_prelabels_failed(Job(), None, WorkerLost, WorkerLost(), None)
    state = prelabel_import_get(project=project, import_id=record["id"])
    assert (state["status"], state["error"]) == ("failed", "worker lost")
    run_jobs("imports")  # a late run of the job leaves a failed import as it is
    assert prelabel_import_get(project=project, import_id=record["id"])["status"] == "failed"


@pytest.mark.parametrize(
    ("fmt", "document", "said"),
    [
        ("coco", {"images": [{"id": 1, "sample": "s"}], "categories": [{"id": 1, "name": "x"}],
                  "annotations": [{"image_id": [1], "category_id": 1, "bbox": [1, 2, 3, 4]}]},
         "not laid out as COCO boxes"),
        ("coco", {"images": [{"id": [1]}], "categories": [], "annotations": []},
         "every image an id"),
        ("coco", [1, 2], "needs images, annotations and categories lists"),
        ("jsonl", {"task": 1, "annotations": [["label", "x"]]}, "annotation 1 is not an object"),
        ("lerobot", {"task": 1, "label": 5, "data": {}}, "line 1 lacks a label or data"),
    ],
)  # fmt: skip
@pytest.mark.django_db  # the file is refused before any task is read: no demo needed
def test_odd_values_are_refused_with_a_message_never_a_crash(fmt, document, said):
    from tests.factories import ProjectFactory

    with pytest.raises(ApplicationError) as refused:
        prelabels_import(
            actor=None, project=ProjectFactory(), format=fmt, raw=json.dumps(document).encode(),
            stage="objects",
        )  # fmt: skip
    assert said in refused.value.message


def test_odd_references_are_skipped_with_their_reason(demo):
    project, users, target = demo
    odd = [
        {"task": [1], "unique_id": ["x"], "annotations": [
            {"label": "gripper_open", "stage": "segments", "data": {"start": 1, "end": 2}}]},
        {"task": target.pk, "annotations": [
            {"label": "gripper_open", "stage": {"a": 1}, "data": {"start": 1, "end": 2}},
            {"label": "gripper_open", "stage": "segments", "sample": [3], "data": {}},
            {"label": "gripper_open", "stage": "segments", "data": {"start": "1", "end": 2}},
            {"label": "gripper_open", "stage": "segments", "data": {"start": 1, "end": 2},
             "attributes": ["description"]}]},
    ]  # fmt: skip
    raw = "\n".join(json.dumps(line) for line in odd).encode()
    summary = prelabels_import(actor=users["manager"], project=project, format="jsonl", raw=raw)
    assert (summary["created"], summary["skipped"]) == (0, 5)
    assert summary["reasons"] == {
        "names no task of this project": 1,
        f"task #{target.pk} has no annotate stage “{{'a': 1}}”": 1,
        f"sample #[3] is not one of task #{target.pk}'s samples": 1,
        "data.start: start must be a frame number (0 or more).": 1,
        "attributes: attributes must be an object.": 1,
    }


@pytest.mark.django_db
def test_a_consensus_stage_gives_each_replica_its_own_copy(project, manager):
    from tests.tasks.test_flows import activate, annotators

    activate(project, manager, "driving-scene")
    a, b, _ = annotators(project, manager, "a1", "a2", "a3", skills=["driving"])
    task = services.task_create(actor=manager, project=project, name="clip")
    rain = {"label": "weather", "stage": "weather", "sample": None, "data": {"value": "rain"}}
    line = {"task": task.pk, "annotations": [rain]}
    summary = prelabels_import(
        actor=manager, project=project, format="jsonl", raw=json.dumps(line).encode()
    )
    assert summary["created"] == 3
    copies = Annotation.objects.filter(task=task, stage_key="weather")
    assert sorted(copies.values_list("replica", flat=True)) == [0, 1, 2]
    run = services.stage_start(actor=a, task=task, stage_key="weather")
    result = prelabels_resolve(actor=a, task=task, stage="weather", action="accept")
    mine = copies.get(replica=run.replica)
    assert result["ids"] == [mine.pk] and mine.author == a
    assert copies.filter(source="prelabel").count() == 2  # the others' copies stay theirs
    services.stage_start(actor=b, task=task, stage_key="weather")
    with pytest.raises(ApplicationError, match="pre-label"):
        services.stage_submit(actor=b, task=task, stage_key="weather")
