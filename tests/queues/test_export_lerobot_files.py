"""LeRobot export files split as lerobot's writer splits them: a new data parquet / video mp4
when the current one would pass data_files_size_in_mb / video_files_size_in_mb, chunks of
chunks_size files, an episode never split across files; the episodes' chunk and file
indices and video timestamps point to the right rows and frames (our reader, and lerobot's
own loader when lerobot-check is built)."""

import json
import subprocess

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from projects.dataset_services import dataset_dir, dataset_import_run, dataset_import_start
from projects.formats import get_format
from queues.exporters import lerobot as lerobot_export

from .test_export_episodes import HAS_LEROBOT_CHECK, LEROBOT_CHECK, export, finished_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def small_files(monkeypatch):
    """Limits small enough that the fixture's episodes fill several files and chunks."""
    monkeypatch.setattr(lerobot_export, "DATA_FILES_SIZE_IN_MB", 0.004)
    monkeypatch.setattr(lerobot_export, "VIDEO_FILES_SIZE_IN_MB", 0.0005)
    monkeypatch.setattr(lerobot_export, "CHUNKS_SIZE", 2)


def test_files_roll_over_at_the_size_limits_and_chunks(
    project, manager, dataset, small_files, tmp_path
):
    finished_tasks(project, manager, dataset, 3)  # 3 tasks x 2 episodes
    done, out, _ = export(project, manager, "lerobot")
    info = json.loads((out / "meta" / "info.json").read_text())
    assert (info["data_files_size_in_mb"], info["chunks_size"]) == (0.004, 2)
    data_files = sorted(p.relative_to(out).as_posix() for p in out.glob("data/*/*.parquet"))
    assert len(data_files) > 2 and "data/chunk-001/file-000.parquet" in data_files
    video_files = sorted(out.glob("videos/*/*/*.mp4"))
    assert len(video_files) > 2 * len(dataset.samples.first().cameras)
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    for row in episodes.to_pylist():
        path = out / lerobot_export.DATA_PATH.format(
            chunk_index=row["data/chunk_index"], file_index=row["data/file_index"]
        )
        index = pq.read_table(path, columns=["index", "episode_index"])
        mine = index.filter(pc.equal(index["episode_index"], row["episode_index"]))
        assert mine.num_rows == row["length"]  # the whole episode in the file it names
    # Read back by our importer: every episode's arrays and frames as exported.
    source = {s.name: s for s in dataset.samples.all()}
    imported = dataset_import_start(
        actor=manager, project=project, name="back", format="lerobot", source_path=out,
        background=False,
    )  # fmt: skip
    imported = dataset_import_run(dataset_id=imported.pk)
    assert imported.status == "finished", imported.error
    reader = get_format("hdf5")
    lerobot_reader = get_format("lerobot")
    samples = list(imported.samples.order_by("index"))
    assert len(samples) == 6
    ordered = sorted(source.values(), key=lambda s: s.index) * 3
    for back, original in zip(samples, ordered, strict=True):
        want = reader.read_series_rows(dataset_dir(dataset), original, 0, original.num_frames)
        got = lerobot_reader.read_series_rows(dataset_dir(imported), back, 0, back.num_frames)
        assert np.array_equal(got["action"], want["action"])
        camera = original.cameras[0]["name"]
        last = original.num_frames - 1
        frame = lerobot_reader.read_frames(dataset_dir(imported), back, camera, [last])[0]
        expected = reader.read_frames(dataset_dir(dataset), original, camera, [last])[0]
        assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 6
    assert done.manifest["counts"]["episodes"] == 6


def test_default_limits_keep_a_small_export_in_one_file(project, manager, dataset):
    finished_tasks(project, manager, dataset, 2)
    _, out, _ = export(project, manager, "lerobot")
    assert [p.relative_to(out).as_posix() for p in out.glob("data/*/*.parquet")] == [
        "data/chunk-000/file-000.parquet"
    ]
    info = json.loads((out / "meta" / "info.json").read_text())
    assert (info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (100, 200)


@pytest.mark.skipif(
    not HAS_LEROBOT_CHECK,
    reason="lerobot-check or its venv is missing (../shared/tools/lerobot-check/run builds it)",
)
def test_the_real_lerobot_loads_a_split_export(project, manager, dataset, small_files):
    finished_tasks(project, manager, dataset, 3)
    _, out, _ = export(project, manager, "lerobot")
    frames = sum(s.num_frames for s in dataset.samples.all()) * 3
    result = subprocess.run(  # noqa: S603 — our own checker, our own paths
        [str(LEROBOT_CHECK), str(out), "--expect-episodes", "6", "--expect-frames", str(frames)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0 and "VALID" in result.stdout, result.stdout + result.stderr
