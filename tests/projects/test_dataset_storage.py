"""Datasets in a bucket (issue 18): uploads, imports, reads, re-syncs and deletes through the
data storage (core/objectstore.py) against a real S3 server (moto's, a separate process:
tests/helpers/s3.py). Every read here starts from a cleared cache, as on a machine that
never saw the dataset."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core import objectstore
from projects import dataset_selectors
from projects.dataset_files import MANIFEST, sample_root
from projects.dataset_services import (
    dataset_delete,
    dataset_import_run,
    dataset_import_start,
    dataset_resync_run,
)
from projects.formats import get_format
from projects.models import Dataset
from tests.helpers.hdf5 import write_aloha, write_robomimic
from tests.helpers.lerobot import write_lerobot
from tests.projects.test_import_formats import write_replay_buffer

pytestmark = pytest.mark.django_db


def zipped(folder: Path) -> SimpleUploadedFile:
    """``folder`` as an uploaded zip holding it (the import unpacks and flattens it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, Path(folder.name) / path.relative_to(folder))
    return SimpleUploadedFile(f"{folder.name}.zip", buffer.getvalue())


def files(folder: Path) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]


def aloha(tmp_path):
    for i in range(2):
        write_aloha(tmp_path / "src" / f"episode_{i}.hdf5", T=10, seed=i, compressed=i == 1)
    return "hdf5", files(tmp_path / "src"), tmp_path / "src"


def robomimic(tmp_path):
    (tmp_path / "src").mkdir()
    write_robomimic(tmp_path / "src" / "lift.hdf5", demos=2, T=6)
    return "robomimic", files(tmp_path / "src"), tmp_path / "src"


def lerobot(tmp_path):
    rng = np.random.default_rng(4)
    episodes = [
        {
            "frames": rng.integers(0, 256, size=(n, 16, 24, 3), dtype=np.uint8),
            "state": rng.normal(size=(n, 3)).astype(np.float32),
            "action": rng.normal(size=(n, 3)).astype(np.float32),
            "task": "pick",
        }
        for n in (5, 7)
    ]
    root = write_lerobot(tmp_path / "ds", episodes, video=True)
    return "lerobot", [zipped(root)], root


def zarr(tmp_path):
    write_replay_buffer(str(tmp_path / "pusht.zarr"))
    return "zarr", [zipped(tmp_path / "pusht.zarr")], tmp_path / "pusht.zarr"


def images(tmp_path):
    (tmp_path / "src").mkdir()
    for i, colour in enumerate(["red", "blue", "green"]):
        Image.new("RGB", (12, 8), colour).save(tmp_path / "src" / f"shot_{i}.png")
    return "images", files(tmp_path / "src"), tmp_path / "src"


def bucket_keys(s3, dataset_id: int, under: str = "datasets") -> list[str]:
    return s3.keys(prefix=f"{s3.prefix}/{under}/{dataset_id}/")


def upload(project, manager, fmt, uploads, name="Bucket data"):
    return dataset_import_start(
        actor=manager, project=project, name=name, format=fmt, uploads=uploads, background=False
    )


@pytest.mark.parametrize("make", [aloha, robomimic, lerobot, zarr, images])
def test_an_upload_imports_into_the_bucket_and_reads_back_from_a_cold_cache(
    make, s3_storage, project, manager, tmp_path, settings
):
    fmt, uploads, original = make(tmp_path)
    dataset = upload(project, manager, fmt, uploads)
    # The web process kept the uploads in the bucket, not on its disk.
    assert bucket_keys(s3_storage, dataset.pk, "uploads/datasets")
    assert not (Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)).exists()

    s3_storage.record()
    dataset = dataset_import_run(dataset_id=dataset.pk)

    assert (dataset.status, dataset.error) == ("finished", "")
    assert dataset.files_version.startswith("v-")
    version = f"{s3_storage.prefix}/datasets/{dataset.pk}/{dataset.files_version}/"
    stored = bucket_keys(s3_storage, dataset.pk)
    assert stored and all(key.startswith(version) for key in stored)
    with objectstore.open_read(f"datasets/{dataset.pk}/{dataset.files_version}/{MANIFEST}") as f:
        manifest = json.loads(f.read())
    published = sorted(key[len(version) :] for key in stored)
    assert published == sorted([*manifest["files"], MANIFEST])
    assert manifest["checksum"] == dataset.checksum
    puts = [path for method, path in s3_storage.recorded() if method == "PUT"]
    assert puts[-1].endswith(f"/{MANIFEST}")  # written last
    assert bucket_keys(s3_storage, dataset.pk, "uploads/datasets") == []  # taken by the job
    assert not list((Path(settings.STAGECRAFT_WORK_DIR) / "datasets").glob(f".*-{dataset.pk}*"))
    assert not (Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)).exists()

    reader = get_format(fmt)
    for sample in dataset.samples.select_related("dataset"):
        objectstore.evict()
        assert not list(Path(settings.STAGECRAFT_CACHE_DIR).rglob("*.*"))
        for camera in sample.cameras:
            last = sample.num_frames - 1
            png = dataset_selectors.sample_frame(
                sample=sample, camera=camera["name"], index=last, encoding="png"
            )
            expected = reader.read_frame(original, sample, camera["name"], last)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), expected)
        # Only this sample's files were fetched (its episode's file, not the dataset's).
        cached = [p.parts for p in Path(settings.STAGECRAFT_CACHE_DIR).rglob("*") if p.is_file()]
        fetched = {
            "/".join(parts[parts.index("tree") + 1 :]) for parts in cached if "tree" in parts
        }
        wanted = reader.sample_files(sample)
        assert fetched and all(
            "." in wanted or any(f == w or f.startswith(f"{w}/") for w in wanted) for f in fetched
        ), (fetched, wanted)
        series = reader.read_series(sample_root(sample), sample)
        expected_series = reader.read_series(original, sample)
        assert series.keys() == expected_series.keys()
        for name, values in expected_series.items():
            assert np.array_equal(series[name], values)
        if sample.arrays:
            assert dataset_selectors.sample_series(sample=sample)["series"]


def test_the_frame_endpoint_answers_after_the_cache_is_cleared_with_the_same_etag(
    s3_storage, project, manager, tmp_path, api_as
):
    fmt, uploads, _ = aloha(tmp_path)
    dataset = dataset_import_run(dataset_id=upload(project, manager, fmt, uploads).pk)
    sample = dataset.samples.order_by("index").first()
    client = api_as(manager)
    url = f"/api/v1/samples/{sample.pk}/frames/cam_high/3/"

    first = client.get(url)
    assert first.status_code == 200
    objectstore.evict()
    again = client.get(url)
    assert again.status_code == 200 and again["ETag"] == first["ETag"]
    assert again.content == first.content
    objectstore.evict()
    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


def test_a_failed_import_leaves_no_manifest_and_no_objects(s3_storage, project, manager, tmp_path):
    (tmp_path / "src").mkdir()
    write_aloha(tmp_path / "src" / "episode_0.hdf5", T=6)
    (tmp_path / "src" / "episode_1.hdf5").write_bytes(b"not an HDF5 file at all")
    dataset = dataset_import_run(
        dataset_id=upload(project, manager, "hdf5", files(tmp_path / "src")).pk
    )
    assert dataset.status == "failed"
    assert dataset.error.startswith("episode_1.hdf5: ")
    assert s3_storage.keys() == []


def test_resync_publishes_a_new_version_and_delete_removes_every_object(
    s3_storage, project, manager, tmp_path, settings, django_capture_on_commit_callbacks
):
    folder = Path(settings.STAGECRAFT_IMPORT_ROOTS[0]) / f"resync-{tmp_path.name}"
    for i in range(2):
        write_aloha(folder / f"episode_{i}.hdf5", T=8, seed=i)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Rig", format="hdf5", source_path=folder,
        background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    old = dataset.files_version
    old_keys = bucket_keys(s3_storage, dataset.pk)
    sample = dataset.samples.get(name="episode_0")
    etag = dataset_selectors.frame_etag(sample, "cam_high", 0)

    write_aloha(folder / "episode_0.hdf5", T=9, seed=7)
    write_aloha(folder / "episode_2.hdf5", T=5, seed=2)
    # What a re-sync killed while publishing left: a version without its manifest.
    objectstore.put_bytes(b"half", f"datasets/{dataset.pk}/v-0123456789ab/episode_0.hdf5")
    assert dataset_resync_run(dataset_id=dataset.pk) == {
        "changed": ["episode_0"],
        "added": ["episode_2"],
    }

    dataset.refresh_from_db()
    assert dataset.files_version != old
    keys = bucket_keys(s3_storage, dataset.pk)
    new = f"{s3_storage.prefix}/datasets/{dataset.pk}/{dataset.files_version}/"
    assert all(k.startswith(new) for k in keys)  # the old version's objects are gone
    assert len(keys) == len(old_keys) + 1
    objectstore.evict()
    sample = dataset.samples.select_related("dataset").get(name="episode_0")
    assert sample.num_frames == 9
    assert dataset_selectors.frame_etag(sample, "cam_high", 0) != etag
    png = dataset_selectors.sample_frame(sample=sample, camera="cam_high", index=8, encoding="png")
    expected = get_format("hdf5").read_frame(folder, sample, "cam_high", 8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), expected)

    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(actor=manager, dataset=dataset)
    assert s3_storage.keys() == []


def test_an_import_sweeps_staging_folders_a_killed_worker_left_on_this_machine(
    s3_storage, project, manager, tmp_path, settings
):
    fmt, uploads, _ = images(tmp_path)
    dead = upload(project, manager, fmt, uploads, name="Killed here")
    Dataset.objects.filter(pk=dead.pk).update(status="failed")  # cleaned up elsewhere
    work = Path(settings.STAGECRAFT_WORK_DIR) / "datasets"
    left = [work / f".staging-{dead.pk}", work / f".resync-{dead.pk}-0123abcd"]
    for folder in left:
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "shot.png").write_bytes(b"x")
    (work / f".staging-{dead.pk + 1000}").mkdir()  # no such dataset
    busy = upload(project, manager, fmt, files(tmp_path / "src"), name="Running elsewhere")
    Dataset.objects.filter(pk=busy.pk).update(status="started")
    (work / f".staging-{busy.pk}").mkdir()  # another worker of this machine's
    (work / "notes").mkdir()  # not a staging folder

    (tmp_path / "next").mkdir()
    fmt, uploads, _ = images(tmp_path / "next")
    dataset = dataset_import_run(dataset_id=upload(project, manager, fmt, uploads).pk)

    assert dataset.status == "finished"
    assert sorted(p.name for p in work.iterdir()) == sorted([f".staging-{busy.pk}", "notes"])


def test_on_the_local_folder_uploads_wait_under_media_and_are_moved_into_the_dataset(
    project, manager, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    fmt, uploads, _ = images(tmp_path)
    dataset = upload(project, manager, fmt, uploads)
    waiting = tmp_path / "media" / "uploads" / "datasets" / str(dataset.pk)
    assert sorted(p.name for p in waiting.iterdir()) == ["shot_0.png", "shot_1.png", "shot_2.png"]

    dataset = dataset_import_run(dataset_id=dataset.pk)

    assert (dataset.status, dataset.files_version) == ("finished", "")
    stored = tmp_path / "media" / "datasets" / str(dataset.pk)
    assert sorted(p.name for p in stored.iterdir()) == ["shot_0.png", "shot_1.png", "shot_2.png"]
    assert not waiting.exists()
    assert not (tmp_path / "media" / "datasets" / f".staging-{dataset.pk}").exists()


def test_the_demo_seeds_its_datasets_into_the_bucket_and_its_frames_answer(s3_storage, api_as):
    """``make run-s3``'s demo: every demo dataset published to the bucket, read back cold."""
    from django.core.management import call_command

    call_command("seed_demo")

    datasets = list(Dataset.objects.filter(project__slug="pick-and-place"))
    assert datasets and all(d.status == "finished" and d.files_version for d in datasets)
    client = api_as(datasets[0].project.memberships.get(role="manager").user)
    for dataset in datasets:
        assert bucket_keys(s3_storage, dataset.pk)
        sample = dataset.samples.order_by("index").first()
        objectstore.evict()
        answer = client.get(f"/api/v1/samples/{sample.pk}/frames/{sample.cameras[0]['name']}/0/")
        assert answer.status_code == 200, answer.content[:200]


def test_a_damaged_object_is_named_as_its_file_not_where_this_machine_cached_it(
    s3_storage, project, manager, tmp_path, settings, api_as
):
    rng = np.random.default_rng(5)
    episode = {
        "frames": rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8),
        "state": np.zeros((4, 2), np.float32),
        "action": np.ones((4, 2), np.float32),
        "task": "pick",
    }
    root = write_lerobot(tmp_path / "ds", [episode])  # frames as images inside the parquet
    dataset = dataset_import_run(dataset_id=upload(project, manager, "lerobot", [zipped(root)]).pk)
    sample = dataset.samples.get()
    table = sample.source["file"]
    key = f"{s3_storage.prefix}/datasets/{dataset.pk}/{dataset.files_version}/{table}"
    s3_storage.client().put_object(Bucket=s3_storage.bucket, Key=key, Body=b"PAR1 broken PAR1")
    objectstore.evict()

    camera = sample.cameras[0]["name"]
    answer = api_as(manager).get(f"/api/v1/samples/{sample.pk}/frames/{camera}/0/")

    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith(f"{table}: ") and detail.count(table) == 2, detail  # pyarrow's too
    for where in (str(settings.STAGECRAFT_CACHE_DIR), "/tree/", str(tmp_path)):
        assert where not in detail, detail


class BrokenOff(SimpleUploadedFile):
    """An upload whose client went away in the middle of its body."""

    def chunks(self, chunk_size=None):
        yield b"the first part"
        raise OSError("connection reset by peer")

    def read(self, *args):
        raise OSError("connection reset by peer")


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_an_upload_that_breaks_off_leaves_no_dataset_and_no_files(
    where, project, manager, tmp_path, settings, request
):
    settings.MEDIA_ROOT = tmp_path / "media"
    s3 = request.getfixturevalue("s3_storage") if where == "bucket" else None
    fine = SimpleUploadedFile("episode_0.hdf5", b"a whole file")

    with pytest.raises(OSError):
        upload(project, manager, "hdf5", [fine, BrokenOff("episode_1.hdf5", b"")])

    assert not Dataset.objects.exists()
    if s3 is not None:
        assert s3.keys() == []
    else:
        assert files_in_media(tmp_path / "media") == []


def files_in_media(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
