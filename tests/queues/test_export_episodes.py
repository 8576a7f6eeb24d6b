"""The episode formats (HDF5, LeRobot, COCO): one streamed selector whose queries do not grow
with the tasks, frames copied a window at a time (memory bounded whatever the episode's
length), every source array kept and read back with the format's own reader."""

import json
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queues import services
from queues.exporters import base
from tasks.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def gradient(T: int, h: int, w: int, seed: int) -> np.ndarray:
    t = np.arange(T)[:, None, None]
    y = np.arange(h)[None, :, None]
    x = np.arange(w)[None, None, :]
    out = np.empty((T, h, w, 3), dtype=np.uint8)
    # Smooth (few wrap-around edges): H.264 keeps it close to the source.
    out[..., 0] = (x + t + seed * 31) % 256
    out[..., 1] = (y + 2 * t + seed * 17) % 256
    out[..., 2] = ((x + y) // 2 + 3 * t + seed * 13) % 256
    return out


def write_episode(path, T, *, h=24, w=32, seed=0, sim=False, dtype=np.float32, mobile=False):
    """An ALOHA file with every array ACT and mobile ALOHA write; frames written a window at
    a time (a long episode is never whole in the test's memory either)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "observations/qpos": rng.normal(size=(T, 14)).astype(dtype),
        "observations/qvel": rng.normal(size=(T, 14)).astype(dtype),
        "observations/effort": rng.normal(size=(T, 14)).astype(dtype),
        "action": rng.normal(size=(T, 14)).astype(dtype),
    }
    if mobile:
        arrays["base_action"] = rng.normal(size=(T, 2)).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = sim
        for name, values in arrays.items():
            f.create_dataset(name, data=values)
        for c, cam in enumerate(("cam_high", "cam_left_wrist")):
            ds = f.create_dataset(
                f"observations/images/{cam}",
                shape=(T, h, w, 3),
                dtype=np.uint8,
                chunks=(1, h, w, 3),
            )
            for start in range(0, T, 50):
                ds[start : start + 50] = gradient(min(50, T - start), h, w, seed + c)
    return arrays


def import_folder(project, manager, folder):
    from projects.dataset_services import dataset_import_run, dataset_import_start

    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name=folder.name,
        format="hdf5",
        source_path=folder,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    return dataset


def finished_tasks(project, manager, dataset, n, start=0):
    from tasks.services import task_create_many

    tasks = task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"t{i}", "unique_id": f"e{i}"} for i in range(start, start + n)],
    )
    ids = [t.pk for t in tasks]
    for task in Task.objects.filter(pk__in=ids):
        task.datasets.add(dataset)
    Task.objects.filter(pk__in=ids).update(status="review_passed", finished_at=timezone.now())
    return ids


def export(project, manager, fmt, **options):
    started, _ = services.export_start(
        actor=manager, project=project, format=fmt, background=False, options=options or None
    )
    with CaptureQueriesContext(connection) as queries:
        done = services.export_run(export_id=started.pk)
    assert done.status == "finished", done.error
    return done, services.export_dir(done), len(queries)


@pytest.mark.parametrize("fmt", ["hdf5", "lerobot", "coco"])
def test_episode_export_queries_do_not_grow_with_tasks(
    project, manager, annotator, dataset, monkeypatch, fmt
):
    """One selector for every format: the same queries for 2 tasks (4 episodes) and for 12
    (24 episodes); progress written once, not per episode."""
    from tasks.models import Annotation

    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)
    writes = []
    real = services.report_progress
    monkeypatch.setattr(services, "report_progress", lambda f, **kw: (writes.append(f), real(f)))
    first = dataset.samples.order_by("index").first()

    def boxes(ids):
        Annotation.objects.bulk_create(
            Annotation(
                task_id=pk,
                stage_key="annotate",
                sample=first,
                label="object",
                kind="box",
                data={"frame": 1, "camera": "cam_high", "x": 1, "y": 2, "w": 5, "h": 6},
                author=annotator,
            )
            for pk in ids
        )

    boxes(finished_tasks(project, manager, dataset, 2))
    small, _, small_queries = export(project, manager, fmt)
    boxes(finished_tasks(project, manager, dataset, 10, start=2))
    writes.clear()
    large, _, large_queries = export(project, manager, fmt)
    assert (small.manifest["counts"]["tasks"], large.manifest["counts"]["tasks"]) == (2, 12)
    if fmt != "coco":
        assert large.manifest["counts"]["episodes"] == 24
    assert large_queries == small_queries <= 30
    assert len(writes) == 2  # the first call, then "done"


def test_episode_chunks_cost_a_few_queries_each(project, manager, dataset, monkeypatch):
    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)
    finished_tasks(project, manager, dataset, 12)
    _, _, one_chunk = export(project, manager, "hdf5")
    monkeypatch.setattr(base.stream_episodes, "__defaults__", (2,))  # six chunks
    _, folder, six_chunks = export(project, manager, "hdf5")
    assert len(list(folder.glob("episode_*.hdf5"))) == 24
    assert six_chunks - one_chunk <= 5 * 5  # tasks, annotations, runs, links, samples


@pytest.mark.parametrize("fmt", ["hdf5", "lerobot"])
def test_a_long_episode_is_exported_in_bounded_memory(project, manager, tmp_path, monkeypatch, fmt):
    """400 frames of two 120x160 cameras (46 MB of pixels) with a 1 MB frame window: the
    export's Python allocations peak far below one camera's frames (the former writers held
    every frame of a camera, twice)."""
    folder = tmp_path / "long"
    write_episode(folder / "episode_0.hdf5", 400, h=120, w=160)
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    monkeypatch.setattr(base, "WINDOW_BYTES", 1024 * 1024)
    one_camera = 400 * 120 * 160 * 3
    tracemalloc.start()
    try:
        done, _, _ = export(project, manager, fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.manifest["counts"]["frames"] == 400
    assert peak < one_camera / 2, f"peak {peak / 1e6:.1f} MB"


def test_hdf5_keeps_every_array_sim_and_dtype(project, manager, tmp_path):
    folder = tmp_path / "mobile"
    source = write_episode(folder / "episode_0.hdf5", 30, sim=True, mobile=True, seed=3)
    write_episode(folder / "episode_1.hdf5", 20, dtype=np.float64, seed=4)
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    done, out, _ = export(project, manager, "hdf5")
    with h5py.File(out / "episode_0.hdf5") as f:
        assert f.attrs["sim"] == np.True_  # ACT's loader aligns actions by it
        for path, values in source.items():
            assert f[path].dtype == values.dtype and np.array_equal(f[path][...], values), path
        images = f["observations/images/cam_high"]
        assert images.shape == (30, 24, 32, 3) and np.array_equal(
            images[...], gradient(30, 24, 32, 3)
        )
    with h5py.File(out / "episode_1.hdf5") as f:
        assert f.attrs["sim"] == np.False_
        assert f["observations/qpos"].dtype == np.float64  # robosuite-like float64 kept
        assert "base_action" not in f
    assert done.manifest["casts"] == {}


def test_lerobot_keeps_every_array_under_its_conventional_name(project, manager, tmp_path):
    folder = tmp_path / "mobile"
    sources = [
        write_episode(folder / f"episode_{i}.hdf5", 20 + i, mobile=True, seed=i) for i in range(2)
    ]
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    from projects.services import project_update

    project = project_update(actor=manager, project=project, robot_type="aloha_mobile")
    done, out, _ = export(project, manager, "lerobot")
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["robot_type"] == "aloha_mobile"
    names = {
        "observation.state": "observations/qpos",
        "observation.velocity": "observations/qvel",
        "observation.effort": "observations/effort",
        "action": "action",
        "base_action": "base_action",
    }
    table = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    for key, path in names.items():
        assert info["features"][key]["dtype"] == "float32"
        assert info["features"][key]["shape"] == [sources[0][path].shape[1]]
        got = np.asarray(table[key].to_pylist(), dtype=np.float32)
        assert np.array_equal(got, np.concatenate([s[path] for s in sources])), key
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert set(names) <= set(stats)
    assert stats["base_action"]["count"] == [41]
    assert done.manifest["casts"] == {}


def test_lerobot_keeps_float64(project, manager, tmp_path):
    folder = tmp_path / "f64"
    source = write_episode(folder / "episode_0.hdf5", 15, dtype=np.float64)
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    _, out, _ = export(project, manager, "lerobot", robot_type="robosuite_panda")
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["dtype"] == "float64"
    assert info["robot_type"] == "robosuite_panda"
    table = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    got = np.asarray(table["observation.state"].to_pylist())
    assert got.dtype == np.float64 and np.array_equal(got, source["observations/qpos"])


def test_written_mp4s_put_their_index_first(project, manager, dataset):
    finished_tasks(project, manager, dataset, 1)
    _, out, _ = export(project, manager, "lerobot")
    videos = list(out.glob("videos/*/chunk-000/file-000.mp4"))
    assert len(videos) == 2
    for video in videos:
        head = video.read_bytes()
        assert head.index(b"moov") < head.index(b"mdat"), video


def test_coco_category_ids_follow_the_taxonomy(project, manager, annotator, dataset):
    """The default taxonomy is object, segment, outcome: every class is listed with its
    position as id, in every export, whether or not it has boxes."""
    from tasks.models import Annotation

    [pk] = finished_tasks(project, manager, dataset, 1)
    sample = dataset.samples.order_by("index").first()
    Annotation.objects.create(
        task_id=pk,
        stage_key="annotate",
        sample=sample,
        label="legacy",
        kind="box",
        data={"frame": 0, "camera": "cam_high", "x": 1, "y": 1, "w": 3, "h": 3},
        author=annotator,
    )
    _, first, _ = export(project, manager, "coco", include_unfinished=True)
    Annotation.objects.create(
        task_id=pk,
        stage_key="annotate",
        sample=sample,
        label="object",
        kind="box",
        data={"frame": 2, "camera": "cam_high", "x": 1, "y": 1, "w": 3, "h": 3},
        author=annotator,
    )
    _, second, _ = export(project, manager, "coco")
    one = json.loads((first / "annotations.json").read_text())
    two = json.loads((second / "annotations.json").read_text())
    names = [(c["id"], c["name"]) for c in one["categories"]]
    assert names == [(1, "object"), (2, "segment"), (3, "outcome"), (4, "legacy")]
    assert [(c["id"], c["name"]) for c in two["categories"]] == names
    by_id = {c["id"]: c["name"] for c in two["categories"]}
    assert sorted(by_id[a["category_id"]] for a in two["annotations"]) == ["legacy", "object"]
    try:
        from pycocotools.coco import COCO
    except ImportError:
        return
    coco = COCO(str(second / "annotations.json"))
    assert coco.getCatIds(catNms=["object"]) == [1]


def test_the_job_builds_the_zip_and_the_download_only_answers_it(project, manager, dataset):
    import zipfile

    from core.exceptions import ApplicationError

    finished_tasks(project, manager, dataset, 1)
    done, out, _ = export(project, manager, "hdf5")
    archive = out.with_suffix(".zip")
    assert archive.is_file() and done.manifest["archive"] == archive.name  # before any download
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert names == {f"{out.name}/{p.relative_to(out)}" for p in out.rglob("*") if p.is_file()}
    built = archive.stat().st_mtime_ns
    assert services.export_archive(actor=manager, export=done) == archive
    assert archive.stat().st_mtime_ns == built
    assert not list(services.exports_root().glob(".tmp-*"))

    plain, out, _ = export(project, manager, "hdf5", zip=False)
    assert not out.with_suffix(".zip").exists() and plain.manifest["archive"] is None
    with pytest.raises(ApplicationError, match="without a zip"):
        services.export_archive(actor=manager, export=plain)


LEROBOT_CHECK = Path(__file__).resolve().parents[3] / "shared" / "tools" / "lerobot-check" / "run"
# The real lerobot loader runs where its tool (beside the checkout) and its venv are there.
HAS_LEROBOT_CHECK = (
    LEROBOT_CHECK.is_file()
    and (Path.home() / ".cache" / "stagecraft-lerobot-check" / "bin" / "python").exists()
)
needs_lerobot_check = pytest.mark.skipif(
    not HAS_LEROBOT_CHECK,
    reason="lerobot-check or its venv is absent (../shared/tools/lerobot-check/run builds it)",
)


@needs_lerobot_check
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_real_lerobot_loads_every_array(project, manager, tmp_path, dtype):
    """lerobot 0.6.1's LeRobotDataset loads the export (mobile ALOHA arrays: state,
    velocity, effort, action, base_action; float64 kept as float64)."""
    import subprocess

    folder = tmp_path / "mobile"
    for i in range(2):
        write_episode(folder / f"episode_{i}.hdf5", 12 + i, mobile=True, seed=i, dtype=dtype)
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    _, out, _ = export(project, manager, "lerobot")
    result = subprocess.run(  # noqa: S603 — our own checker, our own paths
        [str(LEROBOT_CHECK), str(out), "--expect-episodes", "2", "--expect-frames", "25"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "VALID" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_robot_type_is_set_per_project_through_the_api(project, manager, api_as):
    client = api_as(manager)
    url = f"/api/v1/projects/{project.pk}/"
    response = client.patch(url, {"robot_type": "aloha"}, format="json")
    assert response.status_code == 200 and response.json()["robot_type"] == "aloha"
    assert client.get(url).json()["assignment"] == "pull"  # other settings kept
    bad = client.patch(url, {"robot_type": "a robot!"}, format="json")
    assert bad.status_code == 400 and "robot_type" in json.dumps(bad.json())
    assert client.patch(url, {"robot_type": ""}, format="json").json()["robot_type"] == ""
    from core.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="robot_type"):
        services.export_start(
            actor=manager,
            project=project,
            format="lerobot",
            background=False,
            options={"robot_type": "a robot!"},
        )
