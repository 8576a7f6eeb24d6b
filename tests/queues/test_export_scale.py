"""Exports at scale: queries constant in the number of tasks, the same JSONL lines as the
per-task writer gave, and an exports list that does not grow with manifest sizes."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queues import services
from queues.models import Export
from tasks.models import Annotation, StageRun, Task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def finished_tasks(project, manager, annotator, n: int, start: int = 0) -> list[int]:
    """``n`` review-passed tasks, each with a valid and an invalid annotation; the first
    one's annotate run routed elsewhere."""
    from tasks.services import task_create_many

    tasks = task_create_many(
        actor=manager,
        project=project,
        items=[
            {"name": f"task {i}", "metadata": {"n": i, "ünï": "côdé"}, "unique_id": f"u{i}"}
            for i in range(start, start + n)
        ],
    )
    ids = [t.pk for t in tasks]
    Task.objects.filter(pk__in=ids).update(status="review_passed")
    StageRun.objects.filter(task_id__in=ids, stage_key="annotate").update(
        status="completed", assignee=annotator
    )
    StageRun.objects.filter(task_id=ids[0], stage_key="annotate").update(routed_to="review")
    Annotation.objects.bulk_create(
        Annotation(
            task_id=pk,
            stage_key="annotate",
            label=label,
            kind=kind,
            data=data,
            attributes={"note": "x"} if kind == "segment" else {},
            author=annotator,
            invalid=invalid,
            invalid_reason="blurred" if invalid else "",
        )
        for pk in ids
        for label, kind, data, invalid in (
            ("outcome", "classification", {"value": "success"}, False),
            ("grasp", "segment", {"start": 3, "end": 9}, False),
            ("cube", "box", {"frame": 0, "camera": "top", "x": 1.5, "y": 2, "w": 3, "h": 4}, True),
        )
    )
    return ids


def per_task_lines(ids: list[int]) -> list[str]:
    """What the former writer wrote: one Task object (with its Blueprint) per task."""
    from django.core.serializers.json import DjangoJSONEncoder

    from tasks.services import delivery_payload

    lines = []
    tasks = (
        Task.objects.filter(pk__in=ids)
        .order_by("pk")
        .select_related("blueprint", "project")
        .prefetch_related("annotations", "runs__assignee")
    )
    for task in tasks:
        payload = delivery_payload(task, list(task.annotations.all()))
        payload["stages"] = [
            {
                "key": r.stage_key,
                "kind": r.kind,
                "status": r.status,
                "attempt": r.attempt,
                "assignee": r.assignee.username if r.assignee else None,
                "routed_to": r.routed_to or None,
            }
            for r in task.runs.all()
        ]
        lines.append(json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True))
    return lines


def export_jsonl(project, manager, **options):
    export, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False, options=options
    )
    with CaptureQueriesContext(connection) as queries:
        export = services.export_run(export_id=export.pk)
    assert export.status == "finished", export.error
    return export, len(queries)


def test_jsonl_export_queries_do_not_grow_with_the_number_of_tasks(
    project, manager, annotator, monkeypatch
):
    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)  # timing aside: one write
    finished_tasks(project, manager, annotator, 10)
    small, small_queries = export_jsonl(project, manager)
    finished_tasks(project, manager, annotator, 190, start=10)
    large, large_queries = export_jsonl(project, manager)
    assert (small.manifest["counts"]["tasks"], large.manifest["counts"]["tasks"]) == (10, 200)
    assert large_queries == small_queries <= 20


def test_a_chunk_costs_a_few_queries_whatever_its_size(project, manager, annotator, monkeypatch):
    """Over many chunks: three reads per chunk (tasks, annotations, runs), no per-task query."""
    from queues.exporters import base

    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)
    finished_tasks(project, manager, annotator, 60)
    _, one_chunk = export_jsonl(project, manager)
    monkeypatch.setattr(base.stream_tasks, "__defaults__", (10,))  # 6 chunks
    _, six_chunks = export_jsonl(project, manager)
    assert six_chunks - one_chunk <= 5 * 3


def test_jsonl_lines_are_those_the_per_task_writer_wrote(project, manager, annotator):
    ids = finished_tasks(project, manager, annotator, 25)
    export, _ = export_jsonl(project, manager)
    written = (services.export_dir(export) / "tasks.jsonl").read_text().splitlines()
    assert written == per_task_lines(ids)
    first = json.loads(written[0])
    assert [a["label"] for a in first["annotations"]] == ["outcome", "grasp"]  # invalid left out
    assert first["stages"][0]["routed_to"] == "review" and first["stages"][0]["assignee"] == "ana"
    assert export.manifest["tasks"] == ids
    assert export.manifest["counts"] == {"tasks": 25, "annotations": 75}
    cleaned, _ = export_jsonl(project, manager, clean=True)
    assert cleaned.manifest["counts"] == {
        "dropped_invalid_annotations": 25,
        "dropped_invalid_samples": 0,  # the tasks have no datasets
        "tasks": 25,
        "annotations": 50,
    }
    assert (services.export_dir(cleaned) / "tasks.jsonl").read_text().splitlines() == written


def test_progress_is_written_a_few_times_a_second_not_per_task(
    project, manager, annotator, monkeypatch
):
    writes = []
    real = services.report_progress
    monkeypatch.setattr(services, "report_progress", lambda f, **kw: (writes.append(f), real(f)))
    finished_tasks(project, manager, annotator, 50)
    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)
    from queues.exporters import base

    monkeypatch.setattr(base.stream_tasks, "__defaults__", (5,))  # ten chunks, ten calls
    export_jsonl(project, manager)
    assert len(writes) == 2  # the first call, then "done"


def test_the_exports_list_does_not_grow_with_manifests(project, manager, api_as):
    export = Export.objects.create(
        project=project, version=1, format="jsonl", status="finished", requested_by=manager
    )
    client = api_as(manager)

    def listed(n: int):
        Export.objects.filter(pk=export.pk).update(
            manifest={"counts": {"tasks": n}, "tasks": list(range(n)), "files": {}}
        )
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/exports/")
        assert response.status_code == 200
        return response, len(queries)

    small, small_queries = listed(10)
    large, large_queries = listed(90_000)
    assert len(large.content) - len(small.content) <= 3  # the count's digits
    assert large_queries == small_queries
    body = large.json()
    rows = body["results"] if isinstance(body, dict) else body
    row = rows[0]
    assert row["counts"] == {"tasks": 90_000} and "manifest" not in row
    assert {"id", "version", "status", "progress", "job_id"} <= set(row)
    detail = client.get(f"/api/v1/exports/{export.pk}/").json()
    assert len(detail["manifest"]["tasks"]) == 90_000


def test_a_clean_jsonl_export_clips_and_counts_as_the_episode_pass_did(
    project, manager, annotator, dataset
):
    """Tasks over a dataset: cleaning clips geometry to the camera's frame and counts unusable
    samples and empty episodes — the same lines and counts as ``collect`` over Task objects."""
    from django.core.serializers.json import DjangoJSONEncoder

    from tasks.models import InvalidSample
    from tasks.services import delivery_payload

    ids = finished_tasks(project, manager, annotator, 4)
    first, second = dataset.samples.order_by("index")
    camera = first.cameras[0]
    for pk in ids:
        Task.objects.get(pk=pk).datasets.add(dataset)
    Annotation.objects.create(  # past the right edge of the first sample's camera
        task_id=ids[0],
        stage_key="annotate",
        sample=first,
        label="cube",
        kind="box",
        data={
            "frame": 0,
            "camera": camera["name"],
            "x": camera["width"] - 2,
            "y": 1,
            "w": 9,
            "h": 4,
        },
        author=annotator,
    )
    InvalidSample.objects.create(task_id=ids[1], sample=second, stage_key="annotate", reason="x")
    export, _ = export_jsonl(project, manager, clean=True)
    written = (services.export_dir(export) / "tasks.jsonl").read_text().splitlines()
    box = next(a for a in json.loads(written[0])["annotations"] if a["sample"] == first.pk)
    assert box["data"]["x"] + box["data"]["w"] == camera["width"]

    objects = list(
        Task.objects.filter(pk__in=ids)
        .order_by("pk")
        .select_related("blueprint", "project")
        .prefetch_related("annotations", "runs__assignee", "datasets")
    )
    reference = collect(export, objects, lambda *a: None)
    for line, task in zip(written, objects, strict=True):
        payload = json.loads(line)
        assert payload["datasets"] == [dataset.pk]  # the lines name the tasks' datasets
        want = delivery_payload(task, reference.annotations[task.pk])
        assert (
            payload["annotations"]
            == json.loads(json.dumps(want, cls=DjangoJSONEncoder))["annotations"]
        )
    counts = {
        k: v for k, v in export.manifest["counts"].items() if k not in {"tasks", "annotations"}
    }
    assert counts == reference.counts
    assert counts["dropped_invalid_samples"] == 1 and counts["clipped_geometry"] == 1


def test_a_task_finished_while_the_export_runs_does_not_fail_it(
    project, manager, annotator, monkeypatch
):
    """The count (for progress) and the stream are two reads: one more task in the stream
    than counted is written and counted, not a validation failure."""
    from django.db.models import QuerySet

    finished_tasks(project, manager, annotator, 5)
    export, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    monkeypatch.setattr(QuerySet, "count", lambda self: 4)
    export = services.export_run(export_id=export.pk)
    assert export.status == "finished", export.error
    assert export.manifest["counts"]["tasks"] == 5 and export.progress == 1.0


def collect(export, tasks: list, progress):
    """The former exporters' reader, kept as this test's oracle: episodes and annotations of
    the tasks from Task objects, after cleaning (counted in ``counts``). The
    samples of every task's datasets come in one query, the samples marked unusable in one
    more (not two or three queries per task)."""
    from projects.models import Sample
    from queues.exporters.base import Episode, ExportContext, clip
    from tasks.models import InvalidSample

    clean = export.options.get("clean", False)
    ctx = ExportContext(export, tasks, [], {}, export.options, progress=progress)
    by_task = {}
    for task in tasks:
        annotations = list(task.annotations.all())
        if clean:
            dropped = [a for a in annotations if a.invalid]
            ctx.count("dropped_invalid_annotations", len(dropped))
            annotations = [a for a in annotations if not a.invalid]
        by_task[task.pk] = annotations
    ctx.annotations = by_task
    dataset_ids = {d.pk for task in tasks for d in task.datasets.all()}
    by_dataset: dict[int, list] = {pk: [] for pk in dataset_ids}
    for sample in Sample.objects.filter(dataset__in=dataset_ids).select_related("dataset"):
        by_dataset[sample.dataset_id].append(sample)
    unusable: dict[int, set[int]] = {}
    if clean:  # samples an annotator marked unusable for this task
        for task_id, sample_id in InvalidSample.objects.filter(
            task__in=[t.pk for t in tasks]
        ).values_list("task", "sample"):
            unusable.setdefault(task_id, set()).add(sample_id)
    for task in tasks:
        samples = sorted(
            (s for d in task.datasets.all() for s in by_dataset[d.pk]),
            key=lambda s: (s.dataset.name, s.index),
        )
        if clean:
            marked = unusable.get(task.pk, set())
            ctx.count("dropped_invalid_samples", sum(s.pk in marked for s in samples))
            samples = [s for s in samples if s.pk not in marked]
        for sample in samples:
            # Task-level annotations (no sample) belong to every episode of the task.
            mine = [a for a in by_task[task.pk] if a.sample_id in (sample.pk, None)]
            if clean and not mine:
                ctx.count("dropped_empty_episodes")
                continue
            if clean:
                for a in mine:
                    if clip(a, sample):
                        ctx.count("clipped_geometry")
            ctx.episodes.append(Episode(task, sample, mine))
    return ctx
