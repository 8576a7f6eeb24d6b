"""Several machines, no shared disk (issue 18): real worker processes (``manage.py
rqworker``), each with local folders of its own (media, working folder, cache), on one
bucket of a real S3 server (moto's, tests/helpers/s3.py). The test process is the web
server: it takes the upload and queues the jobs."""

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from projects.dataset_files import MANIFEST
from projects.dataset_services import dataset_import_start
from projects.models import Dataset
from queues import control, services
from queues.models import Export
from tests.helpers.hdf5 import write_aloha
from tests.queues.processes import worker_process  # noqa: F401 (a fixture: real workers)

pytestmark = pytest.mark.django_db(transaction=True)
LOST = 5  # seconds without a heartbeat before a worker is lost


def machine(tmp_path: Path, name: str, s3) -> tuple[Path, dict[str, str]]:
    """A worker's own disk: its media folder, and its temporary folder, where the suite's
    settings make its cache and working folder (config/test_settings.py)."""
    root = tmp_path / name
    (root / "media").mkdir(parents=True)
    (root / "tmp").mkdir()
    return root, {
        **s3.environ(s3.bucket, s3.prefix),
        "STAGECRAFT_TEST_MEDIA_ROOT": str(root / "media"),
        "TMPDIR": str(root / "tmp"),
        "STAGECRAFT_WORKER_LOST_SECONDS": str(LOST),
    }


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def wait_for(check, timeout: float, what: str, *, poll=None, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poll is not None:
            poll()
        found = check()
        if found:
            return found
        time.sleep(every)
    pytest.fail(f"{what}: not after {timeout} s")


def test_an_import_on_one_worker_and_an_export_on_another_share_no_disk(
    s3_storage,
    project,
    manager,
    tmp_path,
    settings,
    worker_process,  # noqa: F811
):
    from tests.queues.test_export_episodes import finished_tasks

    settings.MEDIA_ROOT = tmp_path / "web-media"
    source = [write_aloha(tmp_path / "src" / f"episode_{i}.hdf5", T=9, seed=i) for i in range(2)]
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in files_in(tmp_path / "src")]

    importer, importer_env = machine(tmp_path, "machine-a", s3_storage)
    first = worker_process("imports", env=importer_env)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Rig", format="hdf5", uploads=uploads
    )
    wait_for(
        lambda: Dataset.objects.filter(pk=dataset.pk, status__in=["finished", "failed"]).exists(),
        120,
        "the import",
    )
    dataset.refresh_from_db()
    assert (dataset.status, dataset.error) == ("finished", "")
    version = f"{s3_storage.prefix}/datasets/{dataset.pk}/{dataset.files_version}"
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/datasets/") == [
        f"{version}/{MANIFEST}",
        f"{version}/episode_0.hdf5",
        f"{version}/episode_1.hdf5",
    ]
    # The importing machine kept nothing: its staging folder is gone, its media empty.
    assert files_in(importer) == []
    first.stop()
    shutil.rmtree(importer)  # that machine is gone for good
    assert not (settings.MEDIA_ROOT / "datasets").exists()  # nor did the web server keep any

    finished_tasks(project, manager, dataset, 1)
    exporter, exporter_env = machine(tmp_path, "machine-b", s3_storage)
    worker_process("exports", env=exporter_env)
    export, _ = services.export_start(actor=manager, project=project, format="hdf5")
    wait_for(
        lambda: Export.objects.filter(pk=export.pk, status__in=["finished", "failed"]).exists(),
        120,
        "the export",
    )
    export.refresh_from_db()
    assert (export.status, export.error) == ("finished", "")

    # The exporting machine read the episodes from the bucket into its own cache, and
    # published the export to the bucket: nothing of either is in its media folder.
    assert files_in(exporter / "media") == []
    cached = {p.name for p in files_in(exporter / "tmp")}
    assert {"episode_0.hdf5", "episode_1.hdf5"} <= cached
    out = services.export_dir(export)  # this process's copy, from the bucket
    for i, written in enumerate(source):
        with h5py.File(out / f"episode_{i}.hdf5", "r") as f:
            assert np.array_equal(
                f["observations/images/cam_high"][...], written["images"]["cam_high"]
            )
            assert np.array_equal(f["observations/qpos"][...], written["qpos"])


def test_a_worker_killed_while_publishing_leaves_no_manifest_and_its_objects_are_removed(
    s3_storage,
    project,
    manager,
    tmp_path,
    settings,
    worker_process,  # noqa: F811
):
    settings.MEDIA_ROOT = tmp_path / "web-media"
    settings.STAGECRAFT_WORKER_LOST_SECONDS = LOST
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:  # many objects: publishing takes a while
        for i in range(800):
            image = io.BytesIO()
            Image.new("RGB", (16, 16), (i % 256, 0, 0)).save(image, "PNG")
            zf.writestr(f"shots/shot_{i:03}.png", image.getvalue())
    upload = SimpleUploadedFile("shots.zip", archive.getvalue())
    _, env = machine(tmp_path, "machine-a", s3_storage)
    worker = worker_process("imports", env=env)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Shots", format="images", uploads=[upload]
    )
    prefix = f"{s3_storage.prefix}/datasets/{dataset.pk}/"
    wait_for(lambda: s3_storage.keys(prefix=prefix), 120, "publishing")
    horses = worker.children()
    worker.kill()  # the machine is lost in the middle of publishing

    for pid in horses:
        wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}/cmdline") or _zombie(pid),
                 10, "the work horse's end")  # fmt: skip
    left = s3_storage.keys(prefix=prefix)
    assert left and not any(key.endswith(MANIFEST) for key in left)  # never trusted
    assert Dataset.objects.get(pk=dataset.pk).status == "started"

    # Another machine's check finds the lost job: the import fails and its objects go.
    wait_for(
        lambda: Dataset.objects.filter(pk=dataset.pk, status="failed").exists(),
        LOST + 30,
        "the lost import's clean-up",
        poll=control.recover_lost_jobs,
        every=0.5,
    )
    assert "worker lost" in Dataset.objects.get(pk=dataset.pk).error
    assert s3_storage.keys(prefix=prefix) == []
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/uploads/") == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
