"""Every array of an episode leaves an export as its source wrote it: a robomimic demo's
(T, 12, 10, 1) depth observation stays (T, 12, 10, 1), its (T,) rewards stay (T,), its
float64 states float64 — in HDF5 under the source's names, in LeRobot as features of that
shape (info.json, stats.json and the parquet columns) — and a large array is read a window
of frames at a time, not whole in float64."""

import json
import subprocess
import tracemalloc

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from queues.exporters import base
from queues.exporters import lerobot as lerobot_export

from .test_export_episodes import (
    LEROBOT_CHECK,
    export,
    finished_tasks,
    gradient,
    needs_lerobot_check,
)

pytestmark = pytest.mark.django_db

LENGTHS = (30, 25)
# Source array → where the HDF5 export keeps it (ACT's names for the state and action
# vectors, the source's own path for the rest) and its LeRobot feature.
HDF5_PATHS = {
    "actions": "action",
    "states": "observations/qpos",
    "rewards": "rewards",
    "dones": "dones",
    "obs/agentview_depth": "obs/agentview_depth",
    "obs/robot0_eef_pos": "obs/robot0_eef_pos",
}
LEROBOT_KEYS = {
    "actions": "action",
    "states": "observation.state",
    "rewards": "observation.rewards",
    "dones": "observation.dones",
    "obs/agentview_depth": "observation.agentview_depth",
    "obs/robot0_eef_pos": "observation.robot0_eef_pos",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def write_demos(path, lengths=LENGTHS, *, depth=(12, 10, 1), camera=True) -> dict:
    """A robomimic file (h5py): per demo float32 actions, float64 states, (T,) float64
    rewards, (T,) int64 dones, an N-D float32 depth observation, a float32 vector
    observation and (``camera``) a small RGB camera."""
    rng = np.random.default_rng(11)
    written = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {}})
        for d, T in enumerate(lengths):
            demo = data.create_group(f"demo_{d}")
            arrays = {
                "actions": rng.normal(size=(T, 7)).astype(np.float32),
                "states": rng.normal(size=(T, 20)),  # float64, as robosuite writes
                "rewards": rng.normal(size=T),
                "dones": (np.arange(T) == T - 1).astype(np.int64),
                "obs/agentview_depth": rng.random(size=(T, *depth)).astype(np.float32),
                "obs/robot0_eef_pos": rng.normal(size=(T, 3)).astype(np.float32),
            }
            for name, values in arrays.items():
                demo.create_dataset(name, data=values)
            if camera:
                demo.create_dataset("obs/agentview_image", data=gradient(T, 16, 16, d))
            written[f"demo_{d}"] = arrays
    return written


def import_robomimic(project, manager, folder):
    from projects.dataset_services import dataset_import_run, dataset_import_start

    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name=folder.name,
        format="robomimic",
        source_path=folder,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    return dataset


@pytest.fixture
def demos(project, manager, tmp_path):
    written = write_demos(tmp_path / "rm" / "demos.hdf5")
    dataset = import_robomimic(project, manager, tmp_path / "rm")
    finished_tasks(project, manager, dataset, 1)
    return written


def test_hdf5_keeps_every_array_in_its_source_shape_and_dtype(project, manager, demos):
    done, out, _ = export(project, manager, "hdf5")
    for n, (demo, source) in enumerate(demos.items()):
        with h5py.File(out / f"episode_{n}.hdf5") as f:
            assert f.attrs["sample"] == f"demos/{demo}"
            assert json.loads(f.attrs["arrays"]) == HDF5_PATHS
            for name, values in source.items():
                kept = f[HDF5_PATHS[name]]
                assert (kept.shape, kept.dtype) == (values.shape, values.dtype), name
                assert np.array_equal(kept[...], values), name
            assert f["observations/images/agentview_image"].shape == (LENGTHS[n], 16, 16, 3)
    assert done.manifest["casts"] == {}


def leaf_type(arrow_type):
    while pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        arrow_type = arrow_type.value_type
    return arrow_type


def test_lerobot_keeps_every_array_as_a_feature_of_its_shape(project, manager, demos):
    done, out, _ = export(project, manager, "lerobot")
    info = json.loads((out / "meta" / "info.json").read_text())
    stats = json.loads((out / "meta" / "stats.json").read_text())
    data = pq.ParquetFile(out / "data" / "chunk-000" / "file-000.parquet")
    table = data.read()
    hf = json.loads(data.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.agentview_depth"] == {
        "shape": [12, 10, 1],
        "dtype": "float32",
        "_type": "Array3D",
    }
    assert hf["observation.rewards"] == {"dtype": "float64", "_type": "Value"}
    for name, key in LEROBOT_KEYS.items():
        source = np.concatenate([arrays[name] for arrays in demos.values()])
        shape = list(source.shape[1:]) or [1]  # LeRobot keeps a scalar per frame as [1]
        feature = info["features"][key]
        assert (feature["shape"], feature["dtype"]) == (shape, str(source.dtype)), name
        column = table[key]
        assert leaf_type(column.type) == pa.from_numpy_dtype(source.dtype), name
        got = np.asarray(column.to_pylist(), dtype=source.dtype)
        assert got.shape == source.shape and np.array_equal(got, source), name
        # Statistics per value of the feature, in its shape (as LeRobot keeps them).
        assert np.shape(stats[key]["mean"]) == tuple(shape), name
        assert np.allclose(stats[key]["max"], source.max(axis=0).reshape(shape)), name
    assert info["features"]["observation.agentview_depth"]["names"] is None
    assert done.manifest["casts"] == {}


@pytest.mark.parametrize("fmt", ["hdf5", "lerobot"])
def test_a_large_array_is_exported_in_bounded_memory(project, manager, tmp_path, monkeypatch, fmt):
    """A (1000, 60, 80) float32 depth array (19 MB; 38 MB as float64) with a 1 MB window
    (and LeRobot's statistics on 100,000 values at a time): the export's Python allocations
    peak far below the array, whatever its length (the former exporters read every array
    whole as float64, then converted it)."""
    written = write_demos(tmp_path / "big" / "demos.hdf5", (1000,), depth=(60, 80), camera=False)
    dataset = import_robomimic(project, manager, tmp_path / "big")
    finished_tasks(project, manager, dataset, 1)
    monkeypatch.setattr(base, "WINDOW_BYTES", 1024 * 1024)
    monkeypatch.setattr(lerobot_export, "STATS_VALUES", 100_000, raising=False)
    depth = written["demo_0"]["obs/agentview_depth"]
    tracemalloc.start()
    try:
        done, out, _ = export(project, manager, fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.manifest["counts"]["frames"] == 1000
    assert peak < depth.nbytes / 2, f"peak {peak / 1e6:.1f} MB"
    if fmt == "hdf5":
        with h5py.File(out / "episode_0.hdf5") as f:
            assert np.array_equal(f["obs/agentview_depth"][...], depth)


def test_lerobot_refuses_an_array_of_more_dimensions_than_a_feature_has(project, manager, tmp_path):
    from queues import services

    write_demos(tmp_path / "6d" / "demos.hdf5", (5,), depth=(2, 2, 2, 2, 2, 2), camera=False)
    dataset = import_robomimic(project, manager, tmp_path / "6d")
    finished_tasks(project, manager, dataset, 1)
    started, _ = services.export_start(
        actor=manager, project=project, format="lerobot", background=False
    )
    failed = services.export_run(export_id=started.pk)
    assert failed.status == "failed"
    assert "obs/agentview_depth has 6 dimensions per frame" in failed.error


@needs_lerobot_check
def test_the_real_lerobot_loads_n_d_and_scalar_features(project, manager, demos):
    """lerobot's LeRobotDataset loads the export: the (12, 10, 1) depth as an Array3D, the
    rewards and dones as one value per frame, float64 states as float64."""
    _, out, _ = export(project, manager, "lerobot")
    result = subprocess.run(  # noqa: S603 — our own checker, our own paths
        [str(LEROBOT_CHECK), str(out), "--expect-episodes", "2", "--expect-frames", "55"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "VALID" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "observation.agentview_depth: tensor(12, 10, 1) torch.float32" in result.stdout
