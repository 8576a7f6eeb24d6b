"""Issue 16's "Done means", end to end on real files: a LeRobot v2.1 dataset, robosuite's own
Lift demos (examples/robosuite/) and a Zarr replay buffer (diffusion policy / UMI layout,
written with zarr) each import through the dataset import service, get tasks, and export
to LeRobot, ALOHA HDF5 and robomimic through the export services; every source array comes
back bit-exact in its source dtype and shape, read with the formats' own readers (h5py,
pyarrow, PyAV, and lerobot's LeRobotDataset when lerobot-check is built). Episodes of
different sources in one export are refused with a clear error where the format cannot
hold them. (The killed worker's recovery from the queue page: tests/queues/test_recovery.py.)
"""

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from queues import services
from tests.helpers.lerobot_v21 import write_lerobot_v21
from tests.projects.test_import_formats import (
    ENDS,
    EXAMPLES,
    run_import,
    v21_episodes,
    write_replay_buffer,
)

from .test_export_episodes import (
    HAS_LEROBOT_CHECK,
    LEROBOT_CHECK,
    export,
    finished_tasks,
    gradient,
)
from .test_export_robomimic import sequence_dataset

pytestmark = pytest.mark.django_db


@dataclass
class Source:
    path: Path
    format: str
    # Per episode, in export order: source array name → its values as the source holds them.
    arrays: list[dict[str, np.ndarray]]
    # Per episode: camera → frames, and whether the source's frames are exact (raw pixels)
    # or already lossy (a video: the import decoded them).
    cameras: list[dict[str, np.ndarray]] = field(default_factory=list)
    exact_frames: bool = True
    # Where each source array goes: LeRobot feature key, robomimic demo path.
    lerobot: dict[str, str] = field(default_factory=dict)
    robomimic: dict[str, str] = field(default_factory=dict)


def lerobot_v21(root: Path) -> Source:
    episodes = v21_episodes()
    return Source(
        path=write_lerobot_v21(root / "towels", episodes),
        format="lerobot",
        arrays=[
            {
                "observation.state": e["state"].astype(np.float32),  # as the writer stores it
                "action": e["action"].astype(np.float32),
                "observation.velocity": e["velocity"].astype(np.float32),
            }
            for e in episodes
        ],
        cameras=[{"top": e["frames"]} for e in episodes],
        exact_frames=False,  # AV1 in the source
        lerobot={k: k for k in ("observation.state", "action", "observation.velocity")},
        robomimic={
            "action": "actions",
            "observation.state": "obs/observation.state",
            "observation.velocity": "observation.velocity",
        },
    )


def robosuite(root: Path) -> Source:
    folder = root / "lift"
    folder.mkdir()
    shutil.copy(EXAMPLES / "lift_demo.hdf5", folder / "demo.hdf5")
    with h5py.File(folder / "demo.hdf5") as f:
        arrays = [
            {key: f[f"data/{demo}/{key}"][()] for key in ("actions", "states")}
            for demo in ("demo_1", "demo_2", "demo_3")
        ]
    return Source(
        path=folder,
        format="robomimic",
        arrays=arrays,
        cameras=[{} for _ in arrays],
        lerobot={"actions": "action", "states": "observation.state"},
        robomimic={"actions": "actions", "states": "states"},
    )


def zarr_store(root: Path) -> Source:
    import zarr

    store = root / "pusht.zarr"
    arrays = write_replay_buffer(str(store))
    # A camera's picture (smooth), not noise: H.264 in the LeRobot export keeps it close.
    arrays["img"] = gradient(ENDS[-1], 12, 16, 0)
    zarr.open_group(str(store), mode="r+")["data/img"][:] = arrays["img"]
    bounds = list(zip([0, *ENDS[:-1]], ENDS, strict=True))
    return Source(
        path=store,
        format="zarr",
        arrays=[{k: v[a:b] for k, v in arrays.items() if k != "img"} for a, b in bounds],
        cameras=[{"img": arrays["img"][a:b]} for a, b in bounds],
        lerobot={
            "action": "action",
            "state": "observation.state",
            "keypoint": "observation.keypoint",  # (T, 9, 2): an Array2D feature
            "n_contacts": "observation.n_contacts",
        },
        robomimic={
            "action": "actions",
            "state": "obs/state",
            "keypoint": "obs/keypoint",
            "n_contacts": "n_contacts",
        },
    )


BUILDERS = {"lerobot-v21": lerobot_v21, "robosuite": robosuite, "zarr": zarr_store}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Source]:
    """The source files, written once for the module."""
    return {name: build(tmp_path_factory.mktemp(name)) for name, build in BUILDERS.items()}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def imported(project, manager, source: Source):
    dataset = run_import(project, manager, source.path, source.format)
    assert (dataset.status, dataset.error) == ("finished", "")
    assert dataset.num_samples == len(source.arrays)
    return dataset


def assert_frames(got: np.ndarray, want: np.ndarray, exact: bool, label: str) -> None:
    assert got.shape == want.shape and got.dtype == np.uint8, label
    if exact:
        assert np.array_equal(got, want), label
    else:  # a lossy codec on the way: the picture, not the bits
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 6, label


def check_hdf5(out: Path, source: Source, first: int = 0) -> None:
    """ALOHA HDF5, read with h5py: one file per episode (from ``episode_<first>``), each
    array at the path the file's ``arrays`` attribute names, cameras under
    observations/images/."""
    episodes = zip(source.arrays, source.cameras, strict=True)
    for n, (arrays, cameras) in enumerate(episodes, start=first):
        with h5py.File(out / f"episode_{n}.hdf5") as f:
            paths = json.loads(f.attrs["arrays"])
            assert set(paths) == set(arrays)
            for name, values in arrays.items():
                kept = f[paths[name]]
                assert (kept.shape, kept.dtype) == (values.shape, values.dtype), name
                assert np.array_equal(kept[...], values), name
            for camera, frames in cameras.items():
                kept = f[f"observations/images/{camera}"][...]
                assert_frames(kept, frames, source.exact_frames, camera)


def decoded_video(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def check_lerobot(out: Path, source: Source) -> None:
    """LeRobot v3.0, read with pyarrow and PyAV: every array a feature of its source's
    dtype and per-frame shape, its parquet column bit-exact per episode; each camera a
    video whose frames at the episode's timestamps are the source's pictures."""
    info = json.loads((out / "meta" / "info.json").read_text())
    table = pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("data/*/*.parquet")))
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert info["total_episodes"] == len(source.arrays)
    episode_index = table["episode_index"].to_numpy()
    for n, (arrays, cameras) in enumerate(zip(source.arrays, source.cameras, strict=True)):
        rows = table.filter(pa.array(episode_index == n))
        for name, values in arrays.items():
            key = source.lerobot[name]
            feature = info["features"][key]
            shape = list(values.shape[1:]) if values.ndim > 1 else [1]
            assert (feature["dtype"], feature["shape"]) == (str(values.dtype), shape), name
            got = np.asarray(rows[key].to_pylist(), dtype=values.dtype).reshape(values.shape)
            assert np.array_equal(got, values), name
        row = episodes.to_pylist()[n]
        for camera, frames in cameras.items():
            key = f"observation.images.{camera}"
            assert info["features"][key]["dtype"] == "video"
            video = out / info["video_path"].format(
                video_key=key,
                chunk_index=row[f"videos/{key}/chunk_index"],
                file_index=row[f"videos/{key}/file_index"],
            )
            first = round(row[f"videos/{key}/from_timestamp"] * info["fps"])
            got = decoded_video(video)[first : first + len(frames)]
            assert_frames(got, frames, exact=False, label=camera)  # H.264


def check_robomimic(out: Path, source: Source) -> None:
    """robomimic, read as its SequenceDataset reads it: one demo per episode, each array at
    robomimic's name or its own path, bit-exact; cameras as obs/<camera>_image."""
    read = sequence_dataset(out / "dataset.hdf5")
    assert list(read["demos"]) == [f"demo_{n}" for n in range(len(source.arrays))]
    for n, (arrays, cameras) in enumerate(zip(source.arrays, source.cameras, strict=True)):
        demo = read["demos"][f"demo_{n}"]
        assert demo["num_samples"] == len(next(iter(arrays.values())))
        for name, values in arrays.items():
            kept = demo["all"][source.robomimic[name]]
            assert (kept.shape, kept.dtype) == (values.shape, values.dtype), name
            assert np.array_equal(kept, values), name
        for camera, frames in cameras.items():
            assert_frames(demo["obs"][f"{camera}_image"], frames, source.exact_frames, camera)
        # No rewards or dones in these sources: filled as robomimic's converter does.
        assert not demo["rewards"].any() and demo["dones"].tolist()[-1] == 1


def lerobot_check(out: Path, source: Source) -> str:
    frames = sum(len(next(iter(a.values()))) for a in source.arrays)
    result = subprocess.run(  # noqa: S603 — our own checker, our own paths
        [str(LEROBOT_CHECK), str(out), "--expect-episodes", str(len(source.arrays)),
         "--expect-frames", str(frames)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0 and "VALID" in result.stdout, (
        result.stdout[-2000:] + result.stderr[-2000:]
    )
    return result.stdout


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_source_array_survives_each_export(project, manager, sources, name):
    source = sources[name]
    dataset = imported(project, manager, source)
    finished_tasks(project, manager, dataset, 1)

    done, out, _ = export(project, manager, "hdf5")
    assert done.manifest["casts"] == {}
    check_hdf5(out, source)

    done, out, _ = export(project, manager, "lerobot")
    assert done.manifest["casts"] == {}
    check_lerobot(out, source)
    if HAS_LEROBOT_CHECK:
        lerobot_check(out, source)

    done, out, _ = export(project, manager, "robomimic")
    assert done.manifest["casts"] == {
        "rewards": "absent in the source → zeros",
        "dones": "absent in the source → 0, 1 on the last frame",
    }
    check_robomimic(out, source)


def failed_export(project, manager, fmt: str) -> str:
    started, _ = services.export_start(actor=manager, project=project, format=fmt, background=False)
    failed = services.export_run(export_id=started.pk)
    assert failed.status == "failed"
    return failed.error


@pytest.mark.parametrize(
    ("names", "robomimic_error"),
    [
        (
            ("lerobot-v21", "robosuite"),
            "demo/demo_1: its environment (env_args) differs from the earlier demos' (one of "
            "them names none); a robomimic file holds one environment — export each "
            "environment's tasks separately",
        ),
        (
            ("lerobot-v21", "zarr"),
            "episode_000000: its observations (obs/ keys, actions or their shapes) differ "
            "from the earlier demos' (episode_000000); a robomimic file holds one environment "
            "with one set of observations — export each source's tasks separately",
        ),
    ],
    ids=["with-an-environment", "without"],
)
def test_sources_mixed_in_one_export_go_to_hdf5_and_are_refused_where_they_cannot(
    project, manager, sources, tmp_path, names, robomimic_error
):
    """ALOHA HDF5 keeps each episode in its own file, so it takes both sources. A robomimic
    file has one environment and one set of observations (SequenceDataset reads the same
    obs keys from every demo; env_args is the file's); a LeRobot dataset one frame rate,
    camera set and feature set: both refuse the mix, naming the episode, and write nothing
    (before, robomimic stamped robosuite's Lift env_args on the LeRobot episodes' demos and
    wrote demos with different obs keys into one file)."""
    for n, name in enumerate(names):
        finished_tasks(project, manager, imported(project, manager, sources[name]), 1, start=n)
    done, out, _ = export(project, manager, "hdf5")
    check_hdf5(out, sources[names[0]])
    check_hdf5(out, sources[names[1]], first=len(sources[names[0]].arrays))

    assert failed_export(project, manager, "robomimic") == robomimic_error
    assert "a LeRobot dataset needs one frame rate and one camera set" in failed_export(
        project, manager, "lerobot"
    )
    written = sorted(p.name for p in (tmp_path / "media" / "exports" / project.slug).iterdir())
    assert written == [out.name, f"{out.name}.zip"]  # the HDF5 export only
