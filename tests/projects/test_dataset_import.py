"""The import pipeline: files → RQ job on `imports` → samples, all or nothing."""

import zipfile
from pathlib import Path

import django_rq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from core.exceptions import ApplicationError
from projects.dataset_services import (
    check_import_path,
    dataset_dir,
    dataset_import_run,
    dataset_import_start,
    datasets_root,
    detect_format,
)
from projects.models import Dataset, Sample
from tests.helpers.hdf5 import truncate, write_aloha, write_robomimic
from tests.helpers.lerobot import write_lerobot

pytestmark = pytest.mark.django_db


@pytest.fixture
def episodes(tmp_path):
    folder = tmp_path / "session"
    for i in range(3):
        write_aloha(folder / f"episode_{i}.hdf5", T=10 + i, seed=i)
    return folder


def start(project, manager, path, fmt="hdf5", **kwargs):
    return dataset_import_start(
        actor=manager, project=project, name="Session", format=fmt, source_path=path, **kwargs
    )


def test_a_worker_imports_a_folder_and_reports_progress(
    project, manager, episodes, run_jobs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        dataset = start(project, manager, episodes)
    assert dataset.status == "queued"
    job = django_rq.get_queue("imports").fetch_job(dataset.job_id)
    assert job is not None and job.origin == "imports"

    run_jobs("imports")

    dataset.refresh_from_db()
    assert (dataset.status, dataset.error) == ("finished", "")
    assert (dataset.num_samples, dataset.total_frames) == (3, 33)
    assert dataset.duration_seconds == pytest.approx(33 / 50)
    assert len(dataset.checksum) == 64
    samples = list(dataset.samples.order_by("index"))
    assert [s.name for s in samples] == ["episode_0", "episode_1", "episode_2"]
    assert all(len(s.checksum) == 64 for s in samples)
    stored = sorted(p.name for p in dataset_dir(dataset).iterdir())
    assert stored == ["episode_0.hdf5", "episode_1.hdf5", "episode_2.hdf5"]
    job.refresh()
    assert job.get_status() == "finished"
    assert job.get_meta(refresh=True)["progress"] == 1.0


def test_one_corrupt_file_fails_the_whole_dataset(project, manager, episodes):
    truncate(episodes / "episode_1.hdf5")
    dataset = start(project, manager, episodes, background=False)
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "failed"
    assert dataset.error.startswith("episode_1.hdf5: not a readable HDF5 file")
    assert not Sample.objects.exists()
    assert dataset.num_samples == 0
    assert not dataset_dir(dataset).exists()
    assert not any(datasets_root().glob(f".staging-{dataset.pk}"))


def test_reimporting_the_same_files_is_detected(project, manager, episodes, tmp_path):
    first = dataset_import_run(dataset_id=start(project, manager, episodes, background=False).pk)
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in episodes.iterdir():  # same bytes, other names and folder
        (copy / f"renamed_{path.name}").write_bytes(path.read_bytes())
    second = dataset_import_run(dataset_id=start(project, manager, copy, background=False).pk)
    assert second.status == "failed"
    assert second.error == f"These files were already imported as “Session” (dataset {first.pk})."
    assert Sample.objects.filter(dataset=second).count() == 0


def test_running_an_import_twice_does_nothing_the_second_time(project, manager, episodes):
    dataset = start(project, manager, episodes, background=False)
    assert dataset_import_run(dataset_id=dataset.pk).status == "finished"
    assert dataset_import_run(dataset_id=dataset.pk) is None
    assert dataset.samples.count() == 3


def test_thousand_samples_with_bounded_queries(
    project, manager, tmp_path, django_assert_max_num_queries
):
    write_robomimic(tmp_path / "big.hdf5", demos=1000, T=3, images=False)
    dataset = start(project, manager, tmp_path / "big.hdf5", fmt="robomimic", background=False)
    with django_assert_max_num_queries(12):
        dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished"
    assert dataset.num_samples == 1000
    assert dataset.samples.last().name == "big/demo_999"


def test_uploads_and_zip_archives(project, manager, tmp_path):
    write_aloha(tmp_path / "episode_0.hdf5", seed=5)
    write_aloha(tmp_path / "episode_1.hdf5", seed=6)
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as zf:
        zf.write(tmp_path / "episode_1.hdf5", "nested/episode_1.hdf5")
    uploads = [
        SimpleUploadedFile("../../episode_0.hdf5", (tmp_path / "episode_0.hdf5").read_bytes()),
        SimpleUploadedFile("more.zip", (tmp_path / "more.zip").read_bytes()),
    ]
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="Uploaded",
        format="hdf5",
        uploads=uploads,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    # A zip of one folder is unpacked as that folder's contents.
    assert sorted(s.source["file"] for s in dataset.samples.all()) == [
        "episode_0.hdf5",
        "episode_1.hdf5",
    ]


def test_a_zip_that_escapes_its_folder_is_refused(project, manager, tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../outside.hdf5", b"x")
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="Evil",
        format="hdf5",
        uploads=[SimpleUploadedFile("evil.zip", (tmp_path / "evil.zip").read_bytes())],
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "failed"
    assert "points outside" in dataset.error
    assert not (datasets_root().parent / "outside.hdf5").exists()


def test_lerobot_folder_import(project, manager, tmp_path):
    import numpy as np

    episode = {
        "frames": np.zeros((4, 8, 8, 3), np.uint8),
        "state": np.zeros((4, 2)),
        "action": np.ones((4, 2)),
        "task": "pick",
    }
    write_lerobot(tmp_path / "ds", [episode, episode], video=True)
    dataset = start(project, manager, tmp_path / "ds", fmt="lerobot", background=False)
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    assert dataset.num_samples == 2
    assert (dataset_dir(dataset) / "meta" / "info.json").exists()


def test_bad_requests_are_refused_before_anything_is_queued(project, manager, tmp_path):
    with pytest.raises(ApplicationError, match="needs a name"):
        dataset_import_start(
            actor=manager, project=project, name=" ", format="hdf5", source_path=tmp_path
        )
    with pytest.raises(ApplicationError, match="Format must be one of"):
        dataset_import_start(
            actor=manager, project=project, name="x", format="mp3", source_path=tmp_path
        )
    with pytest.raises(ApplicationError, match="does not exist"):
        dataset_import_start(
            actor=manager, project=project, name="x", format="hdf5", source_path=tmp_path / "no"
        )
    with pytest.raises(ApplicationError, match="either files to upload or a path"):
        dataset_import_start(actor=manager, project=project, name="x", format="hdf5")
    assert not Dataset.objects.exists()


def test_server_paths_must_be_inside_the_import_folders(settings, tmp_path):
    settings.STAGECRAFT_IMPORT_ROOTS = [str(tmp_path / "incoming")]
    (tmp_path / "incoming" / "a").mkdir(parents=True)
    assert check_import_path(str(tmp_path / "incoming" / "a")) == tmp_path / "incoming" / "a"
    for outside in ("/etc", str(tmp_path / "incoming" / ".." / "secret"), str(tmp_path)):
        with pytest.raises(ApplicationError, match="only read inside the import folders"):
            check_import_path(outside)


def test_formats_are_detected(tmp_path, episodes):
    write_robomimic(tmp_path / "demo.hdf5")
    (tmp_path / "imgs").mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / "a.png")
    assert detect_format(episodes) == "hdf5"
    assert detect_format(tmp_path / "demo.hdf5") == "robomimic"
    assert detect_format(tmp_path / "imgs") == "images"
    with pytest.raises(ApplicationError, match="Cannot tell the format"):
        detect_format(Path("/dev/null"))


def test_the_command_imports_and_reports(project, episodes, capsys):
    call_command("import_dataset", str(episodes), "--project", project.slug)
    out = capsys.readouterr().out
    assert "3 samples, 33 frames" in out
    truncate(episodes / "episode_2.hdf5")
    (episodes / "extra.hdf5").write_bytes(b"junk")
    with pytest.raises(CommandError, match="Import failed: episode_2.hdf5"):
        call_command("import_dataset", str(episodes), "--project", project.slug, "--name", "B")
    with pytest.raises(CommandError, match="No project"):
        call_command("import_dataset", str(episodes), "--project", "nope")


# --- hostile files: nothing outside the dataset may be read through it ------------------


def run_import(project, manager, path, fmt="hdf5"):
    dataset = start(project, manager, path, fmt=fmt, background=False)
    return dataset_import_run(dataset_id=dataset.pk)


def test_hdf5_external_storage_is_refused(project, manager, tmp_path):
    import h5py
    import numpy as np

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"x" * 4 * 8 * 8 * 3)
    folder = tmp_path / "ep"
    folder.mkdir()
    with h5py.File(folder / "episode_0.hdf5", "w") as f:
        f.create_dataset("observations/qpos", data=np.zeros((4, 14)))
        f.create_dataset("action", data=np.zeros((4, 14)))
        f.create_dataset(
            "observations/images/cam", shape=(4, 8, 8, 3), dtype="uint8",
            external=[(str(secret), 0, 4 * 8 * 8 * 3)],
        )  # fmt: skip
    dataset = run_import(project, manager, folder)
    assert dataset.status == "failed"
    assert "keeps its data outside the file" in dataset.error


def test_hdf5_links_to_other_files_are_refused(project, manager, tmp_path):
    import h5py

    other = tmp_path / "other.hdf5"
    write_aloha(other)
    folder = tmp_path / "ep"
    write_aloha(folder / "episode_0.hdf5")
    with h5py.File(folder / "episode_0.hdf5", "a") as f:
        f["observations/effort"] = h5py.ExternalLink(str(other), "/observations/qpos")
    dataset = run_import(project, manager, folder)
    assert dataset.status == "failed"
    assert "/observations/effort is a link (not allowed)" in dataset.error


def test_lerobot_paths_that_leave_the_dataset_are_refused(project, manager, tmp_path):
    import json

    import numpy as np

    episode = {
        "frames": np.zeros((3, 8, 8, 3), np.uint8),
        "state": np.zeros((3, 2)),
        "action": np.zeros((3, 2)),
        "task": "t",
    }
    root = write_lerobot(tmp_path / "ds", [episode])
    info = json.loads((root / "meta" / "info.json").read_text())
    info["data_path"] = "../../elsewhere/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    dataset = run_import(project, manager, root, fmt="lerobot")
    assert dataset.status == "failed"
    assert "points outside the dataset" in dataset.error
    info["data_path"] = "data/{nope}.parquet"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    dataset = run_import(project, manager, root, fmt="lerobot")
    assert "“data_path” is not a usable template" in dataset.error


def test_symlinks_in_a_server_folder_are_skipped(project, manager, tmp_path):
    folder = tmp_path / "ep"
    write_aloha(folder / "episode_0.hdf5")
    outside = tmp_path / "outside.hdf5"
    write_aloha(outside, seed=3)
    (folder / "episode_1.hdf5").symlink_to(outside)
    dataset = run_import(project, manager, folder)
    assert dataset.status == "finished"
    assert [s.name for s in dataset.samples.all()] == ["episode_0"]


def test_uploads_with_the_same_name_are_refused(project, manager):
    with pytest.raises(ApplicationError, match="both named “a.png”"):
        dataset_import_start(
            actor=manager,
            project=project,
            name="Twice",
            format="images",
            uploads=[SimpleUploadedFile("a.png", b"1"), SimpleUploadedFile("x/a.png", b"2")],
        )


def test_a_frame_rate_that_is_not_a_number_is_refused(project, manager, tmp_path):
    import h5py

    write_aloha(tmp_path / "ep" / "episode_0.hdf5")
    with h5py.File(tmp_path / "ep" / "episode_0.hdf5", "a") as f:
        f.attrs["fps"] = float("nan")
    dataset = run_import(project, manager, tmp_path / "ep")
    assert dataset.status == "failed"
    assert "frame rate nan is not a usable number" in dataset.error


def test_a_zipped_lerobot_folder_imports(project, manager, tmp_path):
    import numpy as np

    episode = {
        "frames": np.zeros((3, 8, 8, 3), np.uint8),
        "state": np.zeros((3, 2)),
        "action": np.zeros((3, 2)),
        "task": "t",
    }
    root = write_lerobot(tmp_path / "my_dataset", [episode])
    archive = tmp_path / "my_dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in root.rglob("*"):
            zf.write(path, path.relative_to(tmp_path))
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="Zipped",
        format="lerobot",
        uploads=[SimpleUploadedFile("my_dataset.zip", archive.read_bytes())],
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    assert dataset.num_samples == 1


def test_an_import_whose_worker_died_is_marked_failed(
    project, manager, episodes, redis_conn, django_capture_on_commit_callbacks
):
    import time

    from rq.executions import Execution

    with django_capture_on_commit_callbacks(execute=True):
        dataset = start(project, manager, episodes)
    queue = django_rq.get_queue("imports")
    job = queue.fetch_job(dataset.job_id)
    # A worker took the job and then died (killed, out of memory): the job stays "started".
    Dataset.objects.filter(pk=dataset.pk).update(status="started")
    queue.remove(job)
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=60, pipeline=pipe)  # what a worker records as it starts
        pipe.execute()
    queue.started_job_registry.cleanup(timestamp=time.time() + 3600)  # RQ's periodic cleanup

    dataset.refresh_from_db()
    assert dataset.status == "failed"
    assert dataset.error.startswith("The import job stopped before it finished (worker lost)")


# --- errors name the file, never where it lives on the server -----------------------------


def hides_the_server(text: str, settings) -> None:
    import tempfile

    for where in (str(settings.MEDIA_ROOT), ".staging-", ".unzip-", tempfile.gettempdir()):
        assert where not in text, f"{where!r} shown in: {text}"


def test_a_corrupt_upload_names_its_file_not_the_staging_folder(
    project, manager, tmp_path, settings
):
    import numpy as np

    episode = {
        "frames": np.zeros((4, 8, 8, 3), np.uint8),
        "state": np.zeros((4, 2)),
        "action": np.ones((4, 2)),
        "task": "pick",
    }
    write_lerobot(tmp_path / "ds", [episode], video=True)
    table = next((tmp_path / "ds" / "data").rglob("*.parquet"))
    table.write_bytes(b"PAR1 not really parquet PAR1")
    with zipfile.ZipFile(tmp_path / "ds.zip", "w") as zf:
        for path in (tmp_path / "ds").rglob("*"):
            zf.write(path, Path("ds") / path.relative_to(tmp_path / "ds"))
    dataset = dataset_import_start(
        actor=manager, project=project, name="Broken", format="lerobot", background=False,
        uploads=[SimpleUploadedFile("ds.zip", (tmp_path / "ds.zip").read_bytes())],
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "failed"
    relative = table.relative_to(tmp_path / "ds").as_posix()  # as it is inside the upload
    assert dataset.error.startswith(f"{relative}: is not a readable Parquet file")
    assert dataset.error.count(relative) == 2  # pyarrow's own words name it the same way
    hides_the_server(dataset.error, settings)


def test_a_bad_compressed_frame_names_its_file_and_camera(project, manager, tmp_path, settings):
    import h5py

    write_aloha(tmp_path / "s" / "episode_0.hdf5", T=4, compressed=True)
    with h5py.File(tmp_path / "s" / "episode_0.hdf5", "a") as f:
        f["observations/images/cam_high"][0] = 7  # bytes that are no JPEG
    dataset = dataset_import_run(dataset_id=start(project, manager, tmp_path / "s").pk)
    assert dataset.status == "failed"
    assert dataset.error == (
        "episode_0.hdf5: cam_high frame 0: a compressed frame is not a readable JPEG"
    )


def test_a_stored_file_gone_missing_is_named_in_the_api_answer(
    project, manager, tmp_path, settings, api_as
):
    from PIL import Image

    (tmp_path / "shots").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "shots" / "table.png")
    dataset = dataset_import_run(
        dataset_id=start(project, manager, tmp_path / "shots", fmt="images", background=False).pk
    )
    (dataset_dir(dataset) / "table.png").unlink()
    sample = dataset.samples.get()
    answer = api_as(manager).get(f"/api/v1/samples/{sample.pk}/frames/image/0/")
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("table.png: ")
    hides_the_server(detail, settings)


def test_an_unexpected_failure_names_no_server_path(
    project, manager, episodes, settings, monkeypatch
):
    import h5py

    def broken(path, *args, **kwargs):  # the HDF5 library failing in a way nobody expected
        raise RuntimeError(f"internal error while reading {path}")

    monkeypatch.setattr(h5py, "File", broken)
    dataset = start(project, manager, episodes, background=False)
    with pytest.raises(RuntimeError):
        dataset_import_run(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    assert dataset.status == "failed"
    assert dataset.error == (
        "The import failed unexpectedly (RuntimeError: internal error while reading "
        "episode_0.hdf5)."
    )
    hides_the_server(dataset.error, settings)
