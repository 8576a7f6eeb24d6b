"""An export is published and marked finished together: no one sees it finished before its
folder, manifest and zip are there, and a run that dies between publishing and recording its
finish (the worker killed at that instant — stood in for here by a SystemExit raised where
the job logs "published", since a real SIGKILL cannot be timed there) leaves nothing published
once recovery abandons it; the retry then publishes under the same name."""

import json
import threading

import pytest

from queues import services
from queues.models import Export, ExportStatus

from .test_export_episodes import finished_tasks


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def published(project) -> list[str]:
    folder = services.exports_root() / project.slug
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def start(project, manager):
    export, _ = services.export_start(
        actor=manager, project=project, format="hdf5", background=False
    )
    return export


@pytest.mark.django_db
def test_a_run_dying_after_publishing_leaves_nothing_and_its_retry_publishes(
    project, manager, dataset, monkeypatch
):
    finished_tasks(project, manager, dataset, 1)
    export = start(project, manager)
    real_log = services.job_log

    def dies_after_publishing(message, *args, **kwargs):
        if message.startswith("published"):
            assert published(project) == ["v1-hdf5", "v1-hdf5.zip"]  # the renames happened
            raise SystemExit("worker killed")
        return real_log(message, *args, **kwargs)

    monkeypatch.setattr(services, "job_log", dies_after_publishing)
    with pytest.raises(SystemExit):
        services.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.status == ExportStatus.STARTED  # its finish was never committed
    services.export_abandon(export_id=export.pk, reason="worker lost")  # what recovery does
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "nothing was published" in export.error
    assert published(project) == []
    monkeypatch.setattr(services, "job_log", real_log)
    done = services.export_run(export_id=export.pk)  # "Retry failed"
    assert done.status == ExportStatus.FINISHED
    assert published(project) == ["v1-hdf5", "v1-hdf5.zip"]
    manifest = json.loads((services.export_dir(done) / "manifest.json").read_text())
    assert manifest["export_id"] == done.pk and manifest == done.manifest


@pytest.mark.django_db
def test_abandoning_never_touches_another_exports_folder(project, manager, dataset):
    """A folder of the same name left by a reset database (its manifest names another
    export) stays: the failed run's clean-up removes only what its run published."""
    finished_tasks(project, manager, dataset, 1)
    other = services.exports_root() / project.slug / "v1-hdf5"
    other.mkdir(parents=True)
    (other / "manifest.json").write_text(json.dumps({"export_id": 999999}))
    export = start(project, manager)
    services.export_abandon(export_id=export.pk, reason="worker lost")
    assert (other / "manifest.json").exists()


@pytest.mark.django_db(transaction=True)
def test_no_one_sees_an_export_finished_before_its_files(project, manager, dataset, monkeypatch):
    """Read from another connection at the instant the folder is renamed: still "started"
    (finished and published commit together); once it says finished, every file of its
    manifest, and the zip, is there."""
    finished_tasks(project, manager, dataset, 1)
    export = start(project, manager)
    real_log = services.job_log
    seen = []

    def look(message, *args, **kwargs):
        if message.startswith("published"):

            def other_connection():
                from django.db import connection

                seen.append(Export.objects.get(pk=export.pk).status)
                connection.close()

            reader = threading.Thread(target=other_connection)
            reader.start()
            reader.join()
        return real_log(message, *args, **kwargs)

    monkeypatch.setattr(services, "job_log", look)
    done = services.export_run(export_id=export.pk)
    assert seen == [ExportStatus.STARTED]
    assert done.status == ExportStatus.FINISHED
    folder = services.export_dir(done)
    for name in done.manifest["files"]:
        assert (folder / name).is_file(), name
    assert folder.with_suffix(".zip").is_file()
    assert done.size_bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
