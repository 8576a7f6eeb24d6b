"""Exports through a real worker: each format written and read back with its own reader."""

import json

import h5py
import pytest

from core.access import SYSTEM
from queues import services
from queues.models import Export
from tasks.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test its own media folder (demo datasets and exports)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def demo(transactional_db, demo_seeder):
    demo_seeder.seed()  # seed_demo once per session, restored from its copy afterwards
    from django.contrib.auth import get_user_model

    from projects.models import Project

    return Project.objects.get(slug="pick-and-place"), get_user_model().objects.get(
        username="manager"
    )


def run(project, manager, fmt, run_jobs, capture, **kwargs):
    with capture(execute=True):
        export, created = services.export_start(
            actor=manager, project=project, format=fmt, **kwargs
        )
    assert created
    run_jobs("exports")
    export.refresh_from_db()
    assert export.status == "finished", export.error
    return export, services.export_dir(export)


@pytest.mark.parametrize("fmt", ["jsonl", "hdf5", "coco", "lerobot"])
def test_each_format_is_written_validated_and_published(
    demo, run_jobs, django_capture_on_commit_callbacks, fmt
):
    project, manager = demo
    export, folder = run(project, manager, fmt, run_jobs, django_capture_on_commit_callbacks)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["version"] == export.version and manifest["format"] == fmt
    finished = Task.objects.filter(status__in=["review_passed", "data_submitted"]).count()
    assert manifest["counts"]["tasks"] == finished == 2
    for name, digest in manifest["files"].items():
        assert len(digest) == 64 and (folder / name).is_file()
    assert not list(services.exports_root().glob(".tmp-*"))
    if fmt == "hdf5":
        with h5py.File(folder / "episode_0.hdf5") as f:
            assert f["observations/images/cam_high"].shape[1:] == (96, 96, 3)
            assert f["annotations"].attrs["count"] >= 1
            assert f.attrs["task"] in {"Reviewed night episode", "Delivered to training"}
    if fmt == "lerobot":
        info = json.loads((folder / "meta" / "info.json").read_text())
        assert info["codebase_version"] == "v3.0"
        assert info["total_episodes"] == manifest["counts"]["episodes"] == 6
        assert "observation.images.cam_high" in info["features"]
    if fmt == "jsonl":
        lines = (folder / "tasks.jsonl").read_text().splitlines()
        assert len(lines) == 2 and json.loads(lines[0])["stages"]


def test_identical_requests_answer_the_running_export(demo, django_capture_on_commit_callbacks):
    project, manager = demo
    with django_capture_on_commit_callbacks(execute=True):
        first, created = services.export_start(actor=manager, project=project, format="jsonl")
        again, created_again = services.export_start(actor=manager, project=project, format="jsonl")
    assert created and not created_again and again.pk == first.pk


def test_incremental_exports_only_changed_tasks_and_submit_moves_them(
    demo, run_jobs, django_capture_on_commit_callbacks
):
    project, manager = demo
    first, _ = run(project, manager, "jsonl", run_jobs, django_capture_on_commit_callbacks)
    task = Task.objects.get(name="Reviewed night episode")
    Task.objects.filter(pk=task.pk).update(description="changed")  # auto-now bumps
    task.save(update_fields=["description", "updated_at"])
    second, folder = run(
        project,
        manager,
        "jsonl",
        run_jobs,
        django_capture_on_commit_callbacks,
        options={"incremental": True, "submit": True},
    )
    assert second.parent_id == first.pk
    assert (
        second.manifest["tasks"] == [task.pk] and second.manifest["parent_version"] == first.version
    )
    task.refresh_from_db()
    assert task.status == "data_submitted"


def test_a_failing_export_publishes_nothing_and_says_why(
    demo, run_jobs, django_capture_on_commit_callbacks
):
    project, manager = demo
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = services.export_start(actor=manager, project=project, format="lerobot", ids=[])
    run_jobs("exports")
    export.refresh_from_db()
    assert export.status == "failed"
    assert "No episodes to export" in export.error
    assert not any(services.exports_root().rglob("manifest.json"))


def test_cancel_a_queued_export(demo, run_jobs, django_capture_on_commit_callbacks):
    project, manager = demo
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = services.export_start(actor=manager, project=project, format="hdf5")
    services.export_cancel(actor=manager, export=export)
    run_jobs("exports")
    export.refresh_from_db()
    assert export.status == "cancelled" and export.path == ""


def test_export_api_start_status_and_zip_download(
    demo, api_as, run_jobs, django_capture_on_commit_callbacks
):
    import io
    import zipfile

    project, manager = demo
    client = api_as(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/exports/",
            {"project": project.pk, "format": "hdf5", "clean": True},
            format="json",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["version"]) == ("queued", 1) and body[
        "job_id"
    ] == f"export-{body['id']}"
    run_jobs("exports")
    detail = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert detail["status"] == "finished" and detail["progress"] == 1.0
    download = client.get(f"/api/v1/exports/{body['id']}/download/")
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).namelist()
    assert "v1-hdf5/manifest.json" in names and "v1-hdf5/episode_0.hdf5" in names
    assert client.post(f"/api/v1/exports/{body['id']}/cancel/").status_code == 400


def test_export_api_errors(demo, api_as):
    project, manager = demo
    client = api_as(manager)
    assert (
        "format"
        in client.post(
            "/api/v1/exports/", {"project": project.pk, "format": "csv"}, format="json"
        ).json()
    )
    response = client.post(
        "/api/v1/exports/",
        {"project": project.pk, "format": "jsonl", "filter": {}, "ids": [1]},
        format="json",
    )
    assert response.status_code == 400


def test_a_killed_export_publishes_nothing_and_succeeds_on_retry(
    demo, admin_user, redis_conn, run_jobs, django_capture_on_commit_callbacks
):
    import time

    import django_rq
    from rq.executions import Execution

    from queues import control

    project, manager = demo
    with django_capture_on_commit_callbacks(execute=True):
        export, _ = services.export_start(actor=manager, project=project, format="hdf5")
    queue = django_rq.get_queue("exports")
    job = queue.fetch_job(export.job_id)
    # A worker took it, wrote half an export, and was killed.
    Export.objects.filter(pk=export.pk).update(status="started")
    partial = services.exports_root() / f".tmp-{export.pk}"
    partial.mkdir(parents=True)
    (partial / "episode_0.hdf5").write_bytes(b"half")
    queue.remove(job)
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=60, pipeline=pipe)
        pipe.execute()
    queue.started_job_registry.cleanup(timestamp=time.time() + 3600)
    export.refresh_from_db()
    assert export.status == "failed" and "stopped" in export.error
    assert not partial.exists() and not any(services.exports_root().rglob("manifest.json"))

    assert (
        control.queue_action(actor=admin_user, name="exports", action="retry-failed")["count"] == 1
    )
    run_jobs("exports")
    export.refresh_from_db()
    assert export.status == "finished", export.error
    assert (services.export_dir(export) / "manifest.json").exists()


def test_one_users_burst_waits_its_turn(demo, django_capture_on_commit_callbacks):
    from core.exceptions import ApplicationError

    project, manager = demo
    with django_capture_on_commit_callbacks(execute=True):
        for fmt in ("jsonl", "hdf5", "coco"):
            services.export_start(actor=manager, project=project, format=fmt)
        with pytest.raises(ApplicationError, match="already have 3 exports") as info:
            services.export_start(actor=manager, project=project, format="lerobot")
    assert info.value.status_code == 429


def test_expired_export_files_are_removed(demo, run_jobs, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    project, manager = demo
    export, folder = run(project, manager, "jsonl", run_jobs, django_capture_on_commit_callbacks)
    assert services.export_clean_expired(actor=SYSTEM) == 0
    later = timezone.now() + timedelta(days=31)
    assert services.export_clean_expired(actor=SYSTEM, now=later) == 1
    assert not folder.exists()
    export.refresh_from_db()
    assert export.path == "" and "retention" in export.error


def test_cleaning_leaves_out_samples_marked_invalid(
    demo, run_jobs, django_capture_on_commit_callbacks
):
    from tasks.models import InvalidSample

    project, manager = demo
    task = Task.objects.get(name="Reviewed night episode")
    sample = task.datasets.get().samples.order_by("index").first()
    # Marked while the stage was open (the service needs an open run; this task is done).
    InvalidSample.objects.create(task=task, sample=sample, stage_key="objects", reason="blur")
    kept, _ = run(project, manager, "hdf5", run_jobs, django_capture_on_commit_callbacks)
    cleaned, _ = run(
        project,
        manager,
        "hdf5",
        run_jobs,
        django_capture_on_commit_callbacks,
        options={"clean": True},
    )
    assert kept.manifest["counts"]["episodes"] == 6
    assert cleaned.manifest["counts"]["episodes"] == 5
    assert cleaned.manifest["counts"]["dropped_invalid_samples"] == 1


def test_cancel_a_running_export_stops_it_and_publishes_nothing(demo):
    """The job runs in a thread; the manager cancels once it has written something."""
    import threading
    import time

    from django.db import connection

    from core.exceptions import ApplicationError
    from queues.models import Export

    project, manager = demo
    export, _ = services.export_start(
        actor=manager, project=project, format="lerobot", background=False
    )

    def job():
        try:
            services.export_run(export_id=export.pk)
        finally:
            connection.close()

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = Export.objects.values("status", "progress").get(pk=export.pk)
        if row["status"] == "started" and row["progress"] > 0:
            break
        time.sleep(0.005)
    try:
        services.export_cancel(actor=manager, export=export)
    except ApplicationError:  # pragma: no cover - the machine outran the poll
        worker.join()
        pytest.skip("the export finished before it could be cancelled")
    worker.join(timeout=120)
    export.refresh_from_db()
    assert export.status == "cancelled" and export.path == ""
    assert not list(services.exports_root().rglob("manifest.json"))
    assert not list(services.exports_root().glob(".tmp-*"))


def test_an_unexpected_failure_is_recorded_without_server_paths(project, manager, settings):
    export, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    services.exports_root().mkdir(parents=True)
    (services.exports_root() / project.slug).write_text("a file where a folder goes")
    with pytest.raises(FileExistsError):
        services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == "failed"
    assert export.error == (
        f"The export failed unexpectedly (FileExistsError: [Errno 17] File exists: "
        f"'{project.slug}')."
    )
    assert str(settings.MEDIA_ROOT) not in export.error


def test_coco_skips_boxes_saved_before_cameras_were_checked(
    demo, run_jobs, django_capture_on_commit_callbacks
):
    from tasks.models import Annotation

    project, manager = demo
    finished = Task.objects.filter(project=project, status__in=["review_passed", "data_submitted"])
    box = Annotation.objects.filter(task__in=finished, kind="box").first()
    # What an older version accepted: a camera the sample does not have.
    Annotation.objects.filter(pk=box.pk).update(data={**box.data, "camera": "nope"})
    export, folder = run(project, manager, "coco", run_jobs, django_capture_on_commit_callbacks)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["skipped_boxes_without_an_image"] == 1
    document = json.loads((folder / "annotations.json").read_text())
    assert box.pk not in {a["stagecraft_id"] for a in document["annotations"]}
