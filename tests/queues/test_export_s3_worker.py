"""Exports on object storage run by real worker processes (issue 18): a worker with a media
folder of its own (nothing shared with the web process but the database, Redis and the
bucket) publishes an export that the web process hands out as a signed URL; a worker killed
in the middle of an export (SIGKILL) leaves nothing in the bucket, and a fresh worker on the
same machine runs the retry and clears what the dead one left in its working folder."""

import time
import urllib.request

import pytest
from django.test import Client

from queues import control, services

from .test_recovery import FAST, LOST, long_export, wait_status  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STAGECRAFT_WORKER_LOST_SECONDS = LOST


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:  # noqa: S310 (the test server)
        return response.read()


def test_a_worker_with_its_own_disk_exports_to_the_bucket_and_the_web_hands_it_out(
    project, manager, s3_storage, worker_process, tmp_path
):
    from tasks.models import Task
    from tasks.services import task_create

    task = task_create(actor=manager, project=project, name="one")
    Task.objects.filter(pk=task.pk).update(status="review_passed")
    export, _ = services.export_start(actor=manager, project=project, format="jsonl")
    elsewhere = tmp_path / "other-machine"
    env = {
        **s3_storage.environ(s3_storage.bucket, s3_storage.prefix),
        "STAGECRAFT_TEST_MEDIA_ROOT": str(elsewhere / "media"),
        "STAGECRAFT_TEST_WORK_DIR": str(elsewhere / "work"),
    }
    worker_process("exports", env=env)
    wait_status(export, "finished", 60)

    key = f"{s3_storage.prefix}/exports/{export.path}"
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/") == [
        f"{key}/manifest.json",
        f"{key}/tasks.jsonl",
    ]
    assert not (tmp_path / "media" / "exports").exists()  # nothing on the web's disk
    assert not any((elsewhere / "work" / "exports").iterdir())  # nor left on the worker's
    client = Client()
    client.force_login(manager)
    response = client.get(f"/projects/{project.slug}/exports/{export.pk}/download/")
    assert response.status_code == 302
    data = fetch(response["Location"])
    assert data.decode().count("\n") == 1 and f'"task": {task.pk}' in data.decode()


def test_a_killed_workers_export_leaves_nothing_in_the_bucket_and_the_retry_publishes(
    admin_user,
    project,
    s3_storage,
    long_export,  # noqa: F811 (the fixture imported above)
    worker_process,
    tmp_path,
):
    export = long_export()
    work = tmp_path / "worker-machine"
    env = {
        **FAST,
        **s3_storage.environ(s3_storage.bucket, s3_storage.prefix),
        "STAGECRAFT_TEST_WORK_DIR": str(work),
    }
    partial = work / "exports" / f".tmp-{export.pk}"
    worker = worker_process("exports", env=env)
    deadline = time.monotonic() + 120
    while not (partial.is_dir() and any(p.stat().st_size for p in partial.rglob("*"))):
        assert time.monotonic() < deadline, "the export never got going"
        time.sleep(0.02)
    worker.kill()

    client = Client()
    client.force_login(admin_user)
    wait_status(export, "failed", LOST + 15, poll=lambda: client.get("/queues/"))
    assert "worker lost" in export.error and export.path == ""
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/") == []
    assert partial.is_dir()  # the dead worker's machine keeps its half-built folder…

    assert (
        control.queue_action(actor=admin_user, name="exports", action="retry-failed")["count"] == 1
    )
    worker_process("exports", env=env)  # a fresh worker on that machine
    wait_status(export, "finished", 180)
    assert not partial.exists()  # …until the retry there starts afresh and cleans up
    key = f"{s3_storage.prefix}/exports/{export.path}"
    keys = s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/")
    assert f"{key}/manifest.json" in keys and f"{key}.zip" in keys
    assert not list((work / "exports").iterdir())


def test_a_worker_starting_on_a_machine_clears_what_dead_exports_left_there(
    project, manager, s3_storage, worker_process, tmp_path
):
    from queues.models import Export

    running, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    Export.objects.filter(pk=running.pk).update(status="started")  # on another worker
    folder = tmp_path / "machine" / "exports"
    for name in (f".tmp-{running.pk}", ".tmp-999999"):
        (folder / name).mkdir(parents=True)
        (folder / name / "episode_0.hdf5").write_bytes(b"half")
    (folder / ".tmp-999999.zip").write_bytes(b"half")
    env = {
        **s3_storage.environ(s3_storage.bucket, s3_storage.prefix),
        "STAGECRAFT_TEST_WORK_DIR": str(tmp_path / "machine"),
    }
    worker_process("default", env=env)
    deadline = time.monotonic() + 60
    while (folder / ".tmp-999999").exists() or (folder / ".tmp-999999.zip").exists():
        assert time.monotonic() < deadline, "the worker left them"
        time.sleep(0.1)
    assert sorted(p.name for p in folder.iterdir()) == [f".tmp-{running.pk}"]  # still running
